"""capsule's Python API: boot a program, run it until a condition, inspect and change it,
continue. The page ``docs/api.md`` walks through it with tested examples.

    import capsule

    machine = capsule.Machine.load("prog.img")             # an image, or an ELF
    stop = machine.run(until=capsule.AfterInvocation("CNodeMint"))
    print(machine.cap(stop.syscall.args["dest_index"]))    # the badged cap: a CapInfo
    machine.run()                                           # on to the end
    print(machine.output.decode())

What it offers (each is documented where it is defined):

- :class:`Machine`: :meth:`~Machine.load` / :meth:`~Machine.from_bytes`,
  :meth:`~Machine.run` (with stop conditions), :attr:`~Machine.threads`,
  :meth:`~Machine.registers` / :meth:`~Machine.set_registers`, :meth:`~Machine.read` /
  :meth:`~Machine.write` through a thread's VSpace, :meth:`~Machine.symbol`,
  :meth:`~Machine.cap` / :meth:`~Machine.cspace` / :meth:`~Machine.snapshot`,
  :meth:`~Machine.on_syscall` / :meth:`~Machine.on_fault` hooks,
  :meth:`~Machine.checkpoint` / :meth:`~Machine.restore` and :meth:`~Machine.save` /
  :meth:`~Machine.from_snapshot` (snapshot files, as ``capsule resume`` takes them),
  :meth:`~Machine.capture_component` / :meth:`~Machine.restore_component` (one thread's
  capability space, slot for slot; :func:`component_to_json`, :func:`component_to_capdl`).
- Stop conditions (:mod:`capsule.conditions`): :class:`AfterSyscall`,
  :class:`AfterInvocation`, :class:`AfterFault`, :class:`ThreadScheduled`,
  :class:`AtAddress`, :class:`AfterInstructions`.
- Results (:mod:`capsule.records`), plain frozen dataclasses: :class:`Stop` /
  :class:`StopKind`, :class:`SyscallEvent`, :class:`FaultEvent`, :class:`ThreadInfo`,
  :class:`CapInfo`, :class:`SlotInfo`.
- Errors (:mod:`capsule.errors`), all :class:`CapsuleError`.

The API sits above the emulator and the kernel and nothing below imports it (an
import-linter contract in pyproject.toml).
"""

from __future__ import annotations

from kernel.component import Component, Restored, from_json, to_capdl, to_json
from kernel.config import KernelConfig

from .conditions import (
    AfterFault,
    AfterInstructions,
    AfterInvocation,
    AfterSyscall,
    AtAddress,
    Condition,
    ThreadScheduled,
)
from .errors import (
    CapLookupError,
    CapsuleError,
    ComponentError,
    InternalError,
    LoadError,
    MemoryAccessError,
    NoSuchSymbol,
    NoSuchThread,
    RunEnded,
    Unsupported,
    UsageError,
)
from .machine import Hook, Machine, ThreadRef
from .records import CapInfo, FaultEvent, SlotInfo, Stop, StopKind, SyscallEvent, ThreadInfo

__all__ = [
    "AfterFault",
    "AfterInstructions",
    "AfterInvocation",
    "AfterSyscall",
    "AtAddress",
    "CapInfo",
    "CapLookupError",
    "CapsuleError",
    "Component",
    "ComponentError",
    "Condition",
    "FaultEvent",
    "Hook",
    "InternalError",
    "KernelConfig",
    "LoadError",
    "Machine",
    "MemoryAccessError",
    "NoSuchSymbol",
    "NoSuchThread",
    "Restored",
    "RunEnded",
    "SlotInfo",
    "Stop",
    "StopKind",
    "SyscallEvent",
    "ThreadInfo",
    "ThreadRef",
    "ThreadScheduled",
    "Unsupported",
    "UsageError",
    "component_from_json",
    "component_to_capdl",
    "component_to_json",
]

component_to_json = to_json
"""A captured :class:`Component` in capsule's own format (deterministic JSON text)."""
component_from_json = from_json
"""A :class:`Component` read back from :func:`component_to_json`'s text."""
component_to_capdl = to_capdl
"""A captured :class:`Component` as capDL text (objects, caps and cdt sections)."""
