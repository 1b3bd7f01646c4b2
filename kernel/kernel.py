"""The kernel's entry points: the top of the kernel, the one class the machine calls.

The emulator calls exactly four entry points, one per kind of kernel entry:
:meth:`Kernel.syscall`, :meth:`Kernel.vm_fault`, :meth:`Kernel.user_exception` and
:meth:`Kernel.timer_tick`. Each handles the event for the current thread, then runs the
scheduler once (:meth:`Kernel._exit_kernel`), which may install another thread on the
machine. When no thread can run (nothing will ever wake one: there are no interrupts
yet) or the guest halted, :attr:`Kernel.stop` says why and the emulator ends the run.

The state itself is :class:`kernel.model.state.KernelState` (plain data, DESIGN.md
decision 7); this class adds what only the entry layer may do: dispatch system calls,
deliver faults, and act on the scheduler's decision by installing a thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Final, final

from mypy_extensions import mypyc_attr

from kernel.arch.cap_page import type_fault_at
from kernel.config import KernelConfig
from kernel.core.budget import entry_budget_ok
from kernel.core.fault_delivery import handle_fault
from kernel.core.mcs_sched import awaken, idle_until_release, is_schedulable, switch_sched_context
from kernel.core.sched_contexts import complete_yield_to
from kernel.core.threads import install_thread, vspace_root_of
from kernel.entry.syscalls import SyscallTable
from kernel.entry.variant import variant_for
from kernel.machine import Machine
from kernel.model.faults import UserExceptionFault, VMFault
from kernel.model.page_tables import grant_deferred_execute
from kernel.model.paging import Access
from kernel.model.state import KernelState, StopReason
from kernel.model.tcb import TCB, ThreadState

__all__ = ["Kernel", "StopReason"]

_PAGE_MASK: Final = (1 << 12) - 1
_RESTART: Final = ThreadState.RESTART  # read at every syscall: a global is cheaper than the Enum's


@final
@mypyc_attr(allow_interpreted_subclasses=True)
class Kernel(KernelState):
    """The kernel of one machine: its state and the entry points the machine calls.

    Pickles as :class:`KernelState` does; the observers (not state) are left out and an
    unpickled kernel has none, and the variant (with its syscall table) is rebuilt from
    the configuration.
    """

    _NOT_STATE: ClassVar[tuple[str, ...]] = (
        *KernelState._NOT_STATE, "syscall_observers", "exit_observers", "variant", "syscalls")

    def __init__(
        self, machine: Machine, config: KernelConfig, console: Callable[[int], None]
    ) -> None:
        super().__init__(machine, config, console)
        self.syscall_observers: list[Callable[[Kernel, list[int]], None]] = []
        """Called at each syscall entry with the caller's a0-a7 / x0-x7, before any effect
        (the tracer). Empty in normal runs."""
        self.exit_observers: list[Callable[[Kernel], None]] = []
        """Called after every kernel entry, once its effects are complete (tests hook the
        invariant checker here; tracing will too). Empty in normal runs."""
        self.variant = variant_for(config)
        """Where the non-MCS and MCS configurations differ (kernel.entry.variant)."""
        self.syscalls: SyscallTable = self.variant.syscalls  # read at every syscall entry

    def __setstate__(self, state: dict[str, object]) -> None:
        super().__setstate__(state)
        self.syscall_observers = []
        self.exit_observers = []
        self.variant = variant_for(self.config)
        self.syscalls = self.variant.syscalls

    # --- entry points ------------------------------------------------------------------

    def syscall(self) -> None:
        """A syscall trap of the current thread; the machine's pc is past the trap."""
        self.kernel_entries += 1
        self.syscall_entries += 1
        self._current_saved = False
        current = self.current
        if current is not None:
            # seL4's FaultIP is the trap instruction until the thread enters again.
            current.after_syscall = True
            if current.state is _RESTART:
                # seL4's activateThread made it Running when it resumed (at the pc
                # capsule had already set); nothing could observe the difference since.
                current.state = ThreadState.RUNNING
        window = self.machine.read_syscall_window()
        if self.mcs is not None and self.variant.budgeted(window[7]) \
                and not entry_budget_ok(self):
            self._exit_kernel()  # out of budget: the thread traps again when it runs
            return
        for observer in self.syscall_observers:
            observer(self, window)
        self.syscalls.dispatch(self, window)
        self._exit_kernel()

    def vm_fault(self, address: int, access: Access, fsr: int) -> None:
        """The current thread touched ``address`` without a mapping allowing ``access``,
        or through one to a physical address where nothing answers (device memory with
        no device behind it); ``fsr`` is the architecture's fault status word for it.

        The machine's pc is the faulting instruction (it is retried after a fix).

        An instruction fetch from a page whose execute permission the kernel deferred
        (``kernel.model.paging``) is no fault: the permission is granted and the
        instruction retried, with nothing counted or observed.
        """
        if access is Access.EXECUTE and self._grant_deferred_execute(address):
            return
        self.kernel_entries += 1
        self._current_saved = False
        assert self.current is not None
        if self.mcs is not None:
            self.current.after_syscall = False
            if not entry_budget_ok(self):
                self._exit_kernel()
                return
        ip = self.current_pc()
        # capsule's capability pages (not seL4): a data access where one is mapped is a
        # type fault, not a missing page (nothing without the extension: no mappings).
        type_fault = type_fault_at(self, self.current, ip, address, access)
        handle_fault(self,
            self.current,
            type_fault if type_fault is not None else VMFault(
                ip=ip,
                address=address,
                prefetch=access is Access.EXECUTE,
                fsr=fsr,
                access=access,
            ),
        )
        self._exit_kernel()

    def _grant_deferred_execute(self, pc: int) -> bool:
        """Grant the deferred execute permission of the page of ``pc`` or, if that page
        may run code already, of the page after it: a 4-byte RISC-V instruction at a
        2-byte boundary may straddle two, and Unicorn reports a fetch fault anywhere in
        a block of code that runs into the next page at the block's first instruction,
        in the page before. Only one page at a time: the next page is often data, whose
        stores a needless execute permission would slow down (the reason execute
        permission is deferred)."""
        assert self.current is not None
        root, _asid = vspace_root_of(self, self.current)
        if not root:
            return False
        granted = (grant_deferred_execute(self.machine, self.paging, root, pc)
                   or grant_deferred_execute(self.machine, self.paging, root,
                                             (pc | _PAGE_MASK) + 1))
        if granted:
            self.machine.page_tables_changed()
        return granted

    def user_exception(self, number: int, code: int) -> None:
        """An exception seL4 passes on as it is (an illegal instruction, a misaligned pc,
        ...): ``number`` and ``code`` are the architecture's words for it. The machine's
        pc is where it happened."""
        self.kernel_entries += 1
        self._current_saved = False
        if self.mcs is not None and self.current is not None:
            self.current.after_syscall = False
            if not entry_budget_ok(self):
                self._exit_kernel()
                return
        current = self.save_current()
        regs = self.registers_of(current)
        status = self.platform.status_register  # SPSR as saved on the hardware: EL0 bits
        spsr = status.sanitise(regs[status.index]) if status is not None else 0
        handle_fault(self,
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
            self.variant.charge_tick(self, current)
        self._exit_kernel()

    def tick_is_quiet(self) -> bool:
        """Whether the next :meth:`timer_tick` would only charge time: no MCS, the
        current thread runnable, the domain's time not running out, no scheduler
        decision pending, nothing observing kernel exits, and either more than one tick
        of the thread's slice left or, when it runs out, no other thread queued at its
        priority or above (so that the thread is chosen again). Such a tick leaves the
        same thread running with the same registers, so the machine may take it a few
        instructions late, before anything else reaches the kernel (``emulator.machine``'s
        block counter does)."""
        current = self.current
        scheduler = self.scheduler
        if not (self.mcs is None and self.stop is None and current is not None
                and current.state.runnable
                and (self.config.num_domains <= 1 or self.domains.time > 1)
                and not scheduler.choose_new and scheduler.candidate is None
                and not self.exit_observers):
            return False
        if current.time_slice > 1:
            return True
        return (current.paddr not in scheduler.queued
                and scheduler.nonempty[self.domains.current] >> current.priority == 0)

    # --- threads -------------------------------------------------------------------------

    def _exit_kernel(self) -> None:
        """Act on the scheduler decision once, on the way back to user mode."""
        if self.mcs is None:
            self._schedule()
        else:
            self._schedule_mcs()
        if self.exit_observers:
            # A snapshot: an observer may detach itself (capsule.machine's does).
            for observer in tuple(self.exit_observers):
                observer(self)

    def _schedule_mcs(self) -> None:
        """seL4's schedule() with MCS: first release the threads whose refills are due,
        finally charge and switch scheduling contexts and set the timer
        (:mod:`kernel.core.mcs_sched`), then complete a YieldTo (activateThread)."""
        awaken(self)
        self._schedule()
        if self.stop is None:
            switch_sched_context(self)
            current = self.current
            if current is not None and current.yield_to is not None:
                complete_yield_to(self, current)

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
        was_runnable = previous is not None and (
            previous.state.runnable if self.mcs is None else is_schedulable(previous))
        if previous is not None and was_runnable:
            scheduler.append_front(previous)
        chosen: TCB | None
        domain = self.domains.current
        if choose_new or candidate is None:
            chosen = self._choose_thread()
            while chosen is None and self.mcs is not None and idle_until_release(self):
                self.reschedule_required()  # a released thread is queued, not a candidate
                self.scheduler.choose_new = False
                chosen = self._choose_thread()
        else:
            fastfail = previous is None or candidate.priority < previous.priority
            if fastfail and not scheduler.is_highest(domain, candidate.priority):
                scheduler.append_front(candidate)
                chosen = self._choose_thread()
            elif (was_runnable and previous is not None
                  and candidate.priority == previous.priority):
                scheduler.enqueue(candidate)
                chosen = self._choose_thread()
            else:
                scheduler.dequeue(candidate)
                chosen = candidate
        if chosen is previous:
            if self._current_saved and previous is not None:
                # Back into the machine, address space included: the saved copy holds
                # the root installed at the save, which this entry may have changed.
                install_thread(self, previous)
            return
        if previous is not None:
            self.save_current()
        if chosen is None:
            self.current = None
            self._stop_idle(previous)
            return
        install_thread(self, chosen)

    def _choose_thread(self) -> TCB | None:
        """seL4's scheduleChooseNewThread: move to the next domain if the current one's
        time is up, then take the highest-priority thread of the current domain.

        Where seL4 would run its idle thread until a later domain's turn, no instruction
        retires here, so that idle time passes at once: its ticks are counted and the
        schedule moves on, until a domain with a ready thread comes up. If a whole round
        of the schedule finds none, there is none (None: every thread is blocked).
        """
        domains, scheduler = self.domains, self.scheduler
        if self.config.num_domains > 1 and domains.time == 0:
            domains.next_domain()
        chosen = scheduler.pop_highest(domains.current)
        if chosen is not None or self.config.num_domains == 1 or not any(scheduler.nonempty):
            return chosen
        for _ in range(len(domains.entries)):
            self.ticks += domains.time  # the idle thread's turn, over at once
            domains.next_domain()
            chosen = scheduler.pop_highest(domains.current)
            if chosen is not None:
                return chosen
        return None

    def _stop_idle(self, last: TCB | None) -> None:
        if last is not None and last.stop_reason is not None:
            self.stop = StopReason("fault", 3, last.stop_reason)
        else:
            self.stop = StopReason("idle", 4, "no thread can run: every thread is blocked")
