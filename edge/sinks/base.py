"""The one interface every verdict transport implements (stdout, audit log, MQTT in edge.mqtt).

In the spirit of Frigate's ``comms/base_communicator.py``: a sink is told about each
verdict and each operational event, and is closed once at the end. The appliance calls
sinks from its loop thread only; a sink that needs to block (fsync, network) does so on
its own thread. A sink must not raise for a transport problem it can ride out; the loop
logs and counts whatever it does raise and goes on.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from typing import Any, Protocol


class Record(Protocol):
    """What a sink publishes: a verdict, or anything with `to_dict()` (the appliance's `Verdict`)."""

    def to_dict(self) -> dict[str, Any]: ...


class Sink(ABC):
    name: str = "sink"

    @abstractmethod
    def publish(self, verdict: Record) -> None:
        """One verdict (granted, denied, unknown)."""

    def event(self, event: dict[str, Any]) -> None:  # noqa: B027 - optional hook, default ignores
        """An operational event (source errors and recoveries, start, stop). Default: ignored."""

    def state(self, snapshot: dict[str, Any]) -> None:  # noqa: B027 - optional hook, default ignores
        """The appliance's current numbers (fps, enrolled, last seq…), offered about once a second."""

    def finish(self) -> None:  # noqa: B027 - optional hook
        """The appliance is stopping: report (as events, through the appliance) what is still
        pending, while every sink can still take it. Called before the last events and `close`."""

    def flush(self) -> None:  # noqa: B027 - optional hook
        """Make everything published so far durable / delivered."""

    def close(self) -> None:
        """Flush and release; the sink is not used afterwards."""
        self.flush()


def _plain(value: Any) -> Any:
    """numpy scalars and arrays (and anything else) → JSON-able values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def json_line(record: dict[str, Any]) -> str:
    """One compact JSON line (no trailing newline); NaN and infinity become null."""
    try:
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_plain)
    except ValueError:  # a NaN somewhere (a quality measurement, say)
        return json.dumps(_finite(json.loads(json.dumps(record, default=_plain))), separators=(",", ":"))
