#!/usr/bin/env python3
"""Synthetic presentation-attack clips from lfw-dev photos: print, screen, live turn, live still.

    python scripts/build/spoofs.py --out DIR [--lfw ../shared/data/lfw-dev] [--print 150] [--bent 50]
        [--screen 150] [--turn 120] [--still 40] [--seed 0]

Writes ``DIR/<label>/<name>.avi`` (MJPG, 640×480, 15 fps, 2–4 s) and ``DIR/labels.csv`` with
the columns ``clip`` (path relative to DIR), ``label`` (live, print, screen), ``attack_type``
(``print``, ``print_bent``, ``screen``, ``live_turn``, ``live_still``), ``subject``, ``photo``,
``frames``. Every clip is one distinct lfw-dev person (their first photo; people are taken in a
``--seed`` shuffle, kind after kind, so the people depend on the counts), and a clip's randomness
is ``numpy.random.default_rng([seed, kind, index])``: the same command line writes byte-identical
clips. `scripts/eval/liveness_clips.py` reads the folder.

Kinds (every clip: the face ~90–160 px wide, a static background — a heavily blurred other
lfw-dev photo, which may hold a face like a poster in a hallway, or a gradient with
low-frequency noise — and per frame a small exposure change,
defocus, sensor noise and a JPEG round trip at quality 60–90):

``print``       the photo printed on paper (ink contrast, low-frequency albedo, grain, a white
                margin, sometimes a moving specular glare) held as a plane in front of the camera
                and moved along a smooth random 3D trajectory (yaw and pitch within ±25°, roll ±8°,
                translation, ±15 % distance) with hand-held jitter, rendered by the plane's
                homography through a 640×480 pinhole camera (f = 560 px).
``print_bent``  the same on paper bent into a cylinder (sagitta 3–10 % of the width), rendered
                as a 3D mesh: slightly non-planar.
``screen``      the photo on a phone/laptop screen: RGB subpixel stripes (moiré once resampled),
                gamma/contrast shift, blue tint, a dark bezel, a moving soft reflection, then the
                same planar motion.
``live_turn``   a synthetic live head turn: the photo's FaceMesh landmarks with their depth, plus a
                ring of head points around the face (hair, ears; depth extrapolated behind the face)
                and a static outer ring (neck, shoulders, wall), Delaunay-triangulated; the head
                points rotate about a pivot behind the face along a yaw trajectory 0 → ±(12–22)° → 0
                (sometimes back the other way) with a pitch of up to ±8° and some translation,
                are projected orthographically, and every triangle is warped piecewise-affinely
                (nearer triangles over farther ones). Non-planar motion: the nose moves against
                the cheeks.
``live_still``  the same head with jitter only (≤ 1° and ≤ 1.5 px): passive cues must not need motion.

Exits 0; prints how many clips of each kind were written and the generation speed.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # scripts/<purpose>/<name>.py → the checkout
sys.path.insert(0, str(ROOT))

DEFAULT_LFW = ROOT.parent / "shared" / "data" / "lfw-dev"
W, H, FPS = 640, 480, 15
FOCAL = 560.0
KINDS = ("print", "print_bent", "screen", "live_turn", "live_still")
LABEL = {"print": "print", "print_bent": "print", "screen": "screen", "live_turn": "live", "live_still": "live"}
# FaceMesh face oval (silhouette), in order around the face.
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
log = logging.getLogger("spoofs")


@dataclass
class Subject:
    """One photo and its face geometry: FaceMesh landmarks (468, 2) in photo pixels and their depth."""

    name: str
    photo: np.ndarray  # RGB uint8
    landmarks: np.ndarray
    depth: np.ndarray

    @property
    def face_width(self) -> float:
        return float(np.ptp(self.landmarks[:, 0]))

    @property
    def centre(self) -> np.ndarray:
        return self.landmarks.mean(axis=0)


def subject_from_photo(engine, photo: np.ndarray, name: str) -> Subject | None:
    """The largest face of `photo` (RGB) measured by `engine` (`edge.engine.Engine`); None without one."""
    detections = sorted(engine.detect(photo), key=lambda d: d.area, reverse=True)
    if not detections:
        return None
    _, mesh = engine.landmarks(photo, detections[0])
    if mesh is None:
        raise ValueError("the live kinds need FaceMesh landmarks (engine landmarks = 'facemesh')")
    return Subject(name, photo, np.asarray(mesh.landmarks, np.float64), np.asarray(mesh.depth, np.float64))


# --- trajectories -------------------------------------------------------------------------


def smooth(rng: np.random.Generator, n: int, amplitude: float, fps: float = FPS) -> np.ndarray:
    """A smooth random signal of n samples within ±amplitude: three sinusoids of 0.1–0.6 Hz."""
    t = np.arange(n) / fps
    out = np.zeros(n)
    for _ in range(3):
        out += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * rng.uniform(0.1, 0.6) * t + rng.uniform(0, 2 * np.pi))
    peak = np.abs(out).max()
    return out / max(peak, 1e-9) * amplitude * rng.uniform(0.6, 1.0)


def jitter(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """Hand-held tremor: white noise smoothed over ~3 frames."""
    raw = rng.normal(0, sigma, n + 4)
    return np.convolve(raw, np.ones(5) / 5 * math.sqrt(5), mode="valid")[:n]


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = Rz(roll) · Rx(pitch) · Ry(yaw), angles in degrees."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


# --- rendering ----------------------------------------------------------------------------


def triangulate(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles (T, 3) of vertex indices over (N, 2) points (cv2.Subdiv2D)."""
    pts = np.asarray(points, np.float32)
    lo = pts.min(axis=0) - 10
    hi = pts.max(axis=0) + 10
    sub = cv2.Subdiv2D((int(lo[0]), int(lo[1]), int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1))
    index: dict[tuple[float, float], int] = {}
    for i, (x, y) in enumerate(pts):
        key = (float(x), float(y))
        if key not in index:
            index[key] = i
            sub.insert(key)
    tris = []
    for t in sub.getTriangleList().astype(np.float32):
        ids = [index.get((float(t[k]), float(t[k + 1]))) for k in (0, 2, 4)]
        if None not in ids:
            tris.append(ids)
    return np.array(tris, np.int64)


def render_mesh(
    texture: np.ndarray, uv: np.ndarray, xy: np.ndarray, depth: np.ndarray, triangles: np.ndarray
) -> np.ndarray:
    """Piecewise-affine warp of `texture` (h, w, C float32) onto a W×H frame.

    Vertex i is at texture pixel uv[i] and lands on frame pixel xy[i] at `depth[i]` (larger =
    farther). Triangles are painted far to near; those that turned their back (their winding
    flipped) are hidden. Returns the (H, W, C) warped texture, zero outside the mesh.
    """
    src, dst = uv[triangles], xy[triangles]  # (T, 3, 2)

    def signed_area(p):
        e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
        return e1[:, 0] * e2[:, 1] - e2[:, 0] * e1[:, 1]

    a_src, a_dst = signed_area(src), signed_area(dst)
    keep = (np.abs(a_dst) > 1e-3) & (np.sign(a_src) == np.sign(a_dst))
    ids = np.full((H, W), -1, np.int32)
    order = np.argsort(-depth[triangles].mean(axis=1), kind="stable")
    fixed = np.round(dst * 16).astype(np.int32)
    for t in order:
        if keep[t]:
            cv2.fillConvexPoly(ids, fixed[t], int(t), lineType=cv2.LINE_8, shift=4)
    # Per-triangle affine frame → texture: [u v] = M · [x y 1].
    ones = np.ones((len(triangles), 3, 1))
    a = np.concatenate([dst, ones], axis=2)  # (T, 3, 3)
    ok = np.abs(np.linalg.det(a)) > 1e-6
    m = np.zeros((len(triangles), 3, 2))
    m[ok] = np.linalg.solve(a[ok], src[ok])
    ys, xs = np.nonzero(ids >= 0)
    t = ids[ys, xs]
    map_x = np.full((H, W), -1.0, np.float32)
    map_y = np.full((H, W), -1.0, np.float32)
    map_x[ys, xs] = m[t, 0, 0] * xs + m[t, 1, 0] * ys + m[t, 2, 0]
    map_y[ys, xs] = m[t, 0, 1] * xs + m[t, 1, 1] * ys + m[t, 2, 1]
    return cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def composite(background: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """Alpha-composite an (H, W, 4) float32 premultiplied-free layer (RGB, alpha 0–1) over a float32 RGB frame."""
    alpha = cv2.merge([layer[..., 3]] * 3)
    return cv2.add(background, cv2.multiply(cv2.subtract(layer[..., :3], background), alpha))


def background_image(rng: np.random.Generator, other: np.ndarray | None = None) -> np.ndarray:
    """A static W×H float32 background: a heavily blurred other photo, or a gradient with soft noise."""
    if other is not None and rng.random() < 0.5:
        img = cv2.resize(other, (W, H), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(8, 20))
        return img * rng.uniform(0.6, 1.0)
    base = rng.uniform(40, 200, 3)
    slope = rng.uniform(-60, 60, (2, 3))
    gx, gy = np.meshgrid(np.linspace(-0.5, 0.5, W), np.linspace(-0.5, 0.5, H))
    img = base + gx[..., None] * slope[0] + gy[..., None] * slope[1]
    noise = cv2.resize(rng.normal(0, 12, (6, 8, 3)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC)
    return np.clip(img + noise, 0, 255).astype(np.float32)


def camera_finish(frame: np.ndarray, rng: np.random.Generator, noise: float, quality: int) -> np.ndarray:
    """Exposure wobble, defocus, sensor noise and a JPEG round trip: float32 RGB → uint8 RGB."""
    frame = frame * rng.uniform(0.97, 1.03)
    frame = cv2.GaussianBlur(frame, (0, 0), rng.uniform(0.5, 0.9))
    grain = np.empty(frame.shape, np.float32)
    cv2.setRNGSeed(int(rng.integers(1 << 31)))
    cv2.randn(grain, 0.0, float(noise))
    frame = cv2.add(frame, grain)
    out = np.clip(frame, 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


# --- the presentation instruments ---------------------------------------------------------


def print_texture(subject: Subject, rng: np.random.Generator, zoom: float) -> tuple[np.ndarray, np.ndarray]:
    """The photo printed on paper at `zoom` × its pixels: (h, w, 4) float32 RGBA and the face centre in it."""
    photo = subject.photo.astype(np.float32)
    photo = rng.uniform(12, 30) + photo * rng.uniform(0.78, 0.9)  # ink: lifted blacks, dimmer whites
    grey = photo.mean(axis=2, keepdims=True)
    photo = grey + (photo - grey) * rng.uniform(0.75, 0.95)  # ink gamut: less saturated
    size = (round(photo.shape[1] * zoom), round(photo.shape[0] * zoom))
    img = cv2.resize(photo, size, interpolation=cv2.INTER_LINEAR if zoom > 1 else cv2.INTER_AREA)
    margin = int(round(rng.uniform(0.03, 0.1) * size[0]))
    paper = rng.uniform(225, 250) * np.array([1.0, 1.0, rng.uniform(0.94, 1.0)], np.float32)
    page = np.empty((size[1] + 2 * margin, size[0] + 2 * margin, 3), np.float32)
    page[:] = paper
    page[margin : margin + size[1], margin : margin + size[0]] = img
    ph, pw = page.shape[:2]
    albedo = cv2.resize(rng.normal(1.0, 0.05, (5, 5)).astype(np.float32), (pw, ph), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, rng.uniform(2, 6), (ph, pw)).astype(np.float32)
    page = page * albedo[..., None] + grain[..., None]
    rgba = np.concatenate([np.clip(page, 0, 255), np.ones((ph, pw, 1), np.float32)], axis=2)
    return rgba, subject.centre * zoom + margin


def screen_texture(subject: Subject, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """The photo on a screen: (h, w, 4) float32 RGBA at 3 texels per display pixel, the face centre in
    it, and texels per photo pixel."""
    display = rng.uniform(0.9, 1.4)  # display pixels per photo pixel
    size = (round(subject.photo.shape[1] * display), round(subject.photo.shape[0] * display))
    img = cv2.resize(subject.photo, size, interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    img = img ** rng.uniform(0.75, 1.25)  # gamma
    img = 0.5 + (img - 0.5) * rng.uniform(0.75, 1.0)  # contrast
    img = img * np.array([rng.uniform(0.85, 0.95), rng.uniform(0.95, 1.0), 1.0], np.float32)  # blue tint
    img = np.clip(img * 255 * rng.uniform(1.0, 1.15) + rng.uniform(5, 20), 0, 255)  # emissive, black level
    # Subpixels: each display pixel is three vertical R, G, B stripes over a darker row gap.
    big = np.repeat(np.repeat(img, 3, axis=0), 3, axis=1)
    stripes = np.zeros((3, 3, 3), np.float32)
    for c in range(3):
        stripes[:, c, c] = 1.0
    stripes[2] *= rng.uniform(0.5, 0.8)
    tile = np.tile(stripes, (size[1], size[0], 1))
    panel = big * tile / tile.reshape(-1, 3).mean(axis=0)  # keep the mean brightness of the display
    bezel = int(round(rng.uniform(0.04, 0.12) * panel.shape[1]))
    ph, pw = panel.shape[0] + 2 * bezel, panel.shape[1] + 2 * bezel
    rgb = np.empty((ph, pw, 3), np.float32)
    rgb[:] = rng.uniform(10, 45)
    rgb[bezel : bezel + panel.shape[0], bezel : bezel + panel.shape[1]] = panel
    rgba = np.concatenate([rgb, np.ones((ph, pw, 1), np.float32)], axis=2)  # unclipped: the blur averages the stripes
    return rgba, subject.centre * display * 3 + bezel, display * 3


def glare_blob(shape: tuple[int, int], centre: tuple[float, float], radius: float, strength: float) -> np.ndarray:
    """An additive soft blob (h, w, 1) float32."""
    h, w = shape
    yy, xx = np.ogrid[:h, :w]
    d2 = ((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (radius * radius)
    return (strength * np.exp(-d2)).astype(np.float32)[..., None]


class PlanarRig:
    """A print (flat or bent) or a screen, ready to be rendered at any pose: `frame(...)`.

    Its randomness (texture, zoom, size, bend, glare, reflection) is drawn here, in the order
    `planar_clip` always drew it, so clips stay byte-identical for a seed."""

    def __init__(self, subject: Subject, kind: str, rng: np.random.Generator, background: np.ndarray) -> None:
        self.kind, self.background = kind, background
        self.target = target = rng.uniform(90, 160)  # face width in the frame, px
        if kind == "screen":
            texture, face, zoom = screen_texture(subject, rng)
        else:
            zoom = rng.uniform(1.2, 2.0)
            texture, face = print_texture(subject, rng, zoom)
        self.face_w = face_w = subject.face_width * zoom
        th, tw = texture.shape[:2]
        if kind == "screen":  # the lens and sensor integrate the subpixels: what survives is a faint moiré
            texture = cv2.GaussianBlur(texture, (0, 0), rng.uniform(0.35, 0.5) * face_w / target)
        self.texture, self.face, self.tw, self.th = texture, face, tw, th
        self.depth = FOCAL * face_w / target  # distance (texture units) at which the face is `target` px wide
        self.rng = rng  # the trajectories come next, drawn by the caller

    def finish_setup(self) -> None:
        """Draw the rest (after the caller's trajectories, as `planar_clip` always did)."""
        rng, kind, tw, th, face = self.rng, self.kind, self.tw, self.th, self.face
        self.bend = rng.uniform(0.03, 0.10) * tw if kind == "print_bent" else 0.0
        self.glare = kind == "print" and rng.random() < 0.5 or kind == "print_bent" and rng.random() < 0.3
        self.glare_strength, self.glare_radius = rng.uniform(40, 110), rng.uniform(0.15, 0.35) * tw
        self.reflect_strength = rng.uniform(10, 40)
        if self.bend:
            gu, gv = np.meshgrid(np.linspace(0, tw - 1, 13), np.linspace(0, th - 1, 13))
            self.uv = np.stack([gu.ravel(), gv.ravel()], axis=1)
            self.triangles = triangulate(self.uv)
            # A cylinder about the vertical axis: arc length along u, sagitta `bend` at the edges.
            half = tw / 2
            radius = (half * half + self.bend * self.bend) / (2 * self.bend)
            phi = (self.uv[:, 0] - face[0]) / radius
            self.plane = np.stack([radius * np.sin(phi), self.uv[:, 1] - face[1], radius * (1 - np.cos(phi))], axis=1)

    def frame(self, yaw: float, pitch: float, roll: float, cx: float, cy: float, z: float) -> np.ndarray:
        """The presentation at this pose (degrees; the face centre at (cx, cy) px, distance z): float32 RGB."""
        k = np.array([[FOCAL, 0, W / 2], [0, FOCAL, H / 2], [0, 0, 1]])
        r = rotation(yaw, pitch, roll)
        t = np.array([(cx - W / 2) * z / FOCAL, (cy - H / 2) * z / FOCAL, z])
        centred = np.array([[1, 0, -self.face[0]], [0, 1, -self.face[1]], [0, 0, 1]])
        homography = k @ np.column_stack([r[:, 0], r[:, 1], t]) @ centred
        if self.bend:
            cam = self.plane @ r.T + t
            xy = cam[:, :2] / cam[:, 2:3] * FOCAL + [W / 2, H / 2]
            layer = render_mesh(self.texture, self.uv, xy, cam[:, 2], self.triangles)
        else:
            layer = cv2.warpPerspective(
                self.texture, homography, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
            )
        tw, th = self.tw, self.th
        if self.kind == "screen" or self.glare:
            if self.kind == "screen":  # a window reflected in the glass, sliding as the screen turns
                spot = (tw * (0.5 + yaw / 40), th * (0.3 + pitch / 50))
                radius, strength = 0.6 * tw, self.reflect_strength
            else:  # a specular highlight of a ceiling light on the paper
                spot = (tw * (0.5 - yaw / 30), th * (0.4 - pitch / 30))
                radius, strength = self.glare_radius, self.glare_strength
            at = cv2.perspectiveTransform(np.array([[spot]], np.float64), homography)[0, 0]
            blob = glare_blob((H, W), (at[0], at[1]), radius * self.target / self.face_w, strength)
            layer[..., :3] = np.minimum(layer[..., :3] + blob * layer[..., 3:4], 255)
        return composite(self.background, layer)


def planar_clip(subject: Subject, kind: str, rng: np.random.Generator, n: int, background: np.ndarray) -> list:
    """A print (flat or bent) or a screen moved in 3D in front of the camera: n float32 RGB frames."""
    rig = PlanarRig(subject, kind, rng, background)
    target = rig.target
    yaw = smooth(rng, n, 25) + jitter(rng, n, 0.4)
    pitch = smooth(rng, n, 25) + jitter(rng, n, 0.4)
    roll = smooth(rng, n, 8) + jitter(rng, n, 0.3)
    room_x, room_y = max(W / 2 - target, 10), max(H / 2 - target, 10)
    cx = W / 2 + rng.uniform(-0.4, 0.4) * room_x + smooth(rng, n, 0.5 * room_x) + jitter(rng, n, 0.7)
    cy = H / 2 + rng.uniform(-0.3, 0.3) * room_y + smooth(rng, n, 0.5 * room_y) + jitter(rng, n, 0.7)
    z = rig.depth * (1 + smooth(rng, n, 0.15))
    rig.finish_setup()
    return [rig.frame(yaw[i], pitch[i], roll[i], cx[i], cy[i], z[i]) for i in range(n)]


def head_model(subject: Subject) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """3D vertices (N, 3) in photo pixels (z: depth, larger = farther), the texture (h, w, 4) with
    a feathered head-and-shoulders alpha, the triangles, and how many leading vertices move with the head."""
    pts, z = subject.landmarks, subject.depth
    centre, fw = subject.centre, subject.face_width
    oval = np.array(FACE_OVAL)
    # Ring 1 (hair, ears, jaw): the oval pushed out from the centre, behind it; moves with the head.
    ring1 = centre + (pts[oval] - centre) * 1.3
    ring1_z = z[oval] + 0.25 * fw
    # Ring 2 (neck, shoulders, wall) and the photo's border: static.
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    ring = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    ring2 = centre + ring * [1.5 * fw, 1.8 * fw]
    border = centre + ring[::2] * [2.2 * fw, 2.5 * fw]
    ph, pw = subject.photo.shape[:2]
    moving = np.concatenate([pts, ring1])
    static = np.concatenate([ring2, border])
    vertices = np.concatenate(
        [
            np.column_stack([moving, np.concatenate([z, ring1_z])]),
            np.column_stack([static, np.full(len(static), z.max() + 0.6 * fw)]),
        ]
    )
    triangles = triangulate(vertices[:, :2])
    # Alpha: a feathered ellipse around the head and shoulders (the photo's own background beyond it fades out).
    alpha = np.zeros((ph, pw), np.float32)
    axes = (int(0.95 * fw), int(1.25 * fw))
    cv2.ellipse(alpha, (int(centre[0]), int(centre[1] + 0.15 * fw)), axes, 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 0.12 * fw)
    inside = np.zeros((ph, pw), np.float32)  # and fading out before the photo's own edges
    edge = max(2, int(0.06 * min(ph, pw)))
    inside[2 * edge : ph - 2 * edge, 2 * edge : pw - 2 * edge] = 1.0
    alpha *= cv2.GaussianBlur(inside, (0, 0), edge)
    texture = np.concatenate([subject.photo.astype(np.float32), alpha[..., None]], axis=2)
    return vertices, texture, triangles, len(moving)


class HeadRig:
    """A synthetic live head (`head_model`) `target` px wide at (ox, oy), ready to be rendered at
    any pose: `frame(yaw, pitch, roll, dx, dy, grow)`."""

    def __init__(self, subject: Subject, target: float, ox: float, oy: float, background: np.ndarray) -> None:
        self.vertices, self.texture, self.triangles, self.moving = head_model(subject)
        fw = subject.face_width
        self.scale, self.ox, self.oy, self.background = target / fw, ox, oy, background
        self.centre = subject.centre
        self.pivot = np.array([self.centre[0], self.centre[1] + 0.2 * fw, np.median(subject.depth) + 0.5 * fw])

    def frame(
        self, yaw: float, pitch: float, roll: float, dx: float = 0.0, dy: float = 0.0, grow: float = 1.0
    ) -> np.ndarray:
        """The head turned by (yaw, pitch, roll) degrees, moved (dx, dy) px and scaled `grow`: float32 RGB."""
        r = rotation(yaw, pitch, roll)
        p = self.vertices.copy()
        p[: self.moving] = (self.vertices[: self.moving] - self.pivot) @ r.T + self.pivot
        xy = (p[:, :2] - self.centre) * self.scale * grow + [self.ox + dx, self.oy + dy]
        layer = render_mesh(self.texture, self.vertices[:, :2], xy, p[:, 2], self.triangles)
        return composite(self.background, layer)


def head_rig(subject: Subject, rng: np.random.Generator, background: np.ndarray, target: float) -> HeadRig:
    """A `HeadRig` placed at random in the frame (as `live_clip` places it)."""
    room_x, room_y = max(W / 2 - 1.3 * target, 10), max(H / 2 - 1.3 * target, 10)
    ox = W / 2 + rng.uniform(-0.5, 0.5) * room_x
    oy = H / 2 + rng.uniform(-0.4, 0.4) * room_y
    return HeadRig(subject, target, ox, oy, background)


def live_clip(subject: Subject, kind: str, rng: np.random.Generator, n: int, background: np.ndarray) -> list:
    """A synthetic live head (turning, or still with jitter): n float32 RGB frames."""
    target = rng.uniform(90, 160)
    if kind == "live_turn":
        peak = rng.uniform(12, 22) * rng.choice([-1, 1])
        s = np.linspace(0, 1, n)
        if rng.random() < 0.5:  # 0 → peak → 0
            yaw = peak * np.sin(np.pi * s) ** 2
        else:  # 0 → peak → -peak·k → 0
            yaw = peak * np.sin(2 * np.pi * s) * rng.uniform(0.6, 1.0)
        pitch = smooth(rng, n, rng.uniform(0, 8))
        roll = smooth(rng, n, 3)
        shift = 0.25 * target
        dx, dy = smooth(rng, n, shift), smooth(rng, n, 0.5 * shift)
        grow = 1 + smooth(rng, n, 0.06)
    else:
        yaw, pitch, roll = (jitter(rng, n, 0.35) for _ in range(3))
        dx, dy = jitter(rng, n, 0.5), jitter(rng, n, 0.5)
        grow = 1 + jitter(rng, n, 0.002)
    rig = head_rig(subject, rng, background, target)
    return [rig.frame(yaw[i], pitch[i], roll[i], dx[i], dy[i], grow[i]) for i in range(n)]


def make_clip(
    subject: Subject, kind: str, rng: np.random.Generator, other: np.ndarray | None = None, frames: int | None = None
) -> list[np.ndarray]:
    """One clip of `kind` (see KINDS) as uint8 RGB W×H frames; `other`: a photo to blur into the background."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    n = frames or int(rng.integers(2 * FPS, 4 * FPS + 1))
    background = background_image(rng, other)
    if kind.startswith("live"):
        raw = live_clip(subject, kind, rng, n, background)
    else:
        raw = planar_clip(subject, kind, rng, n, background)
    noise, quality = rng.uniform(2, 6), int(rng.integers(60, 91))
    return [camera_finish(f, rng, noise, quality) for f in raw]


def write_clip(path: Path, frames: list[np.ndarray]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()
    return path


def clip_rng(seed: int, kind: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, KINDS.index(kind), index])


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def generate(engine, lfw: Path, out: Path, counts: dict[str, int], seed: int = 0) -> list[dict]:
    """Write counts[kind] clips of each kind into `out` (one distinct lfw-dev person a clip) and labels.csv."""
    with open(lfw / "labels.csv", newline="") as f:
        first: dict[str, str] = {}
        for row in csv.DictReader(f):
            first.setdefault(row["identity"], row["image"])
    people = sorted(first)
    np.random.default_rng(seed).shuffle(people)
    rows, at, start = [], 0, time.perf_counter()
    frames_total = 0
    for kind in KINDS:
        made = 0
        while made < counts.get(kind, 0) and at < len(people):
            person = people[at]
            at += 1
            subject = subject_from_photo(engine, read_rgb(lfw / first[person]), person)
            if subject is None or subject.face_width < 40:
                continue
            rng = clip_rng(seed, kind, made)
            other = read_rgb(lfw / first[people[(at * 7919) % len(people)]])
            frames = make_clip(subject, kind, rng, other)
            name = f"{kind}_{made:04d}_{person}.avi"
            label = LABEL[kind]
            write_clip(out / label / name, frames)
            rows.append(
                {
                    "clip": f"{label}/{name}",
                    "label": label,
                    "attack_type": kind,
                    "subject": person,
                    "photo": first[person],
                    "frames": len(frames),
                }
            )
            frames_total += len(frames)
            made += 1
            if len(rows) % 25 == 0:
                log.info("%d clips, %.0f s", len(rows), time.perf_counter() - start)
    write_labels(out, rows)
    elapsed = time.perf_counter() - start
    per_frame = 1000 * elapsed / max(frames_total, 1)
    print(f"{len(rows)} clips, {frames_total} frames in {elapsed:.0f} s ({per_frame:.1f} ms a frame)")
    return rows


def write_labels(out: Path, rows: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["clip", "label", "attack_type", "subject", "photo", "frames"])
        w.writeheader()
        w.writerows(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="output folder (outside the checkout)")
    ap.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    ap.add_argument("--print", dest="n_print", type=int, default=150, help="flat print clips")
    ap.add_argument("--bent", type=int, default=50, help="bent print clips")
    ap.add_argument("--screen", type=int, default=150)
    ap.add_argument("--turn", type=int, default=120, help="live head-turn clips")
    ap.add_argument("--still", type=int, default=40, help="live still clips")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.out.resolve().is_relative_to(ROOT):
        ap.error("--out must be outside the checkout (no photos in the repository)")
    from edge.app import engine_from_config
    from edge.config import Config

    engine = engine_from_config(Config())
    counts = {"print": args.n_print, "print_bent": args.bent, "screen": args.screen,
              "live_turn": args.turn, "live_still": args.still}  # fmt: skip
    rows = generate(engine, args.lfw, args.out, counts, args.seed)
    for kind in KINDS:
        print(f"{kind:<11} {sum(r['attack_type'] == kind for r in rows):>5} clips")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
