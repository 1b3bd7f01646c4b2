"""The threads guest program (userland/tests/threads.c) on both architectures.

It uses the runtime's thread API (userland/runtime/thread.c) and checks, in C, the
orders seL4's scheduler gives (Resume queues at the front, Yield and time slices at the
back, a higher priority preempts), Suspend/Resume, register access, SetTLSBase and MCP
refusals. Every check ID must report PASS; the verdict line must count them all.
"""

from __future__ import annotations

import pytest

from tests.conftest import ARCHES
from tests.guest.checks import assert_all_checks_pass, check_ids_in_source

EXPECTED = [f"THREAD{i:04d}" for i in range(1, 12)]


@pytest.mark.parametrize("arch", ARCHES)
def test_every_thread_check_passes(run_guest, arch: str) -> None:
    assert_all_checks_pass(run_guest("threads", arch), EXPECTED)


def test_thread_check_ids_are_listed_once_in_order() -> None:
    assert check_ids_in_source("threads") == EXPECTED
