"""Property: a mutated image is refused in one line, or boots and runs on Unicorn to one
of the documented outcomes, the same way twice.

The mutations start from the shipped images and are re-packed with a valid checksum, so
that they reach the ELF reader, the configuration decoder, boot and, for what still
loads, the guest's (now corrupted) code running in Unicorn: random instructions, wild
jumps and accesses anywhere. No Python exception may escape, the machine must never stop
on a guest access (``machine error``), and two runs of the same image must print the
same bytes and retire the same number of instructions.
"""

from __future__ import annotations

import json

from hypothesis import event, given
from hypothesis import strategies as st

from bootimage import ImageError, load_image
from bootimage.format import pack, unpack
from emulator.session import Session
from kernel.boot import BootError
from tests.fuzzing import fuzzed, longer
from userland import demo_image
from userland.build import SHIPPED

RUN_LIMIT = 20_000
"""Instructions per run: enough to boot and reach the guest's first system calls."""

OUTCOMES = {"halt", "idle", "fault", "kernel-halt", "limit"}

_IMAGES = [demo_image(arch, name).read_bytes()
           for arch in ("riscv64", "aarch64") for name in SHIPPED]

_CONFIG_VALUES = {
    "ram_size": st.sampled_from([1 << 20, 2 << 20, 32 << 20, 0x7FF000, 4 << 30]),
    "root_cnode_bits": st.integers(3, 25),
    "tick_instructions": st.sampled_from([1, 7, 1000, 1 << 20]),
    "time_slice_ticks": st.integers(0, 20),
    "fastpath": st.booleans(),
}


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A shipped image with some ELF bytes overwritten and maybe a changed configuration,
    re-packed so the checksum holds."""
    raw = unpack(draw(st.sampled_from(_IMAGES)))
    elf = bytearray(raw.elf)
    for _ in range(draw(st.integers(0, longer(8)))):
        where = draw(st.one_of(st.integers(0, 0x40), st.integers(0, len(elf) - 1)))
        elf[where] = draw(st.integers(0, 255))
    config = json.loads(raw.config)
    for key in draw(st.lists(st.sampled_from(sorted(_CONFIG_VALUES)), max_size=2, unique=True)):
        config[key] = draw(_CONFIG_VALUES[key])
    blob = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return pack(raw.header.arch, blob, bytes(elf))


def _run(data: bytes) -> tuple[str, bytes, int | None]:
    loaded = load_image(data)
    out = bytearray()
    session = Session.boot(loaded.root, loaded.config, out.append)
    result = session.run(RUN_LIMIT)
    assert result.kind in OUTCOMES, result
    assert not result.message.startswith("machine error"), result
    return result.kind, bytes(out), result.instructions


@fuzzed(40)
@given(mutated())
def test_a_mutated_image_is_refused_or_runs_to_a_documented_outcome(data: bytes) -> None:
    try:
        first = _run(data)
    except ImageError as err:
        assert "\n" not in str(err)
        event(f"refused: {type(err).__name__}")
        return
    except BootError as err:
        assert "\n" not in str(err)
        event("refused at boot")
        return
    event(f"ran: {first[0]}")
    assert _run(data) == first
