"""Distribution shifts: what the camera sees (season, light, sensor, scene) and when (timing).

`SHIFTS` maps each single shift name to a small frozen `Shift`; `parse_shift("winter+noise")`
combines several. The training distribution is `none` (summer, 10 Hz). Scene geometry (trees,
target, start) depends on the episode seed only, so every shift flies the same scenes and
results are paired across shifts. Pixel shifts change the frames, timing shifts change `dt`;
the privileged expert is affected by timing shifts only.

`SensorEffects` applies the per-frame pixel effects (glare, lens occlusion, blur, noise) after
the renderer; `Timing` samples the seconds between frames.

Training-time randomisation (`collect --randomize`, `sim/randomize.py`) varies the light and the
palettes per episode over ranges that stop short of every preset below; `collect --decoys`
(`sim/decoys.py`) adds look-alikes of the target that are neither the distractors nor autumn.
Each preset's defining value, and the randomisation range of the same quantity (checked by
tests/sim/test_randomize.py and test_decoys.py over 1500-2000 draws, with a margin;
`Randomization` and `DecoyConfig` refuse ranges that reach a preset):

| preset      | defining value                                | randomised range                   |
|-------------|-----------------------------------------------|------------------------------------|
| dusk        | object light 0.5, ground x(0.55,0.42,0.38)    | exposure 0.65..1.4 (floor 0.6)     |
|             | (luma 0.45), sky top (28,34,72), horizon      | ground gain 0.9..1.2, so ground    |
|             | (235,130,70) = glow 1                         | luma >= 0.55; glow 0..0.6 (< 0.75) |
| glare       | veil 0.75x+60 and full bloom = strength 1     | veil 0..0.7, bloom 0..0.7 (< 0.75) |
|             | (sun +-0.5 rad of the start heading, 0.06..   | half the episodes: sun +-0.8 rad   |
|             | 0.2 rad up: where, not what, defines it)      | ahead, 0.02..0.3 rad up;           |
|             |                                               | --glare-ahead: veil and bloom      |
|             |                                               | 0.35..0.7 in that half             |
| autumn      | ground hue 39, foliage 41/26 deg (summer 92,  | hue shifts -15..15 deg (max 30);   |
|             | foliage 115/95), every canopy                 | --decoys: 0..40% of the broadleaf  |
|             |                                               | canopies (max 50%), half in warm   |
|             |                                               | hues, half any; the ground never   |
| winter      | snow, ground saturation 0.05 (summer 0.58)    | ground saturation x0.7..1.3, no    |
|             |                                               | snow (floor x0.4)                  |
| distractors | 8 red-orange cones and balls on the ground    | --decoys: 1..4 objects (max 4):    |
|             |                                               | boxes on the ground (70% within    |
|             |                                               | 20 deg of the target's hue) and    |
|             |                                               | spheres on poles >= 45 deg of hue  |
|             |                                               | from it; never a cone or a ball;   |
|             |                                               | --decoy-mix dense: 2..4 objects,   |
|             |                                               | 80% boxes, 85% of those near       |
|             |                                               | --decoy-mix domes: v2 with 30% of  |
|             |                                               | the objects red-orange domes, half |
|             |                                               | a ball (radius 0.4..1 m) flat on   |
|             |                                               | the ground: never a whole ball     |
| noise, blur | noise_std 14, blur_sigma 1.6                  | never set by randomisation         |
| occlusion   | occluders 4                                   | --decoy-mix dense-dirt: 1..3 lens  |
|             |                                               | blobs (max 3) in 30% of episodes;  |
|             |                                               | --decoy-mix domes-dirt: the domes  |
|             |                                               | mix with that same lens dirt       |
| timing      | dt_scale 2 / 0.5, dt_range (0.4, 2)           | never set by randomisation         |

Also drawn, matching no preset: sun azimuth (full circle) and elevation 0.02..0.9 rad (the sun
is drawn in the sky, low suns in view), colour temperature 4500..9000 K (luma-neutral gains),
fog distance 45..250 m and fog colour (mix 0..1 toward the horizon), overcast 0..0.7, sky hue
-12..12 deg, foliage gain 0.8..1.2, ground texture contrast 0.6..1.5.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

SEASONS = ("summer", "autumn", "winter")
DUSK_LIGHT = 0.5  # dusk: objects at half light
GLARE_VEIL = (0.75, 60.0)  # glare at strength 1: frame x 0.75 + 60 everywhere, plus the bloom


@dataclass(frozen=True)
class Shift:
    """One shift or a combination; fields left at their defaults change nothing."""

    names: tuple[str, ...] = ("none",)
    season: str = "summer"  # palette of ground, foliage and sky
    dusk: bool = False  # low warm light, dark sky
    glare: bool = False  # low sun in front: bloom around it and a veil over the frame
    noise_std: float = 0.0  # Gaussian sensor noise, in uint8 levels
    blur_sigma: float = 0.0  # Gaussian defocus blur, in pixels at 128 px width
    occluders: int = 0  # opaque blobs (dirt, leaves) stuck on the lens
    distractors: int = 0  # red-orange objects like the target, on the ground
    dt_scale: float = 1.0  # frame period / nominal (lowfps 2.0, highfps 0.5)
    dt_range: tuple[float, float] | None = None  # per-frame dt multipliers (jitter)

    def __post_init__(self) -> None:
        if self.season not in SEASONS:
            raise ValueError(f"season must be one of {SEASONS}, got {self.season!r}")
        if self.noise_std < 0 or self.blur_sigma < 0 or self.occluders < 0 or self.distractors < 0:
            raise ValueError("noise_std, blur_sigma, occluders and distractors must be >= 0")
        if not self.dt_scale > 0:
            raise ValueError(f"dt_scale must be > 0, got {self.dt_scale}")
        if self.dt_range is not None and not 0 < self.dt_range[0] < self.dt_range[1]:
            raise ValueError(
                f"dt_range must be (low, high) with 0 < low < high, got {self.dt_range}"
            )

    @property
    def name(self) -> str:
        return "+".join(self.names)

    def combine(self, other: Shift) -> Shift:
        """Both shifts at once; two seasons or two timing changes conflict (ValueError)."""
        if self.season != "summer" and other.season != "summer":
            raise ValueError(f"{self.name} and {other.name} both set the season")
        if _changes_timing(self) and _changes_timing(other):
            raise ValueError(f"{self.name} and {other.name} both change the timing")
        names = tuple(n for n in (*self.names, *other.names) if n != "none") or ("none",)
        return Shift(
            names=names,
            season=other.season if other.season != "summer" else self.season,
            dusk=self.dusk or other.dusk,
            glare=self.glare or other.glare,
            noise_std=max(self.noise_std, other.noise_std),
            blur_sigma=max(self.blur_sigma, other.blur_sigma),
            occluders=max(self.occluders, other.occluders),
            distractors=max(self.distractors, other.distractors),
            dt_scale=self.dt_scale * other.dt_scale,
            dt_range=self.dt_range or other.dt_range,
        )


def _changes_timing(shift: Shift) -> bool:
    return shift.dt_scale != 1.0 or shift.dt_range is not None


SHIFTS: dict[str, Shift] = {
    "none": Shift(),
    "autumn": Shift(names=("autumn",), season="autumn"),
    "winter": Shift(names=("winter",), season="winter"),
    "dusk": Shift(names=("dusk",), dusk=True),
    "glare": Shift(names=("glare",), glare=True),
    "noise": Shift(names=("noise",), noise_std=14.0),
    "blur": Shift(names=("blur",), blur_sigma=1.6),
    "occlusion": Shift(names=("occlusion",), occluders=4),
    "distractors": Shift(names=("distractors",), distractors=8),
    "lowfps": Shift(names=("lowfps",), dt_scale=2.0),  # 5 Hz
    "highfps": Shift(names=("highfps",), dt_scale=0.5),  # 20 Hz
    # dt from 0.4x to 2x nominal (0.04-0.2 s at 10 Hz): far wider than training's dt_jitter
    "jitter": Shift(names=("jitter",), dt_range=(0.4, 2.0)),
}


def parse_shift(spec: str) -> Shift:
    """`"none"`, a single name, or names joined by `+`; unknown names raise ValueError."""
    parts = [p.strip() for p in spec.split("+")]
    unknown = [p for p in parts if p not in SHIFTS]
    if unknown:
        raise ValueError(
            f"unknown shift {', '.join(map(repr, unknown))}; valid: {', '.join(SHIFTS)} "
            "(combine with '+', e.g. winter+noise)"
        )
    shift = SHIFTS[parts[0]]
    for part in parts[1:]:
        shift = shift.combine(SHIFTS[part])
    return shift


@dataclass(frozen=True)
class Timing:
    """Seconds between frames: nominal x shift scale, varied by jitter or training dt_jitter."""

    nominal_dt: float
    dt_jitter: float = 0.0  # training: dt in nominal x [1 - j, 1 + j]
    dt_range: tuple[float, float] | None = None  # OOD jitter shift: nominal x [low, high]

    @classmethod
    def for_shift(cls, shift: Shift, dt: float, dt_jitter: float) -> Timing:
        return cls(dt * shift.dt_scale, dt_jitter, shift.dt_range)

    def sample(self, rng: np.random.Generator) -> float:
        if self.dt_range is not None:
            return self.nominal_dt * float(rng.uniform(*self.dt_range))
        if self.dt_jitter > 0:
            return self.nominal_dt * float(rng.uniform(1 - self.dt_jitter, 1 + self.dt_jitter))
        return self.nominal_dt


class SensorEffects:
    """The per-frame pixel effects of a shift, built once per episode.

    `glare` is (veil, bloom) as shares of the `glare` preset's (1, 1, its default when the
    shift has glare); randomisation passes weaker ones.
    """

    def __init__(
        self,
        shift: Shift,
        size: tuple[int, int],
        focal: float,
        sun: tuple,
        occluders: np.ndarray,
        glare: tuple[float, float] | None = None,
    ) -> None:
        height, width = size
        self.shift = shift
        self.focal = focal
        self.sun_azimuth, self.sun_elevation = sun
        self.blur = shift.blur_sigma * width / 128
        veil, bloom = (1.0, 1.0) if shift.glare else glare or (0.0, 0.0)
        self.veil = (1 - (1 - GLARE_VEIL[0]) * veil, GLARE_VEIL[1] * veil)  # gain, lift
        self.veil_lut = _veil_lut(*self.veil)
        self.glare = veil > 0 or bloom > 0
        self.bloom = _bloom_kernel(height, width) * np.float32(bloom) if bloom > 0 else None
        self.occluder_mask = occluder_mask(occluders, height, width) if len(occluders) else None
        self.occluder_color = np.array([38, 33, 28], np.uint8)  # dirt / a dead leaf

    def apply(self, frame: np.ndarray, yaw: float, rng: np.random.Generator) -> np.ndarray:
        """Glare, then lens occlusion, blur and sensor noise, in the order light meets them."""
        if self.glare:
            frame = self._glare(frame, yaw)
        if self.occluder_mask is not None:
            frame[self.occluder_mask] = self.occluder_color
        if self.blur > 0:
            frame = cv2.GaussianBlur(frame, (0, 0), self.blur)
        if self.shift.noise_std > 0:
            noise = rng.standard_normal(frame.shape, dtype=np.float32) * self.shift.noise_std
            frame = np.clip(frame + noise, 0, 255).astype(np.uint8)
        return frame

    def _glare(self, frame: np.ndarray, yaw: float) -> np.ndarray:
        """A veil that lifts the blacks everywhere plus a bloom around the sun when in view."""
        bloom = self._bloom_crop(frame.shape[0], frame.shape[1], yaw)
        if bloom is None:  # the veil alone: a lookup table, the same values as the sum below
            return cv2.LUT(frame, self.veil_lut)
        out = frame.astype(np.float32) * np.float32(self.veil[0]) + np.float32(self.veil[1])
        out += bloom
        return np.clip(out, 0, 255).astype(np.uint8)

    def _bloom_crop(self, h: int, w: int, yaw: float) -> np.ndarray | None:
        """The [H, W, 3] bloom around the sun where it is in the frame, else None."""
        rel = math.remainder(self.sun_azimuth - yaw, 2 * math.pi)
        if self.bloom is None or abs(rel) >= math.radians(80):
            return None
        u = round(w / 2 + self.focal * math.tan(rel))
        v = round(h / 2 - self.focal * math.tan(self.sun_elevation))
        top, left = h - v, w - u
        if 0 <= top <= h and 0 <= left <= w:
            return self.bloom[top : top + h, left : left + w]
        return None


def _veil_lut(gain: float, lift: float) -> np.ndarray:
    levels = np.arange(256, dtype=np.float32) * np.float32(gain) + np.float32(lift)
    return np.clip(levels, 0, 255).astype(np.uint8)


@functools.cache
def _bloom_kernel(height: int, width: int) -> np.ndarray:
    """A [2H, 2W, 3] warm radial bloom centred at (H, W), cropped to place the sun."""
    yy, xx = np.mgrid[-height:height, -width:width].astype(np.float32)
    r = np.hypot(xx, yy) / width
    core = 255.0 * np.exp(-((r / 0.12) ** 2)) + 150.0 * np.exp(-r / 0.35)
    streak = 120.0 * np.exp(-np.abs(yy) / (0.02 * width)) * np.exp(-np.abs(xx) / (0.6 * width))
    glow = (core + streak)[..., None] * np.array([1.0, 0.92, 0.75], np.float32)
    return glow.astype(np.float32)


def occluder_mask(occluders: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bool [H, W]: where the lens blobs [K, 5] (cx, cy, ax, ay in image fractions, the axes
    of the width; angle in deg) cover the frame. Also training.augment's lens dirt."""
    mask = np.zeros((height, width), np.uint8)
    for cx, cy, ax, ay, angle in occluders:
        center = (round(cx * width * 16), round(cy * height * 16))
        axes = (round(ax * width * 16), round(ay * width * 16))
        cv2.ellipse(mask, center, axes, angle, 0, 360, 255, -1, cv2.LINE_8, 4)
    return mask.astype(bool)


def shift_names() -> list[str]:
    """Every single shift, `none` first (what `--shift all` evaluates)."""
    return list(SHIFTS)
