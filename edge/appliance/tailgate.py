"""Tailgating: someone the door does not know goes through with someone it does.

Pure logic over what the loop tells it each frame: which tracks are in view and what the
decision policy says about each ("granted", "denied", "unknown", "undecided", "new").

A grant opens the door for `door_open_s` seconds (a second grant in that time keeps it
open). A face other than the granted ones seen while the door is open is a **tailgater**
unless it is granted itself before the door closes:

- at once, when it is (or becomes) ``unknown`` or ``denied``;
- when the door closes, if it was never decided (it kept its face from the camera, or was
  too poor to identify: the classic tailgater looks down) and was seen on at least
  `MIN_FRAMES` frames (a detector's one-frame false alarm is nobody).

Each tailgater gives one ``tailgate`` event naming the grants it followed. Two people who
are both granted while the door is open are two verdicts and no tailgate.

Mode ``withhold`` also holds a grant back while another face in view is neither granted nor
itself waiting for its grant (`hold`): the door stays shut, a ``tailgate`` event with
``withheld`` says why, and the grant comes on a later frame once that face is granted or gone.
Mode ``off`` does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TAILGATE_MODES = ("off", "flag", "withhold")
MIN_FRAMES = 3  # an undecided face seen on fewer frames while the door was open is not reported
_RECOGNISED = ("granted",)


@dataclass
class _Door:
    until: float  # frame time the door closes
    grants: list[dict[str, Any]] = field(default_factory=list)  # {"track_id", "name", "seq"}
    seen: dict[int, list] = field(default_factory=dict)  # other faces seen while open → [last status, frames]


class TailgateGuard:
    def __init__(self, mode: str = "flag", door_open_s: float = 5.0) -> None:
        if mode not in TAILGATE_MODES:
            raise ValueError(f"tailgate mode must be one of {', '.join(TAILGATE_MODES)}, got {mode!r}")
        if door_open_s < 0:
            raise ValueError(f"door_open_s must be >= 0, got {door_open_s}")
        self.mode = mode
        self.door_open_s = float(door_open_s)
        self._door: _Door | None = None
        self._flagged: set[int] = set()  # tracks already reported (once each)
        self._pending: set[int] = set()  # tracks whose grant is withheld (they wait, they are not strangers)
        self._withheld_reported: set[int] = set()

    @property
    def withholds(self) -> bool:
        """Mode withhold: grants may be held back (so `hold` is worth asking)."""
        return self.mode == "withhold"

    @property
    def watching(self) -> bool:
        """A door is open: `frame` has something to look at."""
        return self.mode != "off" and self._door is not None

    def hold(self, track_id: int, in_view: dict[int, str]) -> bool:
        """Mode withhold: whether a grant for `track_id` must wait for another face in view."""
        if self.mode != "withhold":
            return False
        return bool(self._strangers(track_id, in_view))

    def withheld(self, track_id: int, name: str | None, in_view: dict[int, str]) -> dict | None:
        """The policy withheld a grant for `track_id`: the event to publish (once per track), or None."""
        self._pending.add(track_id)
        if track_id in self._withheld_reported:
            return None
        self._withheld_reported.add(track_id)
        others = self._strangers(track_id, in_view)
        listed = [{"track_id": i, "status": s} for i, s in others]
        return {"track_id": track_id, "name": name, "withheld": True, "others": listed}

    def granted(self, track_id: int, name: str | None, seq: int, t: float) -> None:
        """A grant was published: the door is open (or stays open) until `t + door_open_s`."""
        self._pending.discard(track_id)
        if self.mode == "off":
            return
        if self._door is None or t > self._door.until:
            self._door = _Door(t + self.door_open_s)
        self._door.until = max(self._door.until, t + self.door_open_s)
        self._door.grants.append({"track_id": track_id, "name": name, "seq": seq})
        self._door.seen.pop(track_id, None)

    def frame(self, t: float, in_view: dict[int, str]) -> list[dict]:
        """After the frame's decisions: the tailgate events it raises (usually none)."""
        door = self._door
        if self.mode == "off" or door is None:
            return []
        if t > door.until:
            return self.close()
        granted_ids = {g["track_id"] for g in door.grants}
        out = []
        for track_id, status in in_view.items():
            if track_id in granted_ids or track_id in self._flagged:
                continue
            seen = door.seen.setdefault(track_id, [status, 0])
            seen[0], seen[1] = status, seen[1] + 1
            if status in ("unknown", "denied"):
                out.append(self._flag(track_id, status, door))
        return out

    def close(self) -> list[dict]:
        """The door closes (its time is up, or the loop stops): whoever was seen while it was open
        and never granted followed someone in."""
        door, self._door = self._door, None
        if door is None:
            return []
        out = [
            self._flag(track_id, "undecided" if status == "new" else status, door)
            for track_id, (status, frames) in list(door.seen.items())
            if status not in _RECOGNISED and track_id not in self._flagged and frames >= MIN_FRAMES
        ]
        self._flagged.clear()
        return out

    def end(self, track_id: int) -> None:
        """The track is gone (what was seen of it while the door was open is kept)."""
        self._pending.discard(track_id)
        self._withheld_reported.discard(track_id)

    def _flag(self, track_id: int, status: str, door: _Door) -> dict:
        self._flagged.add(track_id)
        door.seen.pop(track_id, None)
        return {"track_id": track_id, "status": status, "withheld": False, "granted": list(door.grants)}

    def _strangers(self, track_id: int, in_view: dict[int, str]) -> list[tuple[int, str]]:
        return [(i, s) for i, s in in_view.items() if i != track_id and s not in _RECOGNISED and i not in self._pending]
