"""Fixtures shared by the emulator's tests."""

from __future__ import annotations

import pytest

from kernel.abi.arch import Arch


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def arch(request: pytest.FixtureRequest) -> Arch:
    """Each architecture in turn."""
    return request.param  # type: ignore[no-any-return]
