"""Generate the Python contract (`gnomon.v1`) from `proto/gnomon/v1/*.proto`.

`python -m gnomon.tools.protogen` rewrites the generated files; `--check` only compares and exits 1 when the
committed code is stale. Generation is deterministic: same protos + same grpcio-tools → same bytes.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "proto"
PACKAGE_DIR = REPO_ROOT / "gnomon" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
INIT_TEXT = '"""Generated protobuf/gRPC code for gnomon.v1 (do not edit; run `make proto`)."""\n'


def proto_files() -> list[Path]:
    """All contract files, sorted so the generator sees them in a stable order."""
    return sorted((PROTO_ROOT / "gnomon" / "v1").glob("*.proto"))


def generate_into(out_dir: Path) -> list[Path]:
    """Run protoc (python, grpc, mypy stubs) into ``out_dir``; return the generated files.

    Raises RuntimeError with protoc's exit code when a proto does not compile.
    """
    well_known = Path(protoc.__file__).parent / "_proto"
    bin_dir = Path(sys.executable).parent
    args = [
        "protoc",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *[str(p.relative_to(PROTO_ROOT)) for p in proto_files()],
    ]
    code = protoc.main(args)
    if code != 0:
        raise RuntimeError(f"protoc failed with exit code {code}; see the messages above")
    generated = out_dir / "gnomon" / "v1"
    (generated / "__init__.py").write_text(INIT_TEXT)
    return sorted(generated.iterdir())


def committed_files() -> list[Path]:
    """The generated files currently in the package directory."""
    files = [p for p in PACKAGE_DIR.iterdir() if p.name.endswith(GENERATED_SUFFIXES)]
    return sorted([*files, PACKAGE_DIR / "__init__.py"])


def stale_files() -> list[str]:
    """Names of generated files that differ from, are missing in, or are extra in `gnomon/v1`."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = {p.name: p for p in generate_into(Path(tmp))}
        current = {p.name: p for p in committed_files() if p.exists()} if PACKAGE_DIR.exists() else {}
        names = sorted(set(fresh) | set(current))
        return [
            n
            for n in names
            if n not in fresh or n not in current or not filecmp.cmp(fresh[n], current[n], shallow=False)
        ]


def write() -> None:
    """Replace the generated files in `gnomon/v1` with freshly generated ones."""
    PACKAGE_DIR.mkdir(parents=True, exist_ok=True)
    for old in committed_files():
        old.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for path in generate_into(Path(tmp)):
            shutil.copyfile(path, PACKAGE_DIR / path.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gnomon.tools.protogen",
        description="Generate gnomon.v1 Python code from proto/gnomon/v1/*.proto.",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed code is stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        if stale:
            print("generated code is stale: " + ", ".join(stale) + "\nrun `make proto` and commit the result")
            return 1
        print("generated code is up to date")
        return 0
    write()
    print(f"generated {len(committed_files())} files into {PACKAGE_DIR.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
