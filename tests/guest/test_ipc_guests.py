"""The IPC guest programs (userland/tests/ipc_*.c) on both architectures.

Each program checks, in C, values that follow from seL4's IPC rules (abi/ipc.md,
abi/errors.md): ipc_callreply (Call / ReplyRecv, message lengths, Send / Recv /
NBSend / NBRecv, badges, the caller slot, scheduling across IPC), ipc_caps (capability
transfer: grant, receive slot, unwrapping), ipc_faults (fault messages and replies).
Every check ID must report PASS, in the listed order, and the verdict must count them.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import ARCHES
from tests.guest.checks import assert_all_checks_pass, check_ids_in_source

PROGRAMS = {
    "ipc_callreply": [f"IPC{i:04d}" for i in range(1, 11)],
    "ipc_caps": [f"IPCCAP{i:04d}" for i in range(1, 8)],
    "ipc_faults": [f"IPCFLT{i:04d}" for i in range(1, 6)],
}
ORDERS = ["123", "132", "cSCSDX", "bsasbsas"]
"""The scheduling orders ipc_callreply prints (IPC0008-IPC0010), as seL4 decides them:
a receiver of higher priority runs at once when a Send wakes it, a lower one once the
sender is done; Call and ReplyRecv switch straight to the partner ahead of a ready
thread of the same priority; Resume queues at the front and Yield at the back."""


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_every_ipc_check_passes(run_guest, program: str, arch: str) -> None:
    run = run_guest(program, arch)
    assert_all_checks_pass(run, PROGRAMS[program])
    if program == "ipc_callreply":
        assert re.findall(r"^  order (\S+)$", run.output, re.M) == ORDERS


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_ipc_check_ids_are_listed_once_in_order(program: str) -> None:
    assert check_ids_in_source(program) == PROGRAMS[program]
