// The overview page: wires the header, filter chips and panels to the state, and re-queries on every change.
import type { Problem } from "./api";
import { makeClient } from "./api";
import { h, replaceChildren } from "./dom";
import { DIMENSION_LABELS, filterExpression, filterWords, withFilter, withoutFilter } from "./filters";
import type { ReportResponse } from "./gen/gnomon/v1/query_pb";
import { Header } from "./header";
import { ChartPanel } from "./panels/chart";
import type { Panel, PanelContext } from "./panels/context";
import { KpiPanel } from "./panels/kpis";
import { RealtimePanel } from "./panels/realtime";
import { BreakdownPanel } from "./panels/table";
import { fromHash, toHash, type State } from "./state";
import { tokenForm } from "./tokenform";
import { activeToken, forgetToken, loadTokens, saveToken, useToken, type SavedToken } from "./tokens";

export class App {
  private state: State = fromHash(window.location.hash);
  private token: SavedToken | null = activeToken();
  private controller: AbortController | null = null;
  private lastReport: ReportResponse | null = null;
  private refused = false;
  private readonly header = new Header({
    change: (patch) => this.change(patch),
    pickToken: (token) => {
      useToken(token);
      this.token = activeToken();
      this.show();
    },
    addToken: () => this.showTokenForm(),
    forgetToken: (token) => {
      forgetToken(token);
      this.token = activeToken();
      this.show();
    },
  });
  private readonly chips = h("div", { class: "chips", "data-testid": "filters", "aria-label": "Filters" });
  private readonly kpis = new KpiPanel((report) => {
    this.lastReport = report;
    this.header.describe(report);
  });
  private readonly chart = new ChartPanel((patch) => this.change(patch));
  private readonly realtime: RealtimePanel;
  private readonly tables = [
    new BreakdownPanel("pages", "Top pages", "pagePath", "Page"),
    new BreakdownPanel("sources", "Sources", "sessionSourceMedium", "Source / medium"),
    new BreakdownPanel("channels", "Channels", "sessionDefaultChannelGroup", "Channel"),
    new BreakdownPanel("countries", "Countries", "country", "Country"),
    new BreakdownPanel("devices", "Devices", "deviceCategory", "Device"),
    new BreakdownPanel("browsers", "Browsers", "browser", "Browser"),
  ];

  constructor(private readonly root: HTMLElement) {
    const interval = Number(new URLSearchParams(window.location.search).get("realtimeMs"));
    this.realtime = new RealtimePanel(interval >= 1000 ? interval : undefined);
    window.addEventListener("hashchange", () => {
      const next = fromHash(window.location.hash);
      if (toHash(next) !== toHash(this.state)) {
        this.state = next;
        this.refresh();
      }
    });
  }

  start(): void {
    this.show();
  }

  private get panels(): Panel[] {
    return [this.kpis, this.chart, this.realtime, ...this.tables];
  }

  private show(): void {
    if (!this.token) {
      this.showTokenForm();
      return;
    }
    this.refused = false;
    replaceChildren(
      this.root,
      this.header.el,
      h(
        "main",
        { class: "overview" },
        h("div", { class: "context-line" }, this.header.summary, this.chips),
        this.kpis.el,
        h("div", { class: "row-main" }, this.chart.el, this.realtime.el),
        h("div", { class: "tables" }, ...this.tables.map((t) => t.el)),
      ),
    );
    this.refresh();
  }

  private showTokenForm(refusedDetail?: string): void {
    this.controller?.abort();
    const form = tokenForm(
      (label, token) => {
        this.token = saveToken(label, token);
        this.show();
      },
      refusedDetail !== undefined ? { detail: refusedDetail } : undefined,
    );
    const back = this.token && refusedDetail === undefined
      ? h("button", { type: "button", class: "link", onclick: () => this.show() }, "← Back to the dashboard")
      : null;
    replaceChildren(this.root, h("header", { class: "topbar" }, h("span", { class: "brand" }, "Gnomon")), h("main", { class: "centered" }, form, back));
    (form.querySelector("#token-value") as HTMLInputElement | null)?.focus();
  }

  private change(patch: Partial<State>): void {
    const next = { ...this.state, ...patch };
    if (patch.preset === "custom" && (!next.start || !next.end)) {
      next.start = this.lastReport?.dateRange?.startDate ?? "";
      next.end = this.lastReport?.dateRange?.endDate ?? "";
    }
    this.state = next;
    history.replaceState(null, "", toHash(next));
    this.refresh();
  }

  private onProblem(problem: Problem): void {
    if (problem.kind !== "token" || this.refused) return;
    this.refused = true;
    this.showTokenForm(problem.detail);
  }

  private refresh(): void {
    const token = this.token;
    if (!token) return;
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    history.replaceState(null, "", toHash(this.state));
    this.header.render(this.state, loadTokens(), token);
    this.renderChips();
    const ctx: PanelContext = {
      client: makeClient(token.token),
      state: this.state,
      filter: filterExpression(this.state.filters),
      filterWords: filterWords(this.state.filters),
      signal: controller.signal,
      addFilter: (dimension, value) => this.change({ filters: withFilter(this.state.filters, { dimension, value }) }),
      report: (problem) => this.onProblem(problem),
    };
    for (const panel of this.panels) void panel.load(ctx);
  }

  private renderChips(): void {
    const chips = this.state.filters.map((f) =>
      h(
        "span",
        { class: "chip", "data-dimension": f.dimension, "data-value": f.value },
        h("span", { class: "chip-dim" }, `${DIMENSION_LABELS[f.dimension] ?? f.dimension}:`),
        ` ${f.value} `,
        h(
          "button",
          {
            type: "button",
            class: "chip-remove",
            "aria-label": `Remove filter ${DIMENSION_LABELS[f.dimension] ?? f.dimension} ${f.value}`,
            onclick: () => this.change({ filters: withoutFilter(this.state.filters, f.dimension) }),
          },
          "×",
        ),
      ),
    );
    replaceChildren(
      this.chips,
      ...chips,
      chips.length > 1 ? h("button", { type: "button", class: "link", onclick: () => this.change({ filters: [] }) }, "Clear all") : null,
      chips.length === 0 ? h("span", { class: "muted hint" }, "Click a row to filter every panel by it.") : null,
    );
  }
}
