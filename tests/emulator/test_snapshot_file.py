"""Snapshot files (emulator.snapshot): a round trip that runs on to the same end, the
layout the module docstring gives, compactness, and a corpus of malformed files, each
refused with one line before anything in it is unpacked or restored.

The corpus is built here from a real snapshot by editing its bytes as the layout says
(re-sealing the digest where the point is a later check); ``MALFORMED`` is shared with
the CLI test, which feeds the same files to ``capsule resume`` and ``capsule debug``.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from bootimage import build_image, load_image
from emulator import safe_pickle
from emulator.session import Checkpoint, Session
from emulator.snapshot import (
    FORMAT_VERSION,
    MAGIC,
    SnapshotError,
    capsule_version,
    decode_snapshot,
    encode_snapshot,
    restore_snapshot,
    snapshot_of,
)
from kernel.config import KernelConfig
from userland.build import image_config

HEADER = struct.Struct("<16sIIQ")


def boot(elf: Path, program: str, config: KernelConfig | None = None) -> tuple[Session, bytearray]:
    loaded = load_image(build_image(elf.read_bytes(), config or image_config(program)))
    out = bytearray()
    return Session.boot(loaded.root, loaded.config, out.append), out


def snapshot_bytes(elf: Path, program: str, at: int) -> bytes:
    session, _ = boot(elf, program)
    assert session.run(at).kind == "limit"
    return encode_snapshot(snapshot_of(session, elf.read_bytes(), program))


def parts(data: bytes) -> tuple[int, bytes, bytes]:
    """(format version, description, payload) as the layout says."""
    _, version, described, carried = HEADER.unpack_from(data)
    start = HEADER.size
    return version, data[start:start + described], data[start + described:start + described + carried]


def seal(version: int, description: bytes, payload: bytes) -> bytes:
    """A file with these parts and a correct digest (what a careful forger would make)."""
    body = HEADER.pack(MAGIC, version, len(description), len(payload)) + description + payload
    return body + hashlib.sha256(body).digest()


def with_description(data: bytes, **changes: object) -> bytes:
    version, description, payload = parts(data)
    fields = json.loads(description)
    fields.update(changes)
    return seal(version, json.dumps(fields).encode(), payload)


def with_payload(data: bytes, payload: bytes) -> bytes:
    version, description, _ = parts(data)
    return seal(version, description, payload)


class Shell:
    """Unpickling this calls ``os.system``: what a hostile payload would carry."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("echo pwned",))


MALFORMED: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "empty": (lambda d: b"", "not a capsule snapshot"),
    "an image": (lambda d: b"CAPSULE\x00" + bytes(64), "not a capsule snapshot"),
    "magic only": (lambda d: MAGIC, "truncated"),
    "header cut": (lambda d: d[:HEADER.size - 3], "truncated"),
    "half the file": (lambda d: d[:len(d) // 2], "truncated"),
    "digest cut": (lambda d: d[:-1], "truncated"),
    "trailing bytes": (lambda d: d + b"\x00", "after its end"),
    "a flipped payload bit": (lambda d: d[:-100] + bytes([d[-100] ^ 1]) + d[-99:], "digest"),
    "a flipped digest bit": (lambda d: d[:-1] + bytes([d[-1] ^ 0x80]), "digest"),
    "a flipped description byte": (
        lambda d: d[:HEADER.size + 3] + bytes([d[HEADER.size + 3] ^ 0x20]) + d[HEADER.size + 4:],
        "digest"),
    "another format": (lambda d: seal(FORMAT_VERSION + 1, *parts(d)[1:]), "format 2"),
    "a huge description": (
        lambda d: HEADER.pack(MAGIC, FORMAT_VERSION, 1 << 30, 0) + bytes(64), "description"),
    "another capsule": (lambda d: with_description(d, capsule="0.0.1+000000000000"),
                        "made by capsule 0.0.1+000000000000"),
    "description not JSON": (lambda d: seal(FORMAT_VERSION, b"{not json", parts(d)[2]),
                             "description"),
    "description with unknown fields": (lambda d: with_description(d, extra=1), "description"),
    "description of another arch": (lambda d: with_description(d, arch="x86_64"), "description"),
    "payload not zlib": (lambda d: with_payload(d, b"not compressed at all"), "decompress"),
    "payload cut inside zlib": (lambda d: with_payload(d, parts(d)[2][:-40]), "decompress"),
    "payload not a pickle": (lambda d: with_payload(d, zlib.compress(b"\x80\x05garbage")),
                             "unpack"),
    "payload calling os.system": (lambda d: with_payload(d, zlib.compress(pickle.dumps(Shell()))),
                                  "no checkpoint holds"),
    "payload of another type": (lambda d: with_payload(d, zlib.compress(pickle.dumps((1, b"")))),
                                "not a checkpoint"),
    "payload of another RAM size": (lambda d: with_description(d, ram_size=1 << 20),
                                    "does not match its description"),
}
"""Name: (how to damage a good snapshot file, a fragment of the one-line error)."""


@pytest.fixture(scope="module")
def good(guest_elves: dict[str, dict[str, Path]]) -> bytes:
    return snapshot_bytes(guest_elves["riscv64"]["spawn"], "spawn", 200_000)


def test_the_file_has_the_documented_layout(good: bytes) -> None:
    assert good.startswith(MAGIC)
    version, description, payload = parts(good)
    assert version == FORMAT_VERSION
    assert len(good) == HEADER.size + len(description) + len(payload) + 32
    assert hashlib.sha256(good[:-32]).digest() == good[-32:]
    info = json.loads(description)
    assert info["capsule"] == capsule_version() and info["arch"] == "riscv64"
    assert info["instructions"] == 200_000
    checkpoint, elf = safe_pickle.loads(zlib.decompress(payload))  # type: ignore[misc]
    assert isinstance(checkpoint, Checkpoint) and elf.startswith(b"\x7fELF")
    assert info["pages"] == len(checkpoint.machine.pages)


def test_a_decoded_snapshot_runs_on_to_the_end_of_the_whole_run(
        guest_elves: dict[str, dict[str, Path]], good: bytes) -> None:
    elf = guest_elves["riscv64"]["spawn"]
    whole, whole_out = boot(elf, "spawn")
    end = whole.run()
    later = bytearray()
    restored = restore_snapshot(decode_snapshot(good), later.append)
    result = restored.run()
    assert (result.kind, result.status) == (end.kind, end.status) == ("halt", 0)
    assert restored.output == bytes(whole_out)
    assert bytes(later) == bytes(whole_out)[len(restored.output) - len(later):]
    assert restored.instructions == whole.instructions
    assert (result.kernel_entries, result.ticks) == (end.kernel_entries, end.ticks)


def test_ram_never_written_is_not_stored(guest_elves: dict[str, dict[str, Path]]) -> None:
    """hello with 1 GiB of RAM: the file holds the pages it wrote, not the gigabyte."""
    elf = guest_elves["riscv64"]["hello"]
    session, _ = boot(elf, "hello", KernelConfig(ram_size=1 << 30))
    session.run(1000)
    taken = snapshot_of(session, elf.read_bytes(), "hello")
    data = encode_snapshot(taken)
    pages = taken.checkpoint.machine.pages
    assert 0 < len(pages) < 2048 and len(data) < 2 << 20
    ram = session.machine.uc.mem_read(session.machine.ram_base, 1 << 30)
    written = {offset for offset in range(0, 1 << 30, 4096) if any(ram[offset:offset + 4096])}
    assert set(pages) == written


def test_snapshots_of_the_same_point_are_the_same_bytes(
        guest_elves: dict[str, dict[str, Path]], good: bytes) -> None:
    assert snapshot_bytes(guest_elves["riscv64"]["spawn"], "spawn", 200_000) == good


@pytest.mark.parametrize("damage", MALFORMED)
def test_a_malformed_snapshot_is_one_line_refused(good: bytes, damage: str) -> None:
    make, fragment = MALFORMED[damage]
    with pytest.raises(SnapshotError) as raised:
        decode_snapshot(make(good))
    message = str(raised.value)
    assert fragment in message and "\n" not in message


def test_the_loader_builds_only_capsules_classes() -> None:
    with pytest.raises(safe_pickle.UnsafePickle):
        safe_pickle.loads(pickle.dumps(Shell()))
    with pytest.raises(safe_pickle.UnsafePickle):  # a function of a capsule module
        safe_pickle.loads(pickle.dumps(capsule_version))
    assert safe_pickle.loads(pickle.dumps(KernelConfig(ram_size=1 << 24))) == KernelConfig(
        ram_size=1 << 24)
