"""Shared fixtures: guest programs built from the sources in userland/, once per session.

Tests run them in-process through :class:`emulator.session.Session` (fast, and the
kernel's state stays inspectable) or through the real ``capsule`` command.

With ``CAPSULE_COMPILED=1`` (``make test-compiled``) the session refuses to start unless
the kernel and the emulator's machine it imports, and those a ``python -m capsule.cli``
subprocess imports, are the mypyc-compiled ones, so that run can never quietly test pure
Python instead.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import pkgutil
import subprocess
import sys
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


COMPILED = os.environ.get("CAPSULE_COMPILED") == "1"
"""Whether this run is meant to test the mypyc-compiled kernel (``make test-compiled``).
Compiled functions call each other directly, so a test that replaces a kernel function
by assignment sees no calls in this mode."""


def _is_extension(path: str | None) -> bool:
    return path is not None and path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def _pure_python_modules() -> list[str]:
    """The kernel modules and the emulator's machine, all imported here, that did not load
    from a compiled extension."""
    import kernel

    names = ["kernel", *[info.name for info in pkgutil.walk_packages(kernel.__path__, "kernel.")],
             "emulator.machine"]
    return [name for name in names
            if not _is_extension(getattr(importlib.import_module(name), "__file__", None))]


_SUBPROCESS_KERNEL = ("import capsule.cli, kernel.kernel, emulator.machine; "
                      "print(kernel.kernel.__file__); print(emulator.machine.__file__)")


def pytest_sessionstart(session: pytest.Session) -> None:
    if not COMPILED:
        return
    pure = _pure_python_modules()
    if pure:
        raise pytest.UsageError(f"CAPSULE_COMPILED=1 but these modules are pure Python: "
                                f"{', '.join(pure)} (run make test-compiled)")
    child = subprocess.run([sys.executable, "-c", _SUBPROCESS_KERNEL], capture_output=True,
                           text=True, timeout=60, check=False)
    files = child.stdout.split()
    if len(files) != 2 or not all(_is_extension(file) for file in files):
        raise pytest.UsageError("CAPSULE_COMPILED=1 but a subprocess imports the kernel and machine from "
                                f"{child.stdout.strip() or child.stderr.strip()!r} "
                                "(run make test-compiled)")
