#!/usr/bin/env bash
# Makes sure an OpenJDK 17 at 17.0.17 or newer is installed: 17.0.15 has a JVM bug that Pulsar documents
# (JDK-8351933). Cassandra 5.0 needs Java 17 (it does not run on 25). Installs Debian's openjdk-17 when needed.
set -euo pipefail
JAVA_HOME_17="${GNOMON_JAVA17_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}"

version_ok() {
  local v
  v=$("$JAVA_HOME_17/bin/java" -version 2>&1 | sed -n 's/.*version "\(17[^"]*\)".*/\1/p' | head -1)
  [[ -n "$v" ]] || return 1
  local patch
  patch=$(echo "$v" | cut -d. -f3)
  [[ "${patch:-0}" -ge 17 ]]
}

if [[ -x "$JAVA_HOME_17/bin/java" ]] && version_ok; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "gnomon: need OpenJDK 17.0.17+ at $JAVA_HOME_17 (set GNOMON_JAVA17_HOME to another JDK 17);" \
       "install it with your package manager, e.g. apt-get install openjdk-17-jdk-headless" >&2
  exit 1
fi
echo "installing Debian's openjdk-17-jdk-headless (>= 17.0.17) ..."
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless openjdk-17-jre-headless >/dev/null
version_ok || { echo "gnomon: openjdk-17 from apt is still older than 17.0.17" >&2; exit 1; }
