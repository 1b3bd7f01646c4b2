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
