"""The seL4 16.0.0 user ABI, declared once (STYLE.md Synthesis 10).

This module *is* the declaration: the kernel imports these enums and layouts, and
``userland/libsel4/generate.py`` turns the very same objects into the C headers of our
libsel4. Nothing here is derived from seL4's code; the numbers are the published ABI
facts (``../shared/abi``), written down in our own form.

Conventions:
- Every enum is an ``IntEnum`` whose member names are the C names libsel4 users know.
- Layouts are ``Layout`` tables of ``(name, byte_offset, byte_size)``; bit fields are
  ``BitField(lsb, width)``.
- Values that differ between the non-MCS and MCS configurations live in separate enums
  (``Syscall`` / ``SyscallMCS``); configuration is chosen per image, never by ``if``s here.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

from kernel.records import dataclass

__all__ = [
    "BitField",
    "BootInfoHeaderId",
    "CapRights",
    "CapTag",
    "Error",
    "FaultLabel",
    "FaultLabelMCS",
    "fault_label_mcs",
    "InitialCap",
    "Layout",
    "LookupFailureType",
    "MESSAGE_INFO",
    "CNODE_CAPDATA",
    "IPC_BUFFER",
    "BOOTINFO",
    "BOOTINFO_MCS",
    "SLOT_REGION",
    "UNTYPED_DESC",
    "Syscall",
    "SyscallMCS",
    "WORD_BITS",
    "WORD_BYTES",
    "WORD_MASK",
    "MSG_MAX_LENGTH",
    "MSG_MAX_EXTRA_CAPS",
    "FAST_MESSAGE_REGISTERS",
    "IPC_BUFFER_SIZE_BITS",
    "BOOTINFO_FRAME_BITS",
    "MAX_BOOTINFO_UNTYPED_CAPS",
    "MIN_UNTYPED_BITS",
    "PAGE_BITS",
    "SLOT_BITS",
    "MAX_PRIO",
    "NUM_PRIORITIES",
    "RETYPE_FAN_OUT_LIMIT",
    "ENDPOINT_BITS",
    "NOTIFICATION_BITS",
    "NOTIFICATION_BITS_MCS",
    "REPLY_BITS_MCS",
    "MIN_SCHED_CONTEXT_BITS",
    "CORE_SCHED_CONTEXT_BYTES",
    "REFILL_SIZE_BYTES",
    "MIN_REFILLS",
    "KERNEL_WCET_US",
    "BOOT_THREAD_TIME_SLICE_MS",
    "SchedContextFlag",
    "LARGE_PAGE_BITS",
    "HUGE_PAGE_BITS",
    "PAGE_TABLE_BITS",
    "PAGE_TABLE_ENTRY_BITS",
    "PAGE_TABLE_INDEX_BITS",
    "VSPACE_BITS",
    "ASID_POOL_BITS",
    "ASID_POOL_INDEX_BITS",
    "NUM_ASID_POOLS_BITS",
]

WORD_BITS: Final = 64
WORD_BYTES: Final = WORD_BITS // 8
"""sizeof(seL4_Word): the unit of IPC-buffer and message-register offsets."""
WORD_MASK: Final = (1 << WORD_BITS) - 1

MSG_MAX_LENGTH: Final = 120
MSG_MAX_EXTRA_CAPS: Final = 3
FAST_MESSAGE_REGISTERS: Final = 4
IPC_BUFFER_SIZE_BITS: Final = 10
BOOTINFO_FRAME_BITS: Final = 12
MAX_BOOTINFO_UNTYPED_CAPS: Final = 230
MIN_UNTYPED_BITS: Final = 4
PAGE_BITS: Final = 12
SLOT_BITS: Final = 5
MAX_PRIO: Final = 255
NUM_PRIORITIES: Final = 256
RETYPE_FAN_OUT_LIMIT: Final = 256

# Object sizes (log2 bytes), the same on riscv64 and aarch64 in the configurations we
# support (no hypervisor); seL4_TCBBits differs and lives in ``arch``. The kernel takes
# every object size from here: no module keeps a copy.
ENDPOINT_BITS: Final = 4
NOTIFICATION_BITS: Final = 5
"""seL4_NotificationBits of the non-MCS kernel."""
NOTIFICATION_BITS_MCS: Final = 6
"""seL4_NotificationBits of the MCS kernel (a notification also names a scheduling context)."""
REPLY_BITS_MCS: Final = 5
"""seL4_ReplyBits: reply objects exist only in the MCS kernel."""
MIN_SCHED_CONTEXT_BITS: Final = 7
"""seL4_MinSchedContextBits (MCS): the smallest scheduling context, 128 bytes."""
CORE_SCHED_CONTEXT_BYTES: Final = 128
"""seL4_CoreSchedContextBytes (MCS): a scheduling context's fields with its two
minimum refills; every further 16 bytes of the object hold one more refill."""
REFILL_SIZE_BYTES: Final = 16
"""seL4_RefillSizeBytes (MCS): one refill, a release time and an amount."""
MIN_REFILLS: Final = 2
"""The refills every scheduling context has (seL4's MIN_REFILLS): SchedControl's
``extra_refills`` counts the ones beyond them."""
KERNEL_WCET_US: Final = 10
"""The kernel's worst-case execution time in microseconds on qemu-riscv-virt and
qemu-arm-virt (KERNEL_WCET, scale 1): MIN_BUDGET is twice it."""
BOOT_THREAD_TIME_SLICE_MS: Final = 5
"""CONFIG_BOOT_THREAD_TIME_SLICE (MCS): the root task's budget, in milliseconds."""
LARGE_PAGE_BITS: Final = 21
HUGE_PAGE_BITS: Final = 30
PAGE_TABLE_BITS: Final = 12
PAGE_TABLE_ENTRY_BITS: Final = 3
PAGE_TABLE_INDEX_BITS: Final = 9
VSPACE_BITS: Final = 12
"""The VSpace root: a page table on riscv64, a VSpace object on aarch64 (no hypervisor)."""
ASID_POOL_BITS: Final = 12
ASID_POOL_INDEX_BITS: Final = 9
"""The low ASID bits, which index a pool: 512 ASIDs per pool."""
NUM_ASID_POOLS_BITS: Final = 7
"""The high ASID bits, which index the ASID table: 128 pools, 2^16 ASIDs in all."""


class Syscall(IntEnum):
    """Syscall numbers of the non-MCS kernel (value placed in a7 / x7)."""

    seL4_SysCall = -1
    seL4_SysReplyRecv = -2
    seL4_SysSend = -3
    seL4_SysNBSend = -4
    seL4_SysRecv = -5
    seL4_SysReply = -6
    seL4_SysYield = -7
    seL4_SysNBRecv = -8
    seL4_SysDebugPutChar = -9
    seL4_SysDebugDumpScheduler = -10
    seL4_SysDebugHalt = -11
    seL4_SysDebugCapIdentify = -12
    seL4_SysDebugSnapshot = -13
    seL4_SysDebugNameThread = -14
    seL4_SysDebugSendIPI = -15
    seL4_SysDebugGetThreadAffinity = -16
    seL4_SysDebugRun = -17
    seL4_SysBenchmarkFlushCaches = -18
    seL4_SysBenchmarkResetLog = -19
    seL4_SysBenchmarkFinalizeLog = -20
    seL4_SysBenchmarkSetLogBuffer = -21
    seL4_SysBenchmarkNullSyscall = -22
    seL4_SysBenchmarkGetThreadUtilisation = -23
    seL4_SysBenchmarkResetThreadUtilisation = -24
    seL4_SysBenchmarkDumpAllThreadsUtilisation = -25
    seL4_SysBenchmarkResetAllThreadsUtilisation = -26
    seL4_SysX86DangerousWRMSR = -27
    seL4_SysX86DangerousRDMSR = -28
    seL4_SysVMEnter = -29
    seL4_SysSetTLSBase = -30


class SyscallMCS(IntEnum):
    """Syscall numbers of the MCS kernel."""

    seL4_SysCall = -1
    seL4_SysReplyRecv = -2
    seL4_SysNBSendRecv = -3
    seL4_SysNBSendWait = -4
    seL4_SysSend = -5
    seL4_SysNBSend = -6
    seL4_SysRecv = -7
    seL4_SysNBRecv = -8
    seL4_SysWait = -9
    seL4_SysNBWait = -10
    seL4_SysYield = -11
    seL4_SysDebugPutChar = -12
    seL4_SysDebugDumpScheduler = -13
    seL4_SysDebugHalt = -14
    seL4_SysDebugCapIdentify = -15
    seL4_SysDebugSnapshot = -16
    seL4_SysDebugNameThread = -17
    seL4_SysDebugSendIPI = -18
    seL4_SysDebugGetThreadAffinity = -19
    seL4_SysDebugRun = -20
    seL4_SysBenchmarkFlushCaches = -21
    seL4_SysBenchmarkResetLog = -22
    seL4_SysBenchmarkFinalizeLog = -23
    seL4_SysBenchmarkSetLogBuffer = -24
    seL4_SysBenchmarkNullSyscall = -25
    seL4_SysBenchmarkGetThreadUtilisation = -26
    seL4_SysBenchmarkResetThreadUtilisation = -27
    seL4_SysBenchmarkDumpAllThreadsUtilisation = -28
    seL4_SysBenchmarkResetAllThreadsUtilisation = -29
    seL4_SysX86DangerousWRMSR = -30
    seL4_SysX86DangerousRDMSR = -31
    seL4_SysVMEnter = -32
    seL4_SysSetTLSBase = -33


class Error(IntEnum):
    """seL4_Error: the label of the reply to a failed invocation."""

    seL4_NoError = 0
    seL4_InvalidArgument = 1
    seL4_InvalidCapability = 2
    seL4_IllegalOperation = 3
    seL4_RangeError = 4
    seL4_AlignmentError = 5
    seL4_FailedLookup = 6
    seL4_TruncatedMessage = 7
    seL4_DeleteFirst = 8
    seL4_RevokeFirst = 9
    seL4_NotEnoughMemory = 10


class LookupFailureType(IntEnum):
    seL4_NoFailure = 0
    seL4_InvalidRoot = 1
    seL4_MissingCapability = 2
    seL4_DepthMismatch = 3
    seL4_GuardMismatch = 4


class FaultLabel(IntEnum):
    """Fault message labels of the non-MCS kernel (same on RV64 and AArch64)."""

    seL4_Fault_NullFault = 0
    seL4_Fault_CapFault = 1
    seL4_Fault_UnknownSyscall = 2
    seL4_Fault_UserException = 3
    seL4_Fault_VMFault = 5


class FaultLabelMCS(IntEnum):
    """Fault message labels of the MCS kernel: Timeout takes 5 and VMFault moves to 6."""

    seL4_Fault_NullFault = 0
    seL4_Fault_CapFault = 1
    seL4_Fault_UnknownSyscall = 2
    seL4_Fault_UserException = 3
    seL4_Fault_Timeout = 5
    seL4_Fault_VMFault = 6


def fault_label_mcs(label: int) -> int:
    """The MCS kernel's number for the fault the non-MCS kernel numbers ``label`` (the
    same name; VMFault moves from 5 to 6), ``label`` itself for a fault it lacks."""
    try:
        return int(FaultLabelMCS[FaultLabel(label).name])
    except (ValueError, KeyError):
        return label


class SchedContextFlag(IntEnum):
    """seL4_SchedContextFlag: the flags of SchedControl_ConfigureFlags (MCS)."""

    seL4_SchedContext_NoFlag = 0
    seL4_SchedContext_Sporadic = 1


class InitialCap(IntEnum):
    """Slots of the root task's CNode filled at boot (seL4_RootCNodeCapSlots)."""

    seL4_CapNull = 0
    seL4_CapInitThreadTCB = 1
    seL4_CapInitThreadCNode = 2
    seL4_CapInitThreadVSpace = 3
    seL4_CapIRQControl = 4
    seL4_CapASIDControl = 5
    seL4_CapInitThreadASIDPool = 6
    seL4_CapIOPortControl = 7
    seL4_CapIOSpace = 8
    seL4_CapBootInfoFrame = 9
    seL4_CapInitThreadIPCBuffer = 10
    seL4_CapDomain = 11
    seL4_CapSMMUSIDControl = 12
    seL4_CapSMMUCBControl = 13
    seL4_CapInitThreadSC = 14
    seL4_CapSMC = 15
    seL4_NumInitialCaps = 16


class TCBFlag(IntEnum):
    """seL4_TCBFlag: the flags of TCB SetFlags (facts.json)."""

    seL4_TCBFlag_NoFlag = 0
    seL4_TCBFlag_fpuDisabled = 1


TCB_FLAG_MASK: Final = TCBFlag.seL4_TCBFlag_fpuDisabled
"""seL4_TCBFlag_MASK: every flag a thread may set (the FPU-disable flag is the only one)."""


class CapRights(IntEnum):
    """Bits of the seL4_CapRights_t word."""

    seL4_CanWrite = 0x1
    seL4_CanRead = 0x2
    seL4_CanGrant = 0x4
    seL4_CanGrantReply = 0x8
    seL4_AllRights = 0xF


class CapTag(IntEnum):
    """Kernel cap tags, the value seL4_DebugCapIdentify returns.

    ``checkpoint_cap`` is not seL4: the tag of capsule's checkpoint object
    (``kernel.abi.extensions``), which only images with that extension can create. It
    takes an even number (seL4's generic caps are even, arch caps odd) above seL4's.
    """

    null_cap = 0
    frame_cap = 1
    untyped_cap = 2
    page_table_cap = 3
    endpoint_cap = 4
    notification_cap = 6
    reply_cap = 8
    vspace_cap = 9
    cnode_cap = 10
    asid_control_cap = 11
    thread_cap = 12
    asid_pool_cap = 13
    irq_control_cap = 14
    irq_handler_cap = 16
    zombie_cap = 18
    domain_cap = 20
    sched_context_cap = 22
    """MCS only."""
    sched_control_cap = 24
    """MCS only."""
    checkpoint_cap = 30
    cap_page_cap = 32
    """capsule's capability page (not seL4; kernel.abi.extensions)."""


class RiscvVMAttributes(IntEnum):
    """seL4_RISCV_VMAttributes bits (abi/vspace.md): the default is 0 (executable)."""

    seL4_RISCV_Default_VMAttributes = 0
    seL4_RISCV_ExecuteNever = 0x1


class ArmVMAttributes(IntEnum):
    """seL4_ARM_VMAttributes bits (abi/vspace.md): the default (3) is cacheable memory."""

    seL4_ARM_PageCacheable = 0x1
    seL4_ARM_ParityEnabled = 0x2
    seL4_ARM_Default_VMAttributes = 0x3
    seL4_ARM_ExecuteNever = 0x4


class BootInfoHeaderId(IntEnum):
    SEL4_BOOTINFO_HEADER_PADDING = 0
    SEL4_BOOTINFO_HEADER_FDT = 6


@dataclass(frozen=True, slots=True)
class BitField:
    """A field of ``width`` bits starting at bit ``lsb`` of a word."""

    lsb: int
    width: int

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1

    def get(self, word: int) -> int:
        return (word >> self.lsb) & self.mask

    def put(self, word: int, value: int) -> int:
        return (word & ~(self.mask << self.lsb)) | ((value & self.mask) << self.lsb)


@dataclass(frozen=True, slots=True)
class Layout:
    """A C struct: its name, total size and fields ``(name, byte_offset, byte_size)``."""

    c_name: str
    size: int
    fields: tuple[tuple[str, int, int], ...]

    def offset(self, field: str) -> int:
        for name, off, _ in self.fields:
            if name == field:
                return off
        raise KeyError(field)


MESSAGE_INFO: Final[dict[str, BitField]] = {
    "length": BitField(0, 7),
    "extraCaps": BitField(7, 2),
    "capsUnwrapped": BitField(9, 3),
    "label": BitField(12, 52),
}

CNODE_CAPDATA: Final[dict[str, BitField]] = {
    "guardSize": BitField(0, 6),
    "guard": BitField(6, 58),
}

IPC_BUFFER: Final = Layout(
    "seL4_IPCBuffer",
    1024,
    (
        ("tag", 0, 8),
        ("msg", 8, 8 * MSG_MAX_LENGTH),
        ("userData", 968, 8),
        ("caps_or_badges", 976, 8 * MSG_MAX_EXTRA_CAPS),
        ("receiveCNode", 1000, 8),
        ("receiveIndex", 1008, 8),
        ("receiveDepth", 1016, 8),
    ),
)

SLOT_REGION: Final = Layout("seL4_SlotRegion", 16, (("start", 0, 8), ("end", 8, 8)))

UNTYPED_DESC: Final = Layout(
    "seL4_UntypedDesc",
    16,
    (("paddr", 0, 8), ("sizeBits", 8, 1), ("isDevice", 9, 1), ("padding", 10, 6)),
)

BOOTINFO: Final = Layout(
    "seL4_BootInfo",
    168 + 16 * MAX_BOOTINFO_UNTYPED_CAPS,
    (
        ("extraLen", 0, 8),
        ("nodeID", 8, 8),
        ("numNodes", 16, 8),
        ("numIOPTLevels", 24, 8),
        ("ipcBuffer", 32, 8),
        ("empty", 40, 16),
        ("sharedFrames", 56, 16),
        ("userImageFrames", 72, 16),
        ("userImagePaging", 88, 16),
        ("ioSpaceCaps", 104, 16),
        ("extraBIPages", 120, 16),
        ("initThreadCNodeSizeBits", 136, 8),
        ("initThreadDomain", 144, 8),
        ("untyped", 152, 16),
        ("untypedList", 168, 16 * MAX_BOOTINFO_UNTYPED_CAPS),
    ),
)

BOOTINFO_MCS: Final = Layout(
    "seL4_BootInfo",
    BOOTINFO.size + SLOT_REGION.size,
    (
        *BOOTINFO.fields[:-2],
        ("schedcontrol", 152, 16),
        ("untyped", 168, 16),
        ("untypedList", 184, 16 * MAX_BOOTINFO_UNTYPED_CAPS),
    ),
)
"""seL4_BootInfo of the MCS kernel: the ``schedcontrol`` slot region before ``untyped``,
which with ``untypedList`` moves up by 16 bytes (abi/boot.md)."""
