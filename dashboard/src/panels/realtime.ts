// Realtime: active users in the last 30 minutes (raw events, bots excluded), per-minute bars and the pages
// being viewed now. Refreshes itself every `intervalMs` (10 s), while the page is visible.
import { create } from "@bufbuild/protobuf";
import { RealtimeRequestSchema, type RealtimeResponse } from "../gen/gnomon/v1/query_pb";
import { h, replaceChildren } from "../dom";
import { formatInt } from "../format";
import { describe, isAbort } from "../api";
import { guarded, type Panel, type PanelContext } from "./context";
import { PanelFrame } from "./panel";

export const REALTIME_MINUTES = 30;
export const REALTIME_REFRESH_MS = 10_000;

export class RealtimePanel implements Panel {
  private readonly frame = new PanelFrame("realtime", "Realtime", "panel-realtime");
  readonly el = this.frame.el;
  private timer: number | undefined;
  private ctx: PanelContext | null = null;
  private refreshes = 0;

  constructor(private readonly intervalMs: number = REALTIME_REFRESH_MS) {
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && this.ctx && !this.ctx.signal.aborted) this.schedule(0);
    });
  }

  load(ctx: PanelContext): Promise<void> {
    this.ctx = ctx;
    window.clearTimeout(this.timer);
    return this.tick(ctx, false); // new filters or token: show loading, never the old numbers as current
  }

  private schedule(delay: number): void {
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => {
      const ctx = this.ctx;
      if (!ctx || ctx.signal.aborted) return;
      if (document.visibilityState !== "visible") return; // resumes on visibilitychange
      void this.tick(ctx);
    }, delay);
  }

  private async tick(ctx: PanelContext, periodic = true): Promise<void> {
    // a periodic refresh keeps the numbers on screen, also when it fails for a moment
    const shown = this.frame.el.dataset.state === "ready" || this.frame.el.dataset.state === "stale";
    const quiet = periodic && shown;
    const work = async () => {
      const request = create(RealtimeRequestSchema, {
        minutes: REALTIME_MINUTES,
        dimensions: ["pagePath"],
        metrics: ["activeUsers"],
        dimensionFilter: ctx.filter,
        limit: 5n,
      });
      const response = await ctx.client.realtime(request, { signal: ctx.signal });
      if (!ctx.signal.aborted) this.render(response);
    };
    if (quiet) {
      try {
        await work();
        if (!ctx.signal.aborted) this.frame.ready();
      } catch (err) {
        if (ctx.signal.aborted || isAbort(err)) return;
        const problem = describe(err, ctx.filterWords);
        if (problem.transient) this.frame.stale(problem);
        else {
          this.frame.error(problem);
          ctx.report(problem);
        }
      }
    } else {
      await guarded(this.frame, ctx, work, () => void this.tick(ctx), false); // the 10 s timer retries
    }
    if (!ctx.signal.aborted) this.schedule(this.intervalMs);
  }

  private render(rt: RealtimeResponse): void {
    this.refreshes += 1;
    const max = Math.max(1, ...rt.minutes.map((m) => Number(m.activeUsers)));
    const bars = rt.minutes.map((m) => {
      const users = Number(m.activeUsers);
      const ago = m.minutesAgo === 0 ? "this minute" : `${m.minutesAgo} min ago`;
      return h(
        "div",
        {
          class: "bar",
          "data-minutes-ago": m.minutesAgo,
          "data-minute-start": m.minuteStart ? String(m.minuteStart.seconds) : "",
          "data-value": m.activeUsers.toString(),
          title: `${ago}: ${formatInt(users)} active users, ${formatInt(Number(m.eventCount))} events`,
        },
        h("span", { style: `height:${users ? Math.max(4, (users / max) * 100) : 0}%` }),
      );
    });
    const pages = rt.rows.map((row) =>
      h(
        "li",
        { "data-dim-value": row.dimensionValues[0] ?? "" },
        h("span", { class: "dim-text" }, row.dimensionValues[0] ?? ""),
        h("span", { class: "num", "data-value": valueText(row.metricValues[0]?.value) }, formatInt(Number(valueText(row.metricValues[0]?.value)))),
      ),
    );
    this.frame.el.dataset.refreshes = String(this.refreshes);
    replaceChildren(
      this.frame.body,
      h(
        "div",
        { class: "rt-head" },
        h("div", { class: "rt-number", "data-metric": "activeUsers", "data-value": rt.activeUsers.toString() }, formatInt(Number(rt.activeUsers))),
        h("div", { class: "rt-caption" }, `active users in the last ${REALTIME_MINUTES} minutes`, h("br", {}), h("span", { class: "muted", "data-metric": "eventCount", "data-value": rt.eventCount.toString() }, `${formatInt(Number(rt.eventCount))} events`)),
      ),
      h("div", { class: "rt-bars", role: "img", "aria-label": "Active users per minute, oldest first" }, ...bars),
      h("div", { class: "rt-axis muted", "aria-hidden": "true" }, h("span", {}, `−${REALTIME_MINUTES} min`), h("span", {}, "now")),
      pages.length ? h("div", {}, h("h3", {}, "Pages now"), h("ol", { class: "rt-pages" }, ...pages)) : h("p", { class: "empty" }, "Nobody in the last 30 minutes."),
    );
  }
}

function valueText(v: { case: string | undefined; value?: unknown } | undefined): string {
  if (!v || v.value === undefined) return "0";
  return String(v.value);
}
