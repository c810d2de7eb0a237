"""Torch models: CfC cells (ncps-compatible), NavPolicy, baselines, checkpoints.

Torch (and ncps, for NCP wirings) are needed here; the on-device runtime never imports this.
"""

from edgeliquid.model.baselines import (
    POLICIES,
    CNNPolicy,
    DenseCfCPolicy,
    GRUPolicy,
    LSTMDtPolicy,
    LSTMPolicy,
    build_policy,
)
from edgeliquid.model.cfc import CfCCell, WiredCfCCell
from edgeliquid.model.checkpoint import load_checkpoint, save_checkpoint
from edgeliquid.model.flops import count_parameters, estimate_flops, policy_summary
from edgeliquid.model.policy import ARCHS, CONV_NORMS, NavPolicy, NavPolicyConfig, PolicyBase

__all__ = [
    "ARCHS",
    "CONV_NORMS",
    "POLICIES",
    "CNNPolicy",
    "CfCCell",
    "DenseCfCPolicy",
    "GRUPolicy",
    "LSTMDtPolicy",
    "LSTMPolicy",
    "NavPolicy",
    "NavPolicyConfig",
    "PolicyBase",
    "WiredCfCCell",
    "build_policy",
    "count_parameters",
    "estimate_flops",
    "load_checkpoint",
    "policy_summary",
    "save_checkpoint",
]
