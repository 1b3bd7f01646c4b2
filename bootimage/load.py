"""Loading a boot image: the container, then the configuration, then the root task's ELF.

The loader's output is a :class:`LoadedImage`, whose ``root`` is the
:class:`kernel.image.RootTaskImage` that ``kernel.boot`` takes; the kernel never parses
files itself. Checks run in the order the data depends on each other (``format.unpack``
rules, then the header's architecture, the configuration, the ELF rules of
``bootimage.elf``), so the one-line error names the first thing wrong.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import Any

from kernel.abi.arch import Arch
from kernel.config import ConfigError, KernelConfig
from kernel.image import RootTaskImage
from kernel.platforms import platform_for
from kernel.records import dataclass

from .elf import RootElf, read_root_elf
from .errors import BadConfig, FormatError, ImageError
from .format import RawImage, unpack

__all__ = [
    "CheckedImage",
    "LoadedImage",
    "check_image",
    "decode_config",
    "extract_elf",
    "load_image",
    "load_image_file",
    "read_file",
]


@dataclass(frozen=True, slots=True)
class LoadedImage:
    """A boot image that passed every check: what ``kernel.boot`` needs to start it.

    Invariants: ``root.arch == arch``; ``config`` is valid; ``root`` satisfies every rule
    of ``bootimage.elf`` for ``config`` (it fits in RAM, segments sorted and disjoint,
    entry in an executable segment); ``elf`` is the root task's ELF exactly as stored.
    """

    arch: Arch
    config: KernelConfig
    root: RootTaskImage
    elf: bytes
    version: int


@dataclass(frozen=True, slots=True)
class CheckedImage:
    """Everything the checks learnt about an image; ``inspect_image`` describes it."""

    raw: RawImage
    arch: Arch
    config: KernelConfig
    elf: RootElf


def load_image(data: bytes) -> LoadedImage:
    """Check ``data`` as a boot image and return what boot needs.

    Raises:
        ImageError (or a subclass): the first problem found; never another exception.
    """
    image = check_image(data)
    return LoadedImage(
        arch=image.arch,
        config=image.config,
        # capsule is seL4 on the arch's platform: its device tree, hence seL4's layout.
        root=replace(image.elf.root,
                     device_tree=platform_for(image.arch).device_tree(image.config.ram_size)),
        elf=image.raw.elf,
        version=image.raw.header.version,
    )


def load_image_file(path: str | os.PathLike[str]) -> LoadedImage:
    """:func:`load_image` on the contents of the file at ``path``.

    Raises:
        ImageError: as :func:`load_image`, or the file cannot be read.
    """
    return load_image(read_file(path, "image"))


def extract_elf(data: bytes) -> bytes:
    """The root task's ELF in image ``data``, byte for byte as it was packaged.

    Only the framing and the checksum are checked (``format.unpack``): the bytes are
    the ones packaged, and an image whose configuration or ELF the loader refuses still
    gives its ELF back (to debug it).

    Raises:
        ImageError (or a subclass): the framing or the checksum is bad.
    """
    return unpack(bytes(data)).elf


def read_file(path: str | os.PathLike[str], what: str) -> bytes:
    """The bytes of ``path``; an unreadable file is an ``ImageError`` naming ``what``."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        reason = err.strerror or str(err)
        raise ImageError(f"cannot read {what} {os.fspath(path)!r}: {reason}") from err


def check_image(data: bytes) -> CheckedImage:
    """Run every check on ``data`` (see the module docstring) and keep what they found.

    Raises:
        ImageError (or a subclass).
    """
    raw = unpack(bytes(data))
    try:
        arch = Arch(raw.header.arch)
    except ValueError:
        raise FormatError(
            f"unknown architecture: header says e_machine {raw.header.arch} (capsule runs "
            f"riscv64 ({Arch.RISCV64.value}) and aarch64 ({Arch.AARCH64.value}))"
        ) from None
    config = decode_config(raw.config)
    return CheckedImage(raw, arch, config, read_root_elf(raw.elf, config, arch, "header"))


def decode_config(blob: bytes) -> KernelConfig:
    """The :class:`KernelConfig` in a UTF-8 JSON object, validated.

    Raises:
        BadConfig: not UTF-8, not JSON, not an object, or ``KernelConfig`` refuses it.
    """
    try:
        data: Any = json.loads(blob.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise BadConfig(
            f"bad kernel configuration: not UTF-8 ({err.reason} at byte {err.start})"
        ) from None
    except (ValueError, RecursionError) as err:
        # JSONDecodeError is a ValueError, as is the int-digits limit on huge numbers;
        # deep nesting exhausts the decoder's recursion.
        raise BadConfig(f"bad kernel configuration: not JSON ({err})") from None
    if not isinstance(data, dict):
        raise BadConfig(
            f"bad kernel configuration: expected a JSON object, got {type(data).__name__}"
        )
    try:
        return KernelConfig.from_dict(data)
    except ConfigError as err:
        raise BadConfig(f"bad kernel configuration: {err}") from None
