"""32-byte keys written as base64 text, as they appear in configuration files and on command lines."""

from __future__ import annotations

import base64
import binascii


class KeyFormatError(ValueError):
    """Text that is not a 32-byte key in base64."""


def b64decode_loose(text: str) -> bytes:
    """Standard or URL-safe base64, whitespace and missing padding tolerated; b"" when it is not base64."""
    clean = "".join(text.split())
    try:
        altchars = b"-_" if ("-" in clean or "_" in clean) else None
        return base64.b64decode(clean + "=" * (-len(clean) % 4), altchars=altchars)
    except (binascii.Error, ValueError):
        return b""


def parse_key32(text: str, *, kind: str = "Ed25519") -> bytes:
    """32 raw bytes from base64 text (standard or URL-safe), or `KeyFormatError` naming `kind`."""
    raw = b64decode_loose(text) if isinstance(text, str) else b""
    if len(raw) != 32:
        raise KeyFormatError(f"not an {kind} public key: expected the base64 of 32 bytes, got {text!r:.60}")
    return raw
