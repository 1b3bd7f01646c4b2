"""The capability guest programs: CNode operations, Untyped_Retype and ASID pools.

Each program (userland/tests/<name>.c) prints one ``<ID> PASS|FAIL <title>`` line per
check, then ``verdict: <n> passed, <m> failed``, and exits with the number of failures.
Every check ID listed here must appear with PASS on both architectures; a missing line
is a failure too (the program stopped early or the check was dropped).
"""

from __future__ import annotations

import pytest

from tests.conftest import ARCHES
from tests.guest.checks import assert_all_checks_pass, check_ids_in_source

EXPECTED: dict[str, list[str]] = {
    "cnodeops": [f"CNODEOP{i:04d}" for i in range(1, 32)],
    "retype": [f"RETYPE{i:04d}" for i in range(1, 32)],
    "asidpool": [f"ASIDPOOL{i:04d}" for i in range(1, 11)],
}


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("program", sorted(EXPECTED))
def test_every_check_passes(run_guest, program: str, arch: str) -> None:
    assert_all_checks_pass(run_guest(program, arch), EXPECTED[program])


@pytest.mark.parametrize("program", sorted(EXPECTED))
def test_check_ids_are_unique_and_in_order(program: str) -> None:
    """The source lists each expected ID once, in order (stable IDs, no duplicates)."""
    assert check_ids_in_source(program) == EXPECTED[program]
