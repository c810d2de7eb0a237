"""Checkpoints: exact round trip for every arch, one clear line for anything else."""

import dataclasses
import os

import pytest
import torch
from tiny import MICRO as TINY

from edgeliquid.errors import EdgeLiquidError
from edgeliquid.model.baselines import build_policy
from edgeliquid.model.checkpoint import load_checkpoint, save_checkpoint
from edgeliquid.model.policy import ARCHS


def _trained_looking(arch, seed=0):
    torch.manual_seed(seed)
    policy = build_policy(dataclasses.replace(TINY, arch=arch, ncp_seed=seed + 1))
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # away from any init a rebuild could reproduce
        policy.command_mean.copy_(torch.tensor([1.5, 0.0, -0.2, 0.1]))
        policy.command_std.copy_(torch.tensor([0.9, 0.4, 0.3, 0.6]))
    return policy


@pytest.mark.parametrize("arch", ARCHS)
def test_round_trip_is_exact(tmp_path, arch):
    policy = _trained_looking(arch)
    path = save_checkpoint(tmp_path / "run.pt", policy, epoch=3, losses=[0.5, 0.25])
    loaded, ckpt = load_checkpoint(path)
    assert type(loaded) is type(policy) and not loaded.training
    assert loaded.config == policy.config
    assert ckpt["epoch"] == 3 and ckpt["losses"] == [0.5, 0.25]
    expected = policy.state_dict()
    assert list(loaded.state_dict()) == list(expected)
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, expected[key]), key
    frames = torch.randint(0, 256, (2, 3, 16, 24, 3), dtype=torch.uint8)
    with torch.no_grad():
        out, state = policy.eval()(frames, dt=0.07)
        out2, state2 = loaded(frames, dt=0.07)
    torch.testing.assert_close(out2, out, atol=0, rtol=0)
    torch.testing.assert_close(state2, state, atol=0, rtol=0)


def test_checkpoint_from_before_conv_norm_loads_without_batch_norm(tmp_path):
    """A config dict without conv_norm (every file written before BatchNorm) rebuilds its
    BN-free head and gives bit-identical outputs, not today's default head."""
    policy = build_policy(dataclasses.replace(TINY, conv_norm="none"))
    ckpt = torch.load(save_checkpoint(tmp_path / "new.pt", policy), weights_only=True)
    del ckpt["config"]["conv_norm"]
    torch.save(ckpt, tmp_path / "old.pt")
    loaded, _ = load_checkpoint(tmp_path / "old.pt")
    assert loaded.config.conv_norm == "none"
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in loaded.modules())
    frames = torch.randint(0, 256, (2, 3, 16, 24, 3), dtype=torch.uint8)
    with torch.no_grad():
        expected, _ = policy.eval()(frames)
        torch.testing.assert_close(loaded(frames)[0], expected, atol=0, rtol=0)


def test_file_is_a_plain_weights_only_dict(tmp_path):
    save_checkpoint(tmp_path / "c.pt", _trained_looking("cfc"), note="hello")
    raw = torch.load(tmp_path / "c.pt", weights_only=True)
    assert raw["format"] == "edgeliquid-checkpoint" and raw["version"] == 1
    assert raw["config"]["arch"] == "cfc" and raw["config"]["conv_channels"] == [4, 4]
    assert "cfc.layer_0.sparsity_mask" in raw["state_dict"]  # the wiring travels with it
    assert raw["note"] == "hello"


def test_save_replaces_atomically_and_leaves_no_temp(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, _trained_looking("gru", seed=0))
    save_checkpoint(path, _trained_looking("lstm", seed=1))
    assert os.listdir(tmp_path) == ["c.pt"]
    assert load_checkpoint(path)[0].config.arch == "lstm"


def test_save_rejects_reserved_or_unloadable_extras(tmp_path):
    policy = _trained_looking("cnn")
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "c.pt", policy, config={})
    with pytest.raises(ValueError, match=r"extra\['meta'\]\['when'\] is a object"):
        save_checkpoint(tmp_path / "c.pt", policy, meta={"when": object()})
    assert not list(tmp_path.iterdir())


def _write_bad_files(tmp_path):
    good = _trained_looking("cfc")
    sd = good.state_dict()
    ckpt = torch.load(save_checkpoint(tmp_path / "good.pt", good), weights_only=True)
    wrong_shape = {**sd, "readout.weight": torch.zeros(2, 2)}
    files = {
        "missing.pt": None,
        "text.pt": b"this is not a checkpoint\n",
        "random.pt": bytes(torch.randint(0, 256, (4000,), dtype=torch.uint8).tolist()),
        "empty.pt": b"",
        "plain_state_dict.pt": sd,
        "a_list.pt": [1, 2, 3],
        "no_format.pt": {"config": ckpt["config"]},
        "other_format.pt": {**ckpt, "format": "lightning"},
        "future.pt": {**ckpt, "version": 2},
        "bad_config.pt": {**ckpt, "config": {**ckpt["config"], "arch": "mamba"}},
        "unknown_config_key.pt": {**ckpt, "config": {**ckpt["config"], "colour": 1}},
        "wrong_keys.pt": {**ckpt, "state_dict": {"w": torch.zeros(1)}},
        "wrong_shape.pt": {**ckpt, "state_dict": wrong_shape},
    }
    for name, content in files.items():
        if isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        elif content is not None:
            torch.save(content, tmp_path / name)
    return files


EXPECTED_PROBLEM = {
    "missing.pt": "does not exist",
    "text.pt": "not a readable torch file",
    "random.pt": "not a readable torch file",
    "empty.pt": "not a readable torch file",
    "plain_state_dict.pt": "plain state_dict",
    "a_list.pt": "holds a list",
    "no_format.pt": "no 'format' key",
    "other_format.pt": "format 'lightning'",
    "future.pt": "version 2",
    "bad_config.pt": "arch must be one of",
    "unknown_config_key.pt": "colour",
    "wrong_keys.pt": "do not fit its config",
    "wrong_shape.pt": "readout.weight",
}


def test_non_checkpoints_fail_with_one_clear_line(tmp_path):
    files = _write_bad_files(tmp_path)
    assert set(files) == set(EXPECTED_PROBLEM)
    for name, problem in EXPECTED_PROBLEM.items():
        with pytest.raises(EdgeLiquidError) as info:
            load_checkpoint(tmp_path / name)
        message = str(info.value)
        assert str(tmp_path / name) in message, message
        assert problem in message, message
        assert "\n" not in message and len(message) < 300, message
    with pytest.raises(EdgeLiquidError, match="is a directory"):
        load_checkpoint(tmp_path)


# -- edgeliquid info -----------------------------------------------------------------------


def _info(*args):
    from typer.testing import CliRunner

    from edgeliquid.cli import app

    return CliRunner().invoke(app, ["info", *args])


def _fields(output):
    return dict(line.split(":", 1) for line in output.strip().splitlines())


def test_info_describes_the_default_policy():
    result = _info()
    assert result.exit_code == 0, result.output
    fields = {k: v.strip() for k, v in _fields(result.output).items()}
    print(result.output)
    params = int(fields["parameters"].replace(",", ""))
    assert 15_000 <= params <= 25_000 and float(fields["MFLOP/step"]) <= 10.0
    assert fields["arch"].startswith("cfc") and fields["input"].startswith("72x128")
    assert fields["state size"] == "28"


def test_info_reads_a_checkpoint_and_the_arch_option(tmp_path):
    policy = _trained_looking("lstm")
    save_checkpoint(tmp_path / "l.pt", policy)
    fields = {k: v.strip() for k, v in _fields(_info(str(tmp_path / "l.pt")).output).items()}
    assert fields["arch"].startswith("lstm") and fields["input"].startswith("16x24")
    assert fields["state size"] == str(policy.state_size)
    assert int(fields["parameters"].replace(",", "")) == sum(p.numel() for p in policy.parameters())
    gru = _fields(_info("--arch", "gru").output)
    assert gru["arch"].strip().startswith("gru")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--arch", "rnn"], "--arch must be one of cfc, cfc_dense, lstm, lstm_dt, gru, cnn"),
        (["missing.pt"], "missing.pt does not exist"),
        (["x.pt", "--arch", "cfc"], "--arch is for the default config"),
    ],
)
def test_info_errors_are_one_line(args, message):
    result = _info(*args)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeliquid: error: "), lines
    assert message in lines[0]


def test_checkpoint_from_before_input_norm_loads_with_fixed_normalisation(tmp_path):
    policy = build_policy(TINY)
    ckpt = torch.load(save_checkpoint(tmp_path / "new.pt", policy), weights_only=True)
    del ckpt["config"]["input_norm"]
    torch.save(ckpt, tmp_path / "old.pt")
    loaded, _ = load_checkpoint(tmp_path / "old.pt")
    assert loaded.config.input_norm == "fixed" and not loaded.head.frame_norm
