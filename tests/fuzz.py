"""``make fuzz``: the suite's randomised tests, scaled up, round after round, for a time budget.

    python -m tests.fuzz [--minutes 60] [--scale 20] [--workers 2]

Each round runs every test marked ``fuzz`` (see :mod:`tests.fuzzing`: the system-call
fuzzer with several threads and address spaces, the IPC, notification, CNode and fastpath
properties, hostile ELFs and configurations, mutated images run on Unicorn) with
``--scale`` times their usual examples, longer sequences and a fresh seed (the round
number, so a run can be repeated exactly). Failing examples are saved in
``build/fuzz/examples`` and replayed first by later rounds and runs. A round still going
when the budget ends is stopped and not counted.

Writes ``build/fuzz/report.json`` (rounds, seeds, outcome, the failures' summary lines)
and prints one line per round. Exits 1 if any round failed, else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.fuzzing import EXAMPLE_DIR, SCALE_VARIABLE

REPORT = EXAMPLE_DIR.parent / "report.json"
ROOT = Path(__file__).resolve().parent.parent


def _round(seed: int, scale: int, workers: int, timeout: float) -> dict[str, object]:
    command = [sys.executable, "-m", "pytest", "-q", "-m", "fuzz", "-p", "no:cacheprovider",
               f"--hypothesis-seed={seed}"]
    if workers > 1:
        command += ["-n", str(workers)]
    env = {**os.environ, SCALE_VARIABLE: str(scale)}
    started = time.monotonic()
    try:
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"seed": seed, "outcome": "cut", "seconds": round(time.monotonic() - started)}
    lines = proc.stdout.splitlines()
    summary = lines[-1] if lines else proc.stderr.strip()[-200:]
    failures = [line for line in lines if line.startswith("FAILED")]
    return {
        "seed": seed,
        "outcome": "passed" if proc.returncode == 0 else "failed",
        "seconds": round(time.monotonic() - started),
        "summary": summary,
        "failures": failures,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="time budget (default 60)")
    parser.add_argument("--scale", type=int, default=20,
                        help="times the suite's examples per test and round (default 20)")
    parser.add_argument("--workers", type=int, default=2, help="pytest-xdist workers (default 2)")
    parser.add_argument("--first-seed", type=int, default=1, help="seed of the first round")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.scale < 1 or args.workers < 1:
        parser.error("--minutes must be positive, --scale and --workers at least 1")
    EXAMPLE_DIR.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.minutes * 60
    rounds: list[dict[str, object]] = []
    seed = args.first_seed
    while (left := deadline - time.monotonic()) > 1:
        result = _round(seed, args.scale, args.workers, left)
        rounds.append(result)
        print(f"round {len(rounds)} seed {seed}: {result['outcome']} in {result['seconds']} s"
              + (f" ({result['summary']})" if "summary" in result else ""), flush=True)
        for failure in result.get("failures", []):  # type: ignore[attr-defined]
            print(f"  {failure}", flush=True)
        seed += 1
    report = {"minutes": args.minutes, "scale": args.scale, "rounds": rounds,
              "failed": [r["seed"] for r in rounds if r["outcome"] == "failed"]}
    REPORT.write_text(json.dumps(report, indent=2) + "\n")
    done = sum(r["outcome"] != "cut" for r in rounds)
    print(f"fuzz: {done} rounds done, {len(report['failed'])} failed; report in "  # type: ignore[arg-type]
          f"{REPORT.relative_to(ROOT)}")
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
