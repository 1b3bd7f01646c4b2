"""Images the CLI tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from bootimage import build_image
from kernel.config import KernelConfig
from tests.conftest import ARCHES


@pytest.fixture(scope="module")
def retype_images(guest_elves: dict[str, dict[str, Path]],
                  tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """userland/tests/retype.c built into an image per architecture: its first syscall
    retypes one endpoint into the slot right after the last boot cap."""
    out = tmp_path_factory.mktemp("retype")
    paths = {}
    for arch in ARCHES:
        path = out / f"retype-{arch}.img"
        path.write_bytes(build_image(guest_elves[arch]["retype"].read_bytes(), KernelConfig()))
        paths[arch] = str(path)
    return paths
