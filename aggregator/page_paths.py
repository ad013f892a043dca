"""Page paths from URLs, for events that sent a URL without a path (both decoders fill them the same way).

Pure; Python work once per distinct URL, never per event.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit


def paths_of(urls: Iterable[str]) -> dict[str, str]:
    """{url: its path}: "/" for a URL with a host but no path, "" for one that does not parse."""
    out: dict[str, str] = {}
    for url in urls:
        try:
            parts = urlsplit(url)
        except ValueError:
            out[url] = ""
            continue
        out[url] = parts.path or ("/" if parts.netloc else "")
    return out


def fill_page_paths(paths: list[str], urls: list[str]) -> list[str]:
    """`paths` with every "" replaced by the path of the same row's URL (one parse per distinct URL)."""
    missing = [i for i, p in enumerate(paths) if not p]
    if not missing:
        return paths
    derived = paths_of({urls[i] for i in missing if urls[i]})
    out = list(paths)
    for i in missing:
        url = urls[i]
        if url:
            out[i] = derived[url]
    return out
