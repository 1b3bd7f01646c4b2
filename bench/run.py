"""capsule's benchmarks: ``make bench`` (or ``python -m bench.run``).

Every kernel figure is measured next to its raw-Unicorn floor in the same run and
reported as a ratio, because the machines are shared and noisy: absolute rates move,
ratios much less. Results go to a JSON file (machine, versions, date, every sample) and
a short table on stdout. Figures are medians over ``--repeat`` runs.

Figures so far: the null system call (seL4_Yield with nothing else to run) against the
"trap + 8 registers read + 1 written" floor; IPC ping-pong between two threads, every
kernel entry a thread switch, in one address space against the "switch, same address
space" floor and across two address spaces against the "switch, address space
switched" floor (what switching address spaces costs in Unicorn's translation caches,
the only cache capsule must throw away there); and boot to the root task's first
instruction against "interpreter start to a first guest instruction" in bare Unicorn.
Retype and scale figures arrive with the kernel features they measure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.floors import FLOORS, measure_floor
from kernel.abi.arch import Arch

__all__ = ["main", "run_benchmarks"]

REPO = Path(__file__).resolve().parent.parent


def _median(samples: list[float]) -> float:
    return statistics.median(samples)


def _repeat(fn: Callable[[], float], repeat: int) -> dict[str, Any]:
    samples = [fn() for _ in range(repeat)]
    return {"median": _median(samples), "samples": samples}


def _null_syscall_rate(arch: Arch, elf: bytes, syscalls: int) -> float:
    from bootimage import build_image, load_image
    from emulator.session import Session
    from kernel.config import KernelConfig

    loaded = load_image(build_image(elf, KernelConfig()))
    session = Session.boot(loaded.root, loaded.config, lambda byte: None)
    # Each loop iteration is 3 instructions (call, trap, branch) plus the wrapper's
    # register set-up; the instruction limit bounds the run to about ``syscalls`` traps.
    start = time.perf_counter()
    result = session.run(max_instructions=syscalls * 3)
    elapsed = time.perf_counter() - start
    return result.kernel_entries / elapsed


def _switch_rate(arch: Arch, elf: bytes, switches: int) -> float:
    """Kernel entries per second of a ping-pong guest: each entry is one IPC and one
    thread switch. About 8 instructions run per entry on both architectures."""
    from bootimage import build_image, load_image
    from emulator.session import Session
    from kernel.config import KernelConfig

    loaded = load_image(build_image(elf, KernelConfig()))
    session = Session.boot(loaded.root, loaded.config, lambda byte: None)
    start = time.perf_counter()
    result = session.run(max_instructions=switches * 8)
    elapsed = time.perf_counter() - start
    if result.kind != "limit":
        raise RuntimeError(f"ping-pong guest ended early: {result.message}")
    return result.kernel_entries / elapsed


_SWITCH_FIGURES = {
    "ipc_switch_same_space": ("pingpong_same", "switch_same_space"),
    "ipc_switch_other_space": ("pingpong_other", "switch_other_space"),
}
"""figure -> (guest program, floor)"""


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


def _subprocess_seconds(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, cwd=REPO, capture_output=True)
    return time.perf_counter() - start


def _build_guests() -> dict[str, dict[str, Path]]:
    from userland.build import build_all

    return build_all(REPO / "userland" / "build", images=False)


def run_benchmarks(traps: int, repeat: int) -> dict[str, Any]:
    """All figures as a JSON-ready dict (see the module docstring)."""
    elves = _build_guests()
    figures: dict[str, Any] = {}
    floors: dict[str, Any] = {}
    for arch in Arch:
        name = arch.short
        floors[name] = {
            floor: _repeat(lambda a=arch, f=floor: measure_floor(a, f, traps), repeat)  # type: ignore[misc]
            for floor in FLOORS
        }
        elf = elves[name]["null_syscall"].read_bytes()
        null = _repeat(lambda a=arch, e=elf: _null_syscall_rate(a, e, traps), repeat)  # type: ignore[misc]
        floor = floors[name]["trap_read8_write1"]["median"]
        null.update(unit="syscalls/s", floor="trap_read8_write1", ratio=null["median"] / floor)
        figures[f"{name}.null_syscall"] = null
        for figure, (program, floor_name) in _SWITCH_FIGURES.items():
            guest = elves[name][program].read_bytes()
            rate = _repeat(lambda a=arch, e=guest: _switch_rate(a, e, traps), repeat)  # type: ignore[misc]
            rate.update(unit="switches/s", floor=floor_name,
                        ratio=rate["median"] / floors[name][floor_name]["median"])
            figures[f"{name}.{figure}"] = rate
    hello = REPO / "userland" / "images" / "hello-riscv64.img"
    boot_floor = _repeat(lambda: _subprocess_seconds(["-c", _BOOT_FLOOR_SNIPPET]), repeat)
    boot = _repeat(lambda: _subprocess_seconds(["-c", _BOOT_SNIPPET, str(hello)]), repeat)
    boot.update(unit="s", floor="interpreter_to_first_instruction",
                ratio=boot["median"] / boot_floor["median"])
    floors["interpreter_to_first_instruction"] = {"median": boot_floor["median"],
                                                  "samples": boot_floor["samples"]}
    figures["riscv64.boot_to_first_instruction"] = boot
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": __import__("os").cpu_count(),
        },
        "versions": {pkg: metadata.version(pkg) for pkg in ("unicorn", "capstone", "capsule")},
        "config": {"traps": traps, "repeat": repeat},
        "floors": floors,
        "figures": figures,
    }


def _table(results: dict[str, Any]) -> str:
    lines = [f"{'figure':<40} {'median':>14} {'unit':<12} {'ratio to floor':>14}"]
    for name, fig in results["figures"].items():
        lines.append(f"{name:<40} {fig['median']:>14,.4g} {fig['unit']:<12} "
                     f"{fig['ratio']:>13.2f}x  ({fig['floor']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--traps", type=int, default=200_000, help="traps per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.json")
    args = parser.parse_args(argv)
    results = run_benchmarks(args.traps, args.repeat)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(_table(results))
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
