"""The door as a sink: the appliance's verdicts in, unlocks out (fresh grants only)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from edge.door.controller import DoorController
from edge.sinks.base import Record, Sink

logger = logging.getLogger(__name__)

FUTURE_SLACK_S = 0.5  # a grant stamped later than now by more than this is not trusted either


class DoorSink(Sink):
    """Unlocks the door for a ``granted`` verdict no older than `max_grant_age_s`.

    Every other decision (denied, unknown, spoof) and anything that is not a verdict never
    touches the relay. Age is the verdict's ``decided`` against the appliance's own epoch
    mapping (`epoch`: monotonic + the appliance's offset), so a wall-clock step (NTP on a Pi
    without RTC) cannot make every grant look stale or fresh.
    """

    name = "door"

    def __init__(self, controller: DoorController, *, max_grant_age_s: float = 2.0) -> None:
        self.controller = controller
        self.max_grant_age_s = max_grant_age_s
        self.epoch: Callable[[], float] = time.time

    def attach(self, *, post_event: Callable[..., None], epoch: Callable[[], float]) -> None:
        """Report through the appliance and measure ages on its clock; start the door thread."""
        self.controller.report = post_event
        self.epoch = epoch
        self.controller.start()

    def publish(self, verdict: Record) -> None:
        if getattr(verdict, "decision", None) != "granted" or not getattr(verdict, "name", None):
            return
        decided = float(verdict.decided)
        age = self.epoch() - decided
        fields = {"seq": verdict.seq, "name": verdict.name, "age_s": round(age, 3)}
        if age > self.max_grant_age_s or age < -FUTURE_SLACK_S:
            logger.warning("door: grant seq %s is %.2f s old; ignored", verdict.seq, age)
            self.controller.report("door_grant_ignored", by="grant", reason="stale", **fields)
            return
        self.controller.unlock(by="grant", since=self.controller.clock() - max(age, 0.0), **fields)

    def state(self, snapshot: dict[str, Any]) -> None:
        c = self.controller
        if c.started and not c.alive and not c.closed:
            c.close("door thread gone")  # never a relay without its deadline keeper

    def finish(self) -> None:
        self.controller.close("shutdown")  # its events go out with the appliance's last ones

    def close(self) -> None:
        self.controller.close("shutdown")
