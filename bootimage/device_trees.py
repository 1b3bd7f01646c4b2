"""The platforms' flattened device trees, made from their sources.

Boot does not parse device tree source (:mod:`kernel.platforms.platform`): each platform's
tree ships flattened, with a placeholder for /memory's ``reg``. This module makes those
templates with the ``fdt`` package and says which shipped ones are stale
(``make device-trees`` rewrites them; a test checks them).
"""

from __future__ import annotations

import struct
from importlib import resources
from pathlib import Path

import fdt

from kernel.platforms.platform import REG_PLACEHOLDER, memory_reg, template_name

__all__ = ["device_tree_template", "stale_templates"]

_PLATFORMS = Path(str(resources.files("kernel.platforms")))


def device_tree_template(dts: str, ram_base: int | None = None, ram_size: int = 0) -> bytes:
    """The platform source ``dts`` flattened as seL4's build does (version 17), with
    /memory's ``reg`` the placeholder or, given ``ram_base``, the RAM it names."""
    tree = fdt.parse_dts((_PLATFORMS / dts).read_text())
    memory = next(node for node in tree.root.nodes if node.name.startswith("memory"))
    reg = REG_PLACEHOLDER if ram_base is None else memory_reg(ram_base, ram_size)
    memory.set_property("reg", list(struct.unpack(">4I", reg)))
    blob = bytes(tree.to_dtb(version=17, last_comp_version=16))
    if blob.count(reg) != 1:
        raise ValueError(f"{dts}: /memory's reg is not found exactly once in the flattened tree")
    return blob


def stale_templates(write: bool = False) -> list[str]:
    """The shipped templates that differ from their source now; ``write`` rewrites them."""
    stale = []
    for source in sorted(_PLATFORMS.glob("*.dts")):
        path = source.with_name(template_name(source.name))
        blob = device_tree_template(source.name)
        if not path.exists() or path.read_bytes() != blob:
            stale.append(path.name)
            if write:
                path.write_bytes(blob)
    return stale


if __name__ == "__main__":
    stale_templates(write=True)
