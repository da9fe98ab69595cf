"""The status page's ASGI app: one HTML page, the JSON it refreshes from, static files. Read-only
(GET only), answering only to the hosts collector.web.hosts allows, every URL of the page relative.
With a token, every request but static files must carry it: an ``Authorization: Bearer`` header,
``?token=`` (which also sets a cookie, so the page's own requests carry it), or that cookie.
Without one, only the user who started the page is served (collector.web.peers)."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from collector.db import database_exists, make_engine
from collector.errors import library_errors, translate
from collector.status import snapshot
from collector.web import data
from collector.web.hosts import HostGate, allowed_hosts
from collector.web.peers import PeerGate
from workers.cluster import client_from_url

HERE = Path(__file__).parent
COOKIE = "collector_token"
PAGE_SIZES = (10, 25, 50, 100)
MOST_PAGES = 1000  # a page number costs XREVRANGE of page * size entries: keep it bounded


class TokenGate(BaseHTTPMiddleware):
    """Refuses (401) a request without the token; static files pass."""

    def __init__(self, app: Any, token: str) -> None:
        super().__init__(app)
        self.token = token.encode()

    def _given(self, request: Request) -> str:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:]
        return request.query_params.get("token") or request.cookies.get(COOKIE) or ""

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path.startswith("/static/"):
            return await call_next(request)
        if not hmac.compare_digest(self._given(request).encode(), self.token):
            return JSONResponse({"error": "a valid token is required"}, status_code=401)
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie(
                COOKIE, request.query_params["token"], httponly=True, samesite="strict"
            )
        return response


class Sources:
    """Where the page reads from: Redis and the database, each opened once and only when it
    exists (a SQLite file that is not there yet is not created by looking at it)."""

    def __init__(self, redis_url: str, db_url: str, queue: str) -> None:
        self.redis_url, self.db_url, self.queue = redis_url, db_url, queue
        self.client = client_from_url(redis_url)
        self._engine: sa.Engine | None = None

    @property
    def engine(self) -> sa.Engine | None:
        if self._engine is None and database_exists(self.db_url):
            self._engine = make_engine(self.db_url)
        return self._engine

    def status(self) -> dict[str, Any]:
        """What ``status --json`` prints, read with this page's own client and engine."""
        return snapshot(
            self.client,
            self.engine,
            redis_url=self.redis_url,
            db_url=self.db_url,
            queue=self.queue,
        )

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        self.client.close()


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(request.query_params.get(name, default))))
    except ValueError:
        return default


def gates(token: str | None, bind: str, allow_hosts: tuple[str, ...]) -> list[Middleware]:
    """The host check first (a wrong Host learns nothing, not even whether a token is asked),
    then the token's when there is one, else the peer's: only the user who started the page
    (collector.web.peers says why)."""
    found = [Middleware(HostGate, hosts=allowed_hosts(bind, allow_hosts))]
    return [*found, Middleware(TokenGate, token=token) if token else Middleware(PeerGate)]


def create_app(
    redis_url: str,
    db_url: str,
    queue: str,
    *,
    token: str | None = None,
    refresh: float = 2.0,
    bind: str = "127.0.0.1",
    allow_hosts: tuple[str, ...] = (),
) -> Starlette:
    """The app serving one queue and one database; ``token`` None: no token asked. It answers
    to loopback names, ``bind`` and ``allow_hosts`` only (collector.web.hosts says why)."""
    src = Sources(redis_url, db_url, queue)
    templates = Jinja2Templates(directory=HERE / "templates")

    def page(request: Request) -> Response:
        context = {"queue": queue, "refresh_ms": int(refresh * 1000), "sizes": PAGE_SIZES}
        return templates.TemplateResponse(request, "index.html", context)

    def status(_request: Request) -> Response:
        return JSONResponse(src.status())

    def tables(_request: Request) -> Response:
        engine = src.engine
        return JSONResponse({} if engine is None else data.newest_rows(engine))

    def rate(request: Request) -> Response:
        minutes = _int(request, "minutes", 10, 1, 120)
        engine = src.engine
        if engine is None:
            return JSONResponse(data.stored_rate_empty(minutes))
        return JSONResponse(data.stored_rate(engine, minutes))

    def sweeps(_request: Request) -> Response:
        engine = src.engine
        return JSONResponse([] if engine is None else data.sweeps(engine, src.client, queue))

    def heatmap(request: Request) -> Response:
        engine = src.engine
        png = None if engine is None else data.heatmap_png(engine, request.path_params["name"])
        if png is None:
            return JSONResponse({"error": "nothing to draw yet"}, status_code=404)
        return Response(png, media_type="image/png")  # its URL names the counts drawn

    def dead(request: Request) -> Response:
        size = _int(request, "size", PAGE_SIZES[0], 1, PAGE_SIZES[-1])
        number = _int(request, "page", 1, 1, MOST_PAGES)
        return JSONResponse(data.dead_page(src.client, queue, number, size))

    async def failed(_request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(translate(exc))}, status_code=503)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        src.close()

    routes = [
        Route("/", page),
        Route("/api/status", status),
        Route("/api/tables", tables),
        Route("/api/rate", rate),
        Route("/api/sweeps", sweeps),
        Route("/api/sweeps/{name}/heatmap.png", heatmap),
        Route("/api/dead", dead),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = gates(token, bind, allow_hosts)
    handlers: dict[Any, Any] = {kind: failed for kind in library_errors()}
    return Starlette(
        routes=routes, middleware=middleware, exception_handlers=handlers, lifespan=lifespan
    )
