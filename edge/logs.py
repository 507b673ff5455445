"""Logging for the `edge` command: one handler on stderr, one level.

Every module logs to its own ``logging.getLogger(__name__)``; nothing in the package
configures logging except `configure`, which the CLI calls once it knows the level
(``--log-level``, ``-v``/``-vv``, or ``[log] level`` in the config for `edge run`).
Results (JSON lines, tables) are printed on stdout and never go through logging.
"""

from __future__ import annotations

import logging
import sys

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
DEFAULT_LEVEL = "warning"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time of the record (pytest's capsys, a redirect)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # StreamHandler.__init__ assigns it; the property wins
        pass


_handler: logging.Handler | None = None


def level_number(level: str | int) -> int:
    """``"debug"`` … ``"error"`` (any case) or a logging level number → the number."""
    if isinstance(level, int):
        return level
    try:
        return LEVELS[level.lower()]
    except KeyError:
        raise ValueError(f"unknown log level {level!r}; choose one of {', '.join(LEVELS)}") from None


def configure(level: str | int = DEFAULT_LEVEL) -> None:
    """Log records of `level` and above to stderr as ``time LEVEL logger: message``.

    Like `logging.basicConfig` on the root logger, but calling it again only changes the
    level (the handler is installed once), so the CLI can set a default first and the
    config's level later.
    """
    global _handler
    root = logging.getLogger()
    if _handler is None or _handler not in root.handlers:
        _handler = _StderrHandler()
        _handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(_handler)
    root.setLevel(level_number(level))


def unconfigure() -> None:
    """Remove the handler `configure` installed and restore the root level (for embedding and tests)."""
    global _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
        _handler = None
    root.setLevel(logging.WARNING)
