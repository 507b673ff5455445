"""The API's result codes, and the exception that carries one.

Every public entry point (CLI, HTTP, MQTT commands) reports one of these codes. A code
also fixes the HTTP status the HTTP front end answers with (`http_status`).
"""

from __future__ import annotations

SUCCESS = 1000
INVALID_ARGUMENT = 1200
INVALID_IMAGE_SIZE = 2003  # image dimensions (pixels) out of range
INVALID_CONTENT_LENGTH = 2004  # payload size (bytes) out of range
INVALID_IMAGE_TYPE = 2005  # not a supported image format
CORRUPTED_IMAGE = 2006  # right format, but it does not decode
NO_FACE_DETECTED = 4000
FACE_OCCLUDED = 4004
INTERNAL_ERROR = 5000  # the device cannot answer (a model file missing or damaged, a fault): not the request's

MESSAGES: dict[int, str] = {
    SUCCESS: "success",
    INVALID_ARGUMENT: "invalid argument",
    INVALID_IMAGE_SIZE: "invalid image size",
    INVALID_CONTENT_LENGTH: "invalid content length",
    INVALID_IMAGE_TYPE: "invalid image type",
    CORRUPTED_IMAGE: "corrupted image",
    NO_FACE_DETECTED: "no face detected",
    FACE_OCCLUDED: "face occluded",
    INTERNAL_ERROR: "internal error",
}

HTTP_OK = 200
HTTP_BAD_REQUEST = 400
HTTP_PAYLOAD_TOO_LARGE = 413
HTTP_INTERNAL_ERROR = 500

HTTP_STATUS: dict[int, int] = {
    SUCCESS: HTTP_OK,
    INVALID_ARGUMENT: HTTP_BAD_REQUEST,
    INVALID_IMAGE_SIZE: HTTP_BAD_REQUEST,
    INVALID_CONTENT_LENGTH: HTTP_PAYLOAD_TOO_LARGE,
    INVALID_IMAGE_TYPE: HTTP_BAD_REQUEST,
    CORRUPTED_IMAGE: HTTP_BAD_REQUEST,
    NO_FACE_DETECTED: HTTP_BAD_REQUEST,
    FACE_OCCLUDED: HTTP_BAD_REQUEST,
    INTERNAL_ERROR: HTTP_INTERNAL_ERROR,
}


def http_status(code: int) -> int:
    """HTTP status for a result code; anything not listed is an internal error (500)."""
    return HTTP_STATUS.get(code, HTTP_INTERNAL_ERROR)


class EdgeError(Exception):
    """A request failed with one of the result codes above."""

    def __init__(self, code: int, message: str | None = None) -> None:
        if code == SUCCESS:
            raise ValueError("EdgeError needs a failure code, not SUCCESS (1000)")
        self.code = int(code)
        self.message = message if message is not None else MESSAGES.get(self.code, "internal error")
        super().__init__(f"[{self.code}] {self.message}")

    @property
    def http_status(self) -> int:
        return http_status(self.code)

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message}
