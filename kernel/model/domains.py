"""Scheduling domains: seL4's domain schedule (seL4 16.0.0, configurable at run time).

The schedule is a list of ``domain_schedule_length`` entries, each a word holding a
domain (top 8 bits) and a duration in timer ticks (low 56 bits); an all-zero entry is an
end marker, and the last entry always is one. The kernel runs the current entry's
domain for its duration, then moves to the next entry, or back to ``start`` at an end
marker. Only threads of the current domain run. With one domain (seL4's default, and
sel4test's) the schedule is never consulted: the single domain runs forever.

Plain data; the scheduler operations that use it are in :mod:`kernel.model.state`.
"""

from __future__ import annotations

from typing import Final, final

from mypy_extensions import mypyc_attr

from kernel.pickling import Persistent

__all__ = [
    "DOMAIN_SHIFT",
    "MAX_DURATION",
    "DomainSchedule",
    "schedule_entry",
]

DOMAIN_BITS: Final = 8
DOMAIN_SHIFT: Final = 64 - DOMAIN_BITS
MAX_DURATION: Final = (1 << DOMAIN_SHIFT) - 1
"""The largest duration an entry holds (2^56 - 1 ticks): also the boot domain's time."""


def schedule_entry(domain: int, duration: int) -> int:
    """The schedule word for ``domain`` running ``duration`` ticks."""
    return domain << DOMAIN_SHIFT | duration


@final
@mypyc_attr(allow_interpreted_subclasses=True)
class DomainSchedule(Persistent):
    """seL4's ksDomSchedule, ksDomScheduleIdx, ksDomScheduleStart, ksCurDomain and
    ksDomainTime.

    Invariant: ``entries[-1] == 0`` (an end marker), ``entries[start]`` is not one,
    and ``current`` is the domain of ``entries[index]`` once the schedule moved.
    """

    __slots__ = ("entries", "index", "start", "current", "time")

    def __init__(self, length: int) -> None:
        self.entries = [0] * length
        self.entries[0] = schedule_entry(0, MAX_DURATION)
        self.index = 0
        self.start = 0
        self.current = 0
        """The domain whose threads run now (ksCurDomain)."""
        self.time = MAX_DURATION
        """Ticks left in the current entry (ksDomainTime)."""

    def is_end_marker(self, index: int) -> bool:
        return self.entries[index] == 0

    def next_domain(self) -> None:
        """seL4's nextDomain: on to the next entry, or back to ``start`` at an end marker."""
        self.index += 1
        if self.is_end_marker(self.index):
            self.index = self.start
        entry = self.entries[self.index]
        self.current = entry >> DOMAIN_SHIFT
        self.time = entry & MAX_DURATION
