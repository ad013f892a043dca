// The top bar: merchant picker, date range, comparison toggle; and the line saying what is shown.
import { h, replaceChildren } from "./dom";
import { rangeLabel } from "./format";
import type { ReportResponse } from "./gen/gnomon/v1/query_pb";
import { PRESETS, type Preset, type State } from "./state";
import type { SavedToken } from "./tokens";

export interface HeaderActions {
  change(patch: Partial<State>): void;
  pickToken(token: string): void;
  addToken(): void;
  forgetToken(token: string): void;
}

export class Header {
  readonly el = h("header", { class: "topbar" });
  readonly summary = h("p", { class: "summary muted", "data-testid": "summary" });

  constructor(private readonly actions: HeaderActions) {}

  render(state: State, tokens: SavedToken[], active: SavedToken): void {
    const a = this.actions;
    const merchant = h(
      "select",
      {
        "aria-label": "Merchant",
        "data-control": "merchant",
        onchange: (ev: Event) => {
          const value = (ev.target as HTMLSelectElement).value;
          if (value === "__add") a.addToken();
          else a.pickToken(value);
        },
      },
      ...tokens.map((t) => h("option", { value: t.token, selected: t.token === active.token }, t.label)),
      h("option", { value: "__add" }, "+ Add a merchant…"),
    );
    const forget = h(
      "button",
      { type: "button", class: "link", title: "Forget this token in this browser", onclick: () => a.forgetToken(active.token) },
      "Forget",
    );
    const preset = h(
      "select",
      { "aria-label": "Date range", "data-control": "range", onchange: (ev: Event) => a.change({ preset: (ev.target as HTMLSelectElement).value as Preset }) },
      ...PRESETS.map((p) => h("option", { value: p.id, selected: p.id === state.preset }, p.label)),
    );
    const custom =
      state.preset === "custom"
        ? h(
            "span",
            { class: "custom-range" },
            h("input", { type: "date", "aria-label": "From", value: state.start, "data-control": "start", onchange: (ev: Event) => a.change({ start: (ev.target as HTMLInputElement).value }) }),
            "–",
            h("input", { type: "date", "aria-label": "To", value: state.end, "data-control": "end", onchange: (ev: Event) => a.change({ end: (ev.target as HTMLInputElement).value }) }),
          )
        : null;
    const compare = h(
      "label",
      { class: "toggle" },
      h("input", { type: "checkbox", checked: state.compare, "data-control": "compare", onchange: (ev: Event) => a.change({ compare: (ev.target as HTMLInputElement).checked }) }),
      " Compare with previous period",
    );
    replaceChildren(
      this.el,
      h("span", { class: "brand" }, "Gnomon"),
      h("span", { class: "merchant" }, merchant, forget),
      h("span", { class: "range" }, preset, custom),
      compare,
    );
  }

  /** What the numbers cover, as resolved by the server in the merchant's zone. */
  describe(report: ReportResponse): void {
    const range = report.dateRange;
    const cmp = report.comparisonRange;
    const meta = report.metadata;
    this.summary.dataset.start = range?.startDate ?? "";
    this.summary.dataset.end = range?.endDate ?? "";
    this.summary.dataset.compareStart = cmp?.startDate ?? "";
    this.summary.dataset.compareEnd = cmp?.endDate ?? "";
    replaceChildren(
      this.summary,
      range ? h("strong", { "data-testid": "range" }, rangeLabel(range.startDate, range.endDate)) : null,
      cmp ? ` vs ${rangeLabel(cmp.startDate, cmp.endDate)}` : null,
      meta ? ` · ${meta.timeZone} · ${meta.currencyCode}` : null,
      meta?.provisional ? h("span", { class: "badge", title: "Some hours are still open: numbers may still grow" }, "updating") : null,
    );
  }
}
