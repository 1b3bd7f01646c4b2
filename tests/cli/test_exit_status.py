"""The exit-status table of the README, driven through the real ``capsule`` command: a
guest's own status can never be taken for one of capsule's conditions, and every usage
error of every command is one line with status 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from bootimage import build_image
from emulator.exitstatus import RESERVED, ExitStatus, exit_status
from emulator.machine import RunResult
from kernel.config import KernelConfig
from tests.cli.test_cli_run import assert_one_line_error, capsule
from tests.conftest import ARCHES

GUEST_STATUSES = [0, 1, 2, 3, 4, 5, 6, 70, 117, 118, 121, 124, 125, 126, 130, 134, 255]
"""The guest statuses tried: the small ones capsule's old codes used, every edge of the
reserved block, and the shells' favourites."""


def with_exit_status(elf: bytes, status: int) -> bytes:
    """``exit_with``'s ELF with the byte at its symbol ``exit_with_status`` set to
    ``status`` (the symbol's section gives the file offset)."""
    from io import BytesIO

    parsed = ELFFile(BytesIO(elf))
    symtab = parsed.get_section_by_name(".symtab")
    (symbol,) = symtab.get_symbol_by_name("exit_with_status")  # type: ignore[union-attr]
    section = parsed.get_section(symbol["st_shndx"])
    offset = symbol["st_value"] - section["sh_addr"] + section["sh_offset"]
    assert elf[offset] == 0
    return elf[:offset] + bytes([status]) + elf[offset + 1:]


@pytest.fixture(scope="module")
def exit_with(guest_elves: dict[str, dict[str, Path]],
              tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("exit_with")

    def image(arch: str, status: int) -> str:
        path = out / f"exit_with-{status}-{arch}.img"
        if not path.exists():
            elf = with_exit_status(guest_elves[arch]["exit_with"].read_bytes(), status)
            path.write_bytes(build_image(elf, KernelConfig()))
        return str(path)

    return image


@pytest.mark.parametrize("status", GUEST_STATUSES)
def test_a_guest_status_is_passed_through_or_reported_as_reserved(exit_with, status: int) -> None:
    proc = capsule("run", exit_with("riscv64", status))
    assert proc.stdout == f"exit_with {status}\n"
    if status in RESERVED:
        assert proc.returncode == ExitStatus.GUEST_RESERVED == 118
        assert proc.stderr == (f"capsule: the guest exited with status {status}, reported as "
                               f"118: {status} is one of capsule's own statuses\n")
    else:
        assert proc.returncode == status
        assert proc.stderr == ""  # the guest's own status says it all


@pytest.mark.parametrize("arch", ARCHES)
def test_guest_statuses_2_to_6_differ_from_capsule_conditions(exit_with, guest_elves,
                                                              tmp_path: Path, arch: str) -> None:
    """What the statuses 2..6 meant before (bad input, fault, deadlock, kernel halt,
    limit) and a guest exiting with each of them give different statuses now."""
    guest = {capsule("run", exit_with(arch, status)).returncode for status in range(2, 7)}
    fault = tmp_path / "fault.img"
    fault.write_bytes(build_image(guest_elves[arch]["fault_unmapped"].read_bytes(), KernelConfig()))
    conditions = {
        capsule("run", str(tmp_path / "missing.img")).returncode,
        capsule("run", str(fault)).returncode,
        capsule("run", "--max-instructions", "100", exit_with(arch, 0)).returncode,
    }
    assert conditions == {2, 121, 124}
    assert guest == {118, 3, 4, 5, 6}  # 2 is capsule's: the guest's 2 is reported as 118
    assert not guest & conditions


def result(kind: str, status: int = 0) -> RunResult:
    return RunResult(kind, status, "", 0, 0, 0)


def test_every_way_a_run_ends_has_its_own_status() -> None:
    """Kinds the CLI tests cannot easily reach (deadlock, kernel halt) included; the
    kernel's own codes for them (RunResult.status) play no part."""
    assert exit_status(result("fault", 3)) == 121
    assert exit_status(result("idle", 4)) == 122
    assert exit_status(result("kernel-halt", 5)) == 123
    assert exit_status(result("limit", 6)) == 124
    assert exit_status(result("interrupt")) == 130
    assert exit_status(result("halt", 0x1_07)) == 7  # the low 8 bits, as a POSIX exit
    assert exit_status(result("halt", 0x1_02)) == 118
    assert RESERVED == {2, *range(118, 126), 130}
    assert all(128 + signal not in RESERVED for signal in (1, 3, 6, 9, 11, 15))


def test_arch_must_match_the_image(exit_with) -> None:
    assert_one_line_error(capsule("run", "--arch", "aarch64", exit_with("riscv64", 0)),
                          "--arch aarch64", "riscv64 image")
    same = capsule("run", "--arch", "riscv64", exit_with("riscv64", 0))
    assert same.returncode == 0 and same.stdout == "exit_with 0\n"


@pytest.mark.parametrize("args, fragment", [
    (["run", "--bogus"], "No such option '--bogus'"),
    (["run", "a.img", "b.img"], "unexpected extra argument"),
    (["run", "--max-instructions", "zero"], "'zero' is not a valid integer"),
    (["run", "--arch", "mips"], "'mips' is not one of"),
    (["frobnicate"], "No such command 'frobnicate'"),
    (["--bogus"], "No such option '--bogus'"),
    (["debug"], "Missing argument 'IMAGE'"),
    (["cspace", "--format", "svg", "x.img"], "'svg' is not one of"),
    (["image", "build", "x.elf"], "Missing option '-o'"),
    (["image", "extract", "x.img"], "Missing option '-o'"),
    (["image", "nothing"], "No such command 'nothing'"),
    (["test"], "Missing argument 'DIR'"),
    (["test", "dir", "-j", "0"], "0 is not in the range x>=1"),
])
def test_usage_errors_are_one_line_and_status_2(args: list[str], fragment: str) -> None:
    assert_one_line_error(capsule(*args), fragment)


def test_help_is_still_click_help() -> None:
    proc = capsule("run", "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("Usage: ")
    assert "118-125" in proc.stdout  # the epilog points at the exit-status table

