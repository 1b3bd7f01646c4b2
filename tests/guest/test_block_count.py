"""The block counter (``emulator.blockcount``) against Unicorn's own counter.

Both must give the same run: output, how it stopped, instructions, kernel entries and
ticks. The guests cover traps inside blocks (faults, illegal and counter instructions,
FP traps, misaligned pcs), timer ticks inside blocks (97-instruction slices: most end
inside one; quiet ones are taken late, the others by running part of a block), MCS
deadlines, stops after any count and single steps. The native hook is built into a
temporary folder; without a C compiler these tests skip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from bootimage import build_image, load_image
from emulator.blockcount import ENABLE_VARIABLE
from emulator.native.build import BuildError, build_block_library
from emulator.session import Session
from kernel.config import KernelConfig
from tests.cli.test_cli_run import capsule
from tests.conftest import ARCHES, COMPILED
from tests.guest.test_mcs_guests import IPC, SCHED, _build
from userland.build import image_config

GUESTS = ["bootinfo", "threads", "ipc", "ipc_callreply", "ipc_caps", "ipc_faults", "notify",
          "fault_illegal", "fault_unmapped", "unknown_syscall", "pc_alignment", "vspace",
          "vspace_readonly_fault", "vspace_unmap_fault", "fpu", "counters", "retype",
          "spawn", "macro", "device_faults", "domains"]
"""Guests that run to their end in a few million instructions."""

FINE_TICKS = ["threads", "ipc_faults", "fpu", "counters", "spawn", "macro", "domains",
              "pc_alignment"]


@dataclass(frozen=True)
class Outcome:
    output: str
    kind: str
    status: int
    message: str
    instructions: int | None
    entries: int
    ticks: int


@pytest.fixture(scope="module")
def block_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return build_block_library(tmp_path_factory.mktemp("native") / "_blockcount.so")
    except BuildError as error:
        pytest.skip(f"cannot build the native block hook: {error}")


def _boot(data: bytes, library: Path | None, monkeypatch: pytest.MonkeyPatch,
          out: bytearray) -> Session:
    if library is None:
        monkeypatch.setenv(ENABLE_VARIABLE, "0")
    else:
        monkeypatch.setenv(ENABLE_VARIABLE, str(library))
    loaded = load_image(data)
    session = Session.boot(loaded.root, loaded.config, out.append)
    assert (session.machine._blocks is not None) == (library is not None)
    return session


def _outcome(data: bytes, library: Path | None, monkeypatch: pytest.MonkeyPatch,
             max_instructions: int = 20_000_000) -> Outcome:
    out = bytearray()
    session = _boot(data, library, monkeypatch, out)
    result = session.run(max_instructions)
    return Outcome(out.decode(errors="replace"), result.kind, result.status, result.message,
                   result.instructions, result.kernel_entries, result.ticks)


def _image(guest_elves: dict[str, dict[str, Path]], name: str, arch: str,
           config: KernelConfig | None = None) -> bytes:
    return build_image(guest_elves[arch][name].read_bytes(), config or image_config(name))


def _same_run(data: bytes, library: Path, monkeypatch: pytest.MonkeyPatch,
              max_instructions: int = 20_000_000) -> Outcome:
    by_unicorn = _outcome(data, None, monkeypatch, max_instructions)
    by_block = _outcome(data, library, monkeypatch, max_instructions)
    assert by_block == by_unicorn
    assert by_unicorn.instructions is not None
    return by_unicorn


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("name", GUESTS)
def test_every_guest_runs_the_same_with_either_counter(
        guest_elves, block_library: Path, monkeypatch: pytest.MonkeyPatch,
        name: str, arch: str) -> None:
    _same_run(_image(guest_elves, name, arch), block_library, monkeypatch)


@pytest.mark.parametrize("name", GUESTS)
def test_riscv_blocks_are_counted_from_their_code_as_unicorn_counts_them(
        guest_elves, block_library: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """The hook counts a RISC-V block from its code, read through the installed page
    tables; checking, it also asks Unicorn for every block it decoded. Every count
    agrees, and the walk reaches nearly every block (a stale root, missed at some
    address-space switch, would read another space's code or none)."""
    session = _boot(_image(guest_elves, name, "riscv64"), library=block_library,
                    monkeypatch=monkeypatch, out=bytearray())
    assert session.machine._blocks is not None
    state = session.machine._blocks.state
    state.check = 1
    session.run(20_000_000)
    assert state.disagreed == 0
    assert state.asked <= 2 + 0.03 * (state.decoded + state.asked)


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("name", FINE_TICKS)
def test_ticks_inside_blocks_fall_on_the_same_instructions(
        guest_elves, block_library: Path, monkeypatch: pytest.MonkeyPatch,
        name: str, arch: str) -> None:
    # One tick every 97 instructions and slices of one or three ticks: most ticks fall
    # inside a block; with a one-tick slice every tick switches threads (none is quiet).
    for slice_ticks in (1, 3):
        config = replace(image_config(name), tick_instructions=97, time_slice_ticks=slice_ticks)
        run = _same_run(_image(guest_elves, name, arch, config), block_library, monkeypatch)
        assert run.ticks > 20


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("program", [IPC, SCHED], ids=["mcs_ipc", "mcs_sched"])
def test_mcs_deadlines_fall_on_the_same_instructions(
        block_library: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        program: Path, arch: str) -> None:
    data = build_image(_build(arch, tmp_path, program).read_bytes(), KernelConfig(mcs=True))
    _same_run(data, block_library, monkeypatch)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_run_stops_after_exactly_the_count_asked(
        guest_elves, block_library: Path, monkeypatch: pytest.MonkeyPatch, arch: str) -> None:
    data = _image(guest_elves, "macro", arch)
    for limit in (1, 2, 3, 5, 8, 13, 997, 10_001, 123_457):
        run = _same_run(data, block_library, monkeypatch, limit)
        assert (run.kind, run.instructions) == ("limit", limit)


@pytest.mark.parametrize("arch", ARCHES)
def test_single_steps_visit_the_same_pcs(
        guest_elves, block_library: Path, monkeypatch: pytest.MonkeyPatch, arch: str) -> None:
    data = _image(guest_elves, "threads", arch)

    def steps(library: Path | None) -> list[tuple[int, int | None, int]]:
        session = _boot(data, library, monkeypatch, bytearray())
        machine = session.machine
        seen = []
        for _ in range(400):
            result = session.run(1)
            seen.append((machine.uc.reg_read(machine.cpu.pc_reg), result.instructions,
                         result.kernel_entries))
        return seen

    by_unicorn = steps(None)
    assert steps(block_library) == by_unicorn
    assert all(instructions == 1 for _, instructions, _ in by_unicorn)


def test_an_unloadable_library_is_refused_in_one_line(
        guest_elves, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENABLE_VARIABLE, str(tmp_path / "missing.so"))
    loaded = load_image(_image(guest_elves, "bootinfo", "riscv64"))
    with pytest.raises(Exception, match="cannot load the block counter") as raised:
        Session.boot(loaded.root, loaded.config, bytearray().append)
    assert "\n" not in str(raised.value)


def test_the_compiled_build_counts_by_block_unless_told_not_to(
        guest_elves, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the variable unset, the compiled build (whose library ``make compiled`` puts
    beside the module) counts by block and the pure build with Unicorn's counter; ``0``
    means Unicorn's counter in both."""
    loaded = load_image(_image(guest_elves, "bootinfo", "riscv64"))
    monkeypatch.delenv(ENABLE_VARIABLE, raising=False)
    default = Session.boot(loaded.root, loaded.config, bytearray().append)
    assert (default.machine._blocks is not None) == COMPILED
    monkeypatch.setenv(ENABLE_VARIABLE, "0")
    told = Session.boot(loaded.root, loaded.config, bytearray().append)
    assert told.machine._blocks is None


@pytest.mark.parametrize("arch", ARCHES)
def test_capsule_run_gives_the_same_output_counts_and_trace_with_either_counter(
        guest_elves, block_library: Path, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, arch: str) -> None:
    """Through ``capsule run``: its faults are reported by an observer that leaves
    again (so later ticks are taken late, untraced); traced, every tick is taken on
    time. Output, counts and the JSON trace are the same under both counters and
    whatever the hash seed."""
    config = replace(image_config("ipc_faults"), tick_instructions=97, time_slice_ticks=3)
    image = tmp_path / "ipc_faults.img"
    image.write_bytes(_image(guest_elves, "ipc_faults", arch, config))
    runs = {}
    for counter, seed in (("0", "0"), (str(block_library), "1")):  # hash seeds differ too
        monkeypatch.setenv(ENABLE_VARIABLE, counter)
        monkeypatch.setenv("PYTHONHASHSEED", seed)
        trace = tmp_path / f"trace-{len(runs)}.json"
        plain = capsule("run", "--stats", str(image))
        traced = capsule("run", "--stats", "--trace-json", "--trace-file", str(trace), str(image))
        runs[counter] = (plain.returncode, plain.stdout, plain.stderr,
                         traced.returncode, traced.stdout, traced.stderr, trace.read_text())
    by_unicorn, by_block = runs.values()
    assert by_block == by_unicorn
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    again = capsule("run", "--stats", str(image))
    assert (again.returncode, again.stdout, again.stderr) == by_block[:3]
    assert by_unicorn[0] == 0
    ticks = re.search(r"(\d+) ticks", by_unicorn[2])
    assert ticks is not None and int(ticks.group(1)) > 20
    assert by_unicorn[6].count("\n") > 100  # the trace has the run's entries
