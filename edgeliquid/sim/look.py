"""How a scene looks under a shift: palettes, ground texture, sky panorama, object colours.

Built once per episode (a few ms). The random patterns come from the scene's texture seed and
are coloured by the palette afterwards, so `autumn` or `dusk` recolour the very same ground
and clouds that `none` shows. Noise fields are made by filtering white noise in the Fourier
domain, which makes them periodic: the ground texture tiles and the panorama wraps at 360°
without seams.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, replace

import cv2
import numpy as np

from edgeliquid.sim.randomize import Appearance, kelvin_gains
from edgeliquid.sim.scene import Scene
from edgeliquid.sim.shifts import DUSK_LIGHT, Shift

Color = tuple[int, int, int]
TEXEL = 0.25  # m per ground texel
TEXTURE = 256  # texels per side: the ground repeats every 64 m
TARGET_COLOR = (235, 72, 28)  # red-orange
SNOW = (240, 243, 248)


@dataclass(frozen=True)
class Palette:
    """The colours of one season and light (RGB)."""

    sky_top: Color
    sky_horizon: Color
    cloud: Color
    hills: Color
    ground: tuple[Color, Color, Color]  # dark, mid, light: mixed by the texture noise
    fog: Color
    trunk: Color
    foliage: tuple[Color, Color]  # broadleaf canopies vary between these
    conifer: Color
    snow: bool = False  # white caps on conifers
    fog_distance: float = 90.0  # m at which haze reaches 63%
    light: float = 1.0  # multiplies object colours (dusk)
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)  # colour of the light on objects


PALETTES = {
    "summer": Palette(
        sky_top=(70, 120, 200),
        sky_horizon=(175, 205, 230),
        cloud=(240, 242, 245),
        hills=(80, 110, 90),
        ground=((58, 92, 38), (92, 132, 56), (140, 160, 80)),
        fog=(185, 205, 215),
        trunk=(92, 70, 50),
        foliage=((40, 100, 35), (85, 140, 45)),
        conifer=(30, 70, 40),
    ),
    "autumn": Palette(
        sky_top=(95, 130, 185),
        sky_horizon=(200, 200, 200),
        cloud=(230, 228, 225),
        hills=(130, 100, 70),
        ground=((110, 85, 45), (160, 125, 60), (190, 165, 95)),
        fog=(200, 195, 185),
        trunk=(80, 60, 45),
        foliage=((200, 150, 40), (150, 85, 35)),
        conifer=(45, 70, 40),
    ),
    "winter": Palette(
        sky_top=(150, 165, 185),
        sky_horizon=(215, 220, 228),
        cloud=(235, 237, 240),
        hills=(150, 160, 170),
        ground=((180, 185, 195), (220, 225, 232), (245, 247, 250)),
        fog=(215, 220, 228),
        trunk=(70, 60, 55),
        foliage=((120, 110, 100), (150, 140, 130)),  # bare twigs
        conifer=(35, 55, 45),
        snow=True,
        fog_distance=60.0,
    ),
}


def palette_for(shift: Shift) -> Palette:
    """The season's palette, darkened and warmed for dusk."""
    palette = PALETTES[shift.season]
    if not shift.dusk:
        return palette
    dim = (0.55, 0.42, 0.38)

    def tone(c: Color) -> Color:
        return (int(c[0] * dim[0]), int(c[1] * dim[1]), int(c[2] * dim[2]))

    return replace(
        palette,
        sky_top=(28, 34, 72),
        sky_horizon=(235, 130, 70),
        cloud=(170, 95, 80),
        hills=tone(palette.hills),
        ground=(tone(palette.ground[0]), tone(palette.ground[1]), tone(palette.ground[2])),
        fog=(120, 80, 70),
        fog_distance=60.0,
        light=DUSK_LIGHT,
    )


OVERCAST_SKY = ((150, 155, 165), (200, 200, 205), (205, 207, 212))  # top, horizon, cloud
DUSK_HORIZON = (235, 130, 70)  # glow 1


def randomized_palette(palette: Palette, a: Appearance) -> Palette:
    """`palette` under one randomised appearance: sky, ground and foliage recoloured, then
    exposure and colour temperature on everything (objects through `light` and `tint`)."""
    light = tuple(a.exposure * g for g in kelvin_gains(a.kelvin))

    def lit(c: tuple) -> Color:
        return _rgb(v * k for v, k in zip(c, light, strict=True))

    top = _lerp(palette.sky_top, OVERCAST_SKY[0], a.overcast)
    horizon = _lerp(_lerp(palette.sky_horizon, OVERCAST_SKY[1], a.overcast), DUSK_HORIZON, a.glow)
    cloud = _lerp(_lerp(palette.cloud, OVERCAST_SKY[2], a.overcast), DUSK_HORIZON, a.glow / 3)
    mid = palette.ground[1]
    spread = [tuple(m + (c - m) * a.contrast for c, m in zip(g, mid, strict=True)) for g in
              palette.ground]  # fmt: skip
    ground = [_hsv(g, a.ground_hue, a.ground_saturation, a.ground_gain) for g in spread]

    def leaf(c: Color) -> Color:
        return _hsv(c, a.foliage_hue, 1.0, a.foliage_gain)

    return replace(
        palette,
        sky_top=lit(_hsv(top, a.sky_hue, 1.0, 1.0)),
        sky_horizon=lit(_hsv(horizon, a.sky_hue, 1.0, 1.0)),
        cloud=lit(cloud),
        hills=lit(_hsv(palette.hills, a.ground_hue, 1.0, a.ground_gain)),
        ground=(lit(ground[0]), lit(ground[1]), lit(ground[2])),
        fog=lit(_lerp(palette.fog, horizon, a.fog_mix)),
        fog_distance=a.fog_distance,
        trunk=_rgb(v * a.foliage_gain for v in palette.trunk),
        foliage=(leaf(palette.foliage[0]), leaf(palette.foliage[1])),
        conifer=leaf(palette.conifer),
        light=palette.light * a.exposure,
        tint=kelvin_gains(a.kelvin),
    )


def _rgb(values) -> Color:
    r, g, b = (round(min(max(float(v), 0.0), 255.0)) for v in values)
    return (r, g, b)


def _lerp(a: tuple, b: tuple, t: float) -> Color:
    return _rgb(x + (y - x) * t for x, y in zip(a, b, strict=True))


def _hsv(c: tuple, hue_deg: float, saturation: float, gain: float) -> Color:
    """`c` with its hue turned, saturation and value multiplied (clipped)."""
    h, s, v = colorsys.rgb_to_hsv(*(min(max(x, 0.0), 255.0) / 255.0 for x in c))
    r, g, b = colorsys.hsv_to_rgb((h + hue_deg / 360.0) % 1.0, min(s * saturation, 1.0), v)
    return _rgb((r * gain * 255.0, g * gain * 255.0, b * gain * 255.0))


@dataclass(frozen=True)
class OddTrees:
    """Canopies to recolour (sim.decoys): tree indices, hue turn (deg) and gain of each."""

    index: np.ndarray  # int [M]
    hue: np.ndarray  # deg [M]
    gain: np.ndarray  # [M]


@dataclass
class Look:
    """Per-episode appearance the renderer draws with."""

    palette: Palette
    fog: np.ndarray  # float32 [3]
    texture: np.ndarray  # uint8 [TEXTURE, TEXTURE, 4] RGBA (faster to remap): ground near
    texture_far: np.ndarray  # the same without fine grain, against aliasing far away
    panorama: np.ndarray  # uint8 [horizon rows, panorama width, 3]: sky, clouds, far hills
    tree_colors: np.ndarray  # float32 [N, 4, 3]: trunk, canopy, canopy highlight, snow


def build_look(
    scene: Scene,
    shift: Shift,
    rows: int,
    panorama_width: int,
    focal: float,
    appearance: Appearance | None = None,
    odd_trees: OddTrees | None = None,
) -> Look:
    """The appearance of `scene` under `shift` for a renderer with these dimensions; a
    randomised `appearance` recolours it and puts its sun in the sky, `odd_trees` (decoys)
    recolour some canopies."""
    palette = palette_for(shift)
    if appearance is not None:
        palette = randomized_palette(palette, appearance)
    sun = None if appearance is None else appearance.sun
    rng = np.random.default_rng(scene.texture_seed)
    coarse = _ranked(_periodic_noise(rng, (TEXTURE, TEXTURE), slope=1.8))
    grain = _periodic_noise(rng, (TEXTURE, TEXTURE), slope=0.0) * 0.08
    return Look(
        palette=palette,
        fog=np.array(palette.fog, np.float32),
        texture=_rgba(_mix(palette.ground, np.clip(coarse + grain, 0, 1))),
        texture_far=_rgba(_mix(palette.ground, coarse)),
        panorama=_panorama(rng, palette, rows, panorama_width, focal, sun),
        tree_colors=_tree_colors(scene.trees, palette, odd_trees),
    )


def _periodic_noise(rng: np.random.Generator, shape: tuple[int, int], slope: float) -> np.ndarray:
    """Zero-mean, unit-std noise with a 1/f**slope spectrum that wraps on both axes."""
    spectrum = np.fft.rfft2(rng.standard_normal(shape))
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    radius = np.hypot(fy, fx)
    radius[0, 0] = 1.0
    field = np.fft.irfft2(spectrum / radius**slope, s=shape)
    return (field - field.mean()) / field.std()


def _ranked(field: np.ndarray) -> np.ndarray:
    """Values replaced by their rank in [0, 1]: an even spread of all three ground colours."""
    order = np.argsort(field, axis=None)
    out = np.empty(field.size)
    out[order] = np.linspace(0.0, 1.0, field.size)
    return out.reshape(field.shape)


def _mix(colors: tuple[Color, Color, Color], t: np.ndarray) -> np.ndarray:
    """Piecewise-linear colour ramp dark -> mid -> light over t in [0, 1]."""
    stops = np.array(colors, np.float32)
    low = np.clip(t * 2, 0, 1)[..., None]
    high = np.clip(t * 2 - 1, 0, 1)[..., None]
    rgb = stops[0] + (stops[1] - stops[0]) * low + (stops[2] - stops[1]) * high
    return np.ascontiguousarray(rgb.astype(np.uint8))


def _rgba(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)


def _panorama(
    rng: np.random.Generator,
    palette: Palette,
    rows: int,
    width: int,
    focal: float,
    sun: tuple[float, float] | None = None,
) -> np.ndarray:
    """Sky gradient with clouds (and the sun, if given) and a far tree line, one column per
    1/focal rad of azimuth."""
    elevation = np.arctan((rows - (np.arange(rows) + 0.5)) / focal)[:, None]
    top, horizon = np.array(palette.sky_top, np.float32), np.array(palette.sky_horizon, np.float32)
    t = np.clip(elevation / 0.6, 0, 1) ** 0.7
    sky = horizon + (top - horizon) * t[..., None]
    clouds = _periodic_noise(rng, (rows, width), slope=1.6)
    alpha = np.clip((clouds - 0.2) * 0.7, 0, 0.9) * np.clip(elevation / 0.08, 0, 1)
    sky = sky + (np.array(palette.cloud, np.float32) - sky) * alpha[..., None]
    if sun is not None:
        sky = _sun_in_sky(sky, elevation, sun, palette, width)
    ridge = _periodic_noise(rng, (1, width), slope=1.2)[0]
    bumps = _periodic_noise(rng, (1, width), slope=0.3)[0]
    line = 0.035 + 0.02 * ridge + 0.006 * bumps  # elevation (rad) of the far hills by azimuth
    far = np.array(palette.hills, np.float32) * 0.55 + np.array(palette.fog, np.float32) * 0.45
    sky[elevation[:, 0][:, None] < line[None, :]] = far
    return np.ascontiguousarray(np.clip(sky, 0, 255).astype(np.uint8))


def _sun_in_sky(
    sky: np.ndarray, elevation: np.ndarray, sun: tuple[float, float], palette: Palette, width: int
) -> np.ndarray:
    """A saturated sun disc with a halo that brightens the sky around it."""
    azimuth = (np.arange(width) + 0.5) * (2 * np.pi / width)
    d_az = np.abs(np.remainder(azimuth - sun[0] + np.pi, 2 * np.pi) - np.pi)[None, :]
    distance = np.hypot(d_az * np.cos(sun[1]), elevation - sun[1])  # rad from the sun
    glow = 255.0 * np.exp(-((distance / 0.03) ** 2)) + 90.0 * np.exp(-distance / 0.2)
    color = np.array(palette.tint, np.float32) * np.array([1.0, 0.97, 0.9], np.float32)
    return sky + glow.astype(np.float32)[..., None] * color


def _tree_colors(trees: np.ndarray, palette: Palette, odd: OddTrees | None) -> np.ndarray:
    """Per tree: trunk, canopy, highlight and snow colours, varied by the tree's shade; odd
    trees get their canopy's hue turned (deg) and brightened."""
    shade = trees[:, 7:8].astype(np.float32)
    trunk = np.array(palette.trunk, np.float32) * (0.85 + 0.3 * shade)
    leaf0, leaf1 = (np.array(c, np.float32) for c in palette.foliage)
    broadleaf = leaf0 + (leaf1 - leaf0) * shade
    conifer = np.array(palette.conifer, np.float32) * (0.8 + 0.4 * shade)
    canopy = np.where(trees[:, 6:7] == 1, conifer, broadleaf)
    if odd is not None:
        for i, hue, gain in zip(odd.index, odd.hue, odd.gain, strict=True):
            canopy[i] = _hsv(canopy[i], float(hue), 1.3, float(gain))
    highlight = np.minimum(canopy * 1.2 + 15, 255)
    snow = np.broadcast_to(np.array(SNOW, np.float32), canopy.shape)
    colors = np.stack([trunk, canopy, highlight, snow], axis=1) * palette.light
    return (colors * np.array(palette.tint, np.float32)).astype(np.float32)
