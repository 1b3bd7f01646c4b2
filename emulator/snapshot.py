"""Snapshot files: a whole system saved to one file and taken up again later.

``capsule run --snapshot-at N --save FILE``, ``capsule resume FILE``, ``capsule debug
FILE`` and the debugger's ``snapshot`` / ``restore`` use this module. A snapshot holds
what :class:`emulator.session.Checkpoint` holds (RAM, every thread's CPU state, all
kernel state, the console output so far, the instruction count) and the root task's ELF
(the debugger's symbols), so a file is all that resuming needs.

The file, all integers little-endian::

    0   16 bytes  magic "CAPSULE SNAPSHOT"
    16  u32       format version (FORMAT_VERSION)
    20  u32       M, the length of the description
    24  u64       P, the length of the payload
    32  M bytes   the description: JSON (SnapshotInfo's fields), readable without
                  unpacking the rest
    .   P bytes   the payload: zlib-compressed pickle of (Checkpoint, ELF)
    .   32 bytes  SHA-256 of everything before it

Compact: RAM pages that are all zero (never written, or written back to zero) are not
stored, and the rest is compressed. Safe to load: the lengths, the digest and the version
are checked before anything is unpacked, and the pickle is loaded by
:func:`emulator.safe_pickle.loads`, which builds capsule's own classes only. A snapshot
is bound to the capsule that made it (:func:`capsule_version`: the package version and a
digest of the kernel's and the emulator's code), because its kernel state is that code's
data; another version's snapshot is refused, with both versions named.

Every refusal is a :class:`SnapshotError` whose message is one line.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kernel.abi.arch import Arch
from kernel.records import dataclass

from . import safe_pickle
from .session import Checkpoint, Session

__all__ = ["FORMAT_VERSION", "MAGIC", "Snapshot", "SnapshotError", "SnapshotInfo",
           "capsule_version", "decode_snapshot", "describe_snapshot", "encode_snapshot", "is_snapshot",
           "load_snapshot", "restore_snapshot", "save_snapshot", "snapshot_of"]

MAGIC = b"CAPSULE SNAPSHOT"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<16sIIQ")
_DIGEST = 32
_MAX_DESCRIPTION = 1 << 16
"""A description longer than this is not one capsule wrote."""
_PAYLOAD_SLACK = 64 << 20
"""Decompressed payload allowed beyond 4 bytes per byte of RAM (kernel state is bounded
by the RAM its objects occupy): a bound against a decompression bomb."""


class SnapshotError(ValueError):
    """A file is not a snapshot this capsule can take up; the message is one line."""


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """What a snapshot is of, readable without unpacking it (the file's description)."""

    capsule: str
    """:func:`capsule_version` of the capsule that wrote it."""
    arch: str
    ram_size: int
    instructions: int | None
    """Guest instructions run before the snapshot (None: counting was unavailable)."""
    kernel_entries: int
    ticks: int
    pages: int
    """RAM pages stored (the others are zero)."""
    image: str
    """The name of the image it was taken from (for people; not checked)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A saved system: the checkpoint, the root task's ELF (b"" if unknown) and the
    description."""

    checkpoint: Checkpoint
    elf: bytes
    info: SnapshotInfo


@functools.cache
def capsule_version() -> str:
    """This capsule's version as snapshots record it: the package version and the first
    12 hex digits of a SHA-256 over the kernel's and the emulator's source files."""
    import importlib.metadata

    import emulator
    import kernel

    digest = hashlib.sha256()
    for package in (kernel, emulator):
        assert package.__file__ is not None
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root.parent).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    try:
        release = importlib.metadata.version("capsule")
    except importlib.metadata.PackageNotFoundError:
        release = "unreleased"
    return f"{release}+{digest.hexdigest()[:12]}"


def snapshot_of(session: Session, elf: bytes, image: str) -> Snapshot:
    """The snapshot of ``session`` now (between runs, as
    :meth:`emulator.session.Session.checkpoint`). The pure and the compiled kernel
    make the same snapshot of the same point (:mod:`kernel.pickling`)."""
    checkpoint = session.checkpoint()
    kernel = session.kernel
    info = SnapshotInfo(capsule_version(), kernel.arch.short, checkpoint.machine.ram_size,
                        checkpoint.instructions, kernel.kernel_entries, kernel.ticks,
                        len(checkpoint.machine.pages), image)
    return Snapshot(checkpoint, elf, info)


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """The file's bytes (see the module docstring)."""
    import pickle

    description = json.dumps(asdict(snapshot.info), sort_keys=True).encode()
    payload = zlib.compress(pickle.dumps((snapshot.checkpoint, snapshot.elf),
                                         protocol=pickle.HIGHEST_PROTOCOL), 6)
    head = _HEADER.pack(MAGIC, FORMAT_VERSION, len(description), len(payload))
    body = head + description + payload
    return body + hashlib.sha256(body).digest()


def is_snapshot(data: bytes) -> bool:
    """Whether ``data`` starts as a snapshot file does (whatever its version)."""
    return data.startswith(MAGIC)


def describe_snapshot(data: bytes) -> SnapshotInfo:
    """The description of the snapshot in ``data``, its framing and digest checked but
    its payload not unpacked, whichever capsule made it; :class:`SnapshotError` if it is
    not a snapshot, of another format, truncated or damaged."""
    return _framed(data)[0]


def decode_snapshot(data: bytes) -> Snapshot:
    """The snapshot in ``data``; :class:`SnapshotError` if it is not one this capsule
    can take up (not a snapshot, another format or capsule version, truncated, damaged)."""
    info, payload = _framed(data)
    if info.capsule != capsule_version():
        raise SnapshotError(f"made by capsule {info.capsule}; this is capsule "
                            f"{capsule_version()}: take it up with the capsule that made it")
    checkpoint, elf = _payload(payload, info)
    if checkpoint.machine.arch.short != info.arch or checkpoint.machine.ram_size != info.ram_size:
        raise SnapshotError("damaged: its payload does not match its description")
    return Snapshot(checkpoint, elf, info)


def _framed(data: bytes) -> tuple[SnapshotInfo, memoryview]:
    """The description and the (compressed) payload of a snapshot file, after the checks
    of its framing: magic, format, lengths, digest."""
    if not is_snapshot(data):
        raise SnapshotError("not a capsule snapshot (it does not start with "
                            f"{MAGIC.decode()!r})")
    if len(data) < _HEADER.size:
        raise SnapshotError(f"truncated: {len(data)} bytes, shorter than a snapshot's header")
    _, version, described, carried = _HEADER.unpack_from(data)
    if version != FORMAT_VERSION:
        raise SnapshotError(f"snapshot format {version}; this capsule reads format "
                            f"{FORMAT_VERSION}")
    if described > _MAX_DESCRIPTION:
        raise SnapshotError(f"damaged: its header gives a {described}-byte description")
    expected = _HEADER.size + described + carried + _DIGEST
    if len(data) < expected:
        raise SnapshotError(f"truncated: {len(data)} bytes of the {expected} its header gives")
    if len(data) > expected:
        raise SnapshotError(f"damaged: {len(data) - expected} bytes after its end")
    body = memoryview(data)[: expected - _DIGEST]
    if hashlib.sha256(body).digest() != data[expected - _DIGEST:]:
        raise SnapshotError("damaged: its SHA-256 digest does not match its contents "
                            "(corrupted or edited)")
    info = _description(bytes(body[_HEADER.size : _HEADER.size + described]))
    return info, body[_HEADER.size + described :]


def _description(raw: bytes) -> SnapshotInfo:
    try:
        fields: Any = json.loads(raw)
        info = SnapshotInfo(**fields)
    except (ValueError, TypeError) as error:
        raise SnapshotError(f"damaged: its description does not read ({error})") from None
    if (not isinstance(info.capsule, str) or info.arch not in {a.short for a in Arch}
            or not isinstance(info.ram_size, int) or not 0 < info.ram_size <= 1 << 32):
        raise SnapshotError("damaged: its description does not read")
    return info


def _payload(compressed: memoryview, info: SnapshotInfo) -> tuple[Checkpoint, bytes]:
    limit = 4 * info.ram_size + _PAYLOAD_SLACK
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(compressed, limit)
    except zlib.error as error:
        raise SnapshotError(f"damaged: its payload does not decompress ({error})") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise SnapshotError("damaged: its payload does not decompress to a snapshot")
    try:
        loaded = safe_pickle.loads(raw)
    except Exception as error:  # a damaged pickle raises many kinds; all mean the same
        raise SnapshotError(f"damaged: its payload does not unpack "
                            f"({type(error).__name__}: {error})") from None
    if (not isinstance(loaded, tuple) or len(loaded) != 2
            or not isinstance(loaded[0], Checkpoint) or not isinstance(loaded[1], bytes)):
        raise SnapshotError("damaged: its payload is not a checkpoint")
    return loaded[0], loaded[1]


def restore_snapshot(snapshot: Snapshot, console: Callable[[int], None]) -> Session:
    """A fresh machine and kernel in the state ``snapshot`` holds (as
    :meth:`emulator.session.Session.restore`); :class:`SnapshotError` if its parts do not
    go together (a file that passed the digest but was not written by capsule)."""
    try:
        return Session.restore(snapshot.checkpoint, console)
    except Exception as error:  # its data is capsule's own only if it was not forged
        raise SnapshotError(f"damaged: it does not restore "
                            f"({type(error).__name__}: {error})") from None


def save_snapshot(path: Path, snapshot: Snapshot) -> int:
    """Write ``snapshot`` to ``path`` (whole or not at all: through a temporary file
    beside it, then renamed); the number of bytes written. Raises ``OSError``."""
    data = encode_snapshot(snapshot)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return len(data)


def load_snapshot(path: Path) -> Snapshot:
    """The snapshot in file ``path``; :class:`SnapshotError` (one line) if it cannot be
    read or taken up."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SnapshotError(f"cannot read snapshot {path}: {error.strerror or error}") from None
    try:
        return decode_snapshot(data)
    except SnapshotError as error:
        raise SnapshotError(f"{path}: {error}") from None
