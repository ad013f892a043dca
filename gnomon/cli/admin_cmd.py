"""`gnomon merchant ...` and `gnomon key ...`: manage merchants and API keys directly in the control store.

The store is the one of this deployment's settings (GNOMON_ENGINES, GNOMON_DATA_DIR, GNOMON_CQL_*): the
SQLite file `<data dir>/control.sqlite3` when embedded, the Scylla/Cassandra keyspace when real.
Exit codes: 0 done, 1 not found / engine unreachable, 2 invalid input or settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from gnomon.control import (
    ApiKey,
    ControlInvalid,
    ControlStore,
    ControlUnavailable,
    KeyKind,
    KeyNotFound,
    Merchant,
    MerchantExists,
    MerchantNotFound,
    open_control_store,
)
from gnomon.settings import CommonSettings

MERCHANT_HELP = """\
Merchants are the tenants of Gnomon: every event and every report belongs to exactly one.

  gnomon merchant create --name "Acme Shop" --time-zone Europe/Berlin --currency EUR
  gnomon merchant list

The time zone (IANA name) is the merchant's reporting zone: days, weeks and months of reports are cut in it.
It is fixed at creation. The currency (ISO 4217) is the reporting currency.
"""

KEY_HELP = """\
Keys let a merchant's systems talk to Gnomon. A write key sends events (collector); a read key reads
reports (query service). Gnomon keeps only a hash: the secret is printed once, at creation.

  gnomon key create --merchant m1a2b3c4d5e6 --kind write --label "web shop"
  gnomon key list --merchant m1a2b3c4d5e6
  gnomon key revoke 0123456789abcdef

Use a key as gRPC metadata `authorization: Bearer <secret>`. Revoking takes effect on every collector
within its auth cache time (GNOMON_COLLECTOR_AUTH_TTL_MS, 30 s by default).
"""

ONCE_WARNING = (
    "Store this secret now (e.g. in your secret manager). Gnomon keeps only its hash and cannot show it again;"
    " if it is lost, create a new key and revoke this one."
)


def _open() -> ControlStore:
    return open_control_store(CommonSettings.from_env())


def _merchant_dict(m: Merchant) -> dict[str, Any]:
    return {
        "merchant_id": m.merchant_id,
        "name": m.name,
        "time_zone": m.time_zone,
        "currency": m.currency,
        "created_at": m.created_at.isoformat(),
    }


def _key_dict(k: ApiKey) -> dict[str, Any]:
    return {
        "key_id": k.key_id,
        "merchant_id": k.merchant_id,
        "kind": k.kind.value,
        "label": k.label,
        "created_at": k.created_at.isoformat(),
        "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
    }


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[str(r.get(c) if r.get(c) is not None else "-") for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _emit(args: argparse.Namespace, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    if args.json:
        print(json.dumps(list(rows), indent=2))
    elif rows:
        print(_table(rows, columns))


def _run(action: Callable[[ControlStore, argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Open the store, run the action, map control errors to messages and exit codes."""

    def handler(args: argparse.Namespace) -> int:
        try:
            store = _open()
        except ControlUnavailable as exc:
            print(f"gnomon: control store unreachable: {exc}", file=sys.stderr)
            return 1
        try:
            return action(store, args)
        except (ControlInvalid, MerchantExists) as exc:
            print(f"gnomon: {exc}", file=sys.stderr)
            return 2
        except (MerchantNotFound, KeyNotFound, ControlUnavailable) as exc:
            print(f"gnomon: {exc}", file=sys.stderr)
            return 1
        finally:
            store.close()

    return handler


def merchant_create(store: ControlStore, args: argparse.Namespace) -> int:
    m = store.create_merchant(args.name, args.time_zone, args.currency, merchant_id=args.id)
    _emit(args, [_merchant_dict(m)], ["merchant_id", "name", "time_zone", "currency", "created_at"])
    return 0


def merchant_list(store: ControlStore, args: argparse.Namespace) -> int:
    rows = [_merchant_dict(m) for m in store.list_merchants()]
    _emit(args, rows, ["merchant_id", "name", "time_zone", "currency", "created_at"])
    if not rows and not args.json:
        print("no merchants yet; create one with `gnomon merchant create`", file=sys.stderr)
    return 0


def key_create(store: ControlStore, args: argparse.Namespace) -> int:
    created = store.create_key(args.merchant, KeyKind(args.kind), label=args.label)
    if args.json:
        print(json.dumps({**_key_dict(created.key), "secret": created.secret}, indent=2))
    else:
        print(f"key id:   {created.key.key_id}")
        print(f"merchant: {created.key.merchant_id}")
        print(f"kind:     {created.key.kind.value}")
        print(f"secret:   {created.secret}")
    print(f"WARNING: {ONCE_WARNING}", file=sys.stderr)
    return 0


def key_list(store: ControlStore, args: argparse.Namespace) -> int:
    rows = [_key_dict(k) for k in store.list_keys(args.merchant)]
    _emit(args, rows, ["key_id", "kind", "label", "created_at", "revoked_at"])
    if not rows and not args.json:
        print(f"merchant {args.merchant} has no keys; create one with `gnomon key create`", file=sys.stderr)
    return 0


def key_revoke(store: ControlStore, args: argparse.Namespace) -> int:
    key = store.revoke_key(args.key_id)
    _emit(args, [_key_dict(key)], ["key_id", "merchant_id", "kind", "label", "revoked_at"])
    return 0


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table (for scripts)")


def register(subparsers: Any) -> None:
    """Add `merchant` and `key` to the `gnomon` command line."""
    raw = argparse.RawDescriptionHelpFormatter
    merchant = subparsers.add_parser(
        "merchant", help="create and list merchants (tenants)", description=MERCHANT_HELP, formatter_class=raw
    )
    m_actions = merchant.add_subparsers(title="actions", metavar="ACTION", required=True)
    create = m_actions.add_parser(
        "create",
        help="create a merchant and print its id",
        description="Create a merchant. Its id is generated unless --id is given.",
    )
    create.add_argument("--name", required=True, help='display name, e.g. "Acme Shop"')
    create.add_argument(
        "--time-zone",
        required=True,
        metavar="ZONE",
        help="IANA reporting time zone, e.g. Europe/Berlin, Asia/Kolkata, UTC (fixed once created)",
    )
    create.add_argument("--currency", required=True, help="ISO 4217 reporting currency, e.g. EUR, USD, INR")
    create.add_argument(
        "--id", default=None, help="choose the merchant id: 3-40 of a-z, 0-9 and '-' (default: generated)"
    )
    _json_flag(create)
    create.set_defaults(handler=_run(merchant_create))
    listing = m_actions.add_parser("list", help="list every merchant", description="List every merchant.")
    _json_flag(listing)
    listing.set_defaults(handler=_run(merchant_list))

    key = subparsers.add_parser(
        "key", help="create, list and revoke write keys and read tokens", description=KEY_HELP, formatter_class=raw
    )
    k_actions = key.add_subparsers(title="actions", metavar="ACTION", required=True)
    kc = k_actions.add_parser(
        "create",
        help="create a key and print its secret (once)",
        description=f"Create a key for a merchant and print its secret. {ONCE_WARNING}",
    )
    kc.add_argument("--merchant", required=True, metavar="MERCHANT_ID", help="the merchant the key acts for")
    kc.add_argument(
        "--kind",
        required=True,
        choices=[k.value for k in KeyKind],
        help="write: send events to the collector; read: read reports",
    )
    kc.add_argument("--label", default="", help='a note to recognise the key later, e.g. "web shop"')
    _json_flag(kc)
    kc.set_defaults(handler=_run(key_create))
    kl = k_actions.add_parser(
        "list", help="list a merchant's keys (never their secrets)", description="List a merchant's keys."
    )
    kl.add_argument("--merchant", required=True, metavar="MERCHANT_ID", help="whose keys to list")
    _json_flag(kl)
    kl.set_defaults(handler=_run(key_list))
    kr = k_actions.add_parser(
        "revoke",
        help="revoke a key for good",
        description="Revoke a key: calls with it are refused (after the collectors' auth cache time).",
    )
    kr.add_argument("key_id", metavar="KEY_ID", help="the key id shown by `gnomon key list`")
    _json_flag(kr)
    kr.set_defaults(handler=_run(key_revoke))
