"""The checkout's files, for tests that copy or package the tree (test_packaging, test_install)."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def git_files() -> list[str] | None:
    """Tracked + untracked files (minus .gitignore) that exist, or None without git or a repository."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return [f for f in out.decode().split("\0") if f and (REPO / f).is_file()]
