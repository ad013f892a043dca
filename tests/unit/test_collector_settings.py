"""CollectorSettings from GNOMON_* variables: defaults, parsing, actionable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector_svc.settings import CollectorSettings
from gnomon.settings import CommonSettings, SettingsError
from gnomon.telemetry import Exporter


def test_defaults(tmp_path: Path) -> None:
    s = CollectorSettings.from_env({"GNOMON_DATA_DIR": str(tmp_path)})
    assert (s.host, s.port, s.address) == ("127.0.0.1", 50051, "127.0.0.1:50051")
    assert s.rate_limit_burst == 2 * s.rate_limit_events_per_s
    assert s.trusted_proxies == ()
    assert s.admin_token is None
    assert s.telemetry.exporter is Exporter.NONE
    assert s.common.data_dir == tmp_path


def test_values_from_env(tmp_path: Path) -> None:
    s = CollectorSettings.from_env(
        {
            "GNOMON_COLLECTOR_HOST": "::1",
            "GNOMON_COLLECTOR_PORT": "0",
            "GNOMON_COLLECTOR_MAX_IN_FLIGHT": "4",
            "GNOMON_COLLECTOR_RATE": "10",
            "GNOMON_TRUSTED_PROXIES": "10.0.0.0/8, fd00::/8",
            "GNOMON_COLLECTOR_PUBLISH_TIMEOUT_MS": "1500",
            "GNOMON_ADMIN_TOKEN": "x" * 20,
            "GNOMON_TELEMETRY_EXPORTER": "memory",
        }
    )
    assert s.address == "[::1]:0"
    assert s.max_in_flight_batches == 4
    assert (s.rate_limit_events_per_s, s.rate_limit_burst) == (10.0, 20.0)
    assert [str(n) for n in s.trusted_proxies] == ["10.0.0.0/8", "fd00::/8"]
    assert s.publish_timeout_s == 1.5
    assert s.telemetry.exporter is Exporter.MEMORY
    assert "x" * 20 not in repr(s)  # the token is kept out of logs


@pytest.mark.parametrize(
    ("env", "mentions"),
    [
        ({"GNOMON_TRUSTED_PROXIES": "10.0.0.0/8,nope"}, "GNOMON_TRUSTED_PROXIES"),
        ({"GNOMON_COLLECTOR_PORT": "70000"}, "GNOMON_COLLECTOR_PORT"),
        ({"GNOMON_ADMIN_TOKEN": "short"}, "GNOMON_ADMIN_TOKEN"),
        ({"GNOMON_TLS_CERT": "/nonexistent.pem"}, "GNOMON_TLS_KEY"),
        ({"GNOMON_TLS_CERT": "/nonexistent.pem", "GNOMON_TLS_KEY": "/nonexistent.key"}, "does not exist"),
        ({"GNOMON_TELEMETRY_EXPORTER": "zipkin"}, "GNOMON_TELEMETRY_EXPORTER"),
    ],
)
def test_errors_name_the_variable(env: dict[str, str], mentions: str) -> None:
    with pytest.raises(SettingsError, match=mentions):
        CollectorSettings.from_env(env)


def test_settings_are_frozen(tmp_path: Path) -> None:
    s = CollectorSettings(common=CommonSettings.from_env({"GNOMON_DATA_DIR": str(tmp_path)}))
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]
