"""Drive Debian's Chromium from Python through the dashboard's playwright-core driver (a node child process).

`Browser` speaks the JSON-lines protocol of `dashboard/scripts/browser-driver.mjs`: each method sends one command
and blocks for its answer; a failed command raises `BrowserError` with the driver's message. Needs `node`,
`dashboard/node_modules` (`npm ci`) and `/usr/bin/chromium` (or GNOMON_CHROMIUM); `missing_tools()` says
which are absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Final

DASHBOARD_DIR: Final = Path(__file__).resolve().parents[2] / "dashboard"
DRIVER: Final = DASHBOARD_DIR / "scripts" / "browser-driver.mjs"
CHROMIUM: Final = "/usr/bin/chromium"


class BrowserError(RuntimeError):
    """A driver command failed (the message is the driver's error), or the driver died."""


def chromium_path() -> str:
    return os.environ.get("GNOMON_CHROMIUM", CHROMIUM)


def missing_tools() -> list[str]:
    """What `make setup` should have installed but is not there (empty when the browser can run)."""
    missing = []
    if shutil.which("node") is None:
        missing.append("node (Node.js 20)")
    if not (DASHBOARD_DIR / "node_modules" / "playwright-core").is_dir():
        missing.append("dashboard/node_modules (run `npm ci` in dashboard/)")
    if not Path(chromium_path()).exists():
        missing.append(f"{chromium_path()} (apt-get install -y chromium)")
    return missing


class Browser:
    """One Chromium (one page) driven through the node driver; use as a context manager."""

    def __init__(self, timeout_s: float = 60.0) -> None:
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            ["node", str(DRIVER)],
            cwd=DASHBOARD_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "GNOMON_CHROMIUM": chromium_path()},
        )

    def command(self, op: str, **args: Any) -> Any:
        """Send one command and return its value. Raises BrowserError."""
        with self._lock:
            stdin, stdout = self._proc.stdin, self._proc.stdout
            assert stdin is not None and stdout is not None
            try:
                stdin.write(json.dumps({"op": op, **args}) + "\n")
                stdin.flush()
            except BrokenPipeError:
                raise BrowserError(f"the browser driver died: {self._stderr()}") from None
            line = stdout.readline()
            if not line:
                raise BrowserError(f"the browser driver died: {self._stderr()}")
            answer = json.loads(line)
            if not answer.get("ok"):
                raise BrowserError(f"{op} failed: {answer.get('error')}")
            return answer.get("value")

    def _stderr(self) -> str:
        if self._proc.poll() is None:
            self._proc.kill()
        stderr = self._proc.stderr.read() if self._proc.stderr else ""
        return stderr[-4000:]

    def launch(self, width: int = 1280, height: int = 800, *, mobile: bool = False) -> None:
        self.command("launch", width=width, height=height, mobile=mobile)

    def goto(self, url: str) -> int | None:
        status: int | None = self.command("goto", url=url)
        return status

    def eval(self, js: str) -> Any:
        """The JSON value of a JavaScript expression (a promise is awaited)."""
        return self.command("eval", js=js)

    def wait_for(self, js: str, timeout_s: float = 15.0) -> Any:
        """Wait until the JavaScript expression is truthy; returns its value. Raises BrowserError on timeout."""
        return self.command("waitFor", js=js, timeout=int(timeout_s * 1000))

    def click(self, selector: str) -> None:
        self.command("click", selector=selector)

    def fill(self, selector: str, value: str) -> None:
        self.command("fill", selector=selector, value=value)

    def select(self, selector: str, value: str) -> None:
        self.command("select", selector=selector, value=value)

    def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.command("screenshot", path=str(path), fullPage=full_page)
        return path

    def errors(self) -> list[str]:
        """Page errors and console errors since the last call."""
        errors: list[str] = self.command("errors")
        return errors

    def close(self) -> None:
        try:
            if self._proc.poll() is None:
                self.command("close")
                self._proc.wait(20)
        except (BrowserError, subprocess.TimeoutExpired, OSError):
            self._proc.kill()
        finally:
            for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    stream.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _newest_source_mtime() -> float:
    sources = [DASHBOARD_DIR / n for n in ("index.html", "package-lock.json", "vite.config.ts", "tsconfig.json")]
    sources += [p for p in (DASHBOARD_DIR / "src").rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in sources if p.exists())


def dashboard_is_built() -> bool:
    """dist/index.html exists and is newer than every source file."""
    index = DASHBOARD_DIR / "dist" / "index.html"
    return index.is_file() and index.stat().st_mtime >= _newest_source_mtime()


def ensure_dashboard_built() -> Path:
    """Run `npm run build` in dashboard/ when dist/ is missing or older than the sources; returns dist/.

    Raises BrowserError with the build output when the build fails."""
    if not dashboard_is_built():
        npm = shutil.which("npm")
        if npm is None:
            raise BrowserError("npm is not installed: run `make setup`")
        done = subprocess.run([npm, "run", "build"], cwd=DASHBOARD_DIR, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BrowserError(f"`npm run build` failed in dashboard/:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return DASHBOARD_DIR / "dist"
