"""schemathesis hooks for scripts/eval/http_schemathesis.py: requests to the Tencent dialect
(`POST /`) are signed with TC3-HMAC-SHA256 as Tencent's SDK signs them, over the body exactly
as sent, so the fuzzed bodies reach the parser and the engine instead of stopping at the
signature check. The secret comes from EDGE_TENCENT_SECRET ("SecretId:SecretKey")."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from datetime import datetime, timezone

import requests
import schemathesis

SECRET_ID, _, SECRET_KEY = os.environ.get("EDGE_TENCENT_SECRET", ":").partition(":")


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class TC3(requests.auth.AuthBase):
    """Signs the prepared request (its final body bytes) the way tencentcloud-sdk-python does."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        timestamp = int(time.time())
        date = datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d")
        host = request.url.split("//", 1)[1].split("/", 1)[0]
        content_type = request.headers.get("Content-Type", "application/json")
        request.headers.setdefault("X-TC-Action", "CompareFace")
        request.headers.setdefault("X-TC-Version", "2020-03-03")
        request.headers["X-TC-Timestamp"] = str(timestamp)
        request.headers["Host"] = host
        canonical = "\n".join(
            [
                request.method,
                "/",
                "",
                f"content-type:{content_type.strip().lower()}\nhost:{host}\n",
                "content-type;host",
                hashlib.sha256(body).hexdigest(),
            ]
        )
        scope = f"{date}/iai/tc3_request"
        to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        key = _hmac(_hmac(_hmac(("TC3" + SECRET_KEY).encode(), date), "iai"), "tc3_request")
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        request.headers["Authorization"] = (
            f"TC3-HMAC-SHA256 Credential={SECRET_ID}/{scope}, SignedHeaders=content-type;host, Signature={signature}"
        )
        return request


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path == "/" and SECRET_ID:
        kwargs["auth"] = TC3()
