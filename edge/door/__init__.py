"""The door output: a lock relay on a GPIO line, opened by grants (docs/door.md).

    config [door] ─▶ lines.open_request (libgpiod) ─▶ DoorController (relay, timers, inputs)
                                                       ◀─ DoorSink ◀─ the appliance's verdicts

Built by the composition root (edge/app.py) when ``door.enabled``; nothing else imports it.
"""

from edge.door.controller import DoorController, Lines
from edge.door.sink import DoorSink

__all__ = ["DoorController", "DoorSink", "Lines"]
