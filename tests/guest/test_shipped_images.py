"""The demo images that ship with the package are exactly what the sources build."""

from __future__ import annotations

import pytest

from bootimage import build_image
from kernel.config import KernelConfig
from tests.conftest import ARCHES
from userland import demo_image
from userland.build import SHIPPED


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_image_is_reproducible_from_source(guest_elves, arch: str, name: str) -> None:
    shipped = demo_image(arch, name).read_bytes()
    rebuilt = build_image(guest_elves[arch][name].read_bytes(), KernelConfig())
    assert rebuilt == shipped, f"{name}-{arch}.img is stale: run `make images`"
