"""The SenseID-style stateless endpoints over HTTP (docs/http.md), on Starlette.

    POST /identity/image_verification/stateless   → Engine.verify
    POST /identity/face_compare/stateless         → Engine.compare_faces
    GET  /healthz, GET /openapi.json

Order of refusals, cheapest first, so a bad request costs the device as little as possible:
API key (401/403) → Content-Length (411 without one, 413 above `max_body_bytes`, from the header
alone) → a place in the engine's queue (503 + Retry-After when full) → the multipart body → the
engine. The engine is not thread-safe (TFLite interpreters), so one worker thread calls it and at
most `max_queue` requests wait: overload is answered at once instead of growing a backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from edge.errors import (
    INTERNAL_ERROR,
    INVALID_ARGUMENT,
    INVALID_CONTENT_LENGTH,
    EdgeError,
    http_status,
)
from edge.http.openapi import openapi_document

logger = logging.getLogger(__name__)

VERIFY_PATH = "/identity/image_verification/stateless"
COMPARE_PATH = "/identity/face_compare/stateless"
LABELS = ("first", "second")
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off", "")


class Refusal(Exception):
    """A request refused before (or instead of) the engine: HTTP status, result code, message."""

    def __init__(self, status: int, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def request_id() -> str:
    return uuid.uuid4().hex


def answer(body: dict[str, Any], status: int, rid: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Every response: JSON carrying `request_id`, and the same id in X-Request-Id."""
    body = {**body, "request_id": rid}
    return JSONResponse(body, status_code=status, headers={"X-Request-Id": rid, **(headers or {})})


def refused(exc: Refusal, rid: str) -> JSONResponse:
    return answer({"code": exc.code, "message": exc.message}, exc.status, rid, exc.headers)


class EngineQueue:
    """One engine call at a time on one worker thread; at most `max_queue` more requests wait.

    A place is taken before the body is read (so at most 1 + max_queue bodies are held in memory)
    and given back when the answer is ready. Used from the event loop only: no lock needed.
    """

    def __init__(self, max_queue: int) -> None:
        self.capacity = 1 + int(max_queue)
        self.taken = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-http-engine")

    def try_take(self) -> bool:
        if self.taken >= self.capacity:
            return False
        self.taken += 1
        return True

    def give_back(self) -> None:
        self.taken -= 1

    async def run(self, fn: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class HttpApi:
    def __init__(self, engine: Any, config: Any, *, unseal_key: Any = None) -> None:
        self.engine = engine.bytes_only()  # images come from the network: content only, never a path
        self.config = config
        self.unseal_key = unseal_key
        self.queue = EngineQueue(config.max_queue)
        self._keys = [k.encode() for k in config.api_keys]

    # --- checks before the body ------------------------------------------------------

    def check_key(self, request: Request) -> None:
        if not self._keys:
            return
        given = request.headers.get("x-api-key")
        if given is None:
            raise Refusal(401, INVALID_ARGUMENT, "an X-API-Key header is required")
        # compare_digest against every key: the time taken says nothing about which key is close
        if not any([hmac.compare_digest(given.encode(), key) for key in self._keys]):
            raise Refusal(403, INVALID_ARGUMENT, "the X-API-Key is not accepted")

    def check_length(self, request: Request) -> int:
        header = request.headers.get("content-length")
        if header is None:
            raise Refusal(
                411, INVALID_CONTENT_LENGTH, "a Content-Length header is required (chunked uploads are not accepted)"
            )
        try:
            length = int(header)
        except ValueError:
            raise Refusal(400, INVALID_ARGUMENT, "Content-Length is not a number") from None
        if length > self.config.max_body_bytes:
            raise Refusal(
                413,
                INVALID_CONTENT_LENGTH,
                f"the request is {length} bytes; at most {self.config.max_body_bytes} are accepted",
            )
        return length

    def counted(self, request: Request, length: int) -> Request:
        """The request with a receive that refuses more body than Content-Length said (413)."""
        receive, seen = request.receive, 0

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > length:
                    raise Refusal(413, INVALID_CONTENT_LENGTH, "the body is longer than its Content-Length")
            return message

        return Request(request.scope, counting_receive)

    # --- the form ----------------------------------------------------------------------

    async def read_inputs(self, request: Request, with_quality: bool) -> tuple[list[Any], dict[str, bool]]:
        try:
            form = await request.form(max_files=4, max_fields=16, max_part_size=self.config.max_body_bytes)
        except HTTPException as exc:  # a malformed multipart body
            raise Refusal(400, INVALID_ARGUMENT, f"the multipart body does not parse: {exc.detail}") from None
        try:
            images = [await self._image(form, label) for label in LABELS]
            names = ("auto_rotate", "check_quality") if with_quality else ("auto_rotate",)
            flags = {name: _flag(form, name) for name in names}
        finally:
            await form.close()
        return images, flags

    async def _image(self, form: Any, label: str) -> Any:
        plain, sealed = form.get(f"{label}_image_file"), form.get(f"{label}_encrypted_image")
        if plain is not None and sealed is not None:
            raise Refusal(400, INVALID_ARGUMENT, f"give {label}_image_file or {label}_encrypted_image, not both")
        if plain is None and sealed is None:
            raise Refusal(400, INVALID_ARGUMENT, f"missing field {label}_image_file (or {label}_encrypted_image)")
        if plain is not None:
            if isinstance(plain, str):
                raise Refusal(400, INVALID_ARGUMENT, f"{label}_image_file must be a file upload")
            return await plain.read()
        if self.unseal_key is None:
            raise Refusal(
                400, INVALID_ARGUMENT, "encrypted images are not accepted: this device has no key (vault.path)"
            )
        data = sealed if isinstance(sealed, str) else await sealed.read()
        return _Sealed(data, label)

    # --- the engine ----------------------------------------------------------------------

    def _open(self, image: Any) -> Any:
        if not isinstance(image, _Sealed):
            return image
        from edge.vault import unseal_image

        return unseal_image(
            image.data,
            self.unseal_key,
            limits=self.engine.config.limits,
            allow_paths=False,
            label=f"the {image.label} encrypted image",
        )

    def work(self, operation: str, images: list[Any], flags: dict[str, bool]) -> dict:
        """Runs on the engine's worker thread."""
        try:
            a, b = (self._open(image) for image in images)
        except EdgeError as exc:
            return exc.to_dict()
        if operation == "verify":
            return self.engine.verify(a, b, **flags)
        return self.engine.compare_faces(a, b, **flags)

    async def stateless(self, request: Request, operation: str) -> JSONResponse:
        rid = request_id()
        try:
            self.check_key(request)
            length = self.check_length(request)
            if not self.queue.try_take():
                raise Refusal(
                    503,
                    INTERNAL_ERROR,
                    "busy: the queue is full, retry later",
                    {"Retry-After": str(self.config.retry_after_s)},
                )
            try:
                images, flags = await self.read_inputs(self.counted(request, length), operation == "verify")
                result = await self.queue.run(lambda: self.work(operation, images, flags))
            finally:
                self.queue.give_back()
        except Refusal as exc:
            return refused(exc, rid)
        except ClientDisconnect:
            # The client left mid-upload: nobody to answer, and no fault of the device's (not a
            # 500, not a logged error: a client that connects and leaves must not flood the log).
            logger.info("HTTP %s %s: the client left before its body arrived", request.method, request.url.path)
            return answer({"code": INVALID_ARGUMENT, "message": "the request body did not arrive"}, 400, rid)
        result.pop("request_id", None)  # the engine's own: one id per request, the one in X-Request-Id
        return answer(result, http_status(int(result["code"])), rid)

    async def verify(self, request: Request) -> JSONResponse:
        return await self.stateless(request, "verify")

    async def compare(self, request: Request) -> JSONResponse:
        return await self.stateless(request, "compare")

    async def healthz(self, request: Request) -> JSONResponse:
        queue = {"taken": self.queue.taken, "capacity": self.queue.capacity}
        return answer({"status": "ok", "model_version": self.engine.model_version, "queue": queue}, 200, request_id())

    async def openapi(self, request: Request) -> JSONResponse:
        return JSONResponse(openapi_document(self.config))


class _Sealed:
    def __init__(self, data: bytes | str, label: str) -> None:
        self.data, self.label = data, label


def _flag(form: Any, name: str) -> bool:
    value = form.get(name)
    if value is None:
        return False
    if not isinstance(value, str) or value.strip().lower() not in TRUE + FALSE:
        raise Refusal(400, INVALID_ARGUMENT, f"{name} must be true or false")
    return value.strip().lower() in TRUE


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


def create_app(engine: Any, config: Any, *, unseal_key: Any = None) -> Starlette:
    api = HttpApi(engine, config, unseal_key=unseal_key)
    routes = [
        Route(VERIFY_PATH, api.verify, methods=["POST"]),
        Route(COMPARE_PATH, api.compare, methods=["POST"]),
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        api.queue.shutdown()

    app = Starlette(
        routes=routes, exception_handlers={HTTPException: _http_error, Exception: _fault}, lifespan=lifespan
    )
    app.state.api = api
    return app
