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

import dataclasses
import io
import pickle
from enum import Enum
from pathlib import Path

import pytest

from bootimage import build_image, load_image
from emulator.session import Checkpoint, Session
from kernel.config import KernelConfig
from kernel.kernel import Kernel
from kernel.model.tcb import ThreadState
from kernel.pickling import Persistent, record_reduce
from kernel.views.invariants import enable_invariant_checks
from tests.conftest import ARCHES
from tests.guest.test_mcs_guests import IPC, _build
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


FORM_PROGRAMS = ("spawn", "ipc_callreply", "notify", "cappage", "checkpointer", "vtrav",
                 "domains", "asidpool")
"""Guests whose kernel state, between them, holds every kind of kernel object."""


class _Recorder(pickle.Pickler):
    """A pickler that notes the class of every capsule object it saves."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), protocol=pickle.HIGHEST_PROTOCOL)
        self.classes: set[type] = set()

    def reducer_override(self, obj: object) -> object:
        if type(obj).__module__.startswith(("kernel.", "emulator.")):
            self.classes.add(type(obj))
        return NotImplemented


def _form(cls: type) -> str:
    """How ``cls`` pickles (kernel.pickling): "record", "persistent", "enum" or "other"."""
    if issubclass(cls, Enum):
        return "enum"
    if issubclass(cls, Persistent):
        # Compiled, only a class marked allow_interpreted_subclasses takes a subclass
        # here, and without the mark pickle could not make it empty (kernel.pickling).
        type(f"{cls.__name__}Probe", (cls,), {})
        return "persistent"
    if (dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
            and any(k.__dict__.get("__reduce__") is record_reduce for k in cls.__mro__)):
        return "record"
    return "other"


@pytest.mark.parametrize("arch", ARCHES)
def test_every_class_a_checkpoint_holds_pickles_in_the_form_both_builds_share(
        guest_elves: dict[str, dict[str, Path]], tmp_path: Path, arch: str) -> None:
    """Each class in a checkpoint is a frozen record, a Persistent object or an enum, so
    that the pure kernel's tests also guard the compiled build's checkpoints (a mutable
    class outside Persistent pickles in Python but cannot be unpickled compiled)."""
    recorder = _Recorder()
    sessions = []
    for program in FORM_PROGRAMS:
        sessions.append(_boot(guest_elves[arch][program], program)[0])
    # MCS: scheduling contexts, reply objects and the clock (mcs_ipc.c's passive server).
    mcs = load_image(build_image(_build(arch, tmp_path, IPC).read_bytes(), KernelConfig(mcs=True)))
    sessions.append(Session.boot(mcs.root, mcs.config, lambda byte: None))
    for session in sessions:
        session.run(2_000_000)
        checkpoint = session.checkpoint()
        recorder.dump(checkpoint.machine)
        recorder.dump(session.kernel)
    forms = {cls.__qualname__: _form(cls) for cls in recorder.classes}
    assert {name for name, form in forms.items() if form == "other"} == set()
    # The objects a kernel is made of were there to be checked.
    assert {"Kernel", "TCB", "CNode", "Slot", "Endpoint", "Notification", "ASIDPool",
            "Scheduler", "SchedContext", "ReplyObject", "MCSClock"} <= {
        name for name, form in forms.items() if form == "persistent"}
    assert {"CNodeCap", "FrameCap", "KernelConfig", "MachineState"} <= {
        name for name, form in forms.items() if form == "record"}
