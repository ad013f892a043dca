"""`gnomon web`: serve the dashboard and QueryService over gRPC-web / Connect (HTTP/1.1) until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gnomon.cli.serving import EnginesUnreachable, listen_changes, query_deps, stop_on_signals, wait_for

if TYPE_CHECKING:  # the server's modules (starlette, uvicorn, pandas, the engine) load only when it runs
    from query_svc.web.settings import WebSettings

log = logging.getLogger("gnomon.web")

DESCRIPTION = """\
Serve the web dashboard at http://HOST:PORT/ and QueryService to browsers over gRPC-web and Connect
(POST /gnomon.v1.QueryService/<Method>), from the same query engine, read-token auth and merchant isolation as
the gRPC query service. Open the page and paste a merchant's read token (`gnomon key create --merchant ID
--kind read`); the browser remembers it.

Every option below can also be set with the GNOMON_* variable named in its help; flags win. Engines come from
GNOMON_ENGINES (embedded: SQLite under GNOMON_DATA_DIR; real: Cassandra/Scylla). Build the dashboard first with
`make dashboard` (npm ci && npm run build in dashboard/).
"""


def register(subparsers: Any) -> None:
    """Add `web` to the `gnomon` command line."""
    p = subparsers.add_parser(
        "web",
        help="serve the web dashboard and gRPC-web access to the query service",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", help="address to listen on (GNOMON_WEB_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port; 0 picks a free one (GNOMON_WEB_PORT, default 8088)")
    p.add_argument(
        "--cors-origins",
        metavar="ORIGINS",
        help="comma-separated origins whose pages may call the API, e.g. https://app.example.com"
        " (GNOMON_WEB_CORS_ORIGINS; default: same origin only)",
    )
    p.add_argument("--static-dir", metavar="DIR", help="the built dashboard (GNOMON_WEB_STATIC_DIR, dashboard/dist)")
    p.add_argument("--workers", type=int, help="threads running queries (GNOMON_WEB_WORKERS, default 8)")
    p.set_defaults(handler=run)


def settings_from_args(args: argparse.Namespace) -> WebSettings:
    """Environment first, then flags. Raises SettingsError naming the offending flag or variable."""
    from query_svc.web.settings import WebSettings, parse_origins

    settings = WebSettings.from_env()
    changes = listen_changes(args)
    if args.cors_origins is not None:
        changes["cors_origins"] = parse_origins(args.cors_origins, "--cors-origins")
    if args.static_dir:
        changes["static_dir"] = Path(args.static_dir).expanduser().resolve()
    if args.workers is not None:
        changes["workers"] = args.workers
    return replace(settings, **changes) if changes else settings


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT, then let calls in flight finish and exit (0 on a clean stop)."""
    from gnomon.telemetry import setup_telemetry
    from query_svc.web.server import create_web_server
    from query_svc.web.static import NOT_BUILT

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from_args(args)
    telemetry = setup_telemetry(settings.query.telemetry, install_global=True)
    try:
        with query_deps(settings.common, telemetry) as deps:
            try:
                server, port = create_web_server(settings, deps)
            except RuntimeError as exc:
                print(f"gnomon: {exc}", file=sys.stderr)
                return 1
            stop = stop_on_signals()
            server.start()
            scheme = "https" if settings.query.tls_cert else "http"
            host = f"[{settings.host}]" if ":" in settings.host else settings.host
            print(f"dashboard on {scheme}://{host}:{port}/", flush=True)
            if not (settings.static_dir / "index.html").is_file():
                print(f"gnomon: {NOT_BUILT.strip()}", file=sys.stderr)
            wait_for(stop)
            log.info("stopping: letting calls in flight finish for up to %.1f s", settings.grace_s)
            server.stop()
    except EnginesUnreachable as exc:
        print(f"gnomon: {exc}", file=sys.stderr)
        return 1
    finally:
        telemetry.shutdown()
    return 0
