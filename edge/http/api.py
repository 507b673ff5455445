"""The HTTP app (docs/http.md): every dialect's routes on one Starlette app, sharing one engine
queue, plus `GET /healthz`, `GET /openapi.json` and JSON answers for unknown paths.

Dialects, one module each: senseid.py (the SenseID-style stateless endpoints), admin.py
(/v1/: enrolment and identification). Each is a
class built with the app's `Shared` (edge.http.common) giving `routes()` and `openapi()`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from edge.errors import INTERNAL_ERROR, INVALID_ARGUMENT
from edge.http.admin import Admin
from edge.http.aigen import Aigen
from edge.http.common import Shared, request_id
from edge.http.openapi import openapi_document
from edge.http.senseid import SenseId, answer
from edge.http.tencent import Tencent

logger = logging.getLogger(__name__)

DIALECTS: tuple[type, ...] = (SenseId, Tencent, Aigen, Admin)


class HttpApi:
    """The app's shared parts and its dialects."""

    def __init__(self, engine: Any, config: Any, **parts: Any) -> None:
        self.shared = Shared(engine, config, **parts)
        self.dialects = [dialect(self.shared) for dialect in DIALECTS]

    @property
    def queue(self) -> Any:
        return self.shared.queue

    @property
    def engine(self) -> Any:
        return self.shared.engine

    async def healthz(self, request: Request) -> JSONResponse:
        queue = {"taken": self.queue.taken, "capacity": self.queue.capacity}
        return answer({"status": "ok", "model_version": self.engine.model_version, "queue": queue}, 200, request_id())

    async def openapi(self, request: Request) -> JSONResponse:
        return JSONResponse(openapi_document(self.shared.config, [d.openapi() for d in self.dialects]))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif status == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(getattr(exc, "detail", "")) or "bad request"
    headers = dict(getattr(exc, "headers", None) or {})
    return answer({"code": INVALID_ARGUMENT, "message": message}, status, request_id(), headers)


async def _fault(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("HTTP %s %s: internal error", request.method, request.url.path)
    return answer({"code": INTERNAL_ERROR, "message": "internal error"}, 500, request_id())


def create_app(
    engine: Any,
    config: Any,
    *,
    unseal_key: Any = None,
    enrolments: Any = None,
    runner: Any = None,
    extra_routes: Sequence[Any] = (),
    on_close: Sequence[Callable[[], None]] = (),
) -> Starlette:
    """`extra_routes` (the web console's, from the composition root) are served beside the API;
    `on_close` callables run when the server stops."""
    api = HttpApi(engine, config, unseal_key=unseal_key, enrolments=enrolments, runner=runner)
    routes = [route for dialect in api.dialects for route in dialect.routes()]
    routes += [
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
        *extra_routes,
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        api.queue.shutdown()
        for close in on_close:
            close()

    app = Starlette(
        routes=routes, exception_handlers={HTTPException: _http_error, Exception: _fault}, lifespan=lifespan
    )
    app.state.api = api
    return app
