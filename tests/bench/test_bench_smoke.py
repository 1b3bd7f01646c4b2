"""The benchmark suite in a tiny configuration, so that it cannot rot.

Checks the JSON's shape, that every figure names a floor whose value was measured in the
same run, and that the guests really did the work asked (kernel entries per operation);
never a speed (speed is measured by ``make bench``, not asserted).
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest

from bench.guest import BenchError, PhaseClock, patch_params, run_guest
from bench.macro import MACRO_CALLS, MACRO_UT_BITS, measure_breakdown
from bench.run import NOT_MEASURED, _table, kernel_variants, main

ARCHES = ("riscv64", "aarch64")
FLOORS = {"trap_empty_hook", "trap_read8_write1", "switch_same_space", "switch_other_space"}
TINY = ["--traps", "2000", "--repeat", "1", "--rounds", "100", "--retype-objects", "300",
        "--scale-threads", "6", "--scale-caps", "50", "--mem-objects", "300",
        "--macro-rounds", "2", "--touch-mib", "2", "--suite", "tests/guest/test_boot_guests.py -k hello"]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # A build directory of its own: another worker may be running this fixture too.
    out = tmp_path_factory.mktemp("bench") / "results.json"
    assert main([*TINY, "--out", str(out), "--build-dir", str(out.parent / "build")]) == 0
    loaded: dict[str, Any] = json.loads(out.read_text())
    return loaded


def _check_figure(fig: dict[str, Any], floor_value: float, positive: bool = True) -> None:
    assert fig["median"] == statistics.median(fig["samples"])
    assert fig["median"] > 0 if positive else math.isfinite(fig["median"])
    assert fig["floor_value"] == floor_value and floor_value > 0
    assert abs(fig["ratio"] - fig["median"] / floor_value) < 1e-9


def test_json_has_machine_versions_date_and_every_floor(results: dict[str, Any]) -> None:
    assert {"date", "machine", "versions", "config", "floors", "figures"} <= results.keys()
    assert results["versions"]["unicorn"] == "2.1.4"
    assert results["config"]["kernel"] == "pure Python"  # what make test runs
    assert results["config"]["instruction_counter"] == "Unicorn's count"  # pure's default
    assert {"platform", "python", "cpus"} <= results["machine"].keys()
    for arch in ARCHES:
        assert set(results["floors"][arch]) == FLOORS | {"unicorn_macro"}
        for floor in results["floors"][arch].values():
            assert floor["median"] > 0 and len(floor["samples"]) == 1


def test_every_kernel_figure_has_its_ratio_to_a_floor_of_the_same_run(
        results: dict[str, Any]) -> None:
    figs = results["figures"]
    for arch in ARCHES:
        floors = {k: v["median"] for k, v in results["floors"][arch].items()}
        _check_figure(figs[f"{arch}.null_syscall"], floors["trap_read8_write1"])
        for suffix in kernel_variants():
            for name in ("ipc_roundtrip", "ipc_roundtrip_cap", "signal_wait"):
                fig = figs[f"{arch}.{name}{suffix}"]
                assert fig["floor"] == "switch_same_space / 2"
                _check_figure(fig, floors["switch_same_space"] / 2)
            fig = figs[f"{arch}.ipc_roundtrip_cross_space{suffix}"]
            assert fig["floor"] == "switch_other_space / 2"
            _check_figure(fig, floors["switch_other_space"] / 2)
        _check_figure(figs[f"{arch}.untyped_retype"], floors["trap_read8_write1"])
        _check_figure(figs[f"{arch}.cnode_copy_delete"], floors["trap_read8_write1"] / 2)
        for name in ("null_syscall", "ipc_roundtrip"):
            fig = figs[f"{arch}.scale.{name}"]
            _check_figure(fig, statistics.median(fig["baseline_samples"]))
            assert fig["population"] == {"extra_threads": 6, "extra_caps": 50}
        mem = figs[f"{arch}.memory_per_endpoint"]
        # A resident set's growth over 300 small objects is within the allocator's noise:
        # it can come out zero or below (memory returned meanwhile); its shape is checked.
        _check_figure(mem, 1024.0, positive=False)
        assert mem["objects"] == 300 and mem["traced_bytes_per_object"] > 0
        large = figs[f"{arch}.memory_large_ram"]
        _check_figure(large, 400e6)
        assert large["touched_mib"] == 2 and large["ram_size"] == 3 << 30
        assert large["before"] > 0
    boot = figs["riscv64.boot_to_first_instruction"]
    assert boot["unit"] == "s"
    _check_figure(boot, results["floors"][boot["floor"]]["median"])


def test_macro_figure_has_its_floor_and_a_breakdown_within_its_wall_time(
        results: dict[str, Any]) -> None:
    for arch in ARCHES:
        fig = results["figures"][f"{arch}.macro_workload"]
        floor = results["floors"][arch]["unicorn_macro"]
        assert fig["floor"] == "unicorn_macro" and fig["unit"] == "rounds/s"
        _check_figure(fig, floor["median"])
        # The floor executed the phase's guest instructions, in tick-sized slices.
        assert fig["rounds"] == 2 and floor["instructions"] > 0
        assert fig["instructions_per_round"] * 2 == floor["instructions"]
        assert floor["slice_instructions"] == 10_000
        breakdown = fig["breakdown"]
        parts = breakdown["parts_s"]
        assert set(parts) == {"guest_execution", "kernel_entries", "memory",
                              "instrumentation", "other"}
        assert all(seconds >= 0 for seconds in parts.values())
        assert sum(parts.values()) <= breakdown["wall_s"] * (1 + 1e-9)
        kernel = breakdown["kernel_entries"]
        assert abs(sum(k["seconds"] for k in kernel.values())
                   - parts["kernel_entries"]) < 1e-9
        assert kernel["VMFault"]["count"] == 2
        assert {"read_phys", "write_phys"} <= breakdown["memory"].keys()
        assert breakdown["memory"]["read_phys"]["bytes"] > 0
        unicorn = breakdown["unicorn"]
        assert unicorn["translations"] > 0 and unicorn["emu_starts"] > 0
        # Every round retypes memory that held the last child's code, and loads code.
        assert unicorn["tb_invalidations"] > 0
        # The metered run is the whole guest: the phase and its set-up.
        assert unicorn["instructions"] > floor["instructions"]
        assert breakdown["python_startup_s"]["median"] > 0
    assert "breakdown of one metered run" in _table(results)


def test_unmeasured_figures_say_what_they_need(results: dict[str, Any]) -> None:
    for arch in ARCHES:
        for key, why in NOT_MEASURED.items():
            assert results["figures"][f"{arch}.{key}"] == {"not_measured": why}
            assert why.startswith("needs ")
    table = _table({"figures": {"x.later": {"not_measured": "needs a kernel part"}}})
    assert "x.later" in table and "not measured: needs a kernel part" in table


def test_guest_suite_wall_time_ran_the_suite(results: dict[str, Any]) -> None:
    suite = results["figures"]["guest_suite_wall_time"]
    assert suite["passed"] and suite["median"] > 0 and "passed" in suite["summary"]


# ---- the guests do the work they are timed for ------------------------------------------


@pytest.fixture(scope="module")
def bench_elves(guest_elves: dict[str, dict[str, Path]]) -> dict[str, dict[str, Path]]:
    return guest_elves


@pytest.mark.parametrize("arch", ARCHES)
def test_ipc_phases_cost_the_kernel_entries_they_claim(bench_elves, arch: str) -> None:
    run = run_guest(bench_elves[arch]["ipc"], [50, 40, 30, 4, 20, 60, 70])
    phases = run.phases
    assert {p: phases[p].count for p in ("rt", "rt_cap", "null", "signal", "rt_other")} == {
        "rt": 50, "rt_cap": 40, "null": 30, "signal": 60, "rt_other": 70}
    # Call + ReplyRecv per round trip; + the server's CNode_Delete with a cap; one Yield;
    # Signal + the woken waiter's next Wait.
    # The begin mark's newline and the end mark's '@' bound each phase, so the only extra
    # entries are the putchar of the end mark's '@' (1).
    assert phases["rt"].entries == 2 * 50 + 1
    assert phases["rt_cap"].entries == 3 * 40 + 1
    assert phases["null"].entries == 30 + 1
    assert phases["signal"].entries == 2 * 60 + 1
    assert phases["rt_other"].entries == 2 * 70 + 1


@pytest.mark.parametrize("arch", ARCHES)
def test_capops_phases_and_memory_marks(bench_elves, arch: str) -> None:
    run = run_guest(bench_elves[arch]["capops"], [600, 25, 100], {"root_cnode_bits": 13},
                    trace=True)
    assert run.phases["retype"].count == 600
    assert run.phases["retype"].entries == 3 + 1  # 256 + 256 + 88 objects
    assert run.phases["copy_delete"].entries == 2 * 25 + 1
    assert {"before", "after", "traced:before", "traced:after"} <= run.memory.keys()
    # 100 endpoints with their caps are live Python objects between the marks.
    assert run.memory["traced:after"] > run.memory["traced:before"]


@pytest.mark.parametrize("arch", ARCHES)
def test_macro_rounds_make_the_kernel_entries_they_claim(
        bench_elves: dict[str, dict[str, Path]], arch: str) -> None:
    rounds = 3
    kinds = measure_breakdown(bench_elves[arch]["macro"], rounds,
                              {"root_cnode_bits": 13}).kernel
    per_round = {kind: bucket.count / rounds for kind, bucket in kinds.items()}
    # The child's Calls to the root task's endpoint (IPC: no label), each answered by a
    # ReplyRecv, as is its one VMFault; every other Call grants a cap, which the root
    # task deletes; the root task's first Recv, the child's final Send, and one revoke.
    assert per_round["Call"] == MACRO_CALLS
    assert per_round["ReplyRecv"] == MACRO_CALLS + 1
    assert per_round["VMFault"] == 1
    assert per_round["Call CNodeDelete"] == MACRO_CALLS // 2
    assert per_round["Recv"] == per_round["Send"] == per_round["Call CNodeRevoke"] == 1
    assert per_round["Call TCBResume"] == 1
    # Building the child: a retype per object (and two more: the endpoint and the child
    # untyped, before the rounds), a map per page, an unmap per loaded page.
    assert kinds["Call UntypedRetype"].count % rounds == 2
    assert per_round[next(k for k in kinds if k.endswith("PageMap"))] > 10


@pytest.mark.parametrize("arch", ARCHES)
def test_a_macro_child_that_fails_fails_the_run(
        bench_elves: dict[str, dict[str, Path]], arch: str) -> None:
    # More pages than the child's array holds: it reports step 4, the root task stops.
    with pytest.raises(BenchError, match="the child failed at step .error 4"):
        run_guest(bench_elves[arch]["macro"], [1, 2, 17, MACRO_UT_BITS])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_guest_that_cannot_do_its_work_is_an_error(bench_elves, arch: str) -> None:
    # 10,000 cap copies do not fit in the default 4,096-slot root CNode.
    with pytest.raises(BenchError, match="out of empty root-CNode slots"):
        run_guest(bench_elves[arch]["ipc"], [1, 1, 1, 0, 10_000])


def test_patch_params_writes_words_and_refuses_other_programs(bench_elves) -> None:
    elf = bench_elves["riscv64"]["ipc"].read_bytes()
    patched = patch_params(elf, [7, 8])
    diff = [i for i, (a, b) in enumerate(zip(elf, patched, strict=True)) if a != b]
    assert len(patched) == len(elf) and diff and max(diff) - min(diff) < 16
    with pytest.raises(BenchError):
        patch_params(bench_elves["riscv64"]["hello"].read_bytes(), [1])
    with pytest.raises(BenchError):
        patch_params(elf, list(range(9)))


def test_phase_clock_times_only_between_marks() -> None:
    entries = iter(range(100))
    clock = PhaseClock(entries=lambda: next(entries))
    for byte in b"setup\n@b x\nwork\n@e x 5\n@fail no\n":
        clock(byte)
    assert list(clock.phases) == ["x"] and clock.phases["x"].count == 5
    assert clock.phases["x"].seconds > 0 and clock.failure == "no"
