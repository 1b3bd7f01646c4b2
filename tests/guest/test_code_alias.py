"""Code a guest rewrites and runs again (userland/tests/code_alias.c), through one
mapping of its frame and through two.

Through two mappings capsule runs the old code: Unicorn 2.1.4 notices stores to
translated code only through the virtual page it was translated from (README, "What
works, and what does not yet"; bench/README.md says why). That failure is expected here
strictly, so that whoever fixes it is told to make the check an ordinary one.
"""

from __future__ import annotations

import pytest

from tests.conftest import ARCHES
from tests.guest.checks import LINE, check_ids_in_source


def _verdicts(output: str) -> dict[str, tuple[str, str]]:
    return {cid: (verdict, text) for cid, verdict, text in LINE.findall(output)}


def test_the_check_ids_are_the_two_cases() -> None:
    assert check_ids_in_source("code_alias") == ["CODE0001", "CODE0002"]


@pytest.mark.parametrize("arch", ARCHES)
def test_code_rewritten_through_its_one_mapping_runs_as_rewritten(run_guest, arch: str) -> None:
    run = run_guest("code_alias", arch)
    verdicts = _verdicts(run.output)
    assert verdicts["CODE0001"][0] == "PASS", run.output
    assert set(verdicts) == {"CODE0001", "CODE0002"}, run.output


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="Unicorn 2.1.4 tracks translated code by virtual page: a store "
                   "through another mapping of the frame goes unnoticed")
@pytest.mark.parametrize("arch", ARCHES)
def test_code_rewritten_through_a_second_mapping_runs_as_rewritten(run_guest, arch: str) -> None:
    run = run_guest("code_alias", arch)
    assert _verdicts(run.output)["CODE0002"][0] == "PASS", run.output
