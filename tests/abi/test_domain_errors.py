"""Error matrix of the domain cap's invocations (seL4 16.0.0): every error with its
payload, and that a failed invocation changes nothing.

Expected values come from seL4's decode rules as kernel/objects/domain.py states them:
the schedule holds 2 entries with one domain (only entry 0 is configurable) and 100 with
several; an entry is a domain (top 8 bits) and a duration (56 bits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from kernel.abi.arch import Arch
from kernel.abi.constants import Error, InitialCap
from tests.abi.support import CNODE, System

DOMAIN = int(InitialCap.seL4_CapDomain)
TCB = int(InitialCap.seL4_CapInitThreadTCB)
WORD = (1 << 64) - 1
MAX_DURATION = (1 << 56) - 1

TM, IA, RANGE, IL = (Error.seL4_TruncatedMessage, Error.seL4_InvalidArgument,
                     Error.seL4_RangeError, Error.seL4_IllegalOperation)


@dataclass(frozen=True)
class Case:
    id: str
    title: str
    label: str | int
    args: tuple[int, ...]
    extra: tuple[int, ...]
    error: Error
    words: tuple[int, ...] = ()
    domains: int = 1
    prepare: Callable[[System], None] | None = None


def _start_at_3(s: System) -> None:
    """Several domains: entry 3 (domain 0, the root task's) made the start."""
    assert s.call(DOMAIN, s.label("DomainScheduleConfigure"), [3, 0, 10]).label == 0
    assert s.call(DOMAIN, s.label("DomainScheduleSetStart"), [3]).label == 0


CASES = [
    Case("DOM0001", "Set: no message", "DomainSetSet", (), (TCB,), TM),
    Case("DOM0002", "Set: domain 1 of 1", "DomainSetSet", (1,), (TCB,), IA, (0,)),
    Case("DOM0003", "Set: domain read as a whole word", "DomainSetSet", (1 << 8,), (TCB,),
         IA, (0,), domains=4),
    Case("DOM0004", "Set: domain checked before the cap", "DomainSetSet", (WORD,), (), IA, (0,)),
    Case("DOM0005", "Set: no thread cap", "DomainSetSet", (0,), (), TM),
    Case("DOM0006", "Set: a CNode cap", "DomainSetSet", (0,), (CNODE,), IA, (1,)),
    Case("DOM0007", "Configure: two words", "DomainScheduleConfigure", (0, 0), (), TM),
    Case("DOM0008", "Configure: the end marker's index", "DomainScheduleConfigure",
         (1, 0, 5), (), RANGE, (0, 0)),
    Case("DOM0009", "Configure: last of 100", "DomainScheduleConfigure", (99, 0, 5), (),
         RANGE, (0, 98), domains=3),
    Case("DOM0010", "Configure: domain 1 of 1", "DomainScheduleConfigure", (0, 1, 5), (),
         RANGE, (0, 0)),
    Case("DOM0011", "Configure: domain 3 of 3", "DomainScheduleConfigure", (5, 3, 5), (),
         RANGE, (0, 2), domains=3),
    Case("DOM0012", "Configure: duration over 56 bits", "DomainScheduleConfigure",
         (0, 0, MAX_DURATION + 1), (), IA, (2,)),
    Case("DOM0013", "Configure: zero duration, non-zero domain", "DomainScheduleConfigure",
         (5, 2, 0), (), IA, (1,), domains=3),
    Case("DOM0014", "Configure: end marker at the start entry", "DomainScheduleConfigure",
         (0, 0, 0), (), IA, (2,)),
    Case("DOM0015", "Configure: end marker at the (moved) start", "DomainScheduleConfigure",
         (3, 0, 0), (), IA, (2,), domains=2, prepare=_start_at_3),
    Case("DOM0016", "SetStart: no message", "DomainScheduleSetStart", (), (), TM),
    Case("DOM0017", "SetStart: past the schedule", "DomainScheduleSetStart", (2,), (), RANGE,
         (0, 1)),
    Case("DOM0018", "SetStart: an end marker", "DomainScheduleSetStart", (1,), (), IA, (0,)),
    Case("DOM0019", "SetStart: an unconfigured entry", "DomainScheduleSetStart", (7,), (), IA,
         (0,), domains=2),
    Case("DOM0020", "a TCB label on the domain cap", "TCBSuspend", (), (), IL),
    Case("DOM0021", "label 0", 0, (), (), IL),
]


def _state(s: System) -> tuple[object, ...]:
    d = s.kernel.domains
    threads = tuple((t.paddr, t.domain, t.state) for t in s.kernel.threads.values())
    return (tuple(d.entries), d.index, d.start, d.current, d.time, threads,
            s.kernel.scheduler.queues(), s.kernel.stop)


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_domain_error(case: Case, arch: Arch) -> None:
    s = System(arch, num_domains=case.domains)
    if case.prepare is not None:
        case.prepare(s)
    before = _state(s)
    label = s.label(case.label) if isinstance(case.label, str) else case.label
    reply = s.call(DOMAIN, label, list(case.args), extra=list(case.extra))
    assert (reply.label, tuple(reply.words)) == (case.error, case.words), case.title
    assert _state(s) == before, f"{case.id}: a failed invocation changed kernel state"


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_the_successful_forms(arch: Arch) -> None:
    s = System(arch, num_domains=3)
    root = s.kernel.current
    assert root is not None
    configure = s.label("DomainScheduleConfigure")
    assert s.call(DOMAIN, configure, [0, 0, 7]).label == 0
    assert s.call(DOMAIN, configure, [1, 2, 5]).label == 0
    assert s.kernel.domains.entries[:3] == [7, 2 << 56 | 5, 0]
    assert s.call(DOMAIN, s.label("DomainScheduleSetStart"), [0]).label == 0
    assert (s.kernel.domains.current, s.kernel.domains.time) == (0, 7)
    ticks = s.kernel.ticks
    # The caller moves itself to domain 2: domain 0 has nobody left, so its remaining
    # 7 ticks pass idle at once and domain 2's turn runs the caller, which gets its reply.
    assert s.call(DOMAIN, s.label("DomainSetSet"), [2], extra=[TCB]).label == 0
    assert root.domain == 2 and s.kernel.current is root
    assert (s.kernel.domains.current, s.kernel.domains.time, s.kernel.ticks) == (2, 5, ticks + 7)
