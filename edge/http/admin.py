"""/v1/: enrolment and identification over HTTP, CompreFace-like (docs/http.md):

    GET    /v1/people                  who is enrolled (name, photos, templates, dates)
    POST   /v1/people/{name}/photos    enrol one or more photos (multipart `file`, repeated)
    DELETE /v1/people/{name}           revoke: every photo and template of that person
    POST   /v1/identify                who, of everyone enrolled, is this photo's largest face
    GET    /v1/vault                   the vault's status

Keys: `X-API-Key` against `http.admin_keys` only (never `http.api_keys`); no admin key
configured → every /v1/ request is refused (403). Answers `{"code", …, "request_id"}` as the
SenseID dialect, with the result codes of edge.errors; an unknown person is a 404.

Enrolment and revocation are the vault's own (`edge.vault.enroll`: quality gate, one-person
and duplicate checks; `Vault.revoke`), run as engine jobs: one at a time on the engine's
thread, so vault writes never overlap, and the gallery identify uses is re-read before the
answer leaves (an enrolment is seen by the next identify).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from edge.errors import INVALID_ARGUMENT, SUCCESS, EdgeError, http_status
from edge.http.common import Refusal, Shared, keys_match, request_id
from edge.http.senseid import FALSE, TRUE, answer, refused

logger = logging.getLogger(__name__)

PREFIX = "/v1"
FILE = "file"  # CompreFace's name for the uploaded photo
NOT_FOUND = 404


class Enrolments:
    """The vault the /v1/ endpoints write, and the gallery identify reads.

    `gallery()` is the gallery in use now; `refresh()` re-reads it from the vault at once. Both
    are called on the engine's thread only (as engine jobs). `vault_path` None: the gallery is a
    fixed development one (or empty) and enrolment is refused.
    """

    def __init__(
        self, vault_path: str | None, gallery: Callable[[], Any], refresh: Callable[[], None] | None = None
    ) -> None:
        self.vault_path = vault_path or None
        self.gallery = gallery
        self.refresh = refresh or (lambda: None)
        self._vault: Any = None

    def vault(self) -> Any:
        if self.vault_path is None:
            raise EdgeError(INVALID_ARGUMENT, "this device runs without a vault (vault.path); no enrolments")
        if self._vault is None:
            from edge.vault import Vault

            self._vault = Vault.open(Path(self.vault_path))
        return self._vault


class _NotFound(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Admin:
    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self._keys = [k.encode() for k in shared.config.admin_keys]

    def routes(self) -> list[Route]:
        return [
            Route(f"{PREFIX}/people", self.people, methods=["GET"]),
            Route(f"{PREFIX}/people/{{name}}/photos", self.enrol, methods=["POST"]),
            Route(f"{PREFIX}/people/{{name}}", self.revoke, methods=["DELETE"]),
            Route(f"{PREFIX}/identify", self.identify, methods=["POST"]),
            Route(f"{PREFIX}/vault", self.vault_status, methods=["GET"]),
        ]

    def openapi(self) -> dict:
        return admin_paths()

    def check_key(self, request: Request) -> None:
        """Fail closed: no admin key configured refuses everything, before the key is even looked at."""
        if not self._keys:
            raise Refusal(403, INVALID_ARGUMENT, "/v1/ is disabled: no http.admin_keys are configured", reason="off")
        given = request.headers.get("x-api-key")
        if given is None:
            message = "an X-API-Key header (an admin key) is required"
            raise Refusal(401, INVALID_ARGUMENT, message, reason="auth-missing")
        if not keys_match(given, self._keys):
            raise Refusal(403, INVALID_ARGUMENT, "the X-API-Key is not an admin key", reason="auth-wrong")

    # --- the handlers ------------------------------------------------------------------------

    async def _admit(self, request: Request, parse: Any, *, body: bool) -> JSONResponse:
        return await self.shared.admit(
            request, request_id(), authorize=self.check_key, parse=parse, render=_render, refuse=refused, body=body
        )

    async def people(self, request: Request) -> JSONResponse:
        async def parse(_: Request) -> Any:
            return lambda: self._job(self._people)

        return await self._admit(request, parse, body=False)

    async def vault_status(self, request: Request) -> JSONResponse:
        async def parse(_: Request) -> Any:
            return lambda: self._job(self._status)

        return await self._admit(request, parse, body=False)

    async def revoke(self, request: Request) -> JSONResponse:
        async def parse(_: Request) -> Any:
            name = _name(request)
            return lambda: self._job(lambda: self._revoke(name))

        return await self._admit(request, parse, body=False)

    async def enrol(self, request: Request) -> JSONResponse:
        from edge.vault.store import MAX_PHOTOS

        async def parse(body: Request) -> Any:
            name = _name(request)
            form = await self._form(body, MAX_PHOTOS, ("allow_duplicate",))
            photos = form[FILE]
            allow_duplicate = _flag(form, "allow_duplicate")
            return lambda: self._job(lambda: self._enrol(name, photos, allow_duplicate))

        return await self._admit(request, parse, body=True)

    async def identify(self, request: Request) -> JSONResponse:
        async def parse(body: Request) -> Any:
            form = await self._form(body, 1, ("threshold", "auto_rotate"))
            threshold = _threshold(form.get("threshold"))
            auto_rotate = _flag(form, "auto_rotate")
            photo = form[FILE][0]
            return lambda: self._job(lambda: self._identify(photo, threshold, auto_rotate))

        return await self._admit(request, parse, body=True)

    async def _form(self, request: Request, max_files: int, options: tuple[str, ...]) -> dict[str, Any]:
        """The multipart form → {FILE: [bytes, …], option: str}; refuses anything else in it."""
        try:
            form = await request.form(
                max_files=max_files, max_fields=len(options) + 1, max_part_size=self.shared.config.max_body_bytes
            )
        except HTTPException as exc:  # malformed, or more files or fields than allowed
            raise Refusal(400, INVALID_ARGUMENT, f"the multipart body does not parse: {exc.detail}") from None
        try:
            out: dict[str, Any] = {FILE: []}
            for key, value in form.multi_items():
                if key == FILE:
                    if isinstance(value, str):
                        raise Refusal(400, INVALID_ARGUMENT, f"{FILE} must be a file upload (the photo's bytes)")
                    out[FILE].append(await value.read())
                elif key in options and key not in out and isinstance(value, str):
                    out[key] = value
                else:
                    accepted = ", ".join((FILE, *options))
                    message = f"unexpected field {key[:40]!r}; this endpoint takes {accepted} (once each)"
                    raise Refusal(400, INVALID_ARGUMENT, message)
        finally:
            await form.close()
        if not out[FILE]:
            raise Refusal(400, INVALID_ARGUMENT, f"missing field {FILE} (the photo, as a file upload)")
        return out

    # --- the jobs (on the engine's thread) ---------------------------------------------------------

    def _enrolments(self) -> Enrolments:
        if self.shared.enrolments is None:
            raise EdgeError(INVALID_ARGUMENT, "this device has no enrolments to manage (no vault.path)")
        return self.shared.enrolments

    def _job(self, fn: Callable[[], dict]) -> dict:
        """`fn`'s answer, or its refusal as an answer: an EdgeError (its code), an unknown person
        (404), a vault that cannot be used (500, logged)."""
        from edge.vault import VaultError

        try:
            return {"code": SUCCESS, **fn()}
        except EdgeError as exc:
            return exc.to_dict()
        except _NotFound as exc:
            return {"code": INVALID_ARGUMENT, "message": exc.message, "status": NOT_FOUND}
        except VaultError as exc:
            logger.error("/v1/: the vault cannot be used: %s", exc)
            return {"code": 5000, "message": f"the vault cannot be used: {exc}"}

    def _people(self) -> dict:
        from edge.vault import model_version

        people, problems = self._enrolments().vault().people(model_version(self.shared.engine))
        return {"people": [p.to_dict() for p in people], "damaged": [str(p) for p in problems]}

    def _status(self) -> dict:
        from edge.vault import model_version

        version = model_version(self.shared.engine)
        vault = self._enrolments().vault()
        people, problems = vault.people(version)
        templates = vault.templates(version, int(self.shared.engine.dim))
        return {
            "people": len(people),
            "photos": sum(p.photos for p in people),
            "templates": len(templates.matrix),
            "missing_templates": templates.missing,
            "stale_templates": templates.stale,
            "damaged": [str(p) for p in problems],
            "model_version": version,
            "public_key": vault.public_key_b64,
            "gallery_people": len(self._enrolments().gallery().people),
        }

    def _enrol(self, name: str, photos: list[bytes], allow_duplicate: bool) -> dict:
        from edge.vault import enroll, model_version

        enrolments = self._enrolments()
        # (label, bytes) pairs: read as content only, never as a path or base64 text
        entry = enroll(
            self.shared.engine,
            enrolments.vault(),
            name,
            [("", data) for data in photos],
            allow_duplicate=allow_duplicate,
        )
        enrolments.refresh()
        logger.info("/v1/: enrolled %r (%d photo(s))", entry.name, entry.photos)
        return {
            "name": entry.name,
            "photos": entry.photos,
            "entry": entry.entry,
            "enrolled": entry.created,
            "model_version": model_version(self.shared.engine),
            "status": 201,
        }

    def _revoke(self, name: str) -> dict:
        enrolments = self._enrolments()
        vault = enrolments.vault()
        people, _problems = vault.people()
        if name not in {p.name for p in people} and not vault.find(name):
            raise _NotFound(f"no one named {name!r} is enrolled")
        report = vault.revoke(name)
        enrolments.refresh()
        logger.info("/v1/: revoked %r (%d entries, %d photo(s))", report.name, report.entries, report.photos)
        return {"name": report.name, "entries": report.entries, "photos": report.photos}

    def _identify(self, photo: bytes, threshold: float | None, auto_rotate: bool) -> dict:
        gallery = self._enrolments().gallery()
        if not len(gallery):
            raise EdgeError(INVALID_ARGUMENT, "nobody is enrolled: there is no one to identify against")
        result = self.shared.engine.identify(photo, gallery, threshold=threshold, auto_rotate=auto_rotate)
        code = int(result.pop("code"))
        if code != SUCCESS:  # the engine's refusal (4000 no face, 2005 not an image, …): its code
            raise EdgeError(code, result["message"])
        return result


def _render(result: dict, rid: str) -> JSONResponse:
    result.pop("request_id", None)  # the engine's own: one id per request, the one in X-Request-Id
    status = int(result.pop("status", 0)) or http_status(int(result["code"]))
    return answer(result, status, rid)


def _name(request: Request) -> str:
    """The path's person name, by the vault's own rules (no separators, dots or control characters)."""
    from edge.vault.store import validate_name

    try:
        return validate_name(request.path_params["name"])
    except EdgeError as exc:
        raise Refusal(400, exc.code, exc.message) from None


def _flag(form: dict, name: str) -> bool:
    value = form.get(name)
    if value is None:
        return False
    if value.strip().lower() not in TRUE + FALSE:
        raise Refusal(400, INVALID_ARGUMENT, f"{name} must be true or false")
    return value.strip().lower() in TRUE


def _threshold(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        threshold = float(value)
    except ValueError:
        threshold = -1.0
    if not 0.0 <= threshold <= 1.0:  # also NaN
        raise Refusal(400, INVALID_ARGUMENT, "threshold must be a calibrated score from 0 to 1")
    return threshold


# --- GET /openapi.json ---------------------------------------------------------------------------

_SCHEME = {"adminKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "http.admin_keys"}}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1, "maxLength": 64}}


def _ok(properties: dict, required: tuple[str, ...] = ()) -> dict:
    schema = {
        "type": "object",
        "required": ["code", "request_id", *required],
        "properties": {"code": {"type": "integer", "enum": [SUCCESS]}, "request_id": {"type": "string"}, **properties},
    }
    return {"application/json": {"schema": schema}}


def _operation(summary: str, ok_status: str, ok: dict, errors: dict[str, str], body: dict | None = None) -> dict:
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    common = {
        "401": "no X-API-Key",
        "403": "not an admin key, or no http.admin_keys configured (/v1/ is off)",
        "413": "2004: the body is too large (or a body where none is taken)",
        "500": "5000: the device (its vault) cannot answer",
        "503": "busy: the queue is full (Retry-After)",
    }
    responses = {ok_status: {"description": "success (code 1000)", "content": ok}}
    responses.update({status: {"description": text, **error} for status, text in {**errors, **common}.items()})
    operation = {"summary": summary, "security": [{"adminKey": []}], "responses": responses}
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"multipart/form-data": {"schema": {"type": "object", "required": [FILE], "properties": body}}},
        }
    return operation


def admin_paths() -> dict:
    """The /v1/ part of /openapi.json: {"paths", "schemas", "security"}."""
    person = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "photos": {"type": "integer"},
            "templates": {"type": "integer"},
            "enrolled": {"type": "string"},
            "updated": {"type": "string"},
            "entries": {"type": "integer"},
        },
    }
    photo = {"type": "string", "format": "binary"}
    flag = {"type": "string", "enum": ["true", "false", "1", "0"]}
    number, text, integer = {"type": "number"}, {"type": "string"}, {"type": "integer"}
    bad = {"400": "1200 (name, field, nobody enrolled, duplicate, quality), 2003, 2005, 2006, 4000, 4004"}
    paths = {
        f"{PREFIX}/people": {
            "get": _operation(
                "who is enrolled",
                "200",
                _ok({"people": {"type": "array", "items": person}, "damaged": {"type": "array", "items": text}}),
                {"400": "1200: no vault"},
            )
        },
        f"{PREFIX}/people/{{name}}/photos": {
            "parameters": [_NAME],
            "post": _operation(
                "enrol photos of a person (the vault's quality gate and duplicate check)",
                "201",
                _ok({"name": text, "photos": integer, "entry": text, "enrolled": text, "model_version": text}),
                bad,
                {FILE: {"type": "array", "items": photo}, "allow_duplicate": flag},
            ),
        },
        f"{PREFIX}/people/{{name}}": {
            "parameters": [_NAME],
            "delete": _operation(
                "revoke a person: every photo and template",
                "200",
                _ok({"name": text, "entries": {"type": "integer"}, "photos": {"type": "integer"}}),
                {"400": "1200: not a valid name", "404": "nobody of that name is enrolled"},
            ),
        },
        f"{PREFIX}/identify": {
            "post": _operation(
                "who, of everyone enrolled, is the largest face of the photo",
                "200",
                _ok(
                    {
                        "name": {"type": "string", "nullable": True},
                        "candidate": {"type": "string", "nullable": True},
                        "score": number,
                        "verification_score": number,
                        "margin": number,
                        "fpir": number,
                        "far": number,
                    }
                ),
                bad,
                {FILE: photo, "threshold": number, "auto_rotate": flag},
            )
        },
        f"{PREFIX}/vault": {
            "get": _operation(
                "the vault's status",
                "200",
                _ok({"people": {"type": "integer"}, "templates": {"type": "integer"}, "model_version": text}),
                {"400": "1200: no vault"},
            )
        },
    }
    return {"paths": paths, "schemas": {}, "security": _SCHEME}
