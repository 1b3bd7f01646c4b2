"""Invocations of the domain cap (seL4 16.0.0's domain.c): put a thread in a domain,
and edit the domain schedule at run time.

Decode order and errors, per method (any other label: IllegalOperation):

- **DomainSetSet** (domain word MR0, thread cap extra 0): no MR0 -> TruncatedMessage;
  the domain, as a whole word, ``>= num_domains`` -> InvalidArgument 0; no extra cap ->
  TruncatedMessage; not a thread cap -> InvalidArgument 1.
- **DomainScheduleConfigure** (index MR0, domain MR1, duration MR2): fewer than three
  words -> TruncatedMessage; ``index >= length - 1`` (the last entry stays an end marker)
  -> RangeError(0, length - 2); ``domain >= num_domains`` -> RangeError(0, num_domains
  - 1); duration above 2^56 - 1 -> InvalidArgument 2; duration 0 with a domain other than
  0 -> InvalidArgument 1 (only 0/0 is an end marker); duration 0 at the start index ->
  InvalidArgument 2.
- **DomainScheduleSetStart** (index MR0): no MR0 -> TruncatedMessage; ``index >= length``
  -> RangeError(0, length - 1); an end marker there -> InvalidArgument 0. Performing it
  ends the current entry at once: the next choice starts the schedule at ``index``.

``length`` is the configuration's domain schedule length (2 with one domain, so the only
configurable entry is 0).
"""

from __future__ import annotations

from functools import cache

from kernel.abi.arch import Arch
from kernel.abi.labels import label_table
from kernel.cspace.arguments import InvocationArgs
from kernel.model.caps import ThreadCap
from kernel.model.domains import MAX_DURATION, schedule_entry
from kernel.model.errors import IllegalOperation, InvalidArgument, RangeError, TruncatedMessage
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.model.tcb import TCB
from kernel.records import dataclass

__all__ = [
    "DomainScheduleConfigure",
    "DomainScheduleSetStart",
    "DomainSetSet",
    "decode_domain_invocation",
    "perform_schedule_configure",
    "perform_schedule_set_start",
    "perform_set_domain",
]


@dataclass(frozen=True, slots=True)
class DomainSetSet:
    """Move ``target`` into ``domain``."""

    target: TCB
    domain: int


@dataclass(frozen=True, slots=True)
class DomainScheduleConfigure:
    """Set schedule entry ``index`` to ``domain`` for ``duration`` ticks (0/0: end marker)."""

    index: int
    domain: int
    duration: int


@dataclass(frozen=True, slots=True)
class DomainScheduleSetStart:
    """Restart the schedule at entry ``index`` now."""

    index: int


@cache
def _labels(arch: Arch, mcs: bool) -> tuple[int, int, int]:
    table = label_table(arch, mcs)
    return (table["DomainSetSet"], table["DomainScheduleConfigure"],
            table["DomainScheduleSetStart"])


def decode_domain_invocation(kernel: KernelState, slot: Slot, args: InvocationArgs) -> object:
    """Decode an invocation of the domain cap (order in the module docstring)."""
    set_set, configure, set_start = _labels(kernel.arch, kernel.config.mcs)
    label, words = args.label, args.words
    num_domains = kernel.config.num_domains
    length = len(kernel.domains.entries)
    if label == set_set:
        if not words:
            raise TruncatedMessage()
        if words[0] >= num_domains:
            raise InvalidArgument(0)
        if not args.extra:
            raise TruncatedMessage()
        cap = args.extra[0].cap
        if not isinstance(cap, ThreadCap):
            raise InvalidArgument(1)
        return DomainSetSet(kernel.object_at(cap.paddr, TCB), words[0])
    if label == configure:
        if len(words) < 3:
            raise TruncatedMessage()
        index, domain, duration = words[0], words[1], words[2]
        if index >= length - 1:
            raise RangeError(0, length - 2)
        if domain >= num_domains:
            raise RangeError(0, num_domains - 1)
        if duration > MAX_DURATION:
            raise InvalidArgument(2)
        if duration == 0 and domain != 0:
            raise InvalidArgument(1)
        if index == kernel.domains.start and duration == 0:
            raise InvalidArgument(2)
        return DomainScheduleConfigure(index, domain, duration)
    if label == set_start:
        if not words:
            raise TruncatedMessage()
        index = words[0]
        if index >= length:
            raise RangeError(0, length - 1)
        if kernel.domains.is_end_marker(index):
            raise InvalidArgument(0)
        return DomainScheduleSetStart(index)
    raise IllegalOperation()


def perform_set_domain(kernel: KernelState, inv: DomainSetSet) -> list[int]:
    kernel.set_domain(inv.target, inv.domain)
    return []


def perform_schedule_configure(kernel: KernelState, inv: DomainScheduleConfigure) -> list[int]:
    kernel.domains.entries[inv.index] = schedule_entry(inv.domain, inv.duration)
    return []


def perform_schedule_set_start(kernel: KernelState, inv: DomainScheduleSetStart) -> list[int]:
    """The current entry ends now; the next choice moves to entry ``index`` (nextDomain
    steps from the entry before the last, an end marker, back to the new start)."""
    domains = kernel.domains
    domains.start = inv.index
    domains.time = 0
    domains.index = len(domains.entries) - 2
    kernel.reschedule_required()
    return []
