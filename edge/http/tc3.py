"""Tencent Cloud's request signature, TC3-HMAC-SHA256, checked as Tencent documents it and its
SDK computes it (docs/http.md, "Signature, clock and replay"), and the refusal in Tencent's
vocabulary (`TencentError`) the CompareFace dialect (tencent.py) answers with.

Canonical request = method, path, query, the SignedHeaders (lower-cased, trimmed), the SHA-256 of
the body; string to sign = algorithm, X-TC-Timestamp, "<date>/<service>/tc3_request", the
canonical request's SHA-256; key = HMAC chain "TC3"+SecretKey → date → service → "tc3_request".
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import re
from datetime import datetime, timezone

from starlette.requests import Request

from edge.config import ConfigError
from edge.errors import INVALID_ARGUMENT
from edge.http.common import Refusal

SERVICE = "iai"
ALGORITHM = "TC3-HMAC-SHA256"
# Tencent's own: "Timestamp and server time cannot differ by more than five minutes".
WINDOW_S = 300
# Signatures remembered to refuse a replay: each for WINDOW_S past its timestamp (after that the
# window refuses it). Only verified signatures are kept, so only signed traffic fills it.
REPLAY_CAPACITY = 50_000

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
    if (
        len(scope) != 4
        or scope[3] != "tc3_request"
        or not _DATE.fullmatch(scope[1])
        or not _SECRET_ID.fullmatch(scope[0])
    ):
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
            raise replayed()
        if len(self._live) >= self.capacity:
            raise TencentError(
                "RequestLimitExceeded",
                "too many signed requests within the signature window; retry later",
                reason="busy",
            )
        heapq.heappush(self._expiries, (timestamp + WINDOW_S, signature))
        self._live.add(signature)


def replayed() -> TencentError:
    return TencentError(
        "AuthFailure.SignatureFailure",
        "this signature was already used: a request is accepted once (sign each request anew)",
        reason="auth-wrong",
    )
