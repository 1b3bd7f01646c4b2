"""The notification guest programs (userland/tests/ntfnops.c, notify.c), on both
architectures.

Same contract as ``test_caps_guests``: one ``<ID> PASS|FAIL <title>`` line per check,
then the verdict; every listed ID must report PASS and the run must halt with status 0.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import ARCHES

EXPECTED: dict[str, list[str]] = {
    "ntfnops": [f"NTFNOP{i:04d}" for i in range(1, 9)],
    "notify": [f"NOTIFY{i:04d}" for i in range(1, 6)],
}
LINE = re.compile(r"^([A-Z]+\d{4}) (PASS|FAIL) (.*)$", re.M)
VERDICT = re.compile(r"^verdict: (\d+) passed, (\d+) failed$", re.M)


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("program", sorted(EXPECTED))
def test_every_check_passes(run_guest, program: str, arch: str) -> None:
    run = run_guest(program, arch)
    results = {m.group(1): (m.group(2), m.group(3)) for m in LINE.finditer(run.output)}
    failed = {cid: text for cid, (verdict, text) in results.items() if verdict != "PASS"}
    assert not failed, "\n".join(f"{cid} {text}" for cid, text in sorted(failed.items()))
    assert set(results) == set(EXPECTED[program]), run.output
    assert VERDICT.findall(run.output) == [(str(len(EXPECTED[program])), "0")], run.output
    assert (run.result.kind, run.result.status) == ("halt", 0), run.result.message


@pytest.mark.parametrize("program", sorted(EXPECTED))
def test_check_ids_are_unique_and_in_order(program: str) -> None:
    from userland.build import USERLAND

    source = (USERLAND / "tests" / f"{program}.c").read_text()
    assert re.findall(r'\{"([A-Z]+\d{4})", ', source) == EXPECTED[program]
