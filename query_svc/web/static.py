"""The built dashboard (Vite output: index.html + content-hashed files under assets/) as an ASGI app.

Security headers on every file: a Content-Security-Policy allowing only this origin (scripts, styles, calls),
no framing, nosniff, no referrer.

Caching: files under `/assets/` carry a content hash in their name, so they are `immutable` for a year;
everything else (index.html) is revalidated on every load (`no-cache`, with ETag). Unknown paths without a file
extension get index.html (the dashboard keeps its state in the URL). When the dashboard was not built, every
page says how to build it (503).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import PlainTextResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS: Final = (
    # the page talks to its own origin only; uPlot and the bars set inline style attributes
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self';"
        b" frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
IMMUTABLE: Final = b"public, max-age=31536000, immutable"
REVALIDATE: Final = b"no-cache"
NOT_BUILT: Final = (
    "The dashboard is not built: run `make dashboard` (or `npm ci && npm run build` in dashboard/),"
    " or point GNOMON_WEB_STATIC_DIR at a built copy.\n"
)


class _CacheHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        value = IMMUTABLE if path.startswith("/assets/") else REVALIDATE

        async def send_with_cache(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"cache-control", value)] if message.get("status", 200) < 400 else []
                message["headers"] = [*message.get("headers", []), *extra, *SECURITY_HEADERS]
            await send(message)

        await self._app(scope, receive, send_with_cache)


class _SpaFallback:
    """Serve index.html for extension-less paths that are not files (e.g. /overview)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "/")
        last = path.rsplit("/", 1)[-1]
        if scope["type"] == "http" and last and "." not in last and not path.startswith("/assets/"):
            scope = {**scope, "path": "/"}
        await self._app(scope, receive, send)


class DashboardFiles:
    """The dashboard's files under `directory`; until they are built, a 503 page saying how to build them."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._app: ASGIApp | None = None

    @property
    def built(self) -> bool:
        return (self._directory / "index.html").is_file()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            if not self.built:
                await PlainTextResponse(NOT_BUILT, status_code=503)(scope, receive, send)
                return
            files = StaticFiles(directory=self._directory, html=True)
            self._app = _CacheHeaders(_SpaFallback(GZipMiddleware(files, minimum_size=1024)))
        await self._app(scope, receive, send)
