"""The device's X25519 key pair (PyNaCl), kept in the vault directory.

    VAULT/device.key   the private key, base64, mode 0600; refused if group or others may access it
    VAULT/device.pub   the public key, base64 (0644): give it to administrators for remote enrolment

The vault directory itself is refused if group or others may write to it (`check_vault_directory`,
on every load and by `init_keys`), and neither key file may be a symbolic link.

The private key does three jobs: it opens photos and bundles sealed to the public key
(`nacl.public.SealedBox`), it opens images sent encrypted to the device, and a key derived
from it (`record_key`, BLAKE2b keyed with the private key, domain-separated) encrypts and
authenticates the vault's own records (`nacl.secret.SecretBox`).
"""

from __future__ import annotations

import base64
import binascii
import os
import shlex
import stat
from pathlib import Path

from nacl.encoding import RawEncoder
from nacl.hash import blake2b
from nacl.public import PrivateKey, PublicKey

from edge.fs import atomic_write, create_exclusive, make_dir_private, make_private_dir, read_beneath
from edge.keytext import b64decode_loose
from edge.vault.errors import KeyPermissionError, VaultError, VaultPermissionError

PRIVATE_KEY_FILE = "device.key"
PUBLIC_KEY_FILE = "device.pub"
_RECORD_KEY_CONTEXT = b"edge vault records v1"
_RECORD_KEY_PERSON = b"edge-vault-key"  # BLAKE2b personalisation, at most 16 bytes
_KEY_FILE_MAX = 4096  # a key file is ~45 bytes of base64; anything larger is not one


def init_keys(directory: str | os.PathLike[str]) -> PublicKey:
    """Create the vault directory (0700) and a new device key pair; refuse to replace an existing key.

    An existing directory is accepted only if group and others cannot write to it (an empty
    one is narrowed to 0700: it is becoming the vault); a non-empty one keeps its mode.
    """
    directory = Path(directory)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        make_private_dir(directory)
    except FileExistsError:
        check_vault_directory(directory)
        try:
            if not any(os.scandir(directory)):
                make_dir_private(directory)
        except OSError as exc:
            raise VaultError(f"cannot use {directory} as the vault directory: {exc.strerror or exc}") from None
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(directory) else ""
        raise VaultError(f"cannot create the vault directory {directory}: {exc.strerror or exc}{where}") from None
    private_path = directory / PRIVATE_KEY_FILE
    if os.path.lexists(private_path):
        raise VaultError(
            f"{private_path} already exists: this vault has a device key already. Replacing it would make "
            "every record and every bundle sealed to it unreadable; `edge keys show` prints its public key"
        )
    key = PrivateKey.generate()
    try:
        create_exclusive(private_path, base64.b64encode(bytes(key)) + b"\n", mode=0o600)
    except FileExistsError:
        raise VaultError(f"{private_path} appeared while creating it; not replacing it") from None
    atomic_write(directory / PUBLIC_KEY_FILE, public_key_b64(key.public_key).encode() + b"\n", mode=0o644)
    return key.public_key


def check_vault_directory(directory: str | os.PathLike[str]) -> None:
    """Refuse a vault directory that group or others may write to (names the `chmod`), or that is not one.

    Whoever can write to the directory can delete or replace its files, plant links and
    swap the key: every other protection assumes only the device's user can. The
    configured path itself may be a symbolic link (the administrator's choice); its target
    is what is checked.
    """
    try:
        info = os.stat(directory)
    except FileNotFoundError:
        raise VaultError(
            f"no vault at {directory}: run `edge keys init --vault {shlex.quote(str(directory))}`"
        ) from None
    except OSError as exc:
        raise VaultError(f"cannot use the vault directory {directory}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise VaultPermissionError(f"the vault path {directory} is not a directory")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022:
        raise VaultPermissionError(
            f"refusing to use the vault directory {directory}: it is writable by group or others "
            f"(mode {mode:04o}, {stat.filemode(info.st_mode)}), so they could delete or replace enrolments and "
            f"plant links; run: chmod 700 {shlex.quote(str(directory))}"
        )


def check_key_permissions(path: str | os.PathLike[str]) -> None:
    """Refuse a private key file that group or others may read, write or execute (names the `chmod`),
    or that is not a regular file (a symbolic link is refused, never followed)."""
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        what = "a symbolic link (never followed in a vault)" if stat.S_ISLNK(info.st_mode) else "not a regular file"
        raise VaultError(f"{path} is {what}: put the device's private key file itself there")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        what = "readable by group or others" if mode & 0o044 else "accessible by group or others"
        raise KeyPermissionError(
            f"refusing to use the device's private key {path}: it is {what} "
            f"(mode {mode:04o}, {stat.filemode(info.st_mode)}); run: chmod 600 {shlex.quote(str(path))}"
        )


def load_private_key(directory: str | os.PathLike[str]) -> PrivateKey:
    """The device's private key, after the directory's and the key file's permission checks."""
    check_vault_directory(directory)
    path = Path(directory) / PRIVATE_KEY_FILE
    try:
        check_key_permissions(path)
    except FileNotFoundError:
        raise VaultError(
            f"no device key at {path}: run `edge keys init --vault {shlex.quote(str(directory))}` "
            "(or restore the vault's key)"
        ) from None
    except OSError as exc:
        raise VaultError(f"cannot read the device key {path}: {exc.strerror or exc}") from None
    try:
        raw = base64.b64decode(
            read_beneath(directory, PRIVATE_KEY_FILE, max_bytes=_KEY_FILE_MAX).strip(), validate=True
        )
    except (binascii.Error, ValueError, OSError) as exc:
        raise VaultError(f"{path} does not hold a base64 private key: {exc}") from None
    if len(raw) != PrivateKey.SIZE:
        raise VaultError(f"{path} holds {len(raw)} bytes; an X25519 private key is {PrivateKey.SIZE}")
    key = PrivateKey(raw)
    pub_path = Path(directory) / PUBLIC_KEY_FILE
    try:
        stored = read_beneath(directory, PUBLIC_KEY_FILE, max_bytes=_KEY_FILE_MAX).decode("ascii", "replace").strip()
    except FileNotFoundError:
        stored = None
    except OSError as exc:
        raise VaultError(f"cannot read {pub_path}: {exc.strerror or exc}") from None
    if stored is not None and stored != public_key_b64(key.public_key):
        raise VaultError(
            f"{pub_path} does not match {path}: the public key file was replaced or belongs to another "
            f"device; the private key's public key is {public_key_b64(key.public_key)}"
        )
    return key


def public_key_b64(key: PublicKey | PrivateKey) -> str:
    public = key.public_key if isinstance(key, PrivateKey) else key
    return base64.b64encode(bytes(public)).decode("ascii")


def parse_public_key(text: str | os.PathLike[str]) -> PublicKey:
    """A public key from base64 text (standard or URL-safe) or from a file holding it (e.g. device.pub)."""
    value = os.fspath(text)
    candidate = Path(value)
    try:
        if len(value) < 4096 and candidate.is_file():
            value = candidate.read_text()
    except (OSError, ValueError):
        pass
    raw = b64decode_loose(value)
    if len(raw) != PublicKey.SIZE:
        raise VaultError(
            f"not a device public key: expected the base64 of {PublicKey.SIZE} bytes (what `edge keys show` prints) "
            "or a file holding it"
        )
    return PublicKey(raw)


def record_key(private_key: PrivateKey) -> bytes:
    """The SecretBox key for the vault's own records, derived from the device's private key."""
    return blake2b(
        _RECORD_KEY_CONTEXT,
        digest_size=32,
        key=bytes(private_key),
        person=_RECORD_KEY_PERSON,
        encoder=RawEncoder,
    )


__all__ = [
    "PRIVATE_KEY_FILE",
    "PUBLIC_KEY_FILE",
    "check_key_permissions",
    "check_vault_directory",
    "init_keys",
    "load_private_key",
    "parse_public_key",
    "public_key_b64",
    "record_key",
]
