"""The GPIO boundary: one libgpiod (``gpiod`` 2.x) line request holding the relay and the inputs.

The request is the only hardware object; everything above it (`Lines`, the controller) is
the same in tests. The kernel ties a line request to an open file descriptor: when the process
dies in any way (SIGKILL included) the lines are released and the relay line stops being
driven, so the wiring must make an undriven line a de-energised relay (docs/door.md).

Tests on a machine without GPIO select a stand-in request with ``EDGE_DOOR_TEST_REQUEST=
module:factory``; the hook is refused unless pytest is running (``PYTEST_CURRENT_TEST``).
"""

from __future__ import annotations

import importlib
import logging
import os
from datetime import timedelta
from typing import Any

logger = logging.getLogger(__name__)

CONSUMER = "edge-door"
TEST_HOOK = "EDGE_DOOR_TEST_REQUEST"


class DoorSetupError(Exception):
    def __init__(self, key: str, detail: str) -> None:
        super().__init__(f"{key}: {detail}")
        self.key, self.detail = key, detail


def line_settings(door: Any) -> dict[int, Any]:
    """offset → gpiod.LineSettings for the relay and the configured inputs.

    Logical values throughout: the relay line is ACTIVE when its coil is energised, the
    contact ACTIVE while the door is open, the exit line ACTIVE while pressed (active_low
    maps each to its electrical level). The relay starts de-energised or, fail-safe, energised
    (locked) in the request itself, so there is no glitch between request and first write.
    """
    import gpiod
    from gpiod.line import Bias, Direction, Edge, Value

    locked_energised = door.mode == "fail_safe"
    settings = {
        door.relay_line: gpiod.LineSettings(
            direction=Direction.OUTPUT,
            active_low=door.relay_active_level == "low",
            output_value=Value.ACTIVE if locked_energised else Value.INACTIVE,
        )
    }
    bias = {"pull_up": Bias.PULL_UP, "pull_down": Bias.PULL_DOWN, "disabled": Bias.DISABLED, "as_is": Bias.AS_IS}
    for line, level in ((door.contact_line, door.contact_open_level), (door.exit_line, door.exit_active_level)):
        if line >= 0:
            settings[line] = gpiod.LineSettings(
                direction=Direction.INPUT,
                edge_detection=Edge.BOTH,
                bias=bias[door.bias],
                active_low=level == "low",
                debounce_period=timedelta(milliseconds=door.debounce_ms),
            )
    return settings


def open_request(door: Any) -> Any:
    """The line request for `door` (a DoorConfig): libgpiod's, or the test stand-in (see module doc)."""
    hook = os.environ.get(TEST_HOOK)
    if hook:
        if not os.environ.get("PYTEST_CURRENT_TEST"):
            raise DoorSetupError("door.chip", f"{TEST_HOOK} is for the test suite only; unset it")
        module, _, name = hook.partition(":")
        logger.warning("door: test line request %s (no GPIO is driven)", hook)
        return getattr(importlib.import_module(module), name)(door)
    try:
        import gpiod
    except ImportError:
        raise DoorSetupError("door.enabled", "needs the gpiod 2.x bindings: pip install 'edge[door]'") from None
    try:
        return gpiod.request_lines(door.chip, config=line_settings(door), consumer=CONSUMER)
    except FileNotFoundError:
        raise DoorSetupError("door.chip", f"no GPIO chip {door.chip}") from None
    except PermissionError:
        raise DoorSetupError("door.chip", f"no access to {door.chip} (group gpio; docs/door.md)") from None
    except (OSError, ValueError) as exc:
        raise DoorSetupError("door.relay_line", f"cannot request the lines on {door.chip}: {exc}") from None
