"""``capsule debug`` run for real, as a subprocess, with command scripts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
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


def _address(listing: str) -> int:
    """The address a disassembly line starts with (``0x... <sym+off>: ...``)."""
    return int(listing.split(":")[0].split()[0], 16)


def _pcs(proc: subprocess.CompletedProcess[str]) -> list[int]:
    """Addresses of the one-instruction listings (after a stop or a stepi)."""
    lines = proc.stdout.splitlines()
    return [_address(lines[i + 1]) for i, line in enumerate(lines)
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
    assert lines[:2] == [f"breakpoint 1: *{main:#x} <main>", f"breakpoint *{main:#x} <main>:"]
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
                         "error: address: 'zz' is not a number or a symbol",
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


# --- symbols, threads, nexti, the interactive prompt ------------------------------------------


def elf_symbols(elf: Path) -> dict[str, tuple[int, int]]:
    """(address, size) of each symbol of ``elf``'s symbol table, read with pyelftools."""
    from elftools.elf.elffile import ELFFile

    with elf.open("rb") as f:
        table = ELFFile(f).get_section_by_name(".symtab")
        return {s.name: (s["st_value"], s["st_size"]) for s in table.iter_symbols()}  # type: ignore[union-attr]


def within(syms: dict[str, tuple[int, int]], name: str, address: int) -> bool:
    start, size = syms[name]
    return start <= address < start + size


@pytest.fixture
def callreply_built(guest_elves, tmp_path: Path):  # type: ignore[no-untyped-def]
    """userland/tests/ipc_callreply.c as an image, and its ELF's symbols."""
    from bootimage import build_image
    from kernel.config import KernelConfig

    def make(arch: str) -> tuple[str, dict[str, tuple[int, int]]]:
        elf = guest_elves[arch]["ipc_callreply"]
        path = tmp_path / f"ipc_callreply-{arch}.img"
        path.write_bytes(build_image(elf.read_bytes(), KernelConfig()))
        return str(path), elf_symbols(elf)

    return make


@pytest.mark.parametrize("arch", ARCHES)
def test_symbols_name_breakpoints_listings_and_stops(arch: str, tmp_path: Path, guest_elves,
                                                     hello_built) -> None:  # type: ignore[no-untyped-def]
    image, _ = hello_built(arch)
    syms = elf_symbols(guest_elves[arch]["hello"])
    main = syms["main"][0]
    proc = debug(tmp_path, image, "break main", "continue", "disas main 2", "mem main+4 4",
                 "step", "break nowhere", "quit")
    assert not errors(proc)[:-1] and errors(proc)[-1].startswith(
        "error: address: 'nowhere' is not a number or a symbol")
    lines = proc.stdout.splitlines()
    assert lines[:2] == [f"breakpoint 1: *{main:#x} <main>", f"breakpoint *{main:#x} <main>:"]
    listing = [line for line in lines if line.startswith("0x") and " <main" in line]
    assert listing[0].startswith(f"{main:#018x} <main>: ")
    assert _address(listing[-1]) > main and f"{_address(listing[-1]):#018x} <main+" in listing[-1]
    assert any(line.startswith(f"{main + 4:#018x}: ") for line in lines)  # mem main+4
    at = next(line for line in lines if line.startswith("  at 0x"))  # the step's stop
    pc = int(at.split()[1], 16)
    name, _, offset = at.split("<")[1].rstrip(">").partition("+")
    assert within(syms, name, pc) and pc - syms[name][0] == int(offset or "0", 16)


@pytest.mark.parametrize("arch", ARCHES)
def test_nexti_runs_a_call_to_its_return(arch: str, tmp_path: Path, guest_elves,
                                         hello_built) -> None:  # type: ignore[no-untyped-def]
    """main's first call (it prints the line): nexti stops right after it, with the line
    printed; stepi goes into the callee."""
    import capstone

    image, _ = hello_built(arch)
    syms = elf_symbols(guest_elves[arch]["hello"])
    main, size = syms["main"]
    segment = next(s for s in load_image_file(image).root.segments
                   if s.vaddr <= main < s.vaddr + len(s.data))
    code = segment.data[main - segment.vaddr :][:size]
    if arch == "riscv64":
        cs = capstone.Cs(capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV64 | capstone.CS_MODE_RISCVC)
    else:
        cs = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
    cs.detail = True
    call = next(i for i in cs.disasm(code, main) if i.group(capstone.CS_GRP_CALL))
    proc = debug(tmp_path, image, f"break *{call.address:#x}", "continue", "nexti", "regs",
                 "continue")
    assert not errors(proc), proc.stdout
    pcs = _pcs(proc)
    assert pcs == [call.address, call.address + call.size]
    out = proc.stdout
    assert out.index(f"Hello from capsule on {arch}!") < out.index(
        f"{call.address + call.size:#018x}")
    proc = debug(tmp_path, image, f"break *{call.address:#x}", "continue", "stepi", "quit")
    assert not within(syms, "main", _pcs(proc)[1])  # into the callee


@pytest.mark.parametrize("arch", ARCHES)
def test_thread_selects_whose_registers_regs_shows(arch: str, tmp_path: Path,
                                                   callreply_built) -> None:  # type: ignore[no-untyped-def]
    """Stopped after the echo server's first Recv (ipc_callreply.c): the root task waits
    for its reply inside echo_round's Call, the server runs in echo_server."""
    image, syms = callreply_built(arch)
    proc = debug(tmp_path, image, "break thread echo", "continue", "threads", "thread 1", "regs",
                 "thread echo", "regs", "thread 7", "thread", "quit")
    lines = proc.stdout.splitlines()
    listed = [re.match(r"^([* ]) (\d+) (\S+) ", line) for line in lines]
    rows = [m.groups() for m in listed if m is not None]
    assert rows[:2] == [(" ", "1", "rootserver"), ("*", "2", "echo")]
    # (the stop selected the thread that stopped: the echo server, marked *)
    pcs = [int(line.split()[1], 16) for line in lines if line.startswith("pc ")]
    heads = [line for line in lines if line in ("thread rootserver", "thread echo")]
    assert heads == ["thread rootserver", "thread echo"]
    assert within(syms, "echo_round", pcs[0]) and within(syms, "echo_server", pcs[1])
    assert errors(proc) == ["error: no thread 7 (threads lists them)"]
    assert lines[-3].startswith("thread 2 echo ")  # `thread` names the selection


def test_patch_without_keystone_is_one_line(tmp_path: Path, hello_built) -> None:  # type: ignore[no-untyped-def]
    """keystone-engine is optional: without it, assembling says what to install."""
    image, syms = hello_built("aarch64")
    script = tmp_path / "script.txt"
    script.write_text(f'patch {syms["main"]:#x} "nop"\npatch main hex:1f2003d5\nquit\n')
    code = ("import sys; sys.modules['keystone'] = None; "
            "from capsule.cli import main; main()")
    proc = subprocess.run([sys.executable, "-c", code, "debug", image, "--script", str(script)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and "Traceback" not in proc.stdout + proc.stderr
    assert errors(proc) == ["error: assembling needs keystone-engine (pip install "
                            "keystone-engine); or give the encoding as hex:BYTES "
                            "(hex:1f2003d5 is nop)"]
    assert f"patched {syms['main']:#x}: " in proc.stdout  # raw bytes need no assembler


def test_cspace_hides_boot_caps_unless_all(tmp_path: Path) -> None:
    proc = debug(tmp_path, hello("riscv64"), "cspace", "cspace all", "quit")
    lines = proc.stdout.splitlines()
    note = next(line for line in lines if line.startswith("(hidden: "))
    assert note.endswith(": cspace all shows them)") and "image frame caps" in note
    first, second = lines.index(note), len(lines)
    frames = [i for i, line in enumerate(lines) if re.match(r"\s+\[\d+\]: frame ", line)]
    assert frames and all(first < i < second for i in frames)  # only after `cspace all`


def test_break_on_a_cap_type(tmp_path: Path, retype_images: dict[str, str]) -> None:
    """The retype guest's first syscall invokes an untyped cap."""
    proc = debug(tmp_path, retype_images["riscv64"], "break cap untyped", "continue", "quit")
    lines = proc.stdout.splitlines()
    at = lines.index("breakpoint cap untyped:")
    assert lines[at + 1].startswith("#1 rootserver Call(cap=") and " untyped, UntypedRetype" in lines[at + 1]


# --- under a pseudo-terminal: line editing, history, Enter ---------------------------------------


def _prompted(image: str, state: Path):  # type: ignore[no-untyped-def]
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(sys.executable, ["-m", "capsule.cli", "debug", image],
                          env={**os.environ, "XDG_STATE_HOME": str(state)},
                          encoding="utf-8", timeout=60)
    child.expect_exact("(capsule) ")
    return child


def _type(child, keys: str) -> str:  # type: ignore[no-untyped-def]
    """Send ``keys`` and Enter; what the debugger printed up to its next prompt."""
    child.send(keys + "\r")
    child.expect_exact("(capsule) ")
    return str(child.before).replace("\r\n", "\n")


UP = "\x1b[A"


@pytest.mark.parametrize("arch", ARCHES)
def test_at_a_terminal_history_enter_and_symbols(arch: str, tmp_path: Path,
                                                 hello_built) -> None:  # type: ignore[no-untyped-def]
    import pexpect

    image, syms = hello_built(arch)
    main = syms["main"]
    state = tmp_path / "state"
    child = _prompted(image, state)
    assert f"breakpoint 1: *{main:#x} <main>" in _type(child, "break main")
    assert f"breakpoint *{main:#x} <main>:" in _type(child, "continue")
    assert "#1 rootserver DebugPutChar('H')" in _type(child, "step")
    assert "#2 rootserver DebugPutChar('e')" in _type(child, "")  # Enter repeats step
    assert "#3 rootserver DebugPutChar('l')" in _type(child, "")
    assert "pc " in _type(child, "regs")
    assert "#4 rootserver DebugPutChar('l')" in _type(child, UP + UP)  # regs, then step
    first = _type(child, "disas main 2")
    after = _type(child, "")  # Enter goes on after the listing
    shown = [_address(line) for line in (first + after).splitlines() if line.startswith("0x")]
    assert len(shown) == 4 and shown == sorted(set(shown)) and shown[0] == main
    child.send("quit\r")
    child.expect(pexpect.EOF)
    # The history outlives the session: the next one recalls the last command.
    child = _prompted(image, state)
    child.send(UP + "\r")
    child.expect_exact("quit before the end of the run")
    child.expect(pexpect.EOF)
    assert (state / "capsule" / "debug_history").read_text().splitlines()[-1] == "quit"


def test_at_a_terminal_thread_selection(tmp_path: Path, callreply_built) -> None:  # type: ignore[no-untyped-def]
    image, syms = callreply_built("riscv64")
    child = _prompted(image, tmp_path / "state")
    _type(child, "break thread echo")
    assert "breakpoint thread echo:" in _type(child, "continue")
    one = _type(child, "thread 1") + _type(child, "regs")
    two = _type(child, "thread 2") + _type(child, "regs")

    def pc(text: str) -> int:
        return int(next(line for line in text.splitlines() if line.startswith("pc ")).split()[1], 16)

    assert "thread rootserver" in one and "thread echo" in two
    assert within(syms, "echo_round", pc(one)) and within(syms, "echo_server", pc(two))
    child.sendeof()
