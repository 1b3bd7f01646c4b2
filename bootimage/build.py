"""Building a boot image from a root task's ELF and a kernel configuration.

The builder runs the loader's own checks (``bootimage.elf.read_root_elf``) before it
writes anything, so a bad ELF or configuration can never be packaged: every image
``build_image`` returns is accepted by ``load_image``.
"""

from __future__ import annotations

import json

from kernel.abi.arch import Arch
from kernel.config import ConfigError, KernelConfig

from .elf import read_root_elf
from .errors import BadConfig
from .format import pack

__all__ = ["build_image", "encode_config"]


def build_image(elf: bytes, config: KernelConfig, arch: Arch | None = None) -> bytes:
    """A version-1 boot image holding ``elf`` unchanged and ``config``.

    ``arch`` defaults to the ELF's ``e_machine``; if given, the ELF must be for it.
    Postcondition: ``load_image(result)`` succeeds and returns ``config`` and ``elf``.

    Raises:
        ImageError (or a subclass): ``config`` is invalid (``BadConfig``), or ``elf``
        breaks a rule of ``bootimage.elf`` for ``config`` (``ElfError``).
    """
    try:
        config.validate()
    except ConfigError as err:
        raise BadConfig(f"bad kernel configuration: {err}") from None
    root = read_root_elf(bytes(elf), config, arch, "the arch argument").root
    return pack(root.arch.value, encode_config(config), bytes(elf))


def encode_config(config: KernelConfig) -> bytes:
    """The canonical JSON of ``config``: sorted keys, no spaces, UTF-8."""
    return json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":")).encode()
