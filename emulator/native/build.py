"""Build the native block hook (``blockcount.c``) into a shared library.

``make compiled`` runs it; the block-count tests run it into a temporary folder. It
needs the C compiler Python was built with (``sysconfig``'s CC, as mypyc does) and
Unicorn's headers, which the ``unicorn`` wheel ships.

    python -m emulator.native.build OUT.so
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

import unicorn

__all__ = ["SOURCE", "BuildError", "build_block_library"]

SOURCE = Path(__file__).with_name("blockcount.c")


class BuildError(Exception):
    """The library could not be built (no compiler, no headers, a compile error)."""


def build_block_library(out: Path) -> Path:
    """Compile ``blockcount.c`` into the shared library ``out``; returns ``out``."""
    include = Path(unicorn.__file__).parent / "include"
    if not (include / "unicorn" / "unicorn.h").is_file():
        raise BuildError(f"no Unicorn headers in {include}")
    compiler = shlex.split(sysconfig.get_config_var("CC") or "cc")
    command = [*compiler, "-O2", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror",
               f"-I{include}", str(SOURCE), "-o", str(out)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        raise BuildError(f"cannot run {compiler[0]}: {error}") from None
    if result.returncode:
        raise BuildError(f"{shlex.join(command)} failed:\n{result.stderr}")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m emulator.native.build OUT.so", file=sys.stderr)
        return 2
    try:
        build_block_library(Path(argv[0]))
    except BuildError as error:
        print(f"emulator.native.build: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
