"""Downloading a photo from a host the configuration allows (`http.url_allow_hosts`; Tencent's
UrlA/UrlB): bounded in bytes and time, no redirect (it could lead off the allow-list), no proxy
from the environment. The device is offline by design: with no host allowed nothing is fetched.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit


class FetchError(Exception):
    """The photo could not be fetched; `too_large` when it is above the byte limit."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise FetchError(f"the server redirects ({code}); redirects are not followed")


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def allowed_host(url: str, hosts: set[str]) -> str | None:
    """The URL's host when it is http(s) and its host is one of `hosts` (lower case), else None."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    return host if parts.scheme in ("http", "https") and host in hosts else None


def fetch(url: str, *, max_bytes: int, timeout_s: float) -> bytes:
    """The body of GET `url`: at most `max_bytes` (FetchError(too_large) above), within `timeout_s` overall."""
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(url, headers={"User-Agent": "edge-face-verify", "Accept": "image/*"})
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise FetchError(f"the photo is {length} bytes; at most {max_bytes} are accepted", too_large=True)
            chunks, size = [], 0
            while chunk := response.read(65536):
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(f"the photo is above {max_bytes} bytes", too_large=True)
                if time.monotonic() > deadline:
                    raise FetchError(f"the download took more than {timeout_s:g} s")
                chunks.append(chunk)
            return b"".join(chunks)
    except FetchError:
        raise
    except urllib.error.HTTPError as exc:
        raise FetchError(f"the server answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"the download failed: {reason}") from None
