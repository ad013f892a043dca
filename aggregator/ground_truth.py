"""An independent reference for the rollups: the same metrics computed by DuckDB SQL over the raw events frame.

Used by tests and benchmarks to check `aggregator.compute` (it shares no code with it: sessions, local windows
and "(other)" capping are re-derived here in SQL; local time comes from DuckDB's ICU time zones, not zoneinfo).
Users are exact (COUNT DISTINCT) where the rollups hold HLL sketches. Not for production: it is slow.

Rules implemented (processing version 1, see `aggregator.compute`):
- bots (is_bot) excluded; missing dimension values are "(not set)";
- hour window = UTC start of the local hour of the zone containing the event (`t - time into the local hour`),
  day window = UTC instant of local midnight of the event's local date;
- sessions per client ordered by (event time, event id); new session at the first event, after a gap > 30 min,
  or when the local date changes; duration = (last - first) µs // 1000; engaged = duration >= 10 s or >= 2
  page_view or >= 1 key event; a session is attributed to the window of its first event;
- SESSION-scoped cubes: a session counts under its first event's values; EVENT-scoped cubes: under every value
  its events have (once per value);
- event metrics by each event's own values; revenue only of events in the merchant currency;
- per (cube, window) more than `max_values` values: keep the top `max_values` by events desc, dims asc (a real
  all-"(other)" value is not kept), everything else becomes the all-"(other)" value, then aggregate.

`events` may span several local days (sessions are split at local midnight); it must hold ONE merchant.
"""

from __future__ import annotations

from typing import Any, Final

import duckdb
import pandas as pd

from aggregator import frame as f
from aggregator.cubes import Cube, CubeSet, Scope

GAP_US: Final = 30 * 60 * 1_000_000
OTHER: Final = "(other)"
DEFAULT_MAX_VALUES: Final = 5_000  # the aggregator's default cap of values per (cube, window)
NOT_SET: Final = "(not set)"
METRICS: Final = (
    "events", "pageviews", "sessions", "engaged_sessions", "bounces", "session_duration_ms", "revenue_micros",
    "key_events", "users", "new_users",
)  # fmt: skip


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _dims_of(cubes: CubeSet) -> list[str]:
    return sorted(cubes.columns())


def _prepare_sql(zone: str, dims: list[str], key_events: frozenset[str]) -> list[str]:
    z = _literal(zone)
    dim_select = "".join(f", COALESCE(CAST({_ident(d)} AS VARCHAR), '{NOT_SET}') AS {_ident('d_' + d)}" for d in dims)
    keys = ", ".join(_literal(k) for k in sorted(key_events)) or "NULL"
    return [
        "SET TimeZone = 'UTC'",
        f"""
        CREATE OR REPLACE TEMP TABLE ev AS
        WITH base AS (
            SELECT CAST({f.EVENT_ID} AS VARCHAR) AS event_id, CAST({f.CLIENT_ID} AS VARCHAR) AS client_id,
                   CAST({f.NAME} AS VARCHAR) AS name, CAST({f.EVENT_TIME_US} AS BIGINT) AS t,
                   CAST({f.REVENUE_MICROS} AS BIGINT) AS revenue_micros,
                   COALESCE(CAST({f.CURRENCY} AS VARCHAR), '') AS currency{dim_select},
                   timezone({z}, CAST(make_timestamp(CAST({f.EVENT_TIME_US} AS BIGINT)) AS TIMESTAMPTZ)) AS lt
            FROM events_frame WHERE NOT {f.IS_BOT}
        )
        SELECT *, t - (epoch_us(lt) - epoch_us(date_trunc('hour', lt))) AS w_hour,
               CAST(lt AS DATE) AS local_day,
               epoch_us(timezone({z}, CAST(CAST(lt AS DATE) AS TIMESTAMP))) AS w_day
        FROM base
        """,  # noqa: S608 (values are escaped literals, identifiers quoted: _literal / _ident)
        f"""
        CREATE OR REPLACE TEMP TABLE evs AS
        WITH o AS (
            SELECT *, LAG(t) OVER w AS prev_t, LAG(local_day) OVER w AS prev_day
            FROM ev WINDOW w AS (PARTITION BY client_id ORDER BY t, event_id)
        ), m AS (
            SELECT *, CASE WHEN prev_t IS NULL OR t - prev_t > {GAP_US} OR local_day <> prev_day THEN 1 ELSE 0 END
                      AS is_new
            FROM o
        )
        SELECT *, SUM(is_new) OVER (PARTITION BY client_id ORDER BY t, event_id
                                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS sess_no
        FROM m
        """,  # noqa: S608
        f"""
        CREATE OR REPLACE TEMP TABLE sess AS
        WITH agg AS (
            SELECT client_id, sess_no, (MAX(t) - MIN(t)) // 1000 AS duration_ms,
                   COUNT(*) FILTER (WHERE name = 'page_view') AS pv,
                   COUNT(*) FILTER (WHERE name IN ({keys})) AS ke
            FROM evs GROUP BY client_id, sess_no
        ), firsts AS (
            SELECT * FROM (
                SELECT *, ROW_NUMBER() OVER (PARTITION BY client_id, sess_no ORDER BY t, event_id) AS rn FROM evs
            ) WHERE rn = 1
        )
        SELECT firsts.*, agg.duration_ms,
               (agg.duration_ms >= 10000 OR agg.pv >= 2 OR agg.ke >= 1) AS engaged
        FROM firsts JOIN agg USING (client_id, sess_no)
        """,  # noqa: S608
    ]


def _cube_sql(cube: Cube, grain: str, key_events: frozenset[str], currency: str, max_values: int | None) -> str:
    w = "w_hour" if grain == "hour" else "w_day"
    cols = [_ident("d_" + d) for d in cube.dimensions]
    keys = ", ".join(_literal(k) for k in sorted(key_events)) or "NULL"

    def on(a: str, b: str) -> str:
        return " AND ".join([f"{a}.win = {b}.win", *(f"{a}.{c} = {b}.{c}" for c in cols)])

    def select_dims(a: str) -> str:
        return "".join(f", {a}.{c}" for c in cols)

    def mapped(a: str) -> str:
        return "".join(f", CASE WHEN k.win IS NULL THEN '{OTHER}' ELSE {a}.{c} END AS {c}" for c in cols)

    group = ", ".join(["win", *cols])
    if cube.scope is Scope.SESSION or not cols:
        sa = f"SELECT s.{w} AS win{select_dims('s')}, s.client_id, s.sess_no, s.engaged, s.duration_ms FROM sess s"  # noqa: S608
    else:
        sa = (
            f"SELECT DISTINCT s.{w} AS win{select_dims('e')}, e.client_id, e.sess_no, s.engaged, s.duration_ms"  # noqa: S608
            " FROM evs e JOIN sess s USING (client_id, sess_no)"
        )
    all_other = " AND ".join(f"{c} = '{OTHER}'" for c in cols) or "FALSE"
    cap = max_values if max_values is not None else 1 << 62
    order = ", ".join(["events DESC", *cols])
    dims_list = f"[{', '.join(f'COALESCE(em.{c}, sm.{c})' for c in cols)}]" if cols else "CAST([] AS VARCHAR[])"
    return f"""
    (WITH ea AS (
        SELECT {w} AS win{select_dims("evs")}, client_id, name, revenue_micros, currency FROM evs
    ), sa AS ({sa}
    ), g AS (
        SELECT {group}, SUM(ev) AS events FROM (
            SELECT {group}, 1 AS ev FROM ea UNION ALL SELECT {group}, 0 AS ev FROM sa
        ) GROUP BY {group}
    ), ranked AS (
        SELECT {group}, ROW_NUMBER() OVER (PARTITION BY win ORDER BY {order}) AS rn,
               COUNT(*) OVER (PARTITION BY win) AS nv
        FROM g
    ), kept AS (
        SELECT {group} FROM ranked WHERE nv <= {cap} OR (rn <= {cap} AND NOT ({all_other}))
    ), ea2 AS (
        SELECT ea.win{mapped("ea")}, ea.client_id, ea.name, ea.revenue_micros, ea.currency
        FROM ea LEFT JOIN kept k ON {on("ea", "k")}
    ), sa2 AS (
        SELECT DISTINCT sa.win{mapped("sa")}, sa.client_id, sa.sess_no, sa.engaged, sa.duration_ms
        FROM sa LEFT JOIN kept k ON {on("sa", "k")}
    ), em AS (
        SELECT {group}, COUNT(*) AS events, COUNT(*) FILTER (WHERE name = 'page_view') AS pageviews,
               COUNT(*) FILTER (WHERE name IN ({keys})) AS key_events,
               COALESCE(SUM(revenue_micros) FILTER (WHERE currency = {_literal(currency)}), 0) AS revenue_micros,
               COUNT(DISTINCT client_id) AS users,
               COUNT(DISTINCT client_id) FILTER (WHERE name = 'first_visit') AS new_users
        FROM ea2 GROUP BY {group}
    ), sm AS (
        SELECT {group}, COUNT(*) AS sessions, COUNT(*) FILTER (WHERE engaged) AS engaged_sessions,
               COUNT(*) FILTER (WHERE NOT engaged) AS bounces, SUM(duration_ms) AS session_duration_ms
        FROM sa2 GROUP BY {group}
    )
    SELECT {_literal(cube.name)} AS cube, '{grain}' AS grain, COALESCE(em.win, sm.win) AS window_start_us,
           {dims_list} AS dims,
           COALESCE(em.events, 0) AS events, COALESCE(em.pageviews, 0) AS pageviews,
           COALESCE(sm.sessions, 0) AS sessions, COALESCE(sm.engaged_sessions, 0) AS engaged_sessions,
           COALESCE(sm.bounces, 0) AS bounces, COALESCE(sm.session_duration_ms, 0) AS session_duration_ms,
           CAST(COALESCE(em.revenue_micros, 0) AS BIGINT) AS revenue_micros, COALESCE(em.key_events, 0) AS key_events,
           COALESCE(em.users, 0) AS users, COALESCE(em.new_users, 0) AS new_users
    FROM em FULL OUTER JOIN sm ON {on("em", "sm")})
    """  # noqa: S608


def ground_truth(
    events: pd.DataFrame,
    *,
    zone: str,
    key_events: frozenset[str],
    currency: str,
    cubes: CubeSet,
    max_values: int | None = DEFAULT_MAX_VALUES,
) -> pd.DataFrame:
    """One row per (cube, grain, window_start_us, dims) with every metric as an exact integer (users and
    new_users are distinct counts). `max_values=None` never caps; the default is compute_day's. `events` needs
    the columns of `aggregator.frame` that `compute_day` reads (derived ones included). Blocking; CPU only,
    in-memory DuckDB (~1-3 s for 20k events and the 14 default cubes)."""
    dims = _dims_of(cubes)
    con = duckdb.connect(":memory:")
    try:
        con.register("events_frame", events)
        for statement in _prepare_sql(zone, dims, key_events):
            con.execute(statement)
        parts = [
            _cube_sql(cube, grain, key_events, currency, max_values) for cube in cubes for grain in ("hour", "day")
        ]
        result = con.execute(" UNION ALL ".join(parts)).df()
    finally:
        con.close()
    result["dims"] = [tuple(d) for d in result["dims"]]
    for column in ("window_start_us", *METRICS):
        result[column] = result[column].astype("int64")
    return result


def as_dict(truth: pd.DataFrame) -> dict[tuple[str, str, int, tuple[str, ...]], dict[str, int]]:
    """`ground_truth` output keyed by (cube, grain, window_start_us, dims)."""
    out: dict[tuple[str, str, int, tuple[str, ...]], dict[str, int]] = {}
    records: list[dict[Any, Any]] = truth.to_dict("records")
    for r in records:
        key = (str(r["cube"]), str(r["grain"]), int(r["window_start_us"]), tuple(r["dims"]))
        out[key] = {m: int(r[m]) for m in METRICS}
    return out
