"""NavEnv: gymnasium contract, determinism, units and conventions, episode endings, expert."""

import math
import subprocess
import sys

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from edgeliquid import contract
from edgeliquid.sim import COMMAND_LIMITS, ENV_ID, NavEnv, NavEnvConfig
from edgeliquid.sim.env import episode_seed
from edgeliquid.sim.expert import Expert, ExpertConfig
from edgeliquid.sim.scene import DRONE_RADIUS, TARGET_RADIUS

SMALL = dict(height=36, width=64)


def env_at(**overrides) -> NavEnv:
    return NavEnv(NavEnvConfig(**{**SMALL, **overrides}))


def place(env: NavEnv, x: float, y: float, altitude: float, yaw: float) -> None:
    """Put the drone somewhere at rest (scripted tests)."""
    env.position = np.array([x, y, -altitude])
    env.yaw, env.velocity, env.yaw_rate = yaw, np.zeros(3), 0.0


def in_front_of_target(env: NavEnv, distance: float, facing: bool = True) -> None:
    tx, ty, tz = env.scene.target
    env.scene.trees = env.scene.trees[:0]  # nothing else to hit
    place(env, tx - distance, ty, -tz, 0.0 if facing else math.pi)


# The action space is in physical units (m/s, rad/s) by design; gymnasium merely recommends [-1, 1].
@pytest.mark.filterwarnings("ignore:.*symmetric and normalized")
def test_gymnasium_check_env_passes():
    env = gymnasium.make(ENV_ID, config=NavEnvConfig(**SMALL), disable_env_checker=True)
    check_env(env.unwrapped)


def test_runs_without_gymnasium_with_the_same_frames(tmp_path):
    """The runtime-only install (make demo) has no gymnasium: same seeding, same frames."""
    code = (
        "import sys; sys.modules['gymnasium'] = None\n"
        "import numpy as np\n"
        "from edgeliquid.sim import NavEnv, NavEnvConfig\n"
        "env = NavEnv(NavEnvConfig(height=36, width=64, dt_jitter=0.3))\n"
        "frames = [env.reset(seed=11)[0]]\n"
        "frames += [env.step(np.array([1, 0, 0, 0.2], np.float32))[0] for _ in range(3)]\n"
        f"np.save({str(tmp_path / 'f.npy')!r}, np.stack(frames))\n"
        "assert 'gymnasium' not in str(type(env).__mro__)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    env = env_at(dt_jitter=0.3)
    frames = [env.reset(seed=11)[0]]
    frames += [env.step(np.array([1, 0, 0, 0.2], np.float32))[0] for _ in range(3)]
    assert isinstance(env, gymnasium.Env)
    assert np.array_equal(np.load(tmp_path / "f.npy"), np.stack(frames))


def test_command_limits_are_the_contract():
    assert COMMAND_LIMITS is contract.COMMAND_LIMITS  # one home: what the exporter writes


def test_same_seed_same_episode_other_seed_other_scene():
    a, b = env_at(dt_jitter=0.3), env_at(dt_jitter=0.3)
    frames_a, info_a = a.reset(seed=5)
    frames_b, info_b = b.reset(seed=5)
    assert np.array_equal(frames_a, frames_b)
    for _ in range(5):
        action = np.array([1.0, 0.2, 0.0, 0.3], np.float32)
        obs_a, _, _, _, info_a = a.step(action)
        obs_b, _, _, _, info_b = b.step(action)
        assert np.array_equal(obs_a, obs_b) and info_a["dt"] == info_b["dt"]
        assert np.array_equal(info_a["state"], info_b["state"])
    other, _ = a.reset(seed=6)
    assert not np.array_equal(other, frames_b)


def test_episode_seed_depends_on_seed_index_and_stream_only():
    assert episode_seed(3, 7) == episode_seed(3, 7)
    seeds = {episode_seed(3, 7), episode_seed(3, 8), episode_seed(4, 7), episode_seed(3, 7, "eval")}
    assert len(seeds) == 4
    with pytest.raises(ValueError, match="collect"):
        episode_seed(0, 0, "train")


def test_obs_and_info_contract():
    env = env_at()
    obs, info = env.reset(seed=0)
    assert obs.shape == (36, 64, 3) and obs.dtype == np.uint8
    assert info["dt"] == pytest.approx(0.1) and info["outcome"] is None
    state = info["state"]
    assert state.dtype == np.float32 and state.shape == (8,)
    target = env.scene.target
    assert info["distance"] == pytest.approx(float(np.linalg.norm(target - state[:3])), rel=1e-5)
    assert 6.0 <= math.hypot(*(target[:2] - state[:2])) <= 25.0
    assert abs(info["bearing"]) <= math.radians(30) + 1e-9


@pytest.mark.parametrize("seed", range(6))
def test_target_is_visible_as_red_orange_pixels_at_policy_size(seed):
    obs, info = NavEnv().reset(seed=seed)
    r, g, b = (obs[..., i].astype(int) for i in range(3))
    red_orange = (r > 150) & (r - g > 80) & (r - b > 100)
    assert red_orange.sum() >= 3, f"target {info['distance']:.1f} m away is not visible"


@pytest.mark.parametrize("altitude", [0.3, 1.0, 6.0, 14.9])
def test_renders_from_any_altitude_in_the_arena(altitude):
    env = env_at()
    env.reset(seed=0)
    place(env, 1.0, 2.0, altitude, 0.3)
    frame = env._observe()
    assert frame.shape == (36, 64, 3)
    assert frame[18:].std() > 1.0  # textured ground below the horizon


def test_first_order_response_and_clockwise_yaw():
    env = env_at()
    env.reset(seed=0)
    place(env, 0.0, 0.0, 3.0, 0.0)  # facing north
    env.scene.trees = env.scene.trees[:0]
    env.step(np.array([2.0, 0.0, 0.0, 0.0], np.float32))
    expected = 2.0 * (1 - math.exp(-0.1 / env.config.velocity_tau))
    assert env.velocity[0] == pytest.approx(expected, rel=1e-6)
    for _ in range(10):
        env.step(np.array([1.0, 0.0, 0.0, 1.0], np.float32))
    assert env.yaw > 0.5 and env.position[1] > 0  # clockwise from above: north turns east


def test_actions_are_clipped_and_non_finite_means_hold():
    env = env_at(time_limit=100.0)
    env.reset(seed=0)
    place(env, 0.0, 0.0, 3.0, 0.0)
    env.scene.trees = env.scene.trees[:0]
    for _ in range(30):
        env.step(np.array([50.0, 0.0, 0.0, 0.0], np.float32))
    assert env.velocity[0] == pytest.approx(COMMAND_LIMITS[0], abs=0.01)
    for _ in range(40):
        env.step(np.array([np.nan, np.inf, 0.0, 0.0], np.float32))
    assert env.speed < 0.01


def test_success_needs_near_slow_and_facing():
    env = env_at()
    env.reset(seed=1)
    in_front_of_target(env, 1.6)
    _, reward, terminated, truncated, info = env.step(np.zeros(4, np.float32))
    assert (info["outcome"], terminated, truncated) == ("success", True, False)
    assert reward > 5
    env.reset(seed=1)
    in_front_of_target(env, 1.6, facing=False)
    assert env.step(np.zeros(4, np.float32))[4]["outcome"] is None
    env.reset(seed=1)
    in_front_of_target(env, 3.0)
    assert env.step(np.zeros(4, np.float32))[4]["outcome"] is None


def test_flying_into_the_target_is_a_collision():
    env = env_at()
    env.reset(seed=1)
    in_front_of_target(env, 1.6)
    outcome = None
    while outcome is None:
        outcome = env.step(np.array([3.0, 0, 0, 0], np.float32))[4]["outcome"]
    assert outcome == "collision"
    assert env.target_distance() < TARGET_RADIUS + DRONE_RADIUS + 0.1


def test_descending_hits_the_ground_on_time():
    env = env_at()
    env.reset(seed=2)
    altitude = -env.position[2]
    steps = 0
    while True:
        _, _, terminated, _, info = env.step(np.array([0, 0, 1.0, 0], np.float32))
        steps += 1
        if terminated:
            break
    assert info["outcome"] == "collision"
    earliest = (altitude - DRONE_RADIUS) / COMMAND_LIMITS[2]
    assert earliest <= info["time"] <= earliest + 1.0


def test_flying_into_a_trunk_is_a_collision():
    env = env_at()
    env.reset(seed=3)
    nearest = np.argmin(np.hypot(*env.scene.trees[:, :2].T))  # inside the arena
    env.scene.trees = env.scene.trees[nearest : nearest + 1]
    tree = env.scene.trees[0]
    place(env, tree[0] - tree[3] - 2.0, tree[1], tree[4] + 0.5, 0.0)  # canopy height, 2 m away
    outcome, steps = None, 0
    while outcome is None and steps < 50:
        outcome = env.step(np.array([1.0, 0, 0, 0], np.float32))[4]["outcome"]
        steps += 1
    assert outcome == "collision" and 15 <= steps <= 30


def test_leaving_the_arena_and_timeout():
    env = env_at()
    env.reset(seed=0)
    env.scene.trees = env.scene.trees[:0]
    place(env, 0.0, 39.5, 3.0, math.pi / 2)  # 0.5 m inside the edge, facing out (east)
    info = env.step(np.array([3.0, 0, 0, 0], np.float32))[4]
    for _ in range(10):
        if info["outcome"]:
            break
        info = env.step(np.array([3.0, 0, 0, 0], np.float32))[4]
    assert info["outcome"] == "out_of_bounds"
    env = env_at(time_limit=1.0)
    env.reset(seed=0)
    results = [env.step(np.zeros(4, np.float32)) for _ in range(10)]
    assert [r[4]["outcome"] for r in results] == [None] * 9 + ["timeout"]
    assert results[-1][2:4] == (False, True)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(4, np.float32))


@pytest.mark.parametrize(
    ("changes", "match"),
    [({"height": 8}, "height"), ({"dt": 0}, "dt"), ({"dt_jitter": 1.0}, "dt_jitter"),
     ({"shift": "summer"}, "winter")],
)  # fmt: skip
def test_config_rejects_bad_values(changes, match):
    with pytest.raises(ValueError, match=match):
        NavEnvConfig(**changes)


def fly_expert(env: NavEnv, expert: Expert, seed: int, add_tree=None) -> tuple[str, np.ndarray]:
    env.reset(seed=seed)
    expert.reset()
    if add_tree is not None:
        env.scene.trees = np.vstack([env.scene.trees, add_tree(env)])
        env.look.tree_colors = np.vstack([env.look.tree_colors, env.look.tree_colors[:1]])
    commands = []
    while env.outcome is None:
        commands.append(expert.act(env))
        env.step(commands[-1])
    return env.outcome, np.array(commands)


def test_expert_flies_smoothly_to_the_target_and_stops():
    env, expert = env_at(), Expert()
    for seed in range(3):
        outcome, commands = fly_expert(env, expert, seed)
        assert outcome == "success"
        assert np.all(np.abs(commands) <= np.array(COMMAND_LIMITS) + 1e-6)
        jumps = np.abs(np.diff(commands, axis=0)).max(axis=0)
        assert np.all(jumps <= np.array([0.15, 0.15, 0.15, 0.2]) + 1e-5)  # rate limits x dt
        assert np.abs(commands[-1]).max() < 0.5


def test_expert_goes_round_a_tree_on_the_straight_line():
    def blocker(env):
        mid = (env.scene.start[:2] + env.scene.target[:2]) / 2
        return np.array([mid[0], mid[1], 0.25, 1.5, 0.5, 8.0, 0, 0.5])  # canopy from 0.5 m

    env, expert = env_at(), Expert()
    for seed in range(3):
        assert fly_expert(env, expert, seed, blocker)[0] == "success"


def test_expert_config_validation():
    with pytest.raises(ValueError, match="stop_distance"):
        ExpertConfig(stop_distance=2.5)
