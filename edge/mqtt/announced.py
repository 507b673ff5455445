"""What this device has announced to Home Assistant, remembered across restarts.

Discovery configs and retained HA values are left on the broker by design; without a record of
them, a renamed device (new node id), a changed discovery prefix or a revoked person would leave
entities behind in HA for ever. The record is a small JSON file beside the outbox
(`<outbox_path>/ha-announced.json`); `stale()` names what to clear with empty retained messages.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)


class Announced:
    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None

    def load(self) -> tuple[list[str], list[str]]:
        """(config topics, retained value topics) announced so far; empty when nothing (or no file)."""
        if self.path is None or not self.path.exists():
            return [], []
        try:
            data = json.loads(self.path.read_text())
            configs = [t for t in data.get("configs", []) if isinstance(t, str)]
            values = [t for t in data.get("values", []) if isinstance(t, str)]
        except (OSError, ValueError, AttributeError) as exc:
            # Damaged: what it named cannot be cleared automatically (`edge mqtt remove-discovery`
            # with the old settings still can); the file is rewritten on the next save.
            logger.warning("cannot read %s (%s): stale Home Assistant entities are not removed", self.path, exc)
            return [], []
        return configs, values

    def stale(self, configs: list[str], values: list[str]) -> list[str]:
        """Topics announced before and not now: configs first (HA drops the entity), then values."""
        old_configs, old_values = self.load()
        keep = set(configs) | set(values)
        return [t for t in old_configs if t not in keep] + [t for t in old_values if t not in keep]

    def save(self, configs: list[str], values: list[str]) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"configs": sorted(configs), "values": sorted(values)}, indent=1) + "\n")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def forget(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
