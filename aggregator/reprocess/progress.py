"""The job's progress on a terminal: one rich bar per phase with events/s and the time remaining."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class ConsoleReport:
    """`job.Report` on a rich console; use as a context manager."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._bars = Progress(
            TextColumn("{task.description:<8}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            TextColumn("{task.fields[events]:>12,} events {task.fields[rate]:>10,.0f}/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self._tasks: dict[str, tuple[TaskID, float]] = {}

    def __enter__(self) -> ConsoleReport:
        self._bars.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._bars.stop()

    def phase(self, text: str) -> None:
        self._bars.console.print(text)

    def progress(self, phase: str, done: float, total: float, events: int) -> None:
        if phase not in self._tasks:
            self._tasks[phase] = (self._bars.add_task(phase, total=total, events=0, rate=0.0), time.monotonic())
        task, started = self._tasks[phase]
        rate = events / max(1e-6, time.monotonic() - started)
        self._bars.update(task, completed=done, total=total, events=events, rate=rate)
