"""The console's routes: pages (static files shipped in the package) and their JSON/JPEG/SSE API.

    routes = console_routes(ConsoleContext(appliance, config, enrol=..., revoke=..., people=...))
    app = Starlette(routes=[*api_routes, *routes])        # the integrator mounts them beside /v1/

Every page and stream needs a login (a session cookie) except the door display and the
login page itself; a page without one redirects to the login, an API call answers 401.
Every state-changing request (POST) needs the session's CSRF token in `X-CSRF-Token` (or a
`csrf` form field): 403 without it. Login is rate-limited (edge.console.auth.LoginLimiter).
Responses carry a strict Content-Security-Policy (scripts and styles from this origin only,
no inline code), `X-Frame-Options: DENY` (the door display excepted: a kiosk may frame it
from the same origin) and `Cache-Control: no-store` on everything but the static assets.
"""

from __future__ import annotations

import asyncio
import json
import logging
import platform
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from edge.console.auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    LoginLimiter,
    Session,
    Sessions,
    csrf_ok,
    verify_password,
)
from edge.console.feed import KINDS, VerdictFeed
from edge.console.preview import Preview
from edge.errors import EdgeError

logger = logging.getLogger(__name__)

PREFIX = "/console"
STATIC = resources.files("edge.console") / "static"
PAGES = ("live", "enrol", "people", "verdicts", "status")
MAX_FORM_BYTES = 24 * 1024 * 1024  # an upload of a few phone photos
MAX_JSON_BYTES = 16 * 1024
MAX_STAGED = 5  # faces captured from the live view, waiting to be enrolled together
SSE_TIMEOUT_S = 3600.0  # a stream ends after this; the browser's EventSource reconnects
MAX_DOOR_STREAMS = 8

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@dataclass
class ConsoleContext:
    """What the console needs from the process it runs in.

    `enrol(name, photos: list[bytes]) -> dict` raises EdgeError with the reason a photo is
    refused; `revoke(name) -> dict`; `people() -> {"people": [...], "problems": [...]}`;
    `check_photo(jpeg) -> dict` runs the enrolment quality gate alone (raises EdgeError);
    `checks()` returns `edge doctor`-style findings for the status page (default: the
    checks that do not need the camera, which the loop holds)."""

    appliance: Any
    config: Any
    enrol: Callable[[str, Sequence[bytes]], dict]
    revoke: Callable[[str], dict]
    people: Callable[[], dict]
    check_photo: Callable[[bytes], dict] | None = None
    checks: Callable[[], list[dict]] | None = None
    clock: Callable[[], float] = time.monotonic
    extra: dict = field(default_factory=dict)


class Console:
    """The console's state: sessions, limiter, preview, verdict feed; its handlers."""

    def __init__(self, ctx: ConsoleContext) -> None:
        c = ctx.config.console
        self.ctx = ctx
        self.settings = c
        self.tls = bool(ctx.config.http.tls_cert)
        self.sessions = Sessions(c.session_ttl_s, clock=ctx.clock)
        self.limiter = LoginLimiter(
            per_client=c.login_failures_per_min, overall=4 * c.login_failures_per_min, clock=ctx.clock
        )
        self.preview = Preview(ctx.appliance, fps=c.preview_fps)
        self.feed = VerdictFeed(keep_unknown_crops=c.keep_unknown_crops, audit_path=ctx.config.audit.path)
        ctx.appliance.add_sink(self.feed)
        self.staged: dict[str, list[bytes]] = {}  # session token → captured faces
        self._checks: tuple[float, list[dict]] | None = None
        self.door_streams = 0  # open door-display streams (no login: bounded by MAX_DOOR_STREAMS)

    def close(self) -> None:
        """Stop the preview thread and detach from the appliance (the process is stopping)."""
        self.preview.stop()
        self.ctx.appliance.remove_sink(self.feed)

    # --- sessions --------------------------------------------------------------------------

    def session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(SESSION_COOKIE))

    def _client(self, request: Request) -> str:
        return request.client.host if request.client else "unknown"

    async def login_page(self, request: Request) -> Response:
        if self.session(request) is not None:
            return RedirectResponse(f"{PREFIX}/live", 303)
        return _page("login")

    async def login(self, request: Request) -> Response:
        client = self._client(request)
        if not _same_origin(request):
            return _error(403, "cross-origin login refused")
        wait = self.limiter.retry_after(client)
        if wait:
            logger.warning("console: login from %s refused: too many failures", client)
            return _error(429, f"too many failed logins; try again in {wait} s", {"Retry-After": str(wait)})
        form = await _form(request, MAX_JSON_BYTES)
        if isinstance(form, Response):
            return form
        password = form.get("password")
        if not isinstance(password, str):
            return _error(400, "password missing")
        ok = await run_in_threadpool(verify_password, password, self.settings.password_hash)
        if not ok:
            self.limiter.failed(client)
            logger.warning("console: failed login from %s", client)
            if not self.settings.password_hash:
                return _error(401, "no console password is set: run `edge console set-password` on the device")
            return _error(401, "wrong password")
        self.limiter.succeeded(client)
        session = self.sessions.create(client)
        logger.info("console: login from %s", client)
        response = JSONResponse({"ok": True, "csrf": session.csrf, "next": f"{PREFIX}/live"})
        response.set_cookie(
            SESSION_COOKIE,
            session.token,
            max_age=int(self.settings.session_ttl_s),
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=self.tls,
        )
        return response

    async def logout(self, request: Request) -> Response:
        session, refusal = await self._guard(request)
        if refusal:
            return refusal
        self.sessions.end(session.token)
        self.staged.pop(session.token, None)
        response = JSONResponse({"ok": True, "next": f"{PREFIX}/login"})
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response

    async def _guard(self, request: Request, *, post: bool = True, form: dict | None = None):
        """(session, None) when logged in (and, for a POST, the CSRF token is right); else (None, refusal)."""
        session = self.session(request)
        if session is None:
            return None, _error(401, "log in first")
        if post:
            given = request.headers.get(CSRF_HEADER)
            if not given and form is None and request.headers.get("content-type", "").startswith(_FORM_TYPES):
                form = await _form(request, MAX_JSON_BYTES)  # a plain HTML form posts its token as a field
            if not given and isinstance(form, dict):
                given = form.get(CSRF_FIELD)
            if not csrf_ok(session, given if isinstance(given, str) else None):
                logger.warning("console: %s %s refused: CSRF token missing or wrong", request.method, request.url.path)
                return None, _error(403, "CSRF token missing or wrong; reload the page")
        return session, None

    async def _guarded_form(self, request: Request) -> dict | Response:
        """A small JSON or form body (its CSRF token may be a field of it) from a logged-in
        session, or the refusal to answer with."""
        form = await _form(request, MAX_JSON_BYTES)
        if isinstance(form, Response):
            return form
        _, refusal = await self._guard(request, form=form)
        return refusal or form

    async def session_info(self, request: Request) -> Response:
        session, refusal = await self._guard(request, post=False)
        if refusal:
            return refusal
        return JSONResponse(
            {
                "csrf": session.csrf,
                "expires_in_s": round(session.expires - self.ctx.clock()),
                "device_id": self.ctx.appliance.device_id,
                "keep_unknown_crops": self.settings.keep_unknown_crops,
            }
        )

    # --- pages -----------------------------------------------------------------------------

    def page(self, name: str) -> Callable:
        async def handler(request: Request) -> Response:
            if self.session(request) is None:
                return RedirectResponse(f"{PREFIX}/login", 303)
            return _page(name)

        return handler

    async def door_page(self, request: Request) -> Response:
        return _page("door", frame_ok=True)

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _ASSETS:  # a fixed list: no path is built from the request
            return PlainTextResponse("not found", 404)
        path = Path(str(STATIC / name))
        return FileResponse(path, media_type=_ASSETS[name], headers={"Cache-Control": "max-age=300"})

    # --- live view -------------------------------------------------------------------------

    async def frame_jpeg(self, request: Request) -> Response:
        _, refusal = await self._guard(request, post=False)
        if refusal:
            return refusal
        jpeg, _, version = self.preview.latest()
        if jpeg is None:  # the first frame is being encoded
            jpeg, _, version = await run_in_threadpool(self.preview.wait_newer, version, 2.0)
        if jpeg is None:
            return _error(503, "no frame yet", {"Retry-After": "1"})
        return Response(jpeg, media_type="image/jpeg", headers={"X-Frame-Version": str(version)})

    async def mjpeg(self, request: Request) -> Response:
        _, refusal = await self._guard(request, post=False)
        if refusal:
            return refusal
        boundary = "edgeframe"

        async def frames():
            version = -1
            while not await request.is_disconnected():
                jpeg, _, version = await run_in_threadpool(self.preview.wait_newer, version, 1.0)
                if jpeg is not None and self.session(request) is not None:
                    head = f"--{boundary}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                    yield head.encode() + jpeg + b"\r\n"
                elif self.session(request) is None:
                    return  # logged out or expired: the stream ends

        return StreamingResponse(frames(), media_type=f"multipart/x-mixed-replace; boundary={boundary}")

    async def live(self, request: Request) -> Response:
        _, refusal = await self._guard(request, post=False)
        if refusal:
            return refusal
        _, overlay, version = self.preview.latest()
        snap = self.ctx.appliance.snapshot()
        return JSONResponse({**overlay, "version": version, "loop_fps": snap["fps"], "frames": snap["frames"]})

    # --- enrolment -------------------------------------------------------------------------

    async def capture(self, request: Request) -> Response:
        """The face in view now → the quality gate → staged for an enrolment (or why not)."""
        session, refusal = await self._guard(request)
        if refusal:
            return refusal
        current = self.preview.current_frame()
        if current is None:
            self.preview.want()
            return _error(409, "no frame from the camera yet; open the live view and try again")
        rgb, faces = current
        if not faces:
            return _error(422, "no face in view")
        if len(faces) > 1:
            return _error(422, f"{len(faces)} faces in view; only the person to enrol may be in front of the camera")
        jpeg = await run_in_threadpool(_face_photo, rgb, faces[0]["box"])
        if self.ctx.check_photo is not None:
            try:
                await run_in_threadpool(self.ctx.check_photo, jpeg)
            except EdgeError as exc:
                return _error(422, f"capture refused: {exc.message}", code=exc.code)
        for token in [t for t in self.staged if self.sessions.get(t) is None]:  # captures of ended sessions go
            del self.staged[token]
        staged = self.staged.setdefault(session.token, [])
        if len(staged) >= MAX_STAGED:
            return _error(409, f"{MAX_STAGED} captures are waiting already: enrol them or clear them")
        staged.append(jpeg)
        return JSONResponse({"ok": True, "staged": len(staged)})

    async def staged_photo(self, request: Request) -> Response:
        session, refusal = await self._guard(request, post=False)
        if refusal:
            return refusal
        staged = self.staged.get(session.token, [])
        try:
            i = int(request.path_params["i"])
            return Response(staged[i], media_type="image/jpeg")
        except (ValueError, IndexError):
            return _error(404, "no such capture")

    async def clear_staged(self, request: Request) -> Response:
        session, refusal = await self._guard(request)
        if refusal:
            return refusal
        self.staged.pop(session.token, None)
        return JSONResponse({"ok": True, "staged": 0})

    async def enrol(self, request: Request) -> Response:
        """Enrol NAME from the staged captures (JSON {name}), or from uploaded photos (a form)."""
        session = self.session(request)
        if session is None:
            return _error(401, "log in first")
        multipart = request.headers.get("content-type", "").startswith("multipart/form-data")
        form = await _form(request, MAX_FORM_BYTES if multipart else MAX_JSON_BYTES, files=multipart)
        if isinstance(form, Response):
            return form
        session, refusal = await self._guard(request, form=form)
        if refusal:
            return refusal
        name = form.get("name")
        if not isinstance(name, str) or not name.strip():
            return _error(400, "give the person's name")
        photos = form.get("photos") if multipart else None
        from_captures = not multipart
        if from_captures:
            photos = list(self.staged.get(session.token, []))
            if not photos:
                return _error(400, "capture a face from the live view first (or upload photos)")
        if not photos:
            return _error(400, "choose at least one photo")
        try:
            result = await run_in_threadpool(self.ctx.enrol, name.strip(), photos)
        except EdgeError as exc:
            return _error(422, f"not enrolled: {exc.message}", code=exc.code)
        except Exception as exc:  # noqa: BLE001 - a vault problem (locked, damaged): said, not a 500 page
            logger.error("console: enrolment failed: %s: %s", type(exc).__name__, exc)
            return _error(500, f"not enrolled: {exc}")
        if from_captures:
            self.staged.pop(session.token, None)
        return JSONResponse({"ok": True, **result})

    async def enrol_from_verdict(self, request: Request) -> Response:
        """An `unknown`/`denied` verdict's kept face crop → an enrolment (keep_unknown_crops only)."""
        form = await self._guarded_form(request)
        if isinstance(form, Response):
            return form
        if not self.settings.keep_unknown_crops:
            return _error(403, "unknown faces are not kept ([console] keep_unknown_crops = false)")
        try:
            seq = int(form.get("seq"))
        except (TypeError, ValueError):
            return _error(400, "seq must be a verdict number")
        crop = self.feed.crop(seq)
        name = form.get("name")
        if crop is None:
            return _error(404, "no face kept for that verdict")
        if not isinstance(name, str) or not name.strip():
            return _error(400, "give the person's name")
        try:
            result = await run_in_threadpool(self.ctx.enrol, name.strip(), [crop])
        except EdgeError as exc:
            return _error(422, f"not enrolled: {exc.message}", code=exc.code)
        return JSONResponse({"ok": True, **result})

    async def crop(self, request: Request) -> Response:
        _, refusal = await self._guard(request, post=False)
        if refusal:
            return refusal
        try:
            jpeg = self.feed.crop(int(request.path_params["seq"]))
        except ValueError:
            jpeg = None
        if jpeg is None:
            return _error(404, "no face kept for that verdict")
        return Response(jpeg, media_type="image/jpeg")

    # --- people ----------------------------------------------------------------------------

    async def people(self, request: Request) -> Response:
        _, refusal = await self._guard(request, post=False)
        if refusal:
            return refusal
        try:
            return JSONResponse(await run_in_threadpool(self.ctx.people))
        except Exception as exc:  # noqa: BLE001 - the vault's state is what the page is for
            return JSONResponse({"people": [], "problems": [f"the vault cannot be read: {exc}"]})

    async def revoke(self, request: Request) -> Response:
        form = await self._guarded_form(request)
        if isinstance(form, Response):
            return form
        name = form.get("name")
        if not isinstance(name, str) or not name:
            return _error(400, "give the person's name")
        if form.get("confirm") != name:  # the page asks for the name again: no revoke by a stray click
            return _error(400, "confirm the revocation by giving the name again")
        try:
            result = await run_in_threadpool(self.ctx.revoke, name)
        except EdgeError as exc:
            return _error(422, f"not revoked: {exc.message}", code=exc.code)
        except Exception as exc:  # noqa: BLE001
            return _error(422, f"not revoked: {exc}")
        return JSONResponse({"ok": True, **result})

    # --- verdicts --------------------------------------------------------------------------

    def _kinds(self, request: Request) -> set[str] | None:
        raw = request.query_params.get("kind", "")
        kinds = {k for k in raw.split(",") if k in KINDS}
        return kinds or None

    def _door_safe(self, record: dict) -> dict:
        return record

    async def verdicts(self, request: Request) -> Response:
        _, refusal = await self._guard(request, post=False)
        if refusal:
            return refusal
        try:
            after = int(request.query_params.get("after", "0"))
        except ValueError:
            return _error(400, "after must be an integer")
        records = self.feed.since(after, self._kinds(request))
        return JSONResponse({"records": records, "keep_unknown_crops": self.settings.keep_unknown_crops})

    async def verdict_stream(self, request: Request) -> Response:
        _, refusal = await self._guard(request, post=False)
        if refusal:
            return refusal
        kinds = self._kinds(request)
        try:
            after = int(request.headers.get("last-event-id") or request.query_params.get("after", "0"))
        except ValueError:
            after = 0
        return _sse(request, self, lambda last: self.feed.since(last, kinds), after, need_login=True)

    # --- door display (no login) -----------------------------------------------------------

    def _door_view(self, record: dict) -> dict:
        """What the person at the door may see: the decision and the prompt; a name only when configured."""
        if record["kind"] == "liveness_challenge":
            return {"id": record["id"], "kind": "prompt", "prompt": record.get("prompt") or record.get("direction")}
        out = {"id": record["id"], "kind": record["kind"]}
        if record["kind"] == "granted" and self.settings.door_display_names:
            out["name"] = record.get("name")
        return out

    async def door_stream(self, request: Request) -> Response:
        """The door display's events. No login, so the number of open streams is bounded."""
        if self.door_streams >= MAX_DOOR_STREAMS:
            return _error(503, "too many door displays connected", {"Retry-After": "10"})
        door_kinds = {"granted", "denied", "unknown", "spoof", "liveness_challenge"}

        def fetch(last: int) -> list[dict]:
            return [self._door_view(r) for r in self.feed.since(last, door_kinds, limit=5)]

        return _sse(request, self, fetch, self.feed._id, need_login=False, counter="door_streams")

    # --- status ----------------------------------------------------------------------------

    async def status(self, request: Request) -> Response:
        _, refusal = await self._guard(request, post=False)
        if refusal:
            return refusal
        app = self.ctx.appliance
        stats = app.stats()
        mqtt = None
        for sink in app.sinks:
            payload = getattr(sink, "state_payload", None)
            if callable(payload):
                try:
                    mqtt = payload().get("mqtt")
                except Exception as exc:  # noqa: BLE001
                    mqtt = {"error": str(exc)}
        refresh = request.query_params.get("checks") == "1"
        if refresh or self._checks is None or time.monotonic() - self._checks[0] > 300:
            self._checks = (time.monotonic(), await run_in_threadpool(self._run_checks))
        return JSONResponse(
            {
                "snapshot": app.snapshot(),
                "latency_ms": stats["latency_ms"],
                "frame_ms": stats["frame_ms"],
                "stages_ms": stats["stages_ms"],
                "mqtt": mqtt if mqtt is not None else {"enabled": False},
                "versions": _versions(app),
                "disk": _disk(self.ctx.config),
                "checks": self._checks[1],
                "preview": {"watching": self.preview.watching, "encoded": self.preview.encoded},
            }
        )

    def _run_checks(self) -> list[dict]:
        if self.ctx.checks is not None:
            return self.ctx.checks()
        return default_checks(self.ctx.config)


def default_checks(config: Any) -> list[dict]:
    """`edge doctor`'s checks that do not need the camera (the running loop holds it) or the broker
    (its live state is shown instead)."""
    from dataclasses import asdict

    from edge import doctor

    e = config.engine
    findings = []
    findings += doctor._guarded("runtime", doctor.check_runtime)
    findings += doctor._guarded("models", lambda: doctor.check_models(e.profile, e.detector))
    findings += doctor._guarded("vault", lambda: doctor.check_vault(config))
    findings += doctor._guarded("liveness", lambda: doctor.check_liveness(config))
    findings += doctor._guarded("clock", doctor.check_clock)
    findings += doctor._guarded("disk", lambda: doctor.check_disk(config))
    return [asdict(f) for f in findings]


def _versions(app: Any) -> dict:
    import cv2
    import numpy

    from edge import __version__

    return {
        "edge": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "opencv": cv2.__version__,
        "model_version": getattr(app.engine, "model_version", None),
        "profile": app.config.engine.profile,
        "machine": platform.machine(),
    }


def _disk(config: Any) -> list[dict]:
    out = []
    for key, path in (("vault.path", config.vault.path), ("audit.path", config.audit.path)):
        if not path:
            continue
        p = Path(path)
        while not p.exists() and p != p.parent:
            p = p.parent
        try:
            u = shutil.disk_usage(p)
        except OSError as exc:
            out.append({"key": key, "path": path, "error": str(exc)})
            continue
        out.append({"key": key, "path": path, "free_mib": u.free >> 20, "total_mib": u.total >> 20})
    return out


def _face_photo(rgb: Any, box: Sequence[int], margin: float = 0.6) -> bytes:
    """The face with a wide margin (the enrolment gate detects it again in this photo) as a JPEG."""
    import cv2

    x, y, w, h = box
    height, width = rgb.shape[:2]
    dx, dy = int(w * margin), int(h * margin)
    crop = rgb[max(0, y - dy) : min(height, y + h + dy), max(0, x - dx) : min(width, x + w + dx)]
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise EdgeError(1200, "the captured frame could not be encoded")
    return buf.tobytes()


def _sse(
    request: Request,
    console: Console,
    fetch: Callable[[int], list[dict]],
    after: int,
    *,
    need_login: bool,
    counter: str | None = None,
):
    async def events():
        if counter:
            setattr(console, counter, getattr(console, counter) + 1)
        try:
            async for chunk in _events():
                yield chunk
        finally:
            if counter:
                setattr(console, counter, getattr(console, counter) - 1)

    async def _events():
        last, started, last_version = after, time.monotonic(), -1
        pinged = started
        yield b"retry: 2000\n\n"
        while time.monotonic() - started < SSE_TIMEOUT_S:
            if await request.is_disconnected():
                return
            if need_login and console.session(request) is None:
                yield b"event: logout\ndata: {}\n\n"
                return
            if console.feed.version != last_version:
                last_version = console.feed.version
                for record in fetch(last):
                    last = max(last, record["id"])
                    yield f"id: {record['id']}\ndata: {json.dumps(record, default=str)}\n\n".encode()
            elif time.monotonic() - pinged >= 15:  # a comment line keeps proxies from closing an idle stream
                pinged = time.monotonic()
                yield b": keep-alive\n\n"
            await asyncio.sleep(0.25)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})


# --- small helpers -------------------------------------------------------------------------------

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_ASSETS = {
    "console.css": "text/css",
    "console.js": "text/javascript",
    "door.js": "text/javascript",
    "login.js": "text/javascript",
}


def _page(name: str, *, frame_ok: bool = False) -> Response:
    html = (STATIC / f"{name}.html").read_text(encoding="utf-8")
    headers = {"Content-Security-Policy": CSP}
    if frame_ok:
        headers["Content-Security-Policy"] = CSP.replace("frame-ancestors 'none'", "frame-ancestors 'self'")
    return Response(html, media_type="text/html; charset=utf-8", headers=headers)


def _error(status: int, message: str, headers: dict | None = None, *, code: int | None = None) -> Response:
    body = {"ok": False, "error": message, **({"code": code} if code is not None else {})}
    return JSONResponse(body, status_code=status, headers=headers)


def _same_origin(request: Request) -> bool:
    """A browser's POST says where its page came from: refuse a login posted from another site."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


async def _form(request: Request, max_bytes: int, *, files: bool = False) -> dict | Response:
    """The request's JSON object or form as a dict (files as bytes under their field, a list);
    a clear 4xx for a body too large, not JSON, or not an object."""
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        return _error(411, "Content-Length required")
    if int(length) > max_bytes:
        return _error(413, f"the request is larger than {max_bytes} bytes")
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        try:
            data = json.loads(await request.body())
        except ValueError:
            return _error(400, "the body is not JSON")
        if not isinstance(data, dict):
            return _error(400, "the body must be a JSON object")
        return data
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        try:
            form = await request.form(max_files=10, max_fields=20)
        except Exception as exc:  # noqa: BLE001 - malformed multipart: a 400, never a 500
            return _error(400, f"the form cannot be read: {exc}")
        out: dict[str, Any] = {}
        for key, value in form.multi_items():
            if hasattr(value, "read"):
                if files and key == "photos":
                    out.setdefault("photos", []).append(await value.read())
            else:
                out[key] = value
        return out
    return _error(415, "send JSON or a form")


def console_routes(ctx: ConsoleContext) -> list[Route]:
    """The console's routes under /console (pages, assets, API); `ctx` gives the running parts."""
    c = Console(ctx)
    p = PREFIX
    routes = [
        Route(f"{p}/login", c.login_page, methods=["GET"]),
        Route(f"{p}/api/login", c.login, methods=["POST"]),
        Route(f"{p}/api/logout", c.logout, methods=["POST"]),
        Route(f"{p}/api/session", c.session_info, methods=["GET"]),
        Route(f"{p}/api/frame.jpg", c.frame_jpeg, methods=["GET"]),
        Route(f"{p}/api/stream.mjpeg", c.mjpeg, methods=["GET"]),
        Route(f"{p}/api/live", c.live, methods=["GET"]),
        Route(f"{p}/api/capture", c.capture, methods=["POST"]),
        Route(f"{p}/api/capture/clear", c.clear_staged, methods=["POST"]),
        Route(f"{p}/api/capture/{{i:int}}.jpg", c.staged_photo, methods=["GET"]),
        Route(f"{p}/api/enrol", c.enrol, methods=["POST"]),
        Route(f"{p}/api/enrol/verdict", c.enrol_from_verdict, methods=["POST"]),
        Route(f"{p}/api/crop/{{seq}}.jpg", c.crop, methods=["GET"]),
        Route(f"{p}/api/people", c.people, methods=["GET"]),
        Route(f"{p}/api/revoke", c.revoke, methods=["POST"]),
        Route(f"{p}/api/verdicts", c.verdicts, methods=["GET"]),
        Route(f"{p}/api/verdicts/stream", c.verdict_stream, methods=["GET"]),
        Route(f"{p}/api/status", c.status, methods=["GET"]),
        Route(f"{p}/door", c.door_page, methods=["GET"]),
        Route(f"{p}/api/door/stream", c.door_stream, methods=["GET"]),
        Route(f"{p}/static/{{name}}", c.static, methods=["GET"]),
        Route(f"{p}", lambda r: RedirectResponse(f"{p}/live", 303), methods=["GET"]),
    ]
    routes += [Route(f"{p}/{name}", c.page(name), methods=["GET"]) for name in PAGES]
    routes[0].console = c  # the Console behind the routes, for tests and the composition root
    return routes


class SecurityHeaders:
    """ASGI middleware: nosniff, no referrer, no-store (assets excepted), no framing (door excepted)
    on every /console response. The composition root wraps the whole HTTP app in it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
                if "/static/" not in path:
                    extra.append((b"cache-control", b"no-store"))
                if not path.endswith("/door"):
                    extra.append((b"x-frame-options", b"DENY"))
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def console_app(ctx: ConsoleContext) -> Starlette:
    """The console alone as an app (tests, and `edge run` until the integrator mounts it beside the API)."""
    routes = console_routes(ctx)
    app = Starlette(routes=routes)
    app.state.console = routes[0].console

    app.add_middleware(SecurityHeaders)
    return app
