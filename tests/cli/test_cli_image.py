"""``capsule image build|inspect``: in-process through click's runner, and for real as
``python -m capsule.cli image ...``. Every failure is one ``capsule: ...`` line on stderr
with exit status 2 and no traceback."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from bootimage import build_image
from bootimage.build import encode_config
from bootimage.format import pack
from capsule.cli.image import image, parse_size
from kernel.config import KernelConfig
from tests.elfgen import EM_AARCH64, EM_RISCV, PF_R, PF_W, PF_X, Seg, make_elf, simple_elf

TEXT, DATA = 0x10000, 0x11000


@dataclass(frozen=True)
class Outcome:
    status: int
    stdout: str
    stderr: str


def in_process(*args: str) -> Outcome:
    result = CliRunner().invoke(image, list(args), prog_name="capsule image")
    return Outcome(result.exit_code, result.stdout, result.stderr)


def subprocess_capsule(*args: str) -> Outcome:
    proc = subprocess.run(
        [sys.executable, "-m", "capsule.cli", "image", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


Runner = Callable[..., Outcome]
RUNNERS = pytest.mark.parametrize("run", [in_process, subprocess_capsule],
                                  ids=["in-process", "subprocess"])


def assert_one_line_error(out: Outcome, *fragments: str) -> str:
    assert out.status == 2, out
    assert "Traceback" not in out.stderr + out.stdout
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("capsule: ")
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


# -- building and inspecting ----------------------------------------------------------------


@RUNNERS
def test_build_then_inspect(run: Runner, tmp_path: Path) -> None:
    elf = write(tmp_path / "hello.elf", simple_elf(EM_AARCH64, base=0x400000, symbols=4))
    out_path = tmp_path / "hello.img"
    built = run("build", elf, "-o", str(out_path), "--ram-size", "64M", "--root-cnode-bits",
                "10", "--tick-instructions", "2000", "--time-slice-ticks", "3")
    assert built.status == 0, built.stderr
    assert built.stderr == ""
    assert out_path.read_bytes()[:8] == b"CAPSULE\0"

    text = run("inspect", str(out_path))
    assert text.status == 0, text.stderr
    assert "aarch64 (e_machine 183)" in text.stdout
    assert "entry:     0x400010" in text.stdout
    assert "ram_size=0x4000000 root_cnode_bits=10" in text.stdout

    described = run("inspect", str(out_path), "--json")
    assert described.status == 0, described.stderr
    d = json.loads(described.stdout)
    assert d["header"]["arch"] == "aarch64" and d["header"]["version"] == 1
    assert d["config"] == KernelConfig(ram_size=64 << 20, root_cnode_bits=10,
                                       tick_instructions=2000, time_slice_ticks=3).to_dict()
    assert d["elf"]["entry"] == 0x400010 and d["elf"]["symbols"] == 4
    assert [s["flags"] for s in d["elf"]["segments"]] == ["r-x", "rw-"]


def test_build_with_matching_arch_and_defaults(tmp_path: Path) -> None:
    elf = write(tmp_path / "a.elf", simple_elf(EM_RISCV))
    assert in_process("build", elf, "-o", str(tmp_path / "a.img"), "--arch", "riscv64").status == 0
    d = json.loads(in_process("inspect", str(tmp_path / "a.img"), "--json").stdout)
    assert d["config"] == KernelConfig().to_dict()


def test_the_shipped_demo_images_inspect_cleanly() -> None:
    userland = pytest.importorskip("userland")
    for arch in ("riscv64", "aarch64"):
        path = userland.demo_image(arch)
        if not Path(path).exists():
            pytest.skip(f"{path} not built")
        out = in_process("inspect", str(path))
        assert out.status == 0, out.stderr
        assert f"arch:      {arch}" in out.stdout


@pytest.mark.parametrize(("text", "value"), [
    ("4096", 4096), ("0x1000", 4096), ("512K", 512 << 10), ("32M", 32 << 20), ("32m", 32 << 20),
    ("1G", 1 << 30), ("0x10M", 16 << 20), (" 8M ", 8 << 20),
])
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "M", "32Q", "32MB", "-1M", "1.5M", "0xZZ"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="bad size"):
        parse_size(text)


# -- one test per kind of bad image, through `inspect` ------------------------------------------


def _image() -> bytes:
    return build_image(simple_elf(), KernelConfig())


def _framed(elf: bytes, arch: int = EM_RISCV, config: KernelConfig | None = None) -> bytes:
    return pack(arch, encode_config(config or KernelConfig()), elf)


def _patched(fmt: str, offset: int, value: int) -> bytes:
    data = bytearray(_image())
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


def _flipped(offset: int) -> bytes:
    data = bytearray(_image())
    data[offset] ^= 0x40
    return bytes(data)


BAD_IMAGES: dict[str, tuple[Callable[[], bytes], tuple[str, ...]]] = {
    "wrong-magic": (lambda: b"NOTANIMG" + _image()[8:],
                    ("bad image: wrong magic b'NOTANIMG'", "expected b'CAPSULE\\x00'")),
    "truncated": (lambda: _image()[:300], ("truncated: header says", "bytes of ELF, file has")),
    "unknown-version": (lambda: _patched("<H", 8, 7),
                        ("unknown image version 7 (this capsule reads version 1)",)),
    "bad-checksum": (lambda: _flipped(-1), ("bad checksum",)),
    "wrong-architecture": (lambda: _framed(simple_elf(EM_AARCH64), EM_RISCV),
                           ("wrong architecture: header says riscv64, ELF is aarch64",)),
    "does-not-fit-in-ram": (
        lambda: _framed(make_elf(EM_RISCV, TEXT, [Seg(TEXT, b"t", memsz=1 << 20)]),
                        config=KernelConfig(ram_size=1 << 20)),
        ("ELF does not fit in RAM: needs 0x160000 bytes", "RAM is 0x100000"),
    ),
    "overlapping-segments": (
        lambda: _framed(make_elf(EM_RISCV, TEXT, [Seg(TEXT, b"t" * 0x100),
                                                  Seg(TEXT + 0xFF, b"d", flags=PF_R | PF_W)])),
        ("overlapping segments: [0x10000,0x10100) and [0x100ff,0x10100)",),
    ),
    "entry-outside-text": (
        lambda: _framed(make_elf(EM_RISCV, DATA, [Seg(TEXT, b"t" * 16, flags=PF_R | PF_X),
                                                  Seg(DATA, b"d" * 16, flags=PF_R | PF_W)])),
        ("entry point 0x11000 outside the text (executable segments: [0x10000,0x10010))",),
    ),
}


@RUNNERS
@pytest.mark.parametrize("kind", list(BAD_IMAGES))
def test_inspect_bad_image(run: Runner, kind: str, tmp_path: Path) -> None:
    make, fragments = BAD_IMAGES[kind]
    out = run("inspect", write(tmp_path / "bad.img", make()))
    assert_one_line_error(out, *fragments)
    assert out.stdout == ""


# -- extracting the ELF ------------------------------------------------------------------------


@RUNNERS
def test_extract_gives_back_the_elf_that_was_built(run: Runner, tmp_path: Path) -> None:
    elf = simple_elf(EM_AARCH64, base=0x400000, symbols=4)
    image_path = tmp_path / "a.img"
    assert run("build", write(tmp_path / "a.elf", elf), "-o", str(image_path)).status == 0
    out = run("extract", str(image_path), "-o", str(tmp_path / "out.elf"))
    assert out.status == 0, out.stderr
    assert out.stdout == f"{tmp_path / 'out.elf'}: {len(elf)} bytes\n"
    assert (tmp_path / "out.elf").read_bytes() == elf


def test_extract_works_on_an_image_that_does_not_load(tmp_path: Path) -> None:
    """Only the framing and the checksum must hold: the ELF of an image the loader
    refuses (here, RAM too small for it) still comes out, to be debugged."""
    elf = make_elf(EM_RISCV, TEXT, [Seg(TEXT, b"t", memsz=1 << 20)])
    bad = write(tmp_path / "bad.img", _framed(elf, config=KernelConfig(ram_size=1 << 20)))
    assert_one_line_error(in_process("inspect", bad), "does not fit in RAM")
    assert in_process("extract", bad, "-o", str(tmp_path / "out.elf")).status == 0
    assert (tmp_path / "out.elf").read_bytes() == elf


@RUNNERS
@pytest.mark.parametrize("kind", ["wrong-magic", "truncated", "bad-checksum"])
def test_extract_refuses_a_broken_container(run: Runner, kind: str, tmp_path: Path) -> None:
    make, fragments = BAD_IMAGES[kind]
    out = run("extract", write(tmp_path / "bad.img", make()), "-o", str(tmp_path / "out.elf"))
    assert_one_line_error(out, *fragments)
    assert not (tmp_path / "out.elf").exists()


# -- one test per kind of bad ELF, through `build` ----------------------------------------------

BAD_BUILDS: dict[str, tuple[bytes, tuple[str, ...], tuple[str, ...]]] = {
    "wrong-architecture": (simple_elf(EM_AARCH64), ("--arch", "riscv64"),
                           ("wrong architecture: the arch argument says riscv64, ELF is aarch64",)),
    "does-not-fit-in-ram": (make_elf(EM_RISCV, TEXT, [Seg(TEXT, b"t", memsz=2 << 20)]),
                            ("--ram-size", "2M"),
                            ("ELF does not fit in RAM", "RAM is 0x200000")),
    "overlapping-segments": (
        make_elf(EM_RISCV, TEXT, [Seg(TEXT, b"t" * 32), Seg(TEXT, b"d", flags=PF_R | PF_W)]),
        (), ("overlapping segments: [0x10000,0x10001) and [0x10000,0x10020)",)),
    "entry-outside-text": (make_elf(EM_RISCV, 0x50000, [Seg(TEXT, b"t" * 16)]), (),
                           ("entry point 0x50000 outside the text",)),
    "not-an-elf": (b"#!/bin/sh\n" + bytes(60), (), ("not an ELF file",)),
    "32-bit": (make_elf(EM_RISCV, TEXT, [Seg(TEXT, b"t")], ei_class=1), (), ("32-bit ELF",)),
    "big-endian": (make_elf(EM_RISCV, TEXT, [Seg(TEXT, b"t")], ei_data=2), (), ("big-endian",)),
    "not-exec": (make_elf(EM_RISCV, TEXT, [Seg(TEXT, b"t")], e_type=3), (), ("ET_DYN",)),
    "x86-64": (make_elf(62, TEXT, [Seg(TEXT, b"t")]), (), ("unsupported ELF machine",)),
    "no-segments": (make_elf(EM_RISCV, TEXT, []), (), ("no PT_LOAD segments",)),
    # A 2 GiB bss with 4 GiB of RAM: refused from the headers, before any page is built.
    "root-cnode-too-small": (make_elf(EM_RISCV, TEXT, [Seg(TEXT, b"t", memsz=2 << 30)]),
                             ("--ram-size", "4G"),
                             ("root CNode too small: 2^12 slots, boot needs at least",
                              "524288 of them for the image's pages")),
}


@RUNNERS
@pytest.mark.parametrize("kind", list(BAD_BUILDS))
def test_build_bad_elf(run: Runner, kind: str, tmp_path: Path) -> None:
    elf, options, fragments = BAD_BUILDS[kind]
    out_path = tmp_path / "out.img"
    out = run("build", write(tmp_path / "bad.elf", elf), "-o", str(out_path), *options)
    assert_one_line_error(out, *fragments)
    assert not out_path.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "bad.elf"]  # no temporary left behind


# -- bad arguments and files ---------------------------------------------------------------------


@RUNNERS
@pytest.mark.parametrize(("args", "fragments"), [
    (("build", "{elf}", "-o", "{out}", "--ram-size", "32Q"), ("--ram-size", "bad size '32Q'")),
    (("build", "{elf}", "-o", "{out}", "--arch", "x86"), ("--arch", "'x86'")),
    (("build", "{elf}"), ("Missing option '-o'",)),
    (("build", "{dir}/missing.elf", "-o", "{out}"), ("cannot read ELF", "missing.elf")),
    (("build", "{elf}", "-o", "{dir}/no/such/dir/out.img"), ("cannot write",)),
    (("build", "{elf}", "-o", "{out}", "--root-cnode-bits", "99"),
     ("bad kernel configuration: root_cnode_bits 99",)),
    (("build", "{elf}", "-o", "{out}", "--tick-instructions", "many"),
     ("--tick-instructions", "'many' is not a valid integer")),
    (("build", "{elf}", "-o", "{out}", "--ram-size", "4K"), ("ram_size 0x1000",)),
    (("inspect",), ("Missing argument 'IMAGE'",)),
    (("inspect", "{dir}/missing.img"), ("cannot read image", "missing.img")),
    (("inspect", "{elf}"), ("wrong magic", "capsule image build")),
    (("inspect", "{dir}"), ("cannot read image",)),
    (("extract", "{dir}/missing.img", "-o", "{out}"), ("cannot read image", "missing.img")),
    (("extract", "{elf}", "-o", "{out}"), ("wrong magic",)),
    (("frobnicate",), ("No such command 'frobnicate'",)),
    (("build", "{elf}", "-o", "{out}", "--colour"), ("No such option",)),
])
def test_bad_arguments(run: Runner, args: tuple[str, ...], fragments: tuple[str, ...],
                       tmp_path: Path) -> None:
    names = {"elf": write(tmp_path / "ok.elf", simple_elf()), "out": str(tmp_path / "o.img"),
             "dir": str(tmp_path)}
    assert_one_line_error(run(*(a.format(**names) for a in args)), *fragments)


def test_bare_group_shows_help_without_traceback() -> None:
    out = in_process()
    assert "Usage:" in out.stdout + out.stderr
    assert "build" in out.stdout + out.stderr and "Traceback" not in out.stdout + out.stderr


def test_help_is_not_an_error() -> None:
    out = in_process("build", "--help")
    assert out.status == 0 and "--ram-size" in out.stdout
