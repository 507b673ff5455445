"""Door-camera degradations of a photo, deterministic per seed (scripts/eval/conditions.py's
conditions, and the fitting set of scripts/build/fit_degradation.py).

A condition is a name: ``clean``; ``<N>px`` (the photo scaled so that its labelled face is N
pixels wide, pasted into a noisy grey 640×480 frame, sensor noise σ 4, JPEG 90);
``blur<N>`` (N-px linear motion blur at a random angle); ``roll35``; ``backlight`` /
``backlight<P>`` (the face darkened to P % — 35 by default — under a bright background);
``mask`` (a surgical-mask-coloured occluder from just under the nose to the chin);
``lowlight`` (×0.2 exposure, noise σ 5, JPEG 80) / ``dark<P>`` (the same at P %);
``jpeg15``; ``edge<P>`` (the photo cut so that P % of the face's width is outside the frame,
on the left); ``overlap<P>`` (P % of the face's width, on its right, hidden behind another
head — the photo's own face, mirrored, so that no second identity enters the scores).
"""

from __future__ import annotations

import cv2
import numpy as np

FRAME_W, FRAME_H = 640, 480


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _noise(rgb: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(rgb.astype(np.float32) + rng.normal(0, sigma, rgb.shape), 0, 255).astype(np.uint8)


def _crop(rgb: np.ndarray, left: int, top: int, side: int) -> np.ndarray:
    """The side × side square at (left, top), edge pixels repeated where it leaves the photo."""
    h, w = rgb.shape[:2]
    ys = np.clip(np.arange(top, top + side), 0, h - 1)
    xs = np.clip(np.arange(left, left + side), 0, w - 1)
    return rgb[ys][:, xs]


def degrade(rgb: np.ndarray, face, condition: str, seed: int) -> tuple[np.ndarray, tuple[float, float]]:
    """The photo under `condition`, and where the labelled face's centre is in the result."""
    rng = np.random.default_rng(seed)
    h, w = rgb.shape[:2]
    x, y, fw, fh = face.rect
    centre = (x + fw / 2, y + fh / 2)
    if condition == "clean":
        return rgb, centre
    if condition.endswith("px"):
        scale = float(condition[:-2]) / max(fw, 1)
        small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        sh, sw = small.shape[:2]
        frame = _noise(np.full((FRAME_H, FRAME_W, 3), 110, np.uint8), 6, rng)
        ox = int(rng.integers(0, max(1, FRAME_W - sw)))
        oy = int(rng.integers(0, max(1, FRAME_H - sh)))
        frame[oy : oy + sh, ox : ox + sw] = small[: FRAME_H - oy, : FRAME_W - ox]
        frame = _jpeg(_noise(frame, 4, rng), 90)
        return frame, (ox + centre[0] * scale, oy + centre[1] * scale)
    if condition.startswith("blur"):
        n = int(condition[4:])
        kernel = np.zeros((n, n), np.float32)
        kernel[n // 2, :] = 1 / n
        turn = cv2.getRotationMatrix2D(((n - 1) / 2, (n - 1) / 2), float(rng.uniform(0, 180)), 1.0)
        kernel = cv2.warpAffine(kernel, turn, (n, n))
        return cv2.filter2D(rgb, -1, kernel / kernel.sum()), centre
    if condition == "roll35":
        angle = 35.0 if seed % 2 else -35.0
        m = cv2.getRotationMatrix2D(centre, angle, 1.0)
        return cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT), centre
    if condition.startswith("backlight"):
        face_gain = int(condition[9:] or 35) / 100
        yy, xx = np.mgrid[0:h, 0:w]
        inside = (((xx - centre[0]) / (fw * 0.6)) ** 2 + ((yy - centre[1]) / (fh * 0.75)) ** 2) <= 1.0
        soft = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), fw * 0.08)[..., None]
        dark = rgb.astype(np.float32) * face_gain
        bright = np.clip(rgb.astype(np.float32) * 0.6 + 170, 0, 255)
        return np.clip(dark * soft + bright * (1 - soft), 0, 255).astype(np.uint8), centre
    if condition == "mask":
        pts = np.asarray(face.landmarks, np.float64)  # eyes, nose tip, mouth corners
        eyes = (pts[0] + pts[1]) / 2
        nose, mouth = pts[2], (pts[3] + pts[4]) / 2
        down = (mouth - eyes) / max(np.linalg.norm(mouth - eyes), 1e-6)
        across = np.array([-down[1], down[0]])
        half = fw * 0.5
        top = nose + down * (np.linalg.norm(mouth - nose) * 0.15)
        chin = mouth + down * (np.linalg.norm(mouth - eyes) * 0.85)
        poly = np.array([top - across * half * 0.95, top + across * half * 0.95, chin + across * half * 0.55,
                         chin - across * half * 0.55])  # fmt: skip
        out = rgb.copy()
        cv2.fillPoly(out, [np.round(poly).astype(np.int32)], (168, 196, 214))
        return out, centre
    if condition == "lowlight" or condition.startswith("dark"):
        gain = 0.2 if condition == "lowlight" else int(condition[4:]) / 100
        dim = np.clip(rgb.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        return _jpeg(_noise(dim, 5, rng), 80), centre
    if condition.startswith("edge"):
        cut = int(condition[4:]) / 100  # that much of the face's width is left outside the frame
        left = min(w - 1, max(0, int(round(x + cut * fw))))
        return np.ascontiguousarray(rgb[:, left:]), (centre[0] - left, centre[1])
    if condition.startswith("overlap"):
        cover = int(condition[7:]) / 100  # that much of the face's width hidden behind another head
        side = int(round(fw * 1.4))
        head = cv2.flip(
            cv2.resize(_crop(rgb, int(centre[0] - fw * 0.7), int(centre[1] - fh * 0.7), side), (side, side)), 1
        )
        left, top = int(round(x + fw * (1 - cover))), int(round(centre[1] - side / 2 + fh * 0.1))
        yy, xx = np.mgrid[0:side, 0:side]
        oval = ((xx - side / 2) / (side / 2)) ** 2 + ((yy - side / 2) / (side * 0.6)) ** 2 <= 1
        out = rgb.copy()
        x0, y0, x1, y1 = max(0, left), max(0, top), min(w, left + side), min(h, top + side)
        if x1 > x0 and y1 > y0:
            region, keep = out[y0:y1, x0:x1], oval[y0 - top : y1 - top, x0 - left : x1 - left]
            region[keep] = head[y0 - top : y1 - top, x0 - left : x1 - left][keep]
        return out, centre
    if condition == "jpeg15":
        return _jpeg(rgb, 15), centre
    raise ValueError(f"unknown condition {condition!r}")


def nearest(faces, centre: tuple[float, float]):
    """The face whose box centre is nearest `centre`, if that centre lies within its box."""
    best = None
    for f in faces:
        x, y, w, h = f.rect
        d = ((x + w / 2 - centre[0]) ** 2 + (y + h / 2 - centre[1]) ** 2) ** 0.5
        if d <= max(w, h) * 0.5 and (best is None or d < best[0]):
            best = (d, f)
    return None if best is None else best[1]
