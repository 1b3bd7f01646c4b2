"""The program the API's examples run: the README walk-through's ``prog.c``, built per
architecture as ``capsule cc prog.c -o prog.img --elf prog.elf`` builds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bootimage import build_image
from kernel.abi.arch import Arch
from kernel.config import KernelConfig
from tests.cli.test_cli_cc import readme_program
from userland.toolchain import build_program


@pytest.fixture(scope="session")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """arch -> a directory holding prog.c, prog.elf and prog.img of that architecture."""
    pytest.importorskip("ziglang")
    dirs = {}
    for arch in ("riscv64", "aarch64"):
        work = tmp_path_factory.mktemp(f"prog-{arch}")
        (work / "prog.c").write_text(readme_program())
        build_program([Path("prog.c")], arch, Path("prog.elf"), cwd=work)
        elf = (work / "prog.elf").read_bytes()
        (work / "prog.img").write_bytes(build_image(elf, KernelConfig(), Arch.from_name(arch)))
        dirs[arch] = work
    return dirs
