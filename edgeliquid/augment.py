"""Per-sequence photometric augmentation, the drone paper's recipe, on uint8 frames.

Chahine et al. (Science Robotics 2023) trained with brightness, contrast and saturation
jitter of ±0.4 drawn once per sequence, plus Gaussian pixel noise of 0.05. Drawing the colour
factors once per sequence (not per frame) keeps a window temporally consistent, as a real
camera under one light would be. The frames go uint8 → float in [0, 1] → augmented → uint8,
so the model keeps its uint8 input contract and normalises inside itself, as on the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# ITU-R BT.601 luma weights, the grey that saturation and contrast pivot around.
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class AugmentConfig:
    """Strength of each augmentation; 0 turns one off."""

    brightness: float = 0.4  # factor drawn in [1-b, 1+b] per sequence (paper: ±0.4)
    contrast: float = 0.4  # factor drawn in [1-c, 1+c] per sequence (paper: ±0.4)
    saturation: float = 0.4  # factor drawn in [1-s, 1+s] per sequence (paper: ±0.4)
    noise_std: float = 0.05  # Gaussian noise per pixel, in [0, 1] intensity units (paper: 0.05)

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "saturation"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if not 0.0 <= self.noise_std <= 1.0:
            raise ValueError(f"noise_std must be in [0, 1], got {self.noise_std}")


def _factors(batch: int, strength: float, generator: torch.Generator) -> torch.Tensor:
    """One multiplicative factor per sequence, uniform in [1-strength, 1+strength]."""
    u = torch.rand(batch, generator=generator) * 2.0 - 1.0
    return (1.0 + strength * u).view(batch, 1, 1, 1, 1)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """Luma of [..., 3] RGB as [..., 1]."""
    weights = torch.tensor(_LUMA, dtype=x.dtype)
    return (x * weights).sum(dim=-1, keepdim=True)


def augment_frames(
    frames: torch.Tensor, config: AugmentConfig, generator: torch.Generator
) -> torch.Tensor:
    """Augment uint8 frames [B, T, H, W, 3]; returns uint8 of the same shape.

    Brightness scales intensities, contrast pulls each frame toward its mean grey, saturation
    toward its per-pixel grey, then noise is added; the result is clamped and rounded.
    """
    if frames.dtype != torch.uint8 or frames.dim() != 5 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames [B,T,H,W,3], got {frames.dtype} {frames.shape}")
    batch = frames.shape[0]
    x = frames.to(torch.float32) / 255.0
    if config.brightness > 0:
        x = x * _factors(batch, config.brightness, generator)
    if config.contrast > 0:
        mean = _grey(x).mean(dim=(2, 3), keepdim=True)
        x = (x - mean) * _factors(batch, config.contrast, generator) + mean
    if config.saturation > 0:
        grey = _grey(x)
        x = (x - grey) * _factors(batch, config.saturation, generator) + grey
    if config.noise_std > 0:
        x = x + config.noise_std * torch.randn(x.shape, generator=generator)
    return (x.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
