"""``capsule debug`` run for real, as a subprocess, with command scripts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bootimage import load_image_file
from tests.cli.test_cli_run import assert_one_line_error, capsule
from tests.conftest import ARCHES

IMAGES = Path(__file__).resolve().parents[2] / "userland" / "images"


def hello(arch: str) -> str:
    return str(IMAGES / f"hello-{arch}.img")


def debug(tmp_path: Path, image: str, *commands: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.txt"
    script.write_text("\n".join(commands) + "\n")
    return capsule("debug", image, "--script", str(script))


def errors(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stdout.splitlines() if line.startswith("error: ")]


@pytest.mark.parametrize("arch", ARCHES)
def test_step_regs_continue(arch: str, tmp_path: Path) -> None:
    proc = debug(tmp_path, hello(arch), "# two syscalls", "step", "s", "regs", "continue")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    traces = [line for line in lines if line.startswith("#")]
    assert traces == ["#1 rootserver DebugPutChar('H')", "#2 rootserver DebugPutChar('e')"]
    assert any(line.split()[:1] == ["pc"] for line in lines)
    assert f"llo from capsule on {arch}!" in proc.stdout
    assert lines[-1] == "run ended: halt (status 0): seL4_DebugHalt"
    assert not errors(proc)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_stop_after_an_invocation_shows_the_decoded_record(
        arch: str, tmp_path: Path, retype_images: dict[str, str]) -> None:
    """Stopped after the retype guest's first Retype, the debugger shows the trace line
    and, under it, the kernel's own record of the invocation; a debug syscall has none."""
    proc = debug(tmp_path, retype_images[arch], "break label UntypedRetype", "continue", "step",
                 "quit")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    at = lines.index("breakpoint label UntypedRetype:")
    assert "UntypedRetype" in lines[at + 1] and lines[at + 1].endswith("-> seL4_NoError")
    assert lines[at + 2].startswith("  decoded: RetypeInvocation(untyped_slot=")
    assert "otype=seL4_EndpointObject" in lines[at + 2]
    assert not lines[at + 3].startswith("  decoded:")  # the next stop is not an invocation


@pytest.mark.parametrize("arch", ARCHES)
def test_break_syscall_stops_at_the_halt(arch: str, tmp_path: Path) -> None:
    proc = debug(tmp_path, hello(arch), "break syscall DebugHalt", "continue", "threads",
                 "continue")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    at = lines.index("breakpoint syscall DebugHalt:")
    assert "DebugHalt(" in lines[at + 1] and lines[at + 1].endswith("-> halt(0)")
    assert lines[-1] == "run ended: halt (status 0): seL4_DebugHalt"


@pytest.mark.parametrize("arch", ARCHES)
def test_mem_shows_the_entry_point_bytes(arch: str, tmp_path: Path) -> None:
    root = load_image_file(hello(arch)).root
    segment = next(s for s in root.segments if s.vaddr <= root.entry < s.vaddr + len(s.data))
    expected = segment.data[root.entry - segment.vaddr :][:32]
    proc = debug(tmp_path, hello(arch), "step", f"mem {root.entry:#x} {len(expected)}",
                 "disas", "quit")
    assert proc.returncode == 0, proc.stderr
    dump = [line for line in proc.stdout.splitlines() if line.startswith("0x")]
    shown = bytes.fromhex("".join(line.split(": ", 1)[1].split("|")[0] for line in dump[:2]))
    assert shown == expected
    assert int(dump[0].split(":")[0], 16) == root.entry
    assert len(dump) > 2  # the disassembly follows
    assert proc.stdout.splitlines()[-1] == "quit before the end of the run"


@pytest.mark.parametrize("arch", ARCHES)
def test_bad_commands_are_one_error_line_and_change_nothing(arch: str, tmp_path: Path) -> None:
    proc = debug(tmp_path, hello(arch), "step", "mem 0x10000000", "mem zz", "frobnicate",
                 "break label NoSuchLabel", "break cap untyped_cap", "step", "cspace")
    assert proc.returncode == 0, proc.stderr
    assert len(errors(proc)) == 4
    assert errors(proc)[0] == "error: address 0x10000000 is not mapped"
    assert "unknown command" in errors(proc)[2]
    traces = [line for line in proc.stdout.splitlines() if line.startswith("#")]
    assert traces[:2] == ["#1 rootserver DebugPutChar('H')", "#2 rootserver DebugPutChar('e')"]
    assert "seL4_CapInitThreadCNode" in proc.stdout


def test_bad_image_and_unreadable_script(tmp_path: Path) -> None:
    bad = tmp_path / "bad.img"
    bad.write_bytes(b"nonsense")
    assert_one_line_error(capsule("debug", str(bad), "--script", "/dev/null"))
    assert_one_line_error(capsule("debug", hello("riscv64"), "--script",
                                  str(tmp_path / "missing.txt")), "script")


# --- instruction level: stepi, break *ADDR, patch -----------------------------------------

NOP = {"riscv64": "13000000", "aarch64": "1f2003d5"}


@pytest.fixture
def hello_built(guest_elves, tmp_path: Path):  # type: ignore[no-untyped-def]
    """(image path, symbol table) of hello built from source, with its ELF's symbols."""
    from elftools.elf.elffile import ELFFile

    from bootimage import build_image
    from kernel.config import KernelConfig

    def make(arch: str) -> tuple[str, dict[str, int]]:
        elf = guest_elves[arch]["hello"]
        path = tmp_path / f"hello-{arch}.img"
        path.write_bytes(build_image(elf.read_bytes(), KernelConfig()))
        with elf.open("rb") as f:
            table = ELFFile(f).get_section_by_name(".symtab")
            syms = {s.name: s["st_value"] for s in table.iter_symbols()}  # type: ignore[union-attr]
        return str(path), syms

    return make


def _pcs(proc: subprocess.CompletedProcess[str]) -> list[int]:
    """Addresses of the one-instruction listings (after a stop or a stepi)."""
    lines = proc.stdout.splitlines()
    return [int(lines[i + 1].split(":")[0], 16) for i, line in enumerate(lines)
            if line == "thread rootserver" and i + 1 < len(lines) and lines[i + 1].startswith("0x")]


@pytest.mark.parametrize("arch", ARCHES)
def test_break_at_address_then_stepi(arch: str, tmp_path: Path, hello_built) -> None:  # type: ignore[no-untyped-def]
    image, syms = hello_built(arch)
    main = syms["main"]
    proc = debug(tmp_path, image, f"break *{main:#x}", "continue", "stepi", "stepi 2", "regs",
                 "continue")
    assert proc.returncode == 0, proc.stderr
    assert not errors(proc)
    lines = proc.stdout.splitlines()
    assert lines[:2] == [f"breakpoint 1: *{main:#x}", f"breakpoint *{main:#x}:"]
    pcs = _pcs(proc)
    assert pcs[0] == main
    assert main < pcs[1] <= main + 4 < pcs[2] <= main + 12  # one, then two instructions
    pc_line = next(line for line in lines if line.split()[:1] == ["pc"])
    assert int(pc_line.split()[1], 16) == pcs[2]
    assert f"Hello from capsule on {arch}!" in proc.stdout  # stopping changed nothing
    assert lines[-1] == "run ended: halt (status 0): seL4_DebugHalt"


def _first_putchar_trap(image: str) -> int:
    """The address of the trap instruction of the first DebugPutChar (test set-up)."""
    from emulator.session import Session

    loaded = load_image_file(image)
    session = Session.boot(loaded.root, loaded.config, lambda byte: None)
    pcs: list[int] = []
    session.kernel.syscall_observers.append(
        lambda kernel, window: pcs.append(kernel.machine.save_context()[0] - 4))
    session.run()
    return pcs[0]


@pytest.mark.parametrize("arch", ARCHES)
def test_patch_a_trap_into_a_nop_is_executed(arch: str, tmp_path: Path, hello_built) -> None:  # type: ignore[no-untyped-def]
    image, _ = hello_built(arch)
    trap = _first_putchar_trap(image)
    patch = "patch {:#x} " + ('"nop"' if arch == "aarch64" else f"hex:{NOP[arch]}")
    # The first character goes out; then the trap becomes a nop: translated code that
    # already ran must be dropped for that to show.
    proc = debug(tmp_path, image, "step", patch.format(trap), f"mem {trap:#x} 4", "continue")
    assert proc.returncode == 0, proc.stderr
    assert not errors(proc)
    assert f"patched {trap:#x}: " in proc.stdout
    dump = next(line for line in proc.stdout.splitlines()
                if line.startswith(f"{trap:#018x}:") and line.endswith("|"))
    assert dump.split(": ", 1)[1].split("|")[0].replace(" ", "") == NOP[arch]
    assert "Hello" not in proc.stdout and "H" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "run ended: halt (status 0): seL4_DebugHalt"


@pytest.mark.parametrize("arch", ARCHES)
def test_bad_stepi_break_and_patch_are_errors(arch: str, tmp_path: Path) -> None:
    proc = debug(tmp_path, hello(arch), "stepi 0", "stepi x", "break *zz", "patch 0x10",
                 "patch 0x10 hex:00000000", "patch 0x10 hex:zz", 'patch 0x10 "nop"', "step")
    assert proc.returncode == 0, proc.stderr
    found = errors(proc)
    assert found[:5] == ["error: count must be at least 1", "error: count: 'x' is not a number",
                         "error: address: 'zz' is not a number",
                         'error: usage: patch ADDR "INSN" | patch ADDR hex:BYTES',
                         "error: address 0x10 is not mapped"]
    assert found[5] == "error: 'zz' is not hex bytes"
    if arch == "riscv64":
        assert "keystone-engine cannot assemble RISC-V" in found[6]
    else:
        assert found[6] == "error: address 0x10 is not mapped"
    # nothing changed: the first syscall is still the first character
    assert [line for line in proc.stdout.splitlines() if line.startswith("#")] == [
        "#1 rootserver DebugPutChar('H')"]
