"""The notification guest programs (userland/tests/ntfnops.c, notify.c), on both
architectures.

Same contract as the other checking guests (tests/guest/checks.py): one
``<ID> PASS|FAIL <title>`` line per check, then the verdict; every listed ID must report
PASS and the run must halt with status 0.
"""

from __future__ import annotations

import pytest

from tests.conftest import ARCHES
from tests.guest.checks import assert_all_checks_pass, check_ids_in_source

EXPECTED: dict[str, list[str]] = {
    "ntfnops": [f"NTFNOP{i:04d}" for i in range(1, 9)],
    "notify": [f"NOTIFY{i:04d}" for i in range(1, 6)],
}


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("program", sorted(EXPECTED))
def test_every_check_passes(run_guest, program: str, arch: str) -> None:
    assert_all_checks_pass(run_guest(program, arch), EXPECTED[program])


@pytest.mark.parametrize("program", sorted(EXPECTED))
def test_check_ids_are_unique_and_in_order(program: str) -> None:
    assert check_ids_in_source(program) == EXPECTED[program]
