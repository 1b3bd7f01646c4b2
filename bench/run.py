"""capsule's benchmarks: ``make bench`` (or ``python -m bench.run``).

Every kernel figure is measured next to its raw-Unicorn floor in the same run and
reported as a ratio, because the machines are shared and noisy: absolute rates move,
ratios much less. Results go to a JSON file (machine, versions, date, every sample) and
a short table on stdout. Figures are medians over ``--repeat`` runs.

Each figure is a dict with ``median``, ``samples``, ``unit``, ``floor`` (what it is
compared with), ``floor_value`` (that comparison's number, from this run) and ``ratio``
(``median / floor_value``); a figure that cannot be measured yet is
``{"not_measured": "needs ..."}`` instead. What each figure measures: bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.floors import FLOORS, bare_unicorn_seconds, measure_floor
from bench.guest import GuestRun, memory_in_fresh_process, run_guest
from bench.macro import (
    macro_runs,
    measure_breakdown,
    meters_unavailable,
    phase_instructions,
    startup_seconds,
)
from emulator.blockcount import block_library
from kernel.abi.arch import Arch
from kernel.config import KernelConfig

__all__ = ["Sizes", "main", "run_benchmarks"]

REPO = Path(__file__).resolve().parent.parent

SCALE_CNODE_BITS = 17
"""Root CNode of the scale and memory images: 131,072 slots, room for 100,000 caps."""

NOT_MEASURED: dict[str, str] = {}
"""Figure -> what it needs, for figures whose kernel parts are not there yet (the JSON
then says ``{"not_measured": "needs ..."}`` instead of a number)."""


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does (``make bench`` defaults; the smoke test
    passes tiny ones)."""

    traps: int = 200_000
    """Traps per floor measurement and per null-syscall run."""
    repeat: int = 3
    """Runs per figure; figures are medians."""
    rounds: int = 20_000
    """Round trips (and null syscalls) per IPC run; cap round trips, pairs: half."""
    retype_objects: int = 25_600
    scale_threads: int = 1_000
    scale_caps: int = 100_000
    mem_objects: int = 100_000
    macro_rounds: int = 100
    touch_mib: int = 100
    """MiB the large-RAM memory guest writes (one word per page)."""
    """Child processes spawned, served and torn down per macro run."""
    suite: str | None = "tests/guest"
    """pytest arguments for the guest-suite wall time (None: not measured)."""


LARGE_RAM = 3 << 30
"""The large-RAM figure's RAM: what seL4's simulate script gives qemu-riscv-virt."""


def _repeat(fn: Callable[[], float], repeat: int) -> dict[str, Any]:
    samples = [fn() for _ in range(repeat)]
    return {"median": statistics.median(samples), "samples": samples}


def _figure(samples: Sequence[float], unit: str, floor: str, floor_value: float,
            **extra: Any) -> dict[str, Any]:
    median = statistics.median(samples)
    return {"median": median, "samples": list(samples), "unit": unit, "floor": floor,
            "floor_value": floor_value, "ratio": median / floor_value, **extra}


def _null_syscall_rate(elf: bytes, syscalls: int) -> float:
    from bootimage import build_image, load_image
    from emulator.session import Session

    loaded = load_image(build_image(elf, KernelConfig()))
    session = Session.boot(loaded.root, loaded.config, lambda byte: None)
    # Each loop iteration is 3 instructions (call, trap, branch) plus the wrapper's
    # register set-up; the instruction limit bounds the run to about ``syscalls`` traps.
    start = time.perf_counter()
    result = session.run(max_instructions=syscalls * 3)
    elapsed = time.perf_counter() - start
    return result.kernel_entries / elapsed


_BOOT_SNIPPET = """
import sys
from bootimage import load_image_file
from emulator.session import Session
loaded = load_image_file(sys.argv[1])
Session.boot(loaded.root, loaded.config, lambda b: None).run(max_instructions=1)
"""

_BOOT_FLOOR_SNIPPET = """
from unicorn import Uc, UC_ARCH_RISCV, UC_MODE_RISCV64
uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV64)
uc.mem_map(0x80000000, 0x1000)
uc.mem_write(0x80000000, bytes.fromhex('13000000'))
uc.emu_start(0x80000000, 0, 0, 1)
"""


def _subprocess_seconds(args: list[str], pycache: Path) -> float:
    """Wall time of a new interpreter running ``args``, with its modules' bytecode cached
    in ``pycache`` (as an installed package has it; PYTHONDONTWRITEBYTECODE in the
    environment would otherwise make every start compile every module from source)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, cwd=REPO, capture_output=True, env=env)
    return time.perf_counter() - start


def _build_guests(out_dir: Path) -> dict[str, dict[str, Path]]:
    from userland.build import build_all

    return build_all(out_dir, images=False)


def kernel_variants() -> dict[str, dict[str, object]]:
    """Name suffix -> KernelConfig overrides under which the IPC figures are measured:
    the fastpath off and on once KernelConfig has a ``fastpath`` field, else the one
    kernel there is."""
    if "fastpath" in {f.name for f in fields(KernelConfig)}:
        return {"[slowpath]": {"fastpath": False}, "[fastpath]": {"fastpath": True}}
    return {"": {}}


def _runs(elf: Path, params: Sequence[int], config: Mapping[str, object],
          repeat: int) -> list[GuestRun]:
    return [run_guest(elf, params, config) for _ in range(repeat)]


def _phase_rates(runs: list[GuestRun], phase: str) -> list[float]:
    return [run.phases[phase].rate for run in runs]


def _macro_figure(arch: Arch, elf: Path, sizes: Sizes,
                  floors: dict[str, Any]) -> dict[str, Any]:
    """The macro workload's figure with its breakdown (bench.macro); adds its floor,
    which needs the guest's instruction count, to ``floors`` as ``unicorn_macro``."""
    config = {"root_cnode_bits": SCALE_CNODE_BITS}
    rounds, rep = sizes.macro_rounds, sizes.repeat
    runs = macro_runs(elf, rounds, config, rep)
    instructions = phase_instructions(elf, runs[0], config)
    tick = KernelConfig().tick_instructions
    bare = [bare_unicorn_seconds(arch, instructions, tick) for _ in range(rep)]
    rates = [rounds / seconds for seconds in bare]
    floor: dict[str, Any] = {"median": statistics.median(rates), "samples": rates,
                             "unit": "rounds/s", "instructions": instructions,
                             "slice_instructions": tick}
    floors["unicorn_macro"] = floor
    why = meters_unavailable()
    breakdown: dict[str, Any] = ({"not_measured": why} if why is not None
                                 else measure_breakdown(elf, rounds, config).as_json())
    breakdown["python_startup_s"] = _repeat(
        lambda: startup_seconds(elf, rounds, config, REPO), rep)
    return _figure(_phase_rates(runs, "macro"), "rounds/s", "unicorn_macro",
                   floor["median"], rounds=rounds, instructions_per_round=instructions / rounds,
                   kernel_entries_per_round=runs[0].phases["macro"].entries / rounds,
                   breakdown=breakdown)


def _arch_figures(arch: Arch, elves: dict[str, Path], sizes: Sizes,
                  floors: dict[str, Any]) -> dict[str, Any]:
    """Every per-architecture figure (floors for ``arch`` already measured; the macro
    figure adds its own)."""
    name = arch.short
    rep = sizes.repeat
    figs: dict[str, Any] = {}
    trap = floors["trap_read8_write1"]["median"]
    half_switch = floors["switch_same_space"]["median"] / 2
    half_other = floors["switch_other_space"]["median"] / 2

    null = _repeat(lambda: _null_syscall_rate(elves["null_syscall"].read_bytes(), sizes.traps),
                   rep)
    figs[f"{name}.null_syscall"] = _figure(null["samples"], "syscalls/s", "trap_read8_write1",
                                           trap)

    n = sizes.rounds
    for suffix, overrides in kernel_variants().items():
        runs = _runs(elves["ipc"], [n, n // 2, 0, 0, 0, n, n], overrides, rep)
        figs[f"{name}.ipc_roundtrip{suffix}"] = _figure(
            _phase_rates(runs, "rt"), "round trips/s", "switch_same_space / 2", half_switch,
            config=overrides)
        figs[f"{name}.ipc_roundtrip_cap{suffix}"] = _figure(
            _phase_rates(runs, "rt_cap"), "round trips/s", "switch_same_space / 2",
            half_switch, config=overrides)
        figs[f"{name}.ipc_roundtrip_cross_space{suffix}"] = _figure(
            _phase_rates(runs, "rt_other"), "round trips/s", "switch_other_space / 2",
            half_other, config=overrides)
        figs[f"{name}.signal_wait{suffix}"] = _figure(
            _phase_rates(runs, "signal"), "signals/s", "switch_same_space / 2", half_switch,
            config=overrides, note="Signal wakes a higher-priority waiter, which Waits again")
    for key, why in NOT_MEASURED.items():
        figs[f"{name}.{key}"] = {"not_measured": why}

    cap_config = {"root_cnode_bits": SCALE_CNODE_BITS}
    runs = _runs(elves["capops"], [sizes.retype_objects, n // 2, 0], cap_config, rep)
    figs[f"{name}.untyped_retype"] = _figure(
        _phase_rates(runs, "retype"), "objects/s", "trap_read8_write1", trap,
        note="endpoints, 256 per Untyped_Retype call: the rate is per object")
    figs[f"{name}.cnode_copy_delete"] = _figure(
        _phase_rates(runs, "copy_delete"), "pairs/s", "trap_read8_write1 / 2", trap / 2)

    # Scale: the same loops in a 2-thread system and in one with extra threads and caps,
    # same image configuration, the two runs alternating so that a noisy stretch of the
    # shared machine hits both alike.
    base: list[GuestRun] = []
    full: list[GuestRun] = []
    for _ in range(rep):
        base.append(run_guest(elves["ipc"], [n, 0, sizes.traps, 0, 0, 0, 0], cap_config))
        full.append(run_guest(elves["ipc"], [n, 0, sizes.traps, sizes.scale_threads,
                                              sizes.scale_caps, 0, 0], cap_config))
    population = {"extra_threads": sizes.scale_threads, "extra_caps": sizes.scale_caps}
    for phase, fig in (("null", "null_syscall"), ("rt", "ipc_roundtrip")):
        baseline = statistics.median(_phase_rates(base, phase))
        figs[f"{name}.scale.{fig}"] = _figure(
            _phase_rates(full, phase), "ops/s", f"{name}.{fig} with 2 threads, same image",
            baseline, baseline_samples=_phase_rates(base, phase), population=population)

    figs[f"{name}.macro_workload"] = _macro_figure(arch, elves["macro"], sizes, floors)

    params = [0, 0, sizes.mem_objects]
    mem = [memory_in_fresh_process(elves["capops"], params, cap_config) for _ in range(rep)]
    per_object = [(m["after"] - m["before"]) / sizes.mem_objects for m in mem]
    traced = memory_in_fresh_process(elves["capops"], params, cap_config, trace=True)
    figs[f"{name}.memory_per_endpoint"] = _figure(
        per_object, "bytes", "target 1 KiB", 1024.0, objects=sizes.mem_objects,
        traced_bytes_per_object=(traced["traced:after"] - traced["traced:before"])
        / sizes.mem_objects,
        note="growth of a fresh process's resident set while the guest retypes the "
             "endpoints; traced_bytes_per_object: Python allocations still live (tracemalloc)")

    # A guest with seL4's simulate RAM size for qemu-riscv-virt that uses little of it.
    touched = [memory_in_fresh_process(elves["touch"], [sizes.touch_mib],
                                       {"ram_size": LARGE_RAM}) for _ in range(rep)]
    figs[f"{name}.memory_large_ram"] = _figure(
        [m["after"] for m in touched], "bytes", "target 400 MB", 400e6,
        ram_size=LARGE_RAM, touched_mib=sizes.touch_mib,
        before=statistics.median(m["before"] for m in touched),
        note="resident set of a fresh process once the guest (touch.c) has written one "
             "word in each page of its first touched_mib MiB, with ram_size of RAM")
    return figs


def _suite_seconds(args: str) -> dict[str, Any]:
    """Wall time of one pytest run of the guest suite (2 workers, as ``make test``)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2",
                           "-p", "no:cacheprovider", *shlex.split(args)],
                          cwd=REPO, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    seconds = time.perf_counter() - start
    tail = proc.stdout.strip().splitlines()[-1:] or [""]
    return {"median": seconds, "samples": [seconds], "unit": "s", "floor": None,
            "floor_value": None, "ratio": None, "command": f"pytest -q -n 2 {args}",
            "passed": proc.returncode == 0, "summary": tail[0]}


def run_benchmarks(sizes: Sizes, build_dir: Path = REPO / "userland" / "build") -> dict[str, Any]:
    """All figures as a JSON-ready dict (see the module docstring), the guests built
    into ``build_dir``."""
    built = _build_guests(build_dir)
    figures: dict[str, Any] = {}
    floors: dict[str, Any] = {}
    for arch in Arch:
        name = arch.short
        floors[name] = {
            floor: _repeat(lambda a=arch, f=floor: measure_floor(a, f, sizes.traps),  # type: ignore[misc]
                           sizes.repeat)
            for floor in FLOORS
        }
        figures.update(_arch_figures(arch, built[name], sizes, floors[name]))
    hello = REPO / "userland" / "images" / "hello-riscv64.img"
    with tempfile.TemporaryDirectory() as pycache:
        for snippet in ([_BOOT_FLOOR_SNIPPET], [_BOOT_SNIPPET, str(hello)]):
            _subprocess_seconds(["-c", *snippet], Path(pycache))  # fills the cache
        boot_floor = _repeat(lambda: _subprocess_seconds(["-c", _BOOT_FLOOR_SNIPPET],
                                                         Path(pycache)), sizes.repeat)
        boot = _repeat(lambda: _subprocess_seconds(["-c", _BOOT_SNIPPET, str(hello)],
                                                   Path(pycache)), sizes.repeat)
    floors["interpreter_to_first_instruction"] = boot_floor
    figures["riscv64.boot_to_first_instruction"] = _figure(
        boot["samples"], "s", "interpreter_to_first_instruction", boot_floor["median"])
    if sizes.suite is not None:
        figures["guest_suite_wall_time"] = _suite_seconds(sizes.suite)
    else:
        figures["guest_suite_wall_time"] = {"not_measured": "skipped (--no-suite)"}
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "versions": {pkg: metadata.version(pkg) for pkg in ("unicorn", "capstone", "capsule")},
        "config": {f.name: getattr(sizes, f.name) for f in fields(Sizes)}
        | {"kernel_variants": kernel_variants(), "kernel": kernel_build(),
           "instruction_counter": instruction_counter()},
        "floors": floors,
        "figures": figures,
    }


def kernel_build() -> str:
    """Which kernel these figures are of: ``"pure Python"`` or ``"compiled (mypyc)"``
    (``make compiled``, with build/compiled first on the path)."""
    return "compiled (mypyc)" if meters_unavailable() is not None else "pure Python"


def instruction_counter() -> str:
    """Which counter times the slices: ``"native block hook"`` (the compiled build's
    default, ``emulator.blockcount``) or ``"Unicorn's count"``."""
    return "native block hook" if block_library() is not None else "Unicorn's count"


def _table(results: dict[str, Any]) -> str:
    lines = [f"{'figure':<42} {'median':>12} {'unit':<14} {'ratio':>8}  floor"]
    for name, fig in results["figures"].items():
        if "not_measured" in fig:
            lines.append(f"{name:<42} {'-':>12} {'':<14} {'':>8}  not measured: "
                         f"{fig['not_measured']}")
            continue
        ratio = "" if fig["ratio"] is None else f"{fig['ratio']:.3f}x"
        lines.append(f"{name:<42} {fig['median']:>12,.4g} {fig['unit']:<14} {ratio:>8}  "
                     f"{fig['floor'] or ''}")
        if "breakdown" in fig and "not_measured" in fig["breakdown"]:
            lines.append(f"  breakdown not measured: {fig['breakdown']['not_measured']}")
        elif "breakdown" in fig:
            lines.extend(_breakdown_lines(fig["breakdown"]))
    return "\n".join(lines)


def _breakdown_lines(breakdown: dict[str, Any], kinds: int = 6) -> list[str]:
    """A macro breakdown as indented table lines: the parts of the wall time, the
    costliest kernel-entry kinds, Unicorn's counts and the interpreter's start-up."""
    wall = breakdown["wall_s"]
    lines = [f"  breakdown of one metered run: {wall:.3f} s wall"]
    for part, seconds in breakdown["parts_s"].items():
        lines.append(f"    {part:<38} {seconds:>9.3f} s {seconds / wall:>6.1%}")
    for kind, bucket in list(breakdown["kernel_entries"].items())[:kinds]:
        lines.append(f"      kernel: {kind:<30} {bucket['seconds']:>9.3f} s "
                     f"{bucket['count']:>7,} entries")
    for name, bucket in breakdown["memory"].items():
        lines.append(f"      memory: {name:<30} {bucket['seconds']:>9.3f} s "
                     f"{bucket['count']:>7,} calls {bucket.get('bytes', 0):>12,} bytes")
    unicorn = breakdown["unicorn"]
    lines.append("    unicorn: " + ", ".join(
        f"{key} {value}" if isinstance(value, bool) else f"{key} {value:,}"
        for key, value in unicorn.items() if value is not None))
    lines.append(f"    python start-up to the first instruction: "
                 f"{breakdown['python_startup_s']['median']:.3f} s")
    return lines


def main(argv: list[str] | None = None) -> int:
    defaults = Sizes()
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--traps", type=int, default=defaults.traps,
                        help="traps per floor measurement and null-syscall run")
    parser.add_argument("--repeat", type=int, default=defaults.repeat,
                        help="runs per figure (median)")
    parser.add_argument("--rounds", type=int, default=defaults.rounds,
                        help="round trips per IPC run (cap round trips and copy pairs: half)")
    parser.add_argument("--retype-objects", type=int, default=defaults.retype_objects)
    parser.add_argument("--scale-threads", type=int, default=defaults.scale_threads)
    parser.add_argument("--scale-caps", type=int, default=defaults.scale_caps)
    parser.add_argument("--mem-objects", type=int, default=defaults.mem_objects)
    parser.add_argument("--macro-rounds", type=int, default=defaults.macro_rounds,
                        help="child processes per macro run")
    parser.add_argument("--touch-mib", type=int, default=defaults.touch_mib,
                        help="MiB the large-RAM guest writes (default: %(default)s)")
    parser.add_argument("--suite", default=defaults.suite,
                        help="pytest arguments of the timed guest suite (default: %(default)s)")
    parser.add_argument("--no-suite", action="store_true", help="do not time the guest suite")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.json")
    parser.add_argument("--build-dir", type=Path, default=REPO / "userland" / "build",
                        help="where the guest programs are built (default: %(default)s)")
    args = parser.parse_args(argv)
    sizes = Sizes(traps=args.traps, repeat=args.repeat, rounds=args.rounds,
                  retype_objects=args.retype_objects, scale_threads=args.scale_threads,
                  scale_caps=args.scale_caps, mem_objects=args.mem_objects,
                  macro_rounds=args.macro_rounds, touch_mib=args.touch_mib,
                  suite=None if args.no_suite else args.suite)
    results = run_benchmarks(sizes, args.build_dir)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(_table(results))
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
