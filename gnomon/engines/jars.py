"""Resolve an engine's jars from Maven Central, once, into the jar cache.

Each engine has a pinned pom under `engines/<engine>/pom.xml`; its jars land in
`<jar_cache>/<engine>-<version>/lib`. Pulsar's tiered-storage offloader (a NAR, pinned in
`engines/pulsar/offloaders.pom.xml`) lands in `<jar_cache>/pulsar-offloaders-<version>/offloaders/*.nar`.
A directory is used only once it is complete (resolved into a temporary directory, then renamed), so an
interrupted download is redone, never half-used.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gnomon.engines.errors import EngineError


def pom_version(pom: Path, prop: str) -> str:
    """The value of ``<prop>`` in the pom's <properties>; raises EngineError if absent."""
    match = re.search(rf"<{re.escape(prop)}>([^<]+)</{re.escape(prop)}>", pom.read_text())
    if not match:
        raise EngineError(f"{pom} has no <{prop}> property")
    return match.group(1).strip()


def resolved_lib(jar_cache: Path, engine: str, version: str) -> Path:
    return jar_cache / f"{engine}-{version}" / "lib"


OFFLOADERS_POM = "offloaders.pom.xml"  # under engines/pulsar/
OFFLOADER_VERSION_PROPERTY = "offloader.version"


def ensure_jars(recipes: Path, jar_cache: Path, engine: str, version_property: str) -> Path:
    """Return the directory holding every jar of ``engine``, resolving it with Maven first if needed.

    Blocks for the Maven run (about a minute per engine on a fresh machine, instant afterwards).
    Raises EngineError with Maven's last lines when resolution fails.
    """
    pom = recipes / engine / "pom.xml"
    version = pom_version(pom, version_property)
    lib = resolved_lib(jar_cache, engine, version)
    if lib.is_dir() and any(lib.glob("*.jar")):
        return lib
    _maven_copy(recipes, pom, lib, f"{engine} {version}")
    return lib


def offloaders_version(recipes: Path) -> str:
    """The pinned version of Pulsar's filesystem offloader (``offloader.version`` in engines/pulsar/)."""
    return pom_version(recipes / "pulsar" / OFFLOADERS_POM, OFFLOADER_VERSION_PROPERTY)


def resolved_offloaders(jar_cache: Path, version: str) -> Path:
    """Where the offloader NARs of ``version`` live once resolved (Pulsar's ``offloadersDirectory``)."""
    return jar_cache / f"pulsar-offloaders-{version}" / "offloaders"


def ensure_offloaders(recipes: Path, jar_cache: Path) -> Path:
    """Return the directory holding Pulsar's tiered-storage offloader NAR(s), resolving them first if needed.

    Maven Central publishes the NAR with a .jar extension; it is copied without dependencies (they are bundled
    inside it) and renamed to .nar, the only files Pulsar's offloadersDirectory scan picks up. Blocks for the
    Maven run (a ~50 MB download the first time). Raises EngineError when resolution fails.
    """
    pom = recipes / "pulsar" / OFFLOADERS_POM
    version = offloaders_version(recipes)
    target = resolved_offloaders(jar_cache, version)
    if target.is_dir() and any(target.glob("*.nar")):
        return target

    def to_nar(folder: Path) -> None:
        for jar in folder.glob("*.jar"):
            jar.rename(jar.with_suffix(".nar"))

    _maven_copy(recipes, pom, target, f"Pulsar tiered-storage offloaders {version}", finish=to_nar)
    return target


def _maven_copy(
    recipes: Path, pom: Path, target: Path, what: str, finish: Callable[[Path], None] | None = None
) -> None:
    """`mvn dependency:copy-dependencies` of ``pom`` into a temporary folder, ``finish`` it, rename to ``target``."""
    if shutil.which("mvn") is None:
        raise EngineError("Maven (`mvn`) is not on PATH; install it (apt-get install maven) and retry")
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"resolving {what} from Maven Central into {target} (once) ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".resolving-") as tmp:
        out = Path(tmp, target.name)
        cmd = [
            "mvn", "-B", "-q", "-s", str(recipes / "maven-settings.xml"), "-f", str(pom),
            "dependency:copy-dependencies", f"-DoutputDirectory={out}",
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise EngineError(f"Maven could not resolve {what} (pom: {pom}):\n{tail}")
        if finish is not None:
            finish(out)
        out.rename(target)
    print(f"resolved {what} in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)


def directory_size(path: Path) -> int:
    """Total bytes of the files under ``path`` (0 if it does not exist)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0
