"""Who may call the API and what browsers may do with its pages.

- :class:`Access` checks every ``/v1`` request: its origin (a browser page of another origin is
  refused, see below), its API key when the server has one (``X-API-Key: KEY`` or
  ``Authorization: Bearer KEY``, compared in constant time, never logged), then the client's
  rate limit.
- Cross-origin requests: CORS is closed unless ``allow_origins`` opens it, but a browser sends
  some cross-origin requests without asking first (a form POST, ``fetch`` in ``no-cors`` mode
  with a multipart body), and only hides the answer: inference would run. So any request whose
  ``Sec-Fetch-Site`` is ``cross-site``/``same-site``, or whose ``Origin`` is not this server's
  own (``null`` included), is refused with 403 before its body is read, unless its origin is
  allowed. Clients that are not browsers send neither header and pass.
- :class:`SecurityHeaders` (ASGI middleware): nosniff, no referrer, no framing, and a Content
  Security Policy: the page may load its own scripts, styles and audio worklet only; API
  answers may load nothing.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.requests import Request

from sertk.server.limits import RateLimiter
from sertk.server.uploads import ApiError

log = logging.getLogger("sertk.server")
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# FastAPI's /docs and /redoc pages load their viewer from a CDN with an inline script
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https:; "
    "connect-src 'self'; worker-src blob:; frame-ancestors 'none'"
)
HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"microphone=(self), camera=(), geolocation=()"),
)


class Access:
    """The checks of a ``/v1`` request: origin, API key, rate (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        rate_limit: RateLimiter | None = None,
        allow_origins: Sequence[str] = (),
    ) -> None:
        self._key = api_key.encode() if api_key else None
        self.rate_limit = rate_limit
        self.allow_origins = frozenset(origin.rstrip("/") for origin in allow_origins)

    @property
    def needs_key(self) -> bool:
        return self._key is not None

    def check(self, request: Request) -> None:
        """ApiError 403 (another origin), 401 (no or wrong key), 429 (over the rate)."""
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            self.check_origin(request)
        if self._key is not None and not self._key_matches(request):
            raise ApiError(
                401, "unauthorized",
                "this server needs an API key: send it as the header X-API-Key: KEY "
                "(or Authorization: Bearer KEY)",
                headers={"WWW-Authenticate": 'Bearer realm="sertk"'},
            )  # fmt: skip
        if self.rate_limit is not None:
            self.rate_limit.check(request.client.host if request.client else "unknown")

    def _key_matches(self, request: Request) -> bool:
        given = request.headers.get("x-api-key")
        if given is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            given = token.strip() if scheme.lower() == "bearer" else ""
        return hmac.compare_digest(given.encode(), self._key)

    def check_origin(self, request: Request) -> None:
        origin = request.headers.get("origin")
        if origin is not None and origin.rstrip("/") in self.allow_origins:
            return
        site = request.headers.get("sec-fetch-site", "")
        if site in ("cross-site", "same-site"):
            where = f"a {site} page ({origin or 'origin not sent'})"
        elif origin is None or urlsplit(origin).netloc == request.headers.get("host", ""):
            return
        else:
            where = f"a page of another origin ({origin})"
        log.warning("refused a %s %s from %s", request.method, request.url.path, where)
        hint = f" --allow-origin {origin}" if origin and origin != "null" else " --allow-origin"
        raise ApiError(
            403, "cross_origin",
            f"requests from {where} are refused: this API answers its own page and clients "
            f"that are not browsers; start the server with{hint} ORIGIN to let a page use it",
        )  # fmt: skip


class SecurityHeaders:
    """ASGI middleware adding :data:`HEADERS` and the Content-Security-Policy of the path."""

    def __init__(self, app, *, page_paths: Sequence[str] = ("/", "/static/")) -> None:
        self.app, self.page_paths = app, tuple(page_paths)

    def policy(self, path: str) -> bytes:
        if path == "/" or path.startswith(self.page_paths[1:]):
            return PAGE_CSP.encode()
        if path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            return DOCS_CSP.encode()
        return API_CSP.encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        extra = [*HEADERS, (b"content-security-policy", self.policy(scope["path"]))]

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers += [(name, value) for name, value in extra if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
