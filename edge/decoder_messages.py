"""What a native decoder writes on stderr during one call, caught so that it can be judged.

libjpeg (built into OpenCV) reports recoverable damage only as a line on stderr -- "Corrupt
JPEG data: premature end of data segment" for a scan cut short, "... bad Huffman code",
"... N extraneous bytes before marker 0xd9" -- and carries on: OpenCV then returns a picture
whose missing part is flat grey, as if nothing had happened. There is no other way to learn
about it from Python: OpenCV keeps libjpeg's default message handler, which `fprintf`s to the
process's standard error. So `call_capturing_stderr` points file descriptor 2 at an in-memory
file for the length of one call, and hands back what was written there.

File descriptor 2 belongs to the whole process. Two consequences, both handled here or by the
caller:

* Calls are serialised (one lock), so one capture never sees another capture's messages.
* Another thread may write to stderr during the window (a log record; a camera capture
  thread's own libjpeg warning). Its bytes land in the capture; the caller keeps the lines it
  recognises as its decoder's and passes the rest on with `pass_through`, so nothing is lost.
  A foreign libjpeg warning written inside the window (a few milliseconds) is taken for this
  call's: the image is then refused as corrupt although it is not -- a false refusal, never a
  false acceptance.

When descriptor 2 cannot be duplicated (closed by a daemon launcher), the call runs without
capture and `captured` is False.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_LOCK = threading.Lock()
_SINK: int | None = None  # the in-memory file stderr is pointed at; created on first use, reused
_MAX_KEPT = 1 << 16  # bytes of captured text returned (libjpeg prints one short line per call)


def _sink() -> int:
    global _SINK
    if _SINK is None:
        if hasattr(os, "memfd_create"):
            _SINK = os.memfd_create("edge-decoder-messages", os.MFD_CLOEXEC)
        else:  # pragma: no cover - not Linux
            handle = tempfile.TemporaryFile()
            _SINK = os.dup(handle.fileno())
            handle.close()
    return _SINK


def call_capturing_stderr(fn: Callable[[], T]) -> tuple[T, bytes, bool]:
    """(fn(), what was written to file descriptor 2 meanwhile, whether it was captured)."""
    with _LOCK:
        try:
            sys.stderr.flush()  # text this process wrote before the call goes where it was meant to
        except (AttributeError, OSError, ValueError):
            pass
        try:
            saved = os.dup(2)
        except OSError:
            return fn(), b"", False
        try:
            sink = _sink()
            os.ftruncate(sink, 0)
            os.lseek(sink, 0, os.SEEK_SET)
            os.dup2(sink, 2)
            try:
                result = fn()
            finally:
                os.dup2(saved, 2)
            size = os.lseek(sink, 0, os.SEEK_CUR)
            text = os.pread(sink, min(size, _MAX_KEPT), 0) if size else b""
        finally:
            os.close(saved)
    return result, text, True


def pass_through(text: bytes) -> None:
    """Write captured text that was not the decoder's to the real stderr after all."""
    view = memoryview(text)
    while view:
        try:
            written = os.write(2, view)
        except OSError:
            return
        view = view[written:]


__all__ = ["call_capturing_stderr", "pass_through"]
