"""Resolve an engine's jars from Maven Central, once, into the jar cache.

Each engine has a pinned pom under `engines/<engine>/pom.xml`; its jars land in
`<jar_cache>/<engine>-<version>/lib`. A directory is used only once it is complete (resolved into a temporary
directory, then renamed), so an interrupted download is redone, never half-used.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
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
    if shutil.which("mvn") is None:
        raise EngineError("Maven (`mvn`) is not on PATH; install it (apt-get install maven) and retry")
    lib.parent.mkdir(parents=True, exist_ok=True)
    print(f"resolving {engine} {version} from Maven Central into {lib} (once) ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=lib.parent, prefix=".resolving-") as tmp:
        cmd = [
            "mvn", "-B", "-q", "-s", str(recipes / "maven-settings.xml"), "-f", str(pom),
            "dependency:copy-dependencies", f"-DoutputDirectory={tmp}/lib",
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise EngineError(f"Maven could not resolve {engine} {version} (pom: {pom}):\n{tail}")
        Path(tmp, "lib").rename(lib)
    print(f"resolved {engine} {version} in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return lib


def directory_size(path: Path) -> int:
    """Total bytes of the files under ``path`` (0 if it does not exist)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0
