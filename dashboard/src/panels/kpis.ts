// KPI tiles: Totals over the range, each with its change against the previous period.
import { create } from "@bufbuild/protobuf";
import { TotalsRequestSchema, type ReportResponse } from "../gen/gnomon/v1/query_pb";
import { h, replaceChildren } from "../dom";
import { delta, formatValue, valueOf } from "../format";
import { KPI_METRICS } from "../metrics";
import { dateRange } from "../state";
import { guarded, type Panel, type PanelContext } from "./context";
import { PanelFrame } from "./panel";

export const KPIS_READY_MARK = "gnomon:kpis-ready";

export class KpiPanel implements Panel {
  private readonly frame = new PanelFrame("kpis", "Overview", "panel-kpis");
  readonly el = this.frame.el;

  /** `onReport`: the Totals response, whose resolved ranges, zone and currency head the page. */
  constructor(private readonly onReport: (report: ReportResponse) => void) {}

  load(ctx: PanelContext): Promise<void> {
    return guarded(
      this.frame,
      ctx,
      async () => {
        const { startDate, endDate } = dateRange(ctx.state);
        const request = create(TotalsRequestSchema, {
          dateRange: { startDate, endDate },
          metrics: KPI_METRICS.map((m) => m.name),
          dimensionFilter: ctx.filter,
          comparison: ctx.state.compare ? { kind: { case: "previousPeriod", value: {} } } : undefined,
        });
        const report = await ctx.client.totals(request, { signal: ctx.signal });
        if (ctx.signal.aborted) return;
        this.onReport(report);
        this.render(report, ctx.state.compare);
      },
      () => void this.load(ctx),
    );
  }

  private render(report: ReportResponse, compare: boolean): void {
    const currency = report.metadata?.currencyCode ?? "";
    const totals = report.totals;
    const tiles = KPI_METRICS.map((metric, i) => {
      const value = valueOf(totals?.metricValues[i]);
      const prev = compare && totals?.comparisonValues.length ? valueOf(totals.comparisonValues[i]) : null;
      const change = prev ? delta(value.num, prev.num, metric.type, metric.lowerIsBetter) : null;
      return h(
        "div",
        { class: "kpi", "data-metric": metric.name, "data-value": value.raw, "data-prev": prev?.raw },
        h("div", { class: "kpi-label" }, metric.label),
        h("div", { class: "kpi-value" }, formatValue(value, metric.type, currency)),
        change && prev
          ? h(
              "div",
              {
                class: `kpi-delta ${change.direction} ${change.good === null ? "neutral" : change.good ? "good" : "bad"}`,
                title: `previous period: ${formatValue(prev, metric.type, currency)}`,
              },
              h("span", { class: "arrow", "aria-hidden": "true" }, change.direction === "up" ? "▲" : change.direction === "down" ? "▼" : "■"),
              ` ${change.text}`,
              h("span", { class: "kpi-prev" }, ` vs ${formatValue(prev, metric.type, currency)}`),
            )
          : null,
      );
    });
    replaceChildren(this.frame.body, h("div", { class: "kpi-grid" }, ...tiles));
    // The first-paint benchmark measures the time until the tiles show numbers.
    if (performance.getEntriesByName(KPIS_READY_MARK).length === 0) performance.mark(KPIS_READY_MARK);
  }
}
