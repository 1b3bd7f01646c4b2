"""The demo images that ship with the package are exactly what the sources build."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bootimage import build_image
from kernel.config import KernelConfig
from tests.conftest import ARCHES
from userland import demo_image
from userland.build import SHIPPED, USERLAND, build_all


@pytest.fixture(scope="module")
def reproducible_elves(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    """The shipped programs built as the shipped images are: every machine path mapped
    away (the suite's other guests are local builds, which name their sources by their
    absolute path for gdb)."""
    return build_all(tmp_path_factory.mktemp("reproducible"), images=False,
                     reproducible=True, only=SHIPPED)


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_image_is_reproducible_from_source(reproducible_elves, arch: str,
                                                   name: str) -> None:
    shipped = demo_image(arch, name).read_bytes()
    rebuilt = build_image(reproducible_elves[arch][name].read_bytes(), KernelConfig())
    assert rebuilt == shipped, f"{name}-{arch}.img is stale: run `make images`"


def test_local_builds_name_their_sources_absolutely(guest_elves) -> None:
    """What lets gdb find the sources of a local build from any directory."""
    elf = guest_elves["riscv64"]["hello"].read_bytes()
    assert str(USERLAND).encode() in elf or os.path.realpath(USERLAND).encode() in elf
