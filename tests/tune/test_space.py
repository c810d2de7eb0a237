"""The tune search space: the shipped and the tests' files load; every mistake is one line
naming its key; a point becomes the trainer's config."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeliquid.tune.space import SEARCHABLE
from edgeliquid.tune.spacefile import load_space, parse_space

REPO = Path(__file__).resolve().parents[2]
TINY_SPACE = Path(__file__).with_name("tiny-space.yaml")


class FirstChoice:
    """A sampler's trial that takes the first choice or the low end, recording the names."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def suggest_categorical(self, name, choices):
        self.asked.append(name)
        return choices[0]

    def suggest_int(self, name, low, high, *, log=False):
        self.asked.append(name)
        return low

    def suggest_float(self, name, low, high, *, log=False):
        self.asked.append(name)
        return low


def test_the_shipped_and_the_tiny_space_load():
    small = load_space(REPO / "configs" / "tune-small.yaml")
    assert {"arch", "ncp_seed", "conv_head", "lr", "seq_len", "augment"} <= {
        d.name for d in small.dimensions
    }
    assert (
        small.conv_heads["patch4"].strides[0] == 4
        and small.train.seeds == (0,)
        and small.eval.seed not in (12345, 4242)
    )
    small.check_frames(72, 128, longest_episode=100)  # the shipped data's frames
    tiny = load_space(TINY_SPACE)
    tiny.check_frames(24, 32, longest_episode=40)


def test_a_point_asks_only_what_shapes_its_arch():
    space = load_space(TINY_SPACE)
    trial = FirstChoice()
    point = space.suggest(trial)
    assert point["arch"] == "cfc" and point["ncp_units"] == 8
    assert "backbone_layers" not in point and "backbone_layers" not in trial.asked
    assert "backbone_units" not in trial.asked  # fixed (one value): in the point for cfc_dense
    dense = parse_space({"search": {"arch": "cfc_dense", "backbone_layers": [1], "ncp_units": 9}})
    assert dense.suggest(FirstChoice()) == {"arch": "cfc_dense", "backbone_layers": 1}


def test_a_point_becomes_the_trainers_config():
    space = load_space(TINY_SPACE)
    point = {"arch": "cfc_dense", "backbone_layers": 1, "backbone_units": 8, "feature_size": 4}
    point |= {"conv_head": "patch", "lr": 0.002, "seq_len": 8, "augment": 0.0}
    config = space.train_config(point, seed=1)
    assert config.arch == "cfc_dense" and config.seed == 1 and config.lr == 0.002
    assert config.seq_len == 8 and config.seq_shift == 4 and config.augment is None
    assert config.epochs == 1 and config.batch_size == 8
    assert config.model == {
        "backbone_layers": 1,
        "backbone_units": 8,
        "feature_size": 4,
        "conv_channels": (4, 6),
        "conv_kernels": (4, 3),
        "conv_strides": (4, 2),
    }
    halfway = space.train_config({**point, "augment": 0.5}, seed=0).augment
    assert halfway is not None and halfway.brightness == pytest.approx(0.2)


GOOD = "search: {lr: 0.001}\n"
BAD = [
    ("", "the space file is empty"),
    ("search: [\n", "not valid YAML (line 2, column 1)"),
    ("serch: {lr: 0.001}\n", "unknown key 'serch'"),
    ("search: {}\n", "search: nothing to search"),
    ("search: {learning_rate: 0.001}\n", "unknown key 'search.learning_rate'"),
    ("search: {arch: [cfc, rnn]}\n", "search.arch: 'rnn' is not one of cfc"),
    ("search: {arch: {low: 1, high: 2}}\n", "search.arch: takes names, not a range"),
    ("search: {cfc_mode: [fast]}\n", "search.cfc_mode: 'fast' is not one of default"),
    ("search: {lr: {low: 0.01, high: 0.001}}\n", "search.lr: need low < high"),
    ("search: {lr: {low: 0.0, high: 0.1, log: true}}\n", "search.lr: need low < high"),
    ("search: {lr: {low: 0.001}}\n", "search.lr: a range needs both low and high"),
    ("search: {lr: {low: 0.001, high: 0.01, step: 2}}\n", "unknown key 'search.lr.step'"),
    ("search: {lr: [0.001, 0.001]}\n", "search.lr: a list needs distinct values"),
    ("search: {ncp_units: {low: 3, high: 24}}\n", "search.ncp_units: ncp_units must be >= 7"),
    ("search: {ncp_units: [16.5]}\n", "search.ncp_units: values must be integers"),
    ("search: {seq_len: [32, 300]}\n", "search.seq_len: seq_len must be <= 256"),
    ("search: {augment: {low: 0.5, high: 3.0}}\n", "search.augment: augmentation strength"),
    ("search: {conv_head: [patch]}\n", "search.conv_head: no conv head 'patch'"),
    (
        GOOD + "conv_heads: {p: {channels: [4, 6], kernels: [3], strides: [2, 2]}}\n",
        "conv_heads.p: conv_channels, conv_kernels and conv_strides need the same",
    ),
    (GOOD + "conv_heads: {p: {channels: [4]}}\n", "conv_heads.p: needs channels, kernels"),
    (GOOD + "train: {epochs: 0}\n", "train: epochs must be >= 1"),
    (GOOD + "train: {seeds: []}\n", "train.seeds: a count >= 1 or a list"),
    (GOOD + "train: {seeds: [1, 1]}\n", "train.seeds: a count >= 1 or a list"),
    (GOOD + "train: {epoch: 3}\n", "unknown key 'train.epoch'"),
    (GOOD + "train: {device: tpu}\n", "train: device must be 'cpu' or 'cuda'"),
    (GOOD + "eval: {shifts: [none, fog]}\n", "eval.shifts: unknown shift 'fog'"),
    (GOOD + "eval: {episodes: 0}\n", "eval.episodes must be an integer >= 1, got 0"),
    (GOOD + "latency: {steps: 5}\n", "latency.steps must be an integer >= 10, got 5"),
    (GOOD + "study: {cpus_per_trial: 0}\n", "study.cpus_per_trial must be an integer >= 1, got 0"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m for _, m in BAD])
def test_every_mistake_is_one_line_naming_its_key(tmp_path, text, message):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as caught:
        load_space(path)
    line = str(caught.value)
    assert line.startswith(f"{path}: ") and message in line, line
    assert "\n" not in line


def test_frames_and_episodes_the_data_cannot_hold():
    space = parse_space(
        {
            "search": {"conv_head": ["wide"], "seq_len": [16, 64]},
            "conv_heads": {"wide": {"channels": [64], "kernels": [3], "strides": [1]}},
        }
    )
    space.check_frames(24, 32, longest_episode=64)
    with pytest.raises(ValueError, match=r"conv_heads.wide: conv \(1,728\) \+ feature .* exceed"):
        space.check_frames(240, 320, longest_episode=64)  # the 240x320x64 map is too large
    with pytest.raises(ValueError, match=r"search\.seq_len: 64 steps is longer than the data's"):
        space.check_frames(24, 32, longest_episode=63)


def test_every_searchable_key_has_a_home():
    for name, (archs, target, kind) in SEARCHABLE.items():
        assert archs and target in ("model", "train", "head", "augment"), name
        assert kind in ("name", "int", "float"), name
