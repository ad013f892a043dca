"""Fast regex search predicates: RE2 (PyPI `google-re2`) when importable and the pattern is RE2-compatible,
else Python's `re`. Both give the same match/no-match answer for the patterns used here (no look-arounds or
back-references reach RE2). RE2 runs in linear time, so no input can make a search backtrack catastrophically.

Contract: the returned predicate never raises for any `str`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from typing import Any

Predicate = Callable[[str], bool]

_RE2_UNSUPPORTED = re.compile(r"\(\?[=!<]|\\[1-9]")  # look-arounds and back-references


def re2_compatible(pattern: str) -> bool:
    """Whether RE2 can compile `pattern` with the same meaning (a conservative syntactic check)."""
    return _RE2_UNSUPPORTED.search(pattern) is None


def alternation(patterns: Sequence[str]) -> str:
    """One pattern matching wherever any of `patterns` matches."""
    return "(?:" + "|".join(f"(?:{p})" for p in patterns) + ")"


def search_predicate(pattern: str, *, ignore_case: bool = False, use_re2: bool = True) -> Predicate:
    """``predicate(text)`` is True when `pattern` matches anywhere in `text`."""
    if use_re2 and re2_compatible(pattern):
        re2 = _re2_module()
        if re2 is not None:
            options = re2.Options()
            options.case_sensitive = not ignore_case
            options.max_mem = 32 << 20
            fast = re2.compile(pattern, options)
            return lambda text: fast.search(text) is not None
    compiled = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    return lambda text: compiled.search(text) is not None


def any_predicate(patterns: Sequence[str], *, ignore_case: bool = False, use_re2: bool = True) -> Predicate:
    """``predicate(text)`` is True when any of `patterns` matches; RE2-compatible ones share one RE2 program."""
    fast = [p for p in patterns if use_re2 and re2_compatible(p)]
    slow = [p for p in patterns if not (use_re2 and re2_compatible(p))]
    checks = [
        search_predicate(alternation(group), ignore_case=ignore_case, use_re2=use_re2)
        for group in (fast, slow)
        if group
    ]
    if not checks:
        return lambda _text: False
    if len(checks) == 1:
        return checks[0]
    first, second = checks
    return lambda text: first(text) or second(text)


def _re2_module() -> Any:
    """The `re2` module of google-re2 (untyped: imported dynamically), or None when not installed."""
    try:
        return importlib.import_module("re2")
    except ImportError:
        return None


def re2_available() -> bool:
    """Whether `google-re2` is importable in this process."""
    return _re2_module() is not None
