"""The non-MCS scheduler's time accounting: round robin on a per-thread time slice.

Every timer tick charges the running thread one tick of its slice; a thread whose slice
runs out gets a fresh one and goes to the back of its priority's ready queue, and the
scheduler chooses again at kernel exit (seL4's timerTick for non-MCS kernels). Time is
instructions retired (DESIGN.md decision 3), so the same run always switches at the same
instruction. MCS kernels charge a scheduling context's budget instead; that is a module
of its own, chosen by the configuration (:mod:`kernel.entry.variant`).
"""

from __future__ import annotations

from kernel.model.state import KernelState
from kernel.model.tcb import TCB

__all__ = ["charge_time_slice"]


def charge_time_slice(kernel: KernelState, current: TCB) -> None:
    """One tick of ``current``'s time slice; a runnable thread whose slice ran out is
    requeued at the back of its priority with a full slice. Then one tick of the
    current domain's time (:meth:`KernelState.charge_domain_tick`)."""
    if current.state.runnable:
        current.time_slice -= 1
        if current.time_slice <= 0:
            current.time_slice = kernel.config.time_slice_ticks
            kernel.scheduler.enqueue(current)
            kernel.reschedule_required()
    kernel.charge_domain_tick()
