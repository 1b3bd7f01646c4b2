"""The machine's debugging hooks: breakpoints and pauses change nothing the guest does."""

from __future__ import annotations

import pytest
from elftools.elf.elffile import ELFFile

from bootimage import build_image, load_image
from emulator.gdb_target import GdbTarget, TargetError
from emulator.session import Session
from kernel.config import KernelConfig
from tests.conftest import ARCHES


@pytest.fixture
def hello(guest_elves):  # type: ignore[no-untyped-def]
    def boot(arch: str) -> tuple[Session, bytearray, dict[str, int]]:
        elf = guest_elves[arch]["hello"]
        loaded = load_image(build_image(elf.read_bytes(), KernelConfig(tick_instructions=100)))
        out = bytearray()
        with elf.open("rb") as f:
            table = ELFFile(f).get_section_by_name(".symtab")
            syms = {s.name: s["st_value"] for s in table.iter_symbols()}  # type: ignore[union-attr]
        return Session.boot(loaded.root, loaded.config, out.append), out, syms

    return boot


@pytest.mark.parametrize("arch", ARCHES)
def test_breakpoint_pauses_before_the_instruction_and_counts_stay_exact(hello, arch: str) -> None:  # type: ignore[no-untyped-def]
    whole, whole_out, syms = hello(arch)
    reference = whole.run()
    session, out, _ = hello(arch)
    machine = session.machine
    assert machine.add_breakpoint(syms["main"]) and not machine.add_breakpoint(syms["main"])
    first = session.run()
    assert first.kind == "pause" and first.breakpoint == syms["main"]
    assert machine.save_context()[0] == syms["main"]
    step = session.run(1)  # starts on the breakpoint: runs it instead of stopping again
    assert step.kind == "limit" and step.instructions == 1
    assert machine.remove_breakpoint(syms["main"]) and not machine.remove_breakpoint(syms["main"])
    rest = session.run()
    assert rest.kind == "halt" and out == whole_out
    counts = [first.instructions, step.instructions, rest.instructions]
    assert None not in counts and sum(c for c in counts if c is not None) == reference.instructions
    assert session.kernel.ticks == whole.kernel.ticks  # the time slices did not move


@pytest.mark.parametrize("arch", ARCHES)
def test_target_memory_is_the_threads_vspace_and_errors_change_nothing(hello, arch: str) -> None:  # type: ignore[no-untyped-def]
    session, _, syms = hello(arch)
    target = GdbTarget(session)
    [(number, tcb)] = target.threads()
    assert number == 1 and tcb.name == "rootserver"
    code = target.read_memory(tcb, syms["main"], 8)
    with pytest.raises(TargetError) as error:
        target.read_memory(tcb, 0x10, 4)
    assert error.value.errno == 14
    with pytest.raises(TargetError):
        target.write_memory(tcb, 0x10, b"\x00")
    assert target.read_memory(tcb, syms["main"], 8) == code  # the refused write changed nothing
    target.write_memory(tcb, syms["main"], code[::-1])
    assert target.read_memory(tcb, syms["main"], 8) == code[::-1]
