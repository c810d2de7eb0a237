"""The camera-frame simulator: NavEnv, its renderer, the privileged expert, distribution shifts
and the drone paper's tasks (reach, range, follow, chain, reacquire).

numpy + OpenCV only, no torch, so the daemon's `--source sim` and the tests run anywhere.
gymnasium is optional: with it NavEnv is a `gymnasium.Env` registered as ENV_ID; without it
(the runtime-only install) NavEnv keeps the same API, seeding and frames.
"""

from edgeliquid.sim.env import (
    COMMAND_LIMITS,
    STATE_FIELDS,
    NavEnv,
    NavEnvConfig,
    Privileged,
    gym,
)
from edgeliquid.sim.shifts import SHIFTS, Shift, parse_shift
from edgeliquid.sim.tasks import TASKS

ENV_ID = "edgeliquid/Nav-v0"  # gymnasium.make(ENV_ID, config=NavEnvConfig(...))
if gym is not None and ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="edgeliquid.sim.env:NavEnv")

__all__ = [
    "COMMAND_LIMITS",
    "ENV_ID",
    "SHIFTS",
    "STATE_FIELDS",
    "TASKS",
    "NavEnv",
    "NavEnvConfig",
    "Privileged",
    "Shift",
    "parse_shift",
]
