"""NavPolicy and the baselines: size, FLOPs, sequence = step loop, dt, config checks, export."""

import dataclasses

import pytest
import torch
from tiny import MICRO as TINY

from edgeliquid.model import baselines
from edgeliquid.model.baselines import (
    POLICIES,
    DenseCfCPolicy,
    GRUPolicy,
    LSTMDtPolicy,
    LSTMPolicy,
    build_policy,
)
from edgeliquid.model.checkpoint import load_checkpoint, save_checkpoint
from edgeliquid.model.flops import count_parameters, estimate_flops
from edgeliquid.model.policy import ARCHS, NavPolicy, NavPolicyConfig

# A tiny config keeps the step-loop tests to milliseconds.


def _frames(batch, steps, config=TINY, seed=0):
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, steps, config.input_height, config.input_width, 3)
    return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)


def _policy(arch, config=TINY, seed=0):
    torch.manual_seed(seed)
    policy = build_policy(dataclasses.replace(config, arch=arch)).eval()
    with torch.no_grad():  # non-trivial command scaling, so the test sees it applied
        policy.command_mean.copy_(torch.tensor([1.0, -0.5, 0.2, 0.0]))
        policy.command_std.copy_(torch.tensor([2.0, 1.5, 0.5, 0.8]))
    return policy


def test_default_cfc_policy_size_and_flops():
    policy = NavPolicy()
    params, flops = count_parameters(policy), estimate_flops(policy)
    print(f"NavPolicy default: {params} parameters, {flops / 1e6:.2f} MFLOP/step")
    assert 15_000 <= params <= 25_000
    assert flops <= 10_000_000
    assert flops > 2 * sum(p.numel() for p in policy.head.convs.parameters())  # convs slide
    assert policy.state_size == 28 and policy.cfc.layer_sizes == (12, 8, 8)


def test_baselines_match_the_cfc_parameter_count():
    cfc = count_parameters(build_policy(NavPolicyConfig()))
    for arch in ("cfc_dense", "lstm", "lstm_dt", "gru", "cnn"):
        params = count_parameters(build_policy(NavPolicyConfig(arch=arch)))
        print(f"{arch}: {params} parameters ({params / cfc - 1:+.1%} vs cfc {cfc})")
        assert abs(params / cfc - 1) <= 0.05
        assert estimate_flops(build_policy(NavPolicyConfig(arch=arch))) <= 10_000_000


def test_more_motor_neurons_than_commands(tmp_path):
    config = NavPolicyConfig(ncp_units=28, ncp_motor=8)
    policy = NavPolicy(config)
    assert policy.cfc.layer_sizes == (12, 8, 8) and policy.readout.in_features == 8
    commands, state = policy(torch.zeros(2, 3, 72, 128, 3, dtype=torch.uint8), None, None)
    assert commands.shape == (2, 3, 4) and state.shape == (2, 28)
    cfc = count_parameters(policy)
    for arch in ("lstm", "cnn"):  # the baselines match the larger core too
        other = count_parameters(
            build_policy(NavPolicyConfig(arch=arch, ncp_units=28, ncp_motor=8))
        )
        assert abs(other / cfc - 1) <= 0.05
    _a_checkpoint_from_before_the_field_keeps_4(tmp_path)


def _a_checkpoint_from_before_the_field_keeps_4(tmp_path):
    old = NavPolicy(NavPolicyConfig(ncp_units=24, ncp_motor=4))
    save_checkpoint(tmp_path / "old.pt", old)
    raw = torch.load(tmp_path / "old.pt", weights_only=True)
    del raw["config"]["ncp_motor"]  # as files written before it
    torch.save(raw, tmp_path / "old.pt")
    loaded, _ = load_checkpoint(tmp_path / "old.pt")
    assert loaded.config.ncp_motor == 4 and loaded.cfc.layer_sizes == (12, 8, 4)
    for bad in (3, 26):
        with pytest.raises(
            ValueError, match=r"ncp_motor must be 0 \(auto\) or in 4\.\.ncp_units - 3"
        ):
            NavPolicyConfig(ncp_units=28, ncp_motor=bad)


@pytest.mark.parametrize("mode", ["default", "no_gate", "pure"])
def test_matched_hidden_formulas_equal_the_built_cores(mode):
    # matched_hidden sizes each core from a formula; the built modules must agree with it
    for arch in ("cfc_dense", "lstm", "lstm_dt", "gru", "cnn"):
        for hidden in (3, 11):
            policy = build_policy(NavPolicyConfig(arch=arch, cfc_mode=mode, rnn_hidden=hidden))
            core = count_parameters(policy) - count_parameters(policy.head)
            inputs = policy.config.feature_size
            count = {
                "cfc_dense": baselines._dense_cfc_parameters(mode),
                "lstm": baselines._lstm_parameters,
                "lstm_dt": lambda i, h: baselines._lstm_parameters(i + 1, h),
                "gru": lambda i, h: baselines._gru_parameters(i + 1, h),
                "cnn": baselines._cnn_parameters,
            }[arch]
            assert core == count(inputs, hidden), (arch, mode, hidden)


@pytest.mark.parametrize(("mode", "layers"), [("default", 1), ("pure", 2)])
def test_a_dense_cfc_backbone_is_counted_and_matched(mode, layers):
    config = NavPolicyConfig(
        arch="cfc_dense", cfc_mode=mode, backbone_units=8, backbone_layers=layers
    )
    policy = build_policy(config)
    core = count_parameters(policy) - count_parameters(policy.head)
    count = baselines._dense_cfc_parameters(mode, 8, layers)
    assert core == count(config.feature_size, policy.hidden_size)
    assert policy.cfc.backbone is not None and f"backbone {layers}x8" in policy.core_summary
    cfc = count_parameters(build_policy(NavPolicyConfig(cfc_mode=mode)))
    assert abs(count_parameters(policy) / cfc - 1) <= 0.05  # still matched to the wired CfC
    with pytest.raises(ValueError, match=r"backbone_layers in 0\.\.4"):
        NavPolicyConfig(arch="cfc_dense", backbone_layers=5)


def test_dense_cfc_is_the_wired_cell_without_wiring():
    policy = build_policy(NavPolicyConfig(arch="cfc_dense"))
    assert isinstance(policy, DenseCfCPolicy)
    assert policy.cfc.sparsity_mask is None and policy.cfc.backbone is None
    assert policy.state_size == policy.hidden_size == 17
    assert "dense CfC" in policy.core_summary


@pytest.mark.parametrize("batch", [1, 3])
def test_dense_cfc_core_equals_ncps_cfc(batch):
    # ncps CfC(F, H, backbone_layers=0, proj_size=4) with our weights: cell + readout = ours
    from ncps.torch import CfC

    policy = _policy("cfc_dense", dataclasses.replace(TINY, rnn_hidden=6))
    ref = CfC(TINY.feature_size, 6, proj_size=4, backbone_layers=0, batch_first=True)
    ref.rnn_cell.load_state_dict(policy.cfc.state_dict())
    ref.fc.load_state_dict(policy.readout.state_dict())
    gen = torch.Generator().manual_seed(3)
    features = torch.randn(batch, 7, TINY.feature_size, generator=gen)
    # ncps squeezes per-step timespans to (B,) (issues #81/#82): varying ts only for B = 1
    ts = torch.rand(1, 7, generator=gen) + 0.3 if batch == 1 else None
    with torch.no_grad():
        expected, _ = ref(features, timespans=ts)
        state, outputs = policy.initial_state(batch), []
        for t in range(7):
            raw, state = policy.core(features[:, t], state, 1.0 if ts is None else ts[:, t])
            outputs.append(raw)
    torch.testing.assert_close(torch.stack(outputs, 1), expected)


def test_plain_lstm_ignores_dt_and_lstm_dt_reads_it():
    assert not LSTMPolicy.dt_input and LSTMDtPolicy.dt_input
    lstm, lstm_dt = _policy("lstm"), _policy("lstm_dt")
    assert lstm.rnn.input_size == TINY.feature_size == lstm_dt.rnn.input_size - 1
    frames = _frames(2, 4)
    with torch.no_grad():
        torch.testing.assert_close(lstm(frames, dt=0.05)[0], lstm(frames, dt=0.4)[0])
    assert "no dt" in lstm.core_summary and "dt as input" in lstm_dt.core_summary


def test_registry_covers_every_arch():
    assert set(POLICIES) == set(ARCHS)
    assert type(build_policy(dataclasses.replace(TINY, arch="gru"))) is GRUPolicy
    assert type(build_policy(dataclasses.replace(TINY, arch="lstm_dt"))) is LSTMDtPolicy


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_equals_a_loop_of_steps_with_varying_dt(arch):
    policy = _policy(arch)
    frames = _frames(3, 5)
    dt = torch.rand(3, 5, generator=torch.Generator().manual_seed(1)) * 0.3 + 0.02
    with torch.no_grad():
        commands, final = policy(frames, dt=dt)
        state = policy.initial_state(3)
        for t in range(5):
            command, state = policy.step(frames[:, t], state, dt[:, t : t + 1])
            torch.testing.assert_close(commands[:, t], command)
        torch.testing.assert_close(final, state)
        torch.testing.assert_close(policy(frames, dt=dt.unsqueeze(-1))[0], commands)
    assert commands.shape == (3, 5, 4) and final.shape == (3, policy.state_size)


@pytest.mark.parametrize("arch", ARCHS)
def test_batch_norm_head_trains_on_the_batch_and_steps_on_its_own_frame(arch):
    """conv_norm batch (the default): BN after every conv, +1 parameter per channel net of the
    dropped conv bias, the FLOPs of the folded graph; train() normalises over the batch's
    frames, eval() with running stats, so after training the sequence still equals a loop of
    single steps."""
    policy = _policy(arch)
    plain = _policy(arch, dataclasses.replace(TINY, conv_norm="none"))
    norms = [m for m in policy.head.convs if isinstance(m, torch.nn.BatchNorm2d)]
    assert policy.config.conv_norm == "batch" and len(norms) == len(TINY.conv_channels)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    extra = count_parameters(policy) - count_parameters(plain)
    assert extra == sum(TINY.conv_channels)
    assert estimate_flops(policy) == estimate_flops(plain)  # folded at export: same graph
    frames = _frames(3, 5)
    policy.train()
    with torch.no_grad():
        for seed in range(3):  # running statistics move away from their init
            policy(_frames(4, 5, seed=seed + 1))
    assert norms[0].running_var.sub(1).abs().max() > 1e-3
    policy.eval()
    with torch.no_grad():
        commands, _ = policy(frames)
        state = policy.initial_state(3)
        for t in range(5):
            command, state = policy.step(frames[:, t], state)
            torch.testing.assert_close(commands[:, t], command)
        alone, _ = policy.step(frames[:1, 0])  # no other frame in the batch changes it
    torch.testing.assert_close(alone, commands[:1, 0])
    assert commands.shape == (3, 5, 4)


@pytest.mark.parametrize("arch", ARCHS)
def test_dt_forms_agree_and_default_is_nominal(arch):
    policy = _policy(arch)
    frames = _frames(2, 4)
    with torch.no_grad():
        nominal = policy(frames)[0]
        torch.testing.assert_close(policy(frames, dt=0.1)[0], nominal)
        torch.testing.assert_close(policy(frames, dt=torch.tensor(0.1))[0], nominal)
        torch.testing.assert_close(policy(frames, dt=torch.full((2, 4), 0.1))[0], nominal)
        state = policy.initial_state(2)
        one = policy.step(frames[:, 0], state, torch.full((2,), 0.1))[0]
        torch.testing.assert_close(one, nominal[:, 0])


@pytest.mark.parametrize("arch", ["cfc", "cfc_dense", "lstm_dt", "gru"])
def test_dt_changes_the_output(arch):
    policy = _policy(arch)
    frames = _frames(2, 4)
    with torch.no_grad():
        slow, fast = policy(frames, dt=0.05)[0], policy(frames, dt=0.4)[0]
    assert (slow - fast).abs().max() > 1e-4


def test_cnn_is_stateless_and_ignores_dt():
    policy = _policy("cnn")
    frames = _frames(2, 3)
    given = torch.tensor([[0.25], [-3.0]])
    with torch.no_grad():
        commands, state = policy(frames, given, dt=0.05)
        torch.testing.assert_close(policy(frames, dt=0.4)[0], commands)
        torch.testing.assert_close(policy(frames)[0], commands)  # the state changes nothing
    torch.testing.assert_close(state, given)  # one pass-through value, for the ONNX contract


def test_commands_are_scaled_to_physical_units():
    policy = _policy("cfc")
    frame = _frames(2, 1)[:, 0]
    with torch.no_grad():
        command, _ = policy.step(frame, None, 0.1)
        raw, _ = policy.core(policy.head(frame), policy.initial_state(2), 1.0)
    torch.testing.assert_close(command, raw * policy.command_std + policy.command_mean)
    torch.testing.assert_close(policy.normalize_commands(command), raw)


@pytest.mark.parametrize(
    "policy_cls, cell_cls",
    [(LSTMPolicy, "LSTMCell"), (LSTMDtPolicy, "LSTMCell"), (GRUPolicy, "GRUCell")],
)
def test_written_out_cells_equal_torch_cells(policy_cls, cell_cls):
    torch.manual_seed(0)
    policy = policy_cls(dataclasses.replace(TINY, rnn_hidden=6))
    features = torch.randn(3, TINY.feature_size)
    state = torch.randn(3, policy.state_size)
    ts = torch.rand(3, 1)
    with torch.no_grad():
        _, ours = policy.core(features, state, ts)
        with_dt = policy_cls is not LSTMPolicy
        inputs = torch.cat([features, ts], 1) if with_dt else features
        if cell_cls == "LSTMCell":
            h, c = policy.rnn(inputs, (state[:, :6], state[:, 6:]))
            expected = torch.cat([h, c], 1)
        else:
            expected = policy.rnn(inputs, state)
    torch.testing.assert_close(ours, expected)


@pytest.mark.parametrize("arch", ARCHS)
def test_step_exports_with_tensor_state_and_dt(arch):
    policy = _policy(arch)

    class Step(torch.nn.Module):
        def forward(self, frame, state, dt):
            return policy.step(frame, state, dt)

    frame, state = _frames(2, 1)[:, 0], torch.randn(2, policy.state_size) * 0.1
    exported = torch.export.export(Step(), (frame, state, torch.full((2, 1), 0.1)))
    other_frame, other_dt = _frames(2, 1, seed=5)[:, 0], torch.tensor([[0.05], [0.3]])
    with torch.no_grad():
        expected = policy.step(other_frame, state, other_dt)
    torch.testing.assert_close(exported.module()(other_frame, state, other_dt), expected)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(arch="transformer"), "arch must be one of"),
        (dict(conv_norm="layer"), "conv_norm must be one of"),
        (dict(input_norm="imagenet"), "input_norm must be one of"),
        (dict(cfc_mode="fast"), "no_gate"),
        (dict(conv_kernels=(3,)), "same non-zero length"),
        (dict(input_height=0), "too small"),
        (dict(image_std=(0.2, 0.0, 0.2)), "image_std must be > 0"),
        (dict(image_mean=(0.5, 0.5)), "3 values"),
        (dict(ncp_units=5), "ncp_units must be >= 7"),
        (dict(ncp_sparsity=0.95), r"\[0.1, 0.9\]"),
        (dict(nominal_dt=0.0), "nominal_dt"),
        (dict(feature_dropout=1.0), "feature_dropout"),
        (dict(rnn_hidden=-1), "rnn_hidden"),
    ],
)
def test_config_validation_names_the_problem(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(NavPolicyConfig(), **change)


def test_config_round_trips_through_a_plain_dict():
    config = dataclasses.replace(TINY, arch="lstm", rnn_hidden=7)
    fields = dataclasses.asdict(config).items()
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in fields}
    assert NavPolicyConfig(**plain) == config


def test_wrong_frame_shapes_are_named():
    policy = _policy("cfc")
    with pytest.raises(
        ValueError, match=r"\[B,H,W,3\] with H,W,3 = \(16, 24, 3\), got \(2, 24, 16, 3\)"
    ):
        policy.step(torch.zeros(2, 24, 16, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\[B,T,H,W,3\]"):
        policy(torch.zeros(2, 16, 24, 3, dtype=torch.uint8))
