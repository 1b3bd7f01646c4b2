"""``capsule run --kernel-log`` / ``capsule debug --kernel-log``: seL4's debug-kernel lines
on stderr for the guest's refused invocations and unhandled faults, and nothing new
without the option.

Expected lines come from the guests' sources: cnodeops.c's copy_into_full_slot,
copy_from_empty_slot and copy_depth_zero (seL4_CNode_Copy refused with DeleteFirst,
FailedLookup of the source with 64 bits left, RangeError [1..64]) and ipc_faults.c's
"orphan" thread (an illegal instruction at orphan_illegal_at, fault endpoint CPtr 0).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bootimage import build_image
from kernel.config import KernelConfig
from tests.cli.test_cli_run import capsule
from tests.cli.test_cli_trace import symbols
from tests.conftest import ARCHES

USER_ERROR = re.compile(r'<<seL4\(CPU 0\) \[(\S+) T0x[0-9a-f]+ "([^"]+)" @([0-9a-f]+)\]: (.*)\.>>')
"""seL4's userError line: decoder, TCB address, thread name, pc (hex without 0x), message."""


@pytest.fixture(scope="module")
def images(guest_elves: dict[str, dict[str, Path]],
           tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    out = tmp_path_factory.mktemp("klog")
    paths = {}
    for arch in ARCHES:
        for name in ("cnodeops", "ipc_faults"):
            path = out / f"{name}-{arch}.img"
            path.write_bytes(build_image(guest_elves[arch][name].read_bytes(), KernelConfig()))
            paths[(name, arch)] = path
    return paths


@pytest.mark.parametrize("arch", ARCHES)
def test_refused_invocations_are_logged(images: dict[tuple[str, str], Path], arch: str) -> None:
    plain = capsule("run", str(images[("cnodeops", arch)]))
    logged = capsule("run", "--kernel-log", str(images[("cnodeops", arch)]))
    assert plain.returncode == logged.returncode == 0, logged.stderr[-2000:]
    assert logged.stdout == plain.stdout
    assert "<<seL4" not in plain.stderr and "Caught" not in plain.stderr
    lines = logged.stderr.splitlines()
    extra = [line for line in lines if line not in plain.stderr.splitlines()]
    matches = [USER_ERROR.fullmatch(line) for line in extra]
    assert extra and all(matches), extra
    messages = [m.group(4) for m in matches if m is not None]
    assert all(m.group(1) == "decode_cnode_invocation" and m.group(2) == "rootserver"
               for m in matches if m is not None and m.group(4).startswith("CNodeCap: "))
    # The first three refusals of cnodeops.c, in its order.
    first = messages.index("CNodeCap: CNodeCopy: DeleteFirst")
    assert messages[first:first + 3] == [
        "CNodeCap: CNodeCopy: DeleteFirst",
        "CNodeCap: CNodeCopy: FailedLookup of the source: MissingCapability (64 bits left)",
        "CNodeCap: CNodeCopy: RangeError [1..64]",
    ]
    assert "CNodeCap: CNodeCopy: IllegalOperation" in messages


@pytest.mark.parametrize("arch", ARCHES)
def test_a_fault_without_handler_is_logged(images: dict[tuple[str, str], Path],
                                           guest_elves: dict[str, dict[str, Path]],
                                           arch: str) -> None:
    at = symbols(guest_elves[arch]["ipc_faults"])["orphan_illegal_at"]
    plain = capsule("run", str(images[("ipc_faults", arch)]))
    logged = capsule("run", "--kernel-log", str(images[("ipc_faults", arch)]))
    assert plain.returncode == logged.returncode == 0, logged.stderr[-2000:]
    assert plain.stderr == ""
    caught = [line for line in logged.stderr.splitlines() if line.startswith("Caught ")]
    assert len(caught) == 1
    assert re.fullmatch(
        r"Caught cap fault in send phase at address 0x0 while trying to handle: "
        r"user exception 0x[0-9a-f]+ code 0x[0-9a-f]+ "
        rf'in thread 0x[0-9a-f]+ "orphan" at address {at:#x}', caught[0]), caught[0]


def test_debug_takes_the_option_too(images: dict[tuple[str, str], Path],
                                    tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_text("continue\n")
    plain = capsule("debug", "--script", str(script), str(images[("ipc_faults", "riscv64")]))
    logged = capsule("debug", "--kernel-log", "--script", str(script),
                     str(images[("ipc_faults", "riscv64")]))
    assert plain.returncode == logged.returncode == 0, logged.stderr[-2000:]
    assert "Caught " not in plain.stderr
    assert [line for line in logged.stderr.splitlines() if line.startswith("Caught ")] == [
        line for line in capsule("run", "--kernel-log", str(images[("ipc_faults", "riscv64")]))
        .stderr.splitlines() if line.startswith("Caught ")]
