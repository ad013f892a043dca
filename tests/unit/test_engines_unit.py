"""Pure parts of gnomon.engines: Java version parsing, JVM options, config rendering, pid identity."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gnomon.engines import processes, specs
from gnomon.engines.errors import EngineError
from gnomon.engines.jars import pom_version
from gnomon.engines.java import parse_java_version
from gnomon.engines.layout import EngineLayout


@pytest.fixture
def layout(tmp_path: Path) -> EngineLayout:
    return EngineLayout.from_env({"GNOMON_ENGINES_HOME": str(tmp_path / "home"), "GNOMON_CQL_PORT": "19042"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('openjdk version "17.0.15" 2025-04-15', (17, 0, 15)),
        ('openjdk version "17.0.21.1" 2026-11-17', (17, 0, 21)),
        ('openjdk version "25" 2025-09-16', (25, 0, 0)),
    ],
)
def test_parse_java_version(text: str, expected: tuple[int, int, int]) -> None:
    assert parse_java_version(text) == expected


def test_parse_java_version_rejects_garbage() -> None:
    with pytest.raises(EngineError, match="cannot read a Java version"):
        parse_java_version("command not found")


def test_poms_pin_the_required_engine_lines(layout: EngineLayout) -> None:
    assert pom_version(layout.recipes / "pulsar" / "pom.xml", "pulsar.version").startswith("4.0.")
    assert pom_version(layout.recipes / "cassandra" / "pom.xml", "cassandra.version").startswith("5.0.")


def test_jvm_options_split_module_flags_and_cap_heap(layout: EngineLayout) -> None:
    for spec in specs.all_specs(layout):
        options = specs.jvm_options(layout, spec)
        assert "-Xmx1g" in options
        assert all(" " not in o for o in options)
        i = options.index("--add-opens")
        assert options[i + 1].endswith("=ALL-UNNAMED")


def test_rendered_configs_bind_loopback_and_use_configured_ports(layout: EngineLayout) -> None:
    for spec in specs.all_specs(layout):
        specs.render_config(layout, spec)
    pulsar_conf = (specs.pulsar_spec(layout).conf_dir(layout) / "standalone.conf").read_text()
    cassandra_yaml = (specs.cassandra_spec(layout).conf_dir(layout) / "cassandra.yaml").read_text()
    assert "bindAddress=127.0.0.1" in pulsar_conf and "managedLedgerDefaultAckQuorum=1" in pulsar_conf
    assert "NoopLoadManager" in pulsar_conf
    assert "native_transport_port: 19042" in cassandra_yaml and "rpc_address: 127.0.0.1" in cassandra_yaml
    assert "num_tokens: 1" in cassandra_yaml
    assert "${" not in pulsar_conf + cassandra_yaml


def test_command_lines(layout: EngineLayout, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "jamm-0.4.0.jar").touch()
    java = Path("/usr/bin/java")
    pulsar = specs.command(layout, specs.pulsar_spec(layout), java, lib)
    assert pulsar[-10:-8] == ["-nfw", "-nss"] or {"-nfw", "-nss"} <= set(pulsar)
    assert "org.apache.pulsar.PulsarStandaloneStarter" in pulsar
    cassandra = specs.command(layout, specs.cassandra_spec(layout), java, lib)
    assert f"-javaagent:{lib / 'jamm-0.4.0.jar'}" in cassandra
    assert cassandra[-1] == "org.apache.cassandra.service.CassandraDaemon"


def test_pid_file_is_trusted_only_for_our_process(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pid_file = tmp_path / "engine.pid"
        # A live pid whose command line is not the engine's (e.g. a recycled pid) is never trusted.
        pid_file.write_text(json.dumps({"pid": sleeper.pid, "main_class": "org.Foo", "marker": "/x"}))
        assert processes.live_pid(pid_file) is None
        pid_file.write_text(json.dumps({"pid": sleeper.pid, "main_class": "time.sleep", "marker": "import"}))
        assert processes.live_pid(pid_file) == sleeper.pid
        pid_file.write_text("not json")
        assert processes.live_pid(pid_file) is None
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not processes.alive(sleeper.pid)


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    ignore_term = "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True)"
    stubborn = subprocess.Popen([sys.executable, "-c", ignore_term + "; time.sleep(60)"], stdout=subprocess.PIPE)
    assert stubborn.stdout is not None
    assert stubborn.stdout.readline() == b"ready\n"  # the SIGTERM handler is in place
    assert processes.stop(stubborn.pid, grace_s=0.5) is True  # True: it had to SIGKILL
    assert not processes.alive(stubborn.pid)


def test_tail_reads_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("\n".join(f"line {i}" for i in range(100)))
    assert processes.tail(log, 3).splitlines() == ["line 97", "line 98", "line 99"]
    assert processes.tail(tmp_path / "missing.log") == ""
