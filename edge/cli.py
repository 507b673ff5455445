"""The `edge` command: argument parsing and printing only.

Each subcommand is one `cmd_<name>(args) -> int` function that calls into the package and
prints; `main` returns its exit code. Results go to stdout; diagnostics (errors, warnings,
progress) are log records on stderr, at the level of ``--log-level`` / ``-v`` (default
warning; for `edge run`, ``[log] level`` in the config when no flag is given). JSON results are
one line each, UTF-8 as it is (`_print_json`). Every command ends with one of the exit statuses
below (docs/cli.md); `main` turns any fault a command did not handle into one, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from edge import __version__, logs
from edge.profiles import PROFILE_NAMES

logger = logging.getLogger("edge.cli")  # not __name__: `python -m edge.cli` runs this module as __main__

# Exit statuses (docs/cli.md). 0: done (for compare/compare-faces/identify: result code 1000);
# 1: the answer is no or the request failed (another result code, damaged records, a refused
# command); 2: a usage or configuration error (argparse's own errors exit 2 as well);
# 3: `edge admin send` got no reply; 130: interrupted. And, for faults of the installation:
EXIT_MODEL_FAULT = 4  # the models cannot be used: a file missing, damaged or not loadable, no TFLite runtime
EXIT_INTERNAL = 5  # an unexpected error (a bug): named on stderr, its traceback at -vv
EXIT_INTERRUPTED = 130


def _print_json(value) -> None:
    """The one JSON style of every command: one line, compact, non-ASCII as it is (as the verdict
    lines of `edge run` and the audit log)."""
    print(json.dumps(value, ensure_ascii=False, separators=(",", ":")), flush=True)


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
        logger.error("models: %s", exc)
        return 1
    bad = [row for row in rows if not row["sha256_ok"]]
    if args.json:
        _print_json({"directory": str(directory), "models": rows})
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
        logger.error("models: the manifest lists no models")
        return 1
    if bad:
        names = ", ".join(row["file"] for row in bad)
        logger.error(
            "models: %d file(s) missing or not matching manifest.json: %s; "
            "reinstall the package or rebuild with `python scripts/build/build_models.py`",
            len(bad),
            names,
        )
        return 1
    return 0


def _engine(args: argparse.Namespace):
    from edge.engine import Engine, EngineConfig

    return Engine(EngineConfig.profile(getattr(args, "profile", "accurate"), limits=_limits(args)))


def _limits(args: argparse.Namespace):
    """The image intake limits the command's flags ask for (--max-bytes, --max-pixels, --max-side,
    --downscale); `edge.images.DEFAULT_LIMITS` without them."""
    from edge.images import IntakeLimits

    values = {name: getattr(args, name, None) for name in ("max_bytes", "max_pixels", "max_side")}
    return IntakeLimits(
        **{name: value for name, value in values.items() if value is not None},
        downscale=bool(getattr(args, "downscale", False)),
    )


def _at_least(minimum: int, what: str):
    """An argparse type: an integer of at least `minimum` (underscores allowed: 16_777_216)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{what} must be at least {minimum}, got {value}")
        return value

    return parse


def _print_result(result: dict) -> int:
    """One JSON line on stdout; exit 0 only for code 1000."""
    _print_json(result)
    return 0 if result.get("code") == 1000 else 1


def _fraction(text: str) -> float:
    """An argparse type: a number from 0 to 1 (a threshold)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def _with_decision(result: dict, threshold: float) -> dict:
    """`verify`'s result with the decision at `threshold` added (`threshold`, `match`), before
    `request_id`; a failure is left as it is."""
    if result.get("code") != 1000:
        return result
    out = {k: v for k, v in result.items() if k != "request_id"}
    out["threshold"] = threshold
    out["match"] = bool(result["verification_score"] >= threshold)
    if "request_id" in result:
        out["request_id"] = result["request_id"]
    return out


def cmd_compare(args: argparse.Namespace) -> int:
    """1:1 verification of the largest face in each photo."""
    inputs = _sealed_inputs(args, "compare", [args.a, args.b], ["first", "second"])
    if isinstance(inputs, int):
        return inputs
    a, b = inputs
    from edge.matching import DEFAULT_THRESHOLD

    result = _engine(args).verify(a, b, auto_rotate=args.auto_rotate, check_quality=args.check_quality)
    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    return _print_result(_with_decision(result, threshold))


def cmd_compare_faces(args: argparse.Namespace) -> int:
    """Every face of photo A against every face of photo B."""
    inputs = _sealed_inputs(args, "compare-faces", [args.a, args.b], ["first", "second"])
    if isinstance(inputs, int):
        return inputs
    a, b = inputs
    return _print_result(_engine(args).compare_faces(a, b, auto_rotate=args.auto_rotate))


def _progress_bar(done: int, total: int) -> None:
    """On a terminal a bar redrawn in place (not at --log-level error); elsewhere an INFO record every 5 %."""
    if sys.stderr.isatty() and logger.isEnabledFor(logging.WARNING):
        width = 30
        filled = int(width * done / max(total, 1))
        end = "\n" if done == total else "\r"
        sys.stderr.write(f"  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} photos{end}")
        sys.stderr.flush()
    elif done == total or done % max(1, total // 20) == 0:
        logger.info("evaluate: %d/%d photos", done, total)


def _missing_evaluation_data(pairs: str, root: str) -> str | None:
    """What is missing for `edge evaluate` (the pairs file, the photo folder), or None."""
    if not Path(pairs).is_file():
        where = " (the development data is not in ../shared: README, Quick start)" if "shared" in pairs else ""
        return f"no pairs file {pairs}{where}"
    if not Path(root).is_dir():
        return f"no photo folder {root} (--root: the folder the pairs file's paths are relative to)"
    return None


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Pair accuracy, TAR at FAR, the calibration table and speed on a pairs file."""
    from edge.evaluation import evaluate_pairs

    missing = _missing_evaluation_data(args.pairs, args.root)
    if missing:
        logger.error("evaluate: %s", missing)
        return 2
    engine = _engine(args)
    try:
        r = evaluate_pairs(engine, args.pairs, args.root, progress=_progress_bar, limit=args.limit)
    except (ValueError, KeyError) as exc:  # a CSV without the columns, a fold that is not a number
        logger.error("evaluate: %s is not a pairs file: %s", args.pairs, exc)
        return 2
    if args.json:
        _print_json(r)
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


def _warn_of_a_password_in(url: str | None) -> None:
    """A warning when --mqtt's URL carries a password (the command line is public on this machine)."""
    from edge.broker_url import command_line_password_warning

    warning = command_line_password_warning(url) if url else None
    if warning:
        logger.warning("%s", warning)


def cmd_run(args: argparse.Namespace) -> int:
    """The appliance loop: frames → verdicts as JSON lines (and the audit log); run stats on exit."""
    from edge.app import appliance_from_config
    from edge.config import ConfigError, load_config

    _warn_of_a_password_in(args.mqtt)
    overrides = {
        "camera": {"source": args.source, "realtime": True if args.realtime else None},
        "device": {"id": args.device_id},
        "mqtt": {"enabled": True, "url": args.mqtt} if args.mqtt else {},
        # --vault picks the vault even when the file names a development gallery
        **({"vault": {"path": args.vault}, "gallery": {"path": ""}} if args.vault is not None else {}),
    }
    try:
        config = load_config(args.config, overrides=overrides)
        _log_level_from_config(args, config)
        appliance = appliance_from_config(config)
    except ConfigError as exc:
        logger.error("run: %s", exc.message)
        return 2
    try:
        http = _http_beside(appliance, config) if config.http.enabled else None
    except ConfigError as exc:
        logger.error("run: %s", exc.message)
        for sink in appliance.sinks:  # started already (MQTT connects while the models load): closed cleanly
            sink.close()
        return 2
    try:
        stats = appliance.run(max_frames=args.max_frames)
        code = 0
    except KeyboardInterrupt:  # a second SIGINT/SIGTERM: stopped at once (sinks were still closed)
        stats, code = appliance.stats(), EXIT_INTERRUPTED
    finally:
        if http is not None:
            http.stop()
    _print_json(stats)
    return code


def _http_beside(appliance, config):
    """`http.enabled`: the HTTP API served from this process, sharing the appliance's engine and gallery."""
    from edge.app import HttpThread, http_app_from_config
    from edge.config import ConfigError

    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        needs = "the HTTP API needs the http extra: pip install 'edge-face-verify[http]'"
        raise ConfigError("http.enabled", needs) from None
    http = HttpThread(http_app_from_config(config, appliance=appliance), config)
    http.start()
    return http


def cmd_serve(args: argparse.Namespace) -> int:
    """The HTTP API (docs/http.md) until stopped."""
    from edge.app import http_app_from_config, serve_http
    from edge.config import ConfigError, load_config

    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        logger.error("serve: the HTTP API needs the http extra: pip install 'edge-face-verify[http]'")
        return 2
    try:
        config = load_config(args.config, overrides={"http": {"host": args.host, "port": args.port}})
        _log_level_from_config(args, config)
        app = http_app_from_config(config)
    except ConfigError as exc:
        logger.error("serve: %s", exc.message)
        return 2
    serve_http(app, config)
    return 0


# --- the web console (edge.console; docs/console.md) -------------------------------------------


def _read_new_password() -> str | None:
    """The new password: asked twice on a terminal, else the first line of stdin (for scripts)."""
    import getpass

    if sys.stdin.isatty():
        first = getpass.getpass("new console password: ")
        if getpass.getpass("again: ") != first:
            logger.error("console set-password: the two passwords differ; nothing changed")
            return None
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_console_set_password(args: argparse.Namespace) -> int:
    """Hash the console's admin password into [console] password_hash (or print the line)."""
    from edge.config import ConfigError
    from edge.console.auth import PasswordError, hash_password
    from edge.console.password import set_password

    if not args.print and not args.config:
        logger.error("console set-password: give --config FILE (the file to write) or --print")
        return 2
    password = _read_new_password()
    if password is None:
        return 1
    try:
        if args.print:
            print(f'password_hash = "{hash_password(password)}"')
            return 0
        set_password(args.config, password)
    except PasswordError as exc:
        logger.error("console set-password: %s; nothing changed", exc)
        return 1
    except ConfigError as exc:
        logger.error("console set-password: %s; nothing changed", exc.message)
        return 2
    except (OSError, ValueError) as exc:  # unreadable file, or not TOML
        logger.error("console set-password: %s: %s; nothing changed", args.config, exc)
        return 1
    print(f"set [console] password_hash in {args.config}; restart edge for the console to use it")
    return 0


# --- the enrolment vault (edge.vault; docs/vault.md) -------------------------------------------


def _vault_error(command: str, exc: Exception) -> int:
    """A vault or argument problem logged as an error; exit 1."""
    from edge.errors import EdgeError

    message = f"{exc.message} [{exc.code}]" if isinstance(exc, EdgeError) else str(exc)
    logger.error("%s: %s", command, message)
    return 1


def _report_problems(command: str, problems: list) -> None:
    """Damaged records, each named; everything else was used."""
    for problem in problems:
        logger.warning("%s: %s (skipped; the other records are in use)", command, problem)


def _open_vault(args: argparse.Namespace):
    from edge.vault import Vault

    return Vault.open(args.vault)


def _sealed_inputs(args: argparse.Namespace, command: str, sources: Sequence[str], labels: Sequence[str]):
    """With --encrypted: each photo argument (a file or base64, raw or base64 ciphertext) opened with
    the vault's key; without it the arguments as given. An int is an exit code (the error is printed)."""
    if not getattr(args, "encrypted", False):
        return list(sources)
    import uuid

    from edge.errors import EdgeError
    from edge.vault import VaultError, load_private_key, unseal_image

    if not args.vault:
        logger.error("%s: --encrypted needs --vault DIR (the device key that opens the images)", command)
        return 2
    try:
        key = load_private_key(args.vault)
        limits = _limits(args)
        return [
            unseal_image(s, key, limits=limits, label=f"the {label} encrypted image")
            for s, label in zip(sources, labels)
        ]
    except VaultError as exc:
        return _vault_error(command, exc)
    except EdgeError as exc:
        return _print_result({**exc.to_dict(), "request_id": uuid.uuid4().hex})


def cmd_keys_init(args: argparse.Namespace) -> int:
    """Create the device's X25519 key pair in the vault directory."""
    from edge.vault import Vault, VaultError

    try:
        vault = Vault.init(args.vault)
    except (VaultError, OSError) as exc:
        return _vault_error("keys init", exc)
    print(f"created the device key pair in {args.vault} (private key {vault.directory / 'device.key'}, mode 0600)")
    print(f"public key: {vault.public_key_b64}")
    return 0


def cmd_keys_show(args: argparse.Namespace) -> int:
    """Print the device's public key (base64), for `edge enroll --seal-for` and clients that seal images."""
    from edge.vault import VaultError, load_private_key, public_key_b64

    try:
        print(public_key_b64(load_private_key(args.vault)))
    except (VaultError, OSError) as exc:
        return _vault_error("keys show", exc)
    return 0


def _check_before_sealing(engine, photos: list[str]) -> None:
    """The device's enrolment gate, run here first (every photo's face and quality, one person
    in all): a bundle that the device would refuse is not made. (Duplicates need the device's
    vault; `--import` checks them.)"""
    from edge.vault.enroll import check_one_person, checked_templates
    from edge.vault.photos import read_photos

    labels, templates = checked_templates(engine, read_photos(photos, engine.config.limits))
    check_one_person(engine, templates, labels)


def cmd_enroll(args: argparse.Namespace) -> int:
    """Enrol a person into the vault, seal a bundle for a remote device, or import such a bundle."""
    from edge.errors import EdgeError
    from edge.vault import VaultError

    photos = args.photos or []
    try:
        if args.seal_for is not None:
            if args.vault or args.import_bundle or not args.output or not args.name or not photos:
                logger.error("enroll: --seal-for PUBKEY needs -o BUNDLE NAME PHOTO… (and no --vault/--import)")
                return 2
            from edge.fs import atomic_write
            from edge.vault import make_bundle, parse_public_key, public_key_b64

            key = parse_public_key(args.seal_for)
            _check_before_sealing(_engine(args), photos)
            atomic_write(args.output, make_bundle(key, args.name, photos), mode=0o600)
            print(
                f"wrote {args.output}: {args.name!r}, {len(photos)} photo(s), sealed for the device with public key "
                f"{public_key_b64(key)}; only that device can open it"
            )
            return 0
        if not args.vault:
            logger.error("enroll: --vault DIR is needed (or --seal-for PUBKEY -o BUNDLE for a remote device)")
            return 2
        from edge.vault import enroll, import_bundle, model_version

        if args.import_bundle is not None:
            if args.name or photos:
                logger.error("enroll: --import BUNDLE takes no NAME or PHOTO (the bundle carries them)")
                return 2
            vault = _open_vault(args)
            engine = _engine(args)
            entry = import_bundle(engine, vault, args.import_bundle, allow_duplicate=args.allow_duplicate)
            print(
                f"imported {entry.name!r} from {args.import_bundle}: {entry.photos} photo(s), "
                f"model version {model_version(engine)}"
            )
            return 0
        if not args.name or not photos:
            logger.error("enroll: give NAME and at least one PHOTO")
            return 2
        vault = _open_vault(args)
        engine = _engine(args)
        entry = enroll(engine, vault, args.name, photos, allow_duplicate=args.allow_duplicate)
        print(f"enrolled {entry.name!r}: {entry.photos} photo(s), model version {model_version(engine)}")
        return 0
    except (VaultError, EdgeError, OSError) as exc:
        return _vault_error("enroll", exc)


def cmd_people(args: argparse.Namespace) -> int:
    """Who is enrolled: names, photo counts, dates (never templates)."""
    from edge.engine import EngineConfig
    from edge.vault import VaultError, model_version

    try:
        people, problems = _open_vault(args).people(model_version(EngineConfig.profile(args.profile)))
    except (VaultError, OSError) as exc:
        return _vault_error("people", exc)
    _report_problems("people", problems)
    if args.json:
        _print_json([p.to_dict() for p in people])
        return 0
    header = ("name", "photos", "enrolled", "updated", "templates")
    rows = [
        (
            p.name,
            str(p.photos),
            p.enrolled,
            p.updated,
            f"{p.templates}/{p.photos}" + ("" if p.templates == p.photos else " (rebuild)"),
        )
        for p in people
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    print(f"{len(people)} people, {sum(p.photos for p in people)} photos")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    """Remove a person: every photo and template overwritten, then unlinked."""
    from edge.errors import EdgeError
    from edge.vault import VaultError

    if (args.name is None) == (args.entry is None):
        logger.error("revoke: give NAME, or --entry ID for an entry whose meta record is damaged")
        return 2
    try:
        vault = _open_vault(args)
        if args.entry is not None:
            files = vault.revoke_entry(args.entry)
            print(f"revoked entry {args.entry}: {files} file(s) overwritten and removed")
            return 0
        report = vault.revoke(args.name)
    except (VaultError, EdgeError, OSError) as exc:
        return _vault_error("revoke", exc)
    gone = f"; {report.missing} of them had been deleted already (forgotten now)" if report.missing else ""
    print(
        f"revoked {report.name!r}: {report.photos} photo(s) in {report.entries} enrolment(s); "
        f"{report.files} file(s) overwritten and removed{gone}"
    )
    return 0


def cmd_vault_rebuild(args: argparse.Namespace) -> int:
    """Recompute templates from the sealed photos for the current model version."""
    from edge.vault import VaultError, rebuild

    try:
        vault = _open_vault(args)
        report = rebuild(_engine(args), vault, force=args.force)
    except (VaultError, OSError) as exc:
        return _vault_error("vault rebuild", exc)
    _report_problems("vault rebuild", report.problems)
    print(
        f"model version {report.model_version}: {report.written} template(s) computed, {report.current} already "
        f"current, {report.dropped} of other versions overwritten and removed, {len(report.problems)} problem(s)"
    )
    return 1 if report.problems else 0


def cmd_vault_check(args: argparse.Namespace) -> int:
    """Open every record of the vault; name each one that does not."""
    from edge.vault import VaultError

    try:
        vault = _open_vault(args)
        good, problems = vault.check()
        counter = vault.index_counter()
    except (VaultError, OSError) as exc:
        return _vault_error("vault check", exc)
    for problem in problems:
        print(f"damaged: {problem}")
    print(f"{good} record(s) open and authenticate; {len(problems)} problem(s)")
    if counter is not None:  # note it: a lower one later means the vault was put back to an older copy
        print(f"index: change counter {counter}")
    return 1 if problems else 0


def cmd_vault_reindex(args: argparse.Namespace) -> int:
    """Accept the vault's files as they are now: a new index of every enrolment on disk."""
    from edge.vault import VaultError

    try:
        report = _open_vault(args).reindex()
    except (VaultError, OSError) as exc:
        return _vault_error("vault reindex", exc)
    for path, name in report.dropped:
        print(f"forgotten: {path} ({name!r}): listed by the old index, not on disk")
    for path, name in report.added:
        why = "not listed by the old index" if report.had_index else "there was no index to compare with"
        print(f"accepted: {path} ({name!r}): on disk, {why}")
    print(
        f"index: {report.entries} enrolment(s) of {report.people} people; change counter {report.counter}"
        + ("" if report.had_index else " (there was no readable index before)")
    )
    return 0


def cmd_identify(args: argparse.Namespace) -> int:
    """1:N: the largest face of PHOTO against everyone in the vault (prints JSON)."""
    from edge.vault import VaultError, vault_gallery

    inputs = _sealed_inputs(args, "identify", [args.photo], ["probe"])
    if isinstance(inputs, int):
        return inputs
    try:
        vault = _open_vault(args)
        engine = _engine(args)
        gallery = vault_gallery(engine, vault)
    except (VaultError, OSError) as exc:
        return _vault_error("identify", exc)
    _report_problems("identify", gallery.problems)
    if gallery.stale and gallery.missing:
        logger.warning(
            "identify: %d photo(s) have no template for model version %s (%d of other versions are never used); "
            "run `edge vault rebuild --vault %s`",
            gallery.missing,
            gallery.model_version,
            gallery.stale,
            args.vault,
        )
    return _print_result(engine.identify(inputs[0], gallery, threshold=args.threshold, auto_rotate=args.auto_rotate))


def cmd_seal(args: argparse.Namespace) -> int:
    """Encrypt a photo to a device's public key, as clients send `first_encrypted_image`."""
    import base64

    from edge.errors import EdgeError
    from edge.vault import VaultError, parse_public_key, seal_image
    from edge.vault.photos import read_photos

    try:
        ((_, data),) = read_photos([args.photo])
        sealed = seal_image(data, parse_public_key(args.seal_for))
    except (VaultError, EdgeError) as exc:
        return _vault_error("seal", exc)
    out = base64.b64encode(sealed) + b"\n" if args.base64 else sealed
    if args.output:
        with open(args.output, "wb") as handle:
            handle.write(out)
    elif args.base64:
        sys.stdout.write(out.decode())
    else:
        logger.error("seal: give -o FILE for raw output, or --base64 to print it")
        return 2
    return 0


# --- remote administration (edge.admin, edge.mqtt; docs/mqtt.md) ------------------------------------


def cmd_admin_keygen(args: argparse.Namespace) -> int:
    from edge.admin.signing import generate_admin_key, public_key_text
    from edge.errors import EdgeError

    try:
        key = generate_admin_key(args.out)
    except (EdgeError, OSError) as exc:
        return _vault_error("admin keygen", exc)
    public = public_key_text(key)
    print(f"wrote the admin key {args.out} (mode 0600) and its public half {args.out}.pub")
    print(f"public key: {public}")
    print(f'device config: [mqtt] admin_keys = ["{public}"]')
    return 0


def _command_args(action: str, arguments: list[str]) -> dict | str:
    """The command's args object, or an error message."""
    import base64

    wanted = {"revoke": 1, "import": 1}.get(action, 0)
    if len(arguments) != wanted:
        usage = {"revoke": "revoke NAME", "import": "import BUNDLE"}.get(action, action)
        return f"usage: edge admin send … {usage}"
    if action == "revoke":
        return {"name": arguments[0]}
    if action == "import":
        try:
            data = Path(arguments[0]).read_bytes()
        except OSError as exc:
            return f"cannot read {arguments[0]}: {exc.strerror or exc}"
        from edge.config import MqttConfig

        text = base64.b64encode(data).decode("ascii")
        limit = MqttConfig().command_max_bytes
        if len(text) + 1024 > limit:  # the signed command's other fields take a few hundred bytes
            logger.warning(
                "admin send: the import command is about %.1f MiB; a device with the default mqtt.command_max_bytes "
                "(%.0f MiB) refuses it as too_large (fewer or smaller photos, or raise the device's limit)",
                (len(text) + 1024) / 2**20,
                limit / 2**20,
            )
        return {"bundle": text}
    return {}


def cmd_admin_send(args: argparse.Namespace) -> int:
    from edge.admin.signing import load_admin_key
    from edge.errors import EdgeError
    from edge.mqtt.admin import send_command
    from edge.mqtt.client import MqttSetupError

    command_args = _command_args(args.action, args.arguments)
    if isinstance(command_args, str):
        logger.error("admin send: %s", command_args)
        return 2
    try:
        key = load_admin_key(args.admin_key)
        settings = _admin_mqtt_settings(args)
        reply = send_command(
            settings,
            key,
            args.device_id,
            args.action,
            command_args,
            topic_prefix=args.topic_prefix,
            timeout=args.timeout,
        )
    except (EdgeError, MqttSetupError) as exc:
        return _vault_error("admin send", exc)
    except (ConnectionError, TimeoutError) as exc:
        logger.error("admin send: %s", exc)
        return 3
    _print_json(reply)
    return 0 if reply.get("ok") else 1


# --- fleet enrolment: edge node, edge admin fleet … (docs/fleet.md) ------------------------------------


def cmd_node(args: argparse.Namespace) -> int:
    """A door without a camera: MQTT, vault, signed device and group commands, until SIGTERM/SIGINT."""
    import signal
    import threading

    from edge.app import FleetNode
    from edge.config import ConfigError, load_config

    _warn_of_a_password_in(args.mqtt)
    overrides = {
        "device": {"id": args.device_id},
        "mqtt": {"enabled": True, "url": args.mqtt} if args.mqtt else {},
        **({"vault": {"path": args.vault}} if args.vault is not None else {}),
    }
    try:
        config = load_config(args.config, overrides=overrides)
        _log_level_from_config(args, config)
        node = FleetNode(config).start()
    except ConfigError as exc:
        logger.error("node: %s", exc.message)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_a: stop.set())
    logger.info("node %s: running (groups %s)", config.device_id, ", ".join(config.mqtt.groups) or "none")
    while not stop.wait(1.0):
        pass
    node.close()
    return 0


def _admin_mqtt_settings(args: argparse.Namespace):
    """The administrator's broker connection from `edge admin send` / `edge admin fleet` flags."""
    from edge.config import MqttConfig
    from edge.mqtt.client import MqttSettings

    mqtt = MqttConfig(
        url=args.mqtt,
        password_file=args.password_file,
        ca_file=args.ca_file,
        cert_file=args.cert_file,
        key_file=args.key_file,
        protocol=args.protocol,
    )
    return MqttSettings.from_config(mqtt, client_id="edge-admin", url=args.mqtt)


def cmd_admin_fleet(args: argparse.Namespace) -> int:
    from edge.errors import EdgeError
    from edge.mqtt.client import MqttSetupError

    _warn_of_a_password_in(args.mqtt)
    action = args.fleet_command
    try:
        settings = _admin_mqtt_settings(args)
        if action in ("status", "keys"):
            return _fleet_read(args, settings)
        return _fleet_send(args, settings)
    except (EdgeError, MqttSetupError) as exc:
        return _vault_error(f"admin fleet {action}", exc)
    except (ConnectionError, TimeoutError) as exc:
        logger.error("admin fleet %s: %s", action, exc)
        return 3


def _fleet_read(args: argparse.Namespace, settings) -> int:
    from edge.mqtt.fleet import fleet_rows, read_fleet

    devices = read_fleet(settings, states=args.states, availability=args.availability, wait=args.wait)
    if args.fleet_command == "keys":
        for device, entry in sorted(devices.items()):
            state = entry["fleet"]
            if (args.group is None or args.group in (state.get("groups") or [])) and state.get("public_key"):
                print(f"{device} {state['public_key']}")
        return 0 if devices else 3
    rows = fleet_rows(devices, group=args.group)
    if args.json:
        _print_json({"devices": rows})
    else:
        print(f"{'device':<20} {'avail':<8} {'generation':<10} {'people':>6}  {'last seen':<25} latest per group")
        for r in rows:
            latest = "; ".join(f"{g}: {v}" for g, v in r["latest"].items()) or "-"
            generation = (r["generation"] or "-")[:8]
            seen = f"{r['last_seen']} ({r['seen_ago_s']:.0f} s)" if r["seen_ago_s"] is not None else "-"
            people = str(r["people"])
            print(f"{r['device_id']:<20} {r['availability']:<8} {generation:<10} {people:>6}  {seen:<25} {latest}")
    return 0 if rows else 3


def _fleet_send(args: argparse.Namespace, settings) -> int:
    from edge.admin.fleet import import_chunks, read_device_keys
    from edge.admin.signing import load_admin_key
    from edge.mqtt.fleet import send_group_commands

    key = load_admin_key(args.admin_key)
    expect = list(read_device_keys(args.keys)) if args.keys else []
    if args.fleet_command == "enroll":
        from edge.vault import make_bundle, parse_public_key

        if not args.keys:
            logger.error("admin fleet enroll: --keys FILE is needed (from `edge admin fleet keys`, checked)")
            return 2
        keys = read_device_keys(args.keys)
        bundles = {d: make_bundle(parse_public_key(k), args.name, args.photos) for d, k in keys.items()}
        command, args_list = "import", import_chunks(bundles, args.max_bytes)
    elif args.fleet_command == "revoke":
        command, args_list = "revoke", [{"name": args.name}]
    else:
        command, args_list = "reload", [{}]
    outcome = send_group_commands(
        settings,
        key,
        args.group,
        command,
        args_list,
        expect=expect,
        group_prefix=args.group_prefix,
        responses=args.responses,
        timeout=args.timeout,
    )
    replies = outcome["replies"]
    failed = sorted(d for d, r in replies.items() if not r.get("ok"))
    _print_json(
        {
            "group": args.group,
            "command": command,
            "commands": len(args_list),
            "batch": outcome["batch"],
            "ok": sorted(d for d, r in replies.items() if r.get("ok")),
            "failed": {d: replies[d].get("reason", "") + ": " + str(replies[d].get("error", "")) for d in failed},
            "missing": outcome["missing"],
            "seconds": outcome["seconds"],
        }
    )
    return 0 if replies and not failed and not outcome["missing"] else 1


def _register_fleet(sub, admin_sub, broker_options) -> None:
    p = sub.add_parser("node", help="a door without a camera: MQTT, vault and signed (group) commands (docs/fleet.md)")
    p.add_argument("--config", default=None, help="TOML config")
    p.add_argument("--vault", default=None, help="override vault.path")
    p.add_argument("--device-id", default=None, help="override device.id")
    p.add_argument("--mqtt", default=None, metavar="URL", help="the broker (turns MQTT on)")
    p.set_defaults(func=cmd_node)

    q = admin_sub.add_parser("fleet", help="enrol or revoke on every door of a group; fleet status (docs/fleet.md)")
    fleet_sub = q.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)
    for action, text in (
        ("status", "doors, groups, vault generation, people, latest group command applied, last seen"),
        ("keys", "print '<device id> <public key>' of every door (check it, then use it as --keys)"),
        ("enroll", "seal NAME's photos to every door's key; one signed command on the group topic"),
        ("revoke", "revoke NAME on every door of the group"),
        ("reload", "every door of the group re-reads its vault"),
    ):
        r = fleet_sub.add_parser(action, help=text)
        broker_options(r)
        r.add_argument("--states", default="edge/+/fleet", help="the doors' fleet state topics (a filter)")
        r.add_argument("--availability", default="edge/+/availability", help="the doors' availability topics")
        if action in ("status", "keys"):
            r.add_argument("--group", default=None, help="only the doors of this group")
            r.add_argument("--wait", type=float, default=2.0, help="seconds to collect the retained states")
            if action == "status":
                r.add_argument("--json", action="store_true", help="JSON instead of a table")
        else:
            r.add_argument("--group", required=True, help="the group (a door takes it when in its mqtt.groups)")
            r.add_argument(
                "--admin-key", default=os.environ.get("EDGE_ADMIN_KEY", "admin.key"), help="admin private key"
            )
            r.add_argument("--group-prefix", default="edge/group", help="the doors' mqtt.group_prefix")
            r.add_argument("--responses", default="edge/+/command/response", help="the doors' reply topics")
            r.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the doors' replies")
            r.add_argument(
                "--keys",
                default="",
                metavar="FILE",
                help="'<device id> <public key>' lines: the doors to seal to (enroll) and to wait for",
            )
        if action == "enroll":
            r.add_argument("--max-bytes", type=int, default=8 * 1024 * 1024, help="the doors' mqtt.command_max_bytes")
            r.add_argument("name", help="the person's name")
            r.add_argument("photos", nargs="+", metavar="PHOTO", help="photos of the person (as for edge enroll)")
        elif action == "revoke":
            r.add_argument("name", help="the person's name")
        r.set_defaults(func=cmd_admin_fleet)


def _fleet_broker_options(r) -> None:
    r.add_argument("--mqtt", required=True, metavar="URL", help="the broker: mqtt[s]://user@host[:port]")
    r.add_argument("--password-file", default="", metavar="FILE", help="the broker password (one line)")
    r.add_argument("--ca-file", default="", help="mqtts: CA of the broker's certificate")
    r.add_argument("--cert-file", default="", help="mqtts: client certificate")
    r.add_argument("--key-file", default="", help="mqtts: client certificate key")
    r.add_argument("--protocol", choices=["auto", "5", "3.1.1"], default="auto", help="MQTT version")


# --- logging options (every command) -----------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose every (sub)command takes --log-level and -v, so `edge -v run …` and
    `edge run -v …` both work. Sub-parsers are made with the parser's own class, so nested
    commands (`edge vault rebuild`, `edge doctor`) get them too."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        group = self.add_argument_group("logging (on stderr; results stay on stdout)")
        group.add_argument(
            "--log-level",
            type=str.lower,
            choices=list(logs.LEVELS),
            default=argparse.SUPPRESS,
            metavar="LEVEL",
            help=f"debug, info, warning or error (default {logs.DEFAULT_LEVEL}; `edge run`: [log] level)",
        )
        group.add_argument(
            "-v",
            "--verbose",
            action="count",
            default=argparse.SUPPRESS,
            help="more output: -v is --log-level info, -vv debug",
        )


def _cli_log_level(args: argparse.Namespace) -> int | None:
    """The level the command line asks for (the more verbose of --log-level and -v), or None."""
    levels = []
    if getattr(args, "log_level", None):
        levels.append(logs.level_number(args.log_level))
    verbose = getattr(args, "verbose", 0) or 0
    if verbose:
        levels.append(logging.INFO if verbose == 1 else logging.DEBUG)
    return min(levels) if levels else None


def _log_level_from_config(args: argparse.Namespace, config) -> None:
    """`[log] level` applies when the command line gave no level (the flags win)."""
    if _cli_log_level(args) is None:
        logs.configure(config.log.level)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edge", description="Offline face verification appliance.")
    parser.add_argument("--version", action="version", version=f"edge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("models", help="list the shipped models and verify their checksums")
    p.add_argument("--dir", default=None, help="models folder (default: $EDGE_MODELS_DIR or the installed one)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_models)

    def engine_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--profile",
            choices=list(PROFILE_NAMES),
            default="accurate",
            help="engine profile (default accurate: MobileFaceNet + SFace, cascaded; fast: MobileFaceNet only; "
            "fr_feature: MobileFaceNet + fr_feature, the default before 2026.11.30; sface: same as accurate)",
        )

    def image_options(p: argparse.ArgumentParser) -> None:
        """The intake limits (edge.images.IntakeLimits; docs/api.md, "Image limits")."""
        from edge.images import DEFAULT_LIMITS as d

        g = p.add_argument_group("image limits (the seed API's by default)")
        g.add_argument(
            "--max-bytes",
            type=_at_least(1, "--max-bytes"),
            metavar="N",
            help=f"largest photo file accepted, in bytes (default {d.max_bytes:_}; larger: code 2004)",
        )
        g.add_argument(
            "--max-pixels",
            type=_at_least(d.min_side * d.min_side, "--max-pixels"),
            metavar="N",
            help=f"most pixels (width × height) accepted as they are (default {d.max_pixels:_}; more: 2003)",
        )
        g.add_argument(
            "--max-side",
            type=_at_least(d.min_side, "--max-side"),
            metavar="N",
            help=f"longest side accepted as it is, in pixels (default {d.max_side}; longer: 2003)",
        )
        g.add_argument(
            "--downscale",
            action="store_true",
            help="decode photos above --max-side/--max-pixels (phone photos, up to "
            f"{d.downscale_max_pixels / 1e6:.0f} MP and {d.downscale_max_bytes >> 20} MiB) at a reduced size within "
            "them instead of refusing them",
        )

    p = sub.add_parser("compare", help="1:1 verification of two one-face photos (prints JSON)")
    p.add_argument("a", help="first photo: path, or base64")
    p.add_argument("b", help="second photo: path, or base64")
    p.add_argument("--auto-rotate", action="store_true", help="also try the photo turned 90/180/270 degrees")
    p.add_argument(
        "--check-quality", action="store_true", help="refuse blurred, tiny, turned, badly lit or occluded faces"
    )
    p.add_argument(
        "--threshold",
        type=_fraction,
        default=None,
        metavar="T",
        help="decide at this verification_score: adds threshold and match (score >= T) to the JSON "
        "(default: the recommended 0.7, FAR 1/10,000)",
    )
    p.add_argument("--encrypted", action="store_true", help="A and B are sealed to the device key (raw or base64)")
    p.add_argument("--vault", metavar="DIR", help="with --encrypted: the vault whose device key opens them")
    engine_options(p)
    image_options(p)
    p.set_defaults(func=cmd_compare, json_result=True)

    p = sub.add_parser("compare-faces", help="every face in A against every face in B (prints JSON)")
    p.add_argument("a", help="first photo: path, or base64")
    p.add_argument("b", help="second photo: path, or base64")
    p.add_argument("--auto-rotate", action="store_true", help="also try the photos turned 90/180/270 degrees")
    p.add_argument("--encrypted", action="store_true", help="A and B are sealed to the device key (raw or base64)")
    p.add_argument("--vault", metavar="DIR", help="with --encrypted: the vault whose device key opens them")
    engine_options(p)
    image_options(p)
    p.set_defaults(func=cmd_compare_faces, json_result=True)

    p = sub.add_parser("evaluate", help="accuracy, TAR at FAR, calibration and speed on a pairs file")
    p.add_argument("--pairs", required=True, help="CSV with img_a, img_b, same[, fold]")
    p.add_argument("--root", required=True, help="folder the CSV's image paths are relative to")
    p.add_argument("--limit", type=_positive_int, default=None, metavar="N", help="only the first N pairs")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON line instead of text")
    engine_options(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("run", help="the appliance: camera → verdicts as JSON lines; run stats on exit")
    p.add_argument("--config", default=None, help="TOML config (default: the built-in defaults, as in edge.toml)")
    p.add_argument("--source", default=None, help="override camera.source: 0, /dev/video0, rtsp://…, clip.avi, DIR")
    p.add_argument("--vault", default=None, help="override vault.path (and ignore gallery.path)")
    p.add_argument("--device-id", default=None, help="override device.id")
    p.add_argument("--realtime", action="store_true", help="pace a video file or directory at its frame rate")
    p.add_argument("--max-frames", type=_positive_int, default=None, metavar="N", help="stop after N processed frames")
    p.add_argument(
        "--mqtt",
        default=None,
        metavar="URL",
        help="publish to this broker: mqtt[s]://user@host[:port]; the password from mqtt.password_file or "
        "$EDGE_MQTT_PASSWORD (a password in the URL shows in the process list)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("serve", help="the HTTP API: face verification and compare over HTTP (docs/http.md)")
    p.add_argument("--config", default=None, help="TOML config (default: the built-in defaults, as in edge.toml)")
    p.add_argument("--host", default=None, help="override http.host (default 127.0.0.1: this device only)")
    p.add_argument("--port", type=int, default=None, help="override http.port (default 8080)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("console", help="the local web console: set-password")
    console_sub = p.add_subparsers(dest="console_command", metavar="ACTION", required=True)
    q = console_sub.add_parser(
        "set-password",
        help="hash the console's admin password into [console] password_hash of a config file",
        description="Reads the password from the terminal (twice) or, when stdin is not a terminal, its first line.",
    )
    q.add_argument("--config", metavar="FILE", help="the TOML config to write (comments kept; created when missing)")
    q.add_argument("--print", action="store_true", help="print the password_hash line instead of writing a file")
    q.set_defaults(func=cmd_console_set_password)

    def vault_option(p: argparse.ArgumentParser, required: bool = True) -> None:
        p.add_argument("--vault", required=required, metavar="DIR", help="the vault directory (holds the device key)")

    p = sub.add_parser("keys", help="the device key pair: init, show")
    keys_sub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    q = keys_sub.add_parser("init", help="create the device's X25519 key pair (private key mode 0600)")
    vault_option(q)
    q.set_defaults(func=cmd_keys_init)
    q = keys_sub.add_parser("show", help="print the device's public key (base64)")
    vault_option(q)
    q.set_defaults(func=cmd_keys_show)

    p = sub.add_parser(
        "enroll",
        help="enrol a person (photos sealed, templates encrypted); or seal/import a remote-enrolment bundle",
        description="edge enroll --vault DIR NAME PHOTO…  |  edge enroll --seal-for PUBKEY -o BUNDLE NAME PHOTO…  |  "
        "edge enroll --vault DIR --import BUNDLE",
    )
    p.add_argument("name", nargs="?", help="the person's name (letters, digits, spaces, . - ' _; at most 64)")
    p.add_argument("photos", nargs="*", metavar="PHOTO", help="photos with exactly one usable face each")
    vault_option(p, required=False)
    p.add_argument(
        "--seal-for", metavar="PUBKEY", help="make a bundle for the device with this public key (base64 or file)"
    )
    p.add_argument("-o", "--output", metavar="BUNDLE", help="where --seal-for writes the bundle")
    p.add_argument("--import", dest="import_bundle", metavar="BUNDLE", help="enrol from a bundle sealed to this device")
    p.add_argument(
        "--allow-duplicate",
        action="store_true",
        help="enrol even if the face already matches someone enrolled under another name (twins)",
    )
    engine_options(p)
    image_options(p)
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser("people", help="list enrolled names, photo counts and dates (never templates)")
    vault_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON line (a list of people) instead of a table")
    engine_options(p)
    p.set_defaults(func=cmd_people)

    p = sub.add_parser("revoke", help="remove a person's photos and templates (overwrite, then unlink)")
    p.add_argument("name", nargs="?", help="the person to remove (every enrolment under that name)")
    vault_option(p)
    p.add_argument("--entry", metavar="ID", help="remove one enrolment by id (for one whose name no longer opens)")
    p.set_defaults(func=cmd_revoke)

    p = sub.add_parser("vault", help="vault maintenance: rebuild, check, reindex")
    vault_sub = p.add_subparsers(dest="vault_command", metavar="ACTION", required=True)
    q = vault_sub.add_parser("rebuild", help="recompute templates from the sealed photos after a model change")
    vault_option(q)
    q.add_argument("--force", action="store_true", help="recompute current templates too")
    engine_options(q)
    q.set_defaults(func=cmd_vault_rebuild)
    q = vault_sub.add_parser("check", help="open every record, compare with the index; name damaged, deleted, foreign")
    vault_option(q)
    q.set_defaults(func=cmd_vault_check)
    q = vault_sub.add_parser(
        "reindex", help="accept the files on disk as they are: a new index (old vaults; after a restore or a deletion)"
    )
    vault_option(q)
    q.set_defaults(func=cmd_vault_reindex)

    p = sub.add_parser("identify", help="1:N: who in the vault is this (prints JSON)")
    p.add_argument("photo", help="photo: path, or base64")
    vault_option(p)
    p.add_argument(
        "--threshold",
        type=_fraction,
        default=None,
        metavar="T",
        help="calibrated score needed for a name (default: the recommended one, FAR 1/10,000 per comparison)",
    )
    p.add_argument("--encrypted", action="store_true", help="PHOTO is sealed to the device key (raw or base64)")
    p.add_argument("--auto-rotate", action="store_true", help="also try the photo turned 90/180/270 degrees")
    engine_options(p)
    image_options(p)
    p.set_defaults(func=cmd_identify, json_result=True)

    p = sub.add_parser("seal", help="encrypt a photo to a device's public key (for --encrypted)")
    p.add_argument("photo", help="the photo to seal: path, or base64")
    p.add_argument("--for", dest="seal_for", required=True, metavar="PUBKEY", help="device public key (base64 or file)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the sealed photo to FILE (raw; base64 with --base64)")
    p.add_argument("--base64", action="store_true", help="base64 instead of raw bytes")
    p.set_defaults(func=cmd_seal)

    p = sub.add_parser("admin", help="administrator: keygen, send (Ed25519-signed commands over MQTT)")
    admin_sub = p.add_subparsers(dest="admin_command", metavar="ACTION", required=True)
    q = admin_sub.add_parser("keygen", help="create an admin Ed25519 key; its public half goes in mqtt.admin_keys")
    q.add_argument("--out", default="admin.key", help="private key file (mode 0600; never overwritten)")
    q.set_defaults(func=cmd_admin_keygen)
    q = admin_sub.add_parser(
        "send",
        help="sign a command, send it to a device, print its reply",
        description="COMMAND is one of: status; people; revoke NAME; import BUNDLE; reload.",
    )
    q.add_argument(
        "--mqtt",
        required=True,
        metavar="URL",
        help="the broker: mqtt[s]://user@host[:port]; the password from --password-file or $EDGE_MQTT_PASSWORD",
    )
    q.add_argument(
        "--password-file",
        default="",
        metavar="FILE",
        help="a file holding the broker password (one line); keeps it out of the process list",
    )
    q.add_argument("--device-id", required=True, help="the device to command")
    q.add_argument("--admin-key", default=os.environ.get("EDGE_ADMIN_KEY", "admin.key"), help="admin private key")
    q.add_argument("--topic-prefix", default="", help="the device's mqtt.topic_prefix (default edge/<device-id>)")
    q.add_argument("--ca-file", default="", help="mqtts: CA of the broker's certificate")
    q.add_argument("--cert-file", default="", help="mqtts: client certificate")
    q.add_argument("--key-file", default="", help="mqtts: client certificate key")
    q.add_argument(
        "--protocol",
        choices=["auto", "5", "3.1.1"],
        default="auto",
        help="MQTT version (default auto: 5, falling back to 3.1.1)",
    )
    q.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the reply")
    q.add_argument(
        "action",
        metavar="COMMAND",
        choices=["status", "people", "revoke", "import", "reload"],
        help="status, people, revoke, import or reload",
    )
    q.add_argument("arguments", nargs="*", metavar="ARG", help="revoke: the NAME; import: the BUNDLE file")
    q.set_defaults(func=cmd_admin_send)
    _register_fleet(sub, admin_sub, _fleet_broker_options)

    # --- Home Assistant: uninstall (docs/mqtt.md, "Home Assistant") ---
    p = sub.add_parser("mqtt", help="MQTT housekeeping: remove-discovery")
    mqtt_sub = p.add_subparsers(dest="mqtt_command", metavar="ACTION", required=True)
    q = mqtt_sub.add_parser(
        "remove-discovery",
        help="take this device's entities out of Home Assistant (empty retained configs); before an "
        "uninstall or a rename",
    )
    q.add_argument("--config", default=None, help="TOML config (the device's: broker, login, prefixes, outbox)")
    q.add_argument("--device-id", default=None, help="the id to remove (default: the config's device id)")
    q.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the broker")
    q.set_defaults(func=cmd_mqtt_remove_discovery)

    from edge import doctor

    doctor.register(sub)

    return parser


def cmd_mqtt_remove_discovery(args: argparse.Namespace) -> int:
    """Exit 0: every topic cleared; 1: the broker refused some (its ACL); 3: no broker."""
    from edge.config import load_config
    from edge.mqtt.announced import Announced
    from edge.mqtt.client import MqttSettings, MqttSetupError
    from edge.mqtt.removal import remove_discovery, topics_to_clear
    from edge.mqtt.topics import Topics

    config = load_config(args.config)
    m = config.mqtt
    device_id = args.device_id or config.device_id
    try:
        settings = MqttSettings.from_config(m, client_id=f"edge-{device_id}")
    except MqttSetupError as exc:
        logger.error("mqtt remove-discovery: %s: %s", exc.key, exc.detail)
        return 2
    announced = Announced(f"{m.outbox_path}/ha-announced.json")
    topics = Topics.for_device(device_id, m.topic_prefix if not args.device_id else "")
    clear = topics_to_clear(device_id, topics, prefix=m.discovery_prefix, announced=announced)
    try:
        done = remove_discovery(settings, clear, timeout=args.timeout)
    except ConnectionError as exc:
        logger.error("mqtt remove-discovery: %s", exc)
        return 3
    if not done["refused"] and not done["unanswered"]:
        announced.forget()
    _print_json(done)
    if done["refused"]:
        logger.error("mqtt remove-discovery: the broker refused %d topics (its ACL?)", len(done["refused"]))
    return 0 if not done["refused"] and not done["unanswered"] else 1


def _command_name(args: argparse.Namespace) -> str:
    """The command's name for messages: "compare", "vault rebuild", "admin send", …"""
    names = [args.command] + [
        getattr(args, dest)
        for dest in ("keys_command", "vault_command", "admin_command", "console_command", "mqtt_command")
        if getattr(args, dest, None)
    ]
    return " ".join(str(n) for n in names if n)


def _fault(args: argparse.Namespace, exc: Exception) -> int:
    """A fault no command handled, as one error record (and, for the commands that answer in
    JSON, one JSON line on stdout) and an exit status; never a traceback (that is at -vv)."""
    import uuid

    from edge.config import ConfigError
    from edge.errors import INTERNAL_ERROR, EdgeError
    from edge.runtime import ModelError

    command = _command_name(args)
    if isinstance(exc, ModelError):
        status, message, code = EXIT_MODEL_FAULT, f"the models cannot be used: {exc}", INTERNAL_ERROR
    elif isinstance(exc, EdgeError):  # a request or configuration problem a command did not expect
        status, message, code = (2 if isinstance(exc, ConfigError) else 1), exc.message, exc.code
    else:
        status, message, code = EXIT_INTERNAL, f"internal error: {type(exc).__name__}: {exc}", INTERNAL_ERROR
        logger.debug("%s: the traceback of the internal error", command, exc_info=exc)
    if getattr(args, "json_result", False):
        _print_json({"code": code, "message": message, "request_id": uuid.uuid4().hex})
    logger.error("%s: %s", command, message)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(_cli_log_level(args) or logs.DEFAULT_LEVEL)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        logger.error("%s: interrupted", _command_name(args))
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `edge people --json | head -c 10`: whoever read stdout has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a status and a message
        return _fault(args, exc)


if __name__ == "__main__":
    sys.exit(main())
