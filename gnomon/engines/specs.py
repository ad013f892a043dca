"""What it takes to run each engine: jars, rendered config files, the JVM command line, its ports.

Pure functions of an EngineLayout (plus the jar directory): rendering writes files, nothing starts here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template

from gnomon.engines.jars import offloaders_version, resolved_offloaders
from gnomon.engines.layout import EngineLayout


@dataclass(frozen=True)
class EngineSpec:
    """One engine as `gnomon engines` manages it."""

    name: str  # "pulsar" | "cassandra"
    title: str
    version_property: str  # in engines/<name>/pom.xml
    main_class: str
    ports: tuple[int, ...]  # every port it listens on (all must be free before a start)

    def dir(self, layout: EngineLayout) -> Path:
        return layout.home / self.name

    def data_dir(self, layout: EngineLayout) -> Path:
        return self.dir(layout) / "data"

    def conf_dir(self, layout: EngineLayout) -> Path:
        return self.dir(layout) / "conf"

    def log_file(self, layout: EngineLayout) -> Path:
        return self.dir(layout) / "engine.log"

    def pid_file(self, layout: EngineLayout) -> Path:
        return self.dir(layout) / "engine.pid"


def pulsar_offload_dir(layout: EngineLayout) -> Path:
    """Where Pulsar's filesystem offloader writes offloaded ledgers: ``<data>/offload/<managed ledger name>/``
    (e.g. ``gnomon/local/persistent/events-partition-0``), one Hadoop MapFile directory per ledger, named
    ``<ledger id>-<uuid>``. Only explicit offloads (admin API) put data here: no automatic threshold is set."""
    return pulsar_spec(layout).data_dir(layout) / "offload"


def pulsar_offloaders_dir(layout: EngineLayout) -> Path:
    """Pulsar's ``offloadersDirectory``: the resolved tiered-storage NAR(s) in the jar cache (may not exist yet;
    `jars.ensure_offloaders` fills it)."""
    return resolved_offloaders(layout.jar_cache, offloaders_version(layout.recipes))


def pulsar_spec(layout: EngineLayout) -> EngineSpec:
    return EngineSpec(
        name="pulsar",
        title="Apache Pulsar standalone",
        version_property="pulsar.version",
        main_class="org.apache.pulsar.PulsarStandaloneStarter",
        ports=(layout.pulsar_broker_port, layout.pulsar_http_port, layout.bookie_port),
    )


def cassandra_spec(layout: EngineLayout) -> EngineSpec:
    return EngineSpec(
        name="cassandra",
        title="Apache Cassandra",
        version_property="cassandra.version",
        main_class="org.apache.cassandra.service.CassandraDaemon",
        ports=(layout.cql_port, layout.cassandra_storage_port),
    )


def all_specs(layout: EngineLayout) -> tuple[EngineSpec, ...]:
    return (pulsar_spec(layout), cassandra_spec(layout))


def jvm_options(layout: EngineLayout, spec: EngineSpec) -> list[str]:
    """The engine's `engines/<name>/jvm.options`, one option per line ('--add-opens X' lines split in two)."""
    options: list[str] = []
    for raw in (layout.recipes / spec.name / "jvm.options").read_text().splitlines():
        option = raw.strip()
        if option and not option.startswith("#"):
            options.extend(option.split(" ", 1))
    return options


OFFLOAD_SITE = "filesystem_offload_core_site.xml"  # the Hadoop configuration the filesystem offloader reads


def _render(template: Path, target: Path, values: dict[str, object]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(Template(template.read_text()).substitute({k: str(v) for k, v in values.items()}))


def render_config(layout: EngineLayout, spec: EngineSpec) -> None:
    """Write the engine's config files into its conf dir (idempotent: same layout → same files)."""
    recipes, conf, data = layout.recipes / spec.name, spec.conf_dir(layout), spec.data_dir(layout)
    data.mkdir(parents=True, exist_ok=True)
    values: dict[str, object] = {
        "host": layout.host,
        "broker_port": layout.pulsar_broker_port,
        "http_port": layout.pulsar_http_port,
        "bookie_port": layout.bookie_port,
        "cql_port": layout.cql_port,
        "storage_port": layout.cassandra_storage_port,
        "data_dir": data,
    }
    if spec.name == "pulsar":
        values |= {
            "conf_dir": conf,
            "offload_dir": pulsar_offload_dir(layout),
            "offloaders_dir": pulsar_offloaders_dir(layout),
        }
        _render(recipes / "standalone.conf", conf / "standalone.conf", values)
        _render(recipes / "log4j2.xml", conf / "log4j2.xml", values)
        _render(recipes / OFFLOAD_SITE, conf / OFFLOAD_SITE, values)
    else:
        _render(recipes / "cassandra.yaml", conf / "cassandra.yaml", values)
        _render(recipes / "logback.xml", conf / "logback.xml", values)


def command(layout: EngineLayout, spec: EngineSpec, java: Path, lib: Path) -> list[str]:
    """The full command line that starts the engine in the foreground (its cwd must be its data dir)."""
    conf, data = spec.conf_dir(layout), spec.data_dir(layout)
    classpath = f"{conf}:{lib}/*"
    base = [str(java), *jvm_options(layout, spec)]
    if spec.name == "pulsar":
        return [
            *base, "-cp", classpath, spec.main_class,
            "--config", str(conf / "standalone.conf"), "-nfw", "-nss",
            "--metadata-dir", str(data / "metadata"),
            "--bookkeeper-dir", str(data / "bookkeeper"),
            "--bookkeeper-port", str(layout.bookie_port),
        ]  # fmt: skip
    jamm = next(lib.glob("jamm-*.jar"))
    return [
        *base,
        f"-javaagent:{jamm}",
        f"-Dcassandra.config=file://{conf / 'cassandra.yaml'}",
        f"-Dcassandra.storagedir={data}",
        f"-Dlogback.configurationFile=file://{conf / 'logback.xml'}",
        "-cp", classpath, spec.main_class,
    ]  # fmt: skip
