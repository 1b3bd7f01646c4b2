"""The capability guest programs: CNode operations, Untyped_Retype and ASID pools.

Each program (userland/tests/<name>.c) prints one ``<ID> PASS|FAIL <title>`` line per
check, then ``verdict: <n> passed, <m> failed``, and exits with the number of failures.
Every check ID listed here must appear with PASS on both architectures; a missing line
is a failure too (the program stopped early or the check was dropped).
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import ARCHES

EXPECTED: dict[str, list[str]] = {
    "cnodeops": [f"CNODEOP{i:04d}" for i in range(1, 32)],
    "retype": [f"RETYPE{i:04d}" for i in range(1, 32)],
    "asidpool": [f"ASIDPOOL{i:04d}" for i in range(1, 11)],
}
LINE = re.compile(r"^([A-Z]+\d{4}) (PASS|FAIL) (.*)$", re.M)
VERDICT = re.compile(r"^verdict: (\d+) passed, (\d+) failed$", re.M)


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("program", sorted(EXPECTED))
def test_every_check_passes(run_guest, program: str, arch: str) -> None:
    run = run_guest(program, arch)
    results = {m.group(1): (m.group(2), m.group(3)) for m in LINE.finditer(run.output)}
    failed = {cid: text for cid, (verdict, text) in results.items() if verdict != "PASS"}
    missing = [cid for cid in EXPECTED[program] if cid not in results]
    assert not failed, "\n".join(f"{cid} {text}" for cid, text in sorted(failed.items()))
    assert not missing, f"checks that did not report: {missing}\n{run.output}"
    assert set(results) == set(EXPECTED[program]), "unexpected check IDs in the output"
    verdicts = VERDICT.findall(run.output)
    assert verdicts == [(str(len(EXPECTED[program])), "0")], run.output
    assert (run.result.kind, run.result.status) == ("halt", 0), run.result.message


@pytest.mark.parametrize("program", sorted(EXPECTED))
def test_check_ids_are_unique_and_in_order(program: str) -> None:
    """The source lists each expected ID once, in order (stable IDs, no duplicates)."""
    from userland.build import USERLAND

    source = (USERLAND / "tests" / f"{program}.c").read_text()
    ids = re.findall(r'\{"([A-Z]+\d{4})", ', source)
    assert ids == EXPECTED[program]
