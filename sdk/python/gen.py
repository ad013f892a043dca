"""Generate the SDK's private copy of the Gnomon contract from `proto/gnomon/v1`.

The SDK must not import the server package `gnomon`, so it ships its own generated modules under
`src/gnomon_sdk/_proto/gnomon/v1/` (event_pb2, collector_pb2, their `_grpc` modules and `.pyi` stubs).
protoc runs with `-I <repo>/proto`, so the descriptors keep the file names `gnomon/v1/*.proto` and the
package `gnomon.v1` byte for byte; only the Python import paths are rewritten to the `gnomon_sdk._proto`
namespace. Keeping the descriptors identical lets the SDK and the server package live in one process:
protobuf's default pool accepts the same file twice only when both copies are identical, which `--check` (and
tests/unit/test_sdk_contract_fresh.py) guarantees.

Usage (dev environment only: needs grpcio-tools and mypy-protobuf, not shipped with the SDK):

    python sdk/python/gen.py            # rewrite src/gnomon_sdk/_proto
    python sdk/python/gen.py --check    # exit 1 when the copy is stale vs proto/

Deterministic: same protos + same grpcio-tools/mypy-protobuf give the same bytes.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

SDK_ROOT = Path(__file__).resolve().parent
DEFAULT_PROTO_ROOT = SDK_ROOT.parents[1] / "proto"
TARGET_ROOT = SDK_ROOT / "src" / "gnomon_sdk" / "_proto"
PROTOS = ("gnomon/v1/event.proto", "gnomon/v1/collector.proto")
NAMESPACE = "gnomon_sdk._proto"
INIT_TEXT = '"""Generated copy of the Gnomon contract (do not edit; run `python sdk/python/gen.py`)."""\n'
PACKAGES = ("", "gnomon", "gnomon/v1")  # relative to TARGET_ROOT; each gets an __init__.py

_FROM_IMPORT = re.compile(r"^from gnomon\.v1 import ", re.MULTILINE)
_MODULE_NAME = re.compile(r"'gnomon\.v1\.(\w+_pb2)'")


def rewrite(text: str) -> str:
    """Move a generated module from `gnomon.v1` to `gnomon_sdk._proto.gnomon.v1` (imports and module names).

    Descriptor contents (file names, package `gnomon.v1`, method paths like `/gnomon.v1.CollectorService/...`)
    are left alone on purpose: they are the wire contract.
    """
    text = _FROM_IMPORT.sub(f"from {NAMESPACE}.gnomon.v1 import ", text)
    return _MODULE_NAME.sub(rf"'{NAMESPACE}.gnomon.v1.\1'", text)


def generate(proto_root: Path = DEFAULT_PROTO_ROOT) -> dict[str, bytes]:
    """Generate the copy in memory: relative path under `gnomon_sdk/_proto` -> file bytes.

    Raises RuntimeError when protoc fails (its messages are on stderr) or a proto file is missing.
    """
    missing = [p for p in PROTOS if not (proto_root / p).is_file()]
    if missing:
        raise RuntimeError(f"proto files not found under {proto_root}: {', '.join(missing)}")
    well_known = Path(protoc.__file__).parent / "_proto"
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        code = protoc.main(
            [
                "protoc",
                f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
                f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
                f"-I{proto_root}",
                f"-I{well_known}",
                f"--python_out={out}",
                f"--grpc_python_out={out}",
                f"--mypy_out={out}",
                f"--mypy_grpc_out={out}",
                *PROTOS,
            ]
        )
        if code != 0:
            raise RuntimeError(f"protoc failed with exit code {code}; see the messages above")
        files = {
            str(path.relative_to(out)): rewrite(path.read_text()).encode()
            for path in sorted(out.rglob("*"))
            if path.is_file()
        }
    for package in PACKAGES:
        files[str(Path(package) / "__init__.py")] = INIT_TEXT.encode()
    return files


def current() -> dict[str, bytes]:
    """The generated files currently in `gnomon_sdk/_proto` (caches excluded)."""
    if not TARGET_ROOT.exists():
        return {}
    return {
        str(p.relative_to(TARGET_ROOT)): p.read_bytes()
        for p in sorted(TARGET_ROOT.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def stale_files(proto_root: Path = DEFAULT_PROTO_ROOT) -> list[str]:
    """Relative paths that differ from, are missing in, or are extra in `gnomon_sdk/_proto`."""
    fresh, have = generate(proto_root), current()
    return sorted(n for n in set(fresh) | set(have) if fresh.get(n) != have.get(n))


def write(proto_root: Path = DEFAULT_PROTO_ROOT) -> list[str]:
    """Replace `gnomon_sdk/_proto` with a fresh copy; returns the written relative paths."""
    files = generate(proto_root)
    if TARGET_ROOT.exists():
        shutil.rmtree(TARGET_ROOT)
    for rel, data in files.items():
        path = TARGET_ROOT / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return sorted(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python sdk/python/gen.py",
        description="Generate gnomon_sdk/_proto from proto/gnomon/v1 (event + collector).",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the SDK's copy is stale")
    parser.add_argument("--proto-root", type=Path, default=DEFAULT_PROTO_ROOT, help="directory holding gnomon/v1")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.proto_root)
        if stale:
            print("SDK contract copy is stale: " + ", ".join(stale) + "\nrun `python sdk/python/gen.py`")
            return 1
        print("SDK contract copy is up to date")
        return 0
    written = write(args.proto_root)
    print(f"generated {len(written)} files into {TARGET_ROOT.relative_to(SDK_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
