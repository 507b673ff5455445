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


def _engine(args: argparse.Namespace):
    from edge.engine import Engine

    return Engine(profile=getattr(args, "profile", "accurate"))


def _print_result(result: dict) -> int:
    """One JSON line on stdout; exit 0 only for code 1000."""
    print(json.dumps(result, separators=(", ", ": ")))
    return 0 if result.get("code") == 1000 else 1


def cmd_compare(args: argparse.Namespace) -> int:
    """1:1 verification of the largest face in each photo."""
    result = _engine(args).verify(args.a, args.b, auto_rotate=args.auto_rotate, check_quality=args.check_quality)
    return _print_result(result)


def cmd_compare_faces(args: argparse.Namespace) -> int:
    """Every face of photo A against every face of photo B."""
    return _print_result(_engine(args).compare_faces(args.a, args.b, auto_rotate=args.auto_rotate))


def _progress_bar(done: int, total: int) -> None:
    if not sys.stderr.isatty() and done not in (total,) and done % max(1, total // 20):
        return  # in a log, print a line every 5 % instead of redrawing
    width = 30
    filled = int(width * done / max(total, 1))
    end = "\n" if done == total or not sys.stderr.isatty() else "\r"
    print(f"  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} photos", end=end, file=sys.stderr, flush=True)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Pair accuracy, TAR at FAR, the calibration table and speed on a pairs file."""
    from edge.evaluation import evaluate_pairs

    engine = _engine(args)
    r = evaluate_pairs(engine, args.pairs, args.root, progress=_progress_bar, limit=args.limit)
    if args.json:
        print(json.dumps(r, indent=1))
        return 0
    print(
        f"profile {args.profile}: embedders {', '.join(engine.config.embedders)}; landmarks "
        f"{engine.config.landmarks}; flip {engine.config.flip}; detector {engine.largest_face_detector.mode} "
        "(the largest face of each photo, as `verify` uses)"
    )
    print(
        f"photos {r['photos']} ({r['photos_without_face']} without a detected face); pairs {r['pairs']} "
        f"({r['pairs_missed']} with a missed face, counted as errors)"
    )
    print(f"pair accuracy (10-fold): {100 * r['pair_accuracy']:.2f} % ± {100 * r['pair_accuracy_std']:.2f}")
    print(
        f"TAR at FAR over all cross-identity pairs ({r['genuine_pairs']:,} genuine, {r['impostor_pairs']:,} impostor):"
    )
    for far, tar in r["tar_at_far"].items():
        print(f"  FAR {far}: TAR {100 * tar:.2f} %")
    if "calibration" in r:
        print("calibration: threshold → FAR measured here (the table's FAR), TAR")
        for row in r["calibration"]:
            print(
                f"  {row['threshold']:.1f}  measured {row['measured_far']:.2e} ({row['impostors_accepted']:,} "
                f"impostors)  table {row['table_far']:.0e}  ratio {row['measured_far'] / row['table_far']:.2f}  "
                f"TAR {100 * row['tar']:.2f} %"
            )
    print(f"speed: {r['ms_per_photo']:.1f} ms per photo (decode, detect, landmarks, align, embed the largest face)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge", description="Offline face verification appliance.")
    parser.add_argument("--version", action="version", version=f"edge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("models", help="list the shipped models and verify their checksums")
    p.add_argument("--dir", default=None, help="models folder (default: $EDGE_MODELS_DIR or the installed one)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_models)

    def engine_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--profile",
            choices=["accurate", "fast"],
            default="accurate",
            help="engine profile (default accurate: both embedders; fast: MobileFaceNet only)",
        )

    p = sub.add_parser("compare", help="1:1 verification of two one-face photos (prints JSON)")
    p.add_argument("a", help="first photo: path, or base64")
    p.add_argument("b", help="second photo: path, or base64")
    p.add_argument("--auto-rotate", action="store_true", help="also try the photo turned 90/180/270 degrees")
    p.add_argument(
        "--check-quality", action="store_true", help="refuse blurred, tiny, turned, badly lit or occluded faces"
    )
    engine_options(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("compare-faces", help="every face in A against every face in B (prints JSON)")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--auto-rotate", action="store_true")
    engine_options(p)
    p.set_defaults(func=cmd_compare_faces)

    p = sub.add_parser("evaluate", help="accuracy, TAR at FAR, calibration and speed on a pairs file")
    p.add_argument("--pairs", required=True, help="CSV with img_a, img_b, same[, fold]")
    p.add_argument("--root", required=True, help="folder the CSV's image paths are relative to")
    p.add_argument("--limit", type=int, default=None, help="only the first N pairs")
    p.add_argument("--json", action="store_true")
    engine_options(p)
    p.set_defaults(func=cmd_evaluate)

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
