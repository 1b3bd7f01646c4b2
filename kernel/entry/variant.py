"""Where seL4's two configurations differ, chosen once per kernel from its configuration.

seL4 is built either without or with MCS (mixed-criticality scheduling), and the two
differ in a few places that reach through the whole kernel: the system-call numbers and
their handlers, which also decide how a Call is answered (non-MCS: a reply cap in the
receiver's caller slot; MCS: a reply object the receiver names), and how a timer tick
charges the running thread (non-MCS: a round-robin time slice; MCS: the budget of its
scheduling context). A :class:`Variant` bundles those choices; :func:`variant_for` picks
one from the :class:`~kernel.config.KernelConfig` when the kernel is made, and the entry
points use it instead of testing the configuration.

The MCS variant is made of its own modules: its syscall table
(:mod:`kernel.entry.mcs_syscalls`), its IPC with reply objects
(:mod:`kernel.core.mcs_ipc`), and its budgets (:mod:`kernel.core.budget`: a timer
interrupt charges the current scheduling context; every other system call checks the
budget first).
"""

from __future__ import annotations

from collections.abc import Callable

from kernel.config import KernelConfig
from kernel.core.budget import timer_interrupt
from kernel.core.round_robin import charge_time_slice
from kernel.entry.mcs_syscalls import is_budgeted, mcs_syscall_table
from kernel.entry.syscalls import SyscallTable
from kernel.model.state import KernelState
from kernel.model.tcb import TCB
from kernel.records import dataclass

__all__ = ["Variant", "variant_for"]


@dataclass(frozen=True)
class Variant:
    """One configuration's choices (see the module docstring)."""

    name: str
    syscalls: SyscallTable
    """System-call number -> handler; the handlers decide how IPC is answered."""
    charge_tick: Callable[[KernelState, TCB], None]
    """What one timer interrupt costs the running thread (and whether it must give way)."""
    budgeted: Callable[[int], bool]
    """MCS: whether the system call numbered so (a7 / x7) checks the budget first
    (every call but the debug ones); never without MCS."""


def variant_for(config: KernelConfig) -> Variant:
    """The variant of ``config``: MCS or non-MCS."""
    if config.mcs:
        return Variant("MCS", mcs_syscall_table(config.fastpath), timer_interrupt, is_budgeted)
    return Variant("non-MCS", SyscallTable.for_config(config), charge_time_slice,
                   _never)


def _never(_number: int) -> bool:
    return False
