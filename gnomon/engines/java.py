"""Find the JDK 17 the engines run on and check it is new enough.

OpenJDK 17 before 17.0.17 has a JVM bug that Pulsar documents (JDK-8351933); Cassandra 5.0 needs Java 17
(it does not start on 25). `engines/ensure-jdk.sh` (run by `make setup`) installs Debian's newer openjdk-17.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from gnomon.engines.errors import EngineError

MIN_UPDATE = 17
_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?(?:\.(\d+))?')


def parse_java_version(text: str) -> tuple[int, int, int]:
    """(feature, interim, update) from `java -version` output; raises EngineError if there is none."""
    match = _VERSION.search(text)
    if not match:
        raise EngineError(f"cannot read a Java version from: {text.strip()[:200]!r}")
    return int(match.group(1)), int(match.group(2) or 0), int(match.group(3) or 0)


def java17(java_home: Path) -> Path:
    """Path of the `java` binary of ``java_home`` after checking it is 17.0.17 or newer 17.x.

    Blocks for one `java -version` call. Raises EngineError with the fix when missing or unsuitable.
    """
    binary = java_home / "bin" / "java"
    hint = "run `make setup` (it installs Debian's openjdk-17) or set GNOMON_JAVA17_HOME to a JDK 17.0.17+"
    if not binary.exists():
        raise EngineError(f"no Java at {binary}; {hint}")
    out = subprocess.run([str(binary), "-version"], capture_output=True, text=True, check=False)
    feature, _, update = parse_java_version(out.stderr + out.stdout)
    if feature != 17 or update < MIN_UPDATE:
        raise EngineError(f"{binary} is Java {feature}.x update {update}; the engines need 17.0.{MIN_UPDATE}+; {hint}")
    return binary
