"""Issue 10, "loses what it must not" (offline commands): temp files never follow a planted
symlink, a failed export or int8 refusal keeps the existing files byte for byte, a NaN label
is refused at load and no missing or stale checkpoint is reported as the result."""

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
from tiny import TINY  # noqa: E402

from edgeliquid import episodes as data  # noqa: E402
from edgeliquid.cli import app  # noqa: E402
from edgeliquid.errors import EdgeLiquidError  # noqa: E402
from edgeliquid.export import graph as export_graph  # noqa: E402
from edgeliquid.model import NavPolicy, save_checkpoint  # noqa: E402
from edgeliquid.training.collect import CollectConfig, collect  # noqa: E402

runner = CliRunner()
SMALL = dict(height=18, width=32)


def episode(steps: int = 6, seed: int = 0) -> data.Episode:
    rng = np.random.default_rng(seed)
    return data.Episode(
        frames=rng.integers(0, 256, (steps, 18, 32, 3), np.uint8),
        commands=rng.normal(size=(steps, 4)).astype(np.float32),
        dt=np.full(steps, 0.1, np.float32),
        states=np.zeros((steps, 2), np.float32),
        meta={"outcome": "success"},
    )


def dataset(folder: Path, episodes: list[data.Episode]) -> Path:
    folder.mkdir()
    entries = []
    for i, ep in enumerate(episodes):
        path = data.save_episode(folder, i, ep)
        entries.append({"index": i, "file": path.name, "steps": ep.steps, "outcome": "success"})
    manifest = data.new_manifest(height=18, width=32, nominal_dt=0.1, shift="none", seed=0)
    data.write_manifest(folder, {**manifest, "episodes": entries, "complete": True})
    return folder


def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_text("precious\n")
    return path


# -- temp files: mkstemp, never a predictable name ----------------------------------------------


def test_save_episode_does_not_follow_a_symlink_at_the_old_tmp_name(tmp_path):
    target = victim(tmp_path)
    folder = tmp_path / "eps"
    folder.mkdir()
    (folder / "episode_000000.npz.tmp").symlink_to(target)
    path = data.save_episode(folder, 0, episode())
    assert target.read_text() == "precious\n"
    assert np.array_equal(data.load_episode(path).frames, episode().frames)
    assert data.list_episodes(folder) == [path]


def test_collect_does_not_follow_symlinks_at_the_old_tmp_names(tmp_path):
    target = victim(tmp_path)
    out = tmp_path / "eps"
    out.mkdir()
    for name in ("episode_000000.npz.tmp", "manifest.json.tmp"):
        (out / name).symlink_to(target)
    manifest = collect(out, CollectConfig(episodes=1, hover_s=0.0, **SMALL))
    assert target.read_text() == "precious\n"
    assert manifest["complete"] and len(data.load_dataset(out)) == 1


def test_checkpoint_and_onnx_saves_do_not_follow_a_symlink_at_the_old_tmp_name(tmp_path):
    target = victim(tmp_path)
    policy = NavPolicy(TINY).eval()
    pid = os.getpid()
    (tmp_path / f".c.pt.{pid}.tmp").symlink_to(target)  # the names before issue 10
    (tmp_path / f".m.onnx.{pid}.tmp").symlink_to(target)
    (tmp_path / f".m.onnx.sha256.{pid}.tmp").symlink_to(target)
    save_checkpoint(tmp_path / "c.pt", policy)
    model, _ = export_graph.export_checkpoint(policy, {}, export_graph.ExportOptions())
    export_graph.save(model, tmp_path / "m.onnx")
    assert target.read_text() == "precious\n"
    assert (tmp_path / "m.onnx").read_bytes() == model.SerializeToString()


def test_resume_removes_new_style_leftovers_and_list_ignores_them(tmp_path):
    out = tmp_path / "eps"
    collect(out, CollectConfig(episodes=1, hover_s=0.0, **SMALL))
    for name in (".episode_000001.npz.a1b2c3.tmp", ".manifest.json.zz9.tmp"):
        (out / name).write_bytes(b"PK\x03\x04 torn")
    assert [p.name for p in data.list_episodes(out)] == ["episode_000000.npz"]
    collect(out, CollectConfig(episodes=2, hover_s=0.0, **SMALL))
    names = sorted(os.listdir(out))
    assert names == ["episode_000000.npz", "episode_000001.npz", "manifest.json"]


def test_atomic_write_gives_the_usual_mode_and_leaves_nothing_on_error(tmp_path):
    path = data.atomic_write(tmp_path / "a.bin", b"one")
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600

    def dies(f):
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        data.atomic_write(path, dies)
    assert path.read_bytes() == b"one" and os.listdir(tmp_path) == ["a.bin"]


# -- export: replace only after verification ---------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    policy = NavPolicy(TINY).eval()
    with torch.no_grad():
        policy.command_std.copy_(torch.tensor([0.8, 0.5, 0.3, 0.4]))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", policy)


def good_export(checkpoint: Path, folder: Path) -> dict[Path, bytes]:
    from edgeliquid.export import run_export

    out = folder / "good.onnx"
    run_export(checkpoint, out, export_graph.ExportOptions(), lambda _: None, None)
    return {p: p.read_bytes() for p in (out, folder / "good.onnx.sha256")}


def test_failed_verification_keeps_the_existing_export_byte_for_byte(
    checkpoint, tmp_path, monkeypatch
):
    from edgeliquid.export import run_export
    from edgeliquid.export.graph import ExportOptions

    before = good_export(checkpoint, tmp_path)
    strip = export_graph.strip_debug

    def perturbed(model):  # a broken exporter: one bias off by 1e-3
        model = strip(model)
        bias = next(i for i in model.graph.initializer if i.name.endswith("readout.bias"))
        shifted = onnx.numpy_helper.to_array(bias) + 1e-3
        bias.CopyFrom(onnx.numpy_helper.from_array(shifted, bias.name))
        return model

    monkeypatch.setattr(export_graph, "strip_debug", perturbed)
    with pytest.raises(EdgeLiquidError, match="verification failed"):
        run_export(checkpoint, tmp_path / "good.onnx", ExportOptions(), lambda _: None, 20)
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(os.listdir(tmp_path)) == ["good.onnx", "good.onnx.sha256"]  # no temp left


def test_refused_int8_keeps_the_existing_int8_file_byte_for_byte(checkpoint, tmp_path, monkeypatch):
    from edgeliquid.export import quantize, run_quantize
    from edgeliquid.export.quantize import QuantizeOptions

    fp32 = tmp_path / "good.onnx"
    good_export(checkpoint, tmp_path)
    int8 = tmp_path / "good.int8.onnx"
    int8.write_bytes(fp32.read_bytes())  # stands in for an earlier accepted int8 file
    sidecar = tmp_path / "good.int8.onnx.sha256"
    sidecar.write_text("0" * 64 + "  good.int8.onnx\n")
    before = {p: p.read_bytes() for p in (int8, sidecar)}
    flown = []

    def success(path, episodes, seed):  # fp32 0.9, int8 0.8: a 10-point drop
        flown.append(path)
        return 0.8 if path.name.endswith(".int8.onnx") else 0.9

    monkeypatch.setattr(quantize, "closed_loop_success", success)
    settings = QuantizeOptions(calibration_steps=16, episodes=1)
    export_options = export_graph.ExportOptions()
    with pytest.raises(EdgeLiquidError, match=r"below fp32 0\.90; .* kept as it was"):
        run_quantize(checkpoint, fp32, export_options, False, lambda _: None, settings)
    assert {p: p.read_bytes() for p in before} == before
    assert flown[1] != int8  # the candidate was judged where it was staged
    names = sorted(os.listdir(tmp_path))
    assert names == ["good.int8.onnx", "good.int8.onnx.sha256", "good.onnx", "good.onnx.sha256"]


# -- train: finite data, no missing or stale best.pt reported ----------------------------------


def train_cli(*args):
    return runner.invoke(app, ["train", *map(str, args)])


def test_nan_label_is_refused_at_load_naming_file_and_step(tmp_path):
    bad = episode(seed=1)
    bad.commands[3, 2] = np.nan
    folder = dataset(tmp_path / "d", [episode(), bad])
    result = train_cli(folder, "--out", tmp_path / "run", "--epochs", 1, "--seq-len", 4)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "episode_000001.npz" in lines[0] and "step 3" in lines[0]
    assert "best checkpoint" not in result.output and not (tmp_path / "run" / "best.pt").exists()


@pytest.mark.parametrize("key, value", [("dt", np.inf), ("dt", 0.0), ("states", np.nan)])
def test_non_finite_intervals_and_states_are_refused(tmp_path, key, value):
    bad = episode()
    getattr(bad, key)[2] = value
    folder = dataset(tmp_path / "d", [bad])
    with pytest.raises(EdgeLiquidError, match=f"step 2 has .* {key} value"):
        data.load_dataset(folder, require_finite=True)


def test_a_run_with_no_finite_loss_reports_no_best_checkpoint(tmp_path, monkeypatch):
    from edgeliquid.training import trainer as train

    loss = train.masked_loss
    monkeypatch.setattr(train, "masked_loss", lambda *a: loss(*a) * float("nan"))
    folder = dataset(tmp_path / "d", [episode(), episode(seed=1)])
    result = train_cli(folder, "--out", tmp_path / "run", "--epochs", 1, "--seq-len", 4)
    assert result.exit_code == 1 and "best checkpoint:" not in result.stdout
    assert "no best.pt was written" in result.stderr
    assert not (tmp_path / "run" / "best.pt").exists()


def test_train_does_not_replace_an_earlier_run_unless_asked(tmp_path):
    folder = dataset(tmp_path / "d", [episode(), episode(seed=1)])
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes(b"an earlier run's model")
    args = (folder, "--out", run, "--epochs", 1, "--seq-len", 4)
    result = train_cli(*args)
    assert result.exit_code == 1 and "--overwrite" in result.stderr
    assert (run / "best.pt").read_bytes() == b"an earlier run's model"
    result = train_cli(*args, "--overwrite")
    assert result.exit_code == 0, result.output
    assert (run / "best.pt").read_bytes() != b"an earlier run's model"
