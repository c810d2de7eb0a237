"""Shared test fixtures: the tiny policy configs and a hand-built ONNX step graph.

The helpers themselves live in `tests/tiny.py` (policy sizes) and `tests/onnx_fixtures.py`
(a numpy-referenced ONNX graph with edgeliquid metadata); `pythonpath = ["tests"]` in
pyproject.toml lets any test import them by name, and these fixtures wrap the common uses.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED_ONNX = REPO / "models" / "nav_cfc.onnx"


@pytest.fixture
def micro_config():
    """The smallest NavPolicyConfig the shape and checkpoint tests use."""
    from tiny import MICRO

    return MICRO


@pytest.fixture
def tiny_config():
    """The NavPolicyConfig the export and bench tests fly in the simulator."""
    from tiny import TINY

    return TINY


@pytest.fixture
def onnx_step_model(tmp_path) -> Path:
    """A valid, signed edgeliquid step graph (no torch needed to build it)."""
    from onnx_fixtures import write_model

    return write_model(tmp_path / "step.onnx")


@pytest.fixture
def shipped_onnx() -> Path:
    """The shipped policy, models/nav_cfc.onnx."""
    return SHIPPED_ONNX
