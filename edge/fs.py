"""File-system primitives: atomic, durable writes, overwrite-then-unlink, a lock, reads that follow no link.

The vault, the MQTT outbox and the command nonce log all write through `atomic_write`: a
temporary file in the same directory (created 0600, never holding partial content under the
final name), fsync of the file, `os.replace` onto the final name, fsync of the directory.
After a crash or a SIGKILL at any point the final name holds either the old content or the
new, never a mix; a leftover temporary file is recognisable by its name (`is_temporary`)
and is removed by the next writer.

Nothing here follows a symbolic link it finds (the vault's rule; docs/vault.md, "Permissions
and symbolic links"): `read_beneath` and `list_beneath` open every path component below a root with
`O_NOFOLLOW`, `shred` and `shred_tree` remove a link instead of what it names and overwrite
only regular files with one link, `exclusive_lock` and the temporary files are opened with
`O_NOFOLLOW` / `O_EXCL`, and `os.replace` / `os.rename` never follow the names they are given.
The root given to `read_beneath`/`list_beneath` itself may be a link: it is the configured
path, chosen by whoever configured it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

TMP_PREFIX = ".tmp-"
PRIVATE_DIR_MODE = 0o700
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePathError(OSError):
    """A path component is a symbolic link, or not the kind of file expected there: refused, never followed."""


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device file"


def _refusal(name: str, path: str, dir_fd: int | None, wanted: str) -> UnsafePathError:
    """Why `name` (in `dir_fd`) could not be opened as `wanted`: it is a link, or another kind of file."""
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except OSError:
        return UnsafePathError(errno.ENOTDIR, f"not {wanted}", path)
    how = "not followed" if stat.S_ISLNK(mode) else f"not {wanted}"
    return UnsafePathError(errno.ELOOP if stat.S_ISLNK(mode) else errno.ENOTDIR, f"is {_kind(mode)}: {how}", path)


def _parts(rel: str | os.PathLike[str]) -> list[str]:
    parts = [p for p in os.fspath(rel).split("/") if p not in ("", ".")]
    if ".." in parts or os.fspath(rel).startswith("/"):
        raise ValueError(f"not a relative path below the root: {rel!r}")
    return parts


def _open_dirs(root: str | os.PathLike[str], parts: list[str]) -> int:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, part in enumerate(parts):
            try:
                sub = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                    raise _refusal(part, os.path.join(root, *parts[: i + 1]), fd, "a directory") from None
                raise
            os.close(fd)
            fd = sub
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_dir_beneath(root: str | os.PathLike[str], rel: str | os.PathLike[str] = "") -> int:
    """A file descriptor of the directory `root/rel`, no component of `rel` followed if it is a link.

    FileNotFoundError when a component is missing; UnsafePathError when one is a symbolic link
    or not a directory. The caller closes the descriptor.
    """
    return _open_dirs(root, _parts(rel))


def _open_regular_at(dir_fd: int, name: str, path: str, flags: int) -> tuple[int, os.stat_result]:
    """Open `name` in `dir_fd` only if it is a regular file: checked before opening (a pipe or a device
    is never opened) and on the descriptor; O_NOFOLLOW refuses a link at the last moment."""
    before = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISREG(before.st_mode):
        raise _refusal(name, path, dir_fd, "a regular file")
    try:
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refusal(name, path, dir_fd, "a regular file") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # replaced meanwhile by a pipe or a device (a link fails O_NOFOLLOW)
        os.close(fd)
        raise UnsafePathError(errno.ENOTDIR, "is not a regular file: not read", path)
    return fd, info  # possibly a newer file renamed into place meanwhile (atomic_write): still a regular file


def read_beneath(root: str | os.PathLike[str], rel: str | os.PathLike[str], *, max_bytes: int) -> bytes:
    """The content of the regular file `root/rel`, following no symbolic link below `root`.

    FileNotFoundError when it is missing; UnsafePathError when a component is a link, a
    directory is not one, the file is not a regular file (a pipe, a device) or it is larger
    than `max_bytes` (never read whole: a planted huge file or /dev/zero cannot exhaust memory).
    """
    parts = _parts(rel)
    if not parts:
        raise ValueError("read_beneath needs a file below the root")
    path = os.path.join(root, *parts)
    dir_fd = _open_dirs(root, parts[:-1])
    try:
        fd, info = _open_regular_at(dir_fd, parts[-1], path, os.O_RDONLY)
    finally:
        os.close(dir_fd)
    try:
        if info.st_size > max_bytes:
            raise UnsafePathError(errno.EFBIG, f"is {info.st_size} bytes, more than {max_bytes}: not read", path)
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise UnsafePathError(errno.EFBIG, f"grew past {max_bytes} bytes while being read: not read", path)
        return b"".join(chunks)
    finally:
        os.close(fd)


def list_beneath(root: str | os.PathLike[str], rel: str | os.PathLike[str] = "") -> dict[str, str]:
    """The names in the directory `root/rel` → "dir", "file" (regular), "link" or "other"; links
    below `root` are reported, never followed. FileNotFoundError / UnsafePathError as `open_dir_beneath`."""
    fd = open_dir_beneath(root, rel)
    try:
        out = {}
        with os.scandir(fd) as it:
            for entry in it:
                if entry.is_symlink():
                    out[entry.name] = "link"
                elif entry.is_dir(follow_symlinks=False):
                    out[entry.name] = "dir"
                elif entry.is_file(follow_symlinks=False):
                    out[entry.name] = "file"
                else:
                    out[entry.name] = "other"
        return out
    finally:
        os.close(fd)


def make_private_dir(path: str | os.PathLike[str]) -> None:
    """Create the directory `path` with mode exactly 0700, whatever the umask (FileExistsError if it exists).

    `mkdir` never follows a link at its last component; the mode is then set on the directory
    opened with O_NOFOLLOW (the umask may have removed the owner's bits too).
    """
    os.mkdir(path, PRIVATE_DIR_MODE)
    fd = os.open(path, _DIR_FLAGS)
    try:
        os.fchmod(fd, PRIVATE_DIR_MODE)
    finally:
        os.close(fd)


def make_dir_private(path: str | os.PathLike[str]) -> bool:
    """Narrow an existing directory (not a link) to mode 0700 if group or others have any access. → changed."""
    fd = os.open(path, _DIR_FLAGS)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.fchmod(fd, PRIVATE_DIR_MODE)
            return True
        return False
    finally:
        os.close(fd)


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
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
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
    after a crash of the process), but a power cut may leave the old content. A link at
    `path` is replaced by the file, never written through.
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
    """Like `atomic_write`, but fails with FileExistsError instead of replacing an existing file (or link)."""
    path = Path(path)
    tmp = _durable_tmp(path, data, mode)
    try:
        os.link(tmp, path, follow_symlinks=False)  # atomic, and refuses to clobber
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    fsync_dir(path.parent)


def _overwrite(fd: int, size: int) -> None:
    chunk = 1 << 20
    for offset in range(0, size, chunk):
        os.pwrite(fd, os.urandom(min(chunk, size - offset)), offset)
    os.fsync(fd)


def _shred_at(dir_fd: int | None, name: str | os.PathLike[str]) -> int:
    """Remove `name` (in `dir_fd`): a regular file with one link is overwritten first (→ 1), a
    directory is shredded whole (→ its files), anything else (a link, a pipe, a file with
    other hard links) is only unlinked: what it names, or shares its content with, is never
    written. → files overwritten."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return 0
    if stat.S_ISDIR(info.st_mode):
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
            return _shred_at(dir_fd, name)  # swapped for something else meanwhile
        try:
            count = sum(_shred_at(fd, child) for child in os.listdir(fd))
        finally:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(name, dir_fd=dir_fd)
        return count
    count = 0
    if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
        try:
            fd, opened = _open_regular_at(dir_fd, os.fspath(name), os.fspath(name), os.O_WRONLY)
        except UnsafePathError:
            opened = None  # replaced by a link or another file meanwhile: only unlink
        except FileNotFoundError:
            return 0
        if opened is not None:
            try:
                if opened.st_nlink == 1:
                    _overwrite(fd, opened.st_size)
                    count = 1
            finally:
                os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=dir_fd)
    return count


def shred(path: str | os.PathLike[str]) -> None:
    """Overwrite a regular file's content with random bytes, fsync, then unlink it (no directory fsync).

    A symbolic link (or a pipe, a device, a file with other hard links) is only unlinked:
    the file it names or shares its content with is never written. A directory is shredded
    whole (`shred_tree`, without its parent fsync).

    On flash storage (SD cards, eMMC, SSDs) the controller may keep the old blocks until it
    reuses them, so this is defence in depth: what the vault stores is ciphertext anyway.
    """
    _shred_at(None, path)


def shred_tree(directory: str | os.PathLike[str]) -> int:
    """Shred every file below `directory`, remove the directories, fsync the parent. → files overwritten.

    The walk goes through directory descriptors opened with O_NOFOLLOW: a link inside (or a
    link in place of `directory`) is removed, never followed.
    """
    directory = Path(directory)
    count = _shred_at(None, directory)
    fsync_dir(directory.parent)
    return count


def is_temporary(name: str) -> bool:
    return name.startswith(TMP_PREFIX)


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """An exclusive advisory lock (flock) on `path`, held for the block; released by the kernel on exit or kill.

    A symbolic link at `path` is refused (UnsafePathError), never followed (nor created through).
    """
    with _flocked(path, os.O_RDWR | os.O_CREAT, fcntl.LOCK_EX):
        yield


@contextlib.contextmanager
def shared_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """A shared flock on the existing file `path` (no link followed, nothing created), held for the
    block: waits while someone holds `exclusive_lock` on it, and keeps them waiting meanwhile."""
    with _flocked(path, os.O_RDONLY, fcntl.LOCK_SH):
        yield


@contextlib.contextmanager
def _flocked(path: str | os.PathLike[str], open_flags: int, operation: int) -> Iterator[None]:
    """`operation` (LOCK_EX / LOCK_SH) on the regular file `path`, opened without following a link."""
    try:
        fd = os.open(path, open_flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(errno.ELOOP, "is a symbolic link: not followed", os.fspath(path)) from None
        if exc.errno == errno.EISDIR:
            raise UnsafePathError(errno.EISDIR, "is a directory, not a lock file", os.fspath(path)) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePathError(errno.ENOTDIR, "is not a regular file", os.fspath(path))
        fcntl.flock(fd, operation)  # retried by Python itself when a signal interrupts it (PEP 475)
        yield
    finally:
        os.close(fd)  # closing releases the lock


__all__ = [
    "PRIVATE_DIR_MODE",
    "TMP_PREFIX",
    "UnsafePathError",
    "atomic_write",
    "create_exclusive",
    "exclusive_lock",
    "fsync_dir",
    "is_temporary",
    "list_beneath",
    "make_dir_private",
    "make_private_dir",
    "open_dir_beneath",
    "read_beneath",
    "shared_lock",
    "shred",
    "shred_tree",
]
