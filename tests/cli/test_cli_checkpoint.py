"""``capsule cc --checkpoint-object`` (capsule's checkpoint object extension, not seL4):
the checkpointer guest built with and without it. How every extension's option reaches
the image: tests/cli/test_cli_extensions.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_cli_cc import command_path, shell

ROOT = Path(__file__).resolve().parents[2]


def test_cc_builds_the_checkpointer_with_and_without_the_extension(tmp_path: Path) -> None:
    pytest.importorskip("ziglang")
    env = command_path(tmp_path)
    source = ROOT / "userland" / "tests" / "checkpointer.c"
    include = ROOT / "userland" / "tests"
    built = shell(f"capsule cc {source} -I {include} --checkpoint-object -o on.img",
                  tmp_path, env)
    assert built.returncode == 0, built.stderr
    run = shell("capsule run on.img", tmp_path, env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "verdict: 11 passed, 0 failed" in run.stdout
    built = shell(f"capsule cc {source} -I {include} -o off.img", tmp_path, env)
    assert built.returncode == 0, built.stderr
    run = shell("capsule run off.img", tmp_path, env)
    assert run.returncode == 10, run.stdout + run.stderr
    first = run.stdout.splitlines()[0]
    assert first.startswith("CKPTG0001 FAIL") and "InvalidArgument" in first
