"""A Pulsar reader asked `has_message_available` right after `seek` can meet its consumer still reconnecting
(the broker answers "Consumer not found" = BrokerMetadataError): the event log asks again, briefly, and gives up
with the error after its operation timeout. Other errors are raised at once. No network: a scripted reader."""

from __future__ import annotations

from collections.abc import Iterator

import pulsar
import pytest

from gnomon.eventlog.pulsar_log import has_message_available


class ScriptedReader:
    """Answers `has_message_available` from a script: an exception instance is raised, anything else returned."""

    def __init__(self, answers: list[object]) -> None:
        self._answers: Iterator[object] = iter(answers)
        self.asked = 0

    def has_message_available(self) -> bool:
        self.asked += 1
        answer = next(self._answers)
        if isinstance(answer, BaseException):
            raise answer
        return bool(answer)

    def topic(self) -> str:
        return "persistent://t/n/events-partition-0"


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def reconnecting() -> pulsar.PulsarException:
    return pulsar.exceptions.BrokerMetadataError("Consumer not found")


def test_asks_again_while_the_consumer_reconnects() -> None:
    reader, fake = ScriptedReader([reconnecting(), pulsar.exceptions.NotConnected("x"), True]), FakeTime()
    assert has_message_available(reader, 30, fake.sleep, fake.clock) is True
    assert reader.asked == 3
    assert fake.slept == [0.1, 0.2]


def test_gives_up_with_the_error_after_the_time_allowed() -> None:
    reader, fake = ScriptedReader([reconnecting()] * 100), FakeTime()
    with pytest.raises(pulsar.exceptions.BrokerMetadataError):
        has_message_available(reader, 5, fake.sleep, fake.clock)
    assert fake.now <= 5
    assert max(fake.slept) == 1.0  # the pause doubles up to 1 s
    assert reader.asked == len(fake.slept) + 1


@pytest.mark.parametrize("error", [pulsar.exceptions.Timeout("t"), pulsar.exceptions.TopicNotFound("gone")])
def test_other_errors_are_raised_at_once(error: pulsar.PulsarException) -> None:
    reader, fake = ScriptedReader([error, True]), FakeTime()
    with pytest.raises(type(error)):
        has_message_available(reader, 30, fake.sleep, fake.clock)
    assert (reader.asked, fake.slept) == (1, [])


def test_a_plain_answer_needs_no_pause() -> None:
    reader, fake = ScriptedReader([False]), FakeTime()
    assert has_message_available(reader, 30, fake.sleep, fake.clock) is False
    assert fake.slept == []
