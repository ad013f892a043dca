"""TLS and mTLS on the collector port, with throw-away certificates made by `cryptography`."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from collector_svc.server import CollectorDeps, create_server
from collector_svc.settings import CollectorSettings
from collector_svc.testing import bearer
from gnomon.control import KeyKind, SqliteControlStore
from gnomon.eventlog.embedded import EmbeddedEventLog
from gnomon.settings import CommonSettings
from gnomon.telemetry import TelemetrySettings, setup_telemetry
from gnomon.v1 import collector_pb2, collector_pb2_grpc, event_pb2


def _cert(
    name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, ca: bool
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


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
    secret = control.create_key(merchant, KeyKind.WRITE).secret
    log = EmbeddedEventLog(tmp_path / "log", fsync=False)
    settings = CollectorSettings(
        common=CommonSettings.from_env({"GNOMON_DATA_DIR": str(tmp_path)}),
        port=0,
        tls_cert=tmp_path / "server.pem",
        tls_key=tmp_path / "server.key",
    )
    if mutual:
        settings = replace(settings, tls_client_ca=tmp_path / "ca.pem")
    server, port = create_server(settings, CollectorDeps(log, control, setup_telemetry(TelemetrySettings())))
    server.start()
    ev = event_pb2.Event(event_id="tls-1", name="page_view", client_id="c")
    ev.event_time.FromDatetime(datetime.now(UTC))
    request = collector_pb2.EventBatch(events=[ev])
    try:
        client_creds = grpc.ssl_channel_credentials(
            root_certificates=_pem(ca[0]),
            private_key=_key_pem(client_key) if mutual else None,
            certificate_chain=_pem(client_cert) if mutual else None,
        )
        with grpc.secure_channel(f"localhost:{port}", client_creds) as channel:
            reply = collector_pb2_grpc.CollectorServiceStub(channel).Collect(
                request, metadata=bearer(secret), timeout=10
            )
        assert reply.accepted == 1
        with grpc.insecure_channel(f"127.0.0.1:{port}") as plain, pytest.raises(grpc.RpcError):
            collector_pb2_grpc.CollectorServiceStub(plain).Collect(request, metadata=bearer(secret), timeout=5)
        if mutual:
            no_client_cert = grpc.ssl_channel_credentials(root_certificates=_pem(ca[0]))
            with grpc.secure_channel(f"localhost:{port}", no_client_cert) as channel, pytest.raises(grpc.RpcError):
                collector_pb2_grpc.CollectorServiceStub(channel).Collect(request, metadata=bearer(secret), timeout=5)
    finally:
        server.stop(0).wait(10)
        log.close()
        control.close()
