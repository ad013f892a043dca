"""QueryEngine: the wire-independent core of the query service (typed requests in, typed results out).

The gRPC servicer converts protobuf messages to `query_svc.model` requests and results back; the GA4 Data API
layer will do the same with its own messages. The engine never sees a protobuf or a gRPC context; it takes
a `Deadline` and checks it between steps.

Merchant isolation: every read is scoped by `request.merchant_id` (the store's reads are merchant-scoped);
the caller (the auth interceptor) guarantees that this merchant is the one the read token belongs to.

Blocking; thread-safe (the stores are, the cache and merchant directory lock). Raises the QueryError
subclasses of `query_svc.errors`, RollupUnavailable / ControlUnavailable / EventStoreUnavailable when an
engine is down, and RollupInvalid for a read the store refuses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo

from opentelemetry import trace

from aggregator.cubes import DEFAULT_CUBES, CubeSet
from aggregator.eventstore import EventStore
from gnomon.control import ControlStore
from gnomon.rollups import RollupStore, VersionRegistry
from query_svc import dates, filters, report
from query_svc.cache import CacheStats, ResultCache
from query_svc.catalog import DIMENSIONS, METRICS, REPORT_DIMENSIONS, DimKind, dimension_defs, metric_defs
from query_svc.errors import Incompatible, InvalidQuery, MerchantUnknown, Unavailable, UnknownName
from query_svc.model import (
    CompatibilityRequest,
    CompatibilityResult,
    CubeInfo,
    FieldCompatibility,
    MetadataResult,
    MetricHeader,
    RealtimeRequest,
    RealtimeResult,
    ReportRequest,
    ReportResult,
    ResultMeta,
    ResultRow,
)
from query_svc.order import check_offset, page, resolve_limit
from query_svc.planner import choose_cube, columns_of
from query_svc.reader import NO_DEADLINE, Deadline, RollupReader
from query_svc.realtime import BotFilter, run_realtime
from query_svc.window_cache import WindowCache, WindowCacheStats

MAX_LIMIT: Final = 100_000
TRACER_NAME: Final = "gnomon.query"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class MerchantInfo:
    merchant_id: str
    zone: ZoneInfo
    currency: str


class MerchantDirectory:
    """Cached `ControlStore.get_merchant` (zone and currency never change). Unknown ids are re-asked after
    `retry_s`. Thread-safe; ControlUnavailable propagates."""

    def __init__(
        self, control: ControlStore, retry_s: float = 30.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._control = control
        self._retry_s = retry_s
        self._now = monotonic
        self._known: dict[str, MerchantInfo] = {}
        self._unknown: dict[str, float] = {}
        self._lock = threading.Lock()

    def get(self, merchant_id: str) -> MerchantInfo:
        with self._lock:
            info = self._known.get(merchant_id)
            retry_at = self._unknown.get(merchant_id)
        if info is not None:
            return info
        if retry_at is None or self._now() >= retry_at:
            merchant = self._control.get_merchant(merchant_id) if merchant_id else None
            with self._lock:
                if merchant is not None:
                    info = MerchantInfo(merchant.merchant_id, ZoneInfo(merchant.time_zone), merchant.currency)
                    self._known[merchant_id] = info
                    self._unknown.pop(merchant_id, None)
                    return info
                self._unknown[merchant_id] = self._now() + self._retry_s
        raise MerchantUnknown(f"merchant {merchant_id!r} does not exist")


@dataclass(frozen=True)
class EngineConfig:
    max_limit: int = MAX_LIMIT
    cache_entries: int = 2_000
    cache_ttl_s: float = 3600.0
    window_cache_rows: int = 2_000_000
    key_events: frozenset[str] = frozenset({"purchase"})


class QueryEngine:
    """Answers reports, realtime, metadata and compatibility questions for one region's stores."""

    def __init__(
        self,
        store: RollupStore,
        registry: VersionRegistry,
        control: ControlStore,
        *,
        event_store: EventStore | None = None,
        cubes: CubeSet = DEFAULT_CUBES,
        config: EngineConfig | None = None,
        clock: Callable[[], datetime] = utc_now,
        tracer: trace.Tracer | None = None,
        on_cache_lookup: Callable[[bool], None] | None = None,
    ) -> None:
        self._store = store
        self._config = config or EngineConfig()
        self._windows = WindowCache(self._config.window_cache_rows)
        self._reader = RollupReader(store, registry, self._windows)
        self._merchants = MerchantDirectory(control)
        self._event_store = event_store
        self._cubes = cubes
        self._clock = clock
        self._tracer = tracer or trace.NoOpTracer()
        self._cache: ResultCache[ReportResult] = ResultCache(
            self._config.cache_entries, self._config.cache_ttl_s, on_lookup=on_cache_lookup
        )
        self._bots = BotFilter()

    @property
    def config(self) -> EngineConfig:
        return self._config

    def cache_stats(self) -> CacheStats:
        return self._cache.stats()

    def window_cache_stats(self) -> WindowCacheStats:
        return self._windows.stats()

    def merchant(self, merchant_id: str) -> MerchantInfo:
        """The merchant's zone and currency; raises MerchantUnknown."""
        return self._merchants.get(merchant_id)

    # ------------------------------------------------------------------------------------------ reports

    def report(self, request: ReportRequest, deadline: Deadline = NO_DEADLINE) -> ReportResult:
        """Run one report. Results whose windows are all closed are cached (see `query_svc.cache`)."""
        merchant = self._merchants.get(request.merchant_id)
        zone = merchant.zone
        now = self._clock()
        spec = report.validate(request, self._cubes)
        limit = resolve_limit(request.limit, self._config.max_limit)
        offset = check_offset(request.offset)
        primary = dates.resolve_range(request.date_range, zone, now)
        compared = dates.resolve_comparison(request.comparison, primary, zone, now) if request.comparison else None
        data_version = self._store.data_version(request.merchant_id)
        key = (request, primary, compared, data_version)
        hit = self._cache.get(key)
        if hit is not None:
            return replace(hit, meta=replace(hit.meta, from_cache=True))
        with self._tracer.start_as_current_span("query.read") as span:
            a = report.group_range(spec, primary, zone, self._reader, deadline)
            b = report.group_range(spec, compared, zone, self._reader, deadline) if compared else None
            span.set_attribute("gnomon.query.cube", spec.choice.cube.name)
            span.set_attribute("gnomon.query.rows", len(a.batch) + (len(b.batch) if b else 0))
            span.set_attribute("gnomon.query.cached_windows", a.cached_windows + (b.cached_windows if b else 0))
        deadline.check("ordering")
        with self._tracer.start_as_current_span("query.aggregate"):
            selected, _ = report.select_rows(spec, a.groups)
            page_rows = page(selected, offset, limit)
            rows = report.build_rows(spec, a, page_rows, b, zone)
            deadline.check("totals")
            totals_a, provisional_a = report.totals_row(spec, a, zone, self._reader, deadline)
            totals_b, provisional_b = report.totals_row(spec, b, zone, self._reader, deadline) if b else (None, False)
        provisional = a.provisional or provisional_a or provisional_b or (b is not None and b.provisional)
        notes = (spec.choice.note,) if spec.choice.note else ()
        result = ReportResult(
            dimension_headers=spec.names,
            metric_headers=tuple(MetricHeader(m.api_name, m.type) for m in spec.metrics),
            rows=tuple(rows),
            totals=ResultRow((), totals_a, totals_b),
            row_count=len(selected),
            date_range=primary,
            comparison_range=compared,
            meta=ResultMeta(
                currency_code=merchant.currency,
                time_zone=zone.key,
                cube=spec.choice.cube.name,
                grains=tuple(dict.fromkeys([*a.grains, *(b.grains if b else ())])),
                from_cache=False,
                provisional=provisional,
                limit=limit,
                data_version=data_version,
                notes=notes,
            ),
        )
        closed = primary.end_time <= now and (compared is None or compared.end_time <= now)
        if closed and not provisional:
            self._cache.put(key, result)
        return result

    # ------------------------------------------------------------------------------------------ realtime

    def realtime(self, request: RealtimeRequest, deadline: Deadline = NO_DEADLINE) -> RealtimeResult:
        """The last minutes from raw events; raises Unavailable when no event store is configured."""
        merchant = self._merchants.get(request.merchant_id)
        if self._event_store is None:
            raise Unavailable("realtime needs the aggregator's event store, which this server was not given")
        with self._tracer.start_as_current_span("query.realtime"):
            return run_realtime(
                request,
                zone=merchant.zone,
                now=self._clock(),
                store=self._event_store,
                bots=self._bots,
                key_events=self._config.key_events,
                max_limit=self._config.max_limit,
                deadline=deadline,
            )

    # ------------------------------------------------------------------------------------------ metadata

    def metadata(self, merchant_id: str) -> MetadataResult:
        merchant = self._merchants.get(merchant_id)
        cubes = []
        for cube in self._cubes:
            columns = set(cube.dimensions)
            names = [
                name
                for name in REPORT_DIMENSIONS
                if DIMENSIONS[name].kind is DimKind.ROLLUP and set(DIMENSIONS[name].columns) <= columns
            ]
            cubes.append(CubeInfo(cube.name, tuple(names)))
        return MetadataResult(
            dimensions=tuple(d.info() for d in DIMENSIONS.values()),
            metrics=tuple(m.info() for m in METRICS.values()),
            cubes=tuple(cubes),
            time_zone=merchant.zone.key,
            currency_code=merchant.currency,
        )

    def check_compatibility(self, request: CompatibilityRequest) -> CompatibilityResult:
        """Whether a report with these dimensions, metrics and filters can be answered, and every reason why not."""
        self._merchants.get(request.merchant_id)
        reasons: list[str] = []
        dims: dict[str, FieldCompatibility] = {}
        metrics: dict[str, FieldCompatibility] = {}
        for name in request.dimensions:
            try:
                dimension_defs([name])
                dims[name] = FieldCompatibility(name, True)
            except UnknownName as exc:
                dims[name] = FieldCompatibility(name, False, str(exc))
                reasons.append(str(exc))
        for name in request.metrics:
            try:
                metric_defs([name])
                metrics[name] = FieldCompatibility(name, True)
            except UnknownName as exc:
                metrics[name] = FieldCompatibility(name, False, str(exc))
                reasons.append(str(exc))
        for expr, field, kind in (
            (request.dimension_filter, "dimension_filter", "dimension"),
            (request.metric_filter, "metric_filter", "metric"),
        ):
            try:
                filters.validate(
                    expr,
                    dimensions=frozenset(REPORT_DIMENSIONS) if kind == "dimension" else frozenset(),
                    metrics=frozenset(METRICS) if kind == "metric" else frozenset(),
                    field=field,
                )
            except InvalidQuery as exc:
                reasons.append(str(exc))
        cube = ""
        known = [n for n in [*request.dimensions, *filters.fields(request.dimension_filter)] if n in REPORT_DIMENSIONS]
        non_time = [n for n in known if DIMENSIONS[n].kind is DimKind.ROLLUP]
        try:
            choice = choose_cube(self._cubes, columns_of(non_time))
            cube = choice.cube.name
        except Incompatible as exc:
            reasons.append(str(exc))
            for name in request.dimensions:
                if name in non_time:
                    dims[name] = FieldCompatibility(name, False, str(exc))
        return CompatibilityResult(
            compatible=not reasons,
            reasons=tuple(reasons),
            cube=cube if not reasons else "",
            dimensions=tuple(dims[n] for n in request.dimensions),
            metrics=tuple(metrics[n] for n in request.metrics),
        )
