"""The benchmark suite in a tiny configuration, so that it cannot rot.

Checks the JSON's shape and that each figure names a floor measured in the same run;
never a speed (speed is measured by ``make bench``, not asserted).
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.run import main


def test_bench_writes_json_with_floors_and_ratios(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    assert main(["--traps", "2000", "--repeat", "1", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert {"date", "machine", "versions", "config", "floors", "figures"} <= results.keys()
    assert results["versions"]["unicorn"] == "2.1.4"
    for arch in ("riscv64", "aarch64"):
        assert set(results["floors"][arch]) == {
            "trap_empty_hook", "trap_read8_write1", "switch_same_space", "switch_other_space"}
        figure = results["figures"][f"{arch}.null_syscall"]
        floor = results["floors"][arch][figure["floor"]]["median"]
        assert figure["median"] > 0 and floor > 0
        assert abs(figure["ratio"] - figure["median"] / floor) < 1e-9
    boot = results["figures"]["riscv64.boot_to_first_instruction"]
    assert boot["unit"] == "s" and boot["floor"] in results["floors"]
