"""The invocation-method declaration (kernel/abi/methods.py) against the published facts.

Every declared method's computed marshalling (label, extra caps in order, each packed
parameter's MR, bit offset and width, message length, reply words) must equal what
``shared/abi/invocations.json`` says seL4's own stub generator produces. The facts file
lives beside the repository (``<repo>/../shared/abi``); without it these tests fail, so
a checkout that cannot verify the declaration does not pass silently.

The generated stubs are also compiled for each architecture against libsel4's exact
signatures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from kernel.abi.arch import Arch
from kernel.abi.labels import Condition, label_table
from kernel.abi.methods import Method, Placed, methods_for

REPO = Path(__file__).resolve().parents[2]
FACTS = REPO.parent / "shared" / "abi" / "invocations.json"
CONFIG_KEY = {Arch.RISCV64: "riscv64", Arch.AARCH64: "aarch64"}
CONDITION_TEXT = {Condition.ALWAYS: None, Condition.NON_MCS: "!defined(CONFIG_KERNEL_MCS)",
                  Condition.MCS: "defined(CONFIG_KERNEL_MCS)"}

CASES = [(arch, mcs, m) for mcs in (False, True) for arch in Arch
         for m in methods_for(arch, mcs=mcs)]


def _config_key(arch: Arch, mcs: bool) -> str:
    return CONFIG_KEY[arch] + ("-mcs" if mcs else "")


@cache
def _facts() -> dict[str, Any]:
    if not FACTS.is_file():
        pytest.fail(f"ABI facts file {FACTS} is missing: the method declaration cannot be "
                    "checked (clone the repository with shared/ beside it)")
    data: dict[str, Any] = json.loads(FACTS.read_text())
    return data


def _published(arch: Arch, method: Method, mcs: bool = False) -> dict[str, Any]:
    config = _facts()["configs"][_config_key(arch, mcs)]
    found = [m for m in config["methods"]
             if m["interface"] == method.interface and m["method"] == method.name]
    assert len(found) == 1, f"{method.c_name}: {len(found)} entries in {FACTS.name}"
    entry: dict[str, Any] = found[0]
    return entry


@pytest.mark.parametrize(("arch", "mcs", "method"), CASES,
                         ids=[f"{a.short}{'-mcs' if mcs else ''}-{m.c_name}"
                              for a, mcs, m in CASES])
def test_method_matches_published_marshalling(arch: Arch, mcs: bool, method: Method) -> None:
    pub = _published(arch, method, mcs)
    assert method.label == pub["label"]
    assert label_table(arch, mcs=mcs)[method.label] == pub["label_value"]
    assert CONDITION_TEXT[method.condition] == pub["condition"]
    assert [(i, p.name, p.c_type) for i, p in enumerate(method.extra_caps)] == [
        (c["index"], c["name"], c["type"]) for c in pub["extra_caps"]
    ]
    def placed(words: tuple[Placed, ...]) -> list[tuple[object, ...]]:
        return [(w.param.name, w.param.c_type, w.mr, w.bit, w.bits, w.param.words)
                for w in words]

    def published(params: list[dict[str, Any]]) -> list[tuple[object, ...]]:
        return [(p["name"], p["type"], p["mr"], p["bit"], p["bits"], p["words"])
                for p in params]

    assert placed(method.words) == published(pub["params"])
    assert method.length == pub["length"]
    assert placed(method.output_words) == published(pub["outputs"])


def test_every_published_tcb_and_vm_method_is_declared() -> None:
    for arch in Arch:
        declared = {m.c_name for m in methods_for(arch, mcs=False)}
        for pub in _facts()["configs"][CONFIG_KEY[arch]]["methods"]:
            name = f"{pub['interface']}_{pub['method']}"
            if pub["interface"].endswith(("_TCB", "_Page", "_PageTable", "_VSpace")):
                assert name in declared, f"{arch.short}: {name} is not declared"


def test_every_published_cnode_and_untyped_method_is_declared() -> None:
    for arch in Arch:
        declared = {m.c_name for m in methods_for(arch, mcs=False)}
        for pub in _facts()["configs"][CONFIG_KEY[arch]]["methods"]:
            name = f"{pub['interface']}_{pub['method']}"
            if pub["interface"] in ("seL4_CNode", "seL4_Untyped") or "ASID" in name:
                assert name in declared, f"{arch.short}: {name} is not declared"


def test_every_published_mcs_scheduling_and_tcb_method_is_declared() -> None:
    for arch in Arch:
        declared = {m.c_name for m in methods_for(arch, mcs=True)}
        for pub in _facts()["configs"][_config_key(arch, True)]["methods"]:
            name = f"{pub['interface']}_{pub['method']}"
            if pub["interface"].startswith(("seL4_Sched", "seL4_TCB")):
                assert name in declared, f"{arch.short} MCS: {name} is not declared"


def test_save_caller_is_absent_under_mcs() -> None:
    for arch in Arch:
        names = {m.c_name for m in methods_for(arch, mcs=True)}
        assert "seL4_CNode_SaveCaller" not in names
        assert "seL4_CNode_Copy" in names


def test_packing_shares_words_between_narrow_parameters() -> None:
    from kernel.abi.methods import Param

    m = Method("seL4_X", "Y", "CNodeCopy", (Param("a", "seL4_Bool"), Param("b", "seL4_Bool"),
                                            Param("c", "seL4_Uint8"), Param("d", "seL4_Word"),
                                            Param("e", "seL4_Uint16")))
    assert [(w.param.name, w.mr, w.bit) for w in m.words] == [
        ("a", 0, 0), ("b", 0, 1), ("c", 0, 8), ("d", 1, 0), ("e", 2, 0)]
    assert m.length == 3


# ---------------------------------------------------------------------------- compiled


SIGNATURES = """
#include <sel4/sel4.h>

seL4_Error (*p_retype)(seL4_Untyped, seL4_Word, seL4_Word, seL4_CNode, seL4_Word, seL4_Word,
                       seL4_Word, seL4_Word) = seL4_Untyped_Retype;
seL4_Error (*p_revoke)(seL4_CNode, seL4_Word, seL4_Uint8) = seL4_CNode_Revoke;
seL4_Error (*p_delete)(seL4_CNode, seL4_Word, seL4_Uint8) = seL4_CNode_Delete;
seL4_Error (*p_cancel)(seL4_CNode, seL4_Word, seL4_Uint8) = seL4_CNode_CancelBadgedSends;
seL4_Error (*p_save)(seL4_CNode, seL4_Word, seL4_Uint8) = seL4_CNode_SaveCaller;
seL4_Error (*p_copy)(seL4_CNode, seL4_Word, seL4_Uint8, seL4_CNode, seL4_Word, seL4_Uint8,
                     seL4_CapRights_t) = seL4_CNode_Copy;
seL4_Error (*p_mint)(seL4_CNode, seL4_Word, seL4_Uint8, seL4_CNode, seL4_Word, seL4_Uint8,
                     seL4_CapRights_t, seL4_Word) = seL4_CNode_Mint;
seL4_Error (*p_move)(seL4_CNode, seL4_Word, seL4_Uint8, seL4_CNode, seL4_Word,
                     seL4_Uint8) = seL4_CNode_Move;
seL4_Error (*p_mutate)(seL4_CNode, seL4_Word, seL4_Uint8, seL4_CNode, seL4_Word, seL4_Uint8,
                       seL4_Word) = seL4_CNode_Mutate;
seL4_Error (*p_rotate)(seL4_CNode, seL4_Word, seL4_Uint8, seL4_Word, seL4_CNode, seL4_Word,
                       seL4_Uint8, seL4_Word, seL4_CNode, seL4_Word,
                       seL4_Uint8) = seL4_CNode_Rotate;
seL4_Error (*p_configure)(seL4_TCB, seL4_Word, seL4_CNode, seL4_Word, seL4_CPtr, seL4_Word,
                          seL4_Word, seL4_CPtr) = seL4_TCB_Configure;
seL4_Error (*p_read_regs)(seL4_TCB, seL4_Bool, seL4_Uint8, seL4_Word,
                          seL4_UserContext *) = seL4_TCB_ReadRegisters;
seL4_Error (*p_write_regs)(seL4_TCB, seL4_Bool, seL4_Uint8, seL4_Word,
                           seL4_UserContext *) = seL4_TCB_WriteRegisters;
seL4_Error (*p_copy_regs)(seL4_TCB, seL4_TCB, seL4_Bool, seL4_Bool, seL4_Bool, seL4_Bool,
                          seL4_Uint8) = seL4_TCB_CopyRegisters;
seL4_Error (*p_sched)(seL4_TCB, seL4_TCB, seL4_Word, seL4_Word) = seL4_TCB_SetSchedParams;
seL4_Error (*p_bind)(seL4_TCB, seL4_CPtr) = seL4_TCB_BindNotification;
seL4_TCB_SetFlags_t (*p_flags)(seL4_TCB, seL4_Word, seL4_Word) = seL4_TCB_SetFlags;
#if defined(__riscv)
seL4_Error (*p_page_map)(seL4_RISCV_Page, seL4_RISCV_PageTable, seL4_Word, seL4_CapRights_t,
                         seL4_RISCV_VMAttributes) = seL4_RISCV_Page_Map;
seL4_RISCV_Page_GetAddress_t (*p_get_address)(seL4_RISCV_Page) = seL4_RISCV_Page_GetAddress;
_Static_assert(seL4_RISCV_ExecuteNever == 1, "riscv vm attributes");
seL4_Error (*p_make_pool)(seL4_RISCV_ASIDControl, seL4_Untyped, seL4_CNode, seL4_Word,
                          seL4_Uint8) = seL4_RISCV_ASIDControl_MakePool;
seL4_Error (*p_assign)(seL4_RISCV_ASIDPool, seL4_CPtr) = seL4_RISCV_ASIDPool_Assign;
_Static_assert(seL4_RISCV_4K_Page == 6, "riscv object type");
#else
seL4_Error (*p_page_map)(seL4_ARM_Page, seL4_CPtr, seL4_Word, seL4_CapRights_t,
                         seL4_ARM_VMAttributes) = seL4_ARM_Page_Map;
seL4_ARM_Page_GetAddress_t (*p_get_address)(seL4_ARM_Page) = seL4_ARM_Page_GetAddress;
seL4_Error (*p_unify)(seL4_ARM_VSpace, seL4_Word, seL4_Word) = seL4_ARM_VSpace_Unify_Instruction;
_Static_assert(seL4_ARM_Default_VMAttributes == 3, "arm vm attributes");
seL4_Error (*p_make_pool)(seL4_ARM_ASIDControl, seL4_Untyped, seL4_CNode, seL4_Word,
                          seL4_Uint8) = seL4_ARM_ASIDControl_MakePool;
seL4_Error (*p_assign)(seL4_ARM_ASIDPool, seL4_CPtr) = seL4_ARM_ASIDPool_Assign;
_Static_assert(seL4_ARM_SmallPageObject == 7, "arm object type");
#endif
_Static_assert(seL4_EndpointBits == 4 && seL4_NotificationBits == 5, "object sizes");
_Static_assert(seL4_PageTableBits == 12 && seL4_ASIDPoolBits == 12, "object sizes");
_Static_assert(seL4_LargePageBits == 21 && seL4_HugePageBits == 30, "page sizes");
_Static_assert(seL4_NilData == 0, "seL4_NilData");
"""


@pytest.mark.parametrize("arch", ["riscv64", "aarch64"])
def test_stubs_have_libsel4_signatures(arch: str, tmp_path: Path) -> None:
    pytest.importorskip("ziglang")
    from userland.toolchain import CFLAGS, TARGETS, USERLAND

    src = tmp_path / "stubs.c"
    src.write_text(SIGNATURES)
    cmd = [sys.executable, "-m", "ziglang", "cc", *TARGETS[arch].flags, *CFLAGS, "-Werror",
           "-c", str(src), "-o", str(tmp_path / "stubs.o")]
    proc = subprocess.run(cmd, cwd=USERLAND, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
