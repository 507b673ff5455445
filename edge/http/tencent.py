"""Tencent Cloud's CompareFace (iai, API 2020-03-03; 2018-03-01 too), served by the device
(docs/http.md): a client written for the cloud — the official `tencentcloud-sdk-python-iai`
among them — is pointed at the device with HttpProfile(endpoint=…, protocol="http").

    POST /   X-TC-Action: CompareFace   Authorization: TC3-HMAC-SHA256 …
    {"ImageA": base64, "ImageB": base64, "QualityControl": 0-4, "NeedRotateDetection": 0/1, …}
    → {"Response": {"Score", "FaceModelVersion", "RequestId"}}
    or {"Response": {"Error": {"Code", "Message"}, "RequestId"}}

Every answer is HTTP 200, as Tencent's: the SDK reads `Response.Error` only from a 200 and turns
any other status into a code-less "ServerNetworkError". The order of refusals is still the
other dialects' (common.Shared.admit): the signature's SecretId, timestamp window and replay
from the headers, before the body is read; Content-Length from the header; the signature over
the body after it is read and before the engine.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from edge.errors import (
    CORRUPTED_IMAGE,
    FACE_OCCLUDED,
    INVALID_ARGUMENT,
    INVALID_CONTENT_LENGTH,
    INVALID_IMAGE_SIZE,
    INVALID_IMAGE_TYPE,
    NO_FACE_DETECTED,
    SUCCESS,
)
from edge.http.common import Refusal, Shared
from edge.http.fetch import FetchError, allowed_host, fetch
from edge.http.tc3 import (
    SERVICE,
    Credential,
    SeenSignatures,
    TencentError,
    parse_authorization,
    parse_secrets,
    replayed,
    tc3_signature,
)

logger = logging.getLogger(__name__)

ACTION = "CompareFace"
VERSIONS = ("2020-03-03", "2018-03-01")
# A download from an allowed host (UrlA/UrlB) gives up after this long.
URL_TIMEOUT_S = 5.0
# Score on each of Tencent's model scales from our calibrated score s (0.6/0.7/0.8 ↔ FAR
# 1e-3/1e-4/1e-5): v3 puts those FARs at 40/50/60, v2 at 70/80/90.
SCALES = {"3.0": -20.0, "2.0": 10.0}
DEFAULT_MODEL = "3.0"
PARAMETERS = {
    "ImageA", "ImageB", "UrlA", "UrlB", "FaceModelVersion", "QualityControl", "NeedRotateDetection",
    "FaceMatchingStrategy",
}  # fmt: skip


# --- the dialect --------------------------------------------------------------------------------


class Tencent:
    """POST / (CompareFace): TC3 against `http.tencent_secrets`, then Engine.verify, in Tencent's words."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self._secrets = parse_secrets(shared.config.tencent_secrets)
        self._url_hosts = {h.lower() for h in shared.config.url_allow_hosts}
        self.seen = SeenSignatures()
        self.clock = time.time
        self.url_timeout_s = URL_TIMEOUT_S

    def routes(self) -> list[Route]:
        return [Route("/", self.compare_face, methods=["POST"])]

    def openapi(self) -> dict:
        return openapi_part()

    # --- from the headers ------------------------------------------------------------------

    def authorize(self, request: Request) -> None:
        """Before the body: the secret exists, the timestamp is fresh, the signature is not a
        replay, the action and version are CompareFace's. The signature itself needs the body."""
        if not self._secrets:
            raise TencentError(
                "AuthFailure.SecretIdNotFound",
                "this device has no Tencent secrets configured (http.tencent_secrets)",
                reason="auth-wrong",
            )
        credential = parse_authorization(request, self.clock())
        if credential.secret_id not in self._secrets:
            raise TencentError(
                "AuthFailure.SecretIdNotFound",
                f"the SecretId {credential.secret_id!r} is not known to this device",
                reason="auth-wrong",
            )
        if credential.signature in self.seen:
            raise replayed()
        action = request.headers.get("x-tc-action")
        if action is None:
            raise TencentError("MissingParameter", "the X-TC-Action header is required")
        if action != ACTION:
            raise TencentError("InvalidAction", f"the action {action!r} is not served; this device answers {ACTION}")
        version = request.headers.get("x-tc-version")
        if version is None:
            raise TencentError("MissingParameter", "the X-TC-Version header is required")
        if version not in VERSIONS:
            raise TencentError("NoSuchVersion", f"the version {version!r} is not served; use {' or '.join(VERSIONS)}")
        if request.headers.get("x-tc-content-sha256", "").upper() == "UNSIGNED-PAYLOAD":
            raise TencentError(
                "AuthFailure.InvalidAuthorization",
                "unsigned payloads are not accepted: the signature must cover the body (unsignedPayload=False)",
                reason="auth-wrong",
            )
        request.state.tc3 = credential

    def verify_signature(self, request: Request, body: bytes) -> None:
        """After the body, before the engine: the signature over the canonical request, then remembered."""
        credential: Credential = request.state.tc3
        expected = tc3_signature(
            self._secrets[credential.secret_id], credential.date, SERVICE, credential.string_to_sign(request, body)
        )
        if not hmac.compare_digest(expected, credential.signature):
            raise TencentError(
                "AuthFailure.SignatureFailure",
                "the signature does not match: check the SecretKey and that the request is sent as signed",
                reason="auth-wrong",
            )
        self.seen.remember(credential.signature, credential.timestamp, self.clock())

    # --- the body --------------------------------------------------------------------------

    async def parse(self, request: Request) -> Any:
        body = await request.body()
        self.verify_signature(request, body)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise TencentError("InvalidParameter", "the body must be JSON (Content-Type: application/json)")
        try:
            params = json.loads(body)
        except (ValueError, RecursionError):
            raise TencentError("InvalidParameter", "the body is not valid JSON") from None
        if not isinstance(params, dict):
            raise TencentError("InvalidParameter", "the body must be a JSON object of CompareFace's parameters")
        unknown = sorted(set(params) - PARAMETERS)
        if unknown:
            raise TencentError("UnknownParameter", f"the parameter {unknown[0]!r} is not recognized")
        model = _model_version(params.get("FaceModelVersion"))
        quality = _choice(params, "QualityControl", range(5), "InvalidParameterValue.QualityControlIllegal")
        rotate = _choice(params, "NeedRotateDetection", range(2), "InvalidParameterValue")
        _choice(params, "FaceMatchingStrategy", range(2), "InvalidParameterValue")
        images = [await self._image(params, side) for side in "AB"]
        flags = {"auto_rotate": rotate == 1, "check_quality": quality > 0}
        return lambda: self.work(images, flags, model)

    async def _image(self, params: dict, side: str) -> str | bytes:
        url, image = params.get(f"Url{side}"), params.get(f"Image{side}")
        if url is not None:  # Tencent: "if both are given, only the Url is used"
            return await self._download(url, side)
        if image is None or image == "":
            raise TencentError("InvalidParameterValue.ImageEmpty", f"Image{side} (base64) is required")
        if not isinstance(image, str):
            raise TencentError("InvalidParameterValue", f"Image{side} must be a base64 string")
        return image

    async def _download(self, url: Any, side: str) -> bytes:
        """Url{side} from a host of http.url_allow_hosts (bounded: the engine's byte limit,
        URL_TIMEOUT_S, no redirect), off the event loop and off the engine's thread."""
        if not isinstance(url, str) or allowed_host(url, self._url_hosts) is None:
            raise TencentError(
                "InvalidParameterValue.UrlIllegal",
                f"Url{side}: this device is offline by design and fetches a URL only from a host named in "
                f"http.url_allow_hosts (over http or https); send the photo as Image{side} (base64)",
            )
        limit = self.shared.engine.config.limits.content_limit
        try:
            return await asyncio.to_thread(fetch, url, max_bytes=limit, timeout_s=self.url_timeout_s)
        except FetchError as exc:
            code = "FailedOperation.ImageSizeExceed" if exc.too_large else "FailedOperation.ImageDownloadError"
            raise TencentError(code, f"Url{side}: {exc}") from None

    # --- the engine ------------------------------------------------------------------------

    def work(self, images: list[str | bytes], flags: dict[str, bool], model: str) -> dict:
        """Runs on the engine's worker thread: base64 → bytes → Engine.verify."""
        limit = self.shared.engine.config.limits.content_limit
        decoded = []
        for side, text in zip("AB", images):
            if isinstance(text, bytes):  # downloaded
                decoded.append(text)
                continue
            if len(text) > 4 * (limit // 3 + 1) + 1024:  # base64 of more than `limit` bytes (+ whitespace)
                return {"Error": ("FailedOperation.ImageSizeExceed", f"Image{side} is larger than {limit} bytes")}
            try:
                decoded.append(base64.b64decode("".join(text.split()), validate=True))
            except (binascii.Error, ValueError):
                return {"Error": ("FailedOperation.ImageDecodeFailed", f"Image{side} is not valid base64")}
        result = self.shared.engine.verify(decoded[0], decoded[1], **flags)
        return {**result, "model": model, "check_quality": flags["check_quality"]}

    def render(self, result: dict, rid: str) -> JSONResponse:
        if "Error" in result:
            return reply_error(*result["Error"], rid)
        if result["code"] != SUCCESS:
            return reply_error(*engine_error(result, result["check_quality"]), rid)
        s = float(result["verification_score"])
        score = round(min(100.0, max(0.0, 100.0 * s + SCALES[result["model"]])), 2)
        return reply({"Score": score, "FaceModelVersion": result["model"]}, rid)

    def refuse(self, exc: Refusal, rid: str) -> JSONResponse:
        if isinstance(exc, TencentError):
            code = exc.tencent_code
        else:  # the common gate's refusals (common.Shared.admit)
            code = {
                "too-large": "RequestSizeLimitExceeded",
                "busy": "RequestLimitExceeded",
                "length-missing": "InvalidParameter",
            }.get(exc.reason, "InvalidParameter")
        if exc.reason in ("auth-missing", "auth-wrong"):
            logger.info("Tencent CompareFace refused: %s: %s", code, exc.message)
        return reply_error(code, exc.message, rid, exc.headers)

    async def compare_face(self, request: Request) -> JSONResponse:
        return await self.shared.admit(
            request, tencent_request_id(), authorize=self.authorize, parse=self.parse, render=self.render,
            refuse=self.refuse,
        )  # fmt: skip


def _model_version(value: Any) -> str:
    if value is None:
        return DEFAULT_MODEL
    if not isinstance(value, str) or value not in SCALES:  # {} or [] would not even hash
        raise TencentError(
            "InvalidParameterValue.FaceModelVersionIllegal",
            f"FaceModelVersion must be one of {', '.join(map(repr, SCALES))}",
        )
    return value


def _choice(params: dict, name: str, allowed: range, code: str) -> int:
    value = params.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise TencentError(code, f"{name} must be an integer from {allowed.start} to {allowed.stop - 1}")
    return value


def engine_error(result: dict, check_quality: bool) -> tuple[str, str]:
    """An engine result code (edge.errors) → Tencent's error code, with the engine's message."""
    code, message = int(result["code"]), str(result.get("message", ""))
    if code == INVALID_IMAGE_SIZE:
        small = "at least" in message or "below" in message  # the short side, not the long one
        return f"FailedOperation.ImageResolution{'TooSmall' if small else 'Exceed'}", message
    if code == INVALID_CONTENT_LENGTH:
        empty = "empty" in message
        return ("InvalidParameterValue.ImageEmpty" if empty else "FailedOperation.ImageSizeExceed"), message
    if code in (INVALID_IMAGE_TYPE, CORRUPTED_IMAGE):
        return "FailedOperation.ImageDecodeFailed", message
    if code == NO_FACE_DETECTED:
        return "FailedOperation.ImageFacedetectFailed", message
    if code == FACE_OCCLUDED or (code == INVALID_ARGUMENT and check_quality):
        return "FailedOperation.FaceQualityNotQualified", message
    if code == INVALID_ARGUMENT:
        return "InvalidParameterValue", message
    return "InternalError", "internal error"


def tencent_request_id() -> str:
    return str(uuid.uuid4())  # Tencent's RequestIds are dashed UUIDs


def reply(response: dict, rid: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """{"Response": {…, "RequestId"}}, HTTP 200, Content-Type exactly application/json (the SDK
    looks for Response.Error only under that Content-Type)."""
    return JSONResponse(
        {"Response": {**response, "RequestId": rid}}, status_code=200, headers={"X-Request-Id": rid, **(headers or {})}
    )


def reply_error(code: str, message: str, rid: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return reply({"Error": {"Code": code, "Message": message}}, rid, headers)


# --- /openapi.json ------------------------------------------------------------------------------

_ERROR_CODES = [
    "AuthFailure.InvalidAuthorization", "AuthFailure.SecretIdNotFound", "AuthFailure.SignatureExpire",
    "AuthFailure.SignatureFailure", "MissingParameter", "InvalidAction", "NoSuchVersion", "InvalidParameter",
    "UnknownParameter", "InvalidParameterValue", "InvalidParameterValue.ImageEmpty",
    "InvalidParameterValue.UrlIllegal", "InvalidParameterValue.FaceModelVersionIllegal",
    "InvalidParameterValue.QualityControlIllegal", "FailedOperation.ImageDecodeFailed",
    "FailedOperation.ImageDownloadError", "FailedOperation.ImageFacedetectFailed",
    "FailedOperation.ImageResolutionExceed", "FailedOperation.ImageResolutionTooSmall",
    "FailedOperation.ImageSizeExceed", "FailedOperation.FaceQualityNotQualified", "RequestSizeLimitExceeded",
    "RequestLimitExceeded", "InternalError",
]  # fmt: skip


def openapi_part() -> dict:
    """This dialect's part of /openapi.json: POST / (CompareFace)."""
    header = [
        ("X-TC-Action", {"type": "string", "enum": [ACTION]}),
        ("X-TC-Version", {"type": "string", "enum": list(VERSIONS)}),
        ("X-TC-Timestamp", {"type": "string", "pattern": "^[0-9]{1,12}$"}),
    ]
    request = {
        "type": "object",
        "properties": {
            "ImageA": {"type": "string", "description": "base64 of photo A (JPEG, PNG, BMP, WebP)"},
            "ImageB": {"type": "string", "description": "base64 of photo B"},
            "UrlA": {"type": "string", "description": "only from a host in http.url_allow_hosts"},
            "UrlB": {"type": "string", "description": "only from a host in http.url_allow_hosts"},
            "FaceModelVersion": {"type": "string", "enum": list(SCALES)},
            "QualityControl": {"type": "integer", "minimum": 0, "maximum": 4},
            "NeedRotateDetection": {"type": "integer", "minimum": 0, "maximum": 1},
            "FaceMatchingStrategy": {"type": "integer", "minimum": 0, "maximum": 1},
        },
        "additionalProperties": False,
    }
    answer = {
        "type": "object",
        "required": ["Response"],
        "properties": {
            "Response": {
                "type": "object",
                "required": ["RequestId"],
                "properties": {
                    "Score": {"type": "number", "minimum": 0, "maximum": 100},
                    "FaceModelVersion": {"type": "string", "enum": list(SCALES)},
                    "Error": {
                        "type": "object",
                        "required": ["Code", "Message"],
                        "properties": {"Code": {"type": "string", "enum": _ERROR_CODES}, "Message": {"type": "string"}},
                    },
                    "RequestId": {"type": "string"},
                },
            }
        },
    }
    operation = {
        "summary": "Tencent Cloud CompareFace (iai 2020-03-03): 1:1, Score on Tencent's v3 scale",
        "parameters": [{"name": n, "in": "header", "required": True, "schema": s} for n, s in header],
        "security": [{"tc3": []}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
        "responses": {
            "200": {
                "description": "Response.Score, or Response.Error (every answer is 200, as Tencent's)",
                "content": {"application/json": {"schema": answer}},
            }
        },
    }
    tc3 = {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "TC3-HMAC-SHA256 Credential=SecretId/date/iai/tc3_request, SignedHeaders=content-type;host, "
        "Signature=… (docs/http.md)",
    }
    return {"paths": {"/": {"post": operation}}, "schemas": {}, "security": {"tc3": tc3}}
