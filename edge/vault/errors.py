"""What can go wrong with a vault, its keys or one of its records.

Vault problems are not request results: they stop a command (the CLI prints them and exits
non-zero) or, for one damaged record, are reported next to everything that still loaded.
"""

from __future__ import annotations


class VaultError(Exception):
    """The vault (or its key) cannot be used; the message says what to do."""


class KeyPermissionError(VaultError):
    """The private key file is accessible by group or others: refused, with the `chmod` to run."""


class VaultPermissionError(VaultError):
    """The vault directory is writable by group or others (or is not a directory): refused, with the `chmod` to run."""


class VaultIndexError(VaultError):
    """The vault's index of enrolments is missing, does not authenticate, or went back to an
    older state: no enrolment can be trusted, so none is used. The message says what to run."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        self.reason = reason or message  # the message without the index's path
        super().__init__(message)


class RecordError(VaultError):
    """One record is missing, damaged, moved or written under another key. Names the record."""

    def __init__(self, record: str, reason: str) -> None:
        self.record = record  # path relative to the vault directory
        self.reason = reason
        super().__init__(f"{record}: {reason}")


__all__ = ["KeyPermissionError", "RecordError", "VaultError", "VaultIndexError", "VaultPermissionError"]
