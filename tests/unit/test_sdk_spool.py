"""The spool: records survive SIGKILL of the merchant's process and are delivered by the next Client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from gnomon_sdk import Client, read_records
from gnomon_sdk._proto.gnomon.v1 import event_pb2
from gnomon_sdk.spool import MAGIC, Spool, frame
from gnomon_sdk.testing import FakeCollector

KEY = "wk_spool"

CHILD = textwrap.dedent(
    """
    import sys
    import time
    import uuid
    from gnomon_sdk import Client

    spool_dir, endpoint, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    client = Client("wk_spool", [endpoint], spool_dir=spool_dir, batch_size=100, flush_interval_s=0.05,
                    backoff_base_s=0.01, backoff_max_s=0.05)
    i = 0
    while limit == 0 or i < limit:  # track (until killed when limit is 0)
        event_id = uuid.uuid4().hex
        sys.stdout.write(f"try {event_id}\\n")  # announced before track() is called ...
        sys.stdout.flush()
        client.track("page_view", client_id=f"c{i % 13}", page_url=f"https://shop/{i}", event_id=event_id)
        sys.stdout.write(f"ok {event_id}\\n")  # ... and confirmed once it returned (one write per line)
        sys.stdout.flush()
        i += 1
    print("DONE", flush=True)
    time.sleep(600)
    """
)


@pytest.mark.parametrize("limit", [1_234, 0], ids=["killed-after-n-events", "killed-while-tracking"])
def test_events_survive_sigkill_and_are_delivered_by_the_next_client(tmp_path: Path, limit: int) -> None:
    down = FakeCollector([KEY]).start()
    down.stop()  # the collector is DOWN while the merchant's process runs
    spool_dir = tmp_path / "spool"
    script = tmp_path / "merchant.py"
    script.write_text(CHILD)
    child = subprocess.Popen(
        [sys.executable, str(script), str(spool_dir), down.endpoint, str(limit)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    tracked: list[str] = []  # track() returned
    attempted: set[str] = set()  # track() was called (it may have been killed inside)

    def note(line: str) -> None:
        if not line.endswith("\n"):
            return  # torn by the kill: the child had not finished announcing it
        word, _, event_id = line.strip().partition(" ")
        if word == "try":
            attempted.add(event_id)
        elif word == "ok":
            tracked.append(event_id)

    try:
        for line in child.stdout:
            if line.strip() == "DONE":
                break
            note(line)  # before deciding to stop: the line that ends the loop counts too
            if limit == 0 and len(tracked) >= 1_250:
                break
        os.kill(child.pid, signal.SIGKILL)
        for line in child.stdout:  # written before the kill
            note(line)
    finally:
        child.kill()
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    assert len(tracked) >= 1_234

    with FakeCollector([KEY]) as up, Client(KEY, [up.endpoint], spool_dir=spool_dir) as client:
        recovered = client.stats().recovered
        assert client.flush(20).complete
        stats = client.stats()
    delivered = up.accepted_ids
    assert set(tracked) <= delivered  # no loss of any event whose track() returned
    if limit:
        assert delivered == set(tracked)  # exactly the N events
    else:
        assert delivered <= attempted  # nothing invented: extra ids are events killed inside track()
    assert len(up.received_ids) == len(set(up.received_ids))  # sent once each
    assert recovered == len(delivered) == stats.accepted
    assert not list(spool_dir.glob("seg-*.log"))


def _event(i: int) -> bytes:
    return event_pb2.Event(event_id=f"e{i}", name="x", client_id="c").SerializeToString()


def test_recovery_truncates_a_torn_tail_and_keeps_the_valid_records(tmp_path: Path) -> None:
    good = [_event(i) for i in range(5)]
    segment = tmp_path / f"seg-{7:020d}.log"
    segment.write_bytes(MAGIC + b"".join(frame(e) for e in good) + frame(_event(99))[:-3])  # torn last record
    (tmp_path / f"seg-{8:020d}.log").write_bytes(MAGIC[:3])  # torn before the magic: dropped
    (tmp_path / "notes.txt").write_text("not a segment")
    spool = Spool(tmp_path)
    try:
        found = spool.recover()
        assert [(s.seq, s.count) for s in found] == [(7, 5)]
        assert list(read_records(segment)) == good
        assert spool.next_seq() == 8
    finally:
        spool.close()
    with FakeCollector([KEY]) as fake, Client(KEY, [fake.endpoint], spool_dir=tmp_path) as client:
        assert client.flush(5).complete
    assert fake.accepted_ids == {f"e{i}" for i in range(5)}
    assert (tmp_path / "notes.txt").exists()
