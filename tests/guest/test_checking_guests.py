"""The checking guest programs with nothing to assert beyond the contract, on both
architectures (tests/guest/checks.py: one ``<ID> PASS|FAIL <title>`` line per check,
then the verdict; every listed ID must report PASS, once and in order, and the run must
halt with status 0; a missing line is a failure too).

- Capabilities: cnodeops (CNode operations), retype (Untyped_Retype), asidpool (ASID
  pools).
- Notifications: ntfnops (Signal, Poll, Wait, badges, rights, from the root task
  alone), notify (a waiter woken by another thread, receive-on-either).
- threads: the runtime's thread API (userland/runtime/thread.c) and, in C, the orders
  seL4's scheduler gives (Resume queues at the front, Yield and time slices at the back,
  a higher priority preempts), Suspend/Resume, register access, SetTLSBase and MCP
  refusals.

Programs with more to check have their own modules (test_ipc_guests.py,
test_vspace_guests.py).
"""

from __future__ import annotations

import pytest

from tests.conftest import ARCHES
from tests.guest.checks import assert_all_checks_pass, check_ids_in_source

EXPECTED: dict[str, list[str]] = {
    "cnodeops": [f"CNODEOP{i:04d}" for i in range(1, 32)],
    "retype": [f"RETYPE{i:04d}" for i in range(1, 32)],
    "asidpool": [f"ASIDPOOL{i:04d}" for i in range(1, 11)],
    "ntfnops": [f"NTFNOP{i:04d}" for i in range(1, 9)],
    "notify": [f"NOTIFY{i:04d}" for i in range(1, 6)],
    "threads": [f"THREAD{i:04d}" for i in range(1, 12)],
    "domains": [f"DOMAIN{i:04d}" for i in range(1, 8)],
    "fpu": [f"FPU{i:04d}" for i in range(1, 5)],
}


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("program", sorted(EXPECTED))
def test_every_check_passes(run_guest, program: str, arch: str) -> None:
    assert_all_checks_pass(run_guest(program, arch), EXPECTED[program])


@pytest.mark.parametrize("program", sorted(EXPECTED))
def test_check_ids_are_unique_and_in_order(program: str) -> None:
    """The source lists each expected ID once, in order (stable IDs, no duplicates)."""
    assert check_ids_in_source(program) == EXPECTED[program]
