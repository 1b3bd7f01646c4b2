"""MCS guest programs about time (userland/mcs/mcs_timeout.c, mcs_sporadic.c), built and
run as tests/guest/test_mcs_guests.py does.

Time is one timer tick per instruction retired (kernel.model.mcs_time), so what the
programs measure is exact: the expected numbers below are worked out from the budgets
and periods the programs configure and seL4's rules, and the same program gives the
same output on every run.

The rule that makes the numbers what they are: the timer is set for the end of the head
refill itself (seL4 sets it a timer precision early, for the time its own entry takes;
capsule's entries take none: kernel.core.mcs_sched.set_next_interrupt). The instruction
clock stops right there, so a thread that spins until its budget runs out is charged
exactly its head refill, and a context that spends its whole budget each period is
released again exactly one period after its previous release.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from bootimage import build_image
from kernel.abi.arch import ArchABI
from kernel.config import KernelConfig
from kernel.kernel import Kernel
from kernel.model.faults import Fault, TimeoutFault
from kernel.model.mcs_time import us_to_ticks
from kernel.model.sched_context import SchedContext
from kernel.model.tcb import TCB, ThreadState
from tests.cli.test_cli_run import capsule
from tests.cli.test_cli_snapshot import _STATS
from tests.conftest import ARCHES, GuestRun
from tests.guest.checks import SOURCE_ID, assert_all_checks_pass
from tests.guest.test_mcs_guests import _build, _run
from userland.toolchain import USERLAND

pytest.importorskip("ziglang")

TIMEOUT = USERLAND / "mcs" / "mcs_timeout.c"
TIMEOUT_EXPECTED = [f"MCSTO{i:04d}" for i in range(1, 6)]
SPORADIC = USERLAND / "mcs" / "mcs_sporadic.c"
SPORADIC_EXPECTED = [f"MCSSP{i:04d}" for i in range(1, 4)]

# What the programs configure (checked against their #defines below).
TIMEOUT_BUDGET_US, TIMEOUT_PERIOD_US, SC_BADGE = 1000, 10_000, 0x77
PERIOD_US, A_BUDGET_US, B_BUDGET_US, ROUNDS = 10_000, 2000, 3000, 5


def _defines(source: Path) -> dict[str, str]:
    return dict(re.findall(r"^#define (\w+) (\S+)$", source.read_text(), re.M))


def test_the_programs_configure_what_the_tests_assume() -> None:
    timeout = _defines(TIMEOUT)
    assert (int(timeout["BUDGET_US"]), int(timeout["PERIOD_US"]),
            int(timeout["SC_BADGE"], 16)) == (TIMEOUT_BUDGET_US, TIMEOUT_PERIOD_US, SC_BADGE)
    sporadic = _defines(SPORADIC)
    assert (int(sporadic["PERIOD_US"]), int(sporadic["A_BUDGET_US"]),
            int(sporadic["B_BUDGET_US"]), int(sporadic["ROUNDS"])) == (
        PERIOD_US, A_BUDGET_US, B_BUDGET_US, ROUNDS)


def test_check_ids_are_unique_and_in_order() -> None:
    assert SOURCE_ID.findall(TIMEOUT.read_text()) == TIMEOUT_EXPECTED
    assert SOURCE_ID.findall(SPORADIC.read_text()) == SPORADIC_EXPECTED


def _run_time(budget_us: int, abi: ArchABI) -> int:
    """Ticks a thread spinning from a full head refill of ``budget_us`` is charged."""
    return us_to_ticks(abi, budget_us)


def _ticks_to_us(abi: ArchABI, ticks: int) -> int:
    """seL4's ticksToUs (rounded down)."""
    return ticks * 1000 // us_to_ticks(abi, 1000)


def _thread(kernel: Kernel, name: str) -> TCB:
    return next(t for t in kernel.threads.values() if t.name == name)


def _run_program(source: Path, arch: str, tmp_path: Path,
                 setup: Callable[[Kernel], None] | None = None) -> GuestRun:
    """Build ``source`` and run it; ``setup`` (if given) is called with the kernel
    before the run, through the first system call's observer."""
    done: list[bool] = []

    def first_call(kernel: Kernel, window: list[int]) -> None:
        if not done and setup is not None:
            done.append(True)
            setup(kernel)

    return _run(_build(arch, tmp_path, source), KernelConfig(mcs=True), first_call)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_sporadic_context_out_of_budget_raises_timeout_faults(arch: str,
                                                                tmp_path: Path) -> None:
    """mcs_timeout.c: the spinner's Timeout faults carry its badge and the time it used;
    answered, it runs again from its next refill for its budget again; refused, it
    stays stopped; the round-robin thread never raises one; a TimeoutReply's pc is
    where the thread resumes."""
    faults: list[tuple[str, Fault, int, int]] = []

    def observe(kernel: Kernel) -> None:
        def fault_seen(tcb: TCB, fault: Fault) -> None:
            mcs = kernel.mcs
            assert mcs is not None and tcb.sched_context is not None
            faults.append((tcb.name, fault, mcs.now, tcb.sched_context.refills[0].time))
        kernel.fault_observers.append(fault_seen)

    run = _run_program(TIMEOUT, arch, tmp_path, observe)
    assert_all_checks_pass(run, TIMEOUT_EXPECTED)
    kernel = run.session.kernel
    abi = kernel.abi
    used = _run_time(TIMEOUT_BUDGET_US, abi)
    consumed_us = _ticks_to_us(abi, used)
    assert consumed_us == TIMEOUT_BUDGET_US
    line = f"  timeout fault: badge {SC_BADGE:#x}, consumed {consumed_us} us\n"
    assert run.output.count(line) == 3, run.output

    # Seen from outside: two Timeout faults of the spinner, then the redirected
    # thread's. The spinner's second comes when its next refill, released one period
    # after the first one, has been used up (it ran from the release on: nothing else
    # could run).
    assert [(name, type(fault)) for name, fault, _, _ in faults] == [
        ("spinner", TimeoutFault), ("spinner", TimeoutFault), ("redirected", TimeoutFault)]
    (_, first, _, release), (_, second, second_at, _) = faults[:2]
    assert all(isinstance(f, TimeoutFault) and f.badge == SC_BADGE for f in (first, second))
    assert second_at == release + used
    period = us_to_ticks(abi, TIMEOUT_PERIOD_US)
    spinner = _thread(kernel, "spinner")
    assert spinner.state is ThreadState.INACTIVE and spinner.fault is None
    sc = spinner.sched_context
    assert sc is not None and sc.refills[0].time == release + period
    rr_sc = _thread(kernel, "roundrobin").sched_context
    assert rr_sc is not None and rr_sc.period == 0 and len(rr_sc.refills) == 2


@pytest.mark.parametrize("arch", ARCHES)
def test_two_sporadic_servers_share_the_processor_by_their_budgets(arch: str,
                                                                   tmp_path: Path) -> None:
    """mcs_sporadic.c: the switches the threads see, what each consumed, and the same
    output twice; from outside, each server's runs start and end where the refill
    rules put them."""
    starts: list[tuple[str, int]] = []
    same_time = [0, -1]  # kernel exits in a row at one machine clock reading, that reading

    def observe(kernel: Kernel) -> None:
        def exit_seen(k: Kernel) -> None:
            current, mcs = k.current, k.mcs
            assert current is not None and mcs is not None
            # B's release falls while A runs: the timer must not fire again and again
            # with no time passing.
            now = k.machine.time_now()
            same_time[:] = [same_time[0] + 1, now] if now == same_time[1] else [1, now]
            assert same_time[0] < 100, f"the kernel is entered for ever at {now}"
            if not starts or starts[-1][0] != current.name:
                starts.append((current.name, mcs.now))
        kernel.exit_observers.append(exit_seen)

    run = _run_program(SPORADIC, arch, tmp_path, observe)
    assert_all_checks_pass(run, SPORADIC_EXPECTED)
    abi = run.session.kernel.abi
    a_used, b_used = _run_time(A_BUDGET_US, abi), _run_time(B_BUDGET_US, abi)
    expected = [
        f"  log {'AB' * ROUNDS}",
        f"  A consumed {_ticks_to_us(abi, ROUNDS * a_used)} us",
        f"  B consumed {_ticks_to_us(abi, ROUNDS * b_used)} us",
    ]
    assert [line for line in run.output.splitlines() if line.startswith("  ")] == expected
    assert expected[1:] == [f"  A consumed {ROUNDS * A_BUDGET_US} us",
                            f"  B consumed {ROUNDS * B_BUDGET_US} us"]

    # Seen from outside: the referee, then A and B in turn, then the referee and the
    # root task. A runs from each release (nothing runs before it), B as soon as A has
    # used its budget, and A is released one period after its previous release (the
    # first release is its start time, before its first run).
    names = [name for name, _ in starts]
    assert names == (["rootserver", "referee"] + ["serverA", "serverB"] * ROUNDS
                     + ["referee", "rootserver"])
    runs = starts[2:2 + 2 * ROUNDS]
    a_starts = [at for name, at in runs if name == "serverA"]
    b_starts = [at for name, at in runs if name == "serverB"]
    for a_at, b_at in zip(a_starts, b_starts, strict=True):
        assert b_at == a_at + a_used
    step = us_to_ticks(abi, PERIOD_US)
    assert [b - a for a, b in zip(a_starts[1:], a_starts[2:], strict=False)] == (
        [step] * (ROUNDS - 2))
    contexts = [o for o in run.session.kernel.objects.values() if isinstance(o, SchedContext)]
    assert all(sum(r.amount for r in sc.refills) == sc.budget for sc in contexts)

    again = _run_program(SPORADIC, arch, tmp_path)
    assert again.output == run.output  # byte for byte: time is instructions


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("fraction", [0.3, 0.7])
def test_a_snapshot_resumes_the_timer_and_the_budgets(arch: str, fraction: float,
                                                      tmp_path: Path) -> None:
    """mcs_sporadic.c snapshotted partway (the one-shot timer set, budgets partly used,
    threads in the release queue) and resumed in a fresh process ends as the whole run:
    the same output, instructions, kernel entries and timer interrupts."""
    elf = _build(arch, tmp_path, SPORADIC)
    image = tmp_path / "sporadic.img"
    image.write_bytes(build_image(elf.read_bytes(), KernelConfig(mcs=True)))
    whole = capsule("run", "--stats", str(image))
    assert whole.returncode == 0, whole.stderr
    counts = _STATS.search(whole.stderr)
    assert counts is not None, whole.stderr
    at = int(fraction * int(counts.group(1)))
    saved = tmp_path / "sporadic.snap"
    first = capsule("run", "--snapshot-at", str(at), "--save", str(saved),
                    "--stop-after-save", str(image))
    assert first.returncode == 0, first.stderr
    later = capsule("resume", "--stats", str(saved))
    assert later.returncode == 0, later.stderr
    assert first.stdout + later.stdout == whole.stdout
    resumed = _STATS.search(later.stderr)
    assert resumed is not None and resumed.groups() == counts.groups()
