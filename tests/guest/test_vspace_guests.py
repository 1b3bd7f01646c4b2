"""The VSpace guest programs: frames and page tables from C, on both architectures.

``vspace`` prints one ``<ID> PASS|FAIL <title>`` line per check (checks.h); every ID
listed here must pass. The two fault programs end on a VMFault the root task cannot
handle: the run stops with the fault line and exit status 3, at the access that the
unmap (or the read-only remap) took away a moment after the address was used.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import ARCHES

CHECKS = [f"VSPACEG{i:04d}" for i in range(1, 18)]
LINE = re.compile(r"^([A-Z]+\d{4}) (PASS|FAIL) (.*)$", re.M)
VERDICT = re.compile(r"^verdict: (\d+) passed, (\d+) failed$", re.M)


@pytest.mark.parametrize("arch", ARCHES)
def test_every_vspace_check_passes(run_guest, arch: str) -> None:
    run = run_guest("vspace", arch)
    results = {m.group(1): (m.group(2), m.group(3)) for m in LINE.finditer(run.output)}
    failed = {cid: text for cid, (verdict, text) in results.items() if verdict != "PASS"}
    assert not failed, "\n".join(f"{cid} {text}" for cid, text in sorted(failed.items()))
    assert sorted(results) == CHECKS, run.output
    assert VERDICT.findall(run.output) == [(str(len(CHECKS)), "0")], run.output
    assert (run.result.kind, run.result.status) == ("halt", 0), run.result.message


def test_check_ids_are_unique_and_in_order() -> None:
    from userland.build import USERLAND

    source = (USERLAND / "tests" / "vspace.c").read_text()
    assert re.findall(r'\{"([A-Z]+\d{4})", ', source) == CHECKS


@pytest.mark.parametrize("arch", ARCHES)
def test_access_after_unmap_faults(run_guest, arch: str) -> None:
    run = run_guest("vspace_unmap_fault", arch)
    assert "mapped: 42\nunmapped\n" in run.output
    assert "should not get here" not in run.output
    assert (run.result.kind, run.result.status) == ("fault", 3), run.result.message
    assert "VMFault: read at address 0x40000000" in run.result.message


@pytest.mark.parametrize("arch", ARCHES)
def test_write_after_read_only_remap_faults(run_guest, arch: str) -> None:
    run = run_guest("vspace_readonly_fault", arch)
    assert "read-only now, still reads 7\n" in run.output
    assert "should not get here" not in run.output
    assert (run.result.kind, run.result.status) == ("fault", 3), run.result.message
    assert "VMFault: write at address 0x40000000" in run.result.message
