"""Parity of our CfC cells with ncps 1.0.1, and the timespan forms ncps gets wrong."""

import pytest
import torch
from ncps import torch as ncps_torch
from ncps.wirings import NCP, AutoNCP

from edgeliquid.model.cfc import CfCCell, WiredCfCCell

BATCH, INPUT, HIDDEN = 5, 8, 6


def _randomize(module: torch.nn.Module, seed: int) -> None:
    """Random values in every parameter (biases and pure-mode A/w_tau included)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.7)


def _inputs(seed: int, input_size: int, hidden: int):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, input_size, generator=gen)
    h = torch.randn(BATCH, hidden, generator=gen) * 0.5
    ts_batch = torch.rand(BATCH, 1, generator=gen) * 2.0 + 0.05
    return x, h, ts_batch


def _reference_per_sample(ref, x, h, ts_batch):
    """ncps with a python-float ts, one sample at a time: sidesteps any batching question."""
    outs = [ref(x[i : i + 1], h[i : i + 1], float(ts_batch[i, 0]))[1] for i in range(BATCH)]
    return torch.cat(outs, 0)


@pytest.mark.parametrize("mode", ["default", "no_gate", "pure"])
@pytest.mark.parametrize("layers", [0, 1, 2])
def test_cfc_cell_matches_ncps(mode, layers):
    torch.manual_seed(0)
    kwargs = dict(mode=mode, backbone_units=16, backbone_layers=layers)
    ref = ncps_torch.CfCCell(INPUT, HIDDEN, **kwargs)
    _randomize(ref, seed=layers)
    ours = CfCCell(INPUT, HIDDEN, **kwargs)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x, h, ts_batch = _inputs(1, INPUT, HIDDEN)
    with torch.no_grad():
        # scalar ts: python float and 0-d tensor
        expected = ref(x, h, 0.7)[0]
        torch.testing.assert_close(ours(x, h, 0.7)[0], expected, atol=1e-6, rtol=0)
        torch.testing.assert_close(ours(x, h, torch.tensor(0.7))[0], expected, atol=1e-6, rtol=0)
        # per-sample ts: ncps's cell takes (B, 1); we take (B, 1) and the (B,) ncps's CfC makes
        expected = ref(x, h, ts_batch)[0]
        torch.testing.assert_close(ours(x, h, ts_batch)[0], expected, atol=1e-6, rtol=0)
        flat = ours(x, h, ts_batch.squeeze(1))[0]
        torch.testing.assert_close(flat, expected, atol=1e-6, rtol=0)
        looped = _reference_per_sample(ref, x, h, ts_batch)
        # one BLAS call per sample rounds differently from the batched call: 1.01e-6 seen on
        # one CPU with 2 backbone layers, so a few float32 ulps of slack (values are O(1))
        torch.testing.assert_close(flat, looped, atol=4e-6, rtol=0)


def test_ts_changes_the_state():
    torch.manual_seed(0)
    cell = CfCCell(INPUT, HIDDEN, backbone_layers=0)
    _randomize(cell, seed=3)
    x, h, _ = _inputs(2, INPUT, HIDDEN)
    with torch.no_grad():
        assert not torch.allclose(cell(x, h, 0.1)[0], cell(x, h, 1.0)[0])


@pytest.mark.parametrize("activation", ["silu", "relu", "tanh", "gelu", "lecun_tanh"])
def test_backbone_activations_match_ncps(activation):
    torch.manual_seed(0)
    kwargs = dict(backbone_activation=activation, backbone_units=12, backbone_layers=3)
    ref = ncps_torch.CfCCell(INPUT, HIDDEN, backbone_dropout=0.2, **kwargs).eval()
    ours = CfCCell(INPUT, HIDDEN, backbone_dropout=0.2, **kwargs).eval()
    assert list(ours.state_dict()) == list(ref.state_dict())  # dropout shifts the indices
    ours.load_state_dict(ref.state_dict(), strict=True)
    x, h, ts_batch = _inputs(4, INPUT, HIDDEN)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, h, ts_batch)[0], ref(x, h, ts_batch)[0])


def test_masked_cell_state_dict_loads_both_ways():
    gen = torch.Generator().manual_seed(5)
    mask = (torch.rand(INPUT + HIDDEN, HIDDEN, generator=gen) > 0.5).float().numpy() * -1.0
    ref = ncps_torch.CfCCell(INPUT, HIDDEN, backbone_layers=0, sparsity_mask=mask)
    ours = CfCCell(INPUT, HIDDEN, backbone_layers=0, sparsity_mask=mask)
    assert "sparsity_mask" in dict(ours.named_buffers())
    assert "sparsity_mask" not in dict(ours.named_parameters())
    torch.testing.assert_close(ours.sparsity_mask, ref.sparsity_mask.data)  # |mask|^T
    _randomize(ref, seed=6)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x, h, ts_batch = _inputs(7, INPUT, HIDDEN)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, h, ts_batch)[0], ref(x, h, ts_batch)[0])
    _randomize(ours, seed=8)
    ref.load_state_dict(ours.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, h, 0.3)[0], ref(x, h, 0.3)[0])


def _wired_pair(mode, wiring_factory, input_size):
    torch.manual_seed(0)
    ref = ncps_torch.WiredCfCCell(input_size, wiring_factory(), mode=mode)
    ours = WiredCfCCell(input_size, wiring_factory(), mode=mode)
    return ref, ours


@pytest.mark.parametrize("mode", ["default", "no_gate", "pure"])
def test_wired_cell_matches_ncps_on_autoncp(mode):
    ref, ours = _wired_pair(mode, lambda: AutoNCP(16, 3, sparsity_level=0.5, seed=7), INPUT)
    assert sorted(ours.state_dict()) == sorted(ref.state_dict())
    assert ours.layer_sizes == tuple(ref.layer_sizes)
    assert (ours.state_size, ours.output_size) == (16, 3)
    _randomize(ref, seed=9)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x, h, ts_batch = _inputs(10, INPUT, 16)
    with torch.no_grad():
        for ts in (1.0, torch.tensor(0.25), ts_batch):
            out_ref, state_ref = ref(x, h, ts)
            out, state = ours(x, h, ts)
            torch.testing.assert_close(out, out_ref, atol=1e-6, rtol=0)
            torch.testing.assert_close(state, state_ref, atol=1e-6, rtol=0)
            torch.testing.assert_close(out, state[:, -3:], atol=0, rtol=0)  # motor = last


def test_wired_state_dict_loads_into_ncps():
    def wiring():
        return NCP(6, 4, 2, sensory_fanout=3, inter_fanout=2, recurrent_command_synapses=3,
                   motor_fanin=2, seed=1)  # fmt: skip

    ref, ours = _wired_pair("default", wiring, INPUT)
    for name, buf in ours.named_buffers():
        torch.testing.assert_close(buf, ref.state_dict()[name], msg=name)
    _randomize(ours, seed=11)
    ref.load_state_dict(ours.state_dict(), strict=True)
    x, h, ts_batch = _inputs(12, INPUT, 12)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, h, ts_batch)[1], ref(x, h, ts_batch)[1])


def test_masked_weights_get_no_effect():
    _, ours = _wired_pair("default", lambda: AutoNCP(16, 3, seed=7), INPUT)
    cell = ours.layer_0
    x, h, _ = _inputs(13, INPUT, 16)
    blocked = (cell.sparsity_mask == 0).nonzero()[0]  # (unit, input) with no synapse
    with torch.no_grad():
        before = ours(x, h, 1.0)[1]
        cell.ff1.weight[blocked[0], blocked[1]] += 5.0
        cell.ff2.weight[blocked[0], blocked[1]] += 5.0
        torch.testing.assert_close(ours(x, h, 1.0)[1], before, atol=0, rtol=0)


def test_invalid_arguments_name_the_allowed_values():
    with pytest.raises(ValueError, match="no_gate"):
        CfCCell(4, 4, mode="fast")
    with pytest.raises(ValueError, match="lecun_tanh"):
        CfCCell(4, 4, backbone_activation="swish")
    with pytest.raises(ValueError, match="input_size"):
        WiredCfCCell(None, AutoNCP(10, 2))
