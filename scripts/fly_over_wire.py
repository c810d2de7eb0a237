"""The over-the-wire closed loop on N seeds: `sim serve` + `run` as two processes per seed.

    PYTHONPATH=$PWD python scripts/fly_over_wire.py --seeds 10 --out /tmp/wire

Prints one line per seed and the success count. Reuses the pytest's two-process harness
(tests/sim/test_vehicle_wire.py) so there is one copy of it.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "sim"))
from test_vehicle_wire import fly_over_wire


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("/tmp/fly_over_wire"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    wins = 0
    for seed in range(args.seeds):
        report, _ = fly_over_wire(seed, args.out / f"flight_{seed}.json")
        wins += report["outcome"] == "success"
        print(
            f"seed {seed}: {report['outcome']} in {report['flight_time_s']:.1f} s, "
            f"final distance {report['final_distance_m']:.2f} m, "
            f"{report['frames']['sent']} frames, {report['setpoints']['flown']} setpoints flown",
            flush=True,
        )
    print(f"{wins}/{args.seeds} success")


if __name__ == "__main__":
    main()
