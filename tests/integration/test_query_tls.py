"""TLS and mTLS on the query port (same settings as the collector), with throw-away certificates."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from gnomon.control import KeyKind, SqliteControlStore
from gnomon.rollups.sqlite_store import SqliteRollupStore
from gnomon.rollups.sqlite_versions import SqliteVersionRegistry
from gnomon.settings import CommonSettings, SettingsError
from gnomon.telemetry import TelemetrySettings, setup_telemetry
from gnomon.v1 import query_pb2 as q
from gnomon.v1 import query_pb2_grpc
from query_svc.server import QueryDeps, create_server
from query_svc.settings import QuerySettings
from query_svc.testing import bearer
from tests.integration.test_collector_tls import _cert, _key_pem, _pem


@pytest.mark.parametrize("mutual", [False, True], ids=["tls", "mtls"])
def test_tls(tmp_path: Path, mutual: bool) -> None:
    ca = _cert("gnomon test CA", None, ca=True)
    server_cert, server_key = _cert("localhost", ca, ca=False)
    client_cert, client_key = _cert("client", ca, ca=False)
    (tmp_path / "ca.pem").write_bytes(_pem(ca[0]))
    (tmp_path / "server.pem").write_bytes(_pem(server_cert))
    (tmp_path / "server.key").write_bytes(_key_pem(server_key))
    control = SqliteControlStore(tmp_path / "control.sqlite3")
    merchant = control.create_merchant("T", "UTC", "EUR").merchant_id
    token = control.create_key(merchant, KeyKind.READ).secret
    store = SqliteRollupStore(tmp_path / "rollups.sqlite3")
    registry = SqliteVersionRegistry(tmp_path / "rollups.sqlite3")
    telemetry = setup_telemetry(TelemetrySettings())
    settings = QuerySettings(
        common=CommonSettings.from_env({"GNOMON_DATA_DIR": str(tmp_path)}),
        port=0,
        tls_cert=tmp_path / "server.pem",
        tls_key=tmp_path / "server.key",
    )
    if mutual:
        settings = replace(settings, tls_client_ca=tmp_path / "ca.pem")
    server, port = create_server(settings, QueryDeps(store, registry, control, telemetry))
    server.start()
    request = q.MetadataRequest()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as plain, pytest.raises(grpc.RpcError):  # plaintext refused
            query_pb2_grpc.QueryServiceStub(plain).Metadata(request, metadata=bearer(token), timeout=5)
        chain = (_key_pem(client_key), _pem(client_cert)) if mutual else (None, None)
        credentials = grpc.ssl_channel_credentials(_pem(ca[0]), *chain)
        with grpc.secure_channel(f"localhost:{port}", credentials) as channel:
            answer = query_pb2_grpc.QueryServiceStub(channel).Metadata(request, metadata=bearer(token), timeout=10)
            assert answer.currency_code == "EUR"
        if mutual:  # without a client certificate
            anonymous = grpc.ssl_channel_credentials(_pem(ca[0]))
            with grpc.secure_channel(f"localhost:{port}", anonymous) as channel, pytest.raises(grpc.RpcError):
                query_pb2_grpc.QueryServiceStub(channel).Metadata(request, metadata=bearer(token), timeout=5)
    finally:
        server.stop(0).wait(5)
        telemetry.shutdown()
        registry.close()
        store.close()
        control.close()


def test_tls_settings_are_checked(tmp_path: Path) -> None:
    common = CommonSettings.from_env({"GNOMON_DATA_DIR": str(tmp_path)})
    with pytest.raises(SettingsError, match="together"):
        QuerySettings(common=common, tls_cert=tmp_path / "x.pem")
    with pytest.raises(SettingsError, match="does not exist"):
        QuerySettings(common=common, tls_cert=tmp_path / "x.pem", tls_key=tmp_path / "y.pem")
