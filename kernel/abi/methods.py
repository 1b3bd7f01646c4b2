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

from dataclasses import dataclass

from .arch import Arch
from .labels import Condition

__all__ = [
    "ARCH_CAP_TYPES",
    "Method",
    "Param",
    "Placed",
    "methods_for",
]

WORD_WIDTH = 64

_WORD_WIDTHS: dict[str, int] = {
    "seL4_Word": 64,
    "seL4_Uint64": 64,
    "seL4_Time": 64,
    "seL4_CapRights_t": 64,
    "seL4_Uint32": 32,
    "seL4_Uint16": 16,
    "seL4_Uint8": 8,
    "seL4_Bool": 1,
}
"""Packed width in bits of each non-capability parameter type we support."""


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a stub: its C name and type, and whether it is a capability."""

    name: str
    c_type: str
    is_cap: bool = False

    @property
    def bits(self) -> int:
        """Width in bits when packed into message words (capabilities are not packed)."""
        if self.is_cap:
            raise ValueError(f"{self.name}: a capability parameter has no packed width")
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
    condition: str = Condition.ALWAYS

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
        placed: list[Placed] = []
        offset = 0
        for p in self.params:
            if p.is_cap:
                continue
            align = min(p.bits, WORD_WIDTH)
            offset = -(-offset // align) * align
            placed.append(Placed(p, offset // WORD_WIDTH, offset % WORD_WIDTH))
            offset += p.bits
        return tuple(placed)

    @property
    def length(self) -> int:
        """The message length (words) the stub puts in the tag."""
        words = self.words
        if not words:
            return 0
        last = words[-1]
        return (last.mr * WORD_WIDTH + last.bit + last.bits + WORD_WIDTH - 1) // WORD_WIDTH


def _word(name: str) -> Param:
    return Param(name, "seL4_Word")


def _u8(name: str) -> Param:
    return Param(name, "seL4_Uint8")


def _cap(name: str, c_type: str) -> Param:
    return Param(name, c_type, is_cap=True)


def _slot(prefix: str = "") -> tuple[Param, Param]:
    """A CNode-op slot address: ``<prefix>index`` (word) and ``<prefix>depth`` (uint8)."""
    return _word(f"{prefix}index"), _u8(f"{prefix}depth")


_CNODE = "seL4_CNode"
_SRC = (_cap("src_root", _CNODE), *_slot("src_"))

_GENERIC: tuple[Method, ...] = (
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


def _asid_methods(prefix: str, label_prefix: str) -> tuple[Method, ...]:
    return (
        Method(f"seL4_{prefix}_ASIDControl", "MakePool", f"{label_prefix}ASIDControlMakePool",
               (_cap("untyped", "seL4_Untyped"), _cap("root", _CNODE), *_slot())),
        Method(f"seL4_{prefix}_ASIDPool", "Assign", f"{label_prefix}ASIDPoolAssign",
               (_cap("vspace", "seL4_CPtr"),)),
    )


_ARCH: dict[Arch, tuple[Method, ...]] = {
    Arch.RISCV64: _asid_methods("RISCV", "RISCV"),
    Arch.AARCH64: _asid_methods("ARM", "ARM"),
}

ARCH_CAP_TYPES: dict[Arch, tuple[str, ...]] = {
    Arch.RISCV64: ("seL4_RISCV_Page", "seL4_RISCV_PageTable", "seL4_RISCV_ASIDControl",
                   "seL4_RISCV_ASIDPool"),
    Arch.AARCH64: ("seL4_ARM_Page", "seL4_ARM_PageTable", "seL4_ARM_VSpace",
                   "seL4_ARM_ASIDControl", "seL4_ARM_ASIDPool"),
}
"""Architecture-specific cap types (each a ``seL4_CPtr`` in C), as libsel4 names them."""


def methods_for(arch: Arch, mcs: bool = False) -> tuple[Method, ...]:
    """The declared methods present in ``arch``'s configuration, generic ones first."""
    def holds(m: Method) -> bool:
        if m.condition == Condition.ALWAYS:
            return True
        return mcs if m.condition == Condition.MCS else not mcs

    return tuple(m for m in _GENERIC + _ARCH[arch] if holds(m))
