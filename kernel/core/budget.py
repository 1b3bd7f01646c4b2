"""MCS budgets at kernel entry: is there enough left, and what happens when there is
not (seL4's checkBudget, chargeBudget, endTimeslice, handleYield and the budget check
at the end of doReplyTransfer).

Every system call and fault of an MCS kernel first reads the clock and checks that the
current context still holds MIN_BUDGET after what it used since the last charge
(:func:`entry_budget_ok`); if not, the time is charged and the entry does nothing else:
the thread restarts the trapping instruction once it has budget again. The timer
interrupt checks the same way (:func:`timer_interrupt`). A context that runs out
(:func:`charge_budget`) ends its thread's time slice: the thread goes to the back of
its priority if its next refill is ready, to the release queue if not, or, if it is
sporadic and has a timeout handler, to that handler as a timeout fault.
"""

from __future__ import annotations

from kernel.core.fault_delivery import deliver_timeout_fault, has_timeout_handler
from kernel.core.mcs_sched import clock_of, is_schedulable, postpone, update_timestamp
from kernel.core.refills import budget_check, capacity, is_ready, is_sufficient
from kernel.core.threads import reset_next_pc, restart_pc
from kernel.model.faults import TimeoutFault
from kernel.model.mcs_time import max_release_time, min_budget_ticks
from kernel.model.sched_context import Refill
from kernel.model.state import KernelState
from kernel.model.tcb import TCB, ThreadState

__all__ = ["after_reply", "charge_budget", "entry_budget_ok", "mcs_yield", "timer_interrupt"]


def _check_budget(kernel: KernelState) -> bool:
    """seL4's checkBudget: True if the current context can go on; otherwise its time
    is charged (:func:`charge_budget`) and False."""
    clock = clock_of(kernel)
    sc = clock.sc
    if sc is None or not sc.refills:
        return True
    if capacity(sc, clock.consumed) >= min_budget_ticks(kernel.abi):
        return True
    charge_budget(kernel, clock.consumed, can_timeout_fault=True)
    return False


def entry_budget_ok(kernel: KernelState) -> bool:
    """The start of an MCS syscall or fault entry (seL4's MCS_DO_IF_BUDGET): read the
    clock and check the budget. False: the entry must do nothing more; a thread still
    runnable then restarts the instruction that trapped (seL4's checkBudgetRestart)."""
    update_timestamp(kernel)
    if _check_budget(kernel):
        return True
    current = kernel.current
    if current is not None and current.state.runnable:
        reset_next_pc(kernel, current)
        kernel.set_thread_state(current, ThreadState.RESTART)
    return False


def timer_interrupt(kernel: KernelState, current: TCB) -> None:
    """The timer fired (seL4's handleInterruptEntry for the kernel timer): charge the
    current context if it is out of budget; the timer is set again at exit."""
    update_timestamp(kernel)
    _check_budget(kernel)
    clock_of(kernel).reprogram = True


def charge_budget(kernel: KernelState, consumed: int, can_timeout_fault: bool) -> None:
    """seL4's chargeBudget: the current context's time slice ends, ``consumed`` ticks
    charged (a round-robin context gets its whole budget back at once), and its thread
    gives way (:func:`_end_timeslice`)."""
    clock = clock_of(kernel)
    sc = clock.sc
    if sc is not None and sc.refills:
        if sc.period == 0:
            head, tail = sc.refills
            sc.refills[:] = [Refill(head.time, head.amount + tail.amount), Refill(tail.time, 0)]
        else:
            budget_check(sc, consumed, min_budget_ticks(kernel.abi), max_release_time(kernel.abi))
        sc.consumed += consumed
    clock.consumed = 0
    current = kernel.current
    if current is not None and is_schedulable(current) and current.sched_context is sc:
        _end_timeslice(kernel, current, can_timeout_fault)
        kernel.reschedule_required()
        clock.reprogram = True


def _end_timeslice(kernel: KernelState, current: TCB, can_timeout_fault: bool) -> None:
    """seL4's endTimeslice for the current thread, whose context just ran out."""
    clock = clock_of(kernel)
    sc = current.sched_context
    assert sc is not None
    if can_timeout_fault and sc.period != 0 and has_timeout_handler(current):
        registers_pc = kernel.registers_of(kernel.save_current())[0]
        deliver_timeout_fault(kernel, current,
                              TimeoutFault(restart_pc(current, registers_pc), sc.badge))
    elif is_ready(sc, clock.now) and is_sufficient(sc, 0, min_budget_ticks(kernel.abi)):
        kernel.scheduler.enqueue(current)
    else:
        postpone(kernel, sc)


def mcs_yield(kernel: KernelState) -> None:
    """seL4_Yield (MCS): give up the rest of the head refill, as if it had been used up,
    but count only the time really used as consumed."""
    clock = clock_of(kernel)
    sc = clock.sc
    if sc is None or not sc.refills:
        return
    consumed = sc.consumed + clock.consumed
    charge_budget(kernel, sc.refills[0].amount, can_timeout_fault=False)
    sc.consumed = consumed


def after_reply(kernel: KernelState, caller: TCB, was_timeout: bool) -> None:
    """The end of seL4's doReplyTransfer (MCS): a caller answered and runnable runs if
    its context has a usable refill; otherwise it raises a timeout fault (if it has a
    handler and was not answering one) or waits in the release queue."""
    sc = caller.sched_context
    assert sc is not None
    clock = clock_of(kernel)
    if is_ready(sc, clock.now) and is_sufficient(sc, 0, min_budget_ticks(kernel.abi)):
        kernel.make_runnable(caller)
    elif has_timeout_handler(caller) and not was_timeout:
        ip = restart_pc(caller, kernel.registers_of(caller)[0])
        deliver_timeout_fault(kernel, caller, TimeoutFault(ip, sc.badge))
    else:
        postpone(kernel, sc)

