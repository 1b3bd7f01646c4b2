"""Components through the Python API: capture one thread's capability space, restore it
(:meth:`capsule.Machine.capture_component`, :meth:`capsule.Machine.restore_component`).

Caps are named the way a person using the API names them: a :data:`CapRef` is a thread
and a CPtr in that thread's CSpace (resolved as the kernel resolves a syscall's CPtr).
The work is :mod:`kernel.component`'s; this module turns the references into slots and
its errors into :class:`~capsule.errors.ComponentError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kernel.component import Component, ComponentError, Restored, capture, restore
from kernel.cspace.lookup import lookup_slot
from kernel.kernel import Kernel
from kernel.model.slot import Slot
from kernel.model.tcb import TCB

from .errors import CapLookupError
from .errors import ComponentError as ApiComponentError

__all__ = ["CapRef", "capture_component", "restore_component"]

CapRef = tuple[object, int]
"""A cap as ``(thread, cptr)``: the thread (a name, a ThreadInfo, or None for the thread
that runs next) and a CPtr in its CSpace."""

TcbOf = Callable[[Any], TCB]
"""How the machine finds a thread's TCB from a ThreadRef (``Machine._tcb``)."""


def _slot(kernel: Kernel, tcb_of: TcbOf, ref: CapRef, what: str) -> Slot:
    thread, cptr = ref
    tcb = tcb_of(thread)
    found = lookup_slot(kernel, tcb, cptr)
    if not isinstance(found, Slot) or found.is_empty:
        failure = "empty slot" if isinstance(found, Slot) else type(found).__name__
        raise CapLookupError(f"{what}: cptr {cptr:#x} names no cap in thread {tcb.name!r}'s "
                             f"CSpace ({failure})", failure)
    return found


def _slots(kernel: Kernel, tcb_of: TcbOf, refs: Mapping[str, CapRef] | None,
           what: str) -> dict[str, Slot]:
    return {name: _slot(kernel, tcb_of, ref, f"{what} {name!r}")
            for name, ref in (refs or {}).items()}


def capture_component(kernel: Kernel, tcb_of: TcbOf, thread: object,
                      external: Mapping[str, CapRef] | None) -> Component:
    """See :meth:`capsule.Machine.capture_component`."""
    slots = _slots(kernel, tcb_of, external, "external")
    try:
        return capture(kernel, tcb_of(thread), slots)
    except ComponentError as error:
        raise ApiComponentError(str(error)) from None


def restore_component(kernel: Kernel, tcb_of: TcbOf, component: Component, untyped: CapRef,
                      identities: Mapping[str, CapRef] | None,
                      asid_pool: CapRef | None) -> Restored:
    """See :meth:`capsule.Machine.restore_component`."""
    source = _slot(kernel, tcb_of, untyped, "untyped")
    slots = _slots(kernel, tcb_of, identities, "identity")
    pool = None if asid_pool is None else _slot(kernel, tcb_of, asid_pool, "asid_pool")
    try:
        return restore(kernel, component, source, slots, pool)
    except ComponentError as error:
        raise ApiComponentError(str(error)) from None
