"""Entry point of the `gnomon` console script.

Every command group lives in its own module that exposes ``register(subparsers)``; the parser it adds sets
``handler`` to a function taking the parsed namespace and returning the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from gnomon.settings import SettingsError

COMMAND_MODULES: tuple[str, ...] = (
    "gnomon.cli.engines_cmd",
    "gnomon.cli.admin_cmd",
    "gnomon.cli.collector_cmd",
    "gnomon.cli.send_cmd",
    "gnomon.cli.aggregator_cmd",
    "gnomon.cli.reprocess_cmd",
    "gnomon.cli.query_cmd",
    "gnomon.cli.up_cmd",
    "gnomon.cli.web_cmd",
)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gnomon",
        description=(
            "Gnomon: a Google-Analytics-like backend. Collect events over gRPC, aggregate them hourly with Dask,"
            " query them over gRPC or the GA4 Data API."
        ),
        epilog="Run `gnomon COMMAND --help` for the options of one command. Settings come from GNOMON_* variables.",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns its exit code (2 for bad settings)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except SettingsError as exc:
        print(f"gnomon: invalid setting: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
