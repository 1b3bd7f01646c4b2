"""MCS scheduling contexts and SchedControl: boot's share, and their invocations.

Boot (:func:`boot_sched_context`, :func:`sched_control_caps`): the root task runs on a
scheduling context of seL4_MinSchedContextBits whose cap is in slot 14
(seL4_CapInitThreadSC), a round-robin context with CONFIG_BOOT_THREAD_TIME_SLICE of
budget; one SchedControl cap per core (capsule has one) follows the extra bootinfo
frames and is named by the bootinfo's ``schedcontrol`` region (abi/boot.md).
"""

from __future__ import annotations

from kernel.abi.constants import BOOT_THREAD_TIME_SLICE_MS, MIN_REFILLS, MIN_SCHED_CONTEXT_BITS
from kernel.core.sched_contexts import bind_tcb, current_time, refill_new
from kernel.model.caps import Cap, SchedContextCap, SchedControlCap
from kernel.model.mcs_time import us_to_ticks
from kernel.model.sched_context import SchedContext
from kernel.model.state import KernelState
from kernel.model.tcb import TCB

__all__ = ["boot_sched_context", "sched_control_caps"]

NUM_NODES = 1
"""Processors capsule models: one SchedControl cap each."""


def boot_sched_context(kernel: KernelState, paddr: int, tcb: TCB) -> SchedContextCap:
    """Make the root task's scheduling context at ``paddr`` (2^seL4_MinSchedContextBits
    bytes of zeroed RAM boot reserved), bind it to ``tcb`` and return the cap for slot
    seL4_CapInitThreadSC (seL4's configure_sched_context at boot)."""
    sc = SchedContext(paddr, MIN_SCHED_CONTEXT_BITS)
    kernel.add_object(sc)
    budget = us_to_ticks(kernel.abi, BOOT_THREAD_TIME_SLICE_MS * 1000)
    refill_new(sc, MIN_REFILLS, budget, 0, current_time(kernel))
    bind_tcb(kernel, sc, tcb)
    return SchedContextCap(paddr, MIN_SCHED_CONTEXT_BITS)


def sched_control_caps() -> list[Cap]:
    """The SchedControl caps boot hands the root task, core 0 first."""
    return [SchedControlCap(core) for core in range(NUM_NODES)]
