"""A decoded invocation as one line of text: what the kernel itself decided to do.

The invocation path keeps the record its decoder returned (``KernelState.last_invocation``:
CNodeInsert, RetypeInvocation, PageMapInvocation, ...); the trace and the debugger show it
with :func:`describe_invocation` instead of decoding the message again. Slots are named as
``capsule cspace`` names them (:func:`kernel.views.render.slot_id`), caps as it shows them,
threads by name, other kernel objects by type and address.

Long sequences (the destination slots of a retype into thousands of slots) show their
first few members and a count, so a line stays a line.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from enum import Enum
from typing import Final

from kernel.kernel import Kernel
from kernel.model.caps import Cap, Rights
from kernel.model.reply_object import ReplyObject
from kernel.model.sched_context import SchedContext
from kernel.model.slot import Slot
from kernel.model.tcb import TCB
from kernel.views.render import cap_view, format_cap, slot_id

__all__ = ["describe_invocation"]

_SHOWN: Final = 4
"""Members of a sequence shown before the rest is counted."""


def describe_invocation(kernel: Kernel, record: object) -> str:
    """``RecordType(field=value, ...)`` for a decoded invocation record."""
    if not is_dataclass(record) or isinstance(record, type):
        return type(record).__name__
    parts = [f"{f.name}={_value(kernel, getattr(record, f.name), nested=True)}"
             for f in fields(record)]
    return f"{type(record).__name__}({', '.join(parts)})"


def _value(kernel: Kernel, value: object, nested: bool) -> str:
    """One field's value; ``nested`` allows one level of dataclass inside a record."""
    if isinstance(value, Slot):
        return slot_id(kernel, value)
    if isinstance(value, Rights):
        return str(value)
    if isinstance(value, Cap):
        return "{" + format_cap(cap_view(value, kernel)) + "}"
    if isinstance(value, TCB):
        return f"tcb {value.name!r}"
    if isinstance(value, SchedContext | ReplyObject):
        # MCS objects are dataclasses linked to threads and to each other: by address,
        # as the cspace view's sections list them (kernel.views.mcs).
        kind = "sched_context" if isinstance(value, SchedContext) else "reply"
        return f"{kind}@{value.paddr:#x}"
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:#x}"
    if isinstance(value, (tuple, list)):
        shown = [_value(kernel, item, nested) for item in value[:_SHOWN]]
        if len(value) > _SHOWN:
            shown.append(f"... {len(value)} in all")
        return "[" + ", ".join(shown) + "]"
    paddr = getattr(value, "paddr", None)
    if isinstance(paddr, int) and not is_dataclass(value):
        # A kernel object held by reference (an endpoint, notification, ASID pool).
        return f"{type(value).__name__.lower()}@{paddr:#x}"
    if is_dataclass(value) and not isinstance(value, type):
        name = getattr(value, "name", None)
        if isinstance(name, str):
            return name  # a table entry such as a retype object type
        if nested:
            inner = ", ".join(f"{f.name}={_value(kernel, getattr(value, f.name), False)}"
                              for f in fields(value))
            return f"{type(value).__name__}({inner})"
    return type(value).__name__
