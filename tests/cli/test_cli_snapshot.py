"""Snapshots from the command line, each command its own process: ``capsule run
--snapshot-at N --save FILE``, ``capsule resume FILE``, ``capsule debug FILE`` and the
debugger's ``snapshot`` / ``restore`` / ``snapshots``.

What is checked: a run snapshotted at instruction N in one process and resumed in
another gives the uninterrupted run's output, status and instruction count (for several
N, on both architectures); snapshotting does not change the run it is taken from; the
same point gives the same file whatever PYTHONHASHSEED is; every malformed file of the
corpus (tests/emulator/test_snapshot_file.py) and every bad option is one line and
status 2; in the debugger, going back to a snapshot and running on prints again what
the guest printed from there the first time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bootimage import build_image
from tests.cli.test_cli_debug import debug, errors
from tests.cli.test_cli_run import PROJECT, assert_one_line_error, capsule
from tests.conftest import ARCHES, COMPILED
from tests.emulator.test_snapshot_file import MALFORMED
from tests.fuzzing import fuzzed
from userland.build import image_config

_STATS = re.compile(r"capsule: (\d+) instructions, (\d+) kernel entries, (\d+) ticks")


@pytest.fixture(scope="module")
def spawn_images(guest_elves: dict[str, dict[str, Path]],
                 tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("spawn")
    paths = {}
    for arch in ARCHES:
        path = out / f"spawn-{arch}.img"
        path.write_bytes(build_image(guest_elves[arch]["spawn"].read_bytes(),
                                     image_config("spawn")))
        paths[arch] = path
    return paths


_WHOLE: dict[str, tuple[subprocess.CompletedProcess[str], tuple[int, ...]]] = {}


def whole(image: Path) -> tuple[subprocess.CompletedProcess[str], tuple[int, ...]]:
    """``capsule run --stats IMAGE`` and its counts (kept per image)."""
    if str(image) not in _WHOLE:
        proc = capsule("run", "--stats", str(image))
        assert proc.returncode == 0, proc.stderr
        _WHOLE[str(image)] = (proc, stats(proc))
    return _WHOLE[str(image)]


def stats(proc: subprocess.CompletedProcess[str]) -> tuple[int, ...]:
    found = _STATS.search(proc.stderr)
    assert found is not None, proc.stderr
    return tuple(int(group) for group in found.groups())


@pytest.mark.parametrize("arch", ARCHES)
@fuzzed(3)
@given(fraction=st.floats(min_value=0.0, max_value=0.999))
def test_resume_in_a_fresh_process_ends_as_the_whole_run(
        spawn_images: dict[str, Path], tmp_path_factory: pytest.TempPathFactory,
        arch: str, fraction: float) -> None:
    image = spawn_images[arch]
    full, counts = whole(image)
    at = int(fraction * counts[0])
    saved = tmp_path_factory.mktemp("snap") / "spawn.snap"
    first = capsule("run", "--snapshot-at", str(at), "--save", str(saved), "--stop-after-save",
                    str(image))
    assert first.returncode == 0, first.stderr
    assert f"capsule: snapshot at instruction {at} saved to {saved}" in first.stderr
    assert full.stdout.startswith(first.stdout)

    later = capsule("resume", "--stats", str(saved))
    assert later.returncode == full.returncode == 0, later.stderr
    assert first.stdout + later.stdout == full.stdout
    assert stats(later) == counts
    replayed = capsule("resume", "--replay-output", str(saved))
    assert replayed.stdout == full.stdout


@pytest.mark.parametrize("arch", ARCHES)
def test_a_run_that_saves_a_snapshot_runs_as_one_that_does_not(
        spawn_images: dict[str, Path], tmp_path: Path, arch: str) -> None:
    full, counts = whole(spawn_images[arch])
    saved = tmp_path / "s.snap"
    proc = capsule("run", "--stats", "--snapshot-at", "12345", "--save", str(saved),
                   str(spawn_images[arch]))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == full.stdout and stats(proc) == counts
    assert saved.read_bytes().startswith(b"CAPSULE SNAPSHOT")


def test_the_same_point_is_the_same_file_whatever_the_hash_seed(
        spawn_images: dict[str, Path], tmp_path: Path) -> None:
    files = []
    for seed in ("1", "2"):
        saved = tmp_path / f"seed{seed}.snap"
        proc = subprocess.run(
            [sys.executable, "-m", "capsule.cli", "run", "--snapshot-at", "60000", "--save",
             str(saved), "--stop-after-save", str(spawn_images["aarch64"])],
            capture_output=True, text=True, timeout=120, check=False, cwd=PROJECT,
            env={**os.environ, "PYTHONHASHSEED": seed})
        assert proc.returncode == 0, proc.stderr
        files.append(saved.read_bytes())
    assert files[0] == files[1]


def _env(build: str) -> dict[str, str]:
    """The environment of a run with the compiled kernel (this run's own) or the pure one
    (the same without what puts the compiled build first on the path)."""
    if build == "compiled":
        return dict(os.environ)
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}


def _in_build(build: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``capsule ARGS...`` with the ``build`` ("compiled" or "pure") kernel."""
    return subprocess.run([sys.executable, "-m", "capsule.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False, cwd=PROJECT, env=_env(build))


@pytest.mark.skipif(not COMPILED, reason="needs the compiled build (make test-compiled)")
@pytest.mark.parametrize("arch", ARCHES)
def test_a_snapshot_moves_between_the_pure_and_the_compiled_kernel(
        spawn_images: dict[str, Path], tmp_path: Path, arch: str) -> None:
    """Both builds pickle kernel state in one form (kernel.pickling): the same point makes
    the same file in either, and a file made by one resumes in the other to the end of
    the uninterrupted run."""
    where = subprocess.run(
        [sys.executable, "-c", "import kernel.kernel; print(kernel.kernel.__file__)"],
        capture_output=True, text=True, timeout=60, check=True, cwd=PROJECT, env=_env("pure"))
    assert where.stdout.strip().endswith(".py"), "the pure run imports a compiled kernel"
    image = spawn_images[arch]
    full, counts = whole(image)
    at = counts[0] // 2
    saved, first = {}, {}
    for build in ("compiled", "pure"):
        saved[build] = tmp_path / f"{build}.snap"
        first[build] = _in_build(build, "run", "--snapshot-at", str(at), "--save",
                                 str(saved[build]), "--stop-after-save", str(image))
        assert first[build].returncode == 0, first[build].stderr
    assert saved["compiled"].read_bytes() == saved["pure"].read_bytes()
    for maker, taker in (("compiled", "pure"), ("pure", "compiled")):
        later = _in_build(taker, "resume", "--stats", str(saved[maker]))
        assert later.returncode == 0, later.stderr
        assert first[maker].stdout + later.stdout == full.stdout
        assert stats(later) == counts


@pytest.fixture(scope="module")
def good_file(spawn_images: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> bytes:
    saved = tmp_path_factory.mktemp("good") / "good.snap"
    proc = capsule("run", "--snapshot-at", "100000", "--save", str(saved), "--stop-after-save",
                   str(spawn_images["riscv64"]))
    assert proc.returncode == 0, proc.stderr
    return saved.read_bytes()


@pytest.mark.parametrize("damage", MALFORMED)
def test_resume_of_a_malformed_snapshot_is_one_line(
        good_file: bytes, tmp_path: Path, damage: str) -> None:
    make, fragment = MALFORMED[damage]
    bad = tmp_path / "bad.snap"
    bad.write_bytes(make(good_file))
    proc = capsule("resume", str(bad))
    assert_one_line_error(proc, str(bad), fragment)
    assert proc.stdout == ""


@pytest.mark.parametrize("damage", ["half the file", "another capsule", "payload calling os.system"])
def test_debug_of_a_malformed_snapshot_is_one_line(
        good_file: bytes, tmp_path: Path, damage: str) -> None:
    make, fragment = MALFORMED[damage]
    bad = tmp_path / "bad.snap"
    bad.write_bytes(make(good_file))
    assert_one_line_error(debug(tmp_path, str(bad), "continue"), str(bad), fragment)


def test_bad_snapshot_options_are_one_line(spawn_images: dict[str, Path], tmp_path: Path) -> None:
    image = str(spawn_images["riscv64"])
    assert_one_line_error(capsule("run", "--snapshot-at", "10", image), "--save")
    assert_one_line_error(capsule("run", "--save", str(tmp_path / "s"), image), "--snapshot-at")
    assert_one_line_error(capsule("run", "--stop-after-save", image), "--snapshot-at")
    assert_one_line_error(capsule("run", "--snapshot-at", "-1", "--save", "s", image), "-1")
    assert_one_line_error(capsule("run", "--snapshot-at", "10", "--save", "s", "--gdb",
                                  "127.0.0.1:0", image), "--gdb")
    missing = tmp_path / "no" / "such" / "dir" / "s.snap"
    assert_one_line_error(capsule("run", "--snapshot-at", "10", "--save", str(missing), image),
                          "not a directory")
    assert_one_line_error(capsule("resume", str(tmp_path / "absent.snap")), "absent.snap")
    assert_one_line_error(capsule("resume", image), "not a capsule snapshot")


def test_a_snapshot_point_after_the_end_saves_nothing(
        spawn_images: dict[str, Path], tmp_path: Path) -> None:
    full, counts = whole(spawn_images["riscv64"])
    saved = tmp_path / "late.snap"
    proc = capsule("run", "--snapshot-at", str(counts[0] + 1), "--save", str(saved),
                   str(spawn_images["riscv64"]))
    assert proc.returncode == 0 and proc.stdout == full.stdout
    assert "the run ended before instruction" in proc.stderr and not saved.exists()
    limited = capsule("run", "--snapshot-at", "5000", "--save", str(saved),
                      "--max-instructions", "4000", str(spawn_images["riscv64"]))
    assert limited.returncode == 124 and not saved.exists()
    assert "instruction limit 4000 reached" in limited.stderr


def _after(lines: list[str], marker: str) -> list[str]:
    return lines[next(i for i, line in enumerate(lines) if line.startswith(marker)) + 1:]


@pytest.mark.parametrize("arch", ARCHES)
def test_the_debugger_goes_back_to_a_snapshot(
        spawn_images: dict[str, Path], tmp_path: Path, arch: str) -> None:
    """Three syscalls in, a snapshot; run to the end; go back and run again: what
    follows the restore is what followed the snapshot, trace numbers included."""
    saved = tmp_path / "mid.snap"
    proc = debug(tmp_path, str(spawn_images[arch]), "step", "step", "step",
                 f"snapshot {saved}", "snapshots", "continue", "restore 1", "continue")
    assert proc.returncode == 0, proc.stderr
    assert not errors(proc)
    lines = proc.stdout.splitlines()
    assert any(line.startswith(f"saved to {saved} (") for line in lines)
    first = _after(lines, "snapshot 1: instruction ")
    again = _after(lines, "restored snapshot 1: ")
    assert first[0].startswith("1: instruction ")  # the snapshots listing
    assert first[1:first.index(again[-1]) + 1] == again
    assert again[-1] == "run ended: halt (status 0): seL4_DebugHalt"
    assert any(line.startswith("SPAWN0001 PASS") for line in again)

    # The file the debugger saved: debugging starts there, in a fresh process.
    resumed = debug(tmp_path, str(saved), "threads", "continue")
    assert resumed.returncode == 0, resumed.stderr
    guest = [line for line in again if not line.startswith(("#", "  "))]
    assert [line for line in resumed.stdout.splitlines()
            if line in guest] == guest


def test_debugger_snapshot_errors_are_one_line_and_change_nothing(
        spawn_images: dict[str, Path], tmp_path: Path) -> None:
    proc = debug(tmp_path, str(spawn_images["riscv64"]), "restore", "snapshots", "step",
                 "snapshot", "restore 2", "restore x y", f"snapshot {tmp_path}/no/dir/s",
                 f"restore {tmp_path}/absent.snap", "snapshots", "continue")
    assert proc.returncode == 0, proc.stderr
    assert errors(proc) == [
        "error: no snapshots to go back to (snapshot takes one)",
        "error: no snapshot 2 (snapshots lists them)",
        "error: usage: restore [N | FILE]",
        f"error: cannot write {tmp_path}/no/dir/s: No such file or directory",
        f"error: cannot read snapshot {tmp_path}/absent.snap: No such file or directory",
    ]
    lines = proc.stdout.splitlines()
    assert "no snapshots (snapshot takes one)" in lines
    listed = [line for line in lines if re.match(r"\d+: instruction ", line)]
    assert len(listed) == 1 and listed[0].startswith("1: ")  # the refused ones kept nothing
    assert lines[-1] == "run ended: halt (status 0): seL4_DebugHalt"


def test_inspect_describes_a_snapshot_and_says_who_takes_it_up(
        good_file: bytes, tmp_path: Path) -> None:
    saved = tmp_path / "good.snap"
    saved.write_bytes(good_file)
    proc = capsule("snapshot", "inspect", "--json", str(saved))
    assert proc.returncode == 0, proc.stderr
    described = json.loads(proc.stdout)
    assert described["bytes"] == len(good_file) and described["format"] == 1
    assert (described["arch"], described["instructions"], described["takes_up"]) == (
        "riscv64", 100_000, True)
    assert described["image"] == "spawn-riscv64.img" and described["pages"] > 0
    text = capsule("snapshot", "inspect", str(saved))
    assert text.returncode == 0
    assert "at instruction 100000, kernel entry " in text.stdout
    assert "(this capsule takes it up)" in text.stdout

    older = tmp_path / "older.snap"
    older.write_bytes(MALFORMED["another capsule"][0](good_file))
    other = json.loads(capsule("snapshot", "inspect", "--json", str(older)).stdout)
    assert (other["capsule"], other["takes_up"]) == ("0.0.1+000000000000", False)
    assert "it cannot take it up" in capsule("snapshot", "inspect", str(older)).stdout
    for damage in ("half the file", "a flipped payload bit", "an image"):
        bad = tmp_path / "bad.snap"
        bad.write_bytes(MALFORMED[damage][0](good_file))
        assert_one_line_error(capsule("snapshot", "inspect", str(bad)), str(bad))


def test_the_trace_of_a_resumed_run_is_the_rest_of_the_whole_runs(
        spawn_images: dict[str, Path], tmp_path: Path) -> None:
    """Trace lines after the snapshot point, syscall numbers included (they count since
    boot), are those of the uninterrupted run."""
    image = str(spawn_images["aarch64"])
    whole_trace = capsule("run", "--trace", image).stderr.splitlines()
    saved = tmp_path / "mid.snap"
    assert capsule("run", "--snapshot-at", "50000", "--save", str(saved), "--stop-after-save",
                   image).returncode == 0
    rest = [line for line in capsule("resume", "--trace", str(saved)).stderr.splitlines()
            if not line.startswith("capsule: ")]
    assert rest and rest[0].startswith("#") and not rest[0].startswith("#1 ")
    assert rest == whole_trace[len(whole_trace) - len(rest):]


def test_cspace_takes_a_snapshot_up_where_it_was(
        spawn_images: dict[str, Path], tmp_path: Path) -> None:
    """`capsule cspace FILE` runs on from the snapshot: its views equal those of the
    image's run at the same points, syscalls counted since boot either way."""
    image = str(spawn_images["riscv64"])
    saved = tmp_path / "mid.snap"
    assert capsule("run", "--snapshot-at", "150000", "--save", str(saved), "--stop-after-save",
                   image).returncode == 0
    late = json.loads(capsule("cspace", "--format", "json", "--after-syscall", "600",
                              image).stdout)
    from_snapshot = capsule("cspace", "--format", "json", "--after-syscall", "600", str(saved))
    assert from_snapshot.returncode == 0, from_snapshot.stderr
    assert json.loads(from_snapshot.stdout) == late
    assert json.loads(capsule("cspace", "--format", "json", str(saved)).stdout) == json.loads(
        capsule("cspace", "--format", "json", image).stdout)
    assert_one_line_error(capsule("cspace", "--after-syscall", "3", str(saved)),
                          "--after-syscall 3", "system calls already")
