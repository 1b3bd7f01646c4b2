"""libsel4's C headers agree with the Python ABI declaration (STYLE.md Synthesis 10).

Two checks: the generated headers under userland/libsel4/include/sel4/gen are what the
generator produces from kernel/abi today, and, compiled for each architecture, the C
types and enums have the offsets and values the declaration gives (a C file of
``_Static_assert``s written from the Python values, compiled with the pip ziglang).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kernel.abi import constants as C
from kernel.abi.arch import ABI_AARCH64, ABI_RISCV64, ArchABI, object_type_enum
from kernel.abi.labels import label_table
from kernel.entry.syscalls import CAPSULE_EXIT_MAGIC
from userland.libsel4 import generate

USERLAND = Path(generate.__file__).resolve().parents[1]
ARCHES = {abi.arch.short: abi for abi in (ABI_RISCV64, ABI_AARCH64)}


def test_exit_magic_is_capsule_in_ascii() -> None:
    assert int.from_bytes(b"CAPSULE!", "big") == CAPSULE_EXIT_MAGIC


def test_generated_headers_are_up_to_date() -> None:
    stale = generate.stale_files()
    assert stale == [], f"stale generated headers {stale}: run python -m userland.libsel4.generate"


def test_check_mode_reports_stale_files(tmp_path: Path) -> None:
    assert generate.main(["--out", str(tmp_path)]) == 0
    assert generate.main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "errors.h").write_text("/* edited */\n")
    (tmp_path / "extra.h").write_text("\n")
    assert generate.stale_files(tmp_path) == ["errors.h", "extra.h"]
    assert generate.main(["--check", "--out", str(tmp_path)]) == 1


def test_every_generated_header_is_stamped() -> None:
    for name, text in generate.render_all().items():
        assert text.startswith(f"/* {generate.STAMP} */"), name


# ---------------------------------------------------------------------------- compiled checks


def _asserts_for(abi: ArchABI, mcs: bool = False) -> str:
    """A C translation unit of static assertions written from the Python declaration,
    for the non-MCS or (``CONFIG_KERNEL_MCS`` defined) the MCS configuration."""
    lines = [f"#define {generate.MCS_MACRO} 1" if mcs else "", "#include <sel4/sel4.h>", ""]

    def check(expr: str, what: str) -> None:
        lines.append(f'_Static_assert({expr}, "{what}");')

    bootinfo = C.BOOTINFO_MCS if mcs else C.BOOTINFO
    for layout in (C.IPC_BUFFER, bootinfo, C.SLOT_REGION, C.UNTYPED_DESC):
        check(f"sizeof({layout.c_name}) == {layout.size}", f"sizeof {layout.c_name}")
        for name, off, size in layout.fields:
            check(f"__builtin_offsetof({layout.c_name}, {name}) == {off}",
                  f"{layout.c_name}.{name} offset")
            check(f"sizeof((({layout.c_name} *)0)->{name}) == {size}",
                  f"{layout.c_name}.{name} size")
    check("_Alignof(seL4_IPCBuffer) == 1024", "IPC buffer alignment")
    check("sizeof(seL4_Word) == 8 && sizeof(seL4_MessageInfo_t) == 8", "word sizes")

    syscalls, faults = (C.SyscallMCS, C.FaultLabelMCS) if mcs else (C.Syscall, C.FaultLabel)
    for enum in (syscalls, C.Error, C.LookupFailureType, faults, C.InitialCap):
        for member in enum:
            check(f"{member.name} == {member.value}", member.name)
    check(f"seL4_NumErrors == {len(C.Error)}", "seL4_NumErrors")
    for obj in object_type_enum(abi.arch, mcs):
        check(f"{obj.name} == {obj.value}", obj.name)
    for name, value in label_table(abi.arch, mcs=mcs).items():
        check(f"{name} == {value}", name)
    if mcs:
        check(f"seL4_NotificationBits == {C.NOTIFICATION_BITS_MCS}", "MCS notification size")
        check(f"seL4_ReplyBits == {C.REPLY_BITS_MCS}", "seL4_ReplyBits")
        check(f"seL4_MinSchedContextBits == {C.MIN_SCHED_CONTEXT_BITS}", "MinSchedContextBits")
        check(f"seL4_CoreSchedContextBytes == {C.CORE_SCHED_CONTEXT_BYTES}", "core SC bytes")
        check(f"seL4_RefillSizeBytes == {C.REFILL_SIZE_BYTES}", "refill bytes")
        for flag in C.SchedContextFlag:
            check(f"{flag.name} == {flag.value}", flag.name)
    else:
        check(f"seL4_NotificationBits == {C.NOTIFICATION_BITS}", "notification size")

    for field, bf in C.MESSAGE_INFO.items():
        check(f"SEL4_MSGINFO_{field.upper()}_SHIFT == {bf.lsb}", f"msginfo {field} shift")
        check(f"SEL4_MSGINFO_{field.upper()}_MASK == {bf.mask}ull", f"msginfo {field} mask")
    check(f"seL4_MsgMaxLength == {C.MSG_MAX_LENGTH}", "seL4_MsgMaxLength")
    check(f"seL4_MsgMaxExtraCaps == {C.MSG_MAX_EXTRA_CAPS}", "seL4_MsgMaxExtraCaps")
    check(f"CONFIG_MAX_NUM_BOOTINFO_UNTYPED_CAPS == {C.MAX_BOOTINFO_UNTYPED_CAPS}",
          "untyped list length")
    check(f"seL4_TCBBits == {abi.tcb_bits}", "seL4_TCBBits")
    check(f"seL4_MaxUntypedBits == {abi.max_untyped_bits}", "seL4_MaxUntypedBits")
    check(f"seL4_UserTop == {abi.user_top}ull", "seL4_UserTop")
    check(f"sizeof(CAPSULE_ARCH_NAME) == {len(abi.arch.short) + 1}", "CAPSULE_ARCH_NAME")
    check(f"CAPSULE_EXIT_MAGIC == {CAPSULE_EXIT_MAGIC:#x}ull", "CAPSULE_EXIT_MAGIC")

    check(f"sizeof(seL4_UserContext) == {8 * len(abi.user_context)}", "seL4_UserContext size")
    for i, reg in enumerate(abi.user_context):
        check(f"__builtin_offsetof(seL4_UserContext, {reg}) == {8 * i}", f"UserContext.{reg}")
    for fault, mrs in (("UnknownSyscall", abi.unknown_syscall_mrs),
                       ("UserException", abi.user_exception_mrs)):
        for i, mr in enumerate(mrs):
            check(f"seL4_{fault}_{mr} == {i}", f"seL4_{fault}_{mr}")
        check(f"seL4_{fault}_Length == {len(mrs)}", f"seL4_{fault}_Length")
    return "\n".join(lines) + "\n"


# Every system-call wrapper, assigned to a pointer of libsel4's exact type: a wrong
# signature is a compile error, so programs written against libsel4 compile unchanged.
SIGNATURES = """
#include <sel4/sel4.h>

void (*p_send)(seL4_CPtr, seL4_MessageInfo_t) = seL4_Send;
void (*p_nbsend)(seL4_CPtr, seL4_MessageInfo_t) = seL4_NBSend;
void (*p_send_mrs)(seL4_CPtr, seL4_MessageInfo_t, seL4_Word *, seL4_Word *, seL4_Word *,
                   seL4_Word *) = seL4_SendWithMRs;
void (*p_nbsend_mrs)(seL4_CPtr, seL4_MessageInfo_t, seL4_Word *, seL4_Word *, seL4_Word *,
                     seL4_Word *) = seL4_NBSendWithMRs;
seL4_MessageInfo_t (*p_call)(seL4_CPtr, seL4_MessageInfo_t) = seL4_Call;
seL4_MessageInfo_t (*p_call_mrs)(seL4_CPtr, seL4_MessageInfo_t, seL4_Word *, seL4_Word *,
                                 seL4_Word *, seL4_Word *) = seL4_CallWithMRs;
seL4_MessageInfo_t (*p_recv)(seL4_CPtr, seL4_Word *) = seL4_Recv;
seL4_MessageInfo_t (*p_recv_mrs)(seL4_CPtr, seL4_Word *, seL4_Word *, seL4_Word *, seL4_Word *,
                                 seL4_Word *) = seL4_RecvWithMRs;
seL4_MessageInfo_t (*p_nbrecv)(seL4_CPtr, seL4_Word *) = seL4_NBRecv;
void (*p_reply)(seL4_MessageInfo_t) = seL4_Reply;
void (*p_reply_mrs)(seL4_MessageInfo_t, seL4_Word *, seL4_Word *, seL4_Word *,
                    seL4_Word *) = seL4_ReplyWithMRs;
seL4_MessageInfo_t (*p_replyrecv)(seL4_CPtr, seL4_MessageInfo_t, seL4_Word *) = seL4_ReplyRecv;
seL4_MessageInfo_t (*p_replyrecv_mrs)(seL4_CPtr, seL4_MessageInfo_t, seL4_Word *, seL4_Word *,
                                      seL4_Word *, seL4_Word *, seL4_Word *) =
    seL4_ReplyRecvWithMRs;
void (*p_signal)(seL4_CPtr) = seL4_Signal;
void (*p_wait)(seL4_CPtr, seL4_Word *) = seL4_Wait;
seL4_MessageInfo_t (*p_poll)(seL4_CPtr, seL4_Word *) = seL4_Poll;
void (*p_yield)(void) = seL4_Yield;
void (*p_putchar)(char) = seL4_DebugPutChar;
void (*p_putstring)(char *) = seL4_DebugPutString;
void (*p_halt)(void) = seL4_DebugHalt;
void (*p_snapshot)(void) = seL4_DebugSnapshot;
void (*p_dump)(void) = seL4_DebugDumpScheduler;
seL4_Uint32 (*p_identify)(seL4_CPtr) = seL4_DebugCapIdentify;
void (*p_name)(seL4_CPtr, const char *) = seL4_DebugNameThread;
seL4_IPCBuffer *(*p_getipc)(void) = seL4_GetIPCBuffer;
void (*p_setipc)(seL4_IPCBuffer *) = seL4_SetIPCBuffer;
seL4_Word (*p_getmr)(int) = seL4_GetMR;
void (*p_setmr)(int, seL4_Word) = seL4_SetMR;
seL4_BootInfo *(*p_bootinfo)(void) = seL4_GetBootInfo;
seL4_MessageInfo_t (*p_mi_new)(seL4_Uint64, seL4_Uint64, seL4_Uint64, seL4_Uint64) =
    seL4_MessageInfo_new;
seL4_Uint64 (*p_mi_label)(seL4_MessageInfo_t) = seL4_MessageInfo_get_label;
seL4_Uint64 (*p_mi_length)(seL4_MessageInfo_t) = seL4_MessageInfo_get_length;
seL4_Uint64 (*p_mi_extra)(seL4_MessageInfo_t) = seL4_MessageInfo_get_extraCaps;
seL4_Uint64 (*p_mi_unwrapped)(seL4_MessageInfo_t) = seL4_MessageInfo_get_capsUnwrapped;
"""


# The MCS configuration's system calls and scheduling-context API: reply objects on the
# receive side, Wait / NBWait, NBSendRecv / NBSendWait, and no seL4_Reply.
MCS_SIGNATURES = f"""
#define {generate.MCS_MACRO} 1
#include <sel4/sel4.h>

seL4_MessageInfo_t (*p_call)(seL4_CPtr, seL4_MessageInfo_t) = seL4_Call;
seL4_MessageInfo_t (*p_recv)(seL4_CPtr, seL4_Word *, seL4_CPtr) = seL4_Recv;
seL4_MessageInfo_t (*p_recv_mrs)(seL4_CPtr, seL4_Word *, seL4_Word *, seL4_Word *, seL4_Word *,
                                 seL4_Word *, seL4_CPtr) = seL4_RecvWithMRs;
seL4_MessageInfo_t (*p_nbrecv)(seL4_CPtr, seL4_Word *, seL4_CPtr) = seL4_NBRecv;
seL4_MessageInfo_t (*p_replyrecv)(seL4_CPtr, seL4_MessageInfo_t, seL4_Word *, seL4_CPtr) =
    seL4_ReplyRecv;
seL4_MessageInfo_t (*p_replyrecv_mrs)(seL4_CPtr, seL4_MessageInfo_t, seL4_Word *, seL4_Word *,
                                      seL4_Word *, seL4_Word *, seL4_Word *, seL4_CPtr) =
    seL4_ReplyRecvWithMRs;
seL4_MessageInfo_t (*p_nbsendrecv)(seL4_CPtr, seL4_MessageInfo_t, seL4_CPtr, seL4_Word *,
                                   seL4_CPtr) = seL4_NBSendRecv;
seL4_MessageInfo_t (*p_nbsendwait)(seL4_CPtr, seL4_MessageInfo_t, seL4_CPtr, seL4_Word *) =
    seL4_NBSendWait;
seL4_MessageInfo_t (*p_wait)(seL4_CPtr, seL4_Word *) = seL4_Wait;
seL4_MessageInfo_t (*p_nbwait)(seL4_CPtr, seL4_Word *) = seL4_NBWait;
seL4_MessageInfo_t (*p_poll)(seL4_CPtr, seL4_Word *) = seL4_Poll;
seL4_Error (*p_configure_flags)(seL4_SchedControl, seL4_SchedContext, seL4_Time, seL4_Time,
                                seL4_Word, seL4_Word, seL4_Word) =
    seL4_SchedControl_ConfigureFlags;
seL4_Error (*p_configure)(seL4_SchedControl, seL4_SchedContext, seL4_Time, seL4_Time,
                          seL4_Word, seL4_Word) = seL4_SchedControl_Configure;
seL4_Error (*p_bind)(seL4_SchedContext, seL4_CPtr) = seL4_SchedContext_Bind;
seL4_Error (*p_unbind)(seL4_SchedContext) = seL4_SchedContext_Unbind;
seL4_Error (*p_unbind_object)(seL4_SchedContext, seL4_CPtr) = seL4_SchedContext_UnbindObject;
seL4_SchedContext_Consumed_t (*p_consumed)(seL4_SchedContext) = seL4_SchedContext_Consumed;
seL4_SchedContext_YieldTo_t (*p_yield_to)(seL4_SchedContext) = seL4_SchedContext_YieldTo;
seL4_Error (*p_tcb_configure)(seL4_TCB, seL4_CNode, seL4_Word, seL4_CPtr, seL4_Word, seL4_Word,
                              seL4_CPtr) = seL4_TCB_Configure;
seL4_Error (*p_sched_params)(seL4_TCB, seL4_TCB, seL4_Word, seL4_Word, seL4_CPtr,
                             seL4_CPtr) = seL4_TCB_SetSchedParams;
seL4_Error (*p_set_space)(seL4_TCB, seL4_CPtr, seL4_CNode, seL4_Word, seL4_CPtr,
                          seL4_Word) = seL4_TCB_SetSpace;
seL4_Error (*p_timeout_ep)(seL4_TCB, seL4_CPtr) = seL4_TCB_SetTimeoutEndpoint;
seL4_Word (*p_max_refills)(seL4_Word) = seL4_MaxExtraRefills;
#if defined(seL4_SysReply)
#error "MCS has no Reply system call"
#endif
"""


def _compile(arch: str, source: str, tmp_path: Path) -> None:
    pytest.importorskip("ziglang")
    from userland.toolchain import CFLAGS, TARGETS

    src = tmp_path / f"check_{arch}.c"
    src.write_text(source)
    cmd = [sys.executable, "-m", "ziglang", "cc", *TARGETS[arch].flags, *CFLAGS, "-Werror",
           "-c", str(src), "-o", str(tmp_path / f"check_{arch}.o")]
    proc = subprocess.run(cmd, cwd=USERLAND, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("arch", sorted(ARCHES))
def test_c_layouts_and_values_match_declaration(arch: str, tmp_path: Path) -> None:
    _compile(arch, _asserts_for(ARCHES[arch]), tmp_path)


@pytest.mark.parametrize("arch", sorted(ARCHES))
def test_mcs_layouts_and_values_match_declaration(arch: str, tmp_path: Path) -> None:
    _compile(arch, _asserts_for(ARCHES[arch], mcs=True), tmp_path)


@pytest.mark.parametrize("arch", sorted(ARCHES))
def test_mcs_system_calls_and_stubs_have_libsel4_signatures(arch: str,
                                                          tmp_path: Path) -> None:
    _compile(arch, MCS_SIGNATURES, tmp_path)


@pytest.mark.parametrize("arch", sorted(ARCHES))
def test_syscall_wrappers_have_libsel4_signatures(arch: str, tmp_path: Path) -> None:
    _compile(arch, SIGNATURES, tmp_path)


@pytest.mark.parametrize("arch", sorted(ARCHES))
def test_a_wrong_value_fails_to_compile(arch: str, tmp_path: Path) -> None:
    """The static assertions can fail: the check above is not vacuous."""
    pytest.importorskip("ziglang")
    from userland.toolchain import CFLAGS, TARGETS

    src = tmp_path / "wrong.c"
    src.write_text("#include <sel4/sel4.h>\n"
                   f'_Static_assert(seL4_SysCall == {C.Syscall.seL4_SysCall - 1}, "x");\n')
    cmd = [sys.executable, "-m", "ziglang", "cc", *TARGETS[arch].flags, *CFLAGS,
           "-c", str(src), "-o", str(tmp_path / "wrong.o")]
    proc = subprocess.run(cmd, cwd=USERLAND, capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "static assertion failed" in proc.stderr
