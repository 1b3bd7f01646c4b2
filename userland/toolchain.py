"""How a capsule guest program is compiled and linked: one definition of the compiler, its
flags, the link script and the runtime sources, for the shipped programs
(:mod:`userland.build`) and for a user's own (:func:`build_program`, behind ``capsule cc``).

The compiler is the clang that the pip package ``ziglang`` ships (``python -m ziglang
cc``). The libsel4 and runtime headers and sources this module names are package data:
they are installed with capsule, so a program builds from any directory.

Why each flag is there: ``userland/runtime/README.md``, "Compiler flags".
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from kernel.records import dataclass

__all__ = [
    "ARCHES",
    "BASE_CFLAGS",
    "BuildError",
    "CFLAGS",
    "CompileError",
    "INCLUDE_DIRS",
    "LDFLAGS",
    "PROCESS_SOURCE",
    "RUNTIME_SOURCES",
    "SOURCE_SUFFIXES",
    "TARGETS",
    "Target",
    "USERLAND",
    "build_program",
    "check_elf",
    "check_layout",
    "compiler_available",
    "link_script",
    "run_compiler",
    "runtime_sources",
    "uses_process_library",
]

USERLAND = Path(__file__).resolve().parent
PAGE = 4096


class BuildError(Exception):
    """A compile, link or check step failed; the message says which and why."""


class CompileError(BuildError):
    """The compiler refused the sources. ``diagnostics`` is what it printed (the
    message is one line; the diagnostics are for the user to read as they are)."""

    def __init__(self, message: str, diagnostics: str) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics


@dataclass(frozen=True, slots=True)
class Target:
    """One architecture's compiler target, flags and image layout."""

    arch: str
    """Architecture name as ``kernel.abi.arch.Arch.short`` spells it."""
    e_machine: str
    """pyelftools' name for the ELF machine."""
    base: int
    """Link address of the image (where seL4's own builds put the root task)."""
    flags: tuple[str, ...]


TARGETS: dict[str, Target] = {
    "riscv64": Target(
        arch="riscv64",
        e_machine="EM_RISCV",
        base=0x10000,
        # rv64imac, soft-float ABI: the kernel does not switch FP state yet. zig spells
        # -march=rv64imac as a CPU plus features.
        flags=("-target", "riscv64-freestanding", "-mcpu=generic_rv64+m+a+c", "-mabi=lp64"),
    ),
    "aarch64": Target(
        arch="aarch64",
        e_machine="EM_AARCH64",
        base=0x400000,
        flags=("-target", "aarch64-freestanding", "-mgeneral-regs-only"),
    ),
}
ARCHES: tuple[str, ...] = tuple(TARGETS)

BASE_CFLAGS: tuple[str, ...] = (
    "-std=gnu11",
    "-ffreestanding",
    "-nostdlib",
    "-static",
    "-O2",
    "-g",
    "-fno-pic",
    "-fno-pie",
    "-fno-stack-protector",
    "-fno-unwind-tables",
    "-fno-asynchronous-unwind-tables",
    "-ffunction-sections",
    "-fdata-sections",
    "-ftls-model=local-exec",  # a static executable: every TLS offset is known at link time
    "-UNDEBUG",  # zig defines NDEBUG in optimised builds; guests keep their asserts
    "-Wall",
    "-Wextra",
)
"""Every guest's compiler flags but the include directories."""

INCLUDE_DIRS: tuple[str, ...] = ("libsel4/include", "runtime/include")
"""The header directories, relative to :data:`USERLAND`."""

CFLAGS: tuple[str, ...] = (*BASE_CFLAGS, *(f"-I{d}" for d in INCLUDE_DIRS))
"""The compiler flags for a compiler running in :data:`USERLAND` (as userland.build's
does, so that no machine path reaches the objects)."""

LDFLAGS: tuple[str, ...] = (
    "-nostdlib",
    "-static",
    "-Wl,-z,max-page-size=4096",
    "-Wl,-z,common-page-size=4096",
    "-Wl,--build-id=none",
    "-Wl,--entry=_sel4_start",  # zig passes --entry _start, which beats ENTRY() in the script
)

RUNTIME_SOURCES: tuple[str, ...] = (
    "runtime/crt0_{arch}.S",
    "runtime/start.c",
    "runtime/tls.c",
    "runtime/exit.c",
    "runtime/printf.c",
    "runtime/string.c",
    "runtime/thread.c",
    "libsel4/src/bootinfo.c",
)
"""Linked into every program (``{arch}``: the target's name), relative to :data:`USERLAND`."""

PROCESS_SOURCE = "runtime/process.c"
"""The process library, linked only into the programs that include ``process.h`` (so
that every other image stays as it was)."""

SOURCE_SUFFIXES = (".c", ".S", ".s")
"""What :func:`build_program` accepts as a source: C and assembly."""

_PROCESS_USER = re.compile(r"^#include <process\.h>", re.M)


def runtime_sources(arch: str) -> list[str]:
    """The runtime and libsel4 sources of every ``arch`` program, relative to :data:`USERLAND`."""
    return [s.format(arch=arch) for s in RUNTIME_SOURCES]


def link_script(arch: str) -> str:
    """The link script of ``arch`` programs, relative to :data:`USERLAND`."""
    return f"runtime/link_{arch}.ld"


def uses_process_library(source_text: str) -> bool:
    """Whether a program source includes ``<process.h>`` (and so links :data:`PROCESS_SOURCE`)."""
    return _PROCESS_USER.search(source_text) is not None


def compiler_available() -> bool:
    """Whether the cross compiler (the ``ziglang`` package) is installed."""
    return importlib.util.find_spec("ziglang") is not None


def run_compiler(args: Sequence[str], cwd: Path, *, echo_warnings: bool = True) -> str:
    """Run ``python -m ziglang cc ARGS`` in ``cwd``; return what it printed on stderr.

    Raises:
        CompileError: the compiler failed (its diagnostics attached).
    """
    cmd = [sys.executable, "-m", "ziglang", "cc", *args]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise CompileError(f"{' '.join(cmd[3:])}", proc.stderr.strip())
    if echo_warnings and proc.stderr.strip():
        print(proc.stderr.strip(), file=sys.stderr)
    return proc.stderr


# ---------------------------------------------------------------------------- checks


def check_layout(path: Path, target: Target) -> None:
    """Verify an ELF's layout; raise :class:`BuildError` on the first violation.

    Checks: machine and entry (``_sel4_start``); loadable segments page-aligned, in
    order, not sharing pages, starting at the target's base; the TLS segment as the
    runtime computes it from the link-script symbols (``_tdata_start``, ``_tdata_end``,
    ``_tbss_end``, ``_tls_align``).
    """
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    try:
        with path.open("rb") as f:
            elf = ELFFile(f)
            if elf["e_machine"] != target.e_machine or elf["e_type"] != "ET_EXEC":
                raise BuildError(f"{path}: not a static {target.arch} executable")
            symtab = elf.get_section_by_name(".symtab")
            if not isinstance(symtab, SymbolTableSection):
                raise BuildError(f"{path}: no symbol table")
            sym = {s.name: s["st_value"] for s in symtab.iter_symbols() if s.name}
            if elf["e_entry"] != sym.get("_sel4_start"):
                raise BuildError(f"{path}: entry {elf['e_entry']:#x} is not _sel4_start")
            loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
            tls = [s for s in elf.iter_segments() if s["p_type"] == "PT_TLS"]
    except ELFError as error:
        raise BuildError(f"{path}: not a readable ELF file ({error})") from None
    if not loads or loads[0]["p_vaddr"] != target.base:
        raise BuildError(f"{path}: the image must start at {target.base:#x}")
    prev_end = 0
    for seg in loads:
        start, end = seg["p_vaddr"], seg["p_vaddr"] + seg["p_memsz"]
        if start % PAGE or start < prev_end:
            raise BuildError(f"{path}: segment at {start:#x} is not on its own pages")
        prev_end = -(-end // PAGE) * PAGE
    if len(tls) != 1:
        raise BuildError(f"{path}: expected one PT_TLS segment, found {len(tls)}")
    t = tls[0]
    expect = {
        "p_vaddr": sym["_tdata_start"],
        "p_filesz": sym["_tdata_end"] - sym["_tdata_start"],
        "p_memsz": sym["_tbss_end"] - sym["_tdata_start"],
    }
    for key, value in expect.items():
        if t[key] != value:
            raise BuildError(f"{path}: PT_TLS {key} {t[key]:#x} != link-script value {value:#x}")
    if t["p_align"] > 1 and (t["p_align"] != sym["_tls_align"] or t["p_vaddr"] % t["p_align"]):
        raise BuildError(f"{path}: TLS segment alignment does not match _tls_align")


def check_elf(path: Path, target: Target, reproducible: bool = True) -> None:
    """:func:`check_layout`, and with ``reproducible`` no machine path inside the file
    (the shipped programs are byte-identical wherever they are built)."""
    data = path.read_bytes()
    machine_paths = {str(USERLAND), os.path.realpath(USERLAND), str(Path.home())}
    for machine_path in machine_paths if reproducible else ():
        if machine_path.encode() in data:
            raise BuildError(f"{path}: contains the machine path {machine_path!r}")
    check_layout(path, target)


# ---------------------------------------------------------------------------- a user's program


def build_program(sources: Sequence[Path], arch: str, elf: Path, *,
                  include_dirs: Sequence[Path] = (), defines: Sequence[str] = (),
                  cwd: Path | None = None) -> None:
    """Compile ``sources`` (C or assembly) for ``arch`` and link them with libsel4 and
    the runtime into the root-task ELF ``elf``, as the shipped programs are built.

    The compiler runs in ``cwd`` (default: the current directory) on the paths as
    given, so its diagnostics name the files as the caller does; the debug information
    keeps real paths, for gdb. ``include_dirs`` and ``defines`` (``NAME`` or
    ``NAME=VALUE``) become ``-I`` and ``-D`` flags. Warnings go to stderr.

    Raises:
        BuildError: a source is missing or not C/assembly, ``arch`` is unknown, the
            compiler is not installed, or the linked ELF breaks the layout rules.
        CompileError: the compiler refused the sources (diagnostics attached).
    """
    target = TARGETS.get(arch)
    if target is None:
        raise BuildError(f"unknown architecture {arch!r} (expected one of {', '.join(ARCHES)})")
    if not sources:
        raise BuildError("no source files")
    here = Path.cwd() if cwd is None else cwd
    texts: list[str] = []
    for source in sources:
        path = here / source
        if path.suffix not in SOURCE_SUFFIXES:
            raise BuildError(f"{source}: not a C or assembly source "
                             f"({', '.join(SOURCE_SUFFIXES)})")
        try:
            texts.append(path.read_text(errors="replace"))
        except FileNotFoundError:
            raise BuildError(f"{source}: no such file") from None
        except OSError as error:
            raise BuildError(f"{source}: cannot read it ({error.strerror or error})") from None
    if not compiler_available():
        raise BuildError("building needs the cross compiler: pip install ziglang "
                         "(or capsule's 'cc' extra)")
    runtime = runtime_sources(arch)
    if any(uses_process_library(text) for text in texts):
        runtime.append(PROCESS_SOURCE)
    args = [
        *target.flags, *BASE_CFLAGS,
        *(f"-I{USERLAND / d}" for d in INCLUDE_DIRS),
        *(f"-I{d}" for d in include_dirs), *(f"-D{d}" for d in defines),
        *LDFLAGS, "-T", str(USERLAND / link_script(arch)),
        *(str(s) for s in sources), *(str(USERLAND / s) for s in runtime),
        "-o", str(elf),
    ]
    run_compiler(args, here)
    check_layout(here / elf, target)

