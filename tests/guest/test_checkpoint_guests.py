"""Whole-machine checkpoints of multi-threaded guests (DESIGN.md decision 7).

A guest runs to a kernel entry in the middle of its run, chosen where several threads
are alive (in ipc_callreply at least one of them blocked; the threads guest never has
three alive with one blocked, so there it is several ready threads and one running);
the session is checkpointed there, the checkpoint goes to bytes and back, and a fresh
machine and kernel built from it run to the end. Output, instruction count, kernel
entries and ticks must equal those of an uninterrupted run, on both architectures. The
original session, paused and checkpointed, must also run on to the same end (taking a
checkpoint changes nothing).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bootimage import build_image, load_image
from emulator.session import Checkpoint, Session
from kernel.kernel import Kernel
from kernel.model.tcb import ThreadState
from kernel.views.invariants import enable_invariant_checks
from tests.conftest import ARCHES, COMPILED
from userland.build import image_config

PROGRAMS = {"threads": False, "ipc_callreply": True}
"""Program: whether the checkpoint is taken with a thread blocked."""
BLOCKED = {ThreadState.BLOCKED_ON_RECEIVE, ThreadState.BLOCKED_ON_SEND,
           ThreadState.BLOCKED_ON_REPLY, ThreadState.BLOCKED_ON_NOTIFICATION}


def _boot(elf: Path, program: str) -> tuple[Session, bytearray]:
    loaded = load_image(build_image(elf.read_bytes(), image_config(program)))
    out = bytearray()
    return Session.boot(loaded.root, loaded.config, out.append), out


def _busy(kernel: Kernel, blocked: bool) -> bool:
    """At least three threads are alive, and if ``blocked``, one of them is blocked."""
    alive = [t for t in kernel.threads.values() if t.state is not ThreadState.INACTIVE]
    return len(alive) >= 3 and (not blocked or any(t.state in BLOCKED for t in alive))


@pytest.mark.skipif(COMPILED, reason="a mypyc-compiled kernel does not unpickle yet: its frozen "
                    "dataclasses refuse the attribute writes mypyc's __setstate__ makes")
@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("program", PROGRAMS)
def test_a_restored_checkpoint_runs_to_the_same_end(
        guest_elves: dict[str, dict[str, Path]], program: str, arch: str) -> None:
    elf, blocked = guest_elves[arch][program], PROGRAMS[program]
    # The uninterrupted run, noting the kernel entries where the guest is busy.
    whole, whole_out = _boot(elf, program)
    busy: list[int] = []
    whole.kernel.exit_observers.append(
        lambda k: busy.append(k.kernel_entries) if _busy(k, blocked) else None)
    end = whole.run()
    assert end.kind == "halt" and whole.instructions is not None
    assert busy, "the guest never had several threads alive"
    stop_at = busy[len(busy) // 2]

    # The same run, paused after kernel entry ``stop_at``.
    first, first_out = _boot(elf, program)
    first.kernel.exit_observers.append(
        lambda k: first.machine.request_pause("checkpoint")
        if k.kernel_entries == stop_at else None)
    paused = first.run()
    assert paused.kind == "pause" and first.kernel.kernel_entries == stop_at
    assert _busy(first.kernel, blocked)
    data = first.checkpoint().to_bytes()

    later = bytearray()
    restored = Session.restore(Checkpoint.from_bytes(data), later.append)
    enable_invariant_checks(restored.kernel)
    assert restored.machine is not first.machine
    result = restored.run()
    assert (result.kind, result.status) == (end.kind, end.status)
    assert bytes(first_out) + bytes(later) == bytes(whole_out) == restored.output
    assert restored.instructions == whole.instructions
    assert (result.kernel_entries, result.ticks) == (end.kernel_entries, end.ticks)

    # The checkpointed original runs on unchanged.
    first.kernel.exit_observers.clear()
    again = first.run()
    assert (again.kind, again.kernel_entries, first.instructions) == (
        end.kind, end.kernel_entries, whole.instructions)
    assert bytes(first_out) == bytes(whole_out)
