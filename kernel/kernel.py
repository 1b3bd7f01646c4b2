"""Kernel state and its entry points.

The emulator calls exactly four entry points, one per kind of kernel entry:
:meth:`Kernel.syscall`, :meth:`Kernel.vm_fault`, :meth:`Kernel.user_exception` and
:meth:`Kernel.timer_tick`. Each handles the event for the current thread, then runs the
scheduler once (:meth:`_exit_kernel`), which may install another thread on the machine.
When no thread can run (nothing will ever wake one: there are no interrupts yet) or the
guest halted, :attr:`Kernel.stop` says why and the emulator ends the run.

Kernel state is plain data (DESIGN.md decision 7): objects are kept in :attr:`objects`
keyed by physical address; nothing here refers to Unicorn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .abi.arch import Arch, ArchABI, abi_for
from .arch.paging import AARCH64_4K, RV64_SV39, Access, PagingFormat
from .config import KernelConfig
from .fault_delivery import deliver_fault
from .faults import Fault, UnknownSyscallFault, UserExceptionFault, VMFault
from .machine import Machine
from .objects.tcb import TCB, ThreadState
from .sched import Scheduler
from .syscalls import SyscallTable
from .threads import vspace_root_of

if TYPE_CHECKING:
    from .objects.asid_pool import ASIDPool

__all__ = ["Kernel", "StopReason"]


@dataclass(frozen=True, slots=True)
class StopReason:
    """Why the run ended.

    ``kind`` is ``"halt"`` (seL4_DebugHalt; ``status`` is the guest's exit status),
    ``"fault"`` (the last runnable thread stopped on a fault nobody handles) or
    ``"idle"`` (every thread is blocked or inactive: nothing can ever run again).
    """

    kind: str
    status: int
    message: str


class Kernel:
    """All kernel state of one machine."""

    def __init__(
        self, machine: Machine, config: KernelConfig, console: Callable[[int], None]
    ) -> None:
        self.machine = machine
        self.config = config
        self.arch: Arch = machine.arch
        self.abi: ArchABI = abi_for(machine.arch)
        self.paging: PagingFormat = RV64_SV39 if self.arch is Arch.RISCV64 else AARCH64_4K
        self.console = console
        self.objects: dict[int, object] = {}
        self.asid_table: dict[int, ASIDPool] = {}
        """seL4's ASID table: live ASID pools by pool index (ASID >> 9); each is also in
        ``objects``. Kept apart so that a thread switch finds its VSpace in O(1)."""
        self.asid_epoch = 0
        """Bumped whenever the ASID table or a pool's roots change: a thread's cached
        VSpace resolution (``kernel.threads.vspace_root_of``) from an older epoch is
        recomputed."""
        self.threads: list[TCB] = []
        self.scheduler = Scheduler()
        self.current: TCB | None = None
        self.stop: StopReason | None = None
        self.kernel_entries = 0
        self.ticks = 0
        self._current_saved = False
        """The current thread's registers were copied into its TCB during this entry."""
        self.syscall_observers: list[Callable[[Kernel, list[int]], None]] = []
        """Called at each syscall entry with the caller's a0-a7 / x0-x7, before any effect
        (the tracer). Empty in normal runs."""
        self.exit_observers: list[Callable[[Kernel], None]] = []
        """Called after every kernel entry, once its effects are complete (tests hook the
        invariant checker here; tracing will too). Empty in normal runs."""
        self.reg_index = {name: i for i, name in enumerate(self.abi.user_context)}
        prefix = "x" if "x0" in self.reg_index else "a"
        self.window_index = [self.reg_index[f"{prefix}{i}"] for i in range(8)]
        """Positions of the syscall window (a0-a7 / x0-x7) in a saved register list."""
        self.syscalls = SyscallTable.for_config(config)

    # --- entry points ------------------------------------------------------------------

    def syscall(self) -> None:
        """A syscall trap of the current thread; the machine's pc is past the trap."""
        self.kernel_entries += 1
        self._current_saved = False
        current = self.current
        if current is not None:
            # seL4's FaultIP is the trap instruction until the thread enters again.
            current.after_syscall = True
            if current.state is ThreadState.RESTART:
                # seL4's activateThread made it Running when it resumed (at the pc
                # capsule had already set); nothing could observe the difference since.
                current.state = ThreadState.RUNNING
        window = self.machine.read_syscall_window()
        for observer in self.syscall_observers:
            observer(self, window)
        self.syscalls.dispatch(self, window)
        self._exit_kernel()

    def vm_fault(self, address: int, access: Access, fsr: int) -> None:
        """The current thread touched ``address`` without a mapping allowing ``access``.

        The machine's pc is the faulting instruction (it is retried after a fix).
        """
        self.kernel_entries += 1
        self._current_saved = False
        assert self.current is not None
        self.handle_fault(
            self.current,
            VMFault(
                ip=self.current_pc(),
                address=address,
                prefetch=access is Access.EXECUTE,
                fsr=fsr,
                access=access,
            ),
        )
        self._exit_kernel()

    def user_exception(self, number: int, code: int) -> None:
        """An illegal instruction or similar; the machine's pc is the instruction."""
        self.kernel_entries += 1
        self._current_saved = False
        current = self.save_current()
        regs = current.registers
        spsr = regs[self.reg_index["spsr"]] if "spsr" in self.reg_index else 0
        self.handle_fault(
            current,
            UserExceptionFault(ip=regs[0], number=number, code=code,
                               sp=regs[self.reg_index["sp"]], spsr=spsr),
        )
        self._exit_kernel()

    def timer_tick(self) -> None:
        """``tick_instructions`` instructions retired: charge the current thread."""
        self.ticks += 1
        self._current_saved = False
        current = self.current
        if current is not None:
            current.after_syscall = False
        if current is not None and current.state.runnable:
            current.time_slice -= 1
            if current.time_slice <= 0:
                current.time_slice = self.config.time_slice_ticks
                self.scheduler.enqueue(current)
                self.reschedule_required()
        self._exit_kernel()

    # --- threads -------------------------------------------------------------------------

    def current_pc(self) -> int:
        if self._current_saved and self.current is not None:
            return self.current.registers[0]
        return self.machine.save_context()[0]

    def save_current(self) -> TCB:
        """Save the current thread's state into its TCB, once per kernel entry.

        After this, the TCB's copy is the truth (code may edit it, as fault delivery
        does with the restart pc); it is loaded back when the thread runs again. The
        save is the machine's own copy (:meth:`Machine.save_thread`); the register
        list is made only if some code reads ``registers``.
        """
        current = self.current
        assert current is not None
        if not self._current_saved:
            current.adopt_saved(self.machine.save_thread(current.saved))
            self._current_saved = True
        return current

    def registers_live(self, tcb: TCB) -> bool:
        """Whether ``tcb``'s registers are in the machine (it is current and unsaved)
        rather than in ``tcb.registers``."""
        return tcb is self.current and not self._current_saved

    def set_thread_state(self, tcb: TCB, state: ThreadState) -> None:
        """Change ``tcb``'s state; if the current thread stops running, pick another."""
        tcb.state = state
        if not state.runnable:
            self.scheduler.dequeue(tcb)
            if tcb is self.scheduler.candidate:
                self.scheduler.candidate = None
                self.scheduler.choose_new = True
            if tcb is self.current:
                self.reschedule_required()

    def reschedule_required(self) -> None:
        """seL4's rescheduleRequired: choose again at kernel exit; a pending switch
        candidate goes to the front of its ready queue."""
        scheduler = self.scheduler
        if scheduler.candidate is not None:
            scheduler.append_front(scheduler.candidate)
            scheduler.candidate = None
        scheduler.choose_new = True

    def make_runnable(self, tcb: TCB) -> None:
        """seL4's possibleSwitchTo for a thread that just became runnable.

        With no other decision pending, ``tcb`` becomes the switch candidate, decided
        at kernel exit (:meth:`_schedule`); otherwise it goes to the front of its
        queue and the scheduler chooses afresh.
        """
        scheduler = self.scheduler
        if scheduler.choose_new or scheduler.candidate is not None:
            self.reschedule_required()
            scheduler.append_front(tcb)
        else:
            scheduler.candidate = tcb

    def yield_current(self) -> None:
        """seL4_Yield (non-MCS): go to the back of the current priority's queue."""
        current = self.current
        if current is None:
            return
        self.scheduler.dequeue(current)
        self.scheduler.enqueue(current)
        self.reschedule_required()

    def _exit_kernel(self) -> None:
        """Act on the scheduler decision once, on the way back to user mode."""
        self._schedule()
        for observer in self.exit_observers:
            observer(self)

    def _schedule(self) -> None:
        """seL4's schedule(): act on the scheduler action.

        A runnable current thread goes to the *front* of its queue (it keeps its turn
        when preempted; timer ticks and Yield have already put it at the back). A
        candidate (:meth:`make_runnable`) runs if it outranks the current thread; one
        of lower priority is queued at the front, one of equal priority at the back.
        """
        scheduler = self.scheduler
        if self.stop is not None or not (scheduler.choose_new or scheduler.candidate is not None):
            return
        candidate = scheduler.candidate
        scheduler.candidate = None
        choose_new = scheduler.choose_new
        scheduler.choose_new = False
        previous = self.current
        was_runnable = previous is not None and previous.state.runnable
        if previous is not None and was_runnable:
            scheduler.append_front(previous)
        chosen: TCB | None
        if choose_new or candidate is None:
            chosen = scheduler.pop_highest()
        else:
            fastfail = previous is None or candidate.priority < previous.priority
            if fastfail and not scheduler.is_highest(candidate.priority):
                scheduler.append_front(candidate)
                chosen = scheduler.pop_highest()
            elif (was_runnable and previous is not None
                  and candidate.priority == previous.priority):
                scheduler.enqueue(candidate)
                chosen = scheduler.pop_highest()
            else:
                scheduler.dequeue(candidate)
                chosen = candidate
        if chosen is previous:
            if self._current_saved and previous is not None:
                # Back into the machine, address space included: the saved copy holds
                # the root installed at the save, which this entry may have changed.
                self.install(previous)
            return
        if previous is not None:
            self.save_current()
        if chosen is None:
            self.current = None
            self._stop_idle(previous)
            return
        self.install(chosen)

    def install(self, tcb: TCB) -> None:
        """Make ``tcb`` the current thread on the machine: its registers and VSpace."""
        self._load(tcb)
        root, asid = vspace_root_of(self, tcb)
        self.machine.set_address_space(root, asid)  # after the load: see load_thread
        self.current = tcb
        self._current_saved = False

    def _load(self, tcb: TCB) -> None:
        """Put ``tcb``'s saved state into the machine."""
        self.machine.load_thread(tcb.saved, tcb.register_list, tcb.changes)

    def _stop_idle(self, last: TCB | None) -> None:
        if last is not None and last.stop_reason is not None:
            self.stop = StopReason("fault", 3, last.stop_reason)
        else:
            self.stop = StopReason("idle", 4, "no thread can run: every thread is blocked")

    def halt(self, status: int) -> None:
        self.stop = StopReason("halt", status, "seL4_DebugHalt")

    def unsupported(self, feature: str) -> None:
        """Stop the run where the guest needs a kernel feature capsule lacks so far.

        Not seL4 behaviour, and said so: the run ends (exit status 5) with a message
        naming the feature, instead of pretending or crashing.
        """
        self.stop_with_message(f"not implemented in capsule yet: {feature}")

    def stop_with_message(self, message: str) -> None:
        """Stop the machine where the seL4 debug kernel would halt with a message."""
        self.stop = StopReason("kernel-halt", 5, message)

    # --- faults --------------------------------------------------------------------------

    def handle_fault(self, tcb: TCB, fault: Fault) -> None:
        """Send ``fault`` to ``tcb``'s fault handler, or stop ``tcb`` if it has none."""
        # Fault delivery puts the fault's IP in the pc: it is the restart pc now.
        tcb.after_syscall = False
        deliver_fault(self, tcb, fault)

    def unknown_syscall(self, window: list[int], number: int) -> None:
        current = self.save_current()
        regs = list(current.registers)
        # FaultIP is the trap instruction itself (4 bytes before the resume pc on both).
        self.handle_fault(
            current,
            UnknownSyscallFault(ip=regs[0] - 4, number=number, registers=regs),
        )
