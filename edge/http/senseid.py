"""The SenseID-style stateless endpoints (docs/http.md):

    POST /identity/image_verification/stateless   → Engine.verify
    POST /identity/face_compare/stateless         → Engine.compare_faces

Multipart `first_image_file`/`second_image_file` or `first_encrypted_image`/
`second_encrypted_image` (sealed to the device key); answers `{"code", …, "request_id"}` with
the result codes of edge.errors and their HTTP statuses. Keys: `X-API-Key` (`http.api_keys`).
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from edge.errors import INVALID_ARGUMENT, EdgeError, http_status
from edge.http.common import Refusal, Shared, keys_match, request_id

VERIFY_PATH = "/identity/image_verification/stateless"
COMPARE_PATH = "/identity/face_compare/stateless"
LABELS = ("first", "second")
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off", "")


def answer(body: dict[str, Any], status: int, rid: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Every response: JSON carrying `request_id`, and the same id in X-Request-Id."""
    body = {**body, "request_id": rid}
    return JSONResponse(body, status_code=status, headers={"X-Request-Id": rid, **(headers or {})})


def refused(exc: Refusal, rid: str) -> JSONResponse:
    return answer({"code": exc.code, "message": exc.message}, exc.status, rid, exc.headers)


class SenseId:
    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self._keys = [k.encode() for k in shared.config.api_keys]

    def routes(self) -> list[Route]:
        return [
            Route(VERIFY_PATH, self.verify, methods=["POST"]),
            Route(COMPARE_PATH, self.compare, methods=["POST"]),
        ]

    def openapi(self) -> dict:
        from edge.http.openapi import senseid_paths

        return senseid_paths(self.shared.config)

    def check_key(self, request: Request) -> None:
        if not self._keys:
            return
        given = request.headers.get("x-api-key")
        if given is None:
            raise Refusal(401, INVALID_ARGUMENT, "an X-API-Key header is required", reason="auth-missing")
        if not keys_match(given, self._keys):
            raise Refusal(403, INVALID_ARGUMENT, "the X-API-Key is not accepted", reason="auth-wrong")

    # --- the form ----------------------------------------------------------------------

    async def read_inputs(self, request: Request, with_quality: bool) -> tuple[list[Any], dict[str, bool]]:
        try:
            form = await request.form(max_files=4, max_fields=16, max_part_size=self.shared.config.max_body_bytes)
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
        if self.shared.unseal_key is None:
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
            self.shared.unseal_key,
            limits=self.shared.engine.config.limits,
            allow_paths=False,
            label=f"the {image.label} encrypted image",
        )

    def work(self, operation: str, images: list[Any], flags: dict[str, bool]) -> dict:
        """Runs on the engine's worker thread."""
        try:
            a, b = (self._open(image) for image in images)
        except EdgeError as exc:
            return exc.to_dict()
        engine = self.shared.engine
        if operation == "verify":
            return engine.verify(a, b, **flags)
        return engine.compare_faces(a, b, **flags)

    async def stateless(self, request: Request, operation: str) -> JSONResponse:
        async def parse(body: Request) -> Any:
            images, flags = await self.read_inputs(body, operation == "verify")
            return lambda: self.work(operation, images, flags)

        return await self.shared.admit(
            request, request_id(), authorize=self.check_key, parse=parse, render=_render, refuse=refused
        )

    async def verify(self, request: Request) -> JSONResponse:
        return await self.stateless(request, "verify")

    async def compare(self, request: Request) -> JSONResponse:
        return await self.stateless(request, "compare")


def _render(result: dict, rid: str) -> JSONResponse:
    result.pop("request_id", None)  # the engine's own: one id per request, the one in X-Request-Id
    return answer(result, http_status(int(result["code"])), rid)


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
