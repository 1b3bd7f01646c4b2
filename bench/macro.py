"""The macro workload (``userland/bench/macro.c``): its figure, its floor, where its time goes.

Each round of the guest spawns a child process from untyped memory, serves its IPC and
its VMFault, and tears it down by revoking the untyped (the guest's comment says what
exactly). Three measurements, all for one architecture:

- :func:`macro_runs`: uninstrumented runs, timed between the guest's ``@b macro`` and
  ``@e macro`` marks (the figure, in rounds per second), and the guest instructions of
  the phase: a run's total minus that of a run with no round (the guest is
  deterministic: time is instructions), which is what the floor executes.
- :func:`measure_breakdown`: one more run with meters around the machine's kernel entry
  points, its physical-memory accessors and ``emu_start`` (installed on that run's
  objects only: the kernel and the machine are not changed), splitting the run's wall
  time into guest execution in Unicorn, kernel entries by kind, memory accesses, the
  meters' own classification work, and the rest.
- :func:`startup_seconds`: a new interpreter importing capsule, loading the macro image
  and running to the root task's first instruction.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unicorn import UC_HOOK_EDGE_GENERATED, Uc

from bench.guest import BenchError, GuestRun, patch_params, run_guest
from kernel.abi.constants import CapTag, Syscall
from kernel.abi.labels import label_name
from kernel.config import KernelConfig
from kernel.cspace.lookup import lookup_cap
from kernel.kernel import Kernel
from kernel.machine import Machine
from kernel.model.errors import LOOKUP_FAILURES

__all__ = ["MACRO_CALLS", "MACRO_PAGES", "MACRO_UT_BITS", "Breakdown", "macro_params",
           "macro_runs", "measure_breakdown", "phase_instructions", "startup_seconds"]

MACRO_CALLS = 8
"""Call / ReplyRecv round trips per child (half of them grant a cap)."""
MACRO_PAGES = 4
"""Pages each child writes and reads back."""
MACRO_UT_BITS = 19
"""Each child is built from an untyped of 2^19 bytes (it needs about 40 pages)."""

PHASE = "macro"

_MEMORY_ACCESSORS = tuple(sorted(name for name in dir(Machine)
                                 if name.endswith(("_phys", "_table_entry"))))
"""The machine protocol's physical-memory accessors (read_phys, write_phys,
read_table_entry, ...): every way the kernel zeroes, copies, reads or writes RAM."""

_SYSCALL_NAMES = {int(s) & ((1 << 64) - 1): s.name.removeprefix("seL4_Sys") for s in Syscall}
"""Syscall number as the register holds it -> name (Call, ReplyRecv, DebugPutChar...)."""

_SENDS = {Syscall.seL4_SysCall, Syscall.seL4_SysSend, Syscall.seL4_SysNBSend}
class _CountingKeeper:
    """The machine's translation keeper, counting its ``forget`` calls into ``out``
    (the keeper has slots: it is wrapped, not patched)."""

    def __init__(self, keeper: Any, out: Breakdown) -> None:
        self._keeper, self._out = keeper, out

    def forget(self, paddr: int, size: int) -> None:
        self._out.tb_invalidations += 1
        self._keeper.forget(paddr, size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._keeper, name)


_DEFERRED_EXECUTE = "VMFault resolved in the kernel (deferred execute)"
"""A fetch from a page whose execute permission the kernel deferred: the permission is
granted and the instruction retried, not counted as a kernel entry (``Kernel.vm_fault``)."""

_SENDS_UNSIGNED = {int(s) & ((1 << 64) - 1) for s in _SENDS}
_IPC_TAGS = {CapTag.endpoint_cap, CapTag.notification_cap, CapTag.reply_cap}
"""Caps a send goes through as IPC; a send to any other cap is an object invocation."""


def macro_params(rounds: int) -> list[int]:
    """The guest's ``bench_params`` for ``rounds`` rounds (macro.c's enum)."""
    return [rounds, MACRO_CALLS, MACRO_PAGES, MACRO_UT_BITS]


def macro_runs(elf: Path, rounds: int, config: Mapping[str, object],
               repeat: int) -> list[GuestRun]:
    """``repeat`` uninstrumented runs of ``rounds`` rounds each."""
    return [run_guest(elf, macro_params(rounds), config) for _ in range(repeat)]


def phase_instructions(elf: Path, run: GuestRun, config: Mapping[str, object]) -> int:
    """Guest instructions of ``run``'s macro phase: its total minus that of a run with
    no round (the same set-up, marks and exit).

    Raises :class:`BenchError` if Unicorn's instruction counter is unavailable."""
    empty = run_guest(elf, macro_params(0), config)
    if run.instructions is None or empty.instructions is None:
        raise BenchError("the macro floor needs Unicorn's instruction counter")
    return run.instructions - empty.instructions


@dataclass
class _Bucket:
    count: int = 0
    seconds: float = 0.0
    bytes: int = 0

    def as_json(self) -> dict[str, float]:
        out: dict[str, float] = {"count": self.count, "seconds": self.seconds}
        if self.bytes:
            out["bytes"] = self.bytes
        return out


@dataclass
class Breakdown:
    """Where one run's wall time went. Meter intervals never overlap: a memory access
    inside a kernel entry counts as memory only, and guest execution is the time inside
    ``emu_start`` minus the kernel entries and memory accesses made from its hooks."""

    kernel: dict[str, _Bucket] = field(default_factory=dict)
    """Kernel entries by kind: a syscall's name (for a send to an object, with the
    invocation label: "Call UntypedRetype"), "VMFault", "UserException", "tick", and
    the fetch faults the kernel resolves without an entry (:data:`_DEFERRED_EXECUTE`)."""
    memory: dict[str, _Bucket] = field(default_factory=dict)
    emu: _Bucket = field(default_factory=_Bucket)
    """``emu_start`` calls and the time in them (hooks included)."""
    in_emu: float = 0.0
    """Kernel, memory and classification time spent inside ``emu_start`` (its hooks)."""
    classify: float = 0.0
    """The meters' own work naming a syscall's kind (a cap lookup)."""
    translations: int = 0
    tb_invalidations: int = 0
    """Kernel writes to RAM after which the machine dropped the code translated from it
    (one range each, or all translated code when ``precise_invalidation`` is False)."""
    precise_invalidation: bool | None = None
    tb_flushes: int = 0
    tlb_flushes: int = 0
    wall: float = 0.0
    instructions: int | None = None
    _running: bool = False
    _kernel_depth: int = 0

    def as_json(self) -> dict[str, Any]:
        kernel = sum(b.seconds for b in self.kernel.values())
        memory = sum(b.seconds for b in self.memory.values())
        parts = {"guest_execution": self.emu.seconds - self.in_emu, "kernel_entries": kernel,
                 "memory": memory, "instrumentation": self.classify}
        parts["other"] = max(0.0, self.wall - sum(parts.values()))
        return {
            "wall_s": self.wall,
            "parts_s": parts,
            "kernel_entries": {k: b.as_json() for k, b in sorted(
                self.kernel.items(), key=lambda kv: -kv[1].seconds)},
            "memory": {k: b.as_json() for k, b in self.memory.items()},
            "unicorn": {"emu_starts": self.emu.count, "translations": self.translations,
                        "tb_invalidations": self.tb_invalidations,
                        "precise_invalidation": self.precise_invalidation,
                        "tb_flushes": self.tb_flushes, "tlb_flushes": self.tlb_flushes,
                        "instructions": self.instructions},
        }


def _bucket(table: dict[str, _Bucket], key: str) -> _Bucket:
    bucket = table.get(key)
    if bucket is None:
        bucket = table[key] = _Bucket()
    return bucket


def _install_meters(session: Any, out: Breakdown) -> list[object]:
    """Wrap ``session``'s kernel entry points, its machine's memory accessors and
    ``emu_start`` with meters writing into ``out``, as attributes of these objects
    (the machine calls them through attribute lookups). Returns what must stay alive."""
    kernel, machine = session.kernel, session.machine
    uc: Uc = machine.uc
    arch, mcs = machine.arch, kernel.config.mcs
    clock = time.perf_counter
    memory_total = [0.0]

    def entry(kind_of: Callable[..., str], method: Callable[..., None]) -> Callable[..., None]:
        def metered(*args: Any) -> None:
            t0 = clock()
            kind = kind_of(*args)
            t1 = clock()
            out.classify += t1 - t0
            if out._running:
                out.in_emu += t1 - t0
            mem0, entries0 = memory_total[0], kernel.kernel_entries
            out._kernel_depth += 1
            try:
                method(*args)
            finally:
                out._kernel_depth -= 1
                elapsed = clock() - t1
                if kind == "VMFault" and kernel.kernel_entries == entries0:
                    kind = _DEFERRED_EXECUTE
                bucket = _bucket(out.kernel, kind)
                bucket.count += 1
                bucket.seconds += elapsed - (memory_total[0] - mem0)
                if out._running:
                    out.in_emu += elapsed
        return metered

    def syscall_kind() -> str:
        window = machine.read_syscall_window()  # cached: the kernel's own read reuses it
        name = _SYSCALL_NAMES.get(window[7], "unknown syscall")
        if window[7] in _SENDS_UNSIGNED and kernel.current is not None:
            cap = lookup_cap(kernel, kernel.current, window[0])
            if not isinstance(cap, LOOKUP_FAILURES) and cap.tag not in _IPC_TAGS:
                label = label_name(arch, mcs, window[1] >> 12)
                return f"{name} {label or 'label ' + str(window[1] >> 12)}"
        return name

    kernel.syscall = entry(syscall_kind, kernel.syscall)
    kernel.vm_fault = entry(lambda *a: "VMFault", kernel.vm_fault)
    kernel.user_exception = entry(lambda *a: "UserException", kernel.user_exception)
    kernel.timer_tick = entry(lambda: "tick", kernel.timer_tick)

    def accessor(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        bucket = _bucket(out.memory, name)
        word = name.endswith("_table_entry")  # one page-table word per call

        def metered(*args: Any) -> Any:
            t0 = clock()
            result = method(*args)
            elapsed = clock() - t0
            bucket.count += 1
            bucket.seconds += elapsed
            bucket.bytes += (8 if word else
                             len(result) if isinstance(result, bytes | bytearray) else
                             sum(len(a) for a in args if isinstance(a, bytes | bytearray)))
            memory_total[0] += elapsed
            if out._running and not out._kernel_depth:
                out.in_emu += elapsed
            return result
        return metered

    for name in _MEMORY_ACCESSORS:
        setattr(machine, name, accessor(name, getattr(machine, name)))

    emu_start = uc.emu_start

    def metered_emu_start(*args: Any, **kwargs: Any) -> None:
        out._running = True
        t0 = clock()
        try:
            emu_start(*args, **kwargs)
        finally:
            out.emu.seconds += clock() - t0
            out.emu.count += 1
            out._running = False

    uc.emu_start = metered_emu_start

    flush_translations, flush_tlb = machine.flush_translations, machine.cpu.flush_tlb

    def counted_flush() -> None:
        out.tb_flushes += 1
        flush_translations()

    def counted_tlb_flush(target: Uc) -> None:
        out.tlb_flushes += 1
        flush_tlb(target)

    machine.flush_translations = counted_flush
    machine.cpu.flush_tlb = counted_tlb_flush
    keeper = getattr(machine, "translations", None)
    if keeper is not None:  # machines that drop stale translations at kernel writes
        machine.translations = machine.memory.translations = _CountingKeeper(keeper, out)
        out.precise_invalidation = bool(keeper.precise)

    def on_translation(*_args: object) -> None:
        out.translations += 1

    return [uc.hook_add(UC_HOOK_EDGE_GENERATED, on_translation)]


def _image(elf: Path, params: Sequence[int], config: Mapping[str, object]) -> bytes:
    from bootimage import build_image

    kconfig = KernelConfig(**dict(config)).validate()  # type: ignore[arg-type]
    return build_image(patch_params(elf.read_bytes(), params), kconfig)


def meters_unavailable() -> str | None:
    """Why :func:`measure_breakdown` cannot meter this kernel, or None if it can: its
    meters take the place of the kernel's entry methods, which a mypyc-compiled
    ``Kernel`` keeps read-only."""
    if isinstance(Kernel.__dict__.get("syscall"), types.FunctionType):
        return None
    return "the kernel is compiled: its entry methods cannot be metered"


def measure_breakdown(elf: Path, rounds: int, config: Mapping[str, object]) -> Breakdown:
    """One metered run of ``rounds`` rounds: the whole run of the guest (boot excluded;
    the set-up outside the phase is three retypes and the marks) split as
    :class:`Breakdown` says. Raises :class:`BenchError` unless the guest exits with 0."""
    from bootimage import load_image
    from emulator.session import Session

    loaded = load_image(_image(elf, macro_params(rounds), config))
    output = bytearray()
    session = Session.boot(loaded.root, loaded.config, output.append)
    out = Breakdown()
    keep = _install_meters(session, out)
    start = time.perf_counter()
    result = session.run(2_000_000_000)
    out.wall = time.perf_counter() - start
    del keep
    if (result.kind, result.status) != ("halt", 0) or b"@fail" in output:
        raise BenchError(f"macro {rounds}: {result.message}\n{output[-2000:].decode()}")
    out.instructions = result.instructions
    return out


_STARTUP_SNIPPET = """
import sys
from bootimage import load_image_file
from emulator.session import Session
loaded = load_image_file(sys.argv[1])
Session.boot(loaded.root, loaded.config, lambda b: None).run(max_instructions=1)
"""


def startup_seconds(elf: Path, rounds: int, config: Mapping[str, object], cwd: Path) -> float:
    """A new interpreter (in ``cwd``) importing capsule, loading the macro image of
    ``rounds`` rounds and booting it to the root task's first instruction, in seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "macro.img"
        image.write_bytes(_image(elf, macro_params(rounds), config))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", _STARTUP_SNIPPET, str(image)], check=True,
                       cwd=cwd, capture_output=True)
        return time.perf_counter() - start
