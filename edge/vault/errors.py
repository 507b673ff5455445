"""What can go wrong with a vault, its keys or one of its records.

Vault problems are not request results: they stop a command (the CLI prints them and exits
non-zero) or, for one damaged record, are reported next to everything that still loaded.
"""

from __future__ import annotations


class VaultError(Exception):
    """The vault (or its key) cannot be used; the message says what to do."""


class KeyPermissionError(VaultError):
    """The private key file is accessible by group or others: refused, with the `chmod` to run."""


class RecordError(VaultError):
    """One record is missing, damaged, moved or written under another key. Names the record."""

    def __init__(self, record: str, reason: str) -> None:
        self.record = record  # path relative to the vault directory
        self.reason = reason
        super().__init__(f"{record}: {reason}")


__all__ = ["KeyPermissionError", "RecordError", "VaultError"]
