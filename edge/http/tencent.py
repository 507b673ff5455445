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
import hashlib
import heapq
import hmac
import json
import logging
import re
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from edge.config import ConfigError
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

logger = logging.getLogger(__name__)

ACTION = "CompareFace"
VERSIONS = ("2020-03-03", "2018-03-01")
SERVICE = "iai"
ALGORITHM = "TC3-HMAC-SHA256"
# Tencent's own: "Timestamp and server time cannot differ by more than five minutes".
WINDOW_S = 300
# Signatures remembered to refuse a replay: each for WINDOW_S past its timestamp (after that the
# window refuses it). Only verified signatures are kept, so only signed traffic fills it.
REPLAY_CAPACITY = 50_000
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
_SECRET_ID = re.compile(r"[A-Za-z0-9_\-]{1,128}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class TencentError(Refusal):
    """A refusal in Tencent's vocabulary: `code` is Tencent's (e.g. "AuthFailure.SignatureFailure")."""

    def __init__(self, code: str, message: str, *, reason: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(200, INVALID_ARGUMENT, message, headers, reason=reason)
        self.tencent_code = code


# --- configuration ------------------------------------------------------------------------------


def parse_secrets(entries: tuple[str, ...]) -> dict[str, bytes]:
    """`http.tencent_secrets` ("SecretId:SecretKey" each) → {SecretId: SecretKey}; ConfigError names a bad one."""
    secrets: dict[str, bytes] = {}
    for i, entry in enumerate(entries):
        key = f"http.tencent_secrets[{i}]"
        secret_id, sep, secret_key = entry.partition(":")
        if not sep or not _SECRET_ID.fullmatch(secret_id):
            raise ConfigError(key, "must be 'SecretId:SecretKey', the SecretId of letters, digits, '_' and '-'")
        if len(secret_key) < 16 or not secret_key.isprintable() or " " in secret_key:
            raise ConfigError(key, "the SecretKey must be at least 16 printable characters without spaces")
        if secret_id in secrets:
            raise ConfigError(key, f"the SecretId {secret_id!r} is given twice")
        secrets[secret_id] = secret_key.encode()
    return secrets


# --- TC3-HMAC-SHA256 ----------------------------------------------------------------------------


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def tc3_signature(secret_key: bytes, date: str, service: str, string_to_sign: str) -> str:
    """Tencent's key derivation: "TC3"+key → date → service → "tc3_request" → HMAC of the string to sign."""
    signing_key = _hmac(_hmac(_hmac(b"TC3" + secret_key, date), service), "tc3_request")
    return hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()


class Credential:
    """The parsed `Authorization` header and X-TC-Timestamp, checked from the headers alone."""

    def __init__(self, secret_id: str, date: str, signed_headers: list[str], signature: str, timestamp: int) -> None:
        self.secret_id, self.date, self.signed_headers = secret_id, date, signed_headers
        self.signature, self.timestamp = signature, timestamp

    def string_to_sign(self, request: Request, body: bytes) -> str:
        headers = "".join(f"{name}:{_header(request, name).strip().lower()}\n" for name in self.signed_headers)
        canonical_request = "\n".join(
            [
                request.method,
                request.url.path,  # the SDK signs the path "/" as sent
                request.url.query,
                headers,
                ";".join(self.signed_headers),
                hashlib.sha256(body).hexdigest(),
            ]
        )
        scope = f"{self.date}/{SERVICE}/tc3_request"
        digest = hashlib.sha256(canonical_request.encode()).hexdigest()
        return f"{ALGORITHM}\n{self.timestamp}\n{scope}\n{digest}"


def _header(request: Request, name: str) -> str:
    values = request.headers.getlist(name)
    if len(values) != 1:
        raise TencentError(
            "AuthFailure.SignatureFailure", f"the signed header {name!r} must appear exactly once", reason="auth-wrong"
        )
    return values[0]


def _invalid_authorization(detail: str) -> TencentError:
    return TencentError(
        "AuthFailure.InvalidAuthorization",
        f"the Authorization header is not a TC3-HMAC-SHA256 one: {detail}",
        reason="auth-wrong",
    )


def parse_authorization(request: Request, now: float) -> Credential:
    """Authorization: TC3-HMAC-SHA256 Credential=<SecretId>/<date>/iai/tc3_request,
    SignedHeaders=content-type;host, Signature=<64 hex>; and X-TC-Timestamp within WINDOW_S of now."""
    header = request.headers.get("authorization")
    if header is None:
        raise TencentError(
            "AuthFailure.InvalidAuthorization",
            "an Authorization header (TC3-HMAC-SHA256) is required",
            reason="auth-missing",
        )
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise _invalid_authorization(f"the algorithm must be {ALGORITHM} (the SDK's default signMethod)")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or name in fields:
            raise _invalid_authorization("expected Credential=…, SignedHeaders=…, Signature=…")
        fields[name] = value.strip()
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        raise _invalid_authorization("expected Credential=…, SignedHeaders=…, Signature=…")
    scope = fields["Credential"].split("/")
    if len(scope) != 4 or scope[3] != "tc3_request" or not _DATE.fullmatch(scope[1]):
        raise _invalid_authorization("Credential must be SecretId/YYYY-MM-DD/iai/tc3_request")
    if scope[2] != SERVICE:
        raise _invalid_authorization(f"the credential is for the service {scope[2]!r}, not {SERVICE!r}")
    signed = fields["SignedHeaders"].split(";")
    if not {"content-type", "host"} <= set(signed) or len(set(signed)) != len(signed) or signed != sorted(signed):
        raise _invalid_authorization("SignedHeaders must list content-type and host (sorted, each once)")
    if not _HEX64.fullmatch(fields["Signature"]):
        raise _invalid_authorization("Signature must be 64 lowercase hex digits")
    timestamp = _timestamp(request, now)
    if scope[1] != datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d"):
        raise TencentError(
            "AuthFailure.SignatureFailure",
            "the Credential's date is not the UTC date of X-TC-Timestamp",
            reason="auth-wrong",
        )
    return Credential(scope[0], scope[1], signed, fields["Signature"], timestamp)


def _timestamp(request: Request, now: float) -> int:
    text = request.headers.get("x-tc-timestamp")
    if text is None:
        raise TencentError("MissingParameter", "the X-TC-Timestamp header is required", reason="auth-missing")
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise TencentError("InvalidParameter", "X-TC-Timestamp must be a Unix time in seconds", reason="auth-wrong")
    timestamp = int(text)
    if abs(now - timestamp) > WINDOW_S:
        raise TencentError(
            "AuthFailure.SignatureExpire",
            f"X-TC-Timestamp {timestamp} differs from the device's clock ({int(now)}) by more than {WINDOW_S} s",
            reason="auth-wrong",
        )
    return timestamp


class SeenSignatures:
    """Verified signatures still inside their timestamp window: a request sent again as it was
    captured (same signature) is refused. Bounded: at most `capacity` are kept; when that many
    live ones are held, new requests are refused (busy) rather than one forgotten."""

    def __init__(self, capacity: int = REPLAY_CAPACITY) -> None:
        self.capacity = capacity
        self._expiries: list[tuple[int, str]] = []
        self._live: set[str] = set()

    def _forget_expired(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] < now:
            self._live.discard(heapq.heappop(self._expiries)[1])

    def __contains__(self, signature: str) -> bool:
        return signature in self._live

    def __len__(self) -> int:
        return len(self._live)

    def remember(self, signature: str, timestamp: int, now: float) -> None:
        """Used from the event loop only (no await between the check and the add): no lock needed."""
        self._forget_expired(now)
        if signature in self._live:
            raise _replayed()
        if len(self._live) >= self.capacity:
            raise TencentError(
                "RequestLimitExceeded",
                "too many signed requests within the signature window; retry later",
                reason="busy",
            )
        heapq.heappush(self._expiries, (timestamp + WINDOW_S, signature))
        self._live.add(signature)


def _replayed() -> TencentError:
    return TencentError(
        "AuthFailure.SignatureFailure",
        "this signature was already used: a request is accepted once (sign each request anew)",
        reason="auth-wrong",
    )


# --- the dialect --------------------------------------------------------------------------------


class Tencent:
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
            raise _replayed()
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
    if value not in SCALES:
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
        ("Authorization", {"type": "string", "description": "TC3-HMAC-SHA256 Credential=…, SignedHeaders=…"}),
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
        "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
        "responses": {
            "200": {
                "description": "Response.Score, or Response.Error (every answer is 200, as Tencent's)",
                "content": {"application/json": {"schema": answer}},
            }
        },
    }
    return {"paths": {"/": {"post": operation}}, "schemas": {}, "security": {}}
