"""A booted capsule system under the control of a Python script (:class:`Machine`).

Built on what the tools use: :class:`emulator.session.Session` boots and runs,
:class:`kernel.views.trace.Tracer` decodes each system call with the kernel's own code,
the kernel's observers report syscalls, faults and the end of every kernel entry,
:meth:`emulator.machine.UnicornMachine.request_pause` and its breakpoints stop a run, and
:class:`emulator.gdb_target.GdbTarget` reads and writes a thread's registers and memory
(through the thread's own VSpace). Nothing here changes what the guest does: pausing
and continuing give the same output and instruction count as running straight through.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

from bootimage import ImageError, build_image, load_image
from bootimage.foreign import load_runnable
from bootimage.load import read_file
from emulator.exitstatus import exit_status, stop_line
from emulator.gdb_target import MAX_ACCESS, GdbTarget, TargetError
from emulator.machine import MachineError, RunResult, UnicornMachine
from emulator.session import Session
from kernel.abi.constants import CapTag, InitialCap, Syscall
from kernel.abi.extensions import configured_labels
from kernel.boot import BootError
from kernel.component import Component, Restored
from kernel.config import KernelConfig
from kernel.cspace.lookup import lookup_slot
from kernel.kernel import Kernel
from kernel.model.caps import CNodeCap
from kernel.model.cnode import CNode
from kernel.model.errors import KernelBug
from kernel.model.faults import (
    CapFault,
    CapPageTypeFault,
    Fault,
    IndexRequest,
    TimeoutFault,
    UnknownSyscallFault,
    UserExceptionFault,
    VMFault,
)
from kernel.model.slot import Slot
from kernel.model.tcb import TCB
from kernel.records import dataclass
from kernel.views.render import Snapshot, cap_view, snapshot
from kernel.views.trace import Tracer, TraceRecord, format_record

from .component import CapRef, capture_component, restore_component
from .conditions import (
    CONDITION_TYPES,
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
    InternalError,
    LoadError,
    MemoryAccessError,
    NoSuchSymbol,
    NoSuchThread,
    RunEnded,
    Unsupported,
    UsageError,
)
from .records import CapInfo, FaultEvent, SlotInfo, Stop, StopKind, SyscallEvent, ThreadInfo

if TYPE_CHECKING:
    # emulator.snapshot (and pickle through it) is imported by the methods that make or
    # take up a snapshot: a run that does neither does not load it.
    from emulator.snapshot import Snapshot as SavedSystem

__all__ = ["Hook", "Machine", "ThreadRef"]

ThreadRef = str | ThreadInfo | None
"""How a method is told which thread: its name, a :class:`ThreadInfo` from
:attr:`Machine.threads`, or None for the thread that runs next (the first thread, the
root task, when none can run)."""

_WORD_BITS = 64
_FAULT_KINDS: dict[type, str] = {
    VMFault: "VMFault", CapFault: "CapFault", UserExceptionFault: "UserException",
    UnknownSyscallFault: "UnknownSyscall", TimeoutFault: "Timeout",
    IndexRequest: "IndexRequest",  # capsule's server-backed CNodes (not seL4)
    CapPageTypeFault: "CapPageTypeFault",  # capsule's capability pages (not seL4)
}
_NOTIFICATION_LABELS = ("Signal", "Wait", "Poll")
_INITIAL_NAMES = {int(c): c.name for c in InitialCap if c < InitialCap.seL4_NumInitialCaps}


class Hook:
    """A callback added by :meth:`Machine.on_syscall` or :meth:`Machine.on_fault`;
    :meth:`remove` takes it away."""

    __slots__ = ("_callback", "_owner", "_list")

    def __init__(self, callback: Callable[..., object], owner: Machine, hooks: list[Hook]) -> None:
        self._callback = callback
        self._owner = owner
        self._list = hooks

    def remove(self) -> None:
        """Stop calling the callback (removing it twice is harmless)."""
        if self in self._list:
            self._list.remove(self)
            self._owner._update_tracing()


@dataclass(frozen=True, slots=True)
class _Met:
    """What stopped the run inside a kernel entry (a condition or a hook)."""

    kind: StopKind
    condition: Condition | None
    syscall: SyscallEvent | None
    fault: FaultEvent | None


class Machine:
    """A capsule system, booted and ready to run: one root task on one emulated machine.

    Make one with :meth:`load` (a file) or :meth:`from_bytes`; then :meth:`run`, until a
    condition if you like, inspect, change, and :meth:`run` again to continue.
    """

    def __init__(self, session: Session, elf: bytes,
                 console: Callable[[bytes], None] | None = None) -> None:
        """Wrap a booted ``session`` whose root task is ``elf`` and whose output goes to
        ``console``. Prefer :meth:`load`."""
        self._session = session
        self._console = console
        self._name = ""
        """The file it was loaded from, without its folder ('' if none): snapshots keep it."""
        self._kernel: Kernel = session.kernel
        self._machine: UnicornMachine = session.machine
        self._target = GdbTarget(session)
        self._elf = elf
        self._symbols: dict[str, int] | None = None
        self._syscall_hooks: list[Hook] = []
        self._fault_hooks: list[Hook] = []
        self._tracer: Tracer | None = None
        self._tracing = False
        self._record: TraceRecord | None = None
        self._faults: list[tuple[TCB, Fault]] = []
        self._conditions: tuple[Condition, ...] = ()
        self._watch_switches = False
        self._met: _Met | None = None
        self._hook_error: BaseException | None = None
        self._last_fault: FaultEvent | None = None
        """The last fault of the current run (what a FAULT stop reports)."""
        self._last_current = self._kernel.current
        self._end: Stop | None = None
        root_task = next(iter(self._kernel.threads.values()), None)  # boot makes it first
        root_cap = root_task.ctable.cap if root_task is not None else None
        self._root_cnode = root_cap.paddr if isinstance(root_cap, CNodeCap) else None
        """The root task's root CNode, whose first slots hold seL4's initial caps."""
        self._kernel.fault_observers.append(self._on_fault)

    # --- making one ---------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, config: KernelConfig | None = None,
             console: Callable[[bytes], None] | None = None, ram_size: int | None = None,
             root_cnode_bits: int | None = None, mcs: bool | None = None) -> Machine:
        """Boot the image or ELF file at ``path`` (see :meth:`from_bytes`).

        Raises:
            LoadError: the file cannot be read, is not a valid image or ELF, or cannot
                boot.
        """
        try:
            data = read_file(path, "image")
        except ImageError as error:
            raise LoadError(str(error)) from None
        return cls._boot(data, config, console, ram_size, root_cnode_bits, mcs,
                         os.fspath(path))

    @classmethod
    def from_bytes(cls, data: bytes, *, config: KernelConfig | None = None,
                   console: Callable[[bytes], None] | None = None, ram_size: int | None = None,
                   root_cnode_bits: int | None = None, mcs: bool | None = None) -> Machine:
        """Boot ``data``: whatever ``capsule run`` runs: a boot image (``capsule cc`` /
        ``capsule image build``), a root task's ELF (``capsule cc --elf``, or seL4's
        build system's), or the elfloader image seL4's build gives QEMU (its root task).

        ``config`` is the kernel configuration (default: the image's own; for an ELF,
        capsule's defaults with RAM as QEMU's virt platform, or as an elfloader image's
        device tree says, and ``ram_size`` / ``root_cnode_bits`` / ``mcs`` if given: those
        are for ELF inputs only; an elfloader image's kernel says itself whether it is
        MCS). ``console`` gets each byte the guest prints as it prints
        it; every byte is also kept in :attr:`output`.

        Raises:
            LoadError: not a valid image or ELF, or it cannot boot in ``config``.
        """
        return cls._boot(data, config, console, ram_size, root_cnode_bits, mcs, None)

    @classmethod
    def _boot(cls, data: bytes, config: KernelConfig | None,
              console: Callable[[bytes], None] | None, ram_size: int | None,
              root_cnode_bits: int | None, mcs: bool | None, name: str | None) -> Machine:
        try:
            loaded = load_runnable(data, ram_size=ram_size, root_cnode_bits=root_cnode_bits,
                                   mcs=mcs)
            if config is not None and config != loaded.config:
                loaded = load_image(build_image(loaded.elf, config, loaded.arch))
        except ImageError as error:
            raise LoadError(str(error)) from None
        try:
            session = Session.boot(loaded.root, loaded.config, _byte_sink(console))
        except (BootError, MachineError) as error:
            where = f" {name}" if name is not None else ""
            raise LoadError(f"cannot boot{where}: {error}") from None
        machine = cls(session, loaded.elf, console)
        machine._name = Path(name).name if name is not None else ""
        return machine

    @classmethod
    def from_snapshot(cls, path: str | os.PathLike[str], *,
                      console: Callable[[bytes], None] | None = None) -> Machine:
        """The system saved in the snapshot file at ``path`` (:meth:`save`, ``capsule run
        --snapshot-at N --save FILE``, the debugger's ``snapshot FILE``), ready to run
        on from where it was saved. Its :attr:`output` starts with what the guest had
        printed before; ``console`` gets what it prints from now on.

        Raises:
            LoadError: the file cannot be read or is not a snapshot this capsule can
                take up (another version, truncated, damaged: the message says which).
        """
        from emulator.snapshot import SnapshotError, load_snapshot

        try:
            saved = load_snapshot(Path(path))
        except SnapshotError as error:
            raise LoadError(str(error)) from None
        return cls.restore(saved, console=console)

    @classmethod
    def restore(cls, saved: SavedSystem, *,
                console: Callable[[bytes], None] | None = None) -> Machine:
        """A fresh machine and kernel in the state :meth:`checkpoint` saved; the
        original machine is untouched (both can go on, independently). Hooks are not
        part of the state: add them again.

        Raises:
            LoadError: ``saved`` does not restore (it did not come from :meth:`checkpoint`).
        """
        from emulator.snapshot import SnapshotError, restore_snapshot

        try:
            session = restore_snapshot(saved, _byte_sink(console))
        except SnapshotError as error:
            raise LoadError(str(error)) from None
        machine = cls(session, saved.elf, console)
        machine._name = saved.info.image
        return machine

    # --- the machine as a whole -----------------------------------------------------------

    def checkpoint(self, name: str | None = None) -> SavedSystem:
        """The whole system now (RAM, every thread's CPU state, the kernel's state, the
        output and the instruction count), in memory: :meth:`restore` makes a machine
        that goes on from here exactly as this one would. Call between runs. ``name``
        (default: the file it was loaded from) is kept in its description.

        Raises:
            Unsupported: the kernel is compiled with mypyc (snapshots need the
                pure-Python kernel for now).
        """
        from emulator.snapshot import SnapshotError, snapshot_of

        try:
            return snapshot_of(self._session, self._elf, self._name if name is None else name)
        except SnapshotError as error:
            raise Unsupported(str(error)) from None

    def save(self, path: str | os.PathLike[str]) -> int:
        """Write :meth:`checkpoint` to the snapshot file ``path`` (``capsule resume``
        and :meth:`from_snapshot` take it up); the bytes written.

        Raises:
            OSError: the file cannot be written.
            Unsupported: as :meth:`checkpoint`.
        """
        from emulator.snapshot import save_snapshot

        return save_snapshot(Path(path), self.checkpoint())

    @property
    def arch(self) -> str:
        """``riscv64`` or ``aarch64``."""
        return self._kernel.arch.short

    @property
    def config(self) -> KernelConfig:
        """The kernel configuration it booted with."""
        return self._kernel.config

    @property
    def console(self) -> Callable[[bytes], None] | None:
        """Where the guest's output goes as it prints (the ``console`` it was made with)."""
        return self._console

    @property
    def output(self) -> bytes:
        """Everything the guest printed so far."""
        return self._session.output

    @property
    def instructions(self) -> int | None:
        """Guest instructions run since boot (None if Unicorn could not count them)."""
        return self._session.instructions

    @property
    def kernel_entries(self) -> int:
        """Kernel entries since boot (system calls, faults, timer ticks)."""
        return self._kernel.kernel_entries

    @property
    def syscalls(self) -> int:
        """System calls since boot (the trace's ``#N`` numbers them so)."""
        return self._kernel.syscall_entries

    @property
    def ticks(self) -> int:
        """Timer ticks since boot (time in capsule is instructions retired)."""
        return self._kernel.ticks

    @property
    def ended(self) -> Stop | None:
        """How the guest's run ended, or None while it can go on."""
        return self._end

    @property
    def session(self) -> Session:
        """The underlying :class:`emulator.session.Session` (machine, kernel, boot
        report), for what this API does not cover. Changing kernel state through it
        is at your own risk."""
        return self._session

    # --- running ---------------------------------------------------------------------------

    def run(self, until: Condition | Iterable[Condition] = (), *,
            max_instructions: int | None = None) -> Stop:
        """Run the guest until a condition in ``until`` is met, a hook asks to stop,
        ``max_instructions`` more instructions have run, or the guest's run ends.

        Call it again to continue from where it stopped. Hooks are called whatever
        ``until`` is.

        Raises:
            RunEnded: the guest's run had already ended.
            UsageError: a condition names an unknown syscall or invocation label, or a
                count is not positive.
            InternalError: capsule itself failed.
            Exception: whatever a hook callback raised, unchanged (the kernel entry it
                was raised in is complete; ``run`` may be called again).
        """
        if self._end is not None:
            raise RunEnded(f"the run has ended ({self._end.message})", self._end)
        if isinstance(until, str):
            raise UsageError(f"until takes stop conditions, such as AfterInvocation({until!r}), "
                             "not a string")
        conditions = (until,) if isinstance(until, CONDITION_TYPES) else tuple(until)
        for condition in conditions:
            self._check(condition)
        if max_instructions is not None and max_instructions < 1:
            raise UsageError(f"max_instructions must be at least 1, not {max_instructions}")
        counted = [c for c in conditions if isinstance(c, AfterInstructions)]
        first_count = min(counted, key=lambda c: c.count) if counted else None
        limits = [n for n in (first_count.count if first_count else None, max_instructions)
                  if n is not None]
        budget = min(limits) if limits else None
        added = [c.vaddr for c in conditions if isinstance(c, AtAddress)
                 and self._machine.add_breakpoint(c.vaddr)]
        self._conditions = conditions
        self._watch_switches = any(isinstance(c, ThreadScheduled) for c in conditions)
        self._last_current = self._kernel.current
        self._met = None
        self._hook_error = None
        self._last_fault = None
        self._update_tracing()
        used = 0
        try:
            while True:
                result = self._session.run(None if budget is None else max(0, budget - used))
                error = self._take_hook_error()
                if error is not None:
                    raise error
                if (result.kind == "pause" and result.breakpoint is not None
                        and self._met is None):
                    at = self._address_condition(result.breakpoint)
                    if at is None:  # another thread's instruction there: go on
                        used += result.instructions or 0
                        continue
                    self._met = _Met(StopKind.CONDITION, at, None, None)
                break
        except (KernelBug, MachineError) as error:
            raise InternalError(f"capsule failed: {type(error).__name__}: {error}") from error
        finally:
            for address in added:
                self._machine.remove_breakpoint(address)
            self._conditions = ()
            self._watch_switches = False
            self._update_tracing()
        return self._stop(result, first_count, max_instructions)

    def _check(self, condition: object) -> None:
        if not isinstance(condition, CONDITION_TYPES):
            raise UsageError(f"{condition!r} is not a stop condition")
        if isinstance(condition, AfterSyscall):
            known = {s.name.removeprefix("seL4_Sys") for s in Syscall}
            if condition.name is not None and condition.name not in known:
                raise UsageError(f"no syscall named {condition.name!r} "
                                 f"(one of {', '.join(sorted(known))})")
            tags = {tag.name for tag in CapTag}
            if condition.cap is not None and condition.cap not in tags:
                raise UsageError(f"no cap type {condition.cap!r} (one of {', '.join(sorted(tags))})")
        elif isinstance(condition, AfterInvocation):
            labels = set(configured_labels(self._kernel.arch, self._kernel.config.mcs,
                                           self._kernel.config.checkpoint_object,
                                           self._kernel.config.cap_pages,
                                           traversal=self._kernel.config.server_backed_cnodes))
            if condition.label not in labels | set(_NOTIFICATION_LABELS):
                raise UsageError(f"no invocation label {condition.label!r} on {self.arch}")
        elif isinstance(condition, AfterInstructions) and condition.count < 1:
            raise UsageError(f"AfterInstructions needs a count of at least 1, not {condition.count}")
        elif isinstance(condition, AtAddress) and not 0 <= condition.vaddr < 1 << _WORD_BITS:
            raise UsageError(f"address {condition.vaddr:#x} is not a 64-bit address")

    def _address_condition(self, address: int) -> AtAddress | None:
        current = self._kernel.current
        for condition in self._conditions:
            if isinstance(condition, AtAddress) and condition.vaddr == address and (
                    condition.thread is None
                    or (current is not None and current.name == condition.thread)):
                return condition
        return None

    def _stop(self, result: RunResult, first_count: AfterInstructions | None,
              max_instructions: int | None) -> Stop:
        met, self._met = self._met, None
        current = self._kernel.current
        pc = self._target.context(current)[0] if current is not None else None
        if result.kind == "interrupt":
            return Stop(StopKind.INTERRUPT, None, current.name if current is not None else None,
                        pc, None, None, exit_status(result), result.message,
                        self._session.instructions)
        ended = result.kind not in ("pause", "limit")
        if met is None and not ended:
            if result.kind == "pause":
                raise InternalError(f"the run paused for no known reason: {result.message}")
            if first_count is not None and (max_instructions is None
                                            or first_count.count <= max_instructions):
                met = _Met(StopKind.CONDITION, first_count, None, None)
            else:
                met = _Met(StopKind.LIMIT, None, None, None)
        syscall = met.syscall if met is not None else None
        fault = met.fault if met is not None else None
        if fault is None and result.kind == StopKind.FAULT.value:
            fault = self._last_fault  # the fault that stopped the last thread
        thread = (syscall.thread if syscall is not None else fault.thread if fault is not None
                  else current.name if current is not None else None)
        condition = met.condition if met is not None else None
        if ended:
            self._end = Stop(StopKind(result.kind), condition, thread, pc, syscall, fault,
                             exit_status(result), stop_line(result) or result.message,
                             self._session.instructions)
            return self._end
        assert met is not None
        message = (f"{condition}" if condition is not None
                   else result.message if met.kind is StopKind.LIMIT else "a hook asked to stop")
        status = exit_status(result) if met.kind is StopKind.LIMIT else 0
        return Stop(met.kind, condition, thread, pc, syscall, fault, status, message,
                    self._session.instructions)

    # --- hooks -------------------------------------------------------------------------

    def on_syscall(self, callback: Callable[[SyscallEvent], bool | None]) -> Hook:
        """Call ``callback(event)`` after every system call, once the kernel handled it.

        If it returns True, the current :meth:`run` stops after this kernel entry (a
        :class:`Stop` of kind HOOK). An exception it raises ends :meth:`run` and
        propagates from it. Costs a decode per syscall while any syscall hook exists.
        """
        hook = Hook(callback, self, self._syscall_hooks)
        self._syscall_hooks.append(hook)
        self._update_tracing()
        return hook

    def on_fault(self, callback: Callable[[FaultEvent], bool | None]) -> Hook:
        """Call ``callback(event)`` after every kernel entry in which a thread faulted
        (VM fault, cap fault, user exception, unknown syscall); returning True and
        raising work as for :meth:`on_syscall`."""
        hook = Hook(callback, self, self._fault_hooks)
        self._fault_hooks.append(hook)
        return hook

    def _update_tracing(self) -> None:
        """Decode syscalls only while a hook or a condition needs them."""
        self._tracing = bool(self._syscall_hooks) or any(
            isinstance(c, AfterSyscall | AfterInvocation) for c in self._conditions)
        if self._tracing and self._tracer is None:
            self._tracer = Tracer(self._kernel, self._keep_record, attach=False)
        self._observe()

    def _observe(self) -> None:
        """Observe syscalls and kernel exits only while something needs them (tracing,
        a thread-switch condition, a fault to report): a plain run costs the kernel no
        call per entry. A fault attaches the exit observer for the rest of the run."""
        _attach(self._kernel.syscall_observers, self._on_syscall_entry, self._tracing)
        _attach(self._kernel.exit_observers, self._on_exit,
                self._tracing or self._watch_switches or bool(self._faults))

    def _keep_record(self, record: TraceRecord) -> None:
        self._record = record

    def _take_record(self) -> TraceRecord | None:
        """The record the tracer handed to :meth:`_keep_record` since it was last taken
        (None if none), and no longer kept."""
        record, self._record = self._record, None
        return record

    def _take_hook_error(self) -> BaseException | None:
        """The exception an observer raised inside the run (None if none), no longer kept.

        Read through a call because observers set it inside ``run``'s calls into the
        machine, which a type checker takes to leave an attribute as last assigned."""
        error, self._hook_error = self._hook_error, None
        return error

    # kernel observers: called inside the run, from the machine's trap hook

    def _on_syscall_entry(self, kernel: Kernel, window: list[int]) -> None:
        if self._tracing and self._tracer is not None:
            self._tracer.on_syscall(kernel, window)

    def _on_fault(self, tcb: TCB, fault: Fault) -> None:
        self._faults.append((tcb, fault))  # reported at the end of the entry
        _attach(self._kernel.exit_observers, self._on_exit, True)

    def _on_exit(self, kernel: Kernel) -> None:
        previous, self._last_current = self._last_current, kernel.current
        record: TraceRecord | None = None
        if self._tracing and self._tracer is not None:
            self._record = None
            self._tracer.on_exit(kernel)  # hands its record to _keep_record
            record = self._take_record()
        faults = self._faults
        if not faults and record is None and not self._watch_switches:
            return
        self._faults = []
        self._observe()  # the faults are taken: detached again unless tracing needs it
        try:
            self._after_entry(kernel, record, faults, previous)
        except BaseException as error:  # a hook's: raised again by run(), not lost in Unicorn
            self._hook_error = error
            self._machine.request_pause("a hook raised an exception")

    def _after_entry(self, kernel: Kernel, record: TraceRecord | None,
                     faults: list[tuple[TCB, Fault]], previous: TCB | None) -> None:
        met: _Met | None = None
        event = None if record is None else _syscall_event(kernel, record)
        if event is not None:
            for hook in list(self._syscall_hooks):
                if hook._callback(event) is True and met is None:
                    met = _Met(StopKind.HOOK, None, event, None)
            condition = next((c for c in self._conditions if _syscall_meets(c, event)), None)
            if condition is not None:
                met = _Met(StopKind.CONDITION, condition, event, None)
        for tcb, fault in faults:
            fault_event = self._last_fault = _fault_event(kernel, tcb, fault)
            for hook in list(self._fault_hooks):
                if hook._callback(fault_event) is True and met is None:
                    met = _Met(StopKind.HOOK, None, None, fault_event)
            for condition in self._conditions:
                if isinstance(condition, AfterFault) and condition.thread in (None, tcb.name):
                    met = _Met(StopKind.CONDITION, condition, None, fault_event)
        current = kernel.current
        if current is not None and current is not previous:
            for condition in self._conditions:
                if isinstance(condition, ThreadScheduled) and condition.name == current.name:
                    met = _Met(StopKind.CONDITION, condition, None, None)
        if met is not None and self._met is None:
            self._met = met
            self._machine.request_pause(met.kind.value)

    # --- threads and registers ------------------------------------------------------------------

    @property
    def threads(self) -> tuple[ThreadInfo, ...]:
        """Every thread, in the order they were created (the root task first)."""
        return tuple(self._thread_info(tcb) for tcb in self._kernel.threads.values())

    def thread(self, thread: ThreadRef = None) -> ThreadInfo:
        """One thread (see :data:`ThreadRef`). Raises NoSuchThread."""
        return self._thread_info(self._tcb(thread))

    def _thread_info(self, tcb: TCB) -> ThreadInfo:
        return ThreadInfo(tcb.name, tcb.paddr, tcb.state.value, tcb.priority,
                          tcb is self._kernel.current, tcb.stop_reason)

    def _tcb(self, thread: ThreadRef) -> TCB:
        kernel = self._kernel
        if thread is None:
            if kernel.current is not None:
                return kernel.current
            for tcb in kernel.threads.values():
                return tcb
            raise NoSuchThread("there are no threads")
        if isinstance(thread, ThreadInfo):
            found = kernel.threads.get(thread.tcb)
            if found is None:
                raise NoSuchThread(f"thread {thread.name!r} (tcb {thread.tcb:#x}) no longer exists")
            return found
        for tcb in kernel.threads.values():
            if tcb.name == thread:
                return tcb
        raise NoSuchThread(f"no thread named {thread!r}")

    def registers(self, thread: ThreadRef = None) -> dict[str, int]:
        """The thread's registers by name, in seL4_UserContext order (``pc``, ``ra``,
        ``sp``, ... on RISC-V; ``pc``, ``sp``, ``spsr``, ``x0``, ... on AArch64). ``pc``
        is where the thread goes on: after a system call, the instruction after it."""
        tcb = self._tcb(thread)
        return dict(zip(self._kernel.abi.user_context, self._target.context(tcb), strict=True))

    def set_registers(self, values: Mapping[str, int], thread: ThreadRef = None) -> None:
        """Change some of the thread's registers (names as :meth:`registers` gives
        them); the others keep their values. Raises UsageError for an unknown name or a
        value that is not a 64-bit word."""
        tcb = self._tcb(thread)
        names = self._kernel.abi.user_context
        context = self._target.context(tcb)
        for name, value in values.items():
            if name not in names:
                raise UsageError(f"no register {name!r} on {self.arch} "
                                 f"(one of {', '.join(names)})")
            if not 0 <= value < 1 << _WORD_BITS:
                raise UsageError(f"{name} = {value:#x} is not a 64-bit word")
            context[names.index(name)] = value
        self._target.set_context(tcb, context)

    # --- memory ----------------------------------------------------------------------------------

    def read(self, vaddr: int, size: int, thread: ThreadRef = None) -> bytes:
        """``size`` bytes at virtual address ``vaddr`` of the thread's VSpace (its page
        tables, whatever the mapping's rights).

        Raises:
            MemoryAccessError: part of the range is not mapped.
            UsageError: a negative size or an address beyond 64 bits.
        """
        return self._read(self._tcb(thread), vaddr, size)

    def _read(self, tcb: TCB, vaddr: int, size: int) -> bytes:
        self._check_range(vaddr, size)
        out = bytearray()
        while len(out) < size:
            address = vaddr + len(out)
            want = min(MAX_ACCESS, size - len(out))
            try:
                chunk = self._target.read_memory(tcb, address, want)
            except TargetError:
                chunk = b""
            out += chunk
            if len(chunk) < want:
                missing = vaddr + len(out)
                raise MemoryAccessError(f"address {missing:#x} is not mapped in "
                                        f"thread {tcb.name!r}'s VSpace", missing)
        return bytes(out)

    def write(self, vaddr: int, data: bytes, thread: ThreadRef = None) -> None:
        """Write ``data`` at virtual address ``vaddr`` of the thread's VSpace (whatever
        the mapping's rights: code can be patched; the CPU sees the new bytes). All of
        it or nothing.

        Raises:
            MemoryAccessError: part of the range is not mapped (nothing was written).
            UsageError: an address beyond 64 bits.
        """
        tcb = self._tcb(thread)
        self._read(tcb, vaddr, len(data))  # every page mapped, before any write
        for offset in range(0, len(data), MAX_ACCESS):
            self._target.write_memory(tcb, vaddr + offset, bytes(data[offset:offset + MAX_ACCESS]))

    @staticmethod
    def _check_range(vaddr: int, size: int) -> None:
        if size < 0:
            raise UsageError(f"size {size} is negative")
        if vaddr < 0 or vaddr + size > 1 << _WORD_BITS:
            raise UsageError(f"range {vaddr:#x} + {size:#x} is not in the 64-bit address space")

    def symbol(self, name: str) -> int:
        """The address of symbol ``name`` in the root task's ELF (pyelftools reads the
        symbol table): a global variable's or a function's. Raises NoSuchSymbol."""
        if self._symbols is None:
            # pyelftools is imported here, by the first symbol look-up: a run that looks
            # none up does not load it.
            from elftools.common.exceptions import ELFError
            from elftools.elf.elffile import ELFFile
            from elftools.elf.sections import SymbolTableSection

            symbols: dict[str, int] = {}
            try:
                elf = ELFFile(BytesIO(self._elf))
                for section in elf.iter_sections():
                    if isinstance(section, SymbolTableSection):
                        for sym in section.iter_symbols():
                            if sym.name and sym["st_shndx"] != "SHN_UNDEF":
                                symbols.setdefault(sym.name, sym["st_value"])
            except ELFError as error:
                raise NoSuchSymbol(f"cannot read the ELF's symbols: {error}") from None
            self._symbols = symbols
        address = self._symbols.get(name)
        if address is None:
            raise NoSuchSymbol(f"no symbol {name!r} in the program")
        return address

    @property
    def elf(self) -> bytes:
        """The root task's ELF, as the image holds it."""
        return self._elf

    # --- capabilities ----------------------------------------------------------------------------

    def cap(self, cptr: int, thread: ThreadRef = None) -> CapInfo | None:
        """The cap that ``cptr`` names in the thread's CSpace, resolved as the kernel
        resolves a syscall's CPtr (all 64 bits, stopping at a non-CNode cap); None for
        an empty slot.

        Raises:
            CapLookupError: ``cptr`` does not resolve (seL4's lookup failure named).
        """
        if not 0 <= cptr < 1 << _WORD_BITS:
            raise UsageError(f"cptr {cptr:#x} is not a 64-bit word")
        tcb = self._tcb(thread)
        found = lookup_slot(self._kernel, tcb, cptr)
        if not isinstance(found, Slot):
            failure = type(found).__name__
            raise CapLookupError(f"cptr {cptr:#x} does not resolve in thread {tcb.name!r}'s "
                                 f"CSpace: {failure}", failure)
        return _cap_info(found)

    def cspace(self, thread: ThreadRef = None) -> tuple[SlotInfo, ...]:
        """Every non-empty slot the thread can name with a CPtr, by CPtr. Each CNode
        is listed once (a CNode reachable twice, or from itself, is not walked again).
        The slots of the root task's root CNode below ``seL4_NumInitialCaps`` carry
        seL4's names for the initial caps, whichever thread's CSpace holds it."""
        tcb = self._tcb(thread)
        root = tcb.ctable.cap
        if not isinstance(root, CNodeCap):
            return ()
        named_cnode = self._root_cnode
        out: list[SlotInfo] = []
        seen: set[int] = set()
        pending: list[tuple[CNodeCap, int, int]] = [(root, 0, 0)]
        while pending:  # iterative: a guest can chain CNodes deeply
            cap, prefix, bits = pending.pop()
            node = self._kernel.objects.get(cap.paddr)
            level = bits + cap.guard_size + cap.radix
            if not isinstance(node, CNode) or cap.paddr in seen or level > _WORD_BITS:
                continue
            seen.add(cap.paddr)
            base = ((prefix << cap.guard_size) | cap.guard) << cap.radix
            for slot in node.slots:
                if slot.is_empty:
                    continue
                value = base | slot.index
                if level < _WORD_BITS and isinstance(slot.cap, CNodeCap):
                    pending.append((slot.cap, value, level))
                    continue
                info = _cap_info(slot)
                assert info is not None
                name = _INITIAL_NAMES.get(slot.index) if node.paddr == named_cnode else None
                out.append(SlotInfo(value << (_WORD_BITS - level), level, info, name))
        return tuple(sorted(out, key=lambda s: (s.cptr, s.depth)))

    # --- components ----------------------------------------------------------------------------

    def capture_component(self, thread: ThreadRef = None, *,
                          external: Mapping[str, CapRef] | None = None) -> Component:
        """The component of ``thread``: its CSpace, slot for slot, and the objects it
        owns (:mod:`kernel.component.capture`), as plain data with identities instead of
        addresses. ``external`` names objects outside it: ``{"server_ep": ("rootserver",
        0x20)}``, a name for the object a cap names. Changes nothing.

        Raises:
            ComponentError: it cannot be captured faithfully (the message says why: an
                object shared with an outside cap and not named external, a thread in
                the middle of a Call, ...).
            CapLookupError: a CPtr of ``external`` names no cap.
        """
        return capture_component(self._kernel, self._tcb, thread, external)

    def restore_component(self, component: Component, *, untyped: CapRef,
                          identities: Mapping[str, CapRef] | None = None,
                          asid_pool: CapRef | None = None) -> Restored:
        """Put ``component`` back in fresh objects retyped from the untyped cap
        ``untyped`` (:mod:`kernel.component.restore`): every cap in its slot, the
        derivation tree among them as it was, frames, registers and thread states.
        ``identities`` maps each of its externals to a cap to the existing object;
        ``asid_pool`` gives the ASIDs of a VSpace of its own. Returns the new objects'
        addresses by identity. Changes nothing if it raises ComponentError.
        """
        return restore_component(self._kernel, self._tcb, component, untyped,
                                 identities, asid_pool)

    def snapshot(self, *, point: str = "", empty_slots: bool = False) -> Snapshot:
        """Every thread's CSpace, every object, untyped and derivation link now: the
        model ``capsule cspace`` renders (:mod:`kernel.views.render`; its ``to_text``,
        ``to_json`` and ``to_dot`` render it). ``point`` labels when it was taken;
        ``empty_slots`` puts the empty slots into the CSpace trees too."""
        return snapshot(self._kernel, point, None, empty_slots)


def _attach(observers: list[Callable[..., None]], observer: Callable[..., None],
            wanted: bool) -> None:
    """Make ``observer`` be in ``observers`` (at the end) or not, as ``wanted``."""
    present = observer in observers
    if wanted and not present:
        observers.append(observer)
    elif present and not wanted:
        observers.remove(observer)


def _byte_sink(console: Callable[[bytes], None] | None) -> Callable[[int], None]:
    """The kernel's console (a byte at a time) for a user's ``console`` (bytes)."""
    if console is None:
        return lambda byte: None
    return lambda byte: console(bytes((byte,)))


# --- records from kernel data ---------------------------------------------------------------


def _cap_info(slot: Slot) -> CapInfo | None:
    view = cap_view(slot.cap)
    if view is None:
        return None
    badge = view.fields.get("badge")
    rights = view.fields.get("rights")
    return CapInfo(view.type, view.paddr, badge if isinstance(badge, int) else None,
                   rights if isinstance(rights, str) else None, dict(view.fields))


def _syscall_event(kernel: Kernel, record: TraceRecord) -> SyscallEvent:
    args = {name: tuple(value) if isinstance(value, list) else value
            for name, value in (record.args or {}).items()}
    return SyscallEvent(kernel.kernel_entries, record.thread, record.tcb, record.syscall,
                        record.number,
                        record.cptr, record.cap, record.label, args, tuple(record.mrs),
                        record.result, tuple(record.reply), record.decoded,
                        format_record(record))


def _syscall_meets(condition: Condition, event: SyscallEvent) -> bool:
    if isinstance(condition, AfterSyscall):
        return (condition.name in (None, event.syscall)
                and condition.thread in (None, event.thread)
                and condition.cap in (None, event.cap))
    if isinstance(condition, AfterInvocation):
        return condition.label == event.label and condition.thread in (None, event.thread)
    return False


def _fault_event(kernel: Kernel, tcb: TCB, fault: Fault) -> FaultEvent:
    address = fault.address if isinstance(fault, VMFault | CapFault) else None
    access = fault.access.value if isinstance(fault, VMFault) else None
    return FaultEvent(kernel.kernel_entries, tcb.name, _FAULT_KINDS[type(fault)], fault.ip,
                      address, access, tcb.fault is fault, fault.describe())
