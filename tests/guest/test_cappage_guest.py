"""The capability-page guest (userland/tests/cappage.c, with cappage_client.c), on both
architectures: capsule's capability-page extension (not seL4) used by real programs.

Asserted: every check passes (tests/guest/checks.py) — a server shares a pool of
capabilities read-only with two client processes, which load and invoke them and cannot
store into it; a capability stack pushes and pops at addresses; a weak mapping hands out
a read-only, weak CNode cap and a null endpoint cap; a data read of a capability page and
a capability load from a data page each reach a handler that fixes the mapping and
resumes the thread. The kernel's mapping records at the end match the caps (the
invariant checker ran after every kernel entry). Without the extension the first step is
refused as seL4 refuses an unknown object type.
"""

from __future__ import annotations

import pytest

from kernel.config import KernelConfig
from kernel.model.caps import CapPageCap
from kernel.model.cnode import CNode
from tests.conftest import ARCHES
from tests.guest.checks import LINE, assert_all_checks_pass, check_ids_in_source

EXPECTED = [f"CAPPGG{i:04d}" for i in range(1, 5)]


def _cap_pages(kernel: object) -> list[CapPageCap]:
    objects = kernel.objects.values()  # type: ignore[attr-defined]
    return [s.cap for o in objects if isinstance(o, CNode) for s in o.slots
            if isinstance(s.cap, CapPageCap)]


@pytest.mark.parametrize("arch", ARCHES)
def test_the_capability_page_programs_pass(run_guest, arch: str) -> None:  # type: ignore[no-untyped-def]
    run = run_guest("cappage", arch)
    assert run.session.kernel.config.cap_pages
    assert_all_checks_pass(run, EXPECTED)
    kernel = run.session.kernel
    mapped = {(c.mapped_asid, c.mapped_vaddr): c for c in _cap_pages(kernel) if c.is_mapped}
    assert set(mapped) == set(kernel.cap_page_maps)
    # the pool: the server's mapping and the two clients' read-only ones
    pool = [k for k in mapped if k[1] == 0x61000000]
    assert len(pool) == 3 and len({mapped[k].paddr for k in pool}) == 1
    assert sorted(mapped[k].map_read_only for k in pool) == [False, True, True]
    assert any(c.map_weak for c in mapped.values())


@pytest.mark.parametrize("arch", ARCHES)
def test_without_the_extension_the_type_is_refused_as_seL4_refuses_it(  # type: ignore[no-untyped-def]
        run_guest, arch: str) -> None:
    run = run_guest("cappage", arch, config=KernelConfig())
    lines = LINE.findall(run.output)
    assert [line[1] for line in lines] == ["FAIL"] * 4
    assert "returned InvalidArgument, expected NoError" in lines[0][2]
    assert not _cap_pages(run.session.kernel) and not run.session.kernel.cap_page_maps


def test_check_ids_are_unique_and_in_order() -> None:
    assert check_ids_in_source("cappage") == EXPECTED
