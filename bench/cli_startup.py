"""How long the CLI takes to answer commands that need no server: `zapsync --help`, `version`
and `admin --help`, against `python -c pass` (the interpreter alone) in the same run.

Issue 9's target: each under 1 s on the project's 2-core machine. The figure is the best of
`--repeat` runs (the least disturbed by whatever else the machine does) and its ratio to the
interpreter's own start. Run: `.venv/bin/python -m bench.cli_startup [--repeat N]`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

COMMANDS: dict[str, list[str]] = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "zapsync --help": [sys.executable, "-m", "zapsync.cli.main", "--help"],
    "zapsync version": [sys.executable, "-m", "zapsync.cli.main", "version"],
    "zapsync admin --help": [sys.executable, "-m", "zapsync.cli.main", "admin", "--help"],
}
TARGET_S = 1.0


def best_of(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    figures = {name: best_of(argv, args.repeat) for name, argv in COMMANDS.items()}
    baseline = figures["python -c pass (baseline)"]
    print(f"CLI start-up, best of {args.repeat} (target: each command under {TARGET_S:.1f} s)")
    for name, seconds in figures.items():
        verdict = "" if name.startswith("python") else ("  ok" if seconds < TARGET_S else "  SLOW")
        ratio = seconds / baseline
        print(f"  {name:28} {seconds:6.3f} s   ratio to baseline {ratio:5.1f}{verdict}")


if __name__ == "__main__":
    main()
