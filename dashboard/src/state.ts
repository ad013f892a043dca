// What the overview shows, kept in the URL fragment (shareable, survives reloads); the token is not in it.

export type Preset = "today" | "yesterday" | "7d" | "28d" | "30d" | "custom";
export type Granularity = "auto" | "hour" | "day" | "week";

export interface DimFilter {
  dimension: string;
  value: string;
}

export interface State {
  preset: Preset;
  start: string; // custom range, YYYY-MM-DD
  end: string;
  compare: boolean;
  granularity: Granularity;
  metric: string;
  filters: DimFilter[];
}

export const PRESETS: { id: Preset; label: string }[] = [
  { id: "today", label: "Today" },
  { id: "yesterday", label: "Yesterday" },
  { id: "7d", label: "Last 7 days" },
  { id: "28d", label: "Last 28 days" },
  { id: "30d", label: "Last 30 days" },
  { id: "custom", label: "Custom…" },
];

export const DEFAULT_STATE: State = {
  preset: "28d",
  start: "",
  end: "",
  compare: true,
  granularity: "auto",
  metric: "totalUsers",
  filters: [],
};

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

/** The API's date range for the state: relative dates are resolved by the server in the merchant's zone. */
export function dateRange(state: State): { startDate: string; endDate: string } {
  switch (state.preset) {
    case "today":
      return { startDate: "today", endDate: "today" };
    case "yesterday":
      return { startDate: "yesterday", endDate: "yesterday" };
    case "7d":
      return { startDate: "7daysAgo", endDate: "yesterday" };
    case "28d":
      return { startDate: "28daysAgo", endDate: "yesterday" };
    case "30d":
      return { startDate: "30daysAgo", endDate: "yesterday" };
    case "custom":
      return { startDate: state.start || "7daysAgo", endDate: state.end || "today" };
  }
}

function rangeDays(state: State): number {
  switch (state.preset) {
    case "today":
    case "yesterday":
      return 1;
    case "7d":
      return 7;
    case "28d":
      return 28;
    case "30d":
      return 30;
    case "custom": {
      if (!ISO_DATE.test(state.start) || !ISO_DATE.test(state.end)) return 7;
      return Math.round((Date.parse(state.end) - Date.parse(state.start)) / 86_400_000) + 1;
    }
  }
}

/** The time-series grain: hours for one or two days, weeks beyond three months, days otherwise. */
export function effectiveGranularity(state: State): "hour" | "day" | "week" {
  if (state.granularity !== "auto") return state.granularity;
  const days = rangeDays(state);
  if (days <= 2) return "hour";
  return days > 92 ? "week" : "day";
}

export function toHash(state: State): string {
  const p = new URLSearchParams();
  p.set("range", state.preset);
  if (state.preset === "custom") {
    p.set("start", state.start);
    p.set("end", state.end);
  }
  if (!state.compare) p.set("compare", "0");
  if (state.granularity !== "auto") p.set("grain", state.granularity);
  if (state.metric !== DEFAULT_STATE.metric) p.set("metric", state.metric);
  for (const f of state.filters) p.append("filter", `${f.dimension}:${f.value}`);
  return `#${p.toString()}`;
}

export function fromHash(hash: string): State {
  const p = new URLSearchParams(hash.replace(/^#/, ""));
  const preset = PRESETS.find((x) => x.id === p.get("range"))?.id ?? DEFAULT_STATE.preset;
  const grain = p.get("grain");
  const filters: DimFilter[] = [];
  for (const raw of p.getAll("filter")) {
    const at = raw.indexOf(":");
    if (at > 0) filters.push({ dimension: raw.slice(0, at), value: raw.slice(at + 1) });
  }
  return {
    preset,
    start: ISO_DATE.test(p.get("start") ?? "") ? (p.get("start") as string) : "",
    end: ISO_DATE.test(p.get("end") ?? "") ? (p.get("end") as string) : "",
    compare: p.get("compare") !== "0",
    granularity: grain === "hour" || grain === "day" || grain === "week" ? grain : "auto",
    metric: p.get("metric") || DEFAULT_STATE.metric,
    filters,
  };
}
