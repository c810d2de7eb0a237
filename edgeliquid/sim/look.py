"""How a scene looks under a shift: palettes, ground texture, sky panorama, object colours.

Built once per episode (a few ms). The random patterns come from the scene's texture seed and
are coloured by the palette afterwards, so `autumn` or `dusk` recolour the very same ground
and clouds that `none` shows. Noise fields are made by filtering white noise in the Fourier
domain, which makes them periodic: the ground texture tiles and the panorama wraps at 360°
without seams.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from edgeliquid.sim.scene import Scene
from edgeliquid.sim.shifts import Shift

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
        light=0.5,
    )


@dataclass
class Look:
    """Per-episode appearance the renderer draws with."""

    palette: Palette
    fog: np.ndarray  # float32 [3]
    texture: np.ndarray  # uint8 [TEXTURE, TEXTURE, 4] RGBA (faster to remap): ground near
    texture_far: np.ndarray  # the same without fine grain, against aliasing far away
    panorama: np.ndarray  # uint8 [horizon rows, panorama width, 3]: sky, clouds, far hills
    tree_colors: np.ndarray  # float32 [N, 4, 3]: trunk, canopy, canopy highlight, snow


def build_look(scene: Scene, shift: Shift, rows: int, panorama_width: int, focal: float) -> Look:
    """The appearance of `scene` under `shift` for a renderer with these dimensions."""
    palette = palette_for(shift)
    rng = np.random.default_rng(scene.texture_seed)
    coarse = _ranked(_periodic_noise(rng, (TEXTURE, TEXTURE), slope=1.8))
    grain = _periodic_noise(rng, (TEXTURE, TEXTURE), slope=0.0) * 0.08
    return Look(
        palette=palette,
        fog=np.array(palette.fog, np.float32),
        texture=_rgba(_mix(palette.ground, np.clip(coarse + grain, 0, 1))),
        texture_far=_rgba(_mix(palette.ground, coarse)),
        panorama=_panorama(rng, palette, rows, panorama_width, focal),
        tree_colors=_tree_colors(scene.trees, palette),
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
    rng: np.random.Generator, palette: Palette, rows: int, width: int, focal: float
) -> np.ndarray:
    """Sky gradient with clouds and a far tree line, one column per 1/focal rad of azimuth."""
    elevation = np.arctan((rows - (np.arange(rows) + 0.5)) / focal)[:, None]
    top, horizon = np.array(palette.sky_top, np.float32), np.array(palette.sky_horizon, np.float32)
    t = np.clip(elevation / 0.6, 0, 1) ** 0.7
    sky = horizon + (top - horizon) * t[..., None]
    clouds = _periodic_noise(rng, (rows, width), slope=1.6)
    alpha = np.clip((clouds - 0.2) * 0.7, 0, 0.9) * np.clip(elevation / 0.08, 0, 1)
    sky = sky + (np.array(palette.cloud, np.float32) - sky) * alpha[..., None]
    ridge = _periodic_noise(rng, (1, width), slope=1.2)[0]
    bumps = _periodic_noise(rng, (1, width), slope=0.3)[0]
    line = 0.035 + 0.02 * ridge + 0.006 * bumps  # elevation (rad) of the far hills by azimuth
    far = np.array(palette.hills, np.float32) * 0.55 + np.array(palette.fog, np.float32) * 0.45
    sky[elevation[:, 0][:, None] < line[None, :]] = far
    return np.ascontiguousarray(np.clip(sky, 0, 255).astype(np.uint8))


def _tree_colors(trees: np.ndarray, palette: Palette) -> np.ndarray:
    """Per tree: trunk, canopy, highlight and snow colours, varied by the tree's shade."""
    shade = trees[:, 7:8].astype(np.float32)
    trunk = np.array(palette.trunk, np.float32) * (0.85 + 0.3 * shade)
    leaf0, leaf1 = (np.array(c, np.float32) for c in palette.foliage)
    broadleaf = leaf0 + (leaf1 - leaf0) * shade
    conifer = np.array(palette.conifer, np.float32) * (0.8 + 0.4 * shade)
    canopy = np.where(trees[:, 6:7] == 1, conifer, broadleaf)
    highlight = np.minimum(canopy * 1.2 + 15, 255)
    snow = np.broadcast_to(np.array(SNOW, np.float32), canopy.shape)
    colors = np.stack([trunk, canopy, highlight, snow], axis=1) * palette.light
    return colors.astype(np.float32)
