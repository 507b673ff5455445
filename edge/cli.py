"""The `edge` command: argument parsing and printing only.

Each subcommand is one `cmd_<name>(args) -> int` function that calls into the package and
prints; `main` returns its exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from edge import __version__


def _human_size(size: int | None) -> str:
    if size is None:
        return "missing"
    if size >= 1 << 20:
        return f"{size / (1 << 20):.1f} MiB"
    return f"{size / 1024:.0f} KiB"


def cmd_models(args: argparse.Namespace) -> int:
    """List the shipped models and check each file's sha256 against the manifest."""
    from edge import runtime

    try:
        directory = args.dir if args.dir is not None else runtime.models_dir()
        rows = runtime.manifest_status(directory)
    except runtime.ModelError as exc:
        print(f"edge models: {exc}", file=sys.stderr)
        return 1
    bad = [row for row in rows if not row["sha256_ok"]]
    if args.json:
        print(json.dumps({"directory": str(directory), "models": rows}, indent=1))
    else:
        header = ("key", "file", "role", "variant", "default", "size", "sha256")
        table = [
            (
                row["key"],
                row["file"],
                row["role"] or "-",
                row["variant"] or "-",
                "yes" if row["default"] else "",
                _human_size(row["size"]),
                "ok" if row["sha256_ok"] else ("MISSING" if row["size"] is None else "MISMATCH"),
            )
            for row in rows
        ]
        widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
        print(f"models in {directory}")
        for r in [header, *table]:
            print("  ".join(str(cell).ljust(w) for cell, w in zip(r, widths)).rstrip())
    if not rows:
        print("edge models: the manifest lists no models", file=sys.stderr)
        return 1
    if bad:
        names = ", ".join(row["file"] for row in bad)
        print(
            f"edge models: {len(bad)} file(s) missing or not matching manifest.json: {names}; "
            "reinstall the package or rebuild with `python scripts/build_models.py`",
            file=sys.stderr,
        )
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge", description="Offline face verification appliance.")
    parser.add_argument("--version", action="version", version=f"edge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("models", help="list the shipped models and verify their checksums")
    p.add_argument("--dir", default=None, help="models folder (default: $EDGE_MODELS_DIR or the installed one)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_models)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
