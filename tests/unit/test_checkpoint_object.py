"""The checkpoint object extension (not seL4) on the fake machine: its declaration keeps
clear of seL4's numbers, decode changes nothing, and the views name it."""

from __future__ import annotations

import pickle

import pytest

from kernel.abi.arch import Arch, ObjectTypeAArch64, ObjectTypeRV64
from kernel.abi.constants import CapTag, InitialCap
from kernel.abi.extensions import (
    CHECKPOINT_METHODS,
    CHECKPOINT_OBJECT_TYPE,
    SLOT_WORDS,
    CheckpointLabel,
    configured_labels,
    configured_methods,
)
from kernel.abi.labels import label_table
from kernel.abi.methods import methods_for
from kernel.cspace.arguments import InvocationArgs
from kernel.model.message import MessageInfo
from kernel.objects.checkpoint import CheckpointNextSlot, decode_checkpoint_invocation
from kernel.objects.retype import Kind, object_types
from kernel.views.trace import Tracer, TraceRecord, format_record
from kernel.views.trace_events import TraceFilter
from tests.abi.cnode_fixtures import snapshot
from tests.abi.test_checkpoint_errors import CKPT, EP, L2, L2_EP, READ, _world

CNODE = int(InitialCap.seL4_CapInitThreadCNode)


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
@pytest.mark.parametrize("mcs", [False, True])
def test_the_numbers_keep_clear_of_every_sel4_configuration(arch: Arch, mcs: bool) -> None:
    sel4 = set(label_table(arch, mcs).values())
    assert not sel4 & {int(m) for m in CheckpointLabel}
    assert set(configured_labels(arch, mcs, False).values()) == sel4
    assert configured_methods(arch, mcs, False) == methods_for(arch, mcs)
    assert configured_methods(arch, mcs, True)[-3:] == CHECKPOINT_METHODS
    enum = ObjectTypeRV64 if arch is Arch.RISCV64 else ObjectTypeAArch64
    assert CHECKPOINT_OBJECT_TYPE > max(enum)
    for fpu_bits in (10, 11):
        plain = object_types(arch, fpu_bits)
        assert CHECKPOINT_OBJECT_TYPE not in plain
        on = object_types(arch, fpu_bits, True)
        assert on[CHECKPOINT_OBJECT_TYPE].kind is Kind.CHECKPOINT
        assert {n: t for n, t in on.items() if n != CHECKPOINT_OBJECT_TYPE} == plain
    # The cap tag: even (seL4's generic caps are), used by nothing of seL4's.
    others = {int(t) for t in CapTag if t is not CapTag.checkpoint_cap}
    assert int(CapTag.checkpoint_cap) % 2 == 0 and int(CapTag.checkpoint_cap) not in others


def test_the_stub_layouts() -> None:
    read, nxt, install = CHECKPOINT_METHODS
    assert [p.name for p in read.extra_caps] == ["root"]
    assert [(w.param.name, w.mr, w.bit) for w in read.words] == [("index", 0, 0), ("depth", 1, 0)]
    assert [(w.param.name, w.mr) for w in read.output_words] == \
        [(p.name, i) for i, p in enumerate(SLOT_WORDS)]
    assert [(w.param.name, w.mr) for w in nxt.words] == \
        [("node_index", 0), ("node_depth", 1), ("start", 2)]
    assert nxt.output_words[0].param.name == "index" and len(nxt.output_words) == 9
    # Install's words are CNode_Mint's, in the same registers.
    mint = next(m for m in methods_for(Arch.RISCV64) if m.label == "CNodeMint")
    assert [(w.mr, w.bit, w.bits) for w in install.words] == \
        [(w.mr, w.bit, w.bits) for w in mint.words]
    assert [p.name for p in install.extra_caps] == ["dest_root", "src_root"]


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_decode_changes_nothing_and_is_repeatable(arch: Arch) -> None:
    w = _world(arch)
    extra = (w.slots[CNODE],)
    args = InvocationArgs(MessageInfo(int(CheckpointLabel.capsule_CheckpointNextSlot), 0, 1, 3),
                          (L2, 64, 0), extra)
    before = snapshot(w)
    first = decode_checkpoint_invocation(w.kernel, w.slots[CKPT], args)
    second = decode_checkpoint_invocation(w.kernel, w.slots[CKPT], args)
    assert snapshot(w) == before
    assert isinstance(first, CheckpointNextSlot) and isinstance(second, CheckpointNextSlot)
    assert first.found is second.found and first.found is not None
    assert (first.found.index, first.end) == (L2_EP, 16)


def test_the_trace_names_the_invocation_and_its_arguments() -> None:
    w = _world(Arch.RISCV64)
    records: list[TraceRecord] = []
    Tracer(w.kernel, records.append)
    reply = w.call(CKPT, READ, [EP, 64], [CNODE])
    assert reply.label == 0
    (record,) = records
    assert (record.label, record.cap) == ("capsule_CheckpointReadSlot", "checkpoint_cap")
    line = format_record(record)
    assert line.startswith(f"#1 rootserver Call(cap={CKPT:#x} checkpoint, "
                           f"capsule_CheckpointReadSlot, root={CNODE:#x}, index={EP:#x}, "
                           "depth=0x40)"), line
    assert record.decoded is not None and record.decoded.startswith("CheckpointReadSlot(slot=")
    filt = TraceFilter.parse(["label=capsule_CheckpointReadSlot", "type=checkpoint"])
    assert filt.accepts(record)


def test_a_kernel_with_checkpoint_caps_pickles() -> None:
    w = _world(Arch.AARCH64)
    state = pickle.loads(pickle.dumps(w.kernel))
    assert state.config.checkpoint_object
    assert type(state.objects[w.slots[L2].cap.object_paddr]).__name__ == "CNode"


def test_first_full_finds_the_next_cap_without_building_slots() -> None:
    from kernel.model.caps import EndpointCap
    from kernel.model.cnode import SlotTable

    table = SlotTable(0x1000, 1 << 20)
    for index in (900_000, 7, 12):
        table[index].cap = EndpointCap(0x2000)
    table[3]  # built, empty
    assert table.built == 4
    assert [table.first_full(i).index for i in (0, 7, 8, 13)] == \
        [7, 7, 12, 900_000]  # type: ignore[union-attr]
    assert table.first_full(900_001) is None
    assert table.built == 4
