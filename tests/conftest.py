"""Shared fixtures: guest programs built from the sources in userland/, once per session.

Tests run them in-process through :class:`emulator.session.Session` (fast, and the
kernel's state stays inspectable) or through the real ``capsule`` command.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from bootimage import build_image, load_image
from emulator.machine import RunResult
from emulator.session import Session
from kernel.config import KernelConfig
from kernel.views.invariants import enable_invariant_checks
from userland.build import build_all, image_config


@dataclass
class GuestRun:
    output: str
    result: RunResult
    session: Session


@pytest.fixture(scope="session")
def guest_elves(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    return build_all(tmp_path_factory.mktemp("guests"), images=False)


@pytest.fixture(scope="session")
def run_guest(guest_elves: dict[str, dict[str, Path]]):  # type: ignore[no-untyped-def]
    def run(name: str, arch: str, config: KernelConfig | None = None,
            max_instructions: int = 50_000_000) -> GuestRun:
        data = build_image(guest_elves[arch][name].read_bytes(), config or image_config(name))
        loaded = load_image(data)
        out = bytearray()
        session = Session.boot(loaded.root, loaded.config, out.append)
        enable_invariant_checks(session.kernel)
        result = session.run(max_instructions)
        return GuestRun(out.decode(), result, session)

    return run


ARCHES = ["riscv64", "aarch64"]
