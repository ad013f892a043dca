// A top-10 breakdown (users and sessions by one dimension); clicking a row filters the whole dashboard by it.
import { create } from "@bufbuild/protobuf";
import { BreakdownRequestSchema, type ReportResponse } from "../gen/gnomon/v1/query_pb";
import { h, replaceChildren } from "../dom";
import { formatInt, valueOf } from "../format";
import { dateRange } from "../state";
import { guarded, type Panel, type PanelContext } from "./context";
import { PanelFrame } from "./panel";

export const TOP_N = 10;

export class BreakdownPanel implements Panel {
  private readonly frame: PanelFrame;
  readonly el: HTMLElement;

  constructor(
    readonly id: string,
    title: string,
    private readonly dimension: string,
    private readonly columnLabel: string,
  ) {
    this.frame = new PanelFrame(id, title, "panel-table");
    this.el = this.frame.el;
    this.el.dataset.dimension = dimension;
  }

  load(ctx: PanelContext): Promise<void> {
    return guarded(
      this.frame,
      ctx,
      async () => {
        const request = create(BreakdownRequestSchema, {
          dateRange: dateRange(ctx.state),
          dimensions: [this.dimension],
          metrics: ["totalUsers", "sessions"],
          dimensionFilter: ctx.filter,
          limit: BigInt(TOP_N),
        });
        const report = await ctx.client.breakdown(request, { signal: ctx.signal });
        if (!ctx.signal.aborted) this.render(report, ctx);
      },
      () => void this.load(ctx),
    );
  }

  private render(report: ReportResponse, ctx: PanelContext): void {
    if (report.rows.length === 0) {
      replaceChildren(this.frame.body, h("p", { class: "empty" }, "No data for this range."));
      return;
    }
    const users = report.rows.map((r) => valueOf(r.metricValues[0]));
    const max = Math.max(1, ...users.map((u) => u.num));
    const active = ctx.state.filters.find((f) => f.dimension === this.dimension)?.value;
    const rows = report.rows.map((row, i) => {
      const label = row.dimensionValues[0] ?? "";
      const u = users[i] ?? { raw: "0", num: 0 };
      const s = valueOf(row.metricValues[1]);
      const select = () => ctx.addFilter(this.dimension, label);
      return h(
        "tr",
        {
          class: label === active ? "row active" : "row",
          tabindex: 0,
          role: "button",
          title: `Filter the dashboard by ${this.columnLabel.toLowerCase()} “${label}”`,
          "data-dim-value": label,
          onclick: select,
          onkeydown: (ev: Event) => {
            const key = (ev as KeyboardEvent).key;
            if (key === "Enter" || key === " ") {
              ev.preventDefault();
              select();
            }
          },
        },
        h(
          "td",
          { class: "dim" },
          h("span", { class: "share", style: `width:${((u.num / max) * 100).toFixed(1)}%`, "aria-hidden": "true" }),
          h("span", { class: "dim-text" }, label),
        ),
        h("td", { class: "num", "data-metric": "totalUsers", "data-value": u.raw }, formatInt(u.num)),
        h("td", { class: "num", "data-metric": "sessions", "data-value": s.raw }, formatInt(s.num)),
      );
    });
    const more = Number(report.rowCount) - report.rows.length;
    replaceChildren(
      this.frame.body,
      h(
        "table",
        { class: "breakdown" },
        h("thead", {}, h("tr", {}, h("th", {}, this.columnLabel), h("th", { class: "num" }, "Users"), h("th", { class: "num" }, "Sessions"))),
        h("tbody", {}, ...rows),
      ),
      more > 0 ? h("p", { class: "more muted" }, `${formatInt(more)} more not shown`) : null,
    );
  }
}
