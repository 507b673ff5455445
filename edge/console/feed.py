"""The console's view of the verdicts: a sink that keeps the recent ones for pages and streams.

The appliance calls `publish`/`event` on its loop thread; the sink only appends to a bounded
deque and bumps a counter (no I/O, no lock held for long). Pages and server-sent-event
streams read from it on the console's side. The recent trail starts with the last records of
the audit log, so the verdict page is not empty after a restart.

Face crops: only with `[console] keep_unknown_crops = true` is the sink asked for faces
(`wants_face`), and then only the crops of `unknown` and `denied` verdicts are kept, in
memory, for as long as the verdict is among the recent ones. Off (the default), no face image
of a stranger is kept anywhere.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict, deque
from pathlib import Path
from typing import Any

from edge.sinks import Sink

logger = logging.getLogger(__name__)

KINDS = ("granted", "denied", "unknown", "spoof", "tailgate")
DOOR_EVENTS = ("liveness_challenge", "tailgate")


class VerdictFeed(Sink):
    name = "console"

    def __init__(self, *, keep: int = 500, keep_unknown_crops: bool = False, audit_path: str = "") -> None:
        self.records: deque[dict] = deque(maxlen=keep)
        self.version = 0  # bumped with every record: streams wait for it to change
        self.keep_unknown_crops = keep_unknown_crops
        self.wants_face = keep_unknown_crops
        self.crops: OrderedDict[int, bytes] = OrderedDict()  # verdict seq → JPEG (unknown/denied only)
        self._keep = keep
        self._lock = threading.Lock()
        self._id = 0
        if audit_path:
            self._load_audit(Path(audit_path))

    def publish(self, verdict: Any) -> None:
        record = verdict.to_dict()
        record.pop("face_jpeg", None)
        record.pop("face", None)
        crop = getattr(verdict, "face_jpeg", None)
        if self.keep_unknown_crops and crop and record.get("decision") in ("unknown", "denied"):
            with self._lock:
                self.crops[int(record["seq"])] = crop
                while len(self.crops) > self._keep:
                    self.crops.popitem(last=False)
            record["crop"] = True
        self._add({"kind": record.get("decision"), **record})

    def event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind in DOOR_EVENTS:
            self._add({"kind": kind, **event})

    def _add(self, record: dict) -> None:
        with self._lock:
            self._id += 1
            record["id"] = self._id
            self.records.append(record)
            self.version += 1

    def since(self, after_id: int, kinds: set[str] | None = None, limit: int = 200) -> list[dict]:
        with self._lock:
            out = [r for r in self.records if r["id"] > after_id and (not kinds or r["kind"] in kinds)]
        return out[-limit:]

    def crop(self, seq: int) -> bytes | None:
        with self._lock:
            return self.crops.get(seq)

    def _load_audit(self, path: Path, tail_bytes: int = 256 * 1024) -> None:
        """The last records of the audit log (verdicts and tailgate events), oldest first."""
        try:
            with path.open("rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - tail_bytes))
                lines = f.read().splitlines()[1 if size > tail_bytes else 0 :]
        except OSError:
            return
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("type") == "verdict":
                self._add({"kind": rec.get("decision"), **rec, "from_audit": True})
            elif rec.get("type") == "event" and rec.get("event") == "tailgate":
                self._add({"kind": "tailgate", **rec, "from_audit": True})
