// Numbers as the dashboard shows them. The raw value (exactly as the API sent it) is kept beside the text.
import { MetricType, type MetricValue } from "./gen/gnomon/v1/query_pb";

export interface Value {
  /** The API's value as text: int64 digits, the double's shortest form, or the exact decimal string. */
  raw: string;
  /** For arithmetic (deltas, charts, bars). */
  num: number;
}

export function valueOf(v: MetricValue | undefined): Value {
  switch (v?.value.case) {
    case "intValue":
      return { raw: v.value.value.toString(), num: Number(v.value.value) };
    case "doubleValue":
      return { raw: String(v.value.value), num: v.value.value };
    case "decimalValue":
      return { raw: v.value.value, num: Number(v.value.value) };
    default:
      return { raw: "0", num: 0 };
  }
}

const locale = (): string => navigator.language || "en-US";

export function formatInt(n: number): string {
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: 0 }).format(n);
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

export function formatValue(value: Value, type: MetricType, currency: string): string {
  switch (type) {
    case MetricType.FLOAT:
      return new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 1 }).format(value.num);
    case MetricType.SECONDS:
      return formatDuration(value.num);
    case MetricType.CURRENCY:
      try {
        return new Intl.NumberFormat(locale(), { style: "currency", currency: currency || "USD" }).format(value.num);
      } catch {
        return `${value.raw} ${currency}`;
      }
    default:
      return formatInt(value.num);
  }
}

/** Axis labels: compact. */
export function formatAxis(n: number, type: MetricType, currency: string): string {
  if (type === MetricType.FLOAT) return `${Math.round(n * 100)}%`;
  if (type === MetricType.SECONDS) return formatDuration(n);
  const compact = new Intl.NumberFormat(locale(), { notation: "compact", maximumFractionDigits: 1 }).format(n);
  return type === MetricType.CURRENCY ? `${compact} ${currency}` : compact;
}

export interface Delta {
  text: string;
  /** "up" / "down" / "flat"; `good` says whether the change is good news for this metric. */
  direction: "up" | "down" | "flat";
  good: boolean | null;
}

/** Change from `prev` to `cur`: relative for counts and money, percentage points for ratios. */
export function delta(cur: number, prev: number, type: MetricType, lowerIsBetter: boolean): Delta {
  if (type === MetricType.FLOAT) {
    const pp = (cur - prev) * 100;
    const direction = Math.abs(pp) < 0.05 ? "flat" : pp > 0 ? "up" : "down";
    if (direction === "flat") return { text: "no change", direction, good: null };
    const good = (direction === "up") !== lowerIsBetter;
    return { text: `${pp >= 0 ? "+" : "−"}${Math.abs(pp).toFixed(1)} pp`, direction, good };
  }
  if (prev === 0) {
    if (cur === 0) return { text: "no change", direction: "flat", good: null };
    return { text: "new", direction: "up", good: !lowerIsBetter };
  }
  const pct = ((cur - prev) / Math.abs(prev)) * 100;
  const direction = Math.abs(pct) < 0.05 ? "flat" : pct > 0 ? "up" : "down";
  if (direction === "flat") return { text: "no change", direction, good: null };
  const good = (direction === "up") !== lowerIsBetter;
  const digits = Math.abs(pct) >= 10 ? 0 : 1;
  return { text: `${pct >= 0 ? "+" : "−"}${Math.abs(pct).toFixed(digits)}%`, direction, good };
}

/** "20261125" / "2026112514" / "202647" / "202611" as a short label. */
export function periodLabel(key: string, granularity: "hour" | "day" | "week" | "month"): string {
  const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  if (granularity === "week") return `W${key.slice(4)} ${key.slice(0, 4)}`;
  if (granularity === "month") return `${months[Number(key.slice(4, 6)) - 1] ?? key} ${key.slice(0, 4)}`;
  const day = `${months[Number(key.slice(4, 6)) - 1] ?? "?"} ${Number(key.slice(6, 8))}`;
  if (granularity === "hour") return `${day} ${key.slice(8, 10)}:00`;
  return day;
}

/** "2026-11-25" as "Nov 25, 2026". */
export function dateLabel(iso: string): string {
  const [y, m, d] = iso.split("-").map(Number);
  if (!y || !m || !d) return iso;
  return new Intl.DateTimeFormat(locale(), { month: "short", day: "numeric", year: "numeric", timeZone: "UTC" }).format(
    new Date(Date.UTC(y, m - 1, d)),
  );
}

export function rangeLabel(start: string, end: string): string {
  return start === end ? dateLabel(start) : `${dateLabel(start)} – ${dateLabel(end)}`;
}
