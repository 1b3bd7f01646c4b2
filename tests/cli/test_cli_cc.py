"""``capsule cc``: a user's own program, built from an empty directory by the real command.

The README's walk-through ("Your own program") is run as written: its program is
extracted from the README, and the commands of its console block are run in an empty
temporary directory with their output compared to what the README shows. The other
tests cover several sources with -I / -D, the kernel configuration passthrough, the
one-line errors, and the installed package (the runtime and libsel4 files are package
data: a copy of the package as setuptools installs it builds a program on its own).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bootimage import load_image
from tests.cli.test_cli_run import assert_one_line_error
from tests.conftest import ARCHES

pytest.importorskip("ziglang")

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


# --- the README's walk-through --------------------------------------------------------------


def readme_program() -> str:
    """The C program of the README's walk-through (the block that starts ``/* prog.c``)."""
    blocks = re.findall(r"```c\n(.*?)```", README.read_text(), re.S)
    programs = [b for b in blocks if b.startswith("/* prog.c")]
    assert len(programs) == 1, "the README has one prog.c walk-through program"
    return programs[0]


def readme_session() -> list[tuple[str, str]]:
    """(command, expected output) for each ``$ `` line of the walk-through's console block."""
    text = README.read_text()
    section = text[text.index("## Your own program"):]
    block = re.search(r"```console\n(.*?)```", section, re.S)
    assert block is not None
    steps: list[tuple[str, str]] = []
    for line in block.group(1).splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], ""))
        else:
            command, output = steps[-1]
            steps[-1] = (command, output + line + "\n")
    return steps


def command_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH finds the ``capsule`` command: the one pip installed
    next to this Python, else a stand-in that runs the same entry point."""
    env = dict(os.environ)
    bindir = Path(sys.executable).parent
    if not (bindir / "capsule").exists():
        bindir = tmp_path / "bin"
        bindir.mkdir()
        shim = bindir / "capsule"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m capsule.cli "$@"\n')
        shim.chmod(0o755)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (env.get("PYTHONPATH"), str(ROOT)) if p)
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
    return env


def shell(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def _sizes_free(text: str) -> str:
    """Image sizes vary with the compiler's version: compare them as N."""
    return re.sub(r"\d+ bytes", "N bytes", text)


@pytest.mark.parametrize("arch", ARCHES)
def test_the_readme_walkthrough_runs_from_an_empty_directory(arch: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "prog.c").write_text(readme_program())
    env = command_path(tmp_path)
    steps = readme_session()
    assert [c.split()[:2] for c, _ in steps] == [["capsule", "cc"], ["capsule", "run"]]
    for command, expected in steps:
        if arch != "riscv64":  # the README shows riscv64; the other is one option away
            command = command.replace("capsule cc", f"capsule cc --arch {arch}")
            expected = expected.replace("riscv64", arch)
        proc = shell(command, work, env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
        if arch == "riscv64":
            assert _sizes_free(proc.stdout) == _sizes_free(expected), "README output is stale"
        else:  # its slot numbers differ (another page-table and untyped layout)
            pattern = re.sub(r"slot\\ \d+", r"slot\\ \\d+", re.escape(_sizes_free(expected)))
            assert re.fullmatch(pattern, _sizes_free(proc.stdout)), proc.stdout
    assert sorted(p.name for p in work.iterdir()) == ["prog.c", "prog.elf", "prog.img"]
    assert load_image((work / "prog.img").read_bytes()).arch.short == arch


# --- more than one file, options --------------------------------------------------------------

MAIN_C = """\
#include <sel4/sel4.h>
#include <stdio.h>
#include "shout.h"

int main(void)
{
    seL4_BootInfo *info = seL4_GetBootInfo();
    shout(GREETING);
    printf("root cnode: 2^%lu slots\\n", (unsigned long)info->initThreadCNodeSizeBits);
    return 7;
}
"""
SHOUT_C = """\
#include <stdio.h>
#include "shout.h"

void shout(const char *what)
{
    printf("%s!\\n", what);
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_several_sources_includes_defines_and_the_configuration(arch: str, tmp_path: Path) -> None:
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "shout.h").write_text("void shout(const char *what);\n")
    (tmp_path / "main.c").write_text(MAIN_C)
    (tmp_path / "shout.c").write_text(SHOUT_C)
    env = command_path(tmp_path)
    proc = shell(f"capsule cc main.c shout.c --arch {arch} -I inc -D GREETING='\"hi there\"' "
                 "--ram-size 64M --root-cnode-bits 14 -o two.img", tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(rf"two\.img: {arch} image, \d+ bytes\n", proc.stdout)
    config = load_image((tmp_path / "two.img").read_bytes()).config
    assert (config.ram_size, config.root_cnode_bits) == (64 << 20, 14)
    run = shell("capsule run two.img", tmp_path, env)
    assert (run.returncode, run.stdout) == (7, "hi there!\nroot cnode: 2^14 slots\n")


# --- errors: one line, exit status 2 ---------------------------------------------------------


@pytest.fixture
def cc(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = command_path(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["capsule", "cc", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300, check=False)

    return run


def test_a_missing_source_is_one_line(cc, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert_one_line_error(cc("nothere.c", "-o", "x.img"), "nothere.c: no such file")
    assert not (tmp_path / "x.img").exists()


def test_a_wrong_arch_is_one_line(cc, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "p.c").write_text("int main(void) { return 0; }\n")
    assert_one_line_error(cc("p.c", "--arch", "x86_64", "-o", "x.img"), "--arch", "x86_64")


@pytest.mark.parametrize("args, fragment", [
    (("p.c",), "Missing option '-o'"),
    (("-o", "x.img"), "Missing argument"),
    (("notes.txt", "-o", "x.img"), "not a C or assembly source"),
    (("p.c", "-o", "x.img", "--ram-size", "3"), "bad kernel configuration: ram_size"),
    (("p.c", "-o", "x.img", "--root-cnode-bits", "40"), "root_cnode_bits"),
    (("p.c", "-o", "x.img", "--ram-size", "lots"), "bad size 'lots'"),
])
def test_bad_arguments_are_one_line(cc, tmp_path: Path, args: tuple[str, ...],  # type: ignore[no-untyped-def]
                                    fragment: str) -> None:
    (tmp_path / "p.c").write_text("int main(void) { return 0; }\n")
    (tmp_path / "notes.txt").write_text("not C\n")
    assert_one_line_error(cc(*args), fragment)


@pytest.mark.parametrize("source, diagnostic", [
    ("int main(void) { return missing; }\n", "use of undeclared identifier 'missing'"),
    ("int helper(void);\nint main(void) { return helper(); }\n", "undefined symbol: helper"),
])
def test_a_compile_error_shows_the_diagnostics_then_one_capsule_line(  # type: ignore[no-untyped-def]
        cc, tmp_path: Path, source: str, diagnostic: str) -> None:
    (tmp_path / "bad.c").write_text(source)
    proc = cc("bad.c", "-o", "bad.img")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert diagnostic in proc.stderr
    assert lines[-1].startswith("capsule: cannot build bad.img: compiling bad.c for riscv64")
    assert not any(line.startswith("capsule: ") for line in lines[:-1])
    assert not (tmp_path / "bad.img").exists()


# --- one definition, and the installed package ------------------------------------------------


def test_the_builder_and_capsule_cc_share_one_toolchain_definition() -> None:
    from userland import build, toolchain

    for name in ("TARGETS", "CFLAGS", "LDFLAGS", "PROCESS_SOURCE", "check_elf"):
        assert getattr(build, name) is getattr(toolchain, name)
    assert not hasattr(build, "RUNTIME_SOURCES")  # only toolchain.runtime_sources() names them


def test_the_installed_package_builds_a_program_on_its_own(tmp_path: Path) -> None:
    """Install the package as setuptools does (build_py: the modules and the package
    data, from a copy of the sources) and build and run a program with that copy alone."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("build", "__pycache__", "*.egg-info", "*.o", "*.elf")
    for package in ("capsule", "emulator", "kernel", "bootimage", "userland"):
        shutil.copytree(ROOT / package, source / package, ignore=ignore)
    lib = tmp_path / "lib"
    setup = subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py",
         "--build-lib", str(lib)],
        cwd=source, capture_output=True, text=True, timeout=300, check=False)
    assert setup.returncode == 0, setup.stderr
    from userland.toolchain import INCLUDE_DIRS, RUNTIME_SOURCES, link_script

    for arch in ARCHES:
        for name in [s.format(arch=arch) for s in RUNTIME_SOURCES] + [link_script(arch)]:
            assert (lib / "userland" / name).is_file(), name
    for directory in INCLUDE_DIRS:
        assert list((lib / "userland" / directory).rglob("*.h"))

    shutil.rmtree(source)  # nothing of the sources is left to find
    work = tmp_path / "work"
    work.mkdir()
    (work / "prog.c").write_text(readme_program())
    env = dict(os.environ, PYTHONPATH=str(lib), PYTHONSAFEPATH="1")

    def python(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=300, check=False)

    where = python("-c", "import userland.toolchain as t, capsule; print(t.USERLAND)")
    assert where.stdout.strip() == str(lib / "userland"), where.stderr
    built = python("-m", "capsule.cli", "cc", "prog.c", "-o", "prog.img")
    assert built.returncode == 0, built.stderr
    ran = python("-m", "capsule.cli", "run", "prog.img")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("Hello! Endpoint in slot ")
