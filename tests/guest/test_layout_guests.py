"""Guests that check seL4's boot layout and run the differential sequences on capsule.

- ``bootlayout`` prints the whole bootinfo and the extra bootinfo: booted as seL4 16.0.0
  boots a root task on qemu-riscv-virt (3 GiB) and qemu-arm-virt (1 GiB) with a 2^13-slot
  root CNode, it must see what seL4 gives (the device untypeds, the kernel's boot code
  given back, the fragments after the device tree, the RAM above the root server's block,
  the FDT chunk): facts about seL4, in tests/unit/test_platform_layout.py.
- ``difftest`` runs seeded random invocation sequences; its own model of seL4's rules
  (DeleteFirst before FailedLookup, Delete and Revoke succeed) must find no mismatch,
  and a seed gives one output.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bootimage.foreign import load_runnable
from capsule.difftest import patch_words
from emulator.session import Session
from tests.conftest import ARCHES
from tests.unit.test_platform_layout import ARM_DEVICES, ARM_RAM, RISCV_DEVICES, RISCV_RAM

FACTS = {
    # extraLen, the FDT's totalsize, how many RAM untypeds come before the image's end
    # (boot code, fragments after the device tree), how many after the root server block
    "riscv64": (4437, 4421, RISCV_DEVICES, RISCV_RAM[:8], RISCV_RAM[-6:]),
    "aarch64": (7649, 7633, ARM_DEVICES, ARM_RAM[:3], ARM_RAM[-5:]),
}
UNTYPED = re.compile(r"^untyped (\d+): slot=(\d+) paddr=0x([0-9a-f]+) sizeBits=(\d+) device=([01])$",
                     re.M)


def run_elf(elf: bytes, max_instructions: int = 200_000_000) -> tuple[str, Session, str]:
    """Boot ``elf`` as capsule boots a root task's ELF (seL4's layout, RAM as seL4's
    builds describe it) with seL4's sel4test root CNode of 2^13 slots."""
    loaded = load_runnable(elf, root_cnode_bits=13)
    out = bytearray()
    session = Session.boot(loaded.root, loaded.config, out.append)
    result = session.run(max_instructions)
    return out.decode(), session, result.kind


def field(output: str, name: str) -> str:
    found = re.search(rf"^{name}: (.*)$", output, re.M)
    assert found is not None, name
    return found.group(1)


def region(output: str, name: str) -> tuple[int, int]:
    start, end = field(output, name).split("..")
    return int(start), int(end)


@pytest.mark.parametrize("arch", ARCHES)
def test_bootlayout_sees_sel4s_boot_layout(guest_elves: dict[str, dict[str, Path]], arch: str) -> None:
    output, _, kind = run_elf(guest_elves[arch]["bootlayout"].read_bytes())
    assert kind == "halt", output
    extra_len, fdt_size, devices, ram_low, ram_high = FACTS[arch]
    assert int(field(output, "extraLen")) == extra_len
    assert f"extra 0: id=6 len={extra_len}\n" in output  # SEL4_BOOTINFO_HEADER_FDT
    assert f"fdt: magic=0xd00dfeed totalsize={fdt_size} version=17\n" in output
    assert int(field(output, "extra end")) == extra_len
    assert field(output, "initThreadCNodeSizeBits") == "13"
    # The slot regions follow one another as seL4 fills them: the initial caps (16),
    # the image's page tables, two extra bootinfo frames, the image frames, untypeds.
    paging, extra, frames = (region(output, n) for n in
                             ("userImagePaging", "extraBIPages", "userImageFrames"))
    untyped, empty = region(output, "untyped"), region(output, "empty")
    assert paging[0] == 16 and paging[1] == extra[0] and extra[1] - extra[0] == 2
    assert extra[1] == frames[0] and frames[1] == untyped[0] and untyped[1] == empty[0]
    assert empty[1] == 1 << 13
    listed = [(int(slot), int(p, 16), int(b), d == "1") for _, slot, p, b, d in UNTYPED.findall(output)]
    assert [slot for slot, *_ in listed] == list(range(*untyped))
    assert [(p, b) for _, p, b, d in listed if d] == devices
    ram = [(p, b) for _, p, b, d in listed if not d]
    assert ram[: len(ram_low)] == ram_low and ram[-len(ram_high):] == ram_high
    # Between them, the free RAM from the image's end to the block, covered without gaps.
    middle = ram[len(ram_low) : -len(ram_high)]
    for (p, b), (q, _) in zip(middle, middle[1:]):
        assert p + (1 << b) == q


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_difftest_sequences_keep_sel4s_rules(guest_elves: dict[str, dict[str, Path]], arch: str,
                                             seed: int) -> None:
    elf = patch_words(guest_elves[arch]["difftest"].read_bytes(),
                      {"difftest_seed": seed, "difftest_steps": 250})
    output, session, kind = run_elf(elf)
    assert kind == "halt", output[-2000:]
    lines = output.splitlines()
    assert re.fullmatch(rf"difftest seed={seed} steps=250 untyped=\d+ bits=2\d", lines[0])
    assert lines[-1] == "difftest done: 0 mismatches"
    assert "MISMATCH" not in output
    steps = [int(line.split()[0]) for line in lines[1:-1] if not line.startswith("  probe:")]
    assert steps == sorted(steps) and len(steps) > 150 and steps[-1] < 250
    # Every kind of operation ran, and results are seL4 error codes (0..10).
    for op in ("retype", "copy", "mint", "move", "mutate", "delete", "revoke"):
        assert any(line.split()[1] == op for line in lines[1:-1] if not line.startswith(" ")), op
    for line in lines[1:-1]:
        if " = " in line and line.split()[1] not in ("poll", "nbrecv", "page-address", "tcb-read"):
            assert 0 <= int(line.rsplit(" = ", 1)[1]) <= 10, line
    again, _, _ = run_elf(elf)
    assert again == output  # deterministic
