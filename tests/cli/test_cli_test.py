"""``capsule test DIR`` driven for real on the project's own guest programs.

The images are built from userland/ sources (fixture ``guest_elves``); the expectations
are known truths about those programs, not outputs copied from a run.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bootimage import build_image
from kernel.config import KernelConfig
from tests.conftest import ARCHES

PROGRAMS = ("hello", "bootinfo", "fault_unmapped")


def capsule(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "capsule.cli", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )


@pytest.fixture()
def suite(guest_elves: dict[str, dict[str, Path]], tmp_path: Path) -> Path:
    """hello, bootinfo and fault_unmapped on both arches, with known-true expectations."""
    directory = tmp_path / "suite"
    directory.mkdir()
    for arch in ARCHES:
        for name in PROGRAMS:
            elf = guest_elves[arch][name].read_bytes()
            (directory / f"{name}-{arch}.img").write_bytes(build_image(elf, KernelConfig()))
        (directory / f"hello-{arch}.expected").write_text(f"Hello from capsule on {arch}!\n")
        (directory / f"fault_unmapped-{arch}.expected").write_text("")
        (directory / f"fault_unmapped-{arch}.status").write_text("121\n")
        (directory / f"bootinfo-{arch}.args").write_text("--max-instructions 50000000\n")
    return directory


def case_names() -> list[str]:
    return sorted(f"{name}-{arch}" for name in PROGRAMS for arch in ARCHES)


def junit_cases(path: Path) -> tuple[ET.Element, dict[str, ET.Element]]:
    root = ET.parse(path).getroot()
    return root, {c.get("name", ""): c for c in root.findall("testcase")}


def test_the_guest_suite_passes(suite: Path, tmp_path: Path) -> None:
    junit = tmp_path / "out.xml"
    proc = capsule("test", str(suite), "--junit", str(junit), "-j", "3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[:-1] == [f"PASS {name}" for name in case_names()]  # input order
    assert lines[-1] == "6 passed, 0 failed"
    root, cases = junit_cases(junit)
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("6", "0", "0")
    assert sorted(cases) == case_names()
    assert all(list(c) == [] for c in cases.values())


def test_a_wrong_expectation_fails_that_case_only(suite: Path, tmp_path: Path) -> None:
    (suite / "hello-aarch64.expected").write_text("Hello from capsule on aarch64?\n")
    junit = tmp_path / "out.xml"
    proc = capsule("test", str(suite), "--junit", str(junit))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "FAIL hello-aarch64: stdout differs from hello-aarch64.expected\n" in proc.stdout
    assert "-Hello from capsule on aarch64?\n+Hello from capsule on aarch64!\n" in proc.stdout
    assert proc.stdout.count("FAIL ") == 1
    assert proc.stdout.splitlines()[-1] == "5 passed, 1 failed"
    root, cases = junit_cases(junit)
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("6", "1", "0")
    failed = [name for name, c in cases.items() if c.find("failure") is not None]
    assert failed == ["hello-aarch64"]
    body = cases["hello-aarch64"].find("failure")
    assert body is not None and "+Hello from capsule on aarch64!" in (body.text or "")


def test_a_wrong_status_is_reported(suite: Path) -> None:
    (suite / "fault_unmapped-riscv64.status").write_text("0\n")
    proc = capsule("test", str(suite))
    assert proc.returncode == 1
    assert "FAIL fault_unmapped-riscv64: exit status 121, expected 0\n" in proc.stdout
    assert "no fault handler" in proc.stdout  # the run's stderr is shown under the failure


def test_update_blesses_actual_output(suite: Path) -> None:
    for expected in suite.glob("*.expected"):
        expected.unlink()
    for status in suite.glob("*.status"):
        status.unlink()
    proc = capsule("test", str(suite), "--update")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == "6 passed, 0 failed"
    assert (suite / "hello-riscv64.expected").read_text() == "Hello from capsule on riscv64!\n"
    assert (suite / "fault_unmapped-aarch64.status").read_text() == "121\n"
    assert (suite / "fault_unmapped-aarch64.expected").read_bytes() == b""
    assert not (suite / "hello-riscv64.status").exists()
    again = capsule("test", str(suite))
    assert again.returncode == 0 and again.stdout.splitlines()[-1] == "6 passed, 0 failed"


def test_an_image_that_does_not_load_is_an_error_not_a_crash(suite: Path) -> None:
    (suite / "zz-corrupt.img").write_bytes(b"garbage")
    proc = capsule("test", str(suite))
    assert proc.returncode == 1
    assert "ERROR zz-corrupt: image does not load: " in proc.stdout
    assert proc.stdout.splitlines()[-1] == "6 passed, 0 failed, 1 errors"


def test_an_instruction_limit_in_args_is_the_guard(suite: Path) -> None:
    (suite / "hello-riscv64.args").write_text("--max-instructions 10\n")
    proc = capsule("test", str(suite))
    assert "FAIL hello-riscv64: exit status 124, expected 0" in proc.stdout


def test_an_unwritable_junit_path_is_refused_before_any_case_runs(suite: Path,
                                                                    tmp_path: Path) -> None:
    for junit, reason in [(tmp_path / "no" / "such" / "dir" / "out.xml", "No such file or directory"),
                          (tmp_path, "Is a directory")]:
        proc = capsule("test", str(suite), "--junit", str(junit))
        assert proc.returncode == 2, proc
        assert proc.stdout == ""  # no case ran
        assert proc.stderr == f"capsule: cannot write {str(junit)!r}: {reason}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["suite"]  # nothing left behind


def test_a_case_over_its_cpu_time_is_an_error_the_others_pass(suite: Path, guest_elves) -> None:  # type: ignore[no-untyped-def]
    """``spin`` never ends: with --timeout 1 it is stopped after a second of its own CPU
    time, however loaded the machine, while the other cases pass."""
    (suite / "spin-riscv64.img").write_bytes(
        build_image(guest_elves["riscv64"]["spin"].read_bytes(), KernelConfig()))
    proc = capsule("test", str(suite), "-j", "4", "--timeout", "1")
    assert proc.returncode == 1
    assert "ERROR spin-riscv64: timed out after 1 s of CPU time\n" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "6 passed, 0 failed, 1 errors"


def test_progress_is_shown_on_a_terminal_only(suite: Path) -> None:
    import os
    import pty

    assert "capsule test:" not in capsule("test", str(suite)).stderr  # not a terminal
    master, slave = pty.openpty()
    with subprocess.Popen([sys.executable, "-m", "capsule.cli", "test", str(suite), "-j", "2"],
                          stdout=subprocess.PIPE, stderr=slave) as proc:
        os.close(slave)
        stdout, _ = proc.communicate(timeout=300)
    seen = b""
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # the terminal's other end is closed: all read
            break
        if not data:
            break
        seen += data
    os.close(master)
    assert proc.returncode == 0
    assert b"capsule test: 0/6 done, running " in seen
    assert b"capsule test: 5/6 done" in seen
    assert stdout.decode().splitlines()[-1] == "6 passed, 0 failed"  # stdout is the report


@pytest.mark.parametrize("setup, fragment", [
    (lambda d: None, "does not exist"),
    (lambda d: d.mkdir(), "no test cases"),
    (lambda d: (d.mkdir(), (d / "a.img").write_bytes(b""), (d / "a.status").write_text("x")),
     "a.status: expected an integer"),
])
def test_bad_input_is_one_line_and_status_2(tmp_path: Path, setup, fragment: str) -> None:  # type: ignore[no-untyped-def]
    directory = tmp_path / "d"
    setup(directory)
    proc = capsule("test", str(directory))
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("capsule: ") and fragment in lines[0]


def test_bad_option_is_one_line_and_status_2(tmp_path: Path) -> None:
    proc = capsule("test", str(tmp_path), "-j", "0")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("capsule: ")
