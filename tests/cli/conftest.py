"""Images the CLI tests share, and gdb-multiarch when it is installed."""

from __future__ import annotations

import os
import shutil
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


REQUIRE_GDB = "CAPSULE_REQUIRE_GDB"
"""Set to 1 (``.ci/run`` does) to make a missing gdb-multiarch fail the tests that need
it instead of skipping them, so that CI cannot pass by skipping them."""


def gdb_or_skip() -> str:
    """The path of gdb-multiarch; without it, skip the calling test (fail it when
    ``CAPSULE_REQUIRE_GDB=1``). Looked up on PATH at each call."""
    path = shutil.which("gdb-multiarch")
    if path is None:
        if os.environ.get(REQUIRE_GDB) == "1":
            pytest.fail(f"gdb-multiarch is not installed and {REQUIRE_GDB}=1 requires it")
        pytest.skip("gdb-multiarch is not installed (Debian: apt-get install gdb-multiarch; "
                    ".ci/run installs it)")
    return path


@pytest.fixture
def gdb_multiarch() -> str:
    """gdb-multiarch's path, for the tests that drive the real gdb (see :func:`gdb_or_skip`)."""
    return gdb_or_skip()
