"""File-system primitives: atomic, durable writes, overwrite-then-unlink, a lock.

The vault, the MQTT outbox and the command nonce log all write through `atomic_write`: a
temporary file in the same directory (created 0600, never holding partial content under the
final name), fsync of the file, `os.replace` onto the final name, fsync of the directory.
After a crash or a SIGKILL at any point the final name holds either the old content or the
new, never a mix; a leftover temporary file is recognisable by its name (`is_temporary`)
and is removed by the next writer.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

TMP_PREFIX = ".tmp-"


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a directory's entries (creations, renames, removals) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _durable_tmp(path: Path, data: bytes, mode: int, durable: bool = True) -> Path:
    """`data` in a new, fsynced (if `durable`) temporary file beside `path` (mode exactly `mode`)."""
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)  # the umask may only narrow it; make it exact
        _write_all(fd, data)
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    return tmp


def atomic_write(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600, durable: bool = True) -> None:
    """Write `data` to `path` atomically and durably (tmp in the same dir, fsync, rename, dir fsync).

    `durable=False` skips the two fsyncs: still atomic (old or new content, never a torn mix,
    after a crash of the process), but a power cut may leave the old content.
    """
    path = Path(path)
    tmp = _durable_tmp(path, data, mode, durable)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def create_exclusive(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600) -> None:
    """Like `atomic_write`, but fails with FileExistsError instead of replacing an existing file."""
    path = Path(path)
    tmp = _durable_tmp(path, data, mode)
    try:
        os.link(tmp, path)  # atomic, and refuses to clobber
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    fsync_dir(path.parent)


def shred(path: str | os.PathLike[str]) -> None:
    """Overwrite a file's content with random bytes, fsync, then unlink it (no directory fsync).

    On flash storage (SD cards, eMMC, SSDs) the controller may keep the old blocks until it
    reuses them, so this is defence in depth: what the vault stores is ciphertext anyway.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        size = os.fstat(fd).st_size
        chunk = 1 << 20
        for offset in range(0, size, chunk):
            os.pwrite(fd, os.urandom(min(chunk, size - offset)), offset)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.unlink(path)


def shred_tree(directory: str | os.PathLike[str]) -> int:
    """Shred every file below `directory`, remove the directories, fsync the parent. Files shredded."""
    directory = Path(directory)
    count = 0
    for root, dirs, files in os.walk(directory, topdown=False):
        for name in files:
            shred(Path(root, name))
            count += 1
        for name in dirs:
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(Path(root, name))
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(directory)
    fsync_dir(directory.parent)
    return count


def is_temporary(name: str) -> bool:
    return name.startswith(TMP_PREFIX)


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """An exclusive advisory lock (flock) on `path`, held for the block; released by the kernel on exit or kill."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                break
            except OSError as exc:  # pragma: no cover - EINTR on old Pythons
                if exc.errno != errno.EINTR:
                    raise
        yield
    finally:
        os.close(fd)  # closing releases the lock


__all__ = [
    "TMP_PREFIX",
    "atomic_write",
    "create_exclusive",
    "exclusive_lock",
    "fsync_dir",
    "is_temporary",
    "shred",
    "shred_tree",
]
