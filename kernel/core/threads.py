"""Operations on threads that several modules need: their VSpace, their registers as
seL4 shows them, and seL4's suspend and restart.

Register files. While a thread is current and the kernel has not saved it, its live
registers are in the machine; otherwise ``tcb.registers`` holds them. :func:`get_registers`
and :func:`set_registers` work in either case without saving (a kernel reply written
to the machine afterwards must not be overwritten by a stale saved copy).

The restart pc. seL4 keeps two pcs: FaultIP (where a restarted thread resumes, and the
``pc`` word of seL4_UserContext) and NextIP (where it resumes after a completed kernel
entry). capsule keeps one, ``registers[0]``, the pc the thread resumes at, and the flag
``tcb.after_syscall``: set when the last kernel entry was a syscall trap, so FaultIP is
the trap instruction 4 bytes before the pc (:func:`restart_pc`). Fault delivery and
restarts put FaultIP in the pc and clear the flag.
"""

from __future__ import annotations

from typing import Final

from kernel.abi.constants import ASID_POOL_INDEX_BITS, WORD_MASK, TCBFlag
from kernel.core.cancel import cancel_ipc
from kernel.core.mcs_sched import is_schedulable, release_remove, resume, unblock
from kernel.core.sched_contexts import cancel_yield_to
from kernel.model.caps import PageTableCap, VSpaceCap
from kernel.model.state import KernelState
from kernel.model.tcb import TCB, ThreadState

__all__ = [
    "get_registers",
    "insert_by_priority",
    "install_thread",
    "is_stopped",
    "restart",
    "reset_next_pc",
    "restart_pc",
    "sanitise_registers",
    "set_priority",
    "set_registers",
    "suspend",
    "user_context",
    "vspace_root_of",
]

_TRAP_SIZE: Final = 4
"""ecall and svc #0 are 4 bytes on both architectures."""


def vspace_root_of(kernel: KernelState, tcb: TCB) -> tuple[int, int]:
    """(root table paddr, ASID) of ``tcb``'s VSpace; (0, 0) if it has no valid one.

    A thread without a valid VSpace runs with an empty address space: every access
    faults, as on seL4 where such a thread runs in the kernel's global address space.
    Valid means seL4's setVMRoot test: the cap's ASID still resolves (its pool is in
    the ASID table) to this very root.
    """
    cap = tcb.vtable.cap
    cached = tcb.vspace_cache
    # Caps are immutable values: the same object in the slot means the same cap.
    if cached is not None and cached[0] is cap and cached[1] == kernel.asid_epoch:
        return cached[2]
    result = (0, 0)
    if isinstance(cap, (PageTableCap, VSpaceCap)) and cap.mapped_asid:
        asid = cap.mapped_asid
        pool = kernel.asid_table.get(asid >> ASID_POOL_INDEX_BITS)
        if pool is not None and pool.roots.get(asid) == cap.paddr:
            result = (cap.paddr, asid)
    tcb.vspace_cache = (cap, kernel.asid_epoch, result)
    return result


# --- registers ---------------------------------------------------------------------------


def get_registers(kernel: KernelState, tcb: TCB) -> list[int]:
    """A copy of ``tcb``'s register file (seL4_UserContext order, pc = resume pc)."""
    if kernel.registers_live(tcb):
        return kernel.machine.save_context()
    return list(kernel.registers_of(tcb))


def set_registers(kernel: KernelState, tcb: TCB, registers: list[int]) -> None:
    """Replace ``tcb``'s register file, in the machine if it is live there."""
    if kernel.registers_live(tcb):
        kernel.machine.load_context(registers)
    else:
        tcb.registers = list(registers)


def restart_pc(tcb: TCB, pc: int) -> int:
    """seL4's getRestartPC (FaultIP) of ``tcb`` whose resume pc is ``pc``."""
    if tcb.after_syscall and tcb.fault is None and tcb.state is not ThreadState.RESTART:
        return (pc - _TRAP_SIZE) & WORD_MASK
    return pc


def sanitise_registers(kernel: KernelState, registers: list[int]) -> list[int]:
    """seL4's sanitiseRegister over a whole user context: on AArch64 SPSR keeps only
    NZCV and gets PSTATE_USER (a thread cannot leave EL0); RISC-V changes nothing."""
    status = kernel.platform.status_register
    if status is not None:
        registers[status.index] = status.sanitise(registers[status.index])
    return registers


def user_context(kernel: KernelState, tcb: TCB) -> list[int]:
    """``tcb``'s registers as seL4's getRegister sees them: pc is FaultIP and the
    AArch64 SPSR has its EL0 mode bits (the emulator keeps only NZCV)."""
    registers = get_registers(kernel, tcb)
    registers[0] = restart_pc(tcb, registers[0])
    return sanitise_registers(kernel, registers)


def reset_next_pc(kernel: KernelState, tcb: TCB) -> None:
    """seL4's setNextPC(getRestartPC): the thread resumes where a restart would."""
    registers = get_registers(kernel, tcb)
    registers[0] = restart_pc(tcb, registers[0])
    tcb.after_syscall = False
    set_registers(kernel, tcb, registers)


# --- suspend, restart, priority ------------------------------------------------------------


def suspend(kernel: KernelState, tcb: TCB) -> None:
    """seL4's suspend: leave any IPC, become Inactive, leave the ready queues.

    A Running thread's restart pc becomes its resume pc first (updateRestartPC), so a
    later Resume continues after its last syscall; a thread suspended while blocked
    in a syscall keeps the trap as restart pc and Resume runs the syscall again.
    MCS: it also leaves the release queue and gives up a pending YieldTo.
    """
    cancel_ipc(kernel, tcb)
    if tcb.state.runnable:
        # Running: updateRestartPC. Restart: the pc already is the restart pc.
        tcb.after_syscall = False
    kernel.set_thread_state(tcb, ThreadState.INACTIVE)
    if kernel.mcs is not None:
        release_remove(kernel, tcb)
        cancel_yield_to(tcb)


def is_stopped(tcb: TCB) -> bool:
    """seL4's isStopped: Inactive or blocked in any way."""
    return tcb.state not in (ThreadState.RUNNING, ThreadState.RESTART, ThreadState.IDLE)


def restart(kernel: KernelState, tcb: TCB) -> None:
    """seL4's restart (Resume): a stopped thread leaves any IPC and becomes Restart,
    queued at the front of its priority, and may preempt at kernel exit. Runnable
    threads are left alone.

    seL4 also creates the master reply cap here (setupReplyMaster); capsule makes it
    when a Call first needs it (:func:`kernel.core.ipc.setup_caller_cap`).

    MCS: the thread runs only as its context lets it: a sporadic context's ready refill
    is used from now on, a context with nothing usable now waits in the release queue,
    and a thread with no context stays out of the ready queues.
    """
    if not is_stopped(tcb):
        return
    cancel_ipc(kernel, tcb)
    reset_next_pc(kernel, tcb)
    kernel.set_thread_state(tcb, ThreadState.RESTART)
    if kernel.mcs is not None:  # it runs if its context lets it (else it waits for it)
        unblock(kernel, tcb.sched_context)
        resume(kernel, tcb.sched_context)
        if is_schedulable(tcb):
            kernel.make_runnable(tcb)
        return
    kernel.scheduler.append_front(tcb)
    kernel.make_runnable(tcb)


def set_priority(kernel: KernelState, tcb: TCB, priority: int) -> None:
    """seL4's setPriority (non-MCS): requeue at the new priority; a runnable thread
    other than the current one may preempt, the current one makes the scheduler
    choose again at kernel exit (it keeps its place at the front of its new queue).

    MCS: a queued or current thread is queued again at the front of its new priority
    and the scheduler chooses again; a thread waiting on an endpoint or notification
    takes its place in that priority-ordered queue; any other just changes."""
    if kernel.mcs is not None:
        _set_priority_mcs(kernel, tcb, priority)
        return
    kernel.scheduler.dequeue(tcb)
    tcb.priority = priority
    if tcb.state.runnable:
        if tcb is kernel.current:
            kernel.reschedule_required()
        else:
            kernel.make_runnable(tcb)


def _set_priority_mcs(kernel: KernelState, tcb: TCB, priority: int) -> None:
    scheduler = kernel.scheduler
    if tcb.state.runnable:
        if tcb.paddr in scheduler.queued or tcb is kernel.current:
            scheduler.dequeue(tcb)
            tcb.priority = priority
            scheduler.append_front(tcb)
            kernel.reschedule_required()
        else:
            tcb.priority = priority
        return
    tcb.priority = priority
    if tcb.blocking is not None:
        queue = tcb.blocking.endpoint.queue
    elif tcb.waiting_on is not None:
        queue = tcb.waiting_on.queue
    else:
        return
    queue.remove(tcb)
    insert_by_priority(queue, tcb)


def insert_by_priority(queue: list[TCB], tcb: TCB) -> None:
    """MCS endpoint and notification queues are ordered by priority, highest first,
    FIFO within a priority (seL4's tcbEPAppend with CONFIG_KERNEL_MCS)."""
    at = len(queue)
    while at > 0 and queue[at - 1].priority < tcb.priority:
        at -= 1
    queue.insert(at, tcb)


def fpu_usable(kernel: KernelState, tcb: TCB) -> bool:
    """Whether ``tcb`` may run FP instructions: the kernel has the FPU and the thread
    has not set seL4_TCBFlag_fpuDisabled."""
    return kernel.config.fpu and not tcb.flags & TCBFlag.seL4_TCBFlag_fpuDisabled


def install_thread(kernel: KernelState, tcb: TCB) -> None:
    """Make ``tcb`` the current thread on the machine: its registers and FPU setting,
    then its VSpace (in that order: see ``Machine.load_thread``)."""
    kernel.machine.load_thread(tcb.cpu, tcb.register_list, tcb.changes)
    kernel.machine.set_fpu_enabled(fpu_usable(kernel, tcb))
    root, asid = vspace_root_of(kernel, tcb)
    kernel.machine.set_address_space(root, asid)
    kernel.current = tcb
    kernel._current_saved = False
