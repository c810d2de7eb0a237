"""Training-time decoys (`collect --decoys`): things the target must be told apart from.

The shipped policy's two weak shifts are both mistaken identity: under `distractors` it hovers
over a red-orange cone or ball on the ground, under `autumn` it flies into orange canopies
(docs/robustness.md, round 4). Nothing in plain data shows anything red-orange but the target,
so "fly to the red blob" fits the data perfectly. Decoys put look-alikes into training episodes
that are *not* those presets:

- **boxes on the ground**, most of them within `near_hue` deg of the target's hue: red-orange
  that is neither round nor up on a pole;
- **spheres on poles** like the target's, in a colour at least `sphere_hue_gap` deg of hue away
  from it: the target's shape in another colour;
- **odd trees**: a share of the broadleaf canopies recoloured, half of them to a warm hue (a red
  maple in a green wood), the rest to any hue.

Mixes (`DECOY_MIXES`, `collect --decoy-mix`): `v2` as above; `dense` more of them and more of
them red-orange boxes (2..4 objects, 80% boxes, 85% of those near the target's hue); `dense-dirt`
also puts 1..3 lens-dirt blobs (the `occlusion` preset's blobs, never its 4) on the lens for a
whole episode in 30% of the episodes, drawn from a stream of their own (DIRT_STREAM); `domes`
is v2 with 30% of the objects **red-orange domes**: half a ball (radius 0.4..1 m) lying flat on
the ground, the target's colour and outline but never its height, so that "round, red-orange
and up on a pole" is what the target is, not "round and red-orange"; `domes-dirt` is `domes`
with `dense-dirt`'s lens dirt (for DAgger flights: a policy that flies too fast at a target
under a blob meets the expert's correction).

Never drawn: a cone or a (whole) ball on the ground (the `distractors` preset places 8
red-orange ones), more than 4 objects, a recolour of more than 40% of the canopies or of the
ground (the `autumn` preset recolours every canopy, the ground and the hills).
tests/sim/test_decoys.py checks these over many draws.

`draw_decoys(seed, scene)` draws from its own stream of the episode seed (STREAM), so the scene
geometry, the light and the step streams are those of the same episode without decoys; the
expert never looks at decoys, so labels are unchanged. numpy only.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field, replace

import numpy as np

from edgeliquid.sim.look import PALETTES, TARGET_COLOR, OddTrees
from edgeliquid.sim.scene import (
    BOX,
    DECOY_FIELDS,
    DOME,
    POLE_SPHERE,
    Scene,
    place_ahead,
    place_occluders,
)

STREAM = 3  # default_rng([episode seed, STREAM]): after randomize's appearance stream (2)
WARM = (0.0, 60.0)  # deg of hue: red to yellow, where a canopy can look like the target
DISTRACTORS_PRESET = 8  # the distractors shift's count
MAX_DECOYS = 4  # objects an episode: well below it
DIRT_STREAM = (STREAM, 1)  # lens dirt's own stream: the objects' draws are those without dirt
OCCLUSION_PRESET = 4  # the occlusion shift's blobs
MAX_DIRT = 3  # lens-dirt blobs an episode: below it
MAX_DOME_SHARE = 0.5
DOME_RADIUS = (0.4, 1.0)  # m: half a ball, flat on the ground (the preset's balls: 0.35..0.7)
TARGET_HUE = 360.0 * colorsys.rgb_to_hsv(*(c / 255 for c in TARGET_COLOR))[0]


@dataclass(frozen=True)
class DecoyConfig:
    """What decoys are drawn per episode; defaults are the shipped recipe's."""

    count: tuple[int, int] = (1, 4)  # objects per episode, uniform (both ends included)
    box_share: float = 0.7  # of the objects; the rest are spheres on poles
    near_hue: float = 20.0  # deg: near_share of the boxes have a hue this close to the target's
    near_share: float = 0.7
    sphere_hue_gap: float = 45.0  # deg: a sphere on a pole is never the target's colour
    odd_trees: tuple[float, float] = (0.0, 0.4)  # share of broadleaf canopies recoloured
    warm_trees: float = 0.5  # share of odd trees in warm hues (WARM), the rest any hue
    lens_dirt: float = 0.0  # share of episodes with dirt on the lens (dirt_count blobs)
    dirt_count: tuple[int, int] = (1, MAX_DIRT)  # blobs when there is dirt, uniform
    dome_share: float = 0.0  # of the objects: red-orange domes on the ground (before boxes)

    def __post_init__(self) -> None:
        lo, hi = self.count
        if not 0 <= lo <= hi <= MAX_DECOYS:
            raise ValueError(
                f"decoy count must be (low, high) with 0 <= low <= high <= {MAX_DECOYS} (the "
                f"distractors preset places {DISTRACTORS_PRESET}), got {self.count}"
            )
        shares = (self.box_share, self.near_share, self.warm_trees)
        if not all(0.0 <= x <= 1.0 for x in shares) or not 0.0 <= self.near_hue <= 30.0:
            raise ValueError(
                f"box_share, near_share and warm_trees must be in [0, 1] and near_hue in "
                f"[0, 30] deg, got {shares}, {self.near_hue}"
            )
        if not 0.0 <= self.dome_share <= MAX_DOME_SHARE:
            raise ValueError(
                f"dome_share must be in [0, {MAX_DOME_SHARE}] (domes are one kind of decoy among "
                f"three), got {self.dome_share}"
            )
        if not 30.0 <= self.sphere_hue_gap <= 150.0:
            raise ValueError(f"sphere_hue_gap must be in [30, 150] deg, got {self.sphere_hue_gap}")
        if (
            not 0.0 <= self.lens_dirt <= 1.0
            or not 1 <= self.dirt_count[0] <= self.dirt_count[1] <= MAX_DIRT
        ):
            raise ValueError(
                f"lens_dirt must be in [0, 1] and dirt_count (low, high) with 1 <= low <= high "
                f"<= {MAX_DIRT} (the occlusion preset has {OCCLUSION_PRESET} blobs), got "
                f"{self.lens_dirt}, {self.dirt_count}"
            )
        lo_t, hi_t = self.odd_trees
        if not 0.0 <= lo_t <= hi_t <= 0.5:
            raise ValueError(
                f"odd_trees must be (low, high) with 0 <= low <= high <= 0.5 (autumn recolours "
                f"every canopy), got {self.odd_trees}"
            )


@dataclass(frozen=True)
class Decoys:
    """One episode's decoys: objects [K, 8] in DECOY_FIELDS order (colour in RGB 0..255), the
    odd trees (indices into the scene's trees, with their hue turn and gain) and lens dirt
    [D, 5] (scene.place_occluders' fields)."""

    objects: np.ndarray
    odd_trees: OddTrees
    dirt: np.ndarray = field(default_factory=lambda: np.zeros((0, 5)))

    def as_dict(self) -> dict[str, list]:
        """Plain JSON values (for an episode's meta)."""
        return {
            "objects": [
                dict(zip(DECOY_FIELDS, map(float, row), strict=True)) for row in self.objects
            ],
            "odd_trees": [int(i) for i in self.odd_trees.index],
            "lens_dirt": [[float(v) for v in blob] for blob in self.dirt],  # cx, cy, ax, ay, deg
        }


DECOYS = DecoyConfig()
DENSE = DecoyConfig(count=(2, MAX_DECOYS), box_share=0.8, near_share=0.85)
DECOY_MIXES = {
    "v2": DECOYS,
    "dense": DENSE,
    "dense-dirt": replace(DENSE, lens_dirt=0.3),
    "domes": replace(DECOYS, dome_share=0.3),
    "domes-dirt": replace(DECOYS, dome_share=0.3, lens_dirt=0.3),
}


def decoy_mix(name: str) -> DecoyConfig:
    """The named mix; ValueError naming the valid ones."""
    if name not in DECOY_MIXES:
        raise ValueError(f"unknown decoy mix {name!r}; choose one of {', '.join(DECOY_MIXES)}")
    return DECOY_MIXES[name]


def draw_decoys(seed: int, scene: Scene, config: DecoyConfig = DECOYS) -> Decoys:
    """The decoys of the episode with this (scene) seed: from (seed, STREAM) only."""
    rng = np.random.default_rng([seed, STREAM])
    count = int(rng.integers(config.count[0], config.count[1] + 1))
    rows = [_object(rng, scene, config) for _ in range(count)]
    broadleaf = np.flatnonzero(scene.trees[:, 6] == 0) if len(scene.trees) else np.zeros(0, int)
    share = float(rng.uniform(*config.odd_trees))
    picked = np.sort(rng.permutation(broadleaf)[: int(share * len(broadleaf))]).astype(int)
    canopy_hue = _canopy_hue(scene.trees[picked])
    warm = rng.uniform(size=len(picked)) < config.warm_trees
    hue = np.where(warm, rng.uniform(*WARM, len(picked)), rng.uniform(0.0, 360.0, len(picked)))
    turn = (hue - canopy_hue + 180.0) % 360.0 - 180.0  # the turn that gives `hue`
    odd = OddTrees(picked, turn, rng.uniform(0.9, 1.6, len(picked)))
    objects = np.array(rows, float).reshape(-1, len(DECOY_FIELDS))
    return Decoys(objects, odd, _lens_dirt(seed, config))


def _lens_dirt(seed: int, config: DecoyConfig) -> np.ndarray:
    """The episode's lens-dirt blobs (none in 1 - lens_dirt of the episodes)."""
    rng = np.random.default_rng([seed, *DIRT_STREAM])
    dirty = rng.uniform() < config.lens_dirt
    count = int(rng.integers(config.dirt_count[0], config.dirt_count[1] + 1)) if dirty else 0
    return place_occluders(rng, count)


def _canopy_hue(trees: np.ndarray) -> np.ndarray:
    """Hue (deg) of summer broadleaf canopies (look: foliage mixed by the tree's shade)."""
    leaf0, leaf1 = (np.array(c, float) for c in PALETTES["summer"].foliage)
    rgb = leaf0 + (leaf1 - leaf0) * trees[:, 7:8]
    return np.array([360.0 * colorsys.rgb_to_hsv(*(c / 255.0))[0] for c in rgb])


def _object(rng: np.random.Generator, scene: Scene, config: DecoyConfig) -> list[float]:
    """One dome, box or sphere on a pole, mostly ahead of the start, never within 3 m of the
    target."""
    x, y = place_ahead(rng, scene.start, scene.target)
    if config.dome_share and rng.uniform() < config.dome_share:  # no draw in mixes without
        hue = TARGET_HUE + rng.uniform(-config.near_hue, config.near_hue)
        size = height = rng.uniform(*DOME_RADIUS)
        kind = DOME
    elif rng.uniform() < config.box_share:
        if rng.uniform() < config.near_share:
            hue = TARGET_HUE + rng.uniform(-config.near_hue, config.near_hue)
        else:
            hue = rng.uniform(0.0, 360.0)
        size, height = rng.uniform(0.3, 1.2), rng.uniform(0.3, 1.5)  # width, height (m)
        kind = BOX
    else:
        gap = config.sphere_hue_gap
        hue = TARGET_HUE + gap + rng.uniform(0.0, 360.0 - 2 * gap)
        size, height = rng.uniform(0.4, 0.9), rng.uniform(1.2, 3.0)  # radius, centre (m)
        kind = POLE_SPHERE
    rgb = colorsys.hsv_to_rgb((hue % 360.0) / 360.0, rng.uniform(0.5, 0.95), rng.uniform(0.5, 1))
    return [x, y, kind, size, height, *(255.0 * c for c in rgb)]
