"""Invocation methods: each libsel4 stub's signature and how it marshals its arguments.

A :class:`Method` lists its parameters in C signature order (after the invoked cap,
``_service``). Where each one travels is not written down but *computed* by the packing
rule of abi/invocations.md ("Marshalling rules"), the same rule the kernel's decoders
assume:

- a capability-typed parameter is an extra cap: its CPtr goes into the IPC buffer's
  ``caps_or_badges[i]`` in order, and ``extraCaps`` counts them;
- every other parameter is packed into message words in order, each aligned to
  ``min(width, 64)`` bits, so narrow ones share a word; word ``i`` is MR ``i``;
- the message length is the number of words used.

``userland/libsel4/generate.py`` turns these declarations into the C stubs, and
``tests/unit/test_abi_methods.py`` checks the computed positions against the published
facts (``../shared/abi/invocations.json``).

Only the methods that libsel4 programs on capsule use so far are declared; a new one
is one more ``Method`` entry.
"""

from __future__ import annotations

from typing import Final

from kernel.abi.arch import Arch, abi_for
from kernel.abi.labels import Condition
from kernel.records import dataclass

__all__ = [
    "ARCH_CAP_TYPES",
    "Method",
    "Param",
    "Placed",
    "methods_for",
]

WORD_WIDTH: Final = 64

_WORD_WIDTHS: Final[dict[str, int]] = {
    "seL4_Word": 64,
    "seL4_Uint64": 64,
    "seL4_Time": 64,
    "seL4_CapRights_t": 64,
    "seL4_Uint32": 32,
    "seL4_Uint16": 16,
    "seL4_Uint8": 8,
    "seL4_Bool": 1,
    "seL4_RISCV_VMAttributes": 64,
    "seL4_ARM_VMAttributes": 64,
}
"""Packed width in bits of each non-capability scalar parameter type we support."""

STRUCT_TYPES: Final = frozenset({"seL4_UserContext"})
"""Struct parameter types: whole words in member order, passed to the stub by pointer."""


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a stub: its C name and type, and whether it is a capability.

    A struct parameter (``c_type`` in :data:`STRUCT_TYPES`) has ``members``: its word
    fields in order; it occupies one whole message word per member.
    """

    name: str
    c_type: str
    is_cap: bool = False
    members: tuple[str, ...] = ()

    @property
    def is_struct(self) -> bool:
        return self.c_type in STRUCT_TYPES

    @property
    def words(self) -> int:
        """Whole message words a struct occupies (1 for a scalar)."""
        return len(self.members) if self.is_struct else 1

    @property
    def bits(self) -> int:
        """Width in bits when packed into message words (capabilities are not packed)."""
        if self.is_cap:
            raise ValueError(f"{self.name}: a capability parameter has no packed width")
        if self.is_struct:
            return WORD_WIDTH * self.words
        return _WORD_WIDTHS[self.c_type]


@dataclass(frozen=True, slots=True)
class Placed:
    """A packed parameter and where it landed: MR ``mr``, bits ``bit .. bit+bits-1``."""

    param: Param
    mr: int
    bit: int

    @property
    def bits(self) -> int:
        return self.param.bits


@dataclass(frozen=True, slots=True)
class Method:
    """One invocation method as libsel4 declares it (``<interface>_<name>``)."""

    interface: str
    """The C type of the invoked cap, e.g. ``seL4_CNode``; also the stub's name prefix."""
    name: str
    label: str
    """Its invocation label's name in ``kernel.abi.labels``."""
    params: tuple[Param, ...]
    """Parameters after the invoked cap, in C signature order."""
    condition: Condition = Condition.ALWAYS
    outputs: tuple[Param, ...] = ()
    """What a successful reply carries, packed from MR0 by the same rule as ``params``.
    A struct output is filled through a pointer parameter; scalar outputs are returned
    in a ``<c_name>_t`` struct beside ``error`` (libsel4's convention)."""

    @property
    def c_name(self) -> str:
        return f"{self.interface}_{self.name}"

    @property
    def extra_caps(self) -> tuple[Param, ...]:
        """The capability parameters, in ``caps_or_badges`` order."""
        return tuple(p for p in self.params if p.is_cap)

    @property
    def words(self) -> tuple[Placed, ...]:
        """The non-capability parameters with their message-register positions."""
        return _pack(self.params)

    @property
    def output_words(self) -> tuple[Placed, ...]:
        """The outputs with their message-register positions in the reply."""
        return _pack(self.outputs)

    @property
    def length(self) -> int:
        """The message length (words) the stub puts in the tag."""
        words = self.words
        if not words:
            return 0
        last = words[-1]
        return (last.mr * WORD_WIDTH + last.bit + last.bits + WORD_WIDTH - 1) // WORD_WIDTH


def _pack(params: tuple[Param, ...]) -> tuple[Placed, ...]:
    """The packing rule of abi/invocations.md: each non-cap parameter aligned to
    ``min(width, 64)`` bits, in order, from bit 0 of MR0."""
    placed: list[Placed] = []
    offset = 0
    for p in params:
        if p.is_cap:
            continue
        align = min(p.bits, WORD_WIDTH)
        offset = -(-offset // align) * align
        placed.append(Placed(p, offset // WORD_WIDTH, offset % WORD_WIDTH))
        offset += p.bits
    return tuple(placed)


def _word(name: str) -> Param:
    return Param(name, "seL4_Word")


def _u8(name: str) -> Param:
    return Param(name, "seL4_Uint8")


def _cap(name: str, c_type: str) -> Param:
    return Param(name, c_type, is_cap=True)


def _slot(prefix: str = "") -> tuple[Param, Param]:
    """A CNode-op slot address: ``<prefix>index`` (word) and ``<prefix>depth`` (uint8)."""
    return _word(f"{prefix}index"), _u8(f"{prefix}depth")


_CNODE: Final = "seL4_CNode"
_TCB: Final = "seL4_TCB"
_SRC: Final = (_cap("src_root", _CNODE), *_slot("src_"))

_GENERIC: Final[tuple[Method, ...]] = (
    Method("seL4_Untyped", "Retype", "UntypedRetype", (
        _word("type"), _word("size_bits"), _cap("root", _CNODE), _word("node_index"),
        _word("node_depth"), _word("node_offset"), _word("num_objects"),
    )),
    Method(_CNODE, "Revoke", "CNodeRevoke", _slot()),
    Method(_CNODE, "Delete", "CNodeDelete", _slot()),
    Method(_CNODE, "CancelBadgedSends", "CNodeCancelBadgedSends", _slot()),
    Method(_CNODE, "Copy", "CNodeCopy",
           (*_slot("dest_"), *_SRC, Param("rights", "seL4_CapRights_t"))),
    Method(_CNODE, "Mint", "CNodeMint",
           (*_slot("dest_"), *_SRC, Param("rights", "seL4_CapRights_t"), _word("badge"))),
    Method(_CNODE, "Move", "CNodeMove", (*_slot("dest_"), *_SRC)),
    Method(_CNODE, "Mutate", "CNodeMutate", (*_slot("dest_"), *_SRC, _word("badge"))),
    Method(_CNODE, "Rotate", "CNodeRotate", (
        *_slot("dest_"), _word("dest_badge"),
        _cap("pivot_root", _CNODE), *_slot("pivot_"), _word("pivot_badge"), *_SRC,
    )),
    Method(_CNODE, "SaveCaller", "CNodeSaveCaller", _slot(), Condition.NON_MCS),
)


_DOMAIN: Final = "seL4_DomainSet"
_DOMAIN_METHODS: Final[tuple[Method, ...]] = (
    Method(_DOMAIN, "Set", "DomainSetSet", (_u8("domain"), _cap("thread", _TCB))),
    Method(_DOMAIN, "ScheduleConfigure", "DomainScheduleConfigure",
           (_word("index"), _u8("domain"), Param("duration", "seL4_Time"))),
    Method(_DOMAIN, "ScheduleSetStart", "DomainScheduleSetStart", (_word("index"),)),
)


def _asid_methods(prefix: str, label_prefix: str) -> tuple[Method, ...]:
    return (
        Method(f"seL4_{prefix}_ASIDControl", "MakePool", f"{label_prefix}ASIDControlMakePool",
               (_cap("untyped", "seL4_Untyped"), _cap("root", _CNODE), *_slot())),
        Method(f"seL4_{prefix}_ASIDPool", "Assign", f"{label_prefix}ASIDPoolAssign",
               (_cap("vspace", "seL4_CPtr"),)),
    )


def _bool(name: str) -> Param:
    return Param(name, "seL4_Bool")


_AUTHORITY: Final = _cap("authority", _TCB)

_GENERIC_TCB: Final[tuple[Method, ...]] = (
    Method(_TCB, "CopyRegisters", "TCBCopyRegisters", (
        _cap("source", _TCB), _bool("suspend_source"), _bool("resume_target"),
        _bool("transfer_frame"), _bool("transfer_integer"), _u8("arch_flags"),
    )),
    Method(_TCB, "Configure", "TCBConfigure", (
        _word("fault_ep"), _cap("cspace_root", _CNODE), _word("cspace_root_data"),
        _cap("vspace_root", "seL4_CPtr"), _word("vspace_root_data"), _word("buffer"),
        _cap("bufferFrame", "seL4_CPtr"),
    ), Condition.NON_MCS),
    Method(_TCB, "SetPriority", "TCBSetPriority", (_AUTHORITY, _word("priority"))),
    Method(_TCB, "SetMCPriority", "TCBSetMCPriority", (_AUTHORITY, _word("mcp"))),
    Method(_TCB, "SetSchedParams", "TCBSetSchedParams",
           (_AUTHORITY, _word("mcp"), _word("priority")), Condition.NON_MCS),
    Method(_TCB, "Configure", "TCBConfigure", (
        _cap("cspace_root", _CNODE), _word("cspace_root_data"),
        _cap("vspace_root", "seL4_CPtr"), _word("vspace_root_data"), _word("buffer"),
        _cap("bufferFrame", "seL4_CPtr"),
    ), Condition.MCS),
    Method(_TCB, "SetSchedParams", "TCBSetSchedParams", (
        _AUTHORITY, _word("mcp"), _word("priority"), _cap("sched_context", "seL4_CPtr"),
        _cap("fault_ep", "seL4_CPtr"),
    ), Condition.MCS),
    Method(_TCB, "SetTimeoutEndpoint", "TCBSetTimeoutEndpoint",
           (_cap("timeout_fault_ep", "seL4_CPtr"),), Condition.MCS),
    Method(_TCB, "SetIPCBuffer", "TCBSetIPCBuffer",
           (_word("buffer"), _cap("bufferFrame", "seL4_CPtr"))),
    Method(_TCB, "SetSpace", "TCBSetSpace", (
        _word("fault_ep"), _cap("cspace_root", _CNODE), _word("cspace_root_data"),
        _cap("vspace_root", "seL4_CPtr"), _word("vspace_root_data"),
    ), Condition.NON_MCS),
    Method(_TCB, "SetSpace", "TCBSetSpace", (
        _cap("fault_ep", "seL4_CPtr"), _cap("cspace_root", _CNODE), _word("cspace_root_data"),
        _cap("vspace_root", "seL4_CPtr"), _word("vspace_root_data"),
    ), Condition.MCS),
    Method(_TCB, "Suspend", "TCBSuspend", ()),
    Method(_TCB, "Resume", "TCBResume", ()),
    Method(_TCB, "BindNotification", "TCBBindNotification",
           (_cap("notification", "seL4_CPtr"),)),
    Method(_TCB, "UnbindNotification", "TCBUnbindNotification", ()),
    Method(_TCB, "SetTLSBase", "TCBSetTLSBase", (_word("tls_base"),)),
    Method(_TCB, "SetFlags", "TCBSetFlags", (_word("clear"), _word("set")),
           outputs=(_word("flags"),)),
)


_SCHED_CONTEXT: Final = "seL4_SchedContext"
_TIME: Final = Param("consumed", "seL4_Time")

_MCS_METHODS: Final[tuple[Method, ...]] = (
    Method("seL4_SchedControl", "ConfigureFlags", "SchedControlConfigureFlags", (
        _cap("schedcontext", _SCHED_CONTEXT), Param("budget", "seL4_Time"),
        Param("period", "seL4_Time"), _word("extra_refills"), _word("badge"), _word("flags"),
    ), Condition.MCS),
    Method(_SCHED_CONTEXT, "Bind", "SchedContextBind", (_cap("cap", "seL4_CPtr"),),
           Condition.MCS),
    Method(_SCHED_CONTEXT, "Unbind", "SchedContextUnbind", (), Condition.MCS),
    Method(_SCHED_CONTEXT, "UnbindObject", "SchedContextUnbindObject",
           (_cap("cap", "seL4_CPtr"),), Condition.MCS),
    Method(_SCHED_CONTEXT, "Consumed", "SchedContextConsumed", (), Condition.MCS,
           outputs=(_TIME,)),
    Method(_SCHED_CONTEXT, "YieldTo", "SchedContextYieldTo", (), Condition.MCS,
           outputs=(_TIME,)),
)
"""The MCS kernel's scheduling-context methods (its TCB variants are in ``_GENERIC_TCB``)."""


def _register_methods(arch: Arch) -> tuple[Method, ...]:
    """Read/WriteRegisters: their seL4_UserContext is the architecture's register list."""
    regs = Param("regs", "seL4_UserContext", members=abi_for(arch).user_context)
    return (
        Method(_TCB, "ReadRegisters", "TCBReadRegisters",
               (_bool("suspend_source"), _u8("arch_flags"), _word("count")),
               outputs=(regs,)),
        Method(_TCB, "WriteRegisters", "TCBWriteRegisters",
               (_bool("resume_target"), _u8("arch_flags"), _word("count"), regs)),
    )


def _riscv_vm_methods() -> tuple[Method, ...]:
    page, table = "seL4_RISCV_Page", "seL4_RISCV_PageTable"
    attr = Param("attr", "seL4_RISCV_VMAttributes")
    return (
        Method(table, "Map", "RISCVPageTableMap", (_cap("vspace", table), _word("vaddr"), attr)),
        Method(table, "Unmap", "RISCVPageTableUnmap", ()),
        Method(page, "Map", "RISCVPageMap", (
            _cap("vspace", table), _word("vaddr"), Param("rights", "seL4_CapRights_t"), attr)),
        Method(page, "Unmap", "RISCVPageUnmap", ()),
        Method(page, "GetAddress", "RISCVPageGetAddress", (), outputs=(_word("paddr"),)),
    )


_CACHE_OPS: Final = ("Clean_Data", "Invalidate_Data", "CleanInvalidate_Data", "Unify_Instruction")


def _arm_vm_methods() -> tuple[Method, ...]:
    page, table, vspace = "seL4_ARM_Page", "seL4_ARM_PageTable", "seL4_ARM_VSpace"
    attr = Param("attr", "seL4_ARM_VMAttributes")
    return (
        *(Method(vspace, op, f"ARMVSpace{op}", (_word("start"), _word("end")))
          for op in _CACHE_OPS),
        Method(table, "Map", "ARMPageTableMap",
               (_cap("vspace", "seL4_CPtr"), _word("vaddr"), attr)),
        Method(table, "Unmap", "ARMPageTableUnmap", ()),
        Method(page, "Map", "ARMPageMap", (
            _cap("vspace", "seL4_CPtr"), _word("vaddr"), Param("rights", "seL4_CapRights_t"),
            attr)),
        Method(page, "Unmap", "ARMPageUnmap", ()),
        *(Method(page, op, f"ARMPage{op}", (_word("start_offset"), _word("end_offset")))
          for op in _CACHE_OPS),
        Method(page, "GetAddress", "ARMPageGetAddress", (), outputs=(_word("paddr"),)),
    )


_ARCH: Final[dict[Arch, tuple[Method, ...]]] = {
    Arch.RISCV64: (*_register_methods(Arch.RISCV64), *_riscv_vm_methods(),
                   *_asid_methods("RISCV", "RISCV")),
    Arch.AARCH64: (*_register_methods(Arch.AARCH64), *_arm_vm_methods(),
                   *_asid_methods("ARM", "ARM")),
}

ARCH_CAP_TYPES: Final[dict[Arch, tuple[str, ...]]] = {
    Arch.RISCV64: ("seL4_RISCV_Page", "seL4_RISCV_PageTable", "seL4_RISCV_ASIDControl",
                   "seL4_RISCV_ASIDPool"),
    Arch.AARCH64: ("seL4_ARM_Page", "seL4_ARM_PageTable", "seL4_ARM_VSpace",
                   "seL4_ARM_ASIDControl", "seL4_ARM_ASIDPool"),
}
"""Architecture-specific cap types (each a ``seL4_CPtr`` in C), as libsel4 names them."""


def methods_for(arch: Arch, mcs: bool = False) -> tuple[Method, ...]:
    """The declared methods present in ``arch``'s configuration, generic ones first."""
    def holds(m: Method) -> bool:
        return m.condition.holds(mcs)

    return tuple(m for m in _GENERIC + _GENERIC_TCB + _DOMAIN_METHODS + _MCS_METHODS + _ARCH[arch]
                 if holds(m))
