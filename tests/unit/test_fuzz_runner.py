"""`make fuzz`'s runner: its arguments, its report, and that it stops at its budget."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests import fuzz

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.parametrize("args", [["--minutes", "0"], ["--scale", "0"], ["--workers", "0"]])
def test_bad_arguments_are_refused(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "tests.fuzz", *args], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "must be" in proc.stderr


def test_rounds_run_until_the_budget_and_a_failed_round_fails_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = tmp_path / "report.json"
    monkeypatch.setattr(fuzz, "REPORT", report)
    monkeypatch.setattr(fuzz, "EXAMPLE_DIR", tmp_path / "examples")
    monkeypatch.setattr(fuzz, "ROOT", tmp_path)
    seen: list[int] = []

    def fake_round(seed: int, scale: int, workers: int, timeout: float) -> dict[str, object]:
        seen.append(seed)
        failed = seed == 8
        return {"seed": seed, "outcome": "failed" if failed else "passed", "seconds": 0,
                "summary": "1 failed" if failed else "ok",
                "failures": ["FAILED tests/x.py::t"] if failed else []}

    monkeypatch.setattr(fuzz, "_round", fake_round)
    clock = iter(range(0, 10_000, 20))  # each look at the clock: 20 s later
    monkeypatch.setattr(fuzz.time, "monotonic", lambda: next(clock))
    assert fuzz.main(["--minutes", "1.5", "--first-seed", "7"]) == 1
    written = json.loads(report.read_text())
    assert [r["seed"] for r in written["rounds"]] == seen == [7, 8, 9, 10]
    assert written["failed"] == [8] and written["scale"] == 20
