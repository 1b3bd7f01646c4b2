"""``capsule run`` driven for real, as a subprocess: output, exit status, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bootimage import RootCNodeTooSmall, build_image
from bootimage.build import encode_config
from bootimage.format import pack
from kernel.abi.arch import Arch
from kernel.config import KernelConfig
from tests.conftest import ARCHES
from tests.unit.test_foreign import dtb, elfloader_image
from userland import demo_image

PROJECT = Path(__file__).resolve().parents[2]


def capsule(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``capsule ARGS...`` as a subprocess (run from ``cwd``, the project by default)."""
    return subprocess.run(
        [sys.executable, "-m", "capsule.cli", *args],
        capture_output=True, text=True, timeout=120, check=False, cwd=cwd or PROJECT,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("capsule: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("arch", ARCHES)
def test_run_without_image_runs_the_shipped_demo(arch: str) -> None:
    proc = capsule("run", "--arch", arch)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"Hello from capsule on {arch}!\n"
    assert proc.stderr == ""


@pytest.fixture(scope="module")
def images(guest_elves: dict[str, dict[str, Path]], tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("images")
    paths = {}
    for arch, progs in guest_elves.items():
        for name, elf in progs.items():
            path = out / f"{name}-{arch}.img"
            path.write_bytes(build_image(elf.read_bytes(), KernelConfig()))
            paths[(name, arch)] = path
    return paths


@pytest.mark.parametrize("arch", ARCHES)
def test_fault_ends_the_run_with_a_clear_message(images, arch: str) -> None:
    proc = capsule("run", str(images[("fault_unmapped", arch)]))
    assert proc.returncode == 121
    assert proc.stdout == ""
    line = proc.stderr.strip()
    assert line.startswith('capsule: thread "rootserver" stopped: VMFault: read at address 0x10000000')
    assert "at pc 0x" in line and "no fault handler" in line


@pytest.mark.parametrize("arch", ARCHES)
def test_stats_are_deterministic(images, arch: str) -> None:
    first = capsule("run", "--stats", str(images[("bootinfo", arch)]))
    second = capsule("run", "--stats", str(images[("bootinfo", arch)]))
    assert first.returncode == 0
    assert first.stdout == second.stdout
    assert first.stderr == second.stderr
    assert "instructions" in first.stderr and "unknown" not in first.stderr


@pytest.mark.parametrize("arch", ARCHES)
def test_processes_run_the_same_whatever_the_hash_seed(images, arch: str) -> None:
    """spawn loads a child's code into frames through its own mapping and runs it: the
    deferred execute permission of those pages is granted at the first fetch, and the
    kernel's zeroing of reused frames drops their old translations. Neither may change
    the output, the trace or the instruction count."""
    runs = []
    for seed in ("0", "1"):
        proc = subprocess.run(
            [sys.executable, "-m", "capsule.cli", "run", "--stats", "--trace",
             str(images[("spawn", arch)])],
            capture_output=True, text=True, timeout=300, check=False,
            env={**os.environ, "PYTHONHASHSEED": seed})
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append((proc.stdout, proc.stderr))
    assert runs[0] == runs[1]
    assert "instructions" in runs[0][1]


def test_instruction_limit_exit_status(images) -> None:
    proc = capsule("run", "--max-instructions", "50", str(images[("hello", "riscv64")]))
    assert proc.returncode == 124
    assert "instruction limit 50 reached" in proc.stderr


def test_missing_image_is_one_line(tmp_path: Path) -> None:
    assert_one_line_error(capsule("run", str(tmp_path / "nope.img")), "nope.img")


def test_not_an_image_is_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"this is not a capsule image at all" * 4)
    assert_one_line_error(capsule("run", str(junk)), "magic")


def test_bad_option_value_is_an_error() -> None:
    proc = capsule("run", "--max-instructions", "zero")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_image_that_cannot_boot_is_one_line(guest_elves, tmp_path: Path) -> None:
    # 16 root CNode slots cannot hold the boot caps. The builder refuses to make such an
    # image, so this one is packed by hand: the loader's same check refuses it in one line.
    image = tmp_path / "small.img"
    elf = guest_elves["riscv64"]["hello"].read_bytes()
    with pytest.raises(RootCNodeTooSmall):
        build_image(elf, KernelConfig(root_cnode_bits=4))
    image.write_bytes(pack(Arch.RISCV64.value, encode_config(KernelConfig(root_cnode_bits=4)), elf))
    assert_one_line_error(capsule("run", str(image)), "root CNode too small")


def test_internal_error_is_one_line_and_status_125(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel bug must still reach the user as one line, never a traceback."""
    from click.testing import CliRunner

    from capsule import cli
    from emulator.session import Session
    from kernel.model.errors import KernelBug

    def broken_run(self: Session, max_instructions: int | None = None) -> None:
        raise KernelBug("mdb-symmetry: made up for this test")

    monkeypatch.setattr(Session, "run", broken_run)
    result = CliRunner().invoke(cli.main, ["run", "--arch", "riscv64"])
    assert result.exit_code == 125
    assert "Traceback" not in result.output
    assert result.output.strip().splitlines() == [
        "capsule: internal error: KernelBug: mdb-symmetry: made up for this test"]


@pytest.mark.parametrize("arch", ARCHES)
def test_a_large_declared_machine_costs_what_the_guest_uses(
        guest_elves: dict[str, dict[str, Path]], arch: str, tmp_path: Path) -> None:
    """4 GiB of RAM and a 2^24-slot root CNode (512 MiB of it) for hello: the host backs
    only the RAM that is written and builds only the slots boot fills (kernel/BUDGET.md).
    A loose guard on the peak resident set of the `capsule run` process, not a benchmark:
    writing the CNode's zeros alone would pass 500 MB."""
    image = tmp_path / "big.img"
    image.write_bytes(build_image(guest_elves[arch]["hello"].read_bytes(),
                                  KernelConfig(ram_size=4 << 30, root_cnode_bits=24)))
    probe = ("import resource, subprocess, sys\n"
             "proc = subprocess.run([sys.executable, '-m', 'capsule.cli', 'run', sys.argv[1]],"
             " capture_output=True, text=True)\n"
             "print(proc.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", probe, str(image)], capture_output=True,
                         text=True, check=True).stdout.split()
    status, peak_kib = int(out[0]), int(out[1])
    assert status == 0
    assert peak_kib < 400 << 10  # under 400 MB


@pytest.mark.parametrize("arch", ARCHES)
def test_a_root_task_elf_and_an_elfloader_image_run_directly(
        guest_elves: dict[str, dict[str, Path]], arch: str, tmp_path: Path) -> None:
    """What seL4's build system gives QEMU runs with no conversion step."""
    elf = guest_elves[arch]["hello"]
    direct = capsule("run", str(elf))
    assert (direct.returncode, direct.stdout) == (0, f"Hello from capsule on {arch}!\n")
    image = tmp_path / "sel4-image"
    image.write_bytes(elfloader_image(Arch.from_name(arch), elf.read_bytes(), 64 << 20))
    loaded = capsule("run", str(image))
    assert (loaded.returncode, loaded.stdout) == (0, f"Hello from capsule on {arch}!\n")
    small = capsule("run", "--ram-size", "16M", "--root-cnode-bits", "13", str(elf))
    assert small.returncode == 0
    assert_one_line_error(capsule("run", "--ram-size", "16M", str(demo_image(arch))),
                          "carries its own configuration")


def test_the_bootinfo_guest_sees_the_device_tree_of_an_elfloader_image(
        guest_elves: dict[str, dict[str, Path]], tmp_path: Path) -> None:
    image = tmp_path / "sel4-image"
    elf = guest_elves["riscv64"]["bootinfo"].read_bytes()
    image.write_bytes(elfloader_image(Arch.RISCV64, elf, 64 << 20))
    run = capsule("run", str(image))
    assert run.returncode == 0, run.stderr
    extra = 16 + len(dtb(0x8000_0000, 64 << 20))
    assert f"extraLen: {extra}\n" in run.stdout
    lines = dict(line.split(": ", 1) for line in run.stdout.splitlines() if ": " in line)
    start, end = (int(n) for n in lines["extraBIPages"].split(".."))
    assert end - start == (1 << max(12, (extra - 1).bit_length())) // 4096
    assert lines["userImageFrames"].startswith(f"{end}..")
