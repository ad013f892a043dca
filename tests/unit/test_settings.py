"""Settings come from GNOMON_* variables with actionable errors."""

from __future__ import annotations

import pytest

from gnomon.settings import CommonSettings, CqlConsistency, EngineMode, SettingsError


def test_defaults_are_embedded_and_local() -> None:
    s = CommonSettings.from_env({})
    assert s.engine_mode is EngineMode.EMBEDDED
    assert s.region == "local"
    assert s.pulsar.namespace == "gnomon/local"
    assert s.cql.consistency is CqlConsistency.LOCAL_QUORUM
    assert s.dask.scheduler_address is None


def test_values_from_env() -> None:
    s = CommonSettings.from_env(
        {
            "GNOMON_ENGINES": "real",
            "GNOMON_REGION": "eu-west",
            "GNOMON_CQL_CONSISTENCY": "ONE",
            "GNOMON_CQL_DATACENTER": "eu1",
            "GNOMON_DASK_SCHEDULER": "tcp://10.0.0.1:8786",
        }
    )
    assert s.engine_mode is EngineMode.REAL
    assert s.pulsar.namespace == "gnomon/eu-west"
    assert s.cql.local_datacenter == "eu1"
    assert s.cql.consistency is CqlConsistency.ONE
    assert s.dask.scheduler_address == "tcp://10.0.0.1:8786"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GNOMON_ENGINES": "docker"}, "GNOMON_ENGINES='docker' is not one of: embedded, real"),
        ({"GNOMON_CQL_PORT": "nine"}, "GNOMON_CQL_PORT='nine' is not an integer"),
        ({"GNOMON_CQL_PORT": "70000"}, "between 0 and 65535"),
        ({"GNOMON_REGION": "eu/west"}, "only letters, digits"),
    ],
)
def test_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        CommonSettings.from_env(env)
