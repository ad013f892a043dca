// The time series of one metric (hour / day / week in the merchant's zone), with the previous period dashed.
import { create } from "@bufbuild/protobuf";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { Granularity as ApiGranularity, TimeSeriesRequestSchema, type ReportResponse } from "../gen/gnomon/v1/query_pb";
import { h, replaceChildren } from "../dom";
import { formatAxis, formatValue, periodLabel, valueOf } from "../format";
import { CHART_METRICS, chartMetric, type MetricDef } from "../metrics";
import { dateRange, effectiveGranularity, type Granularity, type State } from "../state";
import { guarded, type Panel, type PanelContext } from "./context";
import { PanelFrame } from "./panel";

const API_GRAIN = { hour: ApiGranularity.HOUR, day: ApiGranularity.DAY, week: ApiGranularity.WEEK } as const;
const MAX_TICKS_WIDE = 10;
const MAX_TICKS_NARROW = 4;

export class ChartPanel implements Panel {
  private readonly frame = new PanelFrame("chart", "Over time", "panel-chart");
  readonly el = this.frame.el;
  private plot: uPlot | null = null;
  private readonly resize = new ResizeObserver(() => this.fit());

  /** `onChange`: the user picked another metric or grain. */
  constructor(private readonly onChange: (patch: Partial<State>) => void) {}

  private renderControls(state: State): void {
    const metric = h(
      "select",
      { "aria-label": "Metric", "data-control": "metric", onchange: (ev: Event) => this.onChange({ metric: (ev.target as HTMLSelectElement).value }) },
      ...CHART_METRICS.map((m) => h("option", { value: m.name, selected: m.name === chartMetric(state.metric).name }, m.label)),
    );
    const grains: [Granularity, string][] = [["auto", "Auto"], ["hour", "Hourly"], ["day", "Daily"], ["week", "Weekly"]];
    const grain = h(
      "select",
      { "aria-label": "Granularity", "data-control": "granularity", onchange: (ev: Event) => this.onChange({ granularity: (ev.target as HTMLSelectElement).value as Granularity }) },
      ...grains.map(([id, label]) => h("option", { value: id, selected: id === state.granularity }, label)),
    );
    replaceChildren(this.frame.controls, metric, grain);
  }

  load(ctx: PanelContext): Promise<void> {
    this.renderControls(ctx.state);
    return guarded(
      this.frame,
      ctx,
      async () => {
        const metric = chartMetric(ctx.state.metric);
        const grain = effectiveGranularity(ctx.state);
        const request = create(TimeSeriesRequestSchema, {
          dateRange: dateRange(ctx.state),
          metrics: [metric.name],
          dimensionFilter: ctx.filter,
          granularity: API_GRAIN[grain],
          comparison: ctx.state.compare ? { kind: { case: "previousPeriod", value: {} } } : undefined,
        });
        const report = await ctx.client.timeSeries(request, { signal: ctx.signal });
        if (!ctx.signal.aborted) this.render(report, metric, grain, ctx.state.compare);
      },
      () => void this.load(ctx),
    );
  }

  private render(report: ReportResponse, metric: MetricDef, grain: "hour" | "day" | "week", compare: boolean): void {
    const currency = report.metadata?.currencyCode ?? "";
    const keys = report.rows.map((r) => r.dimensionValues[0] ?? "");
    const labels = keys.map((k) => periodLabel(k, grain));
    const current = report.rows.map((r) => valueOf(r.metricValues[0]));
    const previous = compare ? report.rows.map((r) => (r.comparisonValues.length ? valueOf(r.comparisonValues[0]) : null)) : [];
    const holder = h("div", {
      class: "chart",
      role: "img",
      "aria-label": `${metric.label} by ${grain}`,
      "data-series": JSON.stringify({
        metric: metric.name,
        keys,
        values: current.map((v) => v.raw),
        previous: previous.map((v) => v?.raw ?? null),
      }),
    });
    const fmt = (v: number | null | undefined) =>
      v === null || v === undefined ? "–" : formatValue({ raw: String(v), num: v }, metric.type, currency);
    const legend = h(
      "div",
      { class: "chart-legend" },
      h("span", { class: "swatch current" }),
      metric.label,
      compare ? h("span", { class: "swatch previous" }) : null,
      compare ? "Previous period" : null,
    );
    const readout = h("div", { class: "chart-readout", "aria-live": "off" });
    const showReadout = (i: number | null | undefined) => {
      if (i === null || i === undefined || i < 0 || i >= keys.length) {
        readout.replaceChildren();
        return;
      }
      const prev = previous[i];
      readout.replaceChildren(
        h("strong", {}, labels[i] ?? ""),
        ` ${metric.label}: ${fmt(current[i]?.num)}`,
        compare ? ` · previous: ${fmt(prev?.num)}` : "",
      );
    };
    replaceChildren(this.frame.body, h("div", { class: "chart-top" }, legend, readout), holder);
    this.plot?.destroy();
    this.resize.disconnect();
    const series: uPlot.Series[] = [
      {},
      { label: metric.label, stroke: "#1a73e8", width: 2, fill: "rgba(26,115,232,0.08)", points: { show: keys.length <= 1 } },
    ];
    const data: uPlot.AlignedData = [keys.map((_, i) => i), current.map((v) => v.num)];
    if (compare) {
      series.push({ label: "Previous period", stroke: "#9aa0a6", width: 1.5, dash: [5, 4], points: { show: false } });
      data.push(previous.map((v) => v?.num ?? null));
    }
    const width = Math.max(200, holder.clientWidth || this.frame.body.clientWidth || 600);
    const narrow = width < 480;
    const maxTicks = narrow ? MAX_TICKS_NARROW : MAX_TICKS_WIDE;
    this.plot = new uPlot(
      {
        width,
        height: narrow ? 200 : 260,
        scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
        cursor: { points: { size: 6 } },
        legend: { show: false },
        hooks: { setCursor: [(u) => showReadout(u.cursor.idx)] },
        axes: [
          {
            splits: () => {
              const step = Math.max(1, Math.ceil(keys.length / maxTicks));
              return keys.map((_, i) => i).filter((i) => i % step === 0);
            },
            values: (_u, splits) => splits.map((i) => labels[i] ?? ""),
            gap: 6,
            size: 36,
            grid: { show: false },
          },
          { values: (_u, splits) => splits.map((v) => formatAxis(v, metric.type, currency)), size: 60, grid: { stroke: "#eef0f3" } },
        ],
        series,
      },
      data,
      holder,
    );
    this.resize.observe(this.frame.body);
  }

  private fit(): void {
    const plot = this.plot;
    if (!plot) return;
    const width = Math.max(200, this.frame.body.clientWidth);
    if (Math.abs(width - plot.width) > 2) plot.setSize({ width, height: plot.height });
  }
}
