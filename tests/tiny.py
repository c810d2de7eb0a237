"""Tiny policy sizes shared by the test layers, so each test runs in seconds."""

from edgeliquid.model import NavPolicyConfig

# Small enough for shape and checkpoint tests (the simulator needs >= 16 px per side).
MICRO = NavPolicyConfig(
    input_height=16,
    input_width=24,
    conv_channels=(4, 4),
    conv_kernels=(3, 3),
    conv_strides=(2, 2),
    feature_size=8,
    ncp_units=10,
)
# What export and bench tests fly in the simulator.
TINY = NavPolicyConfig(
    input_height=24,
    input_width=32,
    conv_channels=(4, 6),
    conv_kernels=(3, 3),
    conv_strides=(2, 2),
    feature_size=8,
    ncp_units=10,
)
