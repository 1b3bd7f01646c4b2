"""The contract of the checking guest programs (userland/tests/*.c built on checks.h).

Such a program prints one ``<ID> PASS|FAIL <title>`` line per check, in the order of its
check table, then ``verdict: <n> passed, <m> failed``, and exits with the number of
failures. :func:`assert_all_checks_pass` holds a run to that contract for a list of
expected IDs; :func:`check_ids_in_source` reads the IDs the program's source lists, so a
test can pin them (stable IDs, each once, in order).
"""

from __future__ import annotations

import re

from tests.conftest import GuestRun

LINE = re.compile(r"^([A-Z]+\d{4}) (PASS|FAIL) (.*)$", re.M)
VERDICT = re.compile(r"^verdict: (\d+) passed, (\d+) failed$", re.M)
SOURCE_ID = re.compile(r'\{"([A-Z]+\d{4})", ')


def assert_all_checks_pass(run: GuestRun, expected: list[str]) -> None:
    """Every ID in ``expected`` reports PASS, exactly once and in that order, nothing
    else reports, the single verdict line counts them all with no failure, and the
    program halts with status 0. A missing line fails too (the program stopped early
    or the check was dropped)."""
    lines = LINE.findall(run.output)
    failed = [f"{cid} {text}" for cid, verdict, text in lines if verdict != "PASS"]
    assert not failed, "\n".join(failed)
    reported = [cid for cid, _, _ in lines]
    missing = [cid for cid in expected if cid not in reported]
    assert not missing, f"checks that did not report: {missing}\n{run.output}"
    assert reported == expected, f"unexpected, repeated or reordered check IDs\n{run.output}"
    assert VERDICT.findall(run.output) == [(str(len(expected)), "0")], run.output
    assert (run.result.kind, run.result.status) == ("halt", 0), run.result.message


def check_ids_in_source(program: str) -> list[str]:
    """The check IDs userland/tests/<program>.c lists in its check table, in order."""
    from userland.build import USERLAND

    return SOURCE_ID.findall((USERLAND / "tests" / f"{program}.c").read_text())
