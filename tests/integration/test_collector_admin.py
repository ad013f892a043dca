"""AdminService (hosted by the collector when an admin token is set) over real gRPC and a SQLite store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from collector_svc.server import CollectorDeps
from collector_svc.settings import CollectorSettings
from collector_svc.testing import RunningCollector, bearer, running_collector
from gnomon.control import SqliteControlStore
from gnomon.eventlog.embedded import EmbeddedEventLog
from gnomon.settings import CommonSettings
from gnomon.telemetry import TelemetrySettings, setup_telemetry
from gnomon.v1 import admin_pb2, admin_pb2_grpc, collector_pb2, event_pb2

TOKEN = "admin-token-0123456789"


@dataclass
class Admin:
    collector: RunningCollector
    stub: admin_pb2_grpc.AdminServiceStub
    auth: tuple[tuple[str, str], ...]


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[Admin]:
    control = SqliteControlStore(tmp_path / "control.sqlite3")
    log = EmbeddedEventLog(tmp_path / "log", fsync=False)
    settings = CollectorSettings(
        common=CommonSettings.from_env({"GNOMON_DATA_DIR": str(tmp_path)}), port=0, admin_token=TOKEN
    )
    deps = CollectorDeps(event_log=log, control=control, telemetry=setup_telemetry(TelemetrySettings()))
    with running_collector(settings, deps) as collector:
        yield Admin(collector, admin_pb2_grpc.AdminServiceStub(collector.channel), bearer(TOKEN))
    log.close()
    control.close()


def test_merchant_and_key_lifecycle(admin: Admin) -> None:
    s, auth = admin.stub, admin.auth
    created = s.CreateMerchant(
        admin_pb2.CreateMerchantRequest(name="Shop", time_zone="Asia/Kathmandu", currency="NPR", merchant_id="shop-1"),
        metadata=auth,
    )
    assert (created.merchant_id, created.time_zone, created.currency) == ("shop-1", "Asia/Kathmandu", "NPR")
    assert s.GetMerchant(admin_pb2.GetMerchantRequest(merchant_id="shop-1"), metadata=auth) == created
    listed = s.ListMerchants(admin_pb2.ListMerchantsRequest(), metadata=auth)
    assert [m.merchant_id for m in listed.merchants] == ["shop-1"]

    key = s.CreateKey(
        admin_pb2.CreateKeyRequest(merchant_id="shop-1", kind=admin_pb2.KEY_KIND_WRITE, label="web"), metadata=auth
    )
    assert key.secret.startswith(f"gn_w_{key.key.key_id}_")
    assert not key.key.HasField("revoked_at")
    keys = s.ListKeys(admin_pb2.ListKeysRequest(merchant_id="shop-1"), metadata=auth)
    assert [k.key_id for k in keys.keys] == [key.key.key_id]
    assert "secret" not in str(keys)

    ev = event_pb2.Event(event_id="e1", name="page_view", client_id="c")
    ev.event_time.FromDatetime(datetime.now(UTC))
    sent = admin.collector.stub.Collect(collector_pb2.EventBatch(events=[ev]), metadata=bearer(key.secret))
    assert sent.accepted == 1

    revoked = s.RevokeKey(admin_pb2.RevokeKeyRequest(key_id=key.key.key_id), metadata=auth)
    assert revoked.HasField("revoked_at")


Stub = admin_pb2_grpc.AdminServiceStub
Meta = tuple[tuple[str, str], ...]


def _bad_zone(s: Stub, a: Meta) -> object:
    return s.CreateMerchant(
        admin_pb2.CreateMerchantRequest(name="X", time_zone="Nowhere/City", currency="EUR"), metadata=a
    )


def _no_merchant(s: Stub, a: Meta) -> object:
    return s.GetMerchant(admin_pb2.GetMerchantRequest(merchant_id="absent"), metadata=a)


def _key_no_merchant(s: Stub, a: Meta) -> object:
    request = admin_pb2.CreateKeyRequest(merchant_id="absent", kind=admin_pb2.KEY_KIND_READ)
    return s.CreateKey(request, metadata=a)


def _no_kind(s: Stub, a: Meta) -> object:
    return s.CreateKey(admin_pb2.CreateKeyRequest(merchant_id="absent"), metadata=a)


def _revoke_absent(s: Stub, a: Meta) -> object:
    return s.RevokeKey(admin_pb2.RevokeKeyRequest(key_id="absent"), metadata=a)


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (_bad_zone, grpc.StatusCode.INVALID_ARGUMENT),
        (_no_merchant, grpc.StatusCode.NOT_FOUND),
        (_key_no_merchant, grpc.StatusCode.NOT_FOUND),
        (_no_kind, grpc.StatusCode.INVALID_ARGUMENT),
        (_revoke_absent, grpc.StatusCode.NOT_FOUND),
    ],
)
def test_errors_have_specific_codes(admin: Admin, call: Callable[[Stub, Meta], object], code: grpc.StatusCode) -> None:
    with pytest.raises(grpc.RpcError) as info:
        call(admin.stub, admin.auth)
    assert info.value.code() == code
    assert info.value.details()


def test_duplicate_merchant_already_exists(admin: Admin) -> None:
    request = admin_pb2.CreateMerchantRequest(name="X", time_zone="UTC", currency="EUR", merchant_id="dup")
    admin.stub.CreateMerchant(request, metadata=admin.auth)
    with pytest.raises(grpc.RpcError) as info:
        admin.stub.CreateMerchant(request, metadata=admin.auth)
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.parametrize("metadata", [(), bearer("wrong-token-000000000"), (("authorization", "Basic x"),)])
def test_admin_token_required(admin: Admin, metadata: tuple[tuple[str, str], ...]) -> None:
    with pytest.raises(grpc.RpcError) as info:
        admin.stub.ListMerchants(admin_pb2.ListMerchantsRequest(), metadata=metadata)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_write_key_is_not_an_admin_token(admin: Admin) -> None:
    s = admin.stub
    s.CreateMerchant(
        admin_pb2.CreateMerchantRequest(name="X", time_zone="UTC", currency="EUR", merchant_id="m-x"),
        metadata=admin.auth,
    )
    key = s.CreateKey(admin_pb2.CreateKeyRequest(merchant_id="m-x", kind=admin_pb2.KEY_KIND_WRITE), metadata=admin.auth)
    with pytest.raises(grpc.RpcError) as info:
        s.ListMerchants(admin_pb2.ListMerchantsRequest(), metadata=bearer(key.secret))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_admin_service_absent_without_token(tmp_path: Path) -> None:
    control = SqliteControlStore(tmp_path / "control.sqlite3")
    log = EmbeddedEventLog(tmp_path / "log", fsync=False)
    settings = CollectorSettings(common=CommonSettings.from_env({"GNOMON_DATA_DIR": str(tmp_path)}), port=0)
    deps = CollectorDeps(event_log=log, control=control, telemetry=setup_telemetry(TelemetrySettings()))
    try:
        with running_collector(settings, deps) as c, pytest.raises(grpc.RpcError) as info:
            admin_pb2_grpc.AdminServiceStub(c.channel).ListMerchants(
                admin_pb2.ListMerchantsRequest(), metadata=bearer(TOKEN)
            )
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        log.close()
        control.close()
