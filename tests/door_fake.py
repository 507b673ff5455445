"""The one fake of the door tests: a stand-in for libgpiod's line request (no GPIO here).

`FakeRequest` has the five methods the door uses (set_value, get_value, read_edge_events,
wait_edge_events, release) and nothing else. Tests drive its inputs with `drive`; a test in
another process reads its relay with `RelayProbe`.

Cross-process, it models what the kernel does with a real request: the request is an open
file descriptor, and the process's death closes it. Here that descriptor holds an flock on
``request.lock`` (the kernel drops it on any death, SIGKILL included) and the driven value is
in ``relay``. A line nobody holds is undriven: the relay HAT's resistor keeps the coil off.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from gpiod import EdgeEvent
from gpiod.line import Value

STATE_DIR = "EDGE_DOOR_TEST_DIR"


class FakeRequest:
    def __init__(self, initial: dict[int, Value] | None = None, state_dir: str | Path | None = None) -> None:
        self.values: dict[int, Value] = dict(initial or {})
        self.writes: list[tuple[int, Value]] = []
        self.released = False
        self._events: list[EdgeEvent] = []
        self._cond = threading.Condition()
        self._seq = 0
        self.dir = Path(state_dir) if state_dir else None
        self._held = None
        if self.dir is not None:
            self._held = open(self.dir / "request.lock", "a+")  # noqa: SIM115 - held for the request's life
            fcntl.flock(self._held, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def set_value(self, line: int, value: Value) -> None:
        assert not self.released, "set_value on a released request"
        self.values[line] = value
        self.writes.append((line, value))
        if self.dir is not None:
            tmp = self.dir / "relay.tmp"
            tmp.write_text("1" if value == Value.ACTIVE else "0")
            os.replace(tmp, self.dir / "relay")

    def get_value(self, line: int) -> Value:
        assert not self.released, "get_value on a released request"
        return self.values.get(line, Value.INACTIVE)

    def wait_edge_events(self, timeout: float | None = None) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._events), timeout)

    def read_edge_events(self, max_events: int | None = None) -> list[EdgeEvent]:
        with self._cond:
            events, self._events = self._events, []
            return events

    def release(self) -> None:
        self.released = True
        if self._held is not None:
            self._held.close()  # what the kernel does on the process's death

    # --- the test's side: the world at the input lines ---------------------------------------

    def drive(self, line: int, active: bool) -> None:
        with self._cond:
            self.values[line] = Value.ACTIVE if active else Value.INACTIVE
            self._seq += 1
            kind = EdgeEvent.Type.RISING_EDGE if active else EdgeEvent.Type.FALLING_EDGE
            self._events.append(EdgeEvent(kind, 0, line, self._seq, self._seq))
            self._cond.notify_all()


def request_for(door) -> FakeRequest:
    """`EDGE_DOOR_TEST_REQUEST=door_fake:request_for`: the stand-in `edge run` uses in a test process."""
    from edge.door.lines import line_settings

    settings = line_settings(door)  # built as for libgpiod, so a bad setting fails here too
    return FakeRequest({line: s.output_value for line, s in settings.items()}, os.environ[STATE_DIR])


class RelayProbe:
    """The relay line seen from outside the process that drives it."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir)

    def held(self) -> bool:
        """Some process holds the line request (the kernel has not released it)."""
        with open(self.dir / "request.lock", "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
            return False

    def energised(self) -> bool:
        """The coil is on: the line is held and driven active (an undriven line leaves it off)."""
        path = self.dir / "relay"
        return self.held() and path.exists() and path.read_text() == "1"
