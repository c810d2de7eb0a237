"""One command contract: what an exported file and the simulator say are edgeliquid.contract's."""

from __future__ import annotations

import numpy as np
import torch
from tiny import TINY

from edgeliquid import contract
from edgeliquid.export.graph import ExportOptions, export_checkpoint
from edgeliquid.model import NavPolicy
from edgeliquid.runtime.daemon import HOLD
from edgeliquid.runtime.metadata import ModelMetadata, metadata_props
from edgeliquid.sim import NavEnv, NavEnvConfig


def test_exported_metadata_is_the_contract():
    torch.manual_seed(0)
    model, _ = export_checkpoint(NavPolicy(TINY).eval(), {}, ExportOptions())
    meta = ModelMetadata.from_props(metadata_props(model.SerializeToString()))
    assert meta.command_names == contract.COMMAND_NAMES
    assert meta.command_units == contract.COMMAND_UNITS
    assert meta.command_limits == contract.COMMAND_LIMITS
    assert meta.nominal_dt == contract.NOMINAL_DT


def test_sim_limits_and_timing_are_the_contract():
    env = NavEnv(NavEnvConfig(height=24, width=32))
    limits = np.asarray(contract.COMMAND_LIMITS, np.float32)
    np.testing.assert_array_equal(env.action_space.high, limits)
    np.testing.assert_array_equal(env.action_space.low, -limits)
    assert env.action_space.shape == (len(contract.COMMAND_NAMES),)
    assert NavEnvConfig().dt == contract.NOMINAL_DT


def test_hold_is_the_contract():
    assert HOLD.dtype == np.float32
    assert tuple(HOLD.tolist()) == contract.HOLD
