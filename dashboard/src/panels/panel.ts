// A panel's frame: title, optional controls, a body, and a status line for loading and errors.
// `data-state` (loading | ready | error) and `data-problem` make the state visible to people and to tests.
import type { Problem } from "../api";
import { h, replaceChildren } from "../dom";

export class PanelFrame {
  readonly el: HTMLElement;
  readonly body: HTMLElement;
  readonly controls: HTMLElement;
  private readonly status: HTMLElement;
  /** Consecutive transient failures (for the retry back-off). */
  failures = 0;

  constructor(id: string, title: string, className = "") {
    this.controls = h("div", { class: "panel-controls" });
    this.status = h("div", { class: "panel-status", role: "status", "aria-live": "polite" });
    this.body = h("div", { class: "panel-body" });
    this.el = h(
      "section",
      { class: `panel ${className}`.trim(), "data-panel": id, "data-state": "loading", "aria-busy": "true" },
      h("header", { class: "panel-header" }, h("h2", {}, title), this.controls),
      this.status,
      this.body,
    );
  }

  loading(): void {
    this.el.dataset.state = "loading";
    this.el.setAttribute("aria-busy", "true");
    delete this.el.dataset.problem;
    if (!this.body.childElementCount) replaceChildren(this.status, h("span", { class: "loading-line" }, "Loading…"));
    else replaceChildren(this.status);
  }

  ready(): void {
    this.el.dataset.state = "ready";
    this.el.setAttribute("aria-busy", "false");
    delete this.el.dataset.problem;
    replaceChildren(this.status);
  }

  /** A refresh failed but the last numbers stay on screen, marked as not current. */
  stale(problem: Problem): void {
    this.el.dataset.state = "stale";
    this.el.dataset.problem = problem.kind;
    this.el.setAttribute("aria-busy", "false");
    replaceChildren(this.status, h("p", { class: "stale-note" }, `Not updated: ${problem.title}`));
  }

  error(problem: Problem, retry?: () => void): void {
    this.el.dataset.state = "error";
    this.el.dataset.problem = problem.kind;
    this.el.setAttribute("aria-busy", "false");
    replaceChildren(this.body);
    replaceChildren(
      this.status,
      h(
        "div",
        { class: `problem problem-${problem.kind}` },
        h("p", { class: "problem-title" }, problem.title),
        problem.detail && problem.detail !== problem.title
          ? problem.kind === "filters"
            ? h("details", { class: "problem-detail" }, h("summary", {}, "Why?"), problem.detail)
            : h("p", { class: "problem-detail" }, problem.detail)
          : null,
        retry && problem.kind !== "token" && problem.kind !== "filters"
          ? h("button", { type: "button", class: "link", onclick: () => retry() }, "Retry now")
          : null,
      ),
    );
  }
}
