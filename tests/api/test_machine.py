"""capsule's Python API (capsule.Machine) on real guests, both architectures: stop
conditions, hooks, registers, memory through a VSpace, caps, threads, faults, errors.

The README walk-through's prog.c (fixture ``walkthrough``) and the guest programs of
userland/tests (fixture ``guest_elves``) are the guests; expectations come from the
guests' own behaviour (their output, the ELF symbol table read here with pyelftools, the
kernel's trace), not from capsule's internals.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

import capsule
from bootimage import build_image
from kernel.config import KernelConfig
from tests.conftest import ARCHES
from userland.build import image_config


def load(walkthrough: dict[str, Path], arch: str) -> capsule.Machine:
    return capsule.Machine.load(walkthrough[arch] / "prog.img")


def guest(guest_elves: dict[str, dict[str, Path]], name: str, arch: str) -> capsule.Machine:
    image = build_image(guest_elves[arch][name].read_bytes(), image_config(name))
    return capsule.Machine.from_bytes(image)


def elf_symbol(elf: bytes, name: str) -> int:
    """``name``'s address, from the ELF's symbol table (pyelftools, independently of the API)."""
    symtab = ELFFile(BytesIO(elf)).get_section_by_name(".symtab")
    assert isinstance(symtab, SymbolTableSection)
    (symbol,) = symtab.get_symbol_by_name(name)
    return int(symbol["st_value"])


# --- stop conditions ----------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHES)
def test_stop_after_the_first_mint_shows_the_badged_cap_in_its_slot(walkthrough, arch: str) -> None:
    machine = load(walkthrough, arch)
    stop = machine.run(until=capsule.AfterInvocation("CNodeMint"))
    assert stop.kind is capsule.StopKind.CONDITION
    assert stop.condition == capsule.AfterInvocation("CNodeMint")
    assert stop.thread == "rootserver" and not stop.ended
    event = stop.syscall
    assert event is not None and event.syscall == "Call" and event.cap == "cnode_cap"
    assert event.decoded is not None and event.decoded.startswith("CNodeInsert(")
    assert "badge=0x42" in event.decoded and event.text.startswith("#2 rootserver Call(")
    slot = event.args["dest_index"]
    assert isinstance(slot, int)
    cap = machine.cap(slot)
    assert cap is not None and (cap.type, cap.badge) == ("endpoint", 0x42)
    # Nothing printed yet: the stop came right after the mint, before the printf.
    assert machine.output == b""
    machine.run()
    assert machine.output.decode().endswith(f"in slot {slot}.\n")


@pytest.mark.parametrize("arch", ARCHES)
def test_a_thread_filter_and_a_cap_type_filter(walkthrough, arch: str) -> None:
    machine = load(walkthrough, arch)
    stop = machine.run(until=[capsule.AfterSyscall(thread="nobody"),
                              capsule.AfterSyscall(cap="cnode_cap")])
    assert stop.syscall is not None and stop.syscall.label == "CNodeMint"
    assert stop.condition == capsule.AfterSyscall(cap="cnode_cap")


@pytest.mark.parametrize("arch", ARCHES)
def test_pausing_at_every_kernel_entry_changes_nothing(walkthrough, arch: str) -> None:
    straight = load(walkthrough, arch)
    end = straight.run()
    paused = load(walkthrough, arch)
    stops = 0
    while not paused.run(until=capsule.AfterInstructions(97)).ended:
        stops += 1
    assert stops == end.instructions // 97
    assert (paused.output, paused.instructions) == (straight.output, end.instructions)


@pytest.mark.parametrize("arch", ARCHES)
def test_instruction_counts_are_exact_and_max_instructions_is_a_limit(walkthrough, arch: str) -> None:
    machine = load(walkthrough, arch)
    assert machine.run(until=capsule.AfterInstructions(10)).instructions == 10
    stop = machine.run(until=capsule.AfterInstructions(50), max_instructions=20)
    assert (stop.kind, stop.condition, stop.instructions) == (capsule.StopKind.LIMIT, None, 30)
    stop = machine.run(until=capsule.AfterInstructions(5), max_instructions=20)
    assert (stop.kind, stop.instructions) == (capsule.StopKind.CONDITION, 35)


@pytest.mark.parametrize("arch", ARCHES)
def test_at_address_stops_before_the_instruction_and_moves_on(walkthrough, arch: str) -> None:
    machine = load(walkthrough, arch)
    printf = elf_symbol(machine.elf, "printf")
    stop = machine.run(until=capsule.AtAddress(printf))
    assert stop.pc == printf == machine.registers()["pc"]
    assert machine.output == b""  # printf has not run
    assert machine.run(until=capsule.AtAddress(printf)).ended  # called once: on to the end
    assert machine.output.startswith(b"Hello!")


@pytest.mark.parametrize("arch", ARCHES)
def test_a_thread_switch_and_another_threads_registers(guest_elves, arch: str) -> None:
    machine = guest(guest_elves, "threads", arch)
    stop = machine.run(until=capsule.ThreadScheduled("one"))
    assert stop.kind is capsule.StopKind.CONDITION and stop.thread == "one"
    one = machine.thread("one")
    assert one.current and one.priority == 100
    root = machine.thread("rootserver")
    assert not root.current and root.state in ("Running", "Restart")
    # The new thread starts in the runtime's trampoline with its struct thread in a0/x0.
    arg = machine.registers("one")["a0" if arch == "riscv64" else "x0"]
    threads = elf_symbol(machine.elf, "threads")
    assert arg == threads
    assert machine.registers(one) == machine.registers()
    assert machine.run(until=capsule.ThreadScheduled("rootserver")).thread == "rootserver"


@pytest.mark.parametrize("arch", ARCHES)
def test_at_address_with_a_thread_ignores_the_other_threads(guest_elves, arch: str) -> None:
    machine = guest(guest_elves, "threads", arch)
    machine.run(until=capsule.ThreadScheduled("one"))
    pc = machine.registers()["pc"]  # the trampoline every thread starts in
    stop = machine.run(until=capsule.AtAddress(pc, thread="A"))
    assert stop.thread == "A" and stop.pc == pc


# --- hooks --------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHES)
def test_a_debugputchar_hook_collects_the_output(walkthrough, arch: str) -> None:
    machine = load(walkthrough, arch)
    chars: list[str] = []
    events: list[capsule.SyscallEvent] = []
    machine.on_syscall(events.append)
    machine.on_syscall(lambda e: chars.append(e.char) if e.char is not None else None)
    stop = machine.run()
    assert "".join(chars).encode() == machine.output
    assert [e.syscall for e in events[:2]] == ["Call", "Call"]
    assert [e.label for e in events[:2]] == ["UntypedRetype", "CNodeMint"]
    assert events[-1].syscall == "DebugHalt" and events[-1].result == "halt(0)"
    assert [e.entry for e in events] == sorted({e.entry for e in events})
    assert stop.kind is capsule.StopKind.HALT


@pytest.mark.parametrize("arch", ARCHES)
def test_a_hook_that_raises_leaves_run_and_the_run_goes_on(walkthrough, arch: str) -> None:
    machine = load(walkthrough, arch)

    def fussy(event: capsule.SyscallEvent) -> None:
        if event.char == "e":
            raise KeyError("no e, please")

    hook = machine.on_syscall(fussy)
    with pytest.raises(KeyError, match="no e"):
        machine.run()
    assert machine.output == b"He"  # the entry of the raise is complete
    hook.remove()
    hook.remove()
    assert machine.run().kind is capsule.StopKind.HALT
    assert machine.output.startswith(b"Hello! ")


@pytest.mark.parametrize("arch", ARCHES)
def test_faults_delivered_to_a_handler_are_reported(guest_elves, arch: str) -> None:
    machine = guest(guest_elves, "ipc_faults", arch)
    faults: list[capsule.FaultEvent] = []
    machine.on_fault(faults.append)
    stop = machine.run(until=capsule.AfterFault())
    assert stop.kind is capsule.StopKind.CONDITION and stop.fault == faults[0]
    assert stop.fault.delivered and stop.thread == stop.fault.thread != "rootserver"
    end = machine.run()
    assert end.status == 0, machine.output.decode()
    kinds = {f.kind for f in faults}
    assert {"VMFault", "CapFault", "UserException", "UnknownSyscall"} <= kinds
    # All went to a handler but the one of the thread made without ("no handler").
    assert [(f.thread, f.kind) for f in faults if not f.delivered] == [("orphan", "UserException")]


@pytest.mark.parametrize("arch", ARCHES)
def test_an_unhandled_fault_ends_the_run_and_names_the_fault(guest_elves, arch: str) -> None:
    machine = guest(guest_elves, "fault_unmapped", arch)
    stop = machine.run()
    assert (stop.kind, stop.status, stop.ended) == (capsule.StopKind.FAULT, 121, True)
    assert stop.fault is not None and stop.thread == "rootserver"
    assert (stop.fault.kind, stop.fault.access, stop.fault.address) == ("VMFault", "read", 0x10000000)
    assert machine.ended == stop
    with pytest.raises(capsule.RunEnded) as raised:
        machine.run()
    assert raised.value.stop == stop


# --- memory, registers, symbols -------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHES)
def test_a_global_read_by_its_elf_address_and_written_before_it_is_printed(walkthrough, arch: str) -> None:
    machine = load(walkthrough, arch)
    address = elf_symbol((walkthrough[arch] / "prog.elf").read_bytes(), "greeting")
    assert machine.symbol("greeting") == address
    assert machine.read(address, 16) == b"Hello".ljust(16, b"\0")
    machine.run(until=capsule.AfterInvocation("CNodeMint"))
    machine.write(address, b"Bonjour\0")
    assert machine.read(address, 8, thread="rootserver") == b"Bonjour\0"
    machine.run()
    assert machine.output.startswith(b"Bonjour! Endpoint in slot ")


@pytest.mark.parametrize("arch", ARCHES)
def test_memory_errors_write_nothing(walkthrough, arch: str) -> None:
    machine = load(walkthrough, arch)
    greeting = machine.symbol("greeting")
    page_end = (greeting | 0xFFF) + 1
    # The data segment is followed by unmapped pages somewhere: find the end of the
    # mapping and straddle it.
    end = page_end
    while True:
        try:
            machine.read(end, 1)
        except capsule.MemoryAccessError:
            break
        end += 0x1000
    before = machine.read(end - 4, 4)
    with pytest.raises(capsule.MemoryAccessError, match=f"{end:#x} is not mapped"):
        machine.write(end - 4, b"12345678")
    assert machine.read(end - 4, 4) == before
    with pytest.raises(capsule.MemoryAccessError):
        machine.read(end - 4, 8)
    with pytest.raises(capsule.UsageError):
        machine.read(greeting, -1)
    with pytest.raises(capsule.NoSuchSymbol):
        machine.symbol("no_such_symbol")


@pytest.mark.parametrize("arch", ARCHES)
def test_a_register_written_at_a_syscall_changes_what_the_guest_sees(walkthrough, arch: str) -> None:
    """After the mint, its result is in the message-info register; the program checks it
    (``error != seL4_NoError``). Make the label say seL4_InvalidArgument (1)."""
    machine = load(walkthrough, arch)
    machine.run(until=capsule.AfterInvocation("CNodeMint"))
    info = "a1" if arch == "riscv64" else "x1"
    assert machine.registers()[info] >> 12 == 0  # label 0: seL4_NoError
    machine.set_registers({info: 1 << 12})
    end = machine.run()
    assert (end.status, machine.output) == (1, b"CNode_Mint failed: error 1\n")
    with pytest.raises(capsule.UsageError, match="no register 'r99'"):
        machine.set_registers({"r99": 0})


# --- caps and threads ---------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHES)
def test_the_cspace_lists_the_initial_caps_and_what_the_program_made(walkthrough, arch: str) -> None:
    machine = load(walkthrough, arch)
    before = {slot.cptr: slot for slot in machine.cspace()}
    assert before[2].name == "seL4_CapInitThreadCNode" and before[2].cap.type == "cnode"
    assert all(slot.depth == 64 for slot in before.values())
    stop = machine.run(until=capsule.AfterInvocation("CNodeMint"))
    assert stop.syscall is not None
    after = {slot.cptr: slot for slot in machine.cspace()}
    made = sorted(set(after) - set(before))
    assert made == [stop.syscall.args["src_index"], stop.syscall.args["dest_index"]]
    assert [after[c].cap.badge for c in made] == [0, 0x42]
    snap = machine.snapshot()
    assert [t.name for t in snap.threads] == ["rootserver"]


@pytest.mark.parametrize("arch", ARCHES)
def test_cap_lookup_failures_are_named(walkthrough, arch: str) -> None:
    machine = load(walkthrough, arch)
    with pytest.raises(capsule.CapLookupError) as raised:
        machine.cap(1 << 63)
    assert raised.value.failure == "GuardMismatch"
    with pytest.raises(capsule.NoSuchThread):
        machine.cap(1, thread="nobody")


# --- loading and usage errors -------------------------------------------------------------


def test_load_errors_are_load_errors(tmp_path: Path) -> None:
    with pytest.raises(capsule.LoadError, match="cannot read"):
        capsule.Machine.load(tmp_path / "missing.img")
    (tmp_path / "junk.img").write_bytes(b"not an image at all")
    with pytest.raises(capsule.LoadError):
        capsule.Machine.load(tmp_path / "junk.img")
    with pytest.raises(capsule.LoadError):
        capsule.Machine.from_bytes(b"\x7fELF" + bytes(60))


@pytest.mark.parametrize("arch", ARCHES)
def test_an_elf_boots_with_the_configuration_given(walkthrough, arch: str) -> None:
    config = KernelConfig(ram_size=16 << 20, root_cnode_bits=10)
    machine = capsule.Machine.load(walkthrough[arch] / "prog.elf", config=config)
    assert machine.config == config and machine.arch == arch
    image = capsule.Machine.load(walkthrough[arch] / "prog.img", config=config)
    assert image.config == config
    seen: list[int] = []
    machine = capsule.Machine.load(walkthrough[arch] / "prog.img", console=lambda b: seen.append(b[0]))
    machine.run()
    assert bytes(seen) == machine.output


@pytest.mark.parametrize("until", [
    capsule.AfterSyscall("Frobnicate"),
    capsule.AfterSyscall(cap="teapot_cap"),
    capsule.AfterInvocation("CNodeFrob"),
    capsule.AfterInstructions(0),
    capsule.AtAddress(-1),
    "CNodeMint",
    ["not a condition"],
])
def test_bad_conditions_are_usage_errors_and_change_nothing(walkthrough, until: object) -> None:
    machine = load(walkthrough, "riscv64")
    with pytest.raises(capsule.UsageError):
        machine.run(until=until)  # type: ignore[arg-type]
    assert machine.instructions == 0
    with pytest.raises(capsule.UsageError):
        machine.run(max_instructions=0)
    assert machine.run().kind is capsule.StopKind.HALT


@pytest.mark.parametrize("arch", ARCHES)
def test_the_api_runs_what_capsule_run_runs(
        guest_elves: dict[str, dict[str, Path]], arch: str) -> None:
    """An elfloader image and an ELF with RAM and CNode sizes given, as the command's
    --ram-size / --root-cnode-bits; the exit statuses are the command's own."""
    from kernel.abi.arch import Arch
    from tests.unit.test_foreign import elfloader_image

    elf = guest_elves[arch]["bootinfo"].read_bytes()
    from_loader = capsule.Machine.from_bytes(elfloader_image(Arch.from_name(arch), elf, 48 << 20))
    assert from_loader.config.ram_size == 48 << 20
    end = from_loader.run()
    assert (end.kind, end.status) == (capsule.StopKind.HALT, 0), from_loader.output.decode()
    assert from_loader.kernel_entries > 0 and from_loader.ticks >= 0

    sized = capsule.Machine.from_bytes(elf, ram_size=24 << 20, root_cnode_bits=14)
    assert (sized.config.ram_size, sized.config.root_cnode_bits) == (24 << 20, 14)
    with pytest.raises(capsule.LoadError, match="carries its own configuration"):
        capsule.Machine.from_bytes(build_image(elf, KernelConfig()), ram_size=24 << 20)

    faulting = guest(guest_elves, "fault_unmapped", arch)
    stop = faulting.run()
    assert (stop.kind, stop.status) == (capsule.StopKind.FAULT, 121)
    limited = guest(guest_elves, "spin", arch)
    stop = limited.run(max_instructions=5000)
    assert (stop.kind, stop.status, stop.ended) == (capsule.StopKind.LIMIT, 124, False)


@pytest.mark.parametrize("arch", ARCHES)
def test_an_extensions_labels_are_conditions_where_it_is_on(
        guest_elves: dict[str, dict[str, Path]], arch: str) -> None:
    """The checkpointer guest's image turns the checkpoint object on (not seL4): a stop
    after its ReadSlot works; in an seL4 configuration the label does not exist."""
    machine = guest(guest_elves, "checkpointer", arch)
    stop = machine.run(until=capsule.AfterInvocation("capsule_CheckpointReadSlot"))
    assert stop.kind is capsule.StopKind.CONDITION and stop.syscall is not None
    assert (stop.syscall.label, stop.syscall.cap) == ("capsule_CheckpointReadSlot",
                                                      "checkpoint_cap")
    plain = guest(guest_elves, "hello", arch)
    with pytest.raises(capsule.UsageError, match="capsule_CheckpointReadSlot"):
        plain.run(until=capsule.AfterInvocation("capsule_CheckpointReadSlot"))


def test_a_plain_run_puts_no_observer_on_the_kernels_entries(
        guest_elves: dict[str, dict[str, Path]]) -> None:
    """capsule run is built on Machine: without hooks or conditions that need them, no
    Python call is added to each kernel entry; a syscall hook adds one, its removal takes
    it away again, and a fault is still reported."""
    machine = guest(guest_elves, "hello", "riscv64")
    kernel = machine.session.kernel
    assert (kernel.syscall_observers, kernel.exit_observers) == ([], [])
    seen: list[str] = []
    hook = machine.on_syscall(lambda event: seen.append(event.syscall) or True)
    assert len(kernel.syscall_observers) == 1 and len(kernel.exit_observers) == 1
    assert machine.run().kind is capsule.StopKind.HOOK
    hook.remove()
    assert seen == ["DebugPutChar"]
    assert (kernel.syscall_observers, kernel.exit_observers) == ([], [])
    assert machine.run().kind is capsule.StopKind.HALT

    faulting = guest(guest_elves, "fault_unmapped", "riscv64")
    stop = faulting.run()
    assert stop.kind is capsule.StopKind.FAULT and stop.fault is not None
    kernel = faulting.session.kernel
    assert (kernel.syscall_observers, kernel.exit_observers) == ([], [])

    # Faults a handler takes do not end the run. The observer a fault adds is gone again
    # by the time the fault is reported, so the entries after it are not observed (the
    # block counter takes no timer tick late while anything observes kernel exits).
    handled = guest(guest_elves, "ipc_faults", "riscv64")
    kernel = handled.session.kernel
    observers_when_reported: list[int] = []
    handled.on_fault(lambda event: observers_when_reported.append(len(kernel.exit_observers)))
    assert handled.run().status == 0
    assert len(observers_when_reported) >= 4
    assert observers_when_reported == [0] * len(observers_when_reported)
    assert kernel.exit_observers == []
