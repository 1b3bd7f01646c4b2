"""Running a benchmark guest: parameters patched into its ELF, phases timed from its marks.

A benchmark program (``userland/bench/*.c``, see ``bench.h``) has a word array
``bench_params`` in ``.data``; :func:`patch_params` overwrites it in the ELF, so one build
serves every size. While the guest runs, :class:`PhaseClock` timestamps the console lines
that start with ``@`` as they arrive: ``@b NAME`` begins a phase (at its newline),
``@e NAME COUNT`` ends it (at its ``@``), ``@m NAME`` records the process's resident
memory, ``@fail ...`` is the program giving up. Set-up work outside phases is never timed.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from kernel.config import KernelConfig

__all__ = ["BenchError", "GuestRun", "Phase", "PhaseClock", "memory_in_fresh_process", "patch_params",
           "resident_bytes", "run_guest"]

PARAMS_SYMBOL = "bench_params"
PARAMS_WORDS = 8


class BenchError(Exception):
    """A benchmark guest could not run as asked (the message says why)."""


def patch_params(elf: bytes, values: Sequence[int]) -> bytes:
    """``elf`` with ``bench_params[i] = values[i]`` (little-endian words) in its file image.

    Raises :class:`BenchError` if the program has no ``bench_params`` of 8 words in a
    loadable segment's file bytes, or if more than 8 values are given.
    """
    if len(values) > PARAMS_WORDS:
        raise BenchError(f"at most {PARAMS_WORDS} parameters, got {len(values)}")
    f = ELFFile(io.BytesIO(elf))
    symtab = f.get_section_by_name(".symtab")
    if not isinstance(symtab, SymbolTableSection):
        raise BenchError("the program has no symbol table")
    syms = symtab.get_symbol_by_name(PARAMS_SYMBOL)
    if not syms or syms[0]["st_size"] != 8 * PARAMS_WORDS:
        raise BenchError(f"the program has no {PARAMS_SYMBOL}[{PARAMS_WORDS}]")
    vaddr = syms[0]["st_value"]
    for seg in f.iter_segments():
        start = seg["p_vaddr"]
        if seg["p_type"] == "PT_LOAD" and start <= vaddr and vaddr + 64 <= start + seg["p_filesz"]:
            offset = seg["p_offset"] + vaddr - start
            break
    else:
        raise BenchError(f"{PARAMS_SYMBOL} is not in a loadable segment's file bytes")
    out = bytearray(elf)
    for i, value in enumerate(values):
        out[offset + 8 * i:offset + 8 * i + 8] = value.to_bytes(8, "little")
    return bytes(out)


def resident_bytes() -> int:
    """The resident set size of this process in bytes (Linux /proc; 0 if unavailable)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


@dataclass
class Phase:
    """One timed phase: ``count`` operations in ``seconds``, ``entries`` kernel entries."""

    name: str
    count: int
    seconds: float
    entries: int

    @property
    def rate(self) -> float:
        return self.count / self.seconds


@dataclass
class PhaseClock:
    """The console sink of a benchmark run: collects output, phases and memory marks."""

    entries: Callable[[], int] | None = None
    """The kernel's entry count so far (set once the kernel is booted)."""
    output: bytearray = field(default_factory=bytearray)
    phases: dict[str, Phase] = field(default_factory=dict)
    memory: dict[str, int] = field(default_factory=dict)
    failure: str | None = None
    trace: bool = False
    """Also record at each ``@m`` the bytes tracemalloc has seen allocated and still
    live since the first mark (``memory["traced:" + NAME]``)."""
    _line: bytearray = field(default_factory=bytearray)
    _at: tuple[float, int] = (0.0, 0)
    _begun: dict[str, tuple[float, int]] = field(default_factory=dict)

    def _now(self) -> tuple[float, int]:
        return time.perf_counter(), self.entries() if self.entries is not None else 0

    def __call__(self, byte: int) -> None:
        self.output.append(byte)
        if byte == ord("@") and not self._line:
            self._at = self._now()
        if byte != ord("\n"):
            self._line.append(byte)
            return
        line, self._line = self._line.decode(errors="replace"), bytearray()
        if not line.startswith("@"):
            return
        kind, _, rest = line[1:].partition(" ")
        if kind == "b":
            self._begun[rest] = self._now()
        elif kind == "e":
            name, _, count = rest.partition(" ")
            if name in self._begun:
                (t0, e0), (t1, e1) = self._begun.pop(name), self._at
                self.phases[name] = Phase(name, int(count), t1 - t0, e1 - e0)
        elif kind == "m":
            gc.collect()
            self.memory[rest] = resident_bytes()
            if self.trace:
                if not tracemalloc.is_tracing():
                    tracemalloc.start()
                self.memory[f"traced:{rest}"] = tracemalloc.get_traced_memory()[0]
        elif kind == "fail":
            self.failure = rest


@dataclass
class GuestRun:
    phases: dict[str, Phase]
    memory: dict[str, int]
    output: str
    instructions: int | None = None
    """Guest instructions of the whole run (None: Unicorn's counter was unavailable)."""


def run_guest(elf_path: Path, params: Sequence[int], config: Mapping[str, object] | None = None,
              max_instructions: int = 2_000_000_000, trace: bool = False) -> GuestRun:
    """Boot the benchmark ``elf_path`` with ``params`` under ``KernelConfig(**config)`` and
    run it to its end (``trace``: see :attr:`PhaseClock.trace`). Raises
    :class:`BenchError` unless it exits with status 0."""
    from bootimage import build_image, load_image
    from emulator.session import Session

    kconfig = KernelConfig(**dict(config or {})).validate()  # type: ignore[arg-type]
    elf = patch_params(elf_path.read_bytes(), params)
    loaded = load_image(build_image(elf, kconfig))
    clock = PhaseClock(trace=trace)
    session = Session.boot(loaded.root, loaded.config, clock)
    clock.entries = lambda: session.kernel.kernel_entries
    result = session.run(max_instructions)
    output = clock.output.decode(errors="replace")
    if clock.failure is not None or (result.kind, result.status) != ("halt", 0):
        raise BenchError(f"{elf_path.name} {list(params)}: {clock.failure or result.message}"
                         f" ({result.kind} {result.status})\n{output[-2000:]}")
    if tracemalloc.is_tracing():
        tracemalloc.stop()
    return GuestRun(clock.phases, clock.memory, output, result.instructions)


def memory_in_fresh_process(elf_path: Path, params: Sequence[int],
                            config: Mapping[str, object], trace: bool = False) -> dict[str, int]:
    """:attr:`GuestRun.memory` of a run in a new interpreter, so that memory freed by
    earlier runs in this one cannot hide the growth being measured."""
    cmd = [sys.executable, "-m", "bench.guest", str(elf_path), json.dumps(list(params)),
           json.dumps(dict(config)), *(["--trace"] if trace else [])]
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(cmd[2:])} failed:\n{proc.stderr[-2000:]}")
    memory: dict[str, int] = json.loads(proc.stdout)
    return memory


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.guest ELF PARAMS_JSON CONFIG_JSON [--trace]``: run one benchmark
    guest and print its memory marks as JSON (see :func:`memory_in_fresh_process`)."""
    parser = argparse.ArgumentParser(prog="python -m bench.guest")
    parser.add_argument("elf", type=Path)
    parser.add_argument("params")
    parser.add_argument("config")
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args(argv)
    run = run_guest(args.elf, json.loads(args.params), json.loads(args.config), trace=args.trace)
    print(json.dumps(run.memory))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
