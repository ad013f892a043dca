"""Control port helpers: secret format and hashing, field validation."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

import pytest

from gnomon.control.port import (
    ControlInvalid,
    KeyKind,
    hash_secret,
    looks_like_secret,
    new_key,
    new_merchant_id,
    truncate_ms,
    validate_merchant_fields,
)


def test_new_key_secret_shape_and_hash() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    created, digest = new_key("m1", KeyKind.WRITE, "label", now)
    assert re.fullmatch(r"gn_w_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", created.secret)
    assert created.secret.split("_")[2] == created.key.key_id
    assert digest == hashlib.sha256(created.secret.encode()).digest() == hash_secret(created.secret)
    assert looks_like_secret(created.secret)
    read, _ = new_key("m1", KeyKind.READ, "", now)
    assert read.secret.startswith("gn_r_")


def test_secrets_are_unique() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    secrets = {new_key("m", KeyKind.WRITE, "", now)[0].secret for _ in range(200)}
    assert len(secrets) == 200


@pytest.mark.parametrize("text", ["", "Bearer", "gn_x_" + "a" * 60, "gn_w_short", "gn_w_" + "a" * 200])
def test_not_secret_shaped(text: str) -> None:
    assert not looks_like_secret(text)


def test_generated_merchant_ids_are_valid() -> None:
    for _ in range(50):
        validate_merchant_fields("n", "UTC", "EUR", new_merchant_id())


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns", "Etc/GMT+5", "UTC"])
def test_valid_zones(zone: str) -> None:
    validate_merchant_fields("n", zone, "EUR", "")


@pytest.mark.parametrize("zone", ["Local", "asia/kolkata", "/etc/localtime", "+05:30", "GMT+5:30"])
def test_invalid_zones(zone: str) -> None:
    with pytest.raises(ControlInvalid, match="time_zone"):
        validate_merchant_fields("n", zone, "EUR", "")


def test_truncate_ms() -> None:
    assert truncate_ms(datetime(2026, 1, 1, 0, 0, 0, 123_456, tzinfo=UTC)).microsecond == 123_000
