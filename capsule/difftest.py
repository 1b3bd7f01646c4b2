"""The differential harness's tools: compare a guest's output on seL4 and on capsule, and
choose the sequence a differential guest runs.

    python -m capsule.difftest compare SEL4_OUTPUT CAPSULE_OUTPUT [--context N]
    python -m capsule.difftest seed ELF --seed N [--steps N] -o OUT.elf

``compare`` reads two captured outputs (a QEMU serial log of seL4 and ``capsule run``'s
stdout, in either order), keeps what the guest printed and reports the first line that
differs, with ``--context`` lines before it: exit status 0 when they agree, 1 when they
differ, 2 on bad input. What it leaves out of both: carriage returns, ANSI colour codes,
the messages seL4's debug kernel prints in the middle of a line (``<<seL4(CPU 0) ...>>``
    and the line end after it,
its userError reports), and every line before the guest's first line (the first that
starts with ``bootinfo:`` or ``difftest seed=``; the whole text when there is none) and
after its last (``extra end:`` or ``difftest done``).

``seed`` writes a copy of a differential guest's ELF (``userland/tests/difftest.c``) with
its ``difftest_seed`` (and ``difftest_steps``) variables set, so that the same file runs
the same sequence on both kernels. See README, "Differential testing".
"""

from __future__ import annotations

import argparse
import io
import re
import struct
import sys
from collections.abc import Sequence
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from kernel.records import dataclass

__all__ = ["Difference", "first_difference", "guest_lines", "main", "patch_words"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SEL4_MESSAGE = re.compile(r"<<seL4\(CPU \d+\).*?>>\n?")
_FIRST = re.compile(r"^(bootinfo:|difftest seed=)")
_LAST = re.compile(r"^(extra end:|difftest done)")


@dataclass(frozen=True, slots=True)
class Difference:
    """The first line (0-based ``index`` among the guest's lines) where two outputs part:
    ``left``/``right`` is None past the end of that output; ``context`` the lines
    before it that both share."""

    index: int
    left: str | None
    right: str | None
    context: tuple[str, ...]

    def describe(self, left_name: str = "left", right_name: str = "right") -> str:
        width = max(len(left_name), len(right_name))
        lines = [f"first difference at guest line {self.index + 1}:"]
        lines += [f"  {'':{width}}  {line}" for line in self.context]
        for name, line in ((left_name, self.left), (right_name, self.right)):
            lines.append(f"  {name:{width}}: {'(output ends)' if line is None else line}")
        return "\n".join(lines)


def guest_lines(text: str) -> list[str]:
    """What the guest printed in a captured output, one entry a line (module docstring)."""
    text = _SEL4_MESSAGE.sub("", _ANSI.sub("", text.replace("\r", "")))
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if _FIRST.match(line)), 0)
    end = next((i + 1 for i in range(start, len(lines)) if _LAST.match(lines[i])), len(lines))
    kept = lines[start:end]
    while kept and kept[-1] == "":
        kept.pop()
    return kept


def first_difference(left: Sequence[str], right: Sequence[str], context: int = 3
                     ) -> Difference | None:
    """The first index where ``left`` and ``right`` differ (a missing line differs from
    any line), with up to ``context`` shared lines before it; None when they are equal."""
    for i in range(max(len(left), len(right))):
        a = left[i] if i < len(left) else None
        b = right[i] if i < len(right) else None
        if a != b:
            return Difference(i, a, b, tuple(left[max(0, i - context) : i]))
    return None


def patch_words(elf: bytes, values: dict[str, int]) -> bytes:
    """``elf`` with each named 8-byte little-endian variable set to its value.

    Raises:
        ValueError: not an ELF, a name is not an 8-byte object symbol, or it lies
            outside the file's loadable contents.
    """
    out = bytearray(elf)
    try:
        parsed = ELFFile(io.BytesIO(elf))
        symtab = parsed.get_section_by_name(".symtab")
        if not isinstance(symtab, SymbolTableSection):
            raise ValueError("the ELF has no symbol table")
        for name, value in values.items():
            found = symtab.get_symbol_by_name(name)
            if not found or found[0]["st_size"] != 8:
                raise ValueError(f"no 8-byte variable {name!r} in the ELF")
            vaddr = found[0]["st_value"]
            segment = next((s for s in parsed.iter_segments() if s["p_type"] == "PT_LOAD"
                            and s["p_vaddr"] <= vaddr and vaddr + 8 <= s["p_vaddr"] + s["p_filesz"]),
                           None)
            if segment is None:
                raise ValueError(f"{name!r} is not in the file's contents")
            struct.pack_into("<Q", out, segment["p_offset"] + vaddr - segment["p_vaddr"],
                             value & (1 << 64) - 1)
    except ELFError as error:
        raise ValueError(f"not a readable ELF: {error}") from None
    return bytes(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m capsule.difftest",
                                     description="capsule's differential harness tools")
    commands = parser.add_subparsers(dest="command", required=True)
    compare = commands.add_parser("compare", help="the first line two outputs differ at")
    compare.add_argument("left", type=Path)
    compare.add_argument("right", type=Path)
    compare.add_argument("--context", type=int, default=3)
    seed = commands.add_parser("seed", help="a differential guest's ELF with a seed set")
    seed.add_argument("elf", type=Path)
    seed.add_argument("--seed", type=int, required=True)
    seed.add_argument("--steps", type=int)
    seed.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "compare":
            left = guest_lines(args.left.read_text(errors="replace"))
            right = guest_lines(args.right.read_text(errors="replace"))
            diff = first_difference(left, right, max(0, args.context))
            if diff is None:
                print(f"same: {len(left)} lines")
                return 0
            print(diff.describe(str(args.left), str(args.right)))
            return 1
        values = {"difftest_seed": args.seed}
        if args.steps is not None:
            values["difftest_steps"] = args.steps
        args.output.write_bytes(patch_words(args.elf.read_bytes(), values))
        return 0
    except (OSError, ValueError) as error:
        print(f"capsule.difftest: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
