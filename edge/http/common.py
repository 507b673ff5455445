"""What every dialect of the HTTP API shares: refusals, request ids, the engine's queue, and
the gate every request passes before its body is read (docs/http.md).

A dialect (senseid.py, and one module per vendor API) is a class built with a `Shared` that
gives `routes()` and `openapi()`; its handlers call `Shared.admit`, which runs the common
order of refusals and then the dialect's own parse → engine → render. The dialect maps a
`Refusal` (an engine result code and an HTTP status) into its own error vocabulary.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from edge.errors import INTERNAL_ERROR, INVALID_ARGUMENT, INVALID_CONTENT_LENGTH

logger = logging.getLogger(__name__)


class Refusal(Exception):
    """A request refused before (or instead of) the engine: HTTP status, result code, message.

    `reason` names the refusal for dialects whose vocabulary is finer than the result codes
    (e.g. "auth-missing", "auth-wrong", "length-missing", "too-large", "busy")."""

    def __init__(
        self, status: int, code: int, message: str, headers: dict[str, str] | None = None, *, reason: str = ""
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}
        self.reason = reason


def request_id() -> str:
    return uuid.uuid4().hex


def keys_match(given: str, keys: list[bytes]) -> bool:
    """`given` is one of `keys`; compare_digest against every key, so the time taken says nothing
    about which key is close."""
    return any([hmac.compare_digest(given.encode(), key) for key in keys])


class EngineQueue:
    """One engine call at a time on one worker thread; at most `max_queue` more requests wait.

    A place is taken before the body is read (so at most 1 + max_queue bodies are held in memory)
    and given back when the answer is ready. Used from the event loop only: no lock needed.
    """

    def __init__(self, max_queue: int, runner: Callable[[Callable[[], Any]], Any] | None = None) -> None:
        self.capacity = 1 + int(max_queue)
        self.taken = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-http-engine")
        # `runner(fn)` runs fn where the engine may be used and returns its result: by default on
        # the worker thread itself; beside the camera loop (`edge run`), on the loop's thread.
        self._runner = runner

    def try_take(self) -> bool:
        if self.taken >= self.capacity:
            return False
        self.taken += 1
        return True

    def give_back(self) -> None:
        self.taken -= 1

    async def run(self, fn: Any) -> Any:
        job = fn if self._runner is None else (lambda: self._runner(fn))
        return await asyncio.get_running_loop().run_in_executor(self._executor, job)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class Shared:
    """The engine (bytes only), the `[http]` config, the device key and the queue, shared by
    every dialect of one app; `enrolments` (edge.http.admin.Enrolments) for the /v1/ endpoints,
    `runner` for where engine jobs run (see EngineQueue)."""

    def __init__(
        self, engine: Any, config: Any, *, unseal_key: Any = None, enrolments: Any = None, runner: Any = None
    ) -> None:
        self.engine = engine.bytes_only()  # images come from the network: content only, never a path
        self.config = config
        self.unseal_key = unseal_key
        self.enrolments = enrolments
        self.queue = EngineQueue(config.max_queue, runner)

    def check_length(self, request: Request) -> int:
        header = request.headers.get("content-length")
        if header is None:
            raise Refusal(
                411,
                INVALID_CONTENT_LENGTH,
                "a Content-Length header is required (chunked uploads are not accepted)",
                reason="length-missing",
            )
        try:
            length = int(header)
        except ValueError:
            raise Refusal(400, INVALID_ARGUMENT, "Content-Length is not a number", reason="length-missing") from None
        if length > self.config.max_body_bytes:
            raise Refusal(
                413,
                INVALID_CONTENT_LENGTH,
                f"the request is {length} bytes; at most {self.config.max_body_bytes} are accepted",
                reason="too-large",
            )
        return length

    def check_no_body(self, request: Request) -> int:
        if request.headers.get("transfer-encoding") or request.headers.get("content-length", "0").strip() != "0":
            raise Refusal(413, INVALID_CONTENT_LENGTH, "this request takes no body", reason="too-large")
        return 0

    def counted(self, request: Request, length: int) -> Request:
        """The request with a receive that refuses more body than Content-Length said (413)."""
        receive, seen = request.receive, 0

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > length:
                    raise Refusal(
                        413, INVALID_CONTENT_LENGTH, "the body is longer than its Content-Length", reason="too-large"
                    )
            return message

        return Request(request.scope, counting_receive)

    async def admit(
        self,
        request: Request,
        rid: str,
        *,
        authorize: Callable[[Request], None],
        parse: Callable[[Request], Awaitable[Callable[[], Any]]],
        render: Callable[[Any, str], Response],
        refuse: Callable[[Refusal, str], Response],
        body: bool = True,
    ) -> Response:
        """The common order, cheapest refusal first: `authorize` (from the headers alone) →
        Content-Length (411/413 from the header) → a place in the engine queue (503 +
        Retry-After when full) → `parse` (reads the body, at most Content-Length bytes, and
        returns the engine job) → the job on the engine's thread → `render(result, rid)`.
        Any `Refusal` on the way is answered by `refuse(refusal, rid)`. `body=False`: a request
        that takes no body (GET, DELETE) needs no Content-Length, and is refused (413) if it sends one."""
        try:
            authorize(request)
            length = self.check_length(request) if body else self.check_no_body(request)
            if not self.queue.try_take():
                raise Refusal(
                    503,
                    INTERNAL_ERROR,
                    "busy: the queue is full, retry later",
                    {"Retry-After": str(self.config.retry_after_s)},
                    reason="busy",
                )
            try:
                job = await parse(self.counted(request, length))
                result = await self.queue.run(job)
            finally:
                self.queue.give_back()
        except Refusal as exc:
            return refuse(exc, rid)
        except ClientDisconnect:
            # The client left mid-upload: nobody to answer, and no fault of the device's (not a
            # 500, not a logged error: a client that connects and leaves must not flood the log).
            logger.info("HTTP %s %s: the client left before its body arrived", request.method, request.url.path)
            return refuse(Refusal(400, INVALID_ARGUMENT, "the request body did not arrive", reason="disconnected"), rid)
        return render(result, rid)
