"""User-agent string -> device category, browser, operating system, bot flag (GA4 naming).

Parsing: `ua-parser` 1.x (uap-core regexes from `ua-parser-builtins`) through its Rust resolver
(`ua-parser-rs`) when installed, else its pure-Python resolver. Browser and OS families are renamed to the names
GA4 reports ("Macintosh", "Safari", "Edge", "Samsung Internet", ...). uap-core has no device *type*, so the
device category comes from the ordered, table-driven rules below (GA4's categories: "desktop", "mobile",
"tablet", "smart tv"; anything else "other"). Bots: see `aggregator.derive._bots`.

Vectorization: `UserAgentStep.apply` parses each distinct UA of a batch once, through a bounded LRU cache kept
across batches (keyed by the UA string); rows get their values by a take on the factorized codes.

Contracts:
- `UserAgentParser()(ua)` is a pure function of `ua` and never raises for any `str`. Strings longer than
  `max_length` characters are parsed on their first `max_length` characters.
- An empty (or all-whitespace / missing) UA gives "(not set)" for device category, browser and OS, is_bot False.
- Unknown browsers / OSes give "(not set)"; unrecognised devices "other".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from aggregator.derive._bots import BotMatcher
from aggregator.derive._regex import Predicate, search_predicate
from aggregator.derive._vector import (
    NOT_SET,
    LruCache,
    StepStats,
    expand_bool,
    expand_categorical,
    resolve,
    string_codes,
    valid_utf8,
)

DESKTOP: Final = "desktop"
MOBILE: Final = "mobile"
TABLET: Final = "tablet"
SMART_TV: Final = "smart tv"
OTHER: Final = "other"

# --- data tables -----------------------------------------------------------------------------------------------

# Ordered (category, pattern) rules on the raw UA string; the first match wins. Patterns are case-sensitive
# unless they say (?i). Windows desktops come before tablets so that "Tablet PC" Windows UAs stay desktop.
DEVICE_RULES: Final[tuple[tuple[str, str], ...]] = (
    (
        SMART_TV,
        r"SMART-?TV|SmartTV|Smart-TV|SMART_TV|HbbTV|\bWeb0S\b|webOS\.TV|NetCast|BRAVIA|AppleTV|Apple TV|\btvOS\b|"
        r"GoogleTV|Google TV|Android ?TV|\bCrKey\b|\bRoku|\bAFT[A-Z0-9]|Opera TV|\bDTV\b|VIDAA|Viera|AQUOS|"
        r"\bTizen\b.*\bTV\b|\bTV Safari\b|FireTV|\bTV\b",
    ),
    (OTHER, r"PlayStation|\bXbox\b|Nintendo"),  # game consoles
    (MOBILE, r"Windows Phone|Windows Mobile|IEMobile|WPDesktop"),
    (DESKTOP, r"Windows NT|Windows (?:98|95|XP|ME|2000|3\.1)|\bWin(?:98|95|NT|32|64)\b|\bCrOS\b|Chromebook"),
    (
        TABLET,
        r"iPad|(?i:tablet)|Kindle|\bSilk/|PlayBook|\bNexus (?:7|9|10)\b|\bSM-[TXP]\d|\bGT-P\d|Xoom|"
        r"\bLenovo TB|\bTB-[0-9X]|MediaPad|MatePad|Pixel Tablet|\bTab\b|\bPad\b|\bKF[A-Z]{2,4}\b",
    ),
    (
        MOBILE,
        r"Mobi|iPhone|iPod|BlackBerry|\bBB10\b|KAIOS|KaiOS|Opera Mini|J2ME|MIDP|Symbian|SymbOS|Series ?[46]0|"
        r"\bS60\b|Nokia|\bPalm|Windows CE|\bBada\b|\bTizen\b|Watch|Wear ?OS|UCWEB|Fennec|Phone|Obigo",
    ),
    # A *browser* on Android without a "Mobile" token is a tablet (Google's UA guidance for Chrome and Firefox);
    # Android apps and libraries (Dalvik, okhttp, ...) without it are mostly phones.
    (TABLET, r"Android.*(?:AppleWebKit|Gecko/|Presto)"),
    (MOBILE, r"Android|Dalvik"),
    (
        DESKTOP,
        r"Macintosh|Mac OS X|Mac_PowerPC|\bX11\b|\bLinux\b|FreeBSD|OpenBSD|NetBSD|SunOS|Ubuntu|Fedora|"
        r"Debian|Haiku|OS/2|\bBeOS\b|AmigaOS",
    ),
)

# uap-core OS family -> category, when no UA rule matched (e.g. app UAs that name only the OS).
OS_CATEGORY: Final[dict[str, str]] = {
    "iOS": MOBILE,
    "Android": MOBILE,
    "Windows Phone": MOBILE,
    "BlackBerry OS": MOBILE,
    "KaiOS": MOBILE,
    "Symbian OS": MOBILE,
    "Windows": DESKTOP,
    "Mac OS X": DESKTOP,
    "Linux": DESKTOP,
    "Ubuntu": DESKTOP,
    "Chrome OS": DESKTOP,
}

# uap-core user-agent family -> GA4 browser name. Families not listed pass through unchanged.
BROWSER_NAMES: Final[dict[str, str]] = {
    "Chrome": "Chrome",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chromium": "Chrome",
    "Chrome Frame": "Chrome",
    "HeadlessChrome": "Chrome",
    "Chrome Mobile WebView": "Android Webview",
    "Safari": "Safari",
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari (in-app)",
    "Firefox": "Firefox",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Firefox Beta": "Firefox",
    "Firefox Alpha": "Firefox",
    "Firefox Focus": "Firefox",
    "Edge": "Edge",
    "Edge Mobile": "Edge",
    "Samsung Internet": "Samsung Internet",
    "Opera": "Opera",
    "Opera Mobile": "Opera",
    "Opera Mini": "Opera Mini",
    "IE": "Internet Explorer",
    "IE Mobile": "Internet Explorer",
    "Yandex Browser": "YaBrowser",
    "UC Browser": "UC Browser",
    "Amazon Silk": "Amazon Silk",
    "Silk": "Amazon Silk",
    "Android": "Android Browser",
    "Other": NOT_SET,
}

# uap-core OS family -> GA4 operating system name. Families not listed pass through unchanged.
OS_NAMES: Final[dict[str, str]] = {
    "Windows": "Windows",
    "Mac OS X": "Macintosh",
    "Mac OS": "Macintosh",
    "iOS": "iOS",
    "iPadOS": "iOS",
    "ATV OS X": "tvOS",
    "Android": "Android",
    "Chrome OS": "Chrome OS",
    "Linux": "Linux",
    "Ubuntu": "Linux",
    "Kubuntu": "Linux",
    "Xubuntu": "Linux",
    "Lubuntu": "Linux",
    "Debian": "Linux",
    "Fedora": "Linux",
    "Red Hat": "Linux",
    "CentOS": "Linux",
    "SUSE": "Linux",
    "openSUSE": "Linux",
    "Mint": "Linux",
    "Linux Mint": "Linux",
    "Arch Linux": "Linux",
    "Gentoo": "Linux",
    "Slackware": "Linux",
    "Mandriva": "Linux",
    "elementary OS": "Linux",
    "Windows Phone": "Windows Phone",
    "Windows Mobile": "Windows Phone",
    "BlackBerry OS": "BlackBerry",
    "BlackBerry Tablet OS": "BlackBerry",
    "Web0S": "webOS",
    "webOS": "webOS",
    "Other": NOT_SET,
}

# Windows releases that uap-core reports as their own family (e.g. "Windows 7" in older rule sets).
_WINDOWS_FAMILY = re.compile(r"^Windows(?: (?:NT|XP|Vista|7|8|8\.1|10|11|RT|2000|98|95|ME|CE))?(?: .*)?$")

# --- parsing ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UaResult:
    """What one UA string derives to."""

    device_category: str
    browser: str
    os: str
    is_bot: bool


UA_NOT_SET: Final = UaResult(NOT_SET, NOT_SET, NOT_SET, False)


def _compile_rules(rules: Sequence[tuple[str, str]]) -> list[tuple[str, Predicate]]:
    return [(category, search_predicate(pattern)) for category, pattern in rules]


class UserAgentParser:
    """Callable UA parser: ``parser(ua) -> UaResult``. Build once per process (compiles ~2k regexes, ~0.5 s)."""

    def __init__(self, *, max_length: int = 1024, bots: Callable[[str], bool] | None = None) -> None:
        from ua_parser import BestAvailableResolver, Domain, load_builtins

        self._resolver = BestAvailableResolver(load_builtins())
        # Device brand/model are not used (no device type in uap-core); bots come from `BotMatcher`.
        self._domains = Domain.USER_AGENT | Domain.OS
        self.backend = type(self._resolver).__module__  # "ua_parser.regex" = the Rust resolver
        self._bots = bots if bots is not None else BotMatcher()
        self._rules = _compile_rules(DEVICE_RULES)
        self.max_length = max_length

    def __call__(self, ua: str) -> UaResult:
        ua = valid_utf8(ua.strip()[: self.max_length])
        if not ua:
            return UA_NOT_SET
        parsed = self._resolver(ua, self._domains)
        ua_family = parsed.user_agent.family if parsed.user_agent is not None else "Other"
        os_family = parsed.os.family if parsed.os is not None else "Other"
        return UaResult(
            device_category=self._category(ua, os_family),
            browser=browser_name(ua_family),
            os=os_name(os_family),
            is_bot=self._bots(ua),
        )

    def _category(self, ua: str, os_family: str) -> str:
        for category, matches in self._rules:
            if matches(ua):
                return category
        return OS_CATEGORY.get(os_family, OTHER)


def browser_name(family: str) -> str:
    """GA4 browser name for a uap-core user-agent family."""
    return BROWSER_NAMES.get(family, family) or NOT_SET


def os_name(family: str) -> str:
    """GA4 operating-system name for a uap-core OS family."""
    name = OS_NAMES.get(family)
    if name is not None:
        return name
    if family.startswith("Windows") and _WINDOWS_FAMILY.match(family):
        return "Windows"
    return family or NOT_SET


# --- the vectorized step ---------------------------------------------------------------------------------------

UA_OUTPUT_COLUMNS: Final = ("device_category", "browser", "os", "is_bot")


class UserAgentStep:
    """Derives `UA_OUTPUT_COLUMNS` from a column of UA strings, once per distinct UA (LRU-cached across batches).

    `parse` defaults to a `UserAgentParser` built on first use. Not thread-safe: one step object per thread.
    """

    def __init__(self, parse: Callable[[str], UaResult] | None = None, *, cache_size: int = 20_000) -> None:
        self._parse = parse
        self.cache: LruCache[str, UaResult] = LruCache(cache_size)
        self.stats = StepStats()

    @property
    def parse(self) -> Callable[[str], UaResult]:
        if self._parse is None:
            self._parse = UserAgentParser()
        return self._parse

    def run(self, frame: pd.DataFrame) -> dict[str, pd.Categorical | npt.NDArray[np.bool_]]:
        """`apply` to ``frame["user_agent"]``."""
        return self.apply(frame["user_agent"])

    def apply(self, user_agents: pd.Series | Sequence[object]) -> dict[str, pd.Categorical | npt.NDArray[np.bool_]]:
        """Row-aligned output columns for `user_agents` (categoricals; is_bot a bool array)."""
        codes, distinct = string_codes(user_agents)
        results = resolve(distinct, self.cache, self._safe_parse, self.stats)
        self.stats.batches += 1
        self.stats.rows += len(codes)
        return {
            "device_category": expand_categorical(codes, [r.device_category for r in results]),
            "browser": expand_categorical(codes, [r.browser for r in results]),
            "os": expand_categorical(codes, [r.os for r in results]),
            "is_bot": expand_bool(codes, [r.is_bot for r in results]),
        }

    def _safe_parse(self, ua: str) -> UaResult:
        if not ua or ua.isspace():
            return UA_NOT_SET
        return self.parse(ua)
