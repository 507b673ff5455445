"""`GET /openapi.json`: the endpoints this device serves, written out by hand (OpenAPI 3.0)."""

from __future__ import annotations

from typing import Any

from edge import __version__

_IMAGE_PAIR = {
    "first_image_file": {"type": "string", "format": "binary"},
    "second_image_file": {"type": "string", "format": "binary"},
    "first_encrypted_image": {"type": "string", "description": "base64 of a photo sealed to the device key"},
    "second_encrypted_image": {"type": "string", "description": "base64 of a photo sealed to the device key"},
    "auto_rotate": {"type": "string", "enum": ["true", "false", "1", "0"]},
}

_ERROR = {
    "type": "object",
    "required": ["code", "message", "request_id"],
    "properties": {
        "code": {"type": "integer", "enum": [1200, 2003, 2004, 2005, 2006, 4000, 4004, 5000]},
        "message": {"type": "string"},
        "request_id": {"type": "string"},
    },
}

_VERIFIED = {
    "type": "object",
    "required": ["code", "verification_score", "request_id"],
    "properties": {
        "code": {"type": "integer", "enum": [1000]},
        "verification_score": {"type": "number", "minimum": 0, "maximum": 1},
        "face_count": {
            "type": "object",
            "properties": {"first": {"type": "integer"}, "second": {"type": "integer"}},
        },
        "request_id": {"type": "string"},
    },
}

_RECT = {"type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 4}
_COMPARED = {
    "type": "object",
    "required": ["code", "scores", "face_rects", "request_id"],
    "properties": {
        "code": {"type": "integer", "enum": [1000]},
        "scores": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
        "face_rects": {
            "type": "object",
            "properties": {"first": {"type": "array", "items": _RECT}, "second": {"type": "array", "items": _RECT}},
        },
        "request_id": {"type": "string"},
    },
}


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def _one_of_each_pair(fields: dict) -> dict:
    """Each photo comes as a file or sealed, exactly one of the two."""
    exactly_one = [
        {"oneOf": [{"required": [f"{label}_image_file"]}, {"required": [f"{label}_encrypted_image"]}]}
        for label in ("first", "second")
    ]
    return {"type": "object", "properties": fields, "allOf": exactly_one}


def _stateless(summary: str, ok: dict, fields: dict) -> dict:
    error = {"content": _json({"$ref": "#/components/schemas/Error"})}
    return {
        "post": {
            "summary": summary,
            "requestBody": {
                "required": True,
                "content": {"multipart/form-data": {"schema": _one_of_each_pair(fields)}},
            },
            "responses": {
                "200": {"description": "success (code 1000)", "content": _json(ok)},
                "400": {"description": "1200, 2003, 2005, 2006, 4000, 4004", **error},
                "401": {"description": "no X-API-Key (when api_keys are configured)", **error},
                "403": {"description": "a wrong X-API-Key", **error},
                "411": {"description": "no Content-Length", **error},
                "413": {"description": "2004: the body or a photo is too large", **error},
                "500": {"description": "5000: the device cannot answer", **error},
                "503": {"description": "busy: the queue is full (Retry-After)", **error},
            },
        }
    }


def senseid_paths(config: Any) -> dict:
    """The SenseID dialect's part: {"paths": …, "schemas": …, "security": {name: scheme}}."""
    verify_fields = {**_IMAGE_PAIR, "check_quality": {"type": "string", "enum": ["true", "false", "1", "0"]}}
    security = {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}} if config.api_keys else {}
    paths = {
        "/identity/image_verification/stateless": _stateless(
            "1:1 verification of the largest face of each photo", _VERIFIED, verify_fields
        ),
        "/identity/face_compare/stateless": _stateless(
            "every face of the first photo against every face of the second", _COMPARED, dict(_IMAGE_PAIR)
        ),
    }
    if security:
        for item in paths.values():
            item["post"]["security"] = [{"apiKey": []}]
    return {"paths": paths, "schemas": {"Error": _ERROR}, "security": security}


def openapi_document(config: Any, parts: list[dict]) -> dict:
    """The whole document: every dialect's part (`paths`, `schemas`, `security` schemes) and /healthz."""
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {"title": "edge face verification", "version": __version__},
        "paths": {
            "/healthz": {
                "get": {"summary": "the service answers", "responses": {"200": {"description": "ok"}}},
            },
        },
        "components": {"schemas": {}},
    }
    schemes: dict[str, Any] = {}
    for part in parts:
        document["paths"].update(part.get("paths", {}))
        document["components"]["schemas"].update(part.get("schemas", {}))
        schemes.update(part.get("security", {}))
    if schemes:
        document["components"]["securitySchemes"] = schemes
    return document
