// What every panel gets for one refresh of the dashboard, and the one way panels run a query.
import { describe, isAbort, type Problem, type QueryClient } from "../api";
import type { FilterExpression } from "../gen/gnomon/v1/query_pb";
import type { State } from "../state";
import type { PanelFrame } from "./panel";

export interface PanelContext {
  client: QueryClient;
  state: State;
  /** The dashboard filters as an expression (undefined when none), and in words ("Device and Page"). */
  filter: FilterExpression | undefined;
  filterWords: string;
  /** Aborted when a newer refresh starts. */
  signal: AbortSignal;
  /** Filter every panel by a dimension value (a clicked row). */
  addFilter(dimension: string, value: string): void;
  /** Tell the dashboard about a failure (a refused token is handled once, for the whole page). */
  report(problem: Problem): void;
}

export interface Panel {
  readonly el: HTMLElement;
  /** Query and render; never throws: failures are shown in the panel and reported through `ctx.report`. */
  load(ctx: PanelContext): Promise<void>;
}

const FIRST_RETRY_MS = 2_000;
const MAX_RETRY_MS = 60_000;

/** Run `work` with the frame's loading / ready / error states; stale (aborted) refreshes are ignored.
 * A transient failure (service unreachable, busy, slow) is retried by itself, backing off from 2 s to 60 s. */
export async function guarded(
  frame: PanelFrame,
  ctx: PanelContext,
  work: () => Promise<void>,
  retry?: () => void,
  autoRetry = true,
) {
  frame.loading();
  try {
    await work();
    if (!ctx.signal.aborted) {
      frame.ready();
      frame.failures = 0;
    }
  } catch (err) {
    if (ctx.signal.aborted || isAbort(err)) return;
    const problem = describe(err, ctx.filterWords);
    frame.error(problem, retry);
    ctx.report(problem);
    if (problem.transient && retry && autoRetry) {
      const delay = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** frame.failures);
      frame.failures += 1;
      window.setTimeout(() => {
        if (!ctx.signal.aborted && frame.el.dataset.state === "error") retry();
      }, delay);
    }
  }
}
