"""bootimage: the format, the builder, the loader and the inspector.

Every ELF here is made by ``tests.elfgen`` in the test itself; images with bad contents
but good framing are made with ``bootimage.format.pack``, which does not validate.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import struct
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from elftools.common.utils import struct_parse
from elftools.elf import enums
from elftools.elf.elffile import ELFFile
from hypothesis import event, given
from hypothesis import strategies as st

import bootimage
from bootimage import (
    BOOT_RESERVE,
    BadChecksum,
    BadConfig,
    DoesNotFitInRAM,
    ElfError,
    EntryOutsideText,
    FormatError,
    ImageError,
    OverlappingSegments,
    RootCNodeTooSmall,
    TruncatedImage,
    UnknownVersion,
    WrongArchitecture,
    WrongMagic,
    build_image,
    inspect_image,
    load_image,
    load_image_file,
)
from bootimage import elf as elf_reader
from bootimage.build import encode_config
from bootimage.format import CHECKSUM_OFFSET, HEADER_SIZE, MAGIC, checksum, pack
from kernel.abi.arch import Arch, abi_for
from kernel.abi.constants import InitialCap
from kernel.boot import boot, boot_caps
from kernel.config import KernelConfig
from kernel.image import RootTaskImage
from kernel.kernel import Kernel
from tests.elfgen import (
    EM_AARCH64,
    EM_RISCV,
    EM_X86_64,
    PF_R,
    PF_W,
    PF_X,
    PT_NOTE,
    Seg,
    make_elf,
    simple_elf,
)
from tests.fakes import FakeMachine
from tests.fuzzing import fuzzed
from tests.unit.test_boot import make_image

CFG = KernelConfig()
TEXT, DATA = 0x10000, 0x11000
FUZZ = fuzzed(300)


def framed(elf: bytes, arch: int = EM_RISCV, config: bytes | None = None) -> bytes:
    """A well-framed image around arbitrary contents (no content checks)."""
    return pack(arch, encode_config(CFG) if config is None else config, elf)


def load_error(data: bytes) -> ImageError:
    with pytest.raises(ImageError) as info:
        load_image(data)
    assert "\n" not in str(info.value)
    return info.value


def elf_error(elf: bytes, config: KernelConfig = CFG) -> ImageError:
    """The error both the builder and the loader give for ``elf`` (they must agree)."""
    with pytest.raises(ImageError) as built:
        build_image(elf, config)
    with pytest.raises(ImageError) as loaded:
        machine = elf[18] | elf[19] << 8
        header_arch = machine if machine in (EM_RISCV, EM_AARCH64) else EM_RISCV
        load_image(framed(elf, header_arch, encode_config(config)))
    assert str(built.value) == str(loaded.value)
    assert type(built.value) is type(loaded.value)
    assert "\n" not in str(built.value)
    return built.value


def check_root_invariants(root: RootTaskImage, config: KernelConfig) -> None:
    """The RootTaskImage invariants the loader promises (kernel/image.py, bootimage/elf.py)."""
    segs = root.segments
    assert segs
    assert list(segs) == sorted(segs, key=lambda s: s.vaddr)
    assert all(a.end <= b.vaddr for a, b in zip(segs, segs[1:], strict=False))
    assert all(len(s.data) <= s.memsz and s.memsz > 0 for s in segs)
    assert any(s.executable and s.vaddr <= root.entry < s.end for s in segs)
    assert root.end <= abi_for(root.arch).user_top
    span = -(-root.end // 0x1000) * 0x1000 - (root.start & ~0xFFF)
    assert span + BOOT_RESERVE <= config.ram_size


# -- round trip ---------------------------------------------------------------------------


@pytest.mark.parametrize("machine", [EM_RISCV, EM_AARCH64])
def test_build_then_load_round_trips(machine: int) -> None:
    elf = simple_elf(machine, base=TEXT)
    config = KernelConfig(ram_size=64 << 20, root_cnode_bits=10, tick_instructions=500)
    loaded = load_image(build_image(elf, config))
    assert loaded.arch is Arch(machine)
    assert loaded.config == config
    assert loaded.elf == elf
    assert loaded.version == 1
    assert loaded.root.arch is Arch(machine)
    assert loaded.root.entry == TEXT + 0x10
    text, data = loaded.root.segments
    assert (text.vaddr, text.memsz, text.data) == (TEXT, 64, bytes(range(64)))
    assert (text.readable, text.writable, text.executable) == (True, False, True)
    assert (data.vaddr, data.memsz, data.data) == (DATA, 0x2000, b"data" * 8)
    assert (data.readable, data.writable, data.executable) == (True, True, False)


def test_build_is_deterministic_and_canonical() -> None:
    elf = simple_elf()
    image = build_image(elf, CFG)
    assert image == build_image(elf, CFG)
    assert image[:8] == MAGIC
    version, header_size, arch, config_len, elf_len, config_off, elf_off = struct.unpack_from(
        "<HHIIIQQ", image, 8
    )
    assert (version, header_size, arch) == (1, HEADER_SIZE, EM_RISCV)
    assert config_off == HEADER_SIZE and elf_off % 8 == 0
    assert json.loads(image[config_off : config_off + config_len]) == CFG.to_dict()
    assert image[elf_off:] == elf and elf_len == len(elf)


def test_explicit_arch_matching_the_elf_is_accepted() -> None:
    elf = simple_elf(EM_AARCH64)
    assert build_image(elf, CFG, Arch.AARCH64) == build_image(elf, CFG)


def test_load_image_file(tmp_path: Path) -> None:
    path = tmp_path / "hello.img"
    path.write_bytes(build_image(simple_elf(), CFG))
    assert load_image_file(path).root.entry == TEXT + 0x10
    assert load_image_file(str(path)).arch is Arch.RISCV64


def test_load_image_file_missing_is_an_image_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"cannot read image .*nope\.img.*No such file"):
        load_image_file(tmp_path / "nope.img")


def test_segments_are_sorted_empty_ones_skipped_and_others_ignored() -> None:
    elf = make_elf(EM_RISCV, 0x20000, [
        Seg(0x30000, b"d", flags=PF_R | PF_W),
        Seg(0x28000, b"", memsz=0),
        Seg(0x40000, b"note", flags=PF_R, p_type=PT_NOTE),
        Seg(0x20000, b"t" * 16, flags=PF_R | PF_X),
    ])
    root = load_image(build_image(elf, CFG)).root
    assert [s.vaddr for s in root.segments] == [0x20000, 0x30000]


def test_writable_and_executable_segment_is_allowed() -> None:
    elf = make_elf(EM_RISCV, TEXT, [Seg(TEXT, b"\x13" * 8, flags=PF_R | PF_W | PF_X)])
    (seg,) = load_image(build_image(elf, CFG)).root.segments
    assert seg.writable and seg.executable


def test_inspect_describes_header_config_and_elf() -> None:
    image = build_image(simple_elf(symbols=7), CFG)
    d = inspect_image(image)
    assert (d.size, d.arch, d.config, d.entry) == (len(image), Arch.RISCV64, CFG, TEXT + 0x10)
    assert (d.symbols, d.sections) == (7, 4)
    assert [(s.vaddr, s.memsz, s.filesz, s.flags) for s in d.segments] == [
        (TEXT, 64, 64, "r-x"),
        (DATA, 0x2000, 32, "rw-"),
    ]
    as_json = json.loads(json.dumps(d.to_dict()))
    assert as_json["header"]["arch"] == "riscv64"
    assert as_json["header"]["sha256"] == image[CHECKSUM_OFFSET:HEADER_SIZE].hex()
    assert as_json["elf"]["entry"] == TEXT + 0x10
    assert as_json["config"] == CFG.to_dict()
    text = d.to_text()
    assert "riscv64" in text and "0x10010" in text and "7 symbols" in text
    assert "0x0000000000011000 0x00002000 0x00000020 rw-" in text


# -- the container: one test per kind of bad image ------------------------------------------


def test_wrong_magic() -> None:
    err = load_error(b"XXXXXXXX" + build_image(simple_elf(), CFG)[8:])
    assert isinstance(err, WrongMagic)
    assert str(err) == "bad image: wrong magic b'XXXXXXXX' (expected b'CAPSULE\\x00')"


def test_wrong_magic_of_a_bare_elf_says_how_to_make_an_image() -> None:
    err = load_error(simple_elf())
    assert isinstance(err, WrongMagic) and "capsule image build" in str(err)


def test_truncated_elf_region() -> None:
    image = build_image(simple_elf(), CFG)
    elf_off, elf_len = struct.unpack_from("<Q", image, 32)[0], struct.unpack_from("<I", image, 20)[0]
    err = load_error(image[: elf_off + 100])
    assert isinstance(err, TruncatedImage)
    assert str(err) == f"truncated: header says {elf_len} bytes of ELF, file has 100"


@pytest.mark.parametrize("size", [0, 5, 8, 11, 40, HEADER_SIZE - 1])
def test_truncated_header(size: int) -> None:
    err = load_error(build_image(simple_elf(), CFG)[:size])
    assert isinstance(err, TruncatedImage)
    assert str(err) == f"truncated: the header is {HEADER_SIZE} bytes, file has {size}"


def test_unknown_version() -> None:
    image = bytearray(build_image(simple_elf(), CFG))
    struct.pack_into("<H", image, 8, 7)
    err = load_error(bytes(image))
    assert isinstance(err, UnknownVersion)
    assert str(err) == "unknown image version 7 (this capsule reads version 1)"


@pytest.mark.parametrize("where", ["config", "elf", "checksum field", "arch field"])
def test_bad_checksum(where: str) -> None:
    image = bytearray(build_image(simple_elf(), CFG))
    pos = {"config": HEADER_SIZE + 3, "elf": len(image) - 1, "checksum field": CHECKSUM_OFFSET,
           "arch field": 12}[where]
    image[pos] ^= 0x01
    err = load_error(bytes(image))
    assert isinstance(err, BadChecksum) and str(err) == "bad checksum"


def test_bytes_after_the_elf_are_refused() -> None:
    err = load_error(build_image(simple_elf(), CFG) + b"\0")
    assert isinstance(err, FormatError) and "1 bytes after the end of the ELF" in str(err)


def test_regions_overlapping_the_header_are_refused() -> None:
    image = bytearray(build_image(simple_elf(), CFG))
    struct.pack_into("<Q", image, 24, 8)  # config_offset inside the header
    err = load_error(bytes(image))
    assert isinstance(err, FormatError) and "overlap the header or each other" in str(err)


def test_wrong_header_size() -> None:
    image = bytearray(build_image(simple_elf(), CFG))
    struct.pack_into("<H", image, 10, 64)
    assert "header size 64" in str(load_error(bytes(image)))


def test_unknown_architecture_in_header() -> None:
    err = load_error(framed(simple_elf(), arch=EM_X86_64))
    assert str(err).startswith("unknown architecture: header says e_machine 62")


@pytest.mark.parametrize(("config", "message"), [
    (b"\xff\xfe", "not UTF-8"),
    (b"{", "not JSON"),
    (b"[1, 2]", "expected a JSON object, got list"),
    (b'{"ram_size": 4096}', "ram_size 0x1000 must be a multiple of 4 KiB"),
    (b'{"colour": 1}', "unknown configuration key 'colour'"),
    (b'{"mcs": 1}', "'mcs' must be bool"),
    (b'{"ram_size": "32M"}', "'ram_size' must be int"),
    (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    (b'{"ram_size": ' + b"9" * 5000 + b"}", "not JSON"),
])
def test_bad_configuration(config: bytes, message: str) -> None:
    err = load_error(framed(simple_elf(), config=config))
    assert isinstance(err, BadConfig)
    assert str(err).startswith("bad kernel configuration: ") and message in str(err)


def test_missing_configuration_keys_take_defaults() -> None:
    loaded = load_image(framed(simple_elf(), config=b'{"ram_size": 16777216}'))
    assert loaded.config == KernelConfig(ram_size=16 << 20)


def test_builder_refuses_an_invalid_configuration() -> None:
    with pytest.raises(BadConfig, match="root_cnode_bits 2 must be in 4..24"):
        build_image(simple_elf(), KernelConfig(root_cnode_bits=2))


# -- the root task's ELF: one test per kind of bad ELF ----------------------------------------


def test_wrong_architecture_in_header() -> None:
    err = load_error(framed(simple_elf(EM_AARCH64), arch=EM_RISCV))
    assert isinstance(err, WrongArchitecture)
    assert str(err) == "wrong architecture: header says riscv64, ELF is aarch64"


def test_wrong_architecture_at_build() -> None:
    with pytest.raises(WrongArchitecture, match="says riscv64, ELF is aarch64"):
        build_image(simple_elf(EM_AARCH64), CFG, Arch.RISCV64)


def test_elf_that_does_not_fit_in_ram() -> None:
    ram = 1 << 20
    # Default 4096-slot root CNode: 2 x 128 KiB (aligned to its size) + 128 KiB.
    reserve = 0x60000
    fits = make_elf(EM_RISCV, TEXT, [Seg(TEXT, b"\x13" * 4, memsz=ram - reserve)])
    assert load_image(build_image(fits, KernelConfig(ram_size=ram))).config.ram_size == ram
    too_big = make_elf(EM_RISCV, TEXT, [Seg(TEXT, b"\x13" * 4, memsz=ram - reserve + 1)])
    err = elf_error(too_big, KernelConfig(ram_size=ram))
    assert isinstance(err, DoesNotFitInRAM)
    assert str(err) == (
        "ELF does not fit in RAM: needs 0x101000 bytes (0xa1000 of image pages + 0x60000 "
        "for boot objects), RAM is 0x100000"
    )


def test_a_root_cnode_too_small_for_the_boot_caps() -> None:
    """16 slots cannot hold seL4's initial caps plus a frame cap per image page."""
    elf = simple_elf()
    err = elf_error(elf, KernelConfig(root_cnode_bits=4))
    assert isinstance(err, RootCNodeTooSmall) and err.slots == 16 and err.needed > 16
    # The count is boot's own: with room for exactly those caps and the RAM untypeds, it boots.
    assert load_image(build_image(elf, KernelConfig(root_cnode_bits=12))).config.root_cnode_bits == 12


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_boot_caps_counts_what_boot_places(arch: Arch) -> None:
    cfg = KernelConfig(ram_size=16 << 20)
    kernel = Kernel(FakeMachine(arch, cfg.ram_size), cfg, lambda byte: None)
    image = make_image(arch)
    info = boot(kernel, image).bootinfo
    caps = boot_caps(arch, image.start, image.end, cfg.ram_size)
    assert caps.initial == InitialCap.seL4_NumInitialCaps == info.user_image_paging[0]
    assert caps.page_tables == info.user_image_paging[1] - info.user_image_paging[0]
    assert caps.image_frames == info.user_image_frames[1] - info.user_image_frames[0]
    assert caps.device_untypeds == sum(d.is_device for d in info.untyped_list)


def test_overlapping_segments() -> None:
    elf = make_elf(EM_RISCV, TEXT, [
        Seg(TEXT, b"t" * 0x100),
        Seg(TEXT + 0x80, b"d" * 0x100, flags=PF_R | PF_W),
    ])
    err = elf_error(elf)
    assert isinstance(err, OverlappingSegments)
    assert str(err) == "overlapping segments: [0x10000,0x10100) and [0x10080,0x10180)"


def test_entry_point_outside_the_text() -> None:
    elf = make_elf(EM_RISCV, DATA + 4, [
        Seg(TEXT, b"t" * 0x40, flags=PF_R | PF_X),
        Seg(DATA, b"d" * 0x40, flags=PF_R | PF_W),
    ])
    err = elf_error(elf)
    assert isinstance(err, EntryOutsideText)
    assert str(err) == (
        "entry point 0x11004 outside the text (executable segments: [0x10000,0x10040))"
    )


@pytest.mark.parametrize(("elf", "message"), [
    (b"MZ\x90\x00" + bytes(60), "not an ELF file (starts with b'MZ\\x90\\x00'"),
    (simple_elf()[:40], "truncated ELF: the file header is 64 bytes, file has 40"),
    (make_elf(EM_RISCV, TEXT, [Seg(TEXT, b"t")], ei_class=1),
     "32-bit ELF: capsule runs 64-bit programs only"),
    (make_elf(EM_RISCV, TEXT, [Seg(TEXT, b"t")], ei_data=2),
     "big-endian ELF: capsule runs little-endian programs only"),
    (make_elf(EM_RISCV, TEXT, [Seg(TEXT, b"t")], e_type=3),
     "ELF type is ET_DYN, expected ET_EXEC"),
    (make_elf(EM_X86_64, TEXT, [Seg(TEXT, b"t")]),
     "unsupported ELF machine EM_X86_64 (62)"),
    (make_elf(EM_RISCV, TEXT, []), "ELF has no PT_LOAD segments"),
    (make_elf(EM_RISCV, TEXT, [Seg(TEXT, b"", memsz=0), Seg(0x20000, b"n", p_type=PT_NOTE)]),
     "ELF has no PT_LOAD segments"),
    (make_elf(EM_RISCV, TEXT, [Seg(TEXT, b"t" * 8, memsz=4)]),
     "segment at 0x10000 has 0x8 bytes in the file but only 0x4 in memory"),
    (make_elf(EM_RISCV, 0x3FFFFFF000, [Seg(0x3FFFFFF000, b"t", memsz=0x2000)]),
     "segment [0x3ffffff000,0x4000001000) lies above the riscv64 user address limit"),
    (make_elf(EM_AARCH64, 1 << 63, [Seg(1 << 63, b"t")]),
     "lies above the aarch64 user address limit 0x800000000000"),
    (make_elf(EM_RISCV, TEXT, [Seg(0xFFFF_FFFF_FFFF_F000, b"t", memsz=0x2000)]),
     "segment at 0xfffffffffffff000 of 0x2000 bytes wraps around the address space"),
    (make_elf(EM_RISCV, 0x3FFFFFD000, [Seg(0x3FFFFFD000, b"t", memsz=0x1000)]),
     "no room for the IPC buffer and bootinfo pages"),
], ids=[
    "not-elf", "short-header", "elf32", "big-endian", "et-dyn", "x86-64", "no-phdrs",
    "no-load", "filesz-gt-memsz", "above-user-top", "far-above-user-top", "wraps",
    "no-room-for-ipc-buffer",
])
def test_bad_elf(elf: bytes, message: str) -> None:
    if elf[:4] == b"\x7fELF" and len(elf) >= 64:
        err = elf_error(elf)
    else:
        with pytest.raises(ElfError) as info:
            build_image(elf, CFG)
        err = info.value
        assert isinstance(load_error(framed(elf)), ElfError)
    assert message in str(err)


def test_segment_bytes_past_the_end_of_the_file() -> None:
    elf = simple_elf()
    assert "truncated ELF: segment at 0x11000" in str(elf_error(elf[:-8]))


def test_program_header_table_past_the_end_of_the_file() -> None:
    elf = bytearray(simple_elf())
    struct.pack_into("<Q", elf, 32, len(elf) - 10)  # e_phoff
    assert "program headers at" in str(elf_error(bytes(elf)))


def test_bad_program_header_size() -> None:
    elf = bytearray(simple_elf())
    struct.pack_into("<H", elf, 54, 32)  # e_phentsize
    assert "program header size 32, expected 56" in str(elf_error(bytes(elf)))


# -- properties ---------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=512))
def test_any_bytes_load_or_raise_image_error(data: bytes) -> None:
    try:
        load_image(data)
    except ImageError as err:
        assert "\n" not in str(err)


@FUZZ
@given(st.binary(max_size=256))
def test_any_bytes_after_the_magic_load_or_raise_image_error(tail: bytes) -> None:
    try:
        load_image(MAGIC + b"\x01\x00" + tail)
    except ImageError as err:
        assert "\n" not in str(err)


_VALID = build_image(simple_elf(symbols=3), CFG)


@FUZZ
@given(st.integers(0, len(_VALID) - 1), st.integers(1, 255))
def test_any_single_byte_corruption_is_an_image_error(pos: int, xor: int) -> None:
    corrupt = bytearray(_VALID)
    corrupt[pos] ^= xor
    with pytest.raises(ImageError) as info:
        load_image(bytes(corrupt))
    assert "\n" not in str(info.value)


_ELVES = [simple_elf(symbols=3), simple_elf(EM_AARCH64), make_elf(
    EM_RISCV, TEXT, [Seg(TEXT, b"t" * 32), Seg(0x30000, b"n", p_type=PT_NOTE)], symbols=2
)]


@FUZZ
@given(
    st.sampled_from(_ELVES),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    st.one_of(st.none(), st.integers(0, 1000)),
    st.sampled_from([EM_RISCV, EM_AARCH64]),
)
def test_corrupt_elf_in_a_well_framed_image_is_refused_cleanly_or_is_bootable(
    elf: bytes, writes: list[tuple[int, int]], cut: int | None, header_arch: int
) -> None:
    """pyelftools sees hostile ELFs here: only ImageError may come out, and what is
    accepted keeps every invariant of RootTaskImage."""
    corrupt = bytearray(elf)
    for pos, value in writes:
        corrupt[pos % len(corrupt)] = value
    if cut is not None:
        corrupt = corrupt[:cut]
    try:
        loaded = load_image(framed(bytes(corrupt), arch=header_arch))
    except ImageError as err:
        assert "\n" not in str(err)
        event(f"refused: {type(err).__name__}")
        return
    event("accepted")
    check_root_invariants(loaded.root, loaded.config)
    assert build_image(bytes(corrupt), loaded.config) == framed(bytes(corrupt), header_arch)


def _numbers(header: Any, tables: dict[str, Mapping[str, int]]) -> dict[str, int]:
    """A pyelftools header as numbers: its enum fields come back as names when known."""
    return {key: tables[key][value] if isinstance(value, str) else value
            for key, value in header.items() if key != "e_ident"}


_PYELFTOOLS_ENUMS: dict[str, Mapping[str, int]] = {
    "e_type": enums.ENUM_E_TYPE, "e_machine": enums.ENUM_E_MACHINE,
    "e_version": enums.ENUM_E_VERSION,
    "p_type": {**enums.ENUM_P_TYPE_RISCV, **enums.ENUM_P_TYPE_AARCH64},
    "sh_type": {**enums.ENUM_SH_TYPE_RISCV, **enums.ENUM_SH_TYPE_AARCH64},
}


@FUZZ
@given(
    st.sampled_from(_ELVES),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_header_reads_agree_with_pyelftools(elf: bytes, writes: list[tuple[int, int]]) -> None:
    """bootimage.elf reads the headers with struct; pyelftools, the reference, reads the
    same fields from every ELF that passes the checks made before each read."""
    corrupt = bytearray(elf)
    for pos, value in writes:
        corrupt[pos % len(corrupt)] = value
    data = bytes(corrupt)
    try:
        elf_reader._check_ident(data)
    except ElfError:
        event("refused at the identification")
        return
    ef = ELFFile(io.BytesIO(data))
    hdr = elf_reader.file_header(data)
    assert hdr == _numbers(ef.header, _PYELFTOOLS_ENUMS)
    try:
        phnum, shnum = elf_reader._check_tables(hdr, len(data))
    except ElfError:
        event("refused at the tables")
        return
    event("headers read")
    reference = [
        _numbers(struct_parse(ef.structs.Elf_Phdr, ef.stream, hdr["e_phoff"] + i * 56),
                 _PYELFTOOLS_ENUMS) for i in range(phnum)]
    assert elf_reader.program_headers(data, hdr["e_phoff"], phnum) == reference
    reference = [
        _numbers(struct_parse(ef.structs.Elf_Shdr, ef.stream, hdr["e_shoff"] + i * 64),
                 _PYELFTOOLS_ENUMS) for i in range(shnum)]
    assert elf_reader.section_headers(data, hdr["e_shoff"], shnum) == reference


_SEGMENT = st.tuples(
    st.integers(-0x100, 0x3000),  # gap after the previous segment (negative: overlap)
    st.integers(0, 0x100),  # filesz
    st.integers(0, 0x3000),  # memsz - filesz
    st.integers(0, 7),  # p_flags
)


@FUZZ
@given(
    st.lists(_SEGMENT, max_size=4),
    st.one_of(st.tuples(st.integers(0, 3), st.integers(0, 0x3000)), st.integers(0, 0x30000)),
    st.sampled_from([EM_RISCV, EM_AARCH64]),
    st.sampled_from([1 << 20, 2 << 20]),
)
def test_builder_output_always_loads(
    layout: list[tuple[int, int, int, int]],
    entry_choice: tuple[int, int] | int,
    machine: int,
    ram: int,
) -> None:
    """build_image either refuses with ImageError or produces an image load_image takes."""
    segs, end = [], TEXT
    for gap, filesz, extra, flags in layout:
        vaddr = max(0, end + gap)
        segs.append(Seg(vaddr, b"\x13" * filesz, memsz=filesz + extra, flags=flags))
        end = vaddr + filesz + extra
    if isinstance(entry_choice, tuple) and segs:
        seg = segs[entry_choice[0] % len(segs)]
        entry = seg.vaddr + entry_choice[1] % max(1, seg.memsz or 0)
    else:
        entry = entry_choice if isinstance(entry_choice, int) else TEXT
    elf = make_elf(machine, entry, segs)
    config = KernelConfig(ram_size=ram)
    try:
        image = build_image(elf, config)
    except ImageError as err:
        assert "\n" not in str(err)
        event(f"refused: {type(err).__name__}")
        return
    event("accepted")
    loaded = load_image(image)
    assert (loaded.elf, loaded.config, loaded.arch) == (elf, config, Arch(machine))
    check_root_invariants(loaded.root, config)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8,
)


@FUZZ
@given(st.one_of(
    _JSON.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["ram_size", "root_cnode_bits", "mcs", "tick_instructions",
                                     "time_slice_ticks"]), _JSON).map(
        lambda d: json.dumps(d).encode()),
    st.fixed_dictionaries({}, optional={
        "ram_size": st.sampled_from([0, 4096, 1 << 20, (1 << 20) + 1, 32 << 20, 1 << 32,
                                     (1 << 32) + 4096]),
        "root_cnode_bits": st.integers(0, 30),
        "mcs": st.booleans(),
        "tick_instructions": st.integers(-2, 1 << 70),
        "time_slice_ticks": st.integers(-2, 100),
    }).map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=64),
))
def test_any_configuration_bytes_load_or_raise_bad_config(config: bytes) -> None:
    try:
        loaded = load_image(framed(simple_elf(), config=config))
    except ImageError as err:
        # A valid configuration can still leave too little RAM for this ELF.
        assert isinstance(err, BadConfig | DoesNotFitInRAM | RootCNodeTooSmall)
        assert "\n" not in str(err)
        event("refused")
        return
    event("accepted")
    assert loaded.config == loaded.config.validate()


def test_every_failure_is_one_exception_root() -> None:
    names = [n for n in bootimage.__all__ if n.endswith("Error") or n in {
        "WrongMagic", "TruncatedImage", "UnknownVersion", "BadChecksum", "BadConfig",
        "WrongArchitecture", "DoesNotFitInRAM", "OverlappingSegments", "EntryOutsideText",
        "RootCNodeTooSmall"}]
    assert all(issubclass(getattr(bootimage, n), ImageError) for n in names)
    assert issubclass(ImageError, ValueError)


# -- differential: our reading of the ELF against llvm-readelf ---------------------------------

needs_readelf = pytest.mark.skipif(
    shutil.which("llvm-readelf") is None, reason="llvm-readelf not installed"
)
View = tuple[int, list[tuple[int, int, int, str]], int]


def readelf_view(path: Path) -> View:
    """(entry, [(vaddr, memsz, filesz, flags)] of non-empty PT_LOADs, .symtab entries)."""
    out = subprocess.run(
        ["llvm-readelf", "--file-header", "--program-headers", "--symbols", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout
    entry = re.search(r"Entry point address:\s+(0x[0-9a-f]+)", out)
    assert entry is not None
    loads = re.findall(
        r"^\s*LOAD\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)"
        r"\s+([RWE ]{3})", out, re.M,
    )
    segments = sorted(
        (int(vaddr, 16), int(memsz, 16), int(filesz, 16),
         "".join(c if u in flags else "-" for c, u in zip("rwx", "RWE", strict=True)))
        for vaddr, filesz, memsz, flags in loads if int(memsz, 16)
    )
    counted = re.search(r"Symbol table '\.symtab' contains (\d+) entries", out)
    return int(entry[1], 16), segments, int(counted[1]) if counted else 0


def our_view(elf: bytes) -> View:
    d = inspect_image(build_image(elf, CFG))
    return d.entry, [(s.vaddr, s.memsz, s.filesz, s.flags) for s in d.segments], d.symbols


@needs_readelf
@pytest.mark.parametrize("elf", [
    simple_elf(symbols=9),
    simple_elf(EM_AARCH64, base=0x400000),
    make_elf(EM_RISCV, 0x20000, [Seg(0x30000, b"d" * 3, memsz=0x500, flags=PF_R | PF_W),
                                 Seg(0x20000, b"t" * 40, flags=PF_R | PF_X | PF_W)]),
], ids=["riscv64-symbols", "aarch64", "unsorted-wx"])
def test_generated_elves_agree_with_llvm_readelf(elf: bytes, tmp_path: Path) -> None:
    path = tmp_path / "root.elf"
    path.write_bytes(elf)
    assert our_view(elf) == readelf_view(path)


@needs_readelf
def test_linked_guest_elves_agree_with_llvm_readelf(
    guest_elves: dict[str, dict[str, Path]],
) -> None:
    """The programs in userland/, linked by the real cross toolchain (tests/conftest.py)."""
    checked = 0
    for progs in guest_elves.values():
        for path in progs.values():
            assert our_view(path.read_bytes()) == readelf_view(path), path
            checked += 1
    assert checked >= 2


def test_large_root_cnode_needs_more_ram_than_the_fixed_reserve() -> None:
    """A 2^16-slot root CNode (2 MiB) cannot boot in 2 MiB of RAM: the loader says so."""
    from bootimage import DoesNotFitInRAM
    from bootimage.elf import boot_reserve

    big = KernelConfig(ram_size=2 << 20, root_cnode_bits=16)
    assert boot_reserve(big) > 2 << 20
    with pytest.raises(DoesNotFitInRAM):
        bootimage.build_image(simple_elf(), big)
    # The same image with the default root CNode fits in the same RAM.
    bootimage.build_image(simple_elf(), KernelConfig(ram_size=2 << 20))


@pytest.mark.parametrize("size", [HEADER_SIZE, 4096, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 << 20])
def test_the_checksum_is_sha256(size: int) -> None:
    data = bytes((i * 7 + (i >> 9)) & 0xFF for i in range(size))
    expected = hashlib.sha256(data[:CHECKSUM_OFFSET] + data[HEADER_SIZE:]).digest()
    assert checksum(data) == expected
