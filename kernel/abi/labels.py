"""Invocation labels, declared as seL4 numbers them.

Labels are not fixed numbers: label 0 is ``InvalidInvocation`` and every method whose
condition holds in the configuration takes the next number, walking the generic
methods, then the sel4_arch ones, then the arch ones (abi/invocations.md). We declare the
ordered method lists with their conditions and *compute* each configuration's table, so
a new configuration is a new set of flags, not a hand-written table.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from enum import Enum, IntEnum
from types import MappingProxyType
from typing import Final

from kernel.abi.arch import Arch

__all__ = ["Condition", "label_enum", "label_name", "label_table"]


class Condition(Enum):
    """Method conditions: a method is present when its condition holds."""

    ALWAYS = "always"
    NON_MCS = "non_mcs"
    MCS = "mcs"

    def holds(self, mcs: bool) -> bool:
        """Whether a method with this condition exists in the (non-)MCS configuration."""
        if self is Condition.ALWAYS:
            return True
        return mcs if self is Condition.MCS else not mcs


_GENERIC: Final[tuple[tuple[str, Condition], ...]] = (
    ("UntypedRetype", Condition.ALWAYS),
    ("TCBReadRegisters", Condition.ALWAYS),
    ("TCBWriteRegisters", Condition.ALWAYS),
    ("TCBCopyRegisters", Condition.ALWAYS),
    ("TCBConfigure", Condition.ALWAYS),
    ("TCBSetPriority", Condition.ALWAYS),
    ("TCBSetMCPriority", Condition.ALWAYS),
    ("TCBSetSchedParams", Condition.ALWAYS),
    ("TCBSetTimeoutEndpoint", Condition.MCS),
    ("TCBSetIPCBuffer", Condition.ALWAYS),
    ("TCBSetSpace", Condition.ALWAYS),
    ("TCBSuspend", Condition.ALWAYS),
    ("TCBResume", Condition.ALWAYS),
    ("TCBBindNotification", Condition.ALWAYS),
    ("TCBUnbindNotification", Condition.ALWAYS),
    ("TCBSetTLSBase", Condition.ALWAYS),
    ("TCBSetFlags", Condition.ALWAYS),
    ("CNodeRevoke", Condition.ALWAYS),
    ("CNodeDelete", Condition.ALWAYS),
    ("CNodeCancelBadgedSends", Condition.ALWAYS),
    ("CNodeCopy", Condition.ALWAYS),
    ("CNodeMint", Condition.ALWAYS),
    ("CNodeMove", Condition.ALWAYS),
    ("CNodeMutate", Condition.ALWAYS),
    ("CNodeRotate", Condition.ALWAYS),
    ("CNodeSaveCaller", Condition.NON_MCS),
    ("IRQIssueIRQHandler", Condition.ALWAYS),
    ("IRQAckIRQ", Condition.ALWAYS),
    ("IRQSetIRQHandler", Condition.ALWAYS),
    ("IRQClearIRQHandler", Condition.ALWAYS),
    ("DomainSetSet", Condition.ALWAYS),
    ("DomainScheduleConfigure", Condition.ALWAYS),
    ("DomainScheduleSetStart", Condition.ALWAYS),
    ("SchedControlConfigureFlags", Condition.MCS),
    ("SchedContextBind", Condition.MCS),
    ("SchedContextUnbind", Condition.MCS),
    ("SchedContextUnbindObject", Condition.MCS),
    ("SchedContextConsumed", Condition.MCS),
    ("SchedContextYieldTo", Condition.MCS),
)

_ARCH: Final[dict[Arch, tuple[tuple[str, Condition], ...]]] = {
    Arch.RISCV64: (
        ("RISCVPageTableMap", Condition.ALWAYS),
        ("RISCVPageTableUnmap", Condition.ALWAYS),
        ("RISCVPageMap", Condition.ALWAYS),
        ("RISCVPageUnmap", Condition.ALWAYS),
        ("RISCVPageGetAddress", Condition.ALWAYS),
        ("RISCVASIDControlMakePool", Condition.ALWAYS),
        ("RISCVASIDPoolAssign", Condition.ALWAYS),
        ("RISCVIRQIssueIRQHandlerTrigger", Condition.ALWAYS),
    ),
    # AArch64: the sel4_arch block (VSpace, SMC) then the arch block. Hypervisor, SMMU
    # and SMP methods are absent from the configurations we support.
    Arch.AARCH64: (
        ("ARMVSpaceClean_Data", Condition.ALWAYS),
        ("ARMVSpaceInvalidate_Data", Condition.ALWAYS),
        ("ARMVSpaceCleanInvalidate_Data", Condition.ALWAYS),
        ("ARMVSpaceUnify_Instruction", Condition.ALWAYS),
        ("ARMSMCCall", Condition.ALWAYS),
        ("ARMPageTableMap", Condition.ALWAYS),
        ("ARMPageTableUnmap", Condition.ALWAYS),
        ("ARMPageMap", Condition.ALWAYS),
        ("ARMPageUnmap", Condition.ALWAYS),
        ("ARMPageClean_Data", Condition.ALWAYS),
        ("ARMPageInvalidate_Data", Condition.ALWAYS),
        ("ARMPageCleanInvalidate_Data", Condition.ALWAYS),
        ("ARMPageUnify_Instruction", Condition.ALWAYS),
        ("ARMPageGetAddress", Condition.ALWAYS),
        ("ARMASIDControlMakePool", Condition.ALWAYS),
        ("ARMASIDPoolAssign", Condition.ALWAYS),
        ("ARMIRQIssueIRQHandlerTrigger", Condition.ALWAYS),
        ("ARMIRQIssueSGISignal", Condition.ALWAYS),
    ),
}


@functools.cache
def label_table(arch: Arch, mcs: bool) -> Mapping[str, int]:
    """Label numbers of ``arch`` in the non-MCS (``mcs=False``) or MCS configuration.

    Built once per configuration (decoders ask at every invocation) and read-only."""
    table: dict[str, int] = {"InvalidInvocation": 0}
    for name, condition in _GENERIC + _ARCH[arch]:
        if condition.holds(mcs) and name not in table:
            table[name] = len(table)
    return MappingProxyType(table)


@functools.cache
def _label_names(arch: Arch, mcs: bool) -> Mapping[int, str]:
    return MappingProxyType({number: name for name, number in label_table(arch, mcs).items()})


def label_name(arch: Arch, mcs: bool, label: int) -> str | None:
    """The name of label number ``label`` in a configuration, None if it names none.

    (A plain lookup rather than ``label_enum``: the functional IntEnum does not survive
    mypyc, so the invocation path does not build one.)"""
    return _label_names(arch, mcs).get(label)


_ENUM_CACHE: Final[dict[tuple[Arch, bool], type[IntEnum]]] = {}


def label_enum(arch: Arch, mcs: bool) -> type[IntEnum]:
    """The label table of a configuration as an ``IntEnum`` (built once, then cached)."""
    key = (arch, mcs)
    if key not in _ENUM_CACHE:
        suffix = "MCS" if mcs else ""
        enum: type[IntEnum] = IntEnum(  # type: ignore[misc]
            f"InvocationLabel{arch.short.upper()}{suffix}", dict(label_table(arch, mcs))
        )
        _ENUM_CACHE[key] = enum
    return _ENUM_CACHE[key]
