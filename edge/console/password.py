"""`edge console set-password`: put the admin password's hash into a config file.

The file is edited as text, not re-serialised, so its comments and layout stay: the
`password_hash = ...` line of its `[console]` table is replaced (or added, with the table when
there is none). The result is parsed and validated before it replaces the file (atomically,
with the file's mode kept); a file that would not load is never written.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from edge.console.auth import hash_password

_TABLE = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*password_hash\s*=")


def with_password_hash(text: str, password_hash: str) -> str:
    """`text` (a TOML config) with `[console] password_hash` set to `password_hash`."""
    line = f'password_hash = "{password_hash}"'
    lines = text.splitlines()
    start = next((i for i, s in enumerate(lines) if (m := _TABLE.match(s)) and m.group(1).strip() == "console"), None)
    if start is None:
        tail = "" if not text or text.endswith("\n") else "\n"
        return f"{text}{tail}\n[console]\n{line}\n"
    end = next((i for i in range(start + 1, len(lines)) if _TABLE.match(lines[i])), len(lines))
    for i in range(start + 1, end):
        if _KEY.match(lines[i]):
            lines[i] = line
            break
    else:
        lines.insert(start + 1, line)
    return "\n".join(lines) + "\n"


def set_password(config_path: str | os.PathLike[str], password: str) -> str:
    """Hash `password` into the config file; returns the hash. Raises PasswordError, ConfigError, OSError."""
    from edge.config import config_from_dict
    from edge.fs import atomic_write

    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    path = Path(config_path)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    password_hash = hash_password(password)
    new = with_password_hash(text, password_hash)
    config_from_dict(tomllib.loads(new), source=str(path))  # the new file must load
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o640
    atomic_write(path, new.encode("utf-8"), mode=mode)
    return password_hash
