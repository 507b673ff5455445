"""The door's state: the relay, its unlock deadline, the door contact and the exit button.

One thread of its own watches the deadline and the inputs, so a loop that hangs never keeps
the door unlocked: a grant unlocks until ``granted_at + hold_s`` and this thread locks at
that time whatever the loop does. Everything reaches the world through `report(kind, fields)`
(the appliance's `post_event`: stdout, the audit log, MQTT).

Relay wording: *energised* is the coil on. Fail-secure: unlocked = energised. Fail-safe
(a maglock on the relay's NO contact): locked = energised. `close` always leaves the relay
de-energised and the line request released, as the kernel does when the process dies.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

POLL_S = 0.05  # the longest the door thread sleeps: how late a lock or a held-open event may be


class Lines:
    """The line request (libgpiod's, or the tests' stand-in) in logical booleans."""

    def __init__(self, request: Any, *, relay: int, contact: int = -1, exit: int = -1) -> None:
        from gpiod import EdgeEvent
        from gpiod.line import Value

        self.request, self.relay, self.contact, self.exit = request, relay, contact, exit
        self._active, self._inactive = Value.ACTIVE, Value.INACTIVE
        self._rising = EdgeEvent.Type.RISING_EDGE
        self.inputs = tuple(line for line in (contact, exit) if line >= 0)

    def energise(self, on: bool) -> None:
        self.request.set_value(self.relay, self._active if on else self._inactive)

    def active(self, line: int) -> bool:
        return self.request.get_value(line) == self._active

    def wait(self, timeout: float) -> list[tuple[int, bool]]:
        """The input edges within `timeout` seconds, in order: (line, became active). The kernel
        reports edges in logical terms (active_low applied) and after its debounce."""
        if not self.inputs:
            time.sleep(timeout)
            return []
        if not self.request.wait_edge_events(timeout):
            return []
        return [(e.line_offset, e.event_type == self._rising) for e in self.request.read_edge_events()]

    def release(self) -> None:
        self.request.release()


class DoorController:
    def __init__(
        self,
        lines: Lines,
        *,
        mode: str = "fail_secure",
        hold_s: float = 5.0,
        held_open_s: float = 30.0,
        report: Callable[..., None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in ("fail_secure", "fail_safe"):
            raise ValueError(f"mode must be fail_secure or fail_safe, got {mode!r}")
        self.lines, self.mode, self.hold_s, self.held_open_s = lines, mode, hold_s, held_open_s
        self.report = report or (lambda kind, **fields: None)
        self.clock = clock
        self.enabled = True
        self.unlocked_until: float | None = None
        self.unlocked_by: str | None = None
        self.door_open = False
        self.opened_at: float | None = None
        self.held_reported = False
        self.closed = False
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._energise(self._energised_when(unlocked=False))  # the request already did; say it once more
        if lines.contact >= 0:
            self.door_open = lines.active(lines.contact)
            self.opened_at = clock() if self.door_open else None

    # --- the relay -------------------------------------------------------------------------

    def _energised_when(self, *, unlocked: bool) -> bool:
        return unlocked if self.mode == "fail_secure" else not unlocked

    def _energise(self, on: bool) -> None:
        self.lines.energise(on)

    @property
    def unlocked(self) -> bool:
        return self.unlocked_until is not None

    def unlock(self, *, by: str, since: float, **fields: Any) -> bool:
        """Unlock until `since + hold_s` (`since`: the grant's time on `clock`). False when the
        door is disabled or closed, or that time has already passed."""
        with self._lock:
            if self.closed or not self.enabled:
                self.report("door_grant_ignored", by=by, reason="closed" if self.closed else "disabled", **fields)
                return False
            until = since + self.hold_s
            remaining = until - self.clock()
            if remaining <= 0:
                self.report("door_grant_ignored", by=by, reason="stale", **fields)
                return False
            extended = self.unlocked
            self.unlocked_until = max(until, self.unlocked_until or until)
            self.unlocked_by = by
            self._energise(self._energised_when(unlocked=True))
            self.report("door_unlocked", by=by, hold_s=round(remaining, 3), extended=extended, **fields)
            return True

    def lock(self, reason: str) -> None:
        with self._lock:
            if self.closed:
                return
            self._energise(self._energised_when(unlocked=False))
            if self.unlocked:
                self.unlocked_until = self.unlocked_by = None
                self.report("door_locked", reason=reason)

    def set_enabled(self, enabled: bool) -> None:
        """Disable: lock now and ignore grants and the exit button until enabled again."""
        with self._lock:
            self.enabled = bool(enabled)
            if not enabled:
                self.lock("disabled")
            self.report("door_enabled" if enabled else "door_disabled")

    # --- the thread --------------------------------------------------------------------------

    def start(self) -> None:
        atexit.register(self.close, "exit")  # an exception past the loop's finally still locks
        self._thread = threading.Thread(target=self._run, name="edge-door", daemon=True)
        self._thread.start()

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.tick(self.lines.wait(POLL_S))
        except Exception as exc:  # noqa: BLE001 - a door that cannot watch its deadline must not stay open
            logger.exception("door thread failed; releasing the relay")
            self.report("door_fault", error=f"{type(exc).__name__}: {exc}")
            self.close("fault")

    def tick(self, edges: list[tuple[int, bool]] = ()) -> None:
        """One look at the deadline and the input edges (the door thread's step)."""
        with self._lock:
            if self.closed:
                return
            now = self.clock()
            if self.unlocked_until is not None and now >= self.unlocked_until:
                self.lock("hold_elapsed")
            for line, active in edges:
                if line == self.lines.exit and active:
                    self.report("door_exit")
                    self.unlock(by="exit", since=now)
                elif line == self.lines.contact:
                    self._contact(active, now)
            if self.door_open and not self.held_reported and now - (self.opened_at or now) >= self.held_open_s:
                self.held_reported = True
                self.report("door_held_open", open_s=round(now - self.opened_at, 1), limit_s=self.held_open_s)

    def _contact(self, is_open: bool, now: float) -> None:
        if is_open == self.door_open:
            return  # a bounce the debounce let through, or a pair of edges that cancel
        self.door_open = is_open
        if is_open:
            self.opened_at, self.held_reported = now, False
            authorised = self.unlocked
            self.report("door_opened", authorised=authorised, by=self.unlocked_by)
            if not authorised:
                self.report("door_forced")
        else:
            self.report("door_closed", open_s=round(now - (self.opened_at or now), 1))
            self.opened_at = None

    # --- the end -----------------------------------------------------------------------------

    def close(self, reason: str = "shutdown") -> None:
        """Lock, de-energise and release the lines (idempotent; from any thread or atexit)."""
        self._stop.set()
        with self._lock:
            if self.closed:
                return
            self.lock(reason)
            self.closed = True
            try:
                self.lines.energise(False)  # fail-safe: the door opens, as it would without edge
            finally:
                self.lines.release()
            self.report(
                "door_released",
                reason=reason,
                mode=self.mode,
                door="locked" if self.mode == "fail_secure" else "unlocked",
            )
        atexit.unregister(self.close)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(1.0)
