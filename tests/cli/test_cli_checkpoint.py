"""``--checkpoint-object`` (capsule's checkpoint object extension, not seL4) for
``capsule image build`` and ``capsule cc``: the image carries the choice, the kernel
honours it, and an image built without it carries exactly the configuration it carried
before the extension existed (no key at all)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bootimage import load_image
from bootimage.build import encode_config
from kernel.config import KernelConfig
from tests.cli.test_cli_cc import command_path, shell
from tests.cli.test_cli_image import in_process, write
from tests.elfgen import EM_RISCV, simple_elf

ROOT = Path(__file__).resolve().parents[2]


def test_image_build_carries_the_extension_only_when_asked(tmp_path: Path) -> None:
    elf = write(tmp_path / "a.elf", simple_elf(EM_RISCV))
    on, off = tmp_path / "on.img", tmp_path / "off.img"
    assert in_process("build", elf, "-o", str(on), "--checkpoint-object").status == 0
    assert in_process("build", elf, "-o", str(off)).status == 0
    assert load_image(on.read_bytes()).config.checkpoint_object is True
    assert load_image(off.read_bytes()).config == KernelConfig()
    described = json.loads(in_process("inspect", str(on), "--json").stdout)
    assert described["config"]["checkpoint_object"] is True
    described = json.loads(in_process("inspect", str(off), "--json").stdout)
    assert "checkpoint_object" not in described["config"]
    assert b"checkpoint" not in encode_config(KernelConfig())
    assert b'"checkpoint_object":true' in encode_config(KernelConfig(checkpoint_object=True))


def test_a_non_boolean_extension_key_is_refused() -> None:
    with pytest.raises(ValueError, match="checkpoint_object"):
        KernelConfig.from_dict({"checkpoint_object": 1})


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
