"""Error matrix of seL4_Untyped_Retype (abi/objects.md, "Untyped Retype rules").

Each case has a stable ID (RETYPEnnnn) and asserts the reply's error code and payload
words, and that the failed call changed nothing: every slot of the root CNode (caps,
CDT links and bits, so the untyped's free index too), the kernel's objects and RAM.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from kernel.abi.arch import Arch
from kernel.abi.constants import Error, InitialCap
from kernel.model.caps import UntypedCap
from tests.abi.support import CNODE, System

TCB_CAP = int(InitialCap.seL4_CapInitThreadTCB)


@dataclass(frozen=True)
class Case:
    id: str
    title: str
    error: Error
    words: Callable[[System], list[int]] = lambda s: []
    args: Callable[[System], dict[str, Any]] = lambda s: {}
    setup: Callable[[System], None] = lambda s: None
    call: dict[str, Any] = field(default_factory=dict)
    """Overrides of the raw call: ``label`` name, ``length``, ``extra``."""


def _ut(s: System) -> int:
    return s.ram_untyped(14)


def _max(s: System) -> int:
    return s.kernel.abi.max_untyped_bits


def _ep(s: System) -> int:
    return s.otype("seL4_EndpointObject")


def _fill_slot(s: System, index: int) -> None:
    assert s.retype(s.untyped(16), _ep(s), 0, index, 1).label == 0


def _with_child(s: System) -> None:
    assert s.retype(_ut(s), _ep(s), 0, 3000, 1).label == 0


DEST = 2000

CASES = [
    Case("RETYPE0001", "wrong label", Error.seL4_IllegalOperation,
         call={"label": "CNodeRevoke"}),
    Case("RETYPE0002", "length 5", Error.seL4_TruncatedMessage, call={"length": 5}),
    Case("RETYPE0003", "no extra cap", Error.seL4_TruncatedMessage, call={"extra": []}),
    Case("RETYPE0004", "type = ObjectTypeCount", Error.seL4_InvalidArgument, lambda s: [0],
         lambda s: {"otype": len(s.types) - 1}),
    Case("RETYPE0005", "type = 2^64-1", Error.seL4_InvalidArgument, lambda s: [0],
         lambda s: {"otype": (1 << 64) - 1}),
    Case("RETYPE0006", "untyped size_bits = MaxUntypedBits + 1", Error.seL4_RangeError,
         lambda s: [0, _max(s)],
         lambda s: {"otype": s.otype("seL4_UntypedObject"), "size_bits": _max(s) + 1}),
    Case("RETYPE0007", "size_bits 64 for an endpoint", Error.seL4_RangeError,
         lambda s: [0, _max(s)], lambda s: {"size_bits": 64}),
    Case("RETYPE0008", "CapTable larger than MaxUntypedBits", Error.seL4_RangeError,
         lambda s: [0, _max(s)],
         lambda s: {"otype": s.otype("seL4_CapTableObject"), "size_bits": _max(s) - 4}),
    Case("RETYPE0009", "CapTable of one slot", Error.seL4_InvalidArgument, lambda s: [1],
         lambda s: {"otype": s.otype("seL4_CapTableObject"), "size_bits": 0}),
    Case("RETYPE0010", "untyped of 2^3 bytes", Error.seL4_InvalidArgument, lambda s: [1],
         lambda s: {"otype": s.otype("seL4_UntypedObject"), "size_bits": 3}),
    Case("RETYPE0011", "depth 0 and the root is not a CNode", Error.seL4_FailedLookup,
         lambda s: [0, 2, 0], lambda s: {"root": TCB_CAP}),
    Case("RETYPE0012", "depth 64 reaches a TCB cap", Error.seL4_FailedLookup,
         lambda s: [0, 2, 64], lambda s: {"node_index": TCB_CAP, "node_depth": 64}),
    Case("RETYPE0013", "depth 65", Error.seL4_RangeError, lambda s: [1, 64],
         lambda s: {"node_index": CNODE, "node_depth": 65}),
    Case("RETYPE0014", "depth 32 against a 52-bit guard", Error.seL4_FailedLookup,
         lambda s: [0, 4, 32, 0, 52], lambda s: {"node_index": CNODE, "node_depth": 32}),
    Case("RETYPE0015", "depth 64 from a root that is not a CNode", Error.seL4_FailedLookup,
         lambda s: [0, 1], lambda s: {"root": TCB_CAP, "node_index": CNODE, "node_depth": 64}),
    Case("RETYPE0016", "offset = number of slots", Error.seL4_RangeError,
         lambda s: [0, 4095], lambda s: {"offset": 4096}),
    Case("RETYPE0017", "zero objects", Error.seL4_RangeError, lambda s: [1, 256],
         lambda s: {"count": 0}),
    Case("RETYPE0018", "257 objects", Error.seL4_RangeError, lambda s: [1, 256],
         lambda s: {"count": 257}),
    Case("RETYPE0019", "window past the CNode's end", Error.seL4_RangeError,
         lambda s: [1, 6], lambda s: {"offset": 4090, "count": 7}),
    Case("RETYPE0020", "a destination slot is occupied", Error.seL4_DeleteFirst,
         args=lambda s: {"count": 4}, setup=lambda s: _fill_slot(s, DEST + 3)),
    Case("RETYPE0021", "more TCBs than fit", Error.seL4_NotEnoughMemory,
         lambda s: [1 << 14],
         lambda s: {"otype": s.otype("seL4_TCBObject"),
                    "count": (1 << 14 >> s.kernel.abi.tcb_bits) + 1}),
    Case("RETYPE0022", "not enough left after a child", Error.seL4_NotEnoughMemory,
         lambda s: [(1 << 14) - 16], lambda s: {"count": 256, "size_bits": 0,
                                                "otype": s.otype("seL4_TCBObject")},
         setup=_with_child),
    Case("RETYPE0023", "object larger than the untyped", Error.seL4_NotEnoughMemory,
         lambda s: [1 << 14],
         lambda s: {"otype": s.otype("seL4_UntypedObject"), "size_bits": 15}),
    Case("RETYPE0024", "device untyped into a TCB", Error.seL4_InvalidArgument,
         lambda s: [1], lambda s: {"untyped": _device(s), "otype": s.otype("seL4_TCBObject")}),
    Case("RETYPE0025", "device untyped into a CNode", Error.seL4_InvalidArgument,
         lambda s: [1], lambda s: {"untyped": _device(s),
                                   "otype": s.otype("seL4_CapTableObject"), "size_bits": 2}),
    Case("RETYPE0026", "order: bad type before bad destination", Error.seL4_InvalidArgument,
         lambda s: [0], lambda s: {"otype": 99, "root": TCB_CAP}),
    Case("RETYPE0027", "order: occupied slot before lack of memory", Error.seL4_DeleteFirst,
         args=lambda s: {"otype": s.otype("seL4_UntypedObject"), "size_bits": 20},
         setup=lambda s: _fill_slot(s, DEST)),
    Case("RETYPE0028", "order: lack of memory before device check",
         Error.seL4_NotEnoughMemory, lambda s: [1 << _device_bits(s)],
         lambda s: {"untyped": _device(s), "otype": s.otype("seL4_CapTableObject"),
                    "size_bits": _device_bits(s)}),
    Case("RETYPE0029", "order: CNode size checked before range", Error.seL4_InvalidArgument,
         lambda s: [1], lambda s: {"otype": s.otype("seL4_CapTableObject"), "size_bits": 0,
                                   "count": 0}),
]


def _device(s: System) -> int:
    """The smallest boot device untyped (its size does not matter for these checks)."""
    start, end = s.report.bootinfo.untyped
    devices = [i for i in range(start, end)
               if isinstance(s.cap(i), UntypedCap) and s.cap(i).is_device]
    return min(devices, key=lambda i: s.cap(i).size_bits)


def _device_bits(s: System) -> int:
    cap = s.cap(_device(s))
    assert isinstance(cap, UntypedCap)
    return cap.size_bits


def snapshot(s: System) -> tuple[object, ...]:
    """Root CNode slots, kernel object addresses, RAM outside the IPC buffer's page."""
    slots = tuple((x.cap, x.mdb_prev, x.mdb_next, x.revocable, x.first_badged)
                  for x in s.slots.every())
    ram = bytearray(s.machine.ram)
    page = (s.ipc_paddr() & ~0xFFF) - s.machine.ram_base
    ram[page : page + 0x1000] = bytes(0x1000)
    return slots, tuple(sorted(s.kernel.objects)), bytes(ram), s.kernel.stop


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_retype_error(case: Case, arch: Arch) -> None:
    s = System(arch)
    case.setup(s)
    kwargs = {"untyped": _ut(s), "otype": _ep(s), "size_bits": 0, "offset": DEST,
              "count": 1, "root": CNODE, "node_index": 0, "node_depth": 0}
    kwargs.update(case.args(s))
    label = s.label(case.call.get("label", "UntypedRetype"))
    args = [kwargs["otype"], kwargs["size_bits"], kwargs["node_index"],
            kwargs["node_depth"], kwargs["offset"], kwargs["count"]]
    before = snapshot(s)
    reply = s.call(kwargs["untyped"], label, args,
                   extra=case.call.get("extra", [kwargs["root"]]),
                   length=case.call.get("length"))
    assert (reply.label, reply.words) == (case.error, case.words(s)), case.title
    assert snapshot(s) == before, f"{case.id}: a failed retype changed kernel state"


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
