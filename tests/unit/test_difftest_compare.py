"""capsule.difftest: the comparer finds the first differing guest line; seed patching."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from capsule.difftest import first_difference, guest_lines, main, patch_words

ESC = "\x1b"
SEL4_SERIAL = (
    "OpenSBI v0.9\r\nBooting all finished, dropped to user space\r\n"
    "difftest seed=1 steps=3 untyped=76 bits=22\r\n"
    "0 retype ut=76 type=6 bits=0 dest=4 n=2 = 0\r\n"
    f"{ESC}[0m{ESC}[1m<<{ESC}[0m{ESC}[32mseL4(CPU 0){ESC}[0m{ESC}[1m [decodeCNodeInvocation/95 "
    'T0xffffffc13ffc8400 "rootserver" @10750]: CNode Copy/Mint/Move/Mutate: Destination not '
    f"empty.>>{ESC}[0m\r\n"
    "1 move 4->4 = 8\r\n"
    f"  probe:{ESC}[0m<<seL4(CPU 0) [decode]: Source slot invalid or empty.>>{ESC}[0m\r\n 0 1\r\n"
    "difftest done: 0 mismatches\r\n"
    "Debug halt syscall from user thread\r\nhalting...\r\n"
)
CAPSULE_OUT = (
    "difftest seed=1 steps=3 untyped=76 bits=22\n"
    "0 retype ut=76 type=6 bits=0 dest=4 n=2 = 0\n"
    "1 move 4->4 = 8\n"
    "  probe: 0 1\n"
    "difftest done: 0 mismatches\n"
)


def test_guest_lines_drop_the_kernels_own_output() -> None:
    assert guest_lines(SEL4_SERIAL) == guest_lines(CAPSULE_OUT) == CAPSULE_OUT.splitlines()


def test_text_without_a_guest_marker_is_kept_whole() -> None:
    assert guest_lines("a\r\nb\n\n") == ["a", "b"]


def test_first_difference_reports_the_line_and_its_context() -> None:
    left = ["h", "1 a = 0", "2 b = 0", "3 c = 0"]
    right = ["h", "1 a = 0", "2 b = 8", "3 c = 0"]
    diff = first_difference(left, right, context=1)
    assert diff is not None
    assert (diff.index, diff.left, diff.right, diff.context) == (2, "2 b = 0", "2 b = 8", ("1 a = 0",))
    text = diff.describe("seL4", "capsule")
    assert "guest line 3" in text and "seL4   : 2 b = 0" in text and "capsule: 2 b = 8" in text


def test_a_shorter_output_differs_where_it_ends() -> None:
    diff = first_difference(["a", "b"], ["a"])
    assert diff is not None and (diff.index, diff.left, diff.right) == (1, "b", None)
    assert "(output ends)" in diff.describe()
    assert first_difference(["a"], ["a"]) is None


def test_cli_compare_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sel4, capsule, other = tmp_path / "sel4.txt", tmp_path / "capsule.txt", tmp_path / "x.txt"
    sel4.write_text(SEL4_SERIAL)
    capsule.write_text(CAPSULE_OUT)
    other.write_text(CAPSULE_OUT.replace("4->4 = 8", "4->4 = 0"))
    assert main(["compare", str(sel4), str(capsule)]) == 0
    assert "same: 5 lines" in capsys.readouterr().out
    assert main(["compare", str(sel4), str(other)]) == 1
    out = capsys.readouterr().out
    assert "guest line 3" in out and "1 move 4->4 = 0" in out
    assert main(["compare", str(sel4), str(tmp_path / "missing.txt")]) == 2
    assert capsys.readouterr().err.startswith("capsule.difftest: ")


def test_patch_words_sets_the_guests_variables(guest_elves: dict[str, dict[str, Path]],
                                              tmp_path: Path) -> None:
    elf = guest_elves["riscv64"]["difftest"].read_bytes()
    patched = patch_words(elf, {"difftest_seed": 0x1122334455667788, "difftest_steps": 9})
    changed = [i for i in range(len(elf)) if elf[i] != patched[i]]
    assert 1 <= len(changed) <= 16 and len(patched) == len(elf)
    assert struct.pack("<Q", 0x1122334455667788) in patched
    with pytest.raises(ValueError, match="no_such_variable"):
        patch_words(elf, {"no_such_variable": 1})
    with pytest.raises(ValueError):
        patch_words(b"not an elf", {"difftest_seed": 1})
    path = tmp_path / "in.elf"
    path.write_bytes(elf)
    assert main(["seed", str(path), "--seed", "7", "-o", str(tmp_path / "out.elf")]) == 0
    assert patch_words(elf, {"difftest_seed": 7}) == (tmp_path / "out.elf").read_bytes()
