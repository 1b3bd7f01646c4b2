"""Snapshots at any instruction: a property over N, on both architectures.

spawn is multi-threaded and multi-address-space (the root task and two children in
VSpaces of their own, an endpoint between them, a shared frame, faults handled by the
root task). For any N before its end, a snapshot taken after N instructions, written to
bytes, read back and restored into a fresh machine and kernel runs on to the end of the
uninterrupted run: the same output (before and after the snapshot together), status,
instruction count, kernel entries and ticks, with the invariant checker on from the
restore. (tests/cli/test_cli_snapshot.py does the same across processes.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from emulator.machine import RunResult
from emulator.snapshot import decode_snapshot, encode_snapshot, restore_snapshot, snapshot_of
from kernel.views.invariants import enable_invariant_checks
from tests.conftest import ARCHES
from tests.emulator.test_snapshot_file import boot
from tests.fuzzing import fuzzed

PROGRAM = "spawn"
_WHOLE: dict[str, tuple[RunResult, bytes, int]] = {}


def whole_run(elf: Path) -> tuple[RunResult, bytes, int]:
    """The uninterrupted run: its result, output and instruction count (kept per ELF)."""
    key = str(elf)
    if key not in _WHOLE:
        session, out = boot(elf, PROGRAM)
        end = session.run()
        assert end.kind == "halt" and session.instructions is not None
        _WHOLE[key] = (end, bytes(out), session.instructions)
    return _WHOLE[key]


@pytest.mark.parametrize("arch", ARCHES)
@fuzzed(12)
@given(fraction=st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
@example(fraction=0.0)
def test_a_snapshot_at_any_instruction_runs_on_to_the_same_end(
        guest_elves: dict[str, dict[str, Path]], arch: str, fraction: float) -> None:
    elf = guest_elves[arch][PROGRAM]
    end, whole_out, total = whole_run(elf)
    at = int(fraction * total)
    first, first_out = boot(elf, PROGRAM)
    paused = first.run(at)
    assert paused.kind == "limit" and first.instructions == at
    data = encode_snapshot(snapshot_of(first, elf.read_bytes(), PROGRAM))

    later = bytearray()
    restored = restore_snapshot(decode_snapshot(data), later.append)
    enable_invariant_checks(restored.kernel)
    result = restored.run()
    assert (result.kind, result.status) == (end.kind, end.status)
    assert bytes(first_out) + bytes(later) == whole_out == restored.output
    assert restored.instructions == total
    assert (result.kernel_entries, result.ticks) == (end.kernel_entries, end.ticks)
