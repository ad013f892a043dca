"""The gRPC-web / Connect server without a browser: wire format, errors, CORS, admission, static files, the CLI,
and the staleness check of the dashboard's generated client."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from gnomon.v1 import query_pb2 as q
from query_svc.web.bridge import CallAborted, QueryBridge, metadata_of
from query_svc.web.browser import DASHBOARD_DIR
from query_svc.web.connect import QueryServiceConnectApp, connect_error
from query_svc.web.testing import Dashboard, running_dashboard

ORIGIN = "https://dashboard.example.test"
GRPC_WEB = "application/grpc-web+proto"
TOTALS = q.TotalsRequest(date_range=q.DateRange(start_date="28daysAgo", end_date="yesterday"), metrics=["sessions"])


@pytest.fixture(scope="module")
def cors_stack(tmp_path_factory: pytest.TempPathFactory, dashboard_dist: Path) -> Iterator[Dashboard]:
    with running_dashboard(
        tmp_path_factory.mktemp("web") / "data", static_dir=dashboard_dist, cors_origins=(ORIGIN,)
    ) as d:
        yield d


def fetch(
    url: str, body: bytes | None = None, headers: dict[str, str] | None = None, method: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def grpc_web_call(stack: Dashboard, method: str, request: Message, token: str) -> tuple[bytes | None, dict[str, str]]:
    """One gRPC-web call: (the response message bytes or None, the trailers)."""
    payload = request.SerializeToString()
    status, headers, body = fetch(
        f"{stack.url}gnomon.v1.QueryService/{method}",
        struct.pack(">BI", 0, len(payload)) + payload,
        {"content-type": GRPC_WEB, "x-grpc-web": "1", "authorization": f"Bearer {token}", "grpc-timeout": "10S"},
    )
    assert status == 200 and headers["content-type"].startswith("application/grpc-web")
    message, trailers, at = None, {}, 0
    while at < len(body):
        flags, length = struct.unpack(">BI", body[at : at + 5])
        frame = body[at + 5 : at + 5 + length]
        at += 5 + length
        if flags & 0x80:
            for line in frame.decode().split("\r\n"):
                if line:
                    key, _, value = line.partition(":")
                    trailers[key.strip().lower()] = value.strip()
        else:
            message = frame
    return message, trailers


def test_grpc_web_answers_what_grpc_answers(cors_stack: Dashboard) -> None:
    message, trailers = grpc_web_call(cors_stack, "Totals", TOTALS, cors_stack.read_token)
    assert trailers["grpc-status"] == "0"
    assert message is not None
    web = q.ReportResponse.FromString(message)
    native = cors_stack.grpc.stub.Totals(TOTALS, metadata=(("authorization", f"Bearer {cors_stack.read_token}"),))
    web.metadata.from_cache = native.metadata.from_cache = False
    assert web == native
    metadata, _ = grpc_web_call(cors_stack, "Metadata", q.MetadataRequest(), cors_stack.read_token)
    assert metadata is not None and q.MetadataResponse.FromString(metadata).time_zone == "Asia/Kolkata"


def test_grpc_web_errors_carry_code_message_and_details(cors_stack: Dashboard) -> None:
    _, trailers = grpc_web_call(cors_stack, "Totals", TOTALS, "gn_r_0000000000000000_notasecret")
    assert trailers["grpc-status"] == str(grpc.StatusCode.UNAUTHENTICATED.value[0])
    _, trailers = grpc_web_call(cors_stack, "Totals", TOTALS, cors_stack.write_token)
    assert trailers["grpc-status"] == str(grpc.StatusCode.PERMISSION_DENIED.value[0])
    assert "write key" in urllib.parse.unquote(trailers["grpc-message"])
    other = q.TotalsRequest(merchant_id="someone-else", metrics=["sessions"])
    _, trailers = grpc_web_call(cors_stack, "Totals", other, cors_stack.read_token)
    assert trailers["grpc-status"] == str(grpc.StatusCode.PERMISSION_DENIED.value[0])
    bad = q.TotalsRequest(metrics=["nope"], date_range=q.DateRange(start_date="today", end_date="today"))
    _, trailers = grpc_web_call(cors_stack, "Totals", bad, cors_stack.read_token)
    assert trailers["grpc-status"] == str(grpc.StatusCode.INVALID_ARGUMENT.value[0])
    raw = trailers["grpc-status-details-bin"]
    details = status_pb2.Status.FromString(base64.b64decode(raw + "=" * (-len(raw) % 4)))
    violation = error_details_pb2.BadRequest()
    assert details.details[0].Unpack(violation)
    assert violation.field_violations[0].field == "metrics"


def test_connect_json_works_too(cors_stack: Dashboard) -> None:
    status, _, body = fetch(
        f"{cors_stack.url}gnomon.v1.QueryService/Metadata",
        b"{}",
        {"content-type": "application/json", "authorization": f"Bearer {cors_stack.read_token}"},
    )
    assert status == 200 and json.loads(body)["currencyCode"] == "INR"
    status, _, body = fetch(
        f"{cors_stack.url}gnomon.v1.QueryService/Metadata", b"{}", {"content-type": "application/json"}
    )
    assert status == 401 and json.loads(body)["code"] == "unauthenticated"


def test_cors_preflight_allows_the_configured_origin_only(cors_stack: Dashboard) -> None:
    url = f"{cors_stack.url}gnomon.v1.QueryService/Totals"
    ask = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type,x-grpc-web,x-user-agent,grpc-timeout",
    }
    status, headers, _ = fetch(url, headers={"origin": ORIGIN, **ask}, method="OPTIONS")
    assert status == 200
    assert headers["access-control-allow-origin"] == ORIGIN
    allowed = headers["access-control-allow-headers"].lower()
    assert all(h in allowed for h in ("authorization", "x-grpc-web", "grpc-timeout", "content-type"))
    status, headers, _ = fetch(url, headers={"origin": "https://evil.example", **ask}, method="OPTIONS")
    assert status == 400 and "access-control-allow-origin" not in headers
    payload = TOTALS.SerializeToString()
    status, headers, _ = fetch(
        url,
        struct.pack(">BI", 0, len(payload)) + payload,
        {"origin": ORIGIN, "content-type": GRPC_WEB, "authorization": f"Bearer {cors_stack.read_token}"},
    )
    assert headers["access-control-allow-origin"] == ORIGIN
    assert "grpc-status" in headers["access-control-expose-headers"].lower()


def test_static_files_and_cache_headers(cors_stack: Dashboard, dashboard_dist: Path) -> None:
    status, headers, body = fetch(cors_stack.url)
    assert status == 200 and b'<div id="app">' in body and headers["cache-control"] == "no-cache"
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    asset = next((dashboard_dist / "assets").glob("*.js")).name
    status, headers, _ = fetch(f"{cors_stack.url}assets/{asset}", headers={"accept-encoding": "gzip"})
    assert status == 200 and "immutable" in headers["cache-control"] and headers["content-encoding"] == "gzip"
    status, _, body = fetch(f"{cors_stack.url}overview")  # an app path: the page
    assert status == 200 and b'<div id="app">' in body
    status, _, _ = fetch(f"{cors_stack.url}assets/missing.js")
    assert status == 404
    for path in ("/../../etc/passwd", "/assets/../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd"):
        conn = http.client.HTTPConnection("127.0.0.1", cors_stack.web.port, timeout=10)
        conn.request("GET", path)
        reply = conn.getresponse()
        assert b"root:" not in reply.read(), path
        conn.close()


def test_an_unbuilt_dashboard_says_how_to_build_it(tmp_path: Path) -> None:
    with running_dashboard(tmp_path / "data", static_dir=tmp_path / "nothing-here") as d:
        status, _, body = fetch(d.url)
        assert status == 503 and b"make dashboard" in body
        assert fetch(d.url + "healthz")[0] == 200


class _SlowServicer:
    """Every method sleeps until released (to fill the admission limit)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        def method(request: Any, context: Any) -> Any:
            self.release.wait(10)
            return q.MetadataResponse(time_zone="UTC")

        return method


class _PassInterceptor(grpc.ServerInterceptor):
    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        return continuation(handler_call_details)


class _Ctx:
    timeout_ms = None

    class request_headers:  # stands in for connectrpc's Headers
        @staticmethod
        def allitems() -> list[tuple[str, str]]:
            return [("authorization", "Bearer x"), ("x-trace-bin", "AAA"), ("traceparent", "00-1-2-01")]


def test_admission_refuses_beyond_the_limit_at_once() -> None:
    servicer = _SlowServicer()
    with ThreadPoolExecutor(4) as pool:
        app = QueryServiceConnectApp(
            QueryBridge(servicer, _PassInterceptor()), pool, max_concurrent=2, default_timeout_s=5
        )

        async def scenario() -> list[Any]:
            first = [
                asyncio.create_task(app.calls.run("Metadata", q.MetadataRequest(), cast(Any, _Ctx()))) for _ in range(2)
            ]
            await asyncio.sleep(0.1)
            assert app.calls.in_flight == 2
            with pytest.raises(ConnectError) as refused:
                await app.calls.run("Metadata", q.MetadataRequest(), cast(Any, _Ctx()))
            assert refused.value.code is Code.RESOURCE_EXHAUSTED
            servicer.release.set()
            return list(await asyncio.gather(*first))

        done = asyncio.run(scenario())
        assert [r.time_zone for r in done] == ["UTC", "UTC"]
        assert app.calls.in_flight == 0


def test_metadata_and_status_mapping() -> None:
    assert metadata_of([("Authorization", "Bearer t"), ("x-bin", "a"), ("grpc-timeout", "1S")]) == (
        ("authorization", "Bearer t"),
    )

    class Status(grpc.Status):
        code = grpc.StatusCode.UNAVAILABLE
        details = "down"
        trailing_metadata = ()

    error = connect_error(CallAborted(Status()))
    assert error.code is Code.UNAVAILABLE and error.message == "down"


def test_gnomon_web_serves_until_sigterm(tmp_path: Path, dashboard_dist: Path) -> None:
    script = (
        "import argparse, sys\n"
        "from gnomon.cli import web_cmd\n"
        "p = argparse.ArgumentParser(); web_cmd.register(p.add_subparsers())\n"
        "a = p.parse_args(sys.argv[1:]); sys.exit(a.handler(a))\n"
    )
    env = {**os.environ, "GNOMON_DATA_DIR": str(tmp_path), "GNOMON_ENGINES": "embedded"}
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "web", "--port", "0", "--static-dir", str(dashboard_dist)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("dashboard on http://127.0.0.1:"), line + (proc.stderr.read() if proc.stderr else "")
        url = line.split()[-1]
        assert fetch(url + "healthz")[0] == 200
        assert fetch(url)[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_cors_origin_is_refused_with_the_flag_named(tmp_path: Path) -> None:
    from gnomon.cli import web_cmd

    done = subprocess.run(
        [sys.executable, "-c", "import argparse, sys\nfrom gnomon.cli import web_cmd\n"
         "p = argparse.ArgumentParser(); web_cmd.register(p.add_subparsers())\n"
         "a = p.parse_args(sys.argv[1:])\n"
         "try:\n    web_cmd.settings_from_args(a)\nexcept Exception as e:\n    print(e); sys.exit(2)\n",
         "web", "--cors-origins", "dashboard.example.com/path"],
        capture_output=True, text=True, env={**os.environ, "GNOMON_DATA_DIR": str(tmp_path)}, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "--cors-origins" in done.stdout
    assert web_cmd.DESCRIPTION


def test_generated_typescript_client_is_fresh() -> None:
    """dashboard/src/gen is what protoc-gen-es makes of proto/ now (else: `npm run gen` in dashboard/)."""
    started = time.monotonic()
    done = subprocess.run(
        ["node", "scripts/gen.mjs", "--check"], cwd=DASHBOARD_DIR, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - started < 120
