"""The on-disk record format: every file the vault stores is one authenticated, encrypted record.

    record    = MAGIC (8 bytes, "EDGEREC1") + kind (1 byte) + ciphertext
    kind "S"  = nacl.secret.SecretBox (XSalsa20-Poly1305) under the record key derived from the
                device's private key: only the device can write or read it (meta, templates)
    kind "P"  = nacl.public.SealedBox to the device's public key (X25519 + XSalsa20-Poly1305):
                anyone holding the public key can write one, only the device can read it (photos)
    plaintext = header length (4 bytes, big-endian) + header (JSON, UTF-8) + payload (bytes)

The header names where the record belongs (`kind`, `person`, `entry`, `record`); `open_record`
checks it against where the file was found, so a valid record moved or copied to another place
(or another person) is refused like a modified one. Every failure is a `RecordError` naming the
record, so one bad file never stops the others from loading.
"""

from __future__ import annotations

import json
import struct

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.secret import SecretBox

from edge.vault.errors import RecordError

MAGIC = b"EDGEREC1"
KIND_SECRET = b"S"
KIND_SEALED = b"P"
FORMAT_VERSION = 1
_MIN_SIZE = {KIND_SECRET: SecretBox.NONCE_SIZE + SecretBox.MACBYTES, KIND_SEALED: PublicKey.SIZE + SecretBox.MACBYTES}


def _plaintext(header: dict, payload: bytes) -> bytes:
    head = json.dumps({"v": FORMAT_VERSION, **header}, separators=(",", ":"), sort_keys=True).encode()
    return struct.pack(">I", len(head)) + head + payload


def seal_secret(key: bytes, header: dict, payload: bytes = b"") -> bytes:
    """A record only the device can read or write (SecretBox under the record key)."""
    return MAGIC + KIND_SECRET + bytes(SecretBox(key).encrypt(_plaintext(header, payload)))


def seal_public(public_key: PublicKey, header: dict, payload: bytes = b"") -> bytes:
    """A record anyone with the device's public key can write and only the device can read (SealedBox)."""
    return MAGIC + KIND_SEALED + SealedBox(public_key).encrypt(_plaintext(header, payload))


def open_record(
    data: bytes,
    *,
    record: str,
    secret_key: bytes | None = None,
    private_key: PrivateKey | None = None,
    expect: dict | None = None,
) -> tuple[dict, bytes]:
    """Decrypt and authenticate one record; check its header against `expect`. → (header, payload)."""
    if len(data) < len(MAGIC) + 1 or data[: len(MAGIC)] != MAGIC:
        if MAGIC.startswith(data[: len(MAGIC)]):
            raise RecordError(record, f"truncated ({len(data)} bytes): not a complete vault record")
        raise RecordError(record, "not a vault record (bad magic bytes): damaged or replaced")
    kind = data[len(MAGIC) : len(MAGIC) + 1]
    body = data[len(MAGIC) + 1 :]
    if kind not in _MIN_SIZE:
        raise RecordError(record, f"unknown record kind {kind!r}: damaged or written by a newer version")
    if len(body) < _MIN_SIZE[kind]:
        raise RecordError(record, f"truncated ({len(data)} bytes): too short for an encrypted record")
    try:
        if kind == KIND_SECRET:
            if secret_key is None:
                raise RecordError(record, "is a device-key record but no record key was given")
            plain = SecretBox(secret_key).decrypt(body)
        else:
            if private_key is None:
                raise RecordError(record, "is sealed to the device key but no private key was given")
            plain = SealedBox(private_key).decrypt(body)
    except CryptoError:
        raise RecordError(
            record,
            "does not authenticate: modified, truncated, or written under another device's key",
        ) from None
    try:
        (size,) = struct.unpack_from(">I", plain)
        header = json.loads(plain[4 : 4 + size])
        payload = plain[4 + size :]
        if not isinstance(header, dict) or len(plain) < 4 + size:
            raise ValueError("bad header")
    except (struct.error, ValueError, UnicodeDecodeError):
        raise RecordError(record, "authenticated but its header does not parse (written by another program?)") from None
    if header.get("v") != FORMAT_VERSION:
        raise RecordError(record, f"record format version {header.get('v')!r}; this program reads {FORMAT_VERSION}")
    for field, wanted in (expect or {}).items():
        if header.get(field) != wanted:
            raise RecordError(
                record,
                f"authenticates, but says it is {field} {header.get(field)!r}, not {wanted!r}: "
                "a record moved or copied from elsewhere; refused",
            )
    return header, payload


__all__ = ["FORMAT_VERSION", "MAGIC", "open_record", "seal_public", "seal_secret"]
