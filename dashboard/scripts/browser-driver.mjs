// Drives Debian's Chromium with playwright-core for the browser tests and the first-paint benchmark.
// Protocol: one JSON command per line on stdin, one JSON answer per line on stdout ({ok, value} or {ok:false, error}).
// Commands: launch {width, height, mobile, locale}, goto {url}, eval {js}, waitFor {js, timeout}, click {selector},
// fill {selector, value}, select {selector, value}, screenshot {path, fullPage}, errors {}, close {}.
import { createInterface } from "node:readline";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const executablePath = process.env.GNOMON_CHROMIUM ?? "/usr/bin/chromium";
const profile = mkdtempSync(join(tmpdir(), "gnomon-chromium-"));
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let context = null;
let page = null;
const errors = [];

async function launch({ width = 1280, height = 800, mobile = false, locale = "en-US" }) {
  if (context) await context.close();
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: ARGS,
    viewport: { width, height },
    deviceScaleFactor: mobile ? 2 : 1,
    isMobile: mobile,
    hasTouch: mobile,
    locale,
    timezoneId: "UTC",
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (err) => errors.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    // failed loads are reported with their URL below
    if (msg.type() === "error" && !msg.text().startsWith("Failed to load resource")) errors.push(`console: ${msg.text()}`);
  });
  page.on("response", (res) => {
    if (res.status() >= 400) errors.push(`http ${res.status()}: ${res.url()}`);
  });
  page.on("requestfailed", (req) => {
    const failure = req.failure()?.errorText ?? "";
    if (!failure.includes("ERR_ABORTED")) errors.push(`request failed: ${req.url()} ${failure}`);
  });
  return { width, height };
}

const commands = {
  launch,
  goto: async ({ url, waitUntil = "load" }) => {
    const response = await page.goto(url, { waitUntil });
    return response?.status() ?? null;
  },
  eval: async ({ js }) => page.evaluate(js),
  // Polls page.evaluate (DevTools' evaluate is not subject to the page's CSP; waitForFunction's string
  // predicates are, as the dashboard forbids eval).
  waitFor: async ({ js, timeout = 15000 }) => {
    const deadline = Date.now() + timeout;
    for (;;) {
      const value = await page.evaluate(js).catch(() => null);
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`waitFor: ${timeout} ms passed and still falsy: ${js}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  },
  click: async ({ selector }) => page.click(selector),
  fill: async ({ selector, value }) => page.fill(selector, value),
  select: async ({ selector, value }) => page.selectOption(selector, value),
  screenshot: async ({ path, fullPage = true }) => {
    if (fullPage) await page.evaluate(() => window.scrollTo(0, 0)); // sticky bars stay on top of the picture
    await page.screenshot({ path, fullPage });
    return path;
  },
  errors: async () => errors.splice(0),
  close: async () => {
    if (context) await context.close();
    context = null;
    return true;
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    const cmd = JSON.parse(line);
    const run = commands[cmd.op];
    if (!run) throw new Error(`unknown op ${cmd.op}`);
    answer = { ok: true, value: (await run(cmd)) ?? null };
    if (cmd.op === "close") {
      process.stdout.write(`${JSON.stringify(answer)}\n`);
      break;
    }
  } catch (err) {
    answer = { ok: false, error: String(err?.stack ?? err) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
if (context) await context.close();
rmSync(profile, { recursive: true, force: true });
process.exit(0); // stdin may still be open: do not wait for it
