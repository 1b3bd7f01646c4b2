"""Every capsule extension (not seL4) is chosen per image the same way: ``capsule image
build --<name>`` (and ``capsule cc --<name>``) puts the choice in the image, the kernel
honours it, and an image built without it carries exactly the configuration it carried
before the extension existed (no key at all). One test per extension field of
``KernelConfig`` (``kernel.config.EXTENSION_FIELDS``), so a new extension is covered
when it is declared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bootimage import load_image
from bootimage.build import encode_config
from kernel.config import EXTENSION_FIELDS, KernelConfig
from tests.cli.test_cli_image import in_process, write
from tests.elfgen import EM_RISCV, simple_elf


@pytest.mark.parametrize("field", EXTENSION_FIELDS)
def test_image_build_carries_an_extension_only_when_asked(tmp_path: Path, field: str) -> None:
    elf = write(tmp_path / "a.elf", simple_elf(EM_RISCV))
    on, off = tmp_path / "on.img", tmp_path / "off.img"
    option = "--" + field.replace("_", "-")
    assert in_process("build", elf, "-o", str(on), option).status == 0
    assert in_process("build", elf, "-o", str(off)).status == 0
    assert getattr(load_image(on.read_bytes()).config, field) is True
    assert load_image(off.read_bytes()).config == KernelConfig()
    described = json.loads(in_process("inspect", str(on), "--json").stdout)
    assert described["config"][field] is True
    described = json.loads(in_process("inspect", str(off), "--json").stdout)
    assert field not in described["config"]
    assert field.encode() not in encode_config(KernelConfig())
    assert f'"{field}":true'.encode() in encode_config(KernelConfig(**{field: True}))


@pytest.mark.parametrize("field", EXTENSION_FIELDS)
def test_a_non_boolean_extension_key_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        KernelConfig.from_dict({field: 1})


def test_sel4s_pmu_option_is_carried_only_when_asked(tmp_path: Path) -> None:
    """KernelArmExportPMUUser is seL4's own option, not an extension, and like one an
    image without it keeps the bytes it had before capsule knew of it."""
    elf = write(tmp_path / "a.elf", simple_elf(EM_RISCV))
    on, off = tmp_path / "on.img", tmp_path / "off.img"
    assert in_process("build", elf, "-o", str(on), "--arm-export-pmu-user").status == 0
    assert in_process("build", elf, "-o", str(off)).status == 0
    assert load_image(on.read_bytes()).config.arm_export_pmu_user is True
    assert load_image(off.read_bytes()).config == KernelConfig()
    assert b"arm_export_pmu_user" not in encode_config(KernelConfig())
    with pytest.raises(ValueError, match="arm_export_pmu_user"):
        KernelConfig.from_dict({"arm_export_pmu_user": 1})
