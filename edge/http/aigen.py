"""The aigen Face Compare endpoint (docs/http.md, "aigen Face Compare"):

    POST /aiface/face-compare/v1   (header x-aigen-key; JSON image1/image2 base64)  → Engine.verify

Answers `{"request_id", "confidence", "thresholds", "time_used"}`, or `error_message` on failure.
confidence = 100·s (2 decimals) for the engine's calibrated score s; the thresholds are the
calibrated scores at FAR 1e-3/1e-4/1e-5 on the same scale. As the vendor does, a photo without
a face (`CAN_NOT_DETECT_FACE: image2`) or a blurred one (`IMAGE_BLURED: image1`, only with
`blur_detection`) is answered 200 with an `error_message` and no confidence; a photo that does not
decode (`IMAGE_ERROR_UNSUPPORTED_FORMAT: image1`) is 400. The ID-card options are refused (400
BAD_ARGUMENTS) when true: this device has no ID-card detector.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from edge.admin.signing import json_depth
from edge.errors import (
    CORRUPTED_IMAGE,
    FACE_OCCLUDED,
    INVALID_ARGUMENT,
    INVALID_CONTENT_LENGTH,
    INVALID_IMAGE_SIZE,
    INVALID_IMAGE_TYPE,
    NO_FACE_DETECTED,
    SUCCESS,
    EdgeError,
)
from edge.http.common import Refusal, Shared, keys_match, request_id
from edge.matching import threshold_of_far

logger = logging.getLogger(__name__)

PATH = "/aiface/face-compare/v1"
KEY_HEADER = "x-aigen-key"
IMAGES = ("image1", "image2")
FLAGS = ("blur_detection", "verified_document", "image1_is_document", "image2_is_document")
DOCUMENT_FLAGS = FLAGS[1:]
# The request is one flat object; anything nested deeper than this is refused before json.loads.
MAX_JSON_DEPTH = 2
# The vendor's err_01 / err_001 / err_0001: the confidence at a false-accept rate of 0.1 %,
# 0.01 % and 0.001 % per comparison.
THRESHOLD_FARS = {"err_01": 1e-3, "err_001": 1e-4, "err_0001": 1e-5}
# A data URL prefix some clients leave on the base64 ("data:image/jpeg;base64,").
_DATA_URL = re.compile(r"data:[\w.+-]+/[\w.+-]+;base64,", re.ASCII)
_WHITESPACE = b" \t\r\n\f\v"


def thresholds() -> dict[str, float]:
    """err_01/err_001/err_0001 on the confidence scale: 100 × the calibrated threshold at each FAR."""
    return {name: round(100.0 * threshold_of_far(far), 2) for name, far in THRESHOLD_FARS.items()}


def confidence(score: float) -> float:
    """The calibrated verification score s (0..1) as the vendor's confidence: 100·s, 2 decimals."""
    return round(100.0 * min(1.0, max(0.0, float(score))), 2)


class Aigen:
    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self._keys = [k.encode() for k in shared.config.aigen_keys]
        self.thresholds = thresholds()

    def routes(self) -> list[Route]:
        return [Route(PATH, self.compare, methods=["POST"])]

    def openapi(self) -> dict:
        return openapi_part()

    def check_key(self, request: Request) -> None:
        """401 without the header, 403 for a key not in `http.aigen_keys` (every key when it is empty)."""
        given = request.headers.get(KEY_HEADER)
        if given is None:
            raise Refusal(401, INVALID_ARGUMENT, "MISSING_API_KEY", reason="auth-missing")
        if not keys_match(given, self._keys):
            raise Refusal(403, INVALID_ARGUMENT, "INVALID_API_KEY", reason="auth-wrong")

    async def compare(self, request: Request) -> JSONResponse:
        started = time.perf_counter()

        async def parse(body: Request) -> Any:
            images, blur = parse_body(await body.body(), self.shared.engine.config.limits.max_bytes)
            return lambda: self.work(images, blur)

        def render(result: tuple[int, dict], rid: str) -> JSONResponse:
            status, fields = result
            return _answer(fields, status, rid, started)

        def refuse(exc: Refusal, rid: str) -> JSONResponse:
            status, message = refusal_message(exc)
            return _answer({"error_message": message}, status, rid, started, exc.headers)

        return await self.shared.admit(
            request, request_id(), authorize=self.check_key, parse=parse, render=render, refuse=refuse
        )

    # --- the engine's thread ---------------------------------------------------------------

    def work(self, images: list[bytes], blur_detection: bool) -> tuple[int, dict]:
        """(HTTP status, the answer's fields). A fault is answered in this dialect's shape (500
        INTERNAL_ERROR) and logged, not left to the app's generic 500."""
        try:
            return self._verify(images, blur_detection)
        except Exception:
            logger.exception("aigen %s: internal error", PATH)
            return 500, {"error_message": "INTERNAL_ERROR"}

    def _verify(self, images: list[bytes], blur_detection: bool) -> tuple[int, dict]:
        """Decode both photos, check blur when asked, verify."""
        engine = self.shared.engine
        loaded = []
        for name, data in zip(IMAGES, images):
            try:
                loaded.append(engine.load(data))
            except EdgeError as exc:
                return engine_failure(exc.code, name)
        if blur_detection:
            for name, image in zip(IMAGES, loaded):
                failure = self._blurred(image, name)
                if failure is not None:
                    return failure
        result = engine.verify(*loaded)
        if result["code"] != SUCCESS:
            return engine_failure(int(result["code"]), _side(str(result.get("message", ""))))
        return 200, {"confidence": confidence(result["verification_score"]), "thresholds": dict(self.thresholds)}

    def _blurred(self, image: Any, name: str) -> tuple[int, dict] | None:
        """The vendor's blur detection: the quality gate's blur check (sharpness and
        mid_sharpness of the aligned crop, at `engine.quality_level`) on the face verify will use
        (the largest). Only blur: pose, exposure and occlusion are not this option's business."""
        found = self.shared.engine.faces(image, max_faces=1, quality=True)
        if not found:
            return engine_failure(NO_FACE_DETECTED, name)
        report = found[0].quality_report
        if report is None:  # landmarks without FaceMesh: no quality measurements to go on
            return 400, {"error_message": "BAD_ARGUMENTS: blur_detection (not available with this engine's landmarks)"}
        if "blur" in report.failed_checks:
            logger.debug("aigen: %s is blurred: %s", name, report.message())
            return 200, {"error_message": f"IMAGE_BLURED: {name}"}
        return None


# --- the request -------------------------------------------------------------------------------


def parse_body(raw: bytes, max_image_bytes: int) -> tuple[list[bytes], bool]:
    """The JSON body → (the two photos' bytes, blur_detection), or a 400 `Refusal` whose message is
    the `error_message` to answer."""
    body = _json_object(raw)
    unknown = sorted(set(body) - set(IMAGES) - set(FLAGS))
    if unknown:
        raise _bad(f"BAD_ARGUMENTS: {unknown[0]} (not a field of this API)")
    flags = {}
    for name in FLAGS:
        value = body.get(name, False)
        if not isinstance(value, bool):
            raise _bad(f"BAD_ARGUMENTS: {name} (must be true or false)")
        flags[name] = value
    for name in DOCUMENT_FLAGS:
        if flags[name]:
            raise _bad(f"BAD_ARGUMENTS: {name} (this device has no ID-card check; send false or leave it out)")
    images = [_image(body.get(name), name, max_image_bytes) for name in IMAGES]
    return images, flags["blur_detection"]


def _json_object(raw: bytes) -> dict:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("BAD_ARGUMENTS: body (not UTF-8 JSON)") from None
    # A flat object has one level: count brackets first (cheap), scan only when there are more.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and json_depth(raw) > MAX_JSON_DEPTH:
        raise _bad("BAD_ARGUMENTS: body (nested too deep: a flat JSON object is expected)")
    try:
        body = json.loads(text)
    except ValueError:
        raise _bad("BAD_ARGUMENTS: body (not JSON)") from None
    if not isinstance(body, dict):
        raise _bad("BAD_ARGUMENTS: body (must be a JSON object)")
    return body


def _image(value: Any, name: str, max_bytes: int) -> bytes:
    if value is None or value == "":
        raise _bad(f"MISSING_ARGUMENTS: {name}")
    if not isinstance(value, str):
        raise _bad(f"BAD_ARGUMENTS: {name} (must be a base64 string)")
    prefix = _DATA_URL.match(value)
    try:
        text = (value[prefix.end() :] if prefix else value).encode("ascii")
    except UnicodeEncodeError:
        raise _bad(f"IMAGE_ERROR_UNSUPPORTED_FORMAT: {name}") from None
    text = text.translate(None, _WHITESPACE)  # line breaks, as base64.encodebytes writes them
    if not text:
        raise _bad(f"MISSING_ARGUMENTS: {name}")
    # Refused from its length alone: decoding a photo the engine would refuse is wasted memory.
    if len(text) // 4 * 3 - 2 > max_bytes:
        raise Refusal(413, INVALID_CONTENT_LENGTH, f"IMAGE_FILE_TOO_LARGE: {name}", reason="aigen")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise _bad(f"IMAGE_ERROR_UNSUPPORTED_FORMAT: {name}") from None


def _bad(message: str) -> Refusal:
    return Refusal(400, INVALID_ARGUMENT, message, reason="aigen")


# --- the answer --------------------------------------------------------------------------------

# Engine result code → (HTTP status, the vendor's error_message prefix; ": image1" follows).
_ENGINE_ERRORS: dict[int, tuple[int, str]] = {
    INVALID_IMAGE_SIZE: (400, "INVALID_IMAGE_SIZE"),
    INVALID_CONTENT_LENGTH: (413, "IMAGE_FILE_TOO_LARGE"),
    INVALID_IMAGE_TYPE: (400, "IMAGE_ERROR_UNSUPPORTED_FORMAT"),
    CORRUPTED_IMAGE: (400, "IMAGE_ERROR_UNSUPPORTED_FORMAT"),
    NO_FACE_DETECTED: (200, "CAN_NOT_DETECT_FACE"),
    FACE_OCCLUDED: (400, "FACE_OCCLUDED"),  # only from the engine's check_quality, which this endpoint does not ask
    INVALID_ARGUMENT: (400, "BAD_ARGUMENTS"),
}

# Refusals of the shared gate (`Refusal.reason`) → the error_message answered with their status.
_GATE_ERRORS = {
    "length-missing": "LENGTH_REQUIRED",
    "too-large": "REQUEST_ENTITY_TOO_LARGE",
    "busy": "CONCURRENCY_LIMIT_EXCEEDED",
    "disconnected": "BAD_ARGUMENTS: body (it did not arrive)",
}


def engine_failure(code: int, name: str | None) -> tuple[int, dict]:
    status, prefix = _ENGINE_ERRORS.get(code, (500, "INTERNAL_ERROR"))
    if status == 500:
        return status, {"error_message": prefix}
    return status, {"error_message": f"{prefix}: {name}" if name else prefix}


def refusal_message(exc: Refusal) -> tuple[int, str]:
    if exc.reason in ("aigen", "auth-missing", "auth-wrong"):
        return exc.status, exc.message
    if exc.reason == "length-missing" and exc.status == 400:
        return 400, "BAD_ARGUMENTS: Content-Length"
    return exc.status, _GATE_ERRORS.get(exc.reason, "INTERNAL_ERROR" if exc.status >= 500 else "BAD_ARGUMENTS")


def _side(message: str) -> str | None:
    """Which photo an engine message names ("… in the second image"), as the vendor's field name."""
    if "second" in message:
        return "image2"
    if "first" in message:
        return "image1"
    return None


def _answer(fields: dict, status: int, rid: str, started: float, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"request_id": rid, **fields, "time_used": round(time.perf_counter() - started, 3)}
    return JSONResponse(body, status_code=status, headers={"X-Request-Id": rid, **(headers or {})})


# --- /openapi.json -----------------------------------------------------------------------------


def openapi_part() -> dict:
    """This dialect's part of /openapi.json: {"paths", "schemas", "security"}."""
    flag = {"type": "boolean", "default": False}
    request = {
        "type": "object",
        "required": list(IMAGES),
        "additionalProperties": False,
        "properties": {
            "image1": {"type": "string", "format": "byte", "minLength": 1, "description": "base64 of a photo"},
            "image2": {"type": "string", "format": "byte", "minLength": 1, "description": "base64 of a photo"},
            "blur_detection": {**flag, "description": "answer IMAGE_BLURED when a face is blurred"},
            "verified_document": {**flag, "enum": [False], "description": "true is refused: no ID-card check"},
            "image1_is_document": {**flag, "enum": [False], "description": "true is refused: no ID-card check"},
            "image2_is_document": {**flag, "enum": [False], "description": "true is refused: no ID-card check"},
        },
    }
    percent = {"type": "number", "minimum": 0, "maximum": 100}
    answer = {
        "type": "object",
        "required": ["request_id", "time_used"],
        "properties": {
            "request_id": {"type": "string"},
            "confidence": percent,
            "thresholds": {
                "type": "object",
                "required": list(THRESHOLD_FARS),
                "properties": {name: percent for name in THRESHOLD_FARS},
            },
            "time_used": {"type": "number", "minimum": 0},
            "error_message": {"type": "string"},
        },
    }
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/AigenAnswer"}}}}
    responses = {
        "200": {"description": "confidence and thresholds; or CAN_NOT_DETECT_FACE / IMAGE_BLURED", **ref},
        "400": {"description": "IMAGE_ERROR_UNSUPPORTED_FORMAT, INVALID_IMAGE_SIZE, MISSING/BAD_ARGUMENTS", **ref},
        "401": {"description": "MISSING_API_KEY: no x-aigen-key header", **ref},
        "403": {"description": "INVALID_API_KEY: not one of http.aigen_keys", **ref},
        "411": {"description": "LENGTH_REQUIRED: no Content-Length", **ref},
        "413": {"description": "REQUEST_ENTITY_TOO_LARGE, IMAGE_FILE_TOO_LARGE", **ref},
        "500": {"description": "INTERNAL_ERROR: a fault of the device", **ref},
        "503": {"description": "CONCURRENCY_LIMIT_EXCEEDED: the queue is full (Retry-After)", **ref},
    }
    operation = {
        "summary": "aigen Face Compare v1: 1:1 verification of the largest face of each photo",
        "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
        "responses": responses,
        "security": [{"aigenKey": []}],
    }
    return {
        "paths": {PATH: {"post": operation}},
        "schemas": {"AigenAnswer": answer},
        "security": {"aigenKey": {"type": "apiKey", "in": "header", "name": KEY_HEADER}},
    }
