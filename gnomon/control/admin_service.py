"""gRPC AdminService over a ControlStore, guarded by a static admin token.

Callers send `authorization: Bearer <admin token>`; `AdminTokenInterceptor` refuses anything else with
UNAUTHENTICATED before the servicer runs (constant-time comparison). Store errors become statuses in one
place, `_status_of`. Secrets appear only in CreateKey's response; nothing here logs them.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from gnomon.control.port import (
    ApiKey,
    ControlError,
    ControlInvalid,
    ControlStore,
    ControlUnavailable,
    KeyKind,
    KeyNotFound,
    Merchant,
    MerchantExists,
    MerchantNotFound,
)
from gnomon.v1 import admin_pb2, admin_pb2_grpc

ADMIN_SERVICE = "gnomon.v1.AdminService"
_ADMIN_PREFIX = f"/{ADMIN_SERVICE}/"

_KIND_TO_PROTO = {KeyKind.WRITE: admin_pb2.KEY_KIND_WRITE, KeyKind.READ: admin_pb2.KEY_KIND_READ}
_KIND_FROM_PROTO = {v: k for k, v in _KIND_TO_PROTO.items()}

R = TypeVar("R")


def bearer_token(metadata: Any) -> str | None:
    """The token of the first `authorization: Bearer <token>` entry of gRPC metadata, if any."""
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def _timestamp(value: Any) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def merchant_to_proto(m: Merchant) -> admin_pb2.Merchant:
    return admin_pb2.Merchant(
        merchant_id=m.merchant_id,
        name=m.name,
        time_zone=m.time_zone,
        currency=m.currency,
        created_at=_timestamp(m.created_at),
    )


def key_to_proto(k: ApiKey) -> admin_pb2.Key:
    msg = admin_pb2.Key(
        key_id=k.key_id,
        merchant_id=k.merchant_id,
        kind=_KIND_TO_PROTO[k.kind],
        label=k.label,
        created_at=_timestamp(k.created_at),
    )
    if k.revoked_at is not None:
        msg.revoked_at.CopyFrom(_timestamp(k.revoked_at))
    return msg


def _status_of(exc: ControlError) -> grpc.StatusCode:
    """The one mapping of control-store errors to gRPC status codes."""
    if isinstance(exc, ControlInvalid):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, MerchantExists):
        return grpc.StatusCode.ALREADY_EXISTS
    if isinstance(exc, MerchantNotFound | KeyNotFound):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, ControlUnavailable):
        return grpc.StatusCode.UNAVAILABLE
    return grpc.StatusCode.INTERNAL


def _call(context: grpc.ServicerContext, fn: Callable[[], R]) -> R:
    try:
        return fn()
    except ControlError as exc:
        context.abort(_status_of(exc), str(exc))


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    """Merchants and keys over gRPC; every method is one blocking store call."""

    def __init__(self, store: ControlStore) -> None:
        self._store = store

    def CreateMerchant(
        self, request: admin_pb2.CreateMerchantRequest, context: grpc.ServicerContext
    ) -> admin_pb2.Merchant:
        merchant = _call(
            context,
            lambda: self._store.create_merchant(
                request.name, request.time_zone, request.currency, request.merchant_id or None
            ),
        )
        return merchant_to_proto(merchant)

    def GetMerchant(self, request: admin_pb2.GetMerchantRequest, context: grpc.ServicerContext) -> admin_pb2.Merchant:
        merchant = _call(context, lambda: self._store.get_merchant(request.merchant_id))
        if merchant is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"merchant {request.merchant_id!r} does not exist")
        return merchant_to_proto(merchant)

    def ListMerchants(
        self, request: admin_pb2.ListMerchantsRequest, context: grpc.ServicerContext
    ) -> admin_pb2.ListMerchantsResponse:
        merchants = _call(context, self._store.list_merchants)
        return admin_pb2.ListMerchantsResponse(merchants=[merchant_to_proto(m) for m in merchants])

    def CreateKey(self, request: admin_pb2.CreateKeyRequest, context: grpc.ServicerContext) -> admin_pb2.CreatedKey:
        kind = _KIND_FROM_PROTO.get(request.kind)
        if kind is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "kind must be KEY_KIND_WRITE or KEY_KIND_READ")
        created = _call(context, lambda: self._store.create_key(request.merchant_id, kind, request.label))
        return admin_pb2.CreatedKey(key=key_to_proto(created.key), secret=created.secret)

    def ListKeys(self, request: admin_pb2.ListKeysRequest, context: grpc.ServicerContext) -> admin_pb2.ListKeysResponse:
        keys = _call(context, lambda: self._store.list_keys(request.merchant_id))
        return admin_pb2.ListKeysResponse(keys=[key_to_proto(k) for k in keys])

    def RevokeKey(self, request: admin_pb2.RevokeKeyRequest, context: grpc.ServicerContext) -> admin_pb2.Key:
        return key_to_proto(_call(context, lambda: self._store.revoke_key(request.key_id)))


def _deny(message: str) -> grpc.RpcMethodHandler[Any, Any]:
    def abort(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    return grpc.unary_unary_rpc_method_handler(abort)


class AdminTokenInterceptor(grpc.ServerInterceptor):
    """Lets AdminService calls through only with `authorization: Bearer <admin token>`; others untouched."""

    def __init__(self, admin_token: str) -> None:
        if len(admin_token) < 16:
            raise ValueError("the admin token must be at least 16 characters")
        self._token = admin_token.encode()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        if not handler_call_details.method.startswith(_ADMIN_PREFIX):
            return continuation(handler_call_details)
        token = bearer_token(handler_call_details.invocation_metadata)
        if token is None:
            return _deny("missing `authorization: Bearer <admin token>` metadata")
        if not hmac.compare_digest(token.encode(), self._token):
            return _deny("invalid admin token")
        return continuation(handler_call_details)
