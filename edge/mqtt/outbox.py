"""The outbox: verdicts on disk until the broker has acknowledged them.

One file per verdict in one directory, named ``<id>-<seq>.json`` (`id` orders the queue,
`seq` is the verdict's own number). `append` writes the file durably (temporary file,
fsync, rename, fsync of the directory) before it returns, so a verdict the appliance has
made survives a crash, a power cut or a broker outage; `remove` unlinks it once the broker
has sent PUBACK. At start-up whatever is still there is delivered first, in order.

The publisher `claim`s the next few items (those handed to the MQTT client, in flight) and
`unclaim_all`s them when it starts over on a new connection. The queue is bounded: when
`max_items` are waiting, `append` first drops the oldest items that are not in flight and
reports how many (`on_drop`), so a long outage costs the oldest records, counted, never
silently and never the newest.

A removal is not fsynced: after a power cut a delivered verdict may come back and be sent
again, which QoS 1 allows anyway (receivers de-duplicate by `seq`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

from edge.fs import atomic_write, is_temporary

ITEM = re.compile(r"(\d{16})-(\d+)\.json")
STATE = "outbox-state.json"  # next id and last seq, written on close (the files are the truth)


class Outbox:
    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_items: int = 100_000,
        on_drop: Callable[[int, int, int], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.max_items = int(max_items)
        self.on_drop = on_drop
        self.dropped = 0
        self._lock = threading.Lock()
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        items: list[tuple[int, int]] = []
        for entry in os.scandir(self.directory):
            if is_temporary(entry.name):  # a write interrupted before its rename: never acknowledged
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                continue
            m = ITEM.fullmatch(entry.name)
            if m:
                items.append((int(m.group(1)), int(m.group(2))))
        items.sort()
        self._items: dict[int, int] = dict(items)  # id → seq, in queue order
        self._claimed: set[int] = set()
        saved = self._read_state()
        self._next_id = max([saved.get("next_id", 1), *(i + 1 for i, _ in items)])
        self._last_seq = max([saved.get("last_seq", 0), *(s for _, s in items)])

    def _read_state(self) -> dict:
        try:
            data = json.loads((self.directory / STATE).read_text())
            return {k: int(v) for k, v in data.items() if k in ("next_id", "last_seq")}
        except (OSError, ValueError, TypeError, AttributeError):
            return {}

    def _path(self, item_id: int, seq: int) -> Path:
        return self.directory / f"{item_id:016d}-{seq}.json"

    # --- the appliance's side --------------------------------------------------------------------

    def append(self, payload: bytes, seq: int) -> int:
        """Queue one verdict durably; returns its id. Drops the oldest unclaimed items first when full."""
        with self._lock:
            item_id = self._next_id
            self._next_id += 1
            dropped = self._make_room()
        if dropped:
            self.dropped += dropped[0]
            if self.on_drop is not None:
                self.on_drop(*dropped)
        atomic_write(self._path(item_id, seq), payload, mode=0o600)
        with self._lock:
            self._items[item_id] = seq
            self._last_seq = max(self._last_seq, seq)
        return item_id

    def _make_room(self) -> tuple[int, int, int] | None:
        excess = len(self._items) + 1 - self.max_items
        if excess <= 0:
            return None
        victims = [i for i in self._items if i not in self._claimed][:excess]
        seqs = [self._items.pop(i) for i in victims]
        for i, s in zip(victims, seqs):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(i, s))
        return (len(victims), min(seqs), max(seqs)) if victims else None

    # --- the publisher's side ----------------------------------------------------------------------

    def claim(self, limit: int) -> list[tuple[int, int, bytes]]:
        """Up to `limit` of the oldest unclaimed items as (id, seq, payload), marked in flight."""
        out = []
        with self._lock:
            for item_id, seq in self._items.items():
                if len(out) >= limit:
                    break
                if item_id in self._claimed:
                    continue
                try:
                    payload = self._path(item_id, seq).read_bytes()
                except OSError:
                    continue  # removed under us (cannot happen with one publisher); skip
                self._claimed.add(item_id)
                out.append((item_id, seq, payload))
        return out

    def unclaim_all(self) -> None:
        with self._lock:
            self._claimed.clear()

    def remove(self, item_id: int) -> None:
        """The broker acknowledged it: forget it."""
        with self._lock:
            seq = self._items.pop(item_id, None)
            self._claimed.discard(item_id)
        if seq is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(item_id, seq))

    # --- inspection --------------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._claimed)

    @property
    def last_seq(self) -> int:
        """The highest verdict seq this outbox has held (so a restarted appliance continues after it)."""
        return self._last_seq

    def seqs(self) -> list[int]:
        with self._lock:
            return list(self._items.values())

    def close(self) -> None:
        """Remember the next id and last seq (for numbering after an empty outbox)."""
        with self._lock:
            state = {"next_id": self._next_id, "last_seq": self._last_seq}
        with contextlib.suppress(OSError):
            atomic_write(self.directory / STATE, json.dumps(state).encode(), mode=0o600)
