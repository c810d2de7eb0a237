"""Per-episode domain randomisation of the light and the palettes (`collect --randomize`).

`Randomization` holds the ranges (validated: none may reach an evaluation shift preset, see the
table in `sim/shifts.py`); `draw_appearance(seed)` draws one frozen `Appearance` from its own
stream of the episode seed, so geometry, texture, shift and step streams are untouched and a
randomised episode flies the same scene as a plain one. `look.randomized_palette` applies an
appearance to a palette, `SensorEffects` draws its veil and bloom. numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from edgeliquid.sim.shifts import DUSK_LIGHT

STREAM = 2  # default_rng([episode seed, STREAM]): after the step stream (1) of NavEnv
Range = tuple[float, float]

# Per field: the widest range allowed, and why (the preset just beyond it).
LIMITS: dict[str, tuple[float, float, str]] = {
    "sun_elevation": (0.0, 1.4, "the sun stays above the horizon"),
    "exposure": (DUSK_LIGHT + 0.1, 2.0, f"dusk lights objects at {DUSK_LIGHT}"),
    "kelvin": (4500.0, 10000.0, "warmer than 4500 K is dusk's tone"),
    "fog_distance": (20.0, 1000.0, "haze within sight"),
    "fog_mix": (0.0, 1.0, "fog colour between the palette's and the horizon's"),
    "overcast": (0.0, 0.8, "a grey sky over green ground, not winter"),
    "glow": (0.0, 0.75, "dusk's horizon is glow 1"),
    "sky_hue": (-30.0, 30.0, "a blue sky"),
    "ground_hue": (-30.0, 30.0, "autumn's ground is 53 deg from summer's"),
    "ground_gain": (0.85, 2.0, "dusk darkens the ground to luma 0.45"),
    "ground_saturation": (0.4, 2.0, "winter's ground has 0.1x summer's saturation"),
    "foliage_hue": (-30.0, 30.0, "autumn's foliage is >= 54 deg from summer's"),
    "foliage_gain": (0.5, 2.0, "foliage stays lit"),
    "contrast": (0.2, 3.0, "texture contrast of the ground colours"),
    "veil": (0.0, 0.75, "glare's veil is strength 1"),
    "bloom": (0.0, 0.75, "glare's bloom is strength 1"),
}


@dataclass(frozen=True)
class Randomization:
    """The ranges (low, high) appearances are drawn from, uniformly; the sun's azimuth is
    drawn over the full circle. Defaults are the shipped recipe's."""

    sun_elevation: Range = (0.02, 0.9)  # rad: from a sun on the horizon to ~50 deg up
    exposure: Range = (0.65, 1.4)  # luma gain of everything lit: dim evening to bright
    kelvin: Range = (4500.0, 9000.0)  # colour temperature: warm evening to cool overcast
    fog_distance: Range = (45.0, 250.0)  # m at which haze reaches 63% (summer 90)
    fog_mix: Range = (0.0, 1.0)  # fog colour: the palette's (0) to the horizon's (1)
    overcast: Range = (0.0, 0.7)  # sky and clouds toward grey
    glow: Range = (0.0, 0.6)  # share of dusk's orange horizon
    sky_hue: Range = (-12.0, 12.0)  # deg, hue shift of the sky colours
    ground_hue: Range = (-15.0, 15.0)  # deg, of the three ground colours and the hills
    ground_gain: Range = (0.9, 1.2)  # brightness of the ground colours
    ground_saturation: Range = (0.7, 1.3)  # saturation multiplier of the ground colours
    foliage_hue: Range = (-15.0, 15.0)  # deg, of canopies
    foliage_gain: Range = (0.8, 1.2)  # brightness of canopies and trunks
    contrast: Range = (0.6, 1.5)  # spread of the ground colours around the middle one
    veil: Range = (0.0, 0.7)  # share of glare's veil (x0.75 + 60), every frame
    bloom: Range = (0.0, 0.7)  # share of glare's bloom around the sun when in view
    # A low sun ahead: in this share of episodes the sun stands within sun_ahead_bearing rad
    # of the start heading at an elevation in sun_ahead_elevation (flying into the evening
    # sun); otherwise anywhere on the circle at sun_elevation.
    sun_ahead_p: float = 0.5
    sun_ahead_bearing: float = 0.8
    sun_ahead_elevation: Range = (0.02, 0.3)
    # When set, the sun-ahead episodes draw veil and bloom here instead (both below the glare
    # preset's strength 1, as veil and bloom): a strong low sun ahead in every one of them,
    # e.g. right behind the target (`GLARE_AHEAD`, `collect --glare-ahead`).
    ahead_glare: Range | None = None

    def __post_init__(self) -> None:
        for name, (low, high, why) in LIMITS.items():
            lo, hi = getattr(self, name)
            if not low <= lo <= hi <= high:
                raise ValueError(
                    f"randomization {name} must be (low, high) with {low} <= low <= high <= "
                    f"{high} ({why}), got {(lo, hi)}"
                )
        if not 0.0 <= self.sun_ahead_p <= 1.0:
            raise ValueError(f"sun_ahead_p must be a probability, got {self.sun_ahead_p}")
        if not 0.0 <= self.sun_ahead_bearing <= math.pi:
            raise ValueError(
                f"sun_ahead_bearing must be in [0, pi] rad, got {self.sun_ahead_bearing}"
            )
        if self.ahead_glare is not None:
            lo, hi = self.ahead_glare
            limit = min(LIMITS["veil"][1], LIMITS["bloom"][1])
            if not 0.0 <= lo <= hi <= limit:
                raise ValueError(
                    f"randomization ahead_glare must be (low, high) with 0 <= low <= high <= "
                    f"{limit} (glare's veil and bloom are strength 1), got {(lo, hi)}"
                )
        lo, hi = self.sun_ahead_elevation
        if not 0.0 <= lo <= hi <= LIMITS["sun_elevation"][1]:
            raise ValueError(
                f"sun_ahead_elevation must be (low, high) in [0, 1.4] rad, got {(lo, hi)}"
            )


@dataclass(frozen=True)
class Appearance:
    """One episode's light and palette changes (see `Randomization` for the meaning)."""

    sun: tuple[float, float]  # azimuth (rad, world) and elevation (rad)
    exposure: float
    kelvin: float
    fog_distance: float
    fog_mix: float
    overcast: float
    glow: float
    sky_hue: float
    ground_hue: float
    ground_gain: float
    ground_saturation: float
    foliage_hue: float
    foliage_gain: float
    contrast: float
    veil: float
    bloom: float

    def as_dict(self) -> dict[str, float | list[float]]:
        """Plain JSON values (for an episode's meta)."""
        out: dict[str, float | list[float]] = {"sun": [float(v) for v in self.sun]}
        out.update({f.name: float(getattr(self, f.name)) for f in fields(self)[1:]})
        return out


RANDOMIZATION = Randomization()
# The sun-ahead half of the episodes with a strong veil and bloom (collect --glare-ahead)
GLARE_AHEAD = Randomization(ahead_glare=(0.35, 0.7))


def draw_appearance(
    seed: int, ranges: Randomization = RANDOMIZATION, heading: float = 0.0
) -> Appearance:
    """The appearance of the episode with this (scene) seed: from (seed, STREAM) only;
    `heading` (rad) is the start heading a sun ahead is placed around."""
    rng = np.random.default_rng([seed, STREAM])
    ahead = rng.uniform() < ranges.sun_ahead_p
    if ahead:
        bearing = rng.uniform(-ranges.sun_ahead_bearing, ranges.sun_ahead_bearing)
        azimuth = math.remainder(heading + bearing, 2 * math.pi)
        sun = (azimuth, float(rng.uniform(*ranges.sun_ahead_elevation)))
    else:
        sun = (float(rng.uniform(-math.pi, math.pi)), float(rng.uniform(*ranges.sun_elevation)))
    names = [f.name for f in fields(Appearance) if f.name != "sun"]
    drawn = {n: float(rng.uniform(*getattr(ranges, n))) for n in names}
    if ahead and ranges.ahead_glare is not None:  # drawn last: every other value as without
        drawn["veil"], drawn["bloom"] = (float(v) for v in rng.uniform(*ranges.ahead_glare, 2))
    return Appearance(sun=sun, **drawn)


# Blackbody white points (RGB, sRGB-ish; Mitchell Charity's table) by kelvin.
_KELVIN = np.array([4000, 4500, 5000, 5500, 6000, 6500, 7000, 8000, 9000, 10000], np.float64)
_WHITE = np.array(
    [
        [255, 209, 163],
        [255, 219, 186],
        [255, 228, 206],
        [255, 236, 224],
        [255, 243, 239],
        [255, 249, 253],
        [245, 243, 255],
        [227, 233, 255],
        [214, 225, 255],
        [204, 219, 255],
    ],
    np.float64,
)
LUMA = np.array([0.299, 0.587, 0.114])


def kelvin_gains(kelvin: float) -> tuple[float, float, float]:
    """Per-channel gains of light at `kelvin` relative to 6500 K, with luma gain 1."""
    white = np.array([np.interp(kelvin, _KELVIN, _WHITE[:, c]) for c in range(3)])
    gains = white / _WHITE[5]
    gains /= gains @ LUMA
    return (float(gains[0]), float(gains[1]), float(gains[2]))
