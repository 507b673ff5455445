"""An append-only, size-rotated JSONL audit log of every verdict and event.

Durability: records are written by a writer thread, in batches (everything queued when
it wakes up), each batch with one ``write`` per record and one ``fsync`` at its end. So
the loop never waits for the disk, and a record is on disk at most one batch after
`publish` returned: with verdicts a few per minute, a batch is almost always one record.
A crash loses at most the records still queued (not yet fsynced); `flush()` and
`close()` wait for the queue to reach the disk. ``fsync=False`` leaves it to the OS.

Rotation: before a record would take the file past `max_bytes`, the file is fsynced and
closed, ``audit.jsonl.N-1`` … ``.1`` move up one (``.N`` is removed), the file becomes
``audit.jsonl.1`` (atomic renames, the directory fsynced) and a new file starts. A
record is always written whole into one file, so rotation never splits or loses one; the
oldest file beyond `backups` is the only thing ever deleted (retention). A file left
with a torn last line by a crash gets a newline before the next record, so every later
line parses.

Sequence: after each batch that holds verdicts, the highest verdict ``seq`` is written to
``audit.seq`` with `edge.fs.atomic_write` (a temporary file, fsynced, renamed over it, the
directory fsynced): after a crash or a power cut it holds the old number or the new one,
never a torn mix. `last_seq` takes the larger of it and the last verdict in the log (the
newest file that holds one, read back to its start if need be), so numbering continues
after a restart however much else the log holds or rotated away since the last verdict,
and a lost or damaged ``audit.seq`` falls back to the log.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from pathlib import Path
from typing import Any

from edge.fs import atomic_write, is_temporary
from edge.sinks.base import Record, Sink, json_line

logger = logging.getLogger(__name__)

_STOP = object()


class AuditLogSink(Sink):
    name = "audit"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        max_bytes: int = 10 * 1024 * 1024,
        backups: int = 5,
        fsync: bool = True,
        background: bool = True,
    ) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        if backups < 1:
            raise ValueError("backups must be at least 1 (rotation moves the full file to .1)")
        self.path = Path(path)
        self.max_bytes = int(max_bytes)
        self.backups = int(backups)
        self.fsync = fsync
        self.errors = 0
        self.records = 0
        self.rotations = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.seq_path = self.path.with_name(self.path.stem + ".seq")  # audit.seq: outside audit.jsonl*
        self._remove_torn_seq_writes()
        self._saved_seq = _read_seq(self.seq_path)
        self._fh = self._open()
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one writer at a time (thread or direct)
        if background:
            self._queue = queue.Queue()
            self._thread = threading.Thread(target=self._drain, name="edge-audit", daemon=True)
            self._thread.start()

    # --- files ---------------------------------------------------------------------------

    def _open(self):
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        fh = os.fdopen(fd, "ab", buffering=0)
        size = os.fstat(fd).st_size
        if size:
            with open(self.path, "rb") as tail:
                tail.seek(size - 1)
                if tail.read(1) != b"\n":  # a torn last line from a crash: end it
                    fh.write(b"\n")
                    size += 1
        self._size = size
        return fh

    def _remove_torn_seq_writes(self) -> None:
        """Temporary files of an `audit.seq` write cut short by a crash (never the counter itself)."""
        for p in self.path.parent.glob(f"*{self.seq_path.name}.*"):
            if is_temporary(p.name) and p.name.startswith(f".tmp-{self.seq_path.name}."):
                try:
                    p.unlink()
                except OSError:
                    pass

    def backup_path(self, i: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{i}")

    def _rotate(self) -> None:
        fh = self._fh
        if self.fsync:
            os.fsync(fh.fileno())
        fh.close()
        oldest = self.backup_path(self.backups)
        if oldest.exists():
            oldest.unlink()
        for i in range(self.backups - 1, 0, -1):
            src = self.backup_path(i)
            if src.exists():
                os.replace(src, self.backup_path(i + 1))
        os.replace(self.path, self.backup_path(1))
        self._fsync_dir()
        self._fh = self._open()
        self.rotations += 1

    def _fsync_dir(self) -> None:
        if not self.fsync:
            return
        try:
            fd = os.open(self.path.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _write(self, items: list[tuple[bytes, int | None]]) -> None:
        lines = [line for line, _ in items]
        with self._lock:
            try:
                for line in lines:
                    if self._size and self._size + len(line) > self.max_bytes:
                        self._rotate()
                    self._fh.write(line)
                    self._size += len(line)
                    self.records += 1
                if self.fsync:
                    os.fsync(self._fh.fileno())
            except OSError as exc:
                # The disk is full or gone: keep the records in the journal (stderr) instead, as
                # error records, so that no log level hides them.
                self.errors += 1
                logger.error("audit log %s: %s; records follow on stderr", self.path, exc)
                for line in lines:
                    logger.error("audit record: %s", line.decode("utf-8", "replace").rstrip("\n"))
                return
            try:
                self._save_seq(max((seq for _, seq in items if seq is not None), default=None))
            except OSError as exc:  # the records are safe; a restart falls back to the log's last verdict
                self.errors += 1
                logger.error("audit log %s: cannot save the verdict counter %s: %s", self.path, self.seq_path, exc)

    def _save_seq(self, seq: int | None) -> None:
        """Persist the highest verdict seq written so far (after the records themselves)."""
        if seq is None or seq <= self._saved_seq:
            return
        atomic_write(self.seq_path, f"{seq}\n".encode(), mode=0o600, durable=self.fsync)
        self._saved_seq = seq

    def _drain(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            batch, done, stop = [], 1, False
            if item is _STOP:
                stop = True
            else:
                batch.append(item)
            while not stop:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                done += 1
                if item is _STOP:
                    stop = True
                else:
                    batch.append(item)
            if batch:
                self._write(batch)
            for _ in range(done):
                self._queue.task_done()
            if stop:
                return

    # --- Sink ----------------------------------------------------------------------------

    def _submit(self, record: dict[str, Any]) -> None:
        line = (json_line(record) + "\n").encode("utf-8")
        seq = record.get("seq") if record.get("type") == "verdict" else None
        item = (line, seq if isinstance(seq, int) and not isinstance(seq, bool) else None)
        if self._queue is not None and self._thread is not None and self._thread.is_alive():
            self._queue.put(item)
        else:
            self._write([item])

    def publish(self, verdict: Record) -> None:
        self._submit(verdict.to_dict())

    def event(self, event: dict[str, Any]) -> None:
        self._submit(event)

    def flush(self) -> None:
        if self._queue is not None:
            self._queue.join()

    def close(self) -> None:
        if self._queue is not None and self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        with self._lock:
            if not self._fh.closed:
                if self.fsync:
                    try:
                        os.fsync(self._fh.fileno())
                    except OSError:
                        pass
                self._fh.close()

    # --- reading back ----------------------------------------------------------------------

    def last_seq(self) -> int:
        """The highest verdict ``seq`` written (0 if none), so a restarted appliance continues the
        sequence instead of repeating it: the persisted counter, or the newest file's last
        verdicts if they are higher (a crash between a record's fsync and the counter's)."""
        for p in [self.path, *(self.backup_path(i) for i in range(1, self.backups + 1))]:
            seq = _last_seq_in(p)
            if seq is not None:
                return max(seq, self._saved_seq)
        return self._saved_seq


def _read_seq(path: Path) -> int:
    try:
        return max(0, int(path.read_text().strip() or 0))
    except (OSError, ValueError):
        return 0


def _last_seq_in(path: Path, chunk: int = 1 << 16) -> int | None:
    """The highest verdict seq in the last stretch of `path` that holds any: read backwards a
    chunk at a time (a long camera outage can leave megabytes of events after the last verdict),
    only lines that mention a verdict parsed."""
    try:
        fh = open(path, "rb")
    except OSError:
        return None
    with fh:
        end = fh.seek(0, os.SEEK_END)
        carry = b""  # the start of a line cut by the previous (later) chunk
        while end > 0:
            start = max(0, end - chunk)
            fh.seek(start)
            data = fh.read(end - start) + carry
            end = start
            if start > 0:
                cut = data.find(b"\n")
                if cut < 0:
                    carry = data
                    continue
                carry, data = data[: cut + 1], data[cut + 1 :]
            best = _verdict_seq(data)
            if best is not None:
                return best
    return None


def _verdict_seq(data: bytes) -> int | None:
    best = None
    for raw in data.splitlines():
        if b'"verdict"' not in raw:
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            continue  # a torn line from a crash
        if isinstance(record, dict) and record.get("type") == "verdict" and isinstance(record.get("seq"), int):
            best = record["seq"] if best is None else max(best, record["seq"])
    return best
