"""The fastpath and the general path give identical runs of the IPC guests.

Every multi-threaded guest runs twice per architecture, with ``KernelConfig.fastpath``
on and off, traced: the console output, the result, the exact instruction count and
every trace record (thread, syscall, decoded invocation, result; every completion, fault
and thread switch) must be the same. The guests that do Call / ReplyRecv must also have
taken the fastpath, so that the comparison is not between two general paths. (The
compiled kernel calls the fastpath directly, past the counter's wrappers: ``make
test-compiled`` compares the runs but leaves that check to the pure-Python run.)
The MCS guest ``userland/mcs/mcs_ipc.c`` (a passive server on its clients' contexts)
is compared the same way on MCS kernels, with the MCS fastpath.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from bootimage import build_image, load_image
from emulator.machine import RunResult
from emulator.session import Session
from kernel.config import KernelConfig
from kernel.entry import mcs_syscalls, syscalls
from kernel.kernel import Kernel
from kernel.views.invariants import enable_invariant_checks
from kernel.views.trace_events import EventTracer, TraceLine
from tests.conftest import ARCHES, COMPILED
from userland.libsel4.generate import MCS_MACRO
from userland.toolchain import USERLAND, build_program

GUESTS = ["threads", "notify", "ntfnops", "ipc_callreply", "ipc_caps", "ipc_faults", "spawn"]
"""Guests with several threads, IPC or processes."""


class FastpathCounter:
    """Counts successful fastpath calls while active (wrapping the syscall table's
    references, restored on exit)."""

    NAMES = ("fastpath_call", "fastpath_reply_recv")
    MCS_NAMES = ("mcs_fastpath_call", "mcs_fastpath_reply_recv")

    def __init__(self, mcs: bool = False) -> None:
        self.taken = 0
        self.module = mcs_syscalls if mcs else syscalls
        self.originals = {name: getattr(self.module, name)
                          for name in (self.MCS_NAMES if mcs else self.NAMES)}

    def __enter__(self) -> FastpathCounter:
        for name, original in self.originals.items():
            setattr(self.module, name, self._counting(original))
        return self

    def __exit__(self, *exc: object) -> None:
        for name, original in self.originals.items():
            setattr(self.module, name, original)

    def _counting(self, original: Callable[[Kernel, list[int]], object]
                  ) -> Callable[[Kernel, list[int]], object]:
        def counting(kernel: Kernel, window: list[int]) -> object:
            outcome = original(kernel, window)  # True when taken (fastpath_call: or a Slot)
            self.taken += outcome is True
            return outcome

        return counting


def traced_run(elf: bytes, fastpath: bool, mcs: bool = False
               ) -> tuple[str, RunResult, list[TraceLine], int]:
    loaded = load_image(build_image(elf, KernelConfig(fastpath=fastpath, mcs=mcs)))
    out = bytearray()
    session = Session.boot(loaded.root, loaded.config, out.append)
    enable_invariant_checks(session.kernel)
    records: list[TraceLine] = []
    EventTracer(session.kernel, records.append)  # completions, faults and switches too
    with FastpathCounter(mcs) as counter:
        result = session.run(50_000_000)
    return out.decode(), result, records, counter.taken


def fastpath_taken_invisibly(elf: bytes, mcs: bool = False) -> int:
    """Run ``elf`` with the fastpath and without: the output, the result and the trace
    must be the same, and the run without must never take it. How often the run with
    the fastpath took it."""
    fast_out, fast_result, fast_trace, taken = traced_run(elf, fastpath=True, mcs=mcs)
    slow_out, slow_result, slow_trace, not_taken = traced_run(elf, fastpath=False, mcs=mcs)
    assert not_taken == 0
    assert fast_out == slow_out
    assert fast_result == slow_result
    assert [dataclasses.asdict(r) for r in fast_trace] == [
        dataclasses.asdict(r) for r in slow_trace]
    assert len(fast_trace) > 10
    return taken


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("guest", GUESTS)
def test_fastpath_changes_nothing_visible(guest_elves, guest: str, arch: str) -> None:  # type: ignore[no-untyped-def]
    taken = fastpath_taken_invisibly(guest_elves[arch][guest].read_bytes())
    if guest in CALLING and not COMPILED:
        assert taken > 0


CALLING = {"ipc_callreply"}
"""Guests that make Call / ReplyRecv exchanges the fastpath should take."""


@pytest.mark.parametrize("arch", ARCHES)
def test_the_mcs_fastpath_changes_nothing_visible(arch: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / f"mcs_ipc-{arch}.elf"
    build_program([USERLAND / "mcs" / "mcs_ipc.c"], arch, path,
                  include_dirs=[USERLAND / "tests"], defines=[MCS_MACRO])
    taken = fastpath_taken_invisibly(path.read_bytes(), mcs=True)
    if not COMPILED:
        assert taken >= 4  # the passive server's Calls and ReplyRecvs at least
