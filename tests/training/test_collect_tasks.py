"""`collect --task`: the task in the manifest and each episode, resume per task, hover/arrival
on follow (the whole 30 s) and chain (the hover only after the last target)."""

import json

import pytest
from typer.testing import CliRunner

from edgeliquid import episodes as data
from edgeliquid.cli import app
from edgeliquid.errors import EdgeLiquidError
from edgeliquid.training.collect import CollectConfig, collect, record_episode

SMALL = dict(height=18, width=32, seed=2)


def test_follow_records_the_whole_episode_and_its_verdict():
    episode = record_episode(CollectConfig(episodes=1, task="follow", **SMALL), 0)
    assert episode.meta["task"] == "follow" and episode.meta["outcome"] == "success"
    assert episode.meta["time_s"] == pytest.approx(30.0)  # no hover cut: nothing "arrives"
    assert episode.steps == 301  # 300 flown frames and the terminal one


def test_chain_hovers_only_after_the_last_target():
    config = CollectConfig(episodes=1, task="chain", hover_s=2.0, **SMALL)
    episode = record_episode(config, 0)
    assert episode.meta["outcome"] == "success"
    distance = episode.states[:, -2]  # to the current target: it jumps up at each switch
    switches = int((distance[1:] - distance[:-1] > 3.0).sum())
    assert switches == 2
    # the last 2 s are the hover at the third target: slow, near
    hover = episode.states[-20:]
    assert (hover[:, -2] < 2.5).all() and (abs(hover[:, 4:7]) < 0.6).all()


def test_manifest_records_the_task_and_resume_refuses_another(tmp_path):
    manifest = collect(tmp_path, CollectConfig(episodes=1, task="reacquire", hover_s=0, **SMALL))
    assert manifest["task"] == "reacquire" and manifest["complete"]
    assert data.load_dataset(tmp_path)[0].meta["task"] == "reacquire"
    with pytest.raises(EdgeLiquidError, match=r"other settings.*task 'reacquire' vs 'reach'"):
        collect(tmp_path, CollectConfig(episodes=2, hover_s=0, **SMALL))
    resumed = collect(tmp_path, CollectConfig(episodes=2, task="reacquire", hover_s=0, **SMALL))
    assert len(resumed["episodes"]) == 2


def test_a_manifest_from_before_tasks_resumes_as_reach(tmp_path):
    collect(tmp_path, CollectConfig(episodes=1, hover_s=0, **SMALL))
    path = tmp_path / data.MANIFEST
    manifest = json.loads(path.read_text())
    del manifest["task"]
    path.write_text(json.dumps(manifest))
    assert len(collect(tmp_path, CollectConfig(episodes=2, hover_s=0, **SMALL))["episodes"]) == 2
    with pytest.raises(EdgeLiquidError, match="task 'reach' vs 'range'"):
        collect(tmp_path, CollectConfig(episodes=2, task="range", hover_s=0, **SMALL))


def test_collect_cli_task(tmp_path):
    args = ["collect", "--out", str(tmp_path), "--episodes", "1", "--height", "18", "--width", "32"]
    result = CliRunner().invoke(app, [*args, "--task", "chain", "--hover", "0.5"])
    assert result.exit_code == 0, result.output
    assert data.read_manifest(tmp_path)["task"] == "chain"
    assert "expert success 1" in result.output
    bad = CliRunner().invoke(app, [*args, "--task", "hike"])
    assert bad.exit_code == 1 and bad.output.count("edgeliquid: error:") == 1
    assert "unknown task 'hike'; choose from reach, range, follow, chain, reacquire" in bad.output
