"""The threads guest program (userland/tests/threads.c) on both architectures.

It uses the runtime's thread API (userland/runtime/thread.c) and checks, in C, the
orders seL4's scheduler gives (Resume queues at the front, Yield and time slices at the
back, a higher priority preempts), Suspend/Resume, register access, SetTLSBase and MCP
refusals. Every check ID must report PASS; the verdict line must count them all.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import ARCHES

EXPECTED = [f"THREAD{i:04d}" for i in range(1, 12)]
LINE = re.compile(r"^([A-Z]+\d{4}) (PASS|FAIL) (.*)$", re.M)


@pytest.mark.parametrize("arch", ARCHES)
def test_every_thread_check_passes(run_guest, arch: str) -> None:
    run = run_guest("threads", arch)
    results = {m.group(1): (m.group(2), m.group(3)) for m in LINE.finditer(run.output)}
    failed = {cid: text for cid, (verdict, text) in results.items() if verdict != "PASS"}
    assert not failed, "\n".join(f"{cid} {text}" for cid, text in sorted(failed.items()))
    assert list(results) == EXPECTED, run.output
    assert f"verdict: {len(EXPECTED)} passed, 0 failed" in run.output
    assert (run.result.kind, run.result.status) == ("halt", 0), run.result.message


def test_thread_check_ids_are_listed_once_in_order() -> None:
    from userland.build import USERLAND

    source = (USERLAND / "tests" / "threads.c").read_text()
    assert re.findall(r'\{"([A-Z]+\d{4})", ', source) == EXPECTED
