"""models/README.md, written from the same figures as models/manifest.json."""

from __future__ import annotations

from pathlib import Path


def _fmt(v, digits=4):
    return "–" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))


def _timing(speed: dict, key: str, ref: str) -> str:
    """Table cells: ms of `key` in each runtime, with its ratio to `ref`."""
    return " | ".join(f"{v[key]:.2f} ({v[key] / v[ref]:.2f})" for v in speed.values())


def _compact_note(models: dict) -> str:
    """What the README says of SFace's compact variant, when it is the one shipped."""
    info = next((m for m in models.values() if m["variant"] == "compact"), None)
    if info is None:
        return ""
    fit = info["head_factorisation"]
    return (
        f"`{info['file']}` is SFace's compact variant, made for the appliance's memory budget "
        f"(`scripts/build/modelkit/compact.py`): its {fit['head_weights_before']:,}-weight head is factorised to "
        f"rank {fit['rank']} ({fit['head_weights_after']:,} weights: a 1x1 convolution and a fully-connected layer) "
        "by a whitened SVD fitted to the head's input on the calibration crops; the large convolutions and the "
        "fully-connected layer have int8 weights with activations quantized on the fly (dynamic range), the rest "
        "float16 weights. XNNPACK keeps those int8 where it expands float16 weights to float32, so in LiteRT "
        "`edge run --profile sface` peaks at ~198.5 MB resident instead of ~242 MB (`scripts/bench/bench_loop.py`; "
        "not measured by this build), and SFace runs faster than float; in tflite-runtime 2.14, whose built-in "
        "kernels run the int8 layers, it is slower than float (see the table). "
    )


def _shipped_section(models: dict) -> list[str]:
    lines = [
        "## Shipped files",
        "",
        "| key | file | role | variant | default | bytes | source | licence |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, m in models.items():
        src = m["source"]
        lines.append(
            f"| `{key}` | `{m['file']}` | {m['role']} | {m['variant']} | {'yes' if m['default'] else ''} | "
            f"{m['bytes']:,} | {src['registry']} `{src['package']}` {src['version']} `{src['file']}` | {m['license']} |"
        )
    return lines + [""]


def _inputs_section(models: dict) -> list[str]:
    lines = ["## Inputs", ""]
    seen = set()
    for m in models.values():
        if m["family"] in seen:
            continue
        seen.add(m["family"])
        i = m["input"]
        outs = ", ".join(f"`{o['name']}` {o['shape']}" for o in m["outputs"])
        lines.append(
            f"- **{m['family']}** ({m['what']}): {i['shape']} {i['layout']} {i['colour']} {i['dtype']}, "
            f"{i['normalisation']}; {i['crop']}. Outputs: {outs}."
        )
    return lines + [""]


LIVENESS_HEADING = "## Liveness: the converted model against its source"


def _liveness_section(models: dict) -> list[str]:
    """From the manifest alone (the liveness step also runs by itself: `--only fr_liveness`)."""
    found = [(k, m) for k, m in models.items() if m["role"] == "liveness"]
    if not found:
        return []
    lines = [LIVENESS_HEADING, ""]
    for key, m in found:
        p, src = m["parity"], m["source"]
        f16 = p["float16_candidate_not_shipped"]
        d = p["live_probability_lfw_dev"]
        q = d["quantiles"]
        ms = ", ".join(f"{rt} {v:.2f} ms" for rt, v in m["ms_per_inference_single_thread"].items())
        ms16 = ", ".join(f"{rt} {v:.2f} ms" for rt, v in f16["ms_per_inference_single_thread"].items())
        lines += [
            f"`{m['file']}` (`{key}`): {src['package']} {src['version']} `{src['file']}` (sha256 "
            f"`{src['file_sha256']}`), translated op by op to float32 (`scripts/build/modelkit/convert.py`; "
            f"max |Δlogit| {m['conversion_max_abs_diff_to_source']:.1e} on a random input). Licence: {m['license']}.",
            "",
            f"- Output: {m['output_meaning']}.",
            f"- Against onnxruntime on {p['n']} real face crops ({p['crops']}): max |Δp| "
            f"{p['max_abs_diff_probability']:.2e}, mean of the per-crop max {p['mean_abs_diff_probability']:.2e}.",
            f"- Float16-weight candidate, not shipped: max |Δp| {f16['max_abs_diff_probability']:.2e}, "
            f"{f16['bytes']:,} bytes, {ms16}; it saves under 1 MB of disk and nothing else (XNNPACK expands "
            "float16 weights to float32 at load).",
            f"- Single thread: {ms} per crop.",
            f"- p(live) on those {d['crops']} lfw-dev faces (photographs of live people -- themselves photos, so "
            f"not a claim either way): median {q['0.5']}, quartiles {q['0.25']} / {q['0.75']}, 5 % {q['0.05']}, "
            f"1 % {q['0.01']}, min {d['min']}; above 0.5: {100 * d['share_above_0.5']:.1f} %, above 0.9: "
            f"{100 * d['share_above_0.9']:.1f} %; argmax class counts {d['argmax_class_counts']}.",
            "",
        ]
    return lines


EYES_HEADING = "## Eyes: the blink measurement on labelled photos"


def _eyes_section(models: dict) -> list[str]:
    """From the manifest alone (the step also runs by itself: `--only iris_landmark`)."""
    found = [(k, m) for k, m in models.items() if m["role"] == "eye_landmarks"]
    if not found:
        return []
    lines = [EYES_HEADING, ""]
    for key, m in found:
        b, src = m["blink_measurement"], m["source"]
        c = b["counts"]
        ms = ", ".join(
            f"{rt} {v:.2f} ms per eye (FaceMesh {m['ms_face_mesh_same_run'][rt]:.2f} ms per face in the same run)"
            for rt, v in m["ms_per_inference_single_thread"].items()
        )
        o, cl = b["open_min_q1_median_q3_max"], b["closed_min_q1_median_q3_max"]
        lines += [
            f"`{m['file']}` (`{key}`): {src['package']} {src['version']} `{src['file']}` (sha256 "
            f"`{src['file_sha256']}`), as shipped. Licence: {m['license']}.",
            "",
            f"- Output: {m['output_meaning']}.",
            f"- `{b['measurement']}` (edge/vision/blink.py) on {b['faces']} labelled lfw-dev faces ({b['labels']}: "
            f"{c['open']} open, {c['closed']} closed, {c['half']} half, {c['unclear']} unclear; "
            f"{b['no_face']} without a face): closed against open AUC {b['auc_closed_vs_open']:.3f}, EER "
            f"{100 * b['eer_closed_vs_open']:.1f} % at {b['eer_threshold']}; closed against half AUC "
            f"{b['auc_closed_vs_half']:.3f}. Open: median {o[2]} (quartiles {o[1]} / {o[3]}); closed: median "
            f"{cl[2]} ({cl[1]} / {cl[3]}); half: median {b['half_median']}.",
            f"- Selection: {b['selection']}.",
            f"- Single thread: {ms}; a face is two eyes.",
            "",
        ]
    return lines


def update_readme(out: Path, manifest: dict) -> None:
    """Rewrite the sections that come from the manifest alone (shipped files, inputs, liveness, eyes),
    keeping the measured sections of the last full build as they are."""
    models = manifest["models"]
    text = (out / "README.md").read_text().splitlines()
    head, sections, current = [], {}, None
    order = []
    for line in text:
        if line.startswith("## "):
            current = line
            order.append(line)
            sections[line] = []
        (sections[current] if current else head).append(line)
    fresh = {
        "## Shipped files": _shipped_section(models),
        "## Inputs": _inputs_section(models),
    }
    own_steps = _liveness_section(models) + _eyes_section(models)
    lines = list(head)
    for heading in order:
        if heading in (LIVENESS_HEADING, EYES_HEADING):
            continue
        lines += fresh.get(heading, sections[heading])
        if heading == "## Inputs":
            lines += own_steps
    (out / "README.md").write_text("\n".join(lines).rstrip("\n") + "\n")


def write_readme(out: Path, manifest: dict, quality: dict, speed: dict) -> None:
    models = manifest["models"]
    runtimes = list(speed)
    lines = [
        "# Models",
        "",
        "Built by `python scripts/build/build_models.py` from registry packages alone; every figure below was",
        "measured by that build on lfw-dev (see `manifest.json` → `evaluation` for the protocol).",
        "Do not edit by hand: rebuild. `edge models` verifies the sha256 of each file against the manifest.",
        "",
    ]
    lines += _shipped_section(models)
    lines += _inputs_section(models)
    lines += _liveness_section(models)
    lines += _eyes_section(models)
    lines += [
        "",
        "## Embedders: every variant measured against its float32 source",
        "",
        "| variant | cosine to float mean / min | 10-fold pair accuracy | TAR at FAR 1e-4 | "
        + " | ".join(f"ms/face {rt} (x float)" for rt in runtimes)
        + " |",
        "|---|---|---|---|" + "---|" * len(runtimes),
    ]
    for key, q in quality.items():
        if "cosine_to_float_mean" not in q:
            continue
        family = key.rsplit("_", 1)[0]
        ref = f"{family}_float32"
        timing = _timing(speed, key, ref)
        lines.append(
            f"| `{key}` | {q['cosine_to_float_mean']:.4f} / {q['cosine_to_float_min']:.4f} | "
            f"{100 * q['pair_accuracy_10fold']:.2f} % ± {100 * q['pair_accuracy_10fold_std']:.2f} | "
            f"{100 * q['tar_at_far_1e-04']:.2f} % | {timing} |"
        )
    first = next(q for q in quality.values() if "crops" in q)
    lines += [
        "",
        f"Crops: {first['crops']} aligned lfw-dev photos from pairs.csv; pairs: {first['pairs']} "
        f"({first['pairs_missed_face']} with a missed face, counted as errors).",
    ]
    against_source = {k: q for k, q in quality.items() if "cosine_to_source_opencv_mean" in q}
    if against_source:
        lines += [
            "",
            "Against the source model itself, run by OpenCV (`cv2.dnn.readNetFromONNX`) on the same crops:",
            "",
            "| variant | cosine to source mean / min |",
            "|---|---|",
        ]
        for key, q in against_source.items():
            lines.append(
                f"| `{key}` | {q['cosine_to_source_opencv_mean']:.6f} / {q['cosine_to_source_opencv_min']:.6f} |"
            )
    lines += [
        "",
        "## Detectors: int8-weight candidate against float16",
        "",
        "| candidate | photos | mean / min IoU of the top box | same found/not-found | "
        + " | ".join(f"ms {rt} (x float16)" for rt in runtimes)
        + " | shipped |",
        "|---|---|---|---|" + "---|" * len(runtimes) + "---|",
    ]
    for key, q in quality.items():
        if "mean_iou_top_box_vs_float" not in q:
            continue
        family = key.rsplit("_", 1)[0]
        ref = f"{family}_float16"
        timing = _timing(speed, key, ref)
        shipped = "int8 weights" if models[family]["variant"] == "int8_weights" else "float16 (candidate rejected)"
        lines.append(
            f"| `{key}` | {q['photos']} | "
            f"{_fmt(q['mean_iou_top_box_vs_float'])} / {_fmt(q['min_iou_top_box_vs_float'])} | "
            f"{q['found_same_as_float']:.4f} | {timing} | {shipped} |"
        )
    study = quality.get("face_mesh_float16", {}).get("alignment_study")
    if study:
        lines += [
            "",
            "## Landmarks for alignment: BlazeFace 4 points against FaceMesh 5 points (float embedders)",
            "",
            "| embedder, alignment | pair accuracy | TAR at FAR 1e-3 | TAR at FAR 1e-4 |",
            "|---|---|---|---|",
        ]
        for label, q in study.items():
            lines.append(
                f"| {label} | {100 * q['pair_accuracy_10fold']:.2f} % | {100 * q['tar_at_far_1e-03']:.2f} % | "
                f"{100 * q['tar_at_far_1e-04']:.2f} % |"
            )
        ms = quality["face_mesh_float16"]["ms_litert"]
        lines += ["", f"FaceMesh costs {ms:.2f} ms per face (LiteRT, one thread)."]
    r = manifest["rules"]
    lines += [
        "",
        "## How defaults are chosen",
        "",
        f"An embedder's default is its smallest quantized variant with cosine to float mean ≥ {r['cosine_mean_min']} "
        f"and min ≥ {r['cosine_min_min']}, pair accuracy within {100 * r['accuracy_tolerance']:.1f} points of float, "
        f"and LiteRT time ≤ {r['not_slower_ratio']}× float. A detector is quantized only when its top box keeps a mean "
        f"IoU ≥ {r['detector_iou_min']} against float16, finds a face on the same photos (agreement ≥ "
        f"{r['detector_agreement_min']}) and is not slower; otherwise float16 ships. The full-int8 "
        "embedders (`*_int8`) are for int8-only accelerators: on CPUs they are less accurate than the default, and "
        "in tflite-runtime 2.14 many times slower (see the table).",
        "",
        "Conversion notes: MobileFaceNet is rebuilt at batch 1 with real PRELU ops (its PReLU was spelled "
        "relu(x) + a·(x − |x|)); fr_feature.onnx is translated op by op (stride-2 convolutions get an explicit PAD "
        "because ONNX pads symmetrically). SFace's int8 block-quantized ONNX is translated the same way after "
        "dequantizing its weights to float32, folding its BatchNormalizations into the neighbouring convolutions, "
        "turning its final flatten + fully-connected layer into a 7×7 convolution and taking its in-graph input "
        "normalisation out (the manifest states it, as for the others); only its default ships. "
        + _compact_note(models)
        + "Every rebuilt graph is checked against its source; every op is "
        "written at version 1 so tflite-runtime 2.14 loads them (`scripts/build/check_runtimes.py`).",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines))
