"""Camera frames for NavEnv: sky panorama, textured ground, then objects far to near.

A level pinhole camera (square pixels, horizon on the middle row) looks along the drone's
heading. Per frame the work is vectorised: the sky is one gather from a 360° panorama, the
ground one `cv2.remap` of a wrapping texture through precomputed per-row ground distances, and
the objects a few cv2 primitives each, with sub-pixel coordinates (`shift` bits) so far objects
move smoothly. Haze blends everything toward the fog colour with distance.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from edgeliquid.sim.look import TARGET_COLOR, TEXEL, Look
from edgeliquid.sim.scene import DOME, POLE_SPHERE, TARGET_RADIUS, Scene

SUB = 4  # fractional bits of cv2 coordinates
ONE = 1 << SUB
NEAR = 0.2  # m: objects nearer than this (or behind) are not drawn


class Renderer:
    """Renders a `Scene` with its `Look` from a pose (x, y, z, yaw) at a fixed image size."""

    def __init__(self, height: int, width: int, fov_deg: float = 90.0) -> None:
        self.height, self.width = height, width
        self.focal = (width / 2) / math.tan(math.radians(fov_deg) / 2)
        self.horizon = height // 2  # rows above are sky, rows from here on are ground
        self.cy = height / 2
        rows = np.arange(self.horizon, height) + 0.5 - self.cy
        cols = (np.arange(width) + 0.5 - width / 2) / self.focal
        self.row_distance = (self.focal / rows).astype(np.float32)  # forward m per m altitude
        self.ground_a = np.repeat(self.row_distance[:, None], width, axis=1)
        self.ground_b = (self.row_distance[:, None] * cols[None, :]).astype(np.float32)
        self._ones = np.ones_like(self.ground_a)
        self.panorama_width = math.ceil(2 * math.pi * self.focal)
        # panorama column by azimuth; -0.5 as cv2's nearest-neighbour remap rounds
        columns = np.arctan(cols) * (self.panorama_width / (2 * math.pi)) - 0.5
        self.sky_columns = np.repeat(columns[None, :], self.horizon, axis=0).astype(np.float32)
        rows_f = np.arange(self.horizon, dtype=np.float32)[:, None]
        self.sky_rows = np.repeat(rows_f, width, axis=1)
        self.tan_half = math.tan(math.radians(fov_deg) / 2)

    def render(self, pose: np.ndarray, look: Look, scene: Scene) -> np.ndarray:
        """One uint8 [H, W, 3] RGB frame."""
        x, y, z, yaw = (float(v) for v in pose[:4])
        img = np.empty((self.height, self.width, 3), np.uint8)
        turn = np.float32(math.remainder(yaw, 2 * math.pi) * self.panorama_width / (2 * math.pi))
        img[: self.horizon] = cv2.remap(
            look.panorama, self.sky_columns + turn, self.sky_rows, cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_WRAP,
        )  # fmt: skip
        img[self.horizon :] = self._ground(x, y, max(-z, 0.05), yaw, look)
        self._objects(img, (x, y, z, yaw), look, scene)
        return img

    def _ground(self, x: float, y: float, alt: float, yaw: float, look: Look) -> np.ndarray:
        c, s = math.cos(yaw), math.sin(yaw)
        scale = alt / TEXEL
        map_row = (self.ground_a * (scale * c) - self.ground_b * (scale * s)) + x / TEXEL
        map_col = (self.ground_a * (scale * s) + self.ground_b * (scale * c)) + y / TEXEL
        far = int(np.searchsorted(-self.row_distance * alt, -12.0))  # first row nearer than 12 m
        n = len(self.row_distance)
        out = np.empty((n, self.width, 4), np.uint8)  # RGBA: 4-channel remap is faster
        for texture, lo, hi in ((look.texture_far, 0, far), (look.texture, far, n)):
            if hi > lo:
                out[lo:hi] = cv2.remap(
                    texture, map_col[lo:hi], map_row[lo:hi], cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_WRAP,
                )  # fmt: skip
        haze = 1.0 - np.exp(self.row_distance * (-alt / look.palette.fog_distance))
        weight = self._ones * haze.astype(np.float32)[:, None]
        fog = np.empty((n, self.width, 3), np.uint8)
        fog[:] = look.fog.astype(np.uint8)
        return cv2.blendLinear(fog, cv2.cvtColor(out, cv2.COLOR_RGBA2RGB), weight, 1.0 - weight)

    def _objects(self, img: np.ndarray, pose: tuple, look: Look, scene: Scene) -> None:
        """Trees, distractors and the target by depth, farthest first (painter's algorithm)."""
        x, y, z, yaw = pose
        camera = (x, y, -z, math.cos(yaw), math.sin(yaw))
        items = self._trees(scene.trees, look, camera)
        items += self._props(scene, look, camera)
        items.sort(key=lambda item: -item[0])
        for _, paint, args in items:
            paint(img, *args)

    def _project(self, xy: np.ndarray, extent: np.ndarray, camera: tuple) -> tuple:
        """Indices of objects in view, and depth / lateral offset (m) of every object."""
        x, y, _, c, s = camera
        dx, dy = xy[:, 0] - x, xy[:, 1] - y
        depth = dx * c + dy * s
        lateral = dy * c - dx * s
        visible = (depth > NEAR) & (np.abs(lateral) - extent < depth * self.tan_half)
        return np.flatnonzero(visible), depth, lateral

    def _trees(self, trees: np.ndarray, look: Look, camera: tuple) -> list[tuple]:
        """Draw items for the trees in view, their geometry computed for all at once."""
        idx, depth, lateral = self._project(trees[:, :2], trees[:, 3], camera)
        if len(idx) == 0:
            return []
        t, d = trees[idx], depth[idx]
        scale = self.focal / d
        u = self.width / 2 + lateral[idx] * scale
        ground = self.cy + camera[2] * scale  # image row of the ground under the tree
        trunk, w = t[:, 2] * scale, np.maximum(t[:, 3] * scale, 0.5)
        canopy = ground - (t[:, 4] + 1.05 * t[:, 3]) * scale
        tip, bottom = ground - t[:, 5] * scale, ground - t[:, 4] * scale
        trunk_top = np.where(t[:, 6] == 0, bottom - 0.3 * t[:, 3] * scale, bottom)
        geometry = np.stack(
            [u - trunk, trunk_top, u + trunk, ground, u, canopy, w, 1.05 * w,
             u - 0.25 * w, canopy - 0.3 * w, 0.6 * w, 0.55 * w,
             tip, bottom, tip + (bottom - tip) / 3, w / 3],
            axis=1,
        )  # fmt: skip
        fixed = np.rint(np.clip(geometry, -1e4, 1e4) * ONE).astype(np.int64).tolist()
        haze = (1.0 - np.exp(-d / look.palette.fog_distance))[:, None, None]
        colors = look.tree_colors[idx]
        colors = (colors + (look.fog - colors) * haze).astype(np.int64).tolist()
        paints = [_paint_conifer if k == 1 else _paint_broadleaf for k in t[:, 6].tolist()]
        snow = look.palette.snow
        return [
            (dk, paint, (g, col, snow))
            for dk, paint, g, col in zip(d.tolist(), paints, fixed, colors, strict=True)
        ]

    def _props(self, scene: Scene, look: Look, camera: tuple) -> list[tuple]:
        """Draw items for the target, the distractors and the decoys in view (few: scalar
        maths)."""
        decoys = scene.decoys
        xy = np.concatenate([scene.target[None, :2], scene.distractors[:, :2], decoys[:, :2]])
        extent = np.concatenate([[TARGET_RADIUS], scene.distractors[:, 2], decoys[:, 3]])
        idx, depth, lateral = self._project(xy, extent, camera)
        first_decoy = 1 + len(scene.distractors)
        items: list[tuple[float, Callable[..., None], tuple]] = []
        for i in idx.tolist():
            d = float(depth[i])
            scale = self.focal / d
            u = self.width / 2 + float(lateral[i]) * scale
            ground = self.cy + camera[2] * scale
            haze = 1.0 - math.exp(-d / look.palette.fog_distance)
            if i == 0:
                height = -float(scene.target[2])
                sphere = (TARGET_RADIUS, height, TARGET_COLOR)
                items.append(
                    (d, _paint_on_pole, _on_pole_args(u, ground, scale, sphere, look, haze))
                )
            elif i < first_decoy:
                args = _distractor_args(u, ground, scale, scene.distractors[i - 1], look, haze)
                items.append((d, _paint_distractor, args))
            else:
                items.append(
                    (d, *_decoy_item(u, ground, scale, decoys[i - first_decoy], look, haze))
                )
        return items


def _fx(v: float) -> int:
    """A float pixel coordinate as cv2 fixed point, clamped far outside any image."""
    return round(min(max(v, -1e4), 1e4) * ONE)


def _hazy(rgb: tuple | np.ndarray, look: Look, haze: float) -> tuple[int, int, int]:
    tint = look.palette.tint
    r, g, b = (float(a) * look.palette.light * t for a, t in zip(rgb, tint, strict=True))
    f = look.fog
    return (int(r + (f[0] - r) * haze), int(g + (f[1] - g) * haze), int(b + (f[2] - b) * haze))


def _shine(color: tuple) -> tuple:
    """The lit spot of a sphere of `color` (the target's highlight)."""
    return tuple(min(c * 1.18 + 20, 255) for c in color)


def _on_pole_args(
    u: float, ground: float, scale: float, sphere: tuple, look: Look, haze: float
) -> tuple:
    """A sphere (radius m, centre height m, RGB) on a grey pole: the target, or a decoy."""
    radius, height, color = sphere
    pole = max(0.04 * scale, 0.6)
    r = max(radius * scale, 0.5)
    v = ground - height * scale
    disc = ((_fx(u), _fx(v)), _fx(r), _hazy(color, look, haze))
    pole_rect = ((_fx(u - pole), _fx(v + r)), (_fx(u + pole), _fx(ground)))
    pole_color = _hazy((80, 80, 85), look, haze)
    highlight = None
    if r > 3:
        center = (_fx(u - 0.3 * r), _fx(v - 0.3 * r))
        highlight = (center, _fx(0.35 * r), _hazy(_shine(color), look, haze))
    return pole_rect, pole_color, disc, highlight


def _decoy_item(
    u: float, ground: float, scale: float, row: np.ndarray, look: Look, haze: float
) -> tuple[Callable[..., None], tuple]:
    """The painter and its arguments for one decoy row (scene.DECOY_FIELDS)."""
    kind, size, height = (float(v) for v in row[2:5])
    color = tuple(float(c) for c in row[5:8])
    if kind == POLE_SPHERE:
        return _paint_on_pole, _on_pole_args(u, ground, scale, (size, height, color), look, haze)
    if kind == DOME:
        return _paint_dome, _dome_args(u, ground, scale, size, color, look, haze)
    half = max(0.5 * size * scale, 0.5)
    box = ((_fx(u - half), _fx(ground - height * scale)), (_fx(u + half), _fx(ground)))
    top = (
        (_fx(u - half), _fx(ground - height * scale)),
        (_fx(u + half), _fx(ground - 0.8 * height * scale)),
    )
    lit = tuple(min(c * 1.15 + 10, 255) for c in color)
    return _paint_box, (box, _hazy(color, look, haze), top, _hazy(lit, look, haze))


def _dome_args(
    u: float, ground: float, scale: float, radius: float, color: tuple, look: Look, haze: float
) -> tuple:
    """Half a ball flat on the ground, lit like the target's sphere."""
    r = max(radius * scale, 0.5)
    dome = ((_fx(u), _fx(ground)), (_fx(r), _fx(r)), _hazy(color, look, haze))
    axes = (_fx(0.35 * r), _fx(0.3 * r))
    highlight = ((_fx(u - 0.3 * r), _fx(ground - 0.6 * r)), axes, _hazy(_shine(color), look, haze))
    return dome, highlight if r > 3 else None


def _distractor_args(
    u: float, ground: float, scale: float, row: np.ndarray, look: Look, haze: float
) -> tuple:
    size, kind, hue = (float(v) for v in row[2:5])
    color = _hazy((225 + 25 * hue, 60 + 55 * hue, 25 + 15 * hue), look, haze)
    w = max(size * scale, 0.5)
    if kind == 0:  # a cone
        pts = [(_fx(u), _fx(ground - 2.2 * size * scale)), (_fx(u - w), _fx(ground))]
        pts.append((_fx(u + w), _fx(ground)))
        return True, pts, color
    return False, ((_fx(u), _fx(ground - w)), _fx(w)), color


def _paint_broadleaf(img: np.ndarray, g: list, col: list, snow: bool) -> None:
    cv2.rectangle(img, (g[0], g[1]), (g[2], g[3]), col[0], -1, cv2.LINE_8, SUB)
    cv2.ellipse(img, (g[4], g[5]), (g[6], g[7]), 0, 0, 360, col[1], -1, cv2.LINE_8, SUB)
    if g[10] > ONE:  # the lit side, once the canopy is a few pixels wide
        cv2.ellipse(img, (g[8], g[9]), (g[10], g[11]), 0, 0, 360, col[2], -1, cv2.LINE_8, SUB)


def _paint_conifer(img: np.ndarray, g: list, col: list, snow: bool) -> None:
    cv2.rectangle(img, (g[0], g[1]), (g[2], g[3]), col[0], -1, cv2.LINE_8, SUB)
    cone = np.array([[g[4], g[12]], [g[4] - g[6], g[13]], [g[4] + g[6], g[13]]], np.int32)
    cv2.fillConvexPoly(img, cone, col[1], cv2.LINE_8, SUB)
    if snow:  # on the upper third
        cap = np.array([[g[4], g[12]], [g[4] - g[15], g[14]], [g[4] + g[15], g[14]]], np.int32)
        cv2.fillConvexPoly(img, cap, col[3], cv2.LINE_8, SUB)


def _paint_on_pole(
    img: np.ndarray, pole: tuple, pole_color: tuple, sphere: tuple, highlight: tuple | None
) -> None:
    cv2.rectangle(img, *pole, pole_color, -1, cv2.LINE_8, SUB)  # type: ignore[call-overload]
    cv2.circle(img, *sphere, -1, cv2.LINE_AA, SUB)  # type: ignore[call-overload]
    if highlight is not None:
        cv2.circle(img, *highlight, -1, cv2.LINE_AA, SUB)  # type: ignore[call-overload]


def _paint_distractor(img: np.ndarray, cone: bool, shape: Any, color: tuple) -> None:
    if cone:
        cv2.fillConvexPoly(img, np.array(shape, np.int32), color, cv2.LINE_AA, SUB)
    else:
        cv2.circle(img, *shape, color, -1, cv2.LINE_AA, SUB)  # type: ignore[call-overload]


def _paint_dome(img: np.ndarray, dome: tuple, highlight: tuple | None) -> None:
    center, axes, color = dome
    cv2.ellipse(img, center, axes, 0, 180, 360, color, -1, cv2.LINE_AA, SUB)
    if highlight is not None:
        center, axes, shine = highlight
        cv2.ellipse(img, center, axes, 0, 0, 360, shine, -1, cv2.LINE_AA, SUB)


def _paint_box(img: np.ndarray, box: tuple, color: tuple, top: tuple, lit: tuple) -> None:
    cv2.rectangle(img, *box, color, -1, cv2.LINE_8, SUB)  # type: ignore[call-overload]
    cv2.rectangle(img, *top, lit, -1, cv2.LINE_8, SUB)  # type: ignore[call-overload]
