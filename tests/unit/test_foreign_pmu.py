"""An elfloader image says whether its seL4 kernel exports the PMU to EL0 (seL4's
KernelArmExportPMUUser): its kernel ELF then holds ``msr pmuserenr_el0, xN``, and
``capsule run`` gives the root task the configuration that kernel has."""

from __future__ import annotations

from pathlib import Path

import pytest

from bootimage.foreign import kernel_exports_pmu, load_runnable
from kernel.abi.arch import Arch, abi_for
from tests.elfgen import Seg, make_elf
from tests.unit.test_foreign import MACHINES, cpio, dtb

MSR_PMUSERENR_X7 = bytes.fromhex("079e1bd5")  # d51b9e07, as GNU as encodes it
MRS_X0_PMUSERENR = bytes.fromhex("009e3bd5")  # d53b9e00  # the read: no export


def test_the_instruction_is_found_on_the_instruction_grid_only() -> None:
    assert kernel_exports_pmu(bytes(8) + MSR_PMUSERENR_X7)
    assert not kernel_exports_pmu(bytes(9) + MSR_PMUSERENR_X7 + bytes(3))
    assert not kernel_exports_pmu(bytes(8) + MRS_X0_PMUSERENR)
    assert not kernel_exports_pmu(b"")


def _kernel(body: bytes, arch: Arch) -> bytes:
    """A kernel ELF whose segment holds ``body`` at a 4-aligned file offset."""
    for pad in range(4):
        elf = make_elf(MACHINES[arch], 0x1000, [Seg(0x1000, bytes(pad) + body)])
        if not body or elf.find(body) % 4 == 0:
            return elf
    raise AssertionError("no padding puts the body on the grid")


def _image(arch: Arch, kernel: bytes, root: bytes) -> bytes:
    archive = cpio([("kernel.elf", kernel), ("kernel.dtb", dtb(abi_for(arch).ram_base, 64 << 20)),
                    ("rootserver", root)])
    return make_elf(MACHINES[arch], 0x10000, [Seg(0x10000, b"\x13" * 16 + archive)])


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_an_elfloader_image_takes_its_kernels_pmu_export(
        guest_elves: dict[str, dict[str, Path]], arch: Arch) -> None:
    root = guest_elves[arch.short]["hello"].read_bytes()
    exporting = load_runnable(_image(arch, _kernel(MSR_PMUSERENR_X7, arch), root))
    plain = load_runnable(_image(arch, _kernel(MRS_X0_PMUSERENR, arch), root))
    assert not plain.config.arm_export_pmu_user
    # An Arm option: a RISC-V kernel never has it (the word would be data there).
    assert exporting.config.arm_export_pmu_user is (arch is Arch.AARCH64)
