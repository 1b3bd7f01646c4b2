"""Where a benchmark phase's time goes: ``python -m bench.profile [--arch A] [--phase P]``.

Runs the ``ipc`` benchmark guest with cProfile switched on only between the phase's
marks (``@b P`` ... ``@e P``), so boot and set-up are not in the profile, and prints the
functions with the most own time (tottime), then the most cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
from pathlib import Path

from bench.guest import patch_params
from kernel.abi.arch import Arch
from kernel.config import KernelConfig

__all__ = ["main", "profile_phase"]

REPO = Path(__file__).resolve().parent.parent
PHASES = {"rt": 0, "rt_cap": 1, "null": 2, "signal": 5}
"""Phase of ipc.c -> index of its parameter (bench.h)."""


def profile_phase(arch: Arch, phase: str, count: int, config: KernelConfig,
                  top: int = 25) -> str:
    """The profile of ``count`` operations of ``phase`` as text (two pstats tables)."""
    from bootimage import build_image, load_image
    from emulator.session import Session
    from userland.build import build_all

    elf = build_all(REPO / "userland" / "build", images=False)[arch.short]["ipc"]
    params = [0] * 6
    params[PHASES[phase]] = count
    loaded = load_image(build_image(patch_params(elf.read_bytes(), params), config))
    profiler = cProfile.Profile()
    line = bytearray()

    def console(byte: int) -> None:
        if byte == ord("@") and not line and profiler_on[0]:
            profiler.disable()  # the end mark's first byte: the phase is over
            profiler_on[0] = False
        if byte != ord("\n"):
            line.append(byte)
            return
        text = line.decode()
        line.clear()
        if text == f"@b {phase}":
            profiler_on[0] = True
            profiler.enable()

    profiler_on = [False]
    session = Session.boot(loaded.root, loaded.config, console)
    result = session.run(2_000_000_000)
    if (result.kind, result.status) != ("halt", 0):
        raise SystemExit(f"the guest failed: {result.message}")
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n")[0])
    parser.add_argument("--arch", choices=[a.short for a in Arch], default="riscv64")
    parser.add_argument("--phase", choices=sorted(PHASES), default="rt")
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--fastpath", choices=["on", "off"], default=None,
                        help="KernelConfig.fastpath, once the kernel has it")
    args = parser.parse_args(argv)
    config = KernelConfig()
    if args.fastpath is not None:
        config = KernelConfig(**{**config.to_dict(), "fastpath": args.fastpath == "on"})
    arch = next(a for a in Arch if a.short == args.arch)
    print(profile_phase(arch, args.phase, args.count, config, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
