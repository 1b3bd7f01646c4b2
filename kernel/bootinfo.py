"""The seL4_BootInfo frame, encoded byte for byte in seL4's layout (abi/boot.md)."""

from __future__ import annotations

import struct
from dataclasses import field

from kernel.abi.constants import BOOTINFO, BOOTINFO_MCS, MAX_BOOTINFO_UNTYPED_CAPS, UNTYPED_DESC
from kernel.records import dataclass

__all__ = ["BootInfo", "UntypedDesc"]


@dataclass(frozen=True, slots=True)
class UntypedDesc:
    paddr: int
    size_bits: int
    is_device: bool


@dataclass
class BootInfo:
    """What the root task learns at boot. Slot regions are ``(start, end)``, end exclusive."""

    ipc_buffer: int
    cnode_size_bits: int
    empty: tuple[int, int] = (0, 0)
    user_image_frames: tuple[int, int] = (0, 0)
    user_image_paging: tuple[int, int] = (0, 0)
    untyped: tuple[int, int] = (0, 0)
    untyped_list: list[UntypedDesc] = field(default_factory=list)
    extra_len: int = 0
    extra_pages: tuple[int, int] = (0, 0)
    node_id: int = 0
    num_nodes: int = 1
    schedcontrol: tuple[int, int] | None = None
    """MCS only: the SchedControl caps' region; set, the frame has the MCS layout (the
    region before ``untyped``, which moves up by 16 bytes)."""

    def encode(self) -> bytes:
        """The BOOTINFO.size bytes of the structure (the rest of the frame stays zero)."""
        if len(self.untyped_list) > MAX_BOOTINFO_UNTYPED_CAPS:
            raise ValueError("too many untyped descriptors for seL4_BootInfo")
        layout = BOOTINFO if self.schedcontrol is None else BOOTINFO_MCS
        out = bytearray(layout.size)

        def word(name: str, value: int) -> None:
            struct.pack_into("<Q", out, layout.offset(name), value)

        def region(name: str, value: tuple[int, int]) -> None:
            struct.pack_into("<QQ", out, layout.offset(name), *value)

        word("extraLen", self.extra_len)
        word("nodeID", self.node_id)
        word("numNodes", self.num_nodes)
        word("numIOPTLevels", 0)
        word("ipcBuffer", self.ipc_buffer)
        region("empty", self.empty)
        region("sharedFrames", (0, 0))
        region("userImageFrames", self.user_image_frames)
        region("userImagePaging", self.user_image_paging)
        region("ioSpaceCaps", (0, 0))
        region("extraBIPages", self.extra_pages)
        word("initThreadCNodeSizeBits", self.cnode_size_bits)
        word("initThreadDomain", 0)
        if self.schedcontrol is not None:
            region("schedcontrol", self.schedcontrol)
        region("untyped", self.untyped)
        base = layout.offset("untypedList")
        for i, desc in enumerate(self.untyped_list):
            at = base + i * UNTYPED_DESC.size
            struct.pack_into("<QBB", out, at, desc.paddr, desc.size_bits, int(desc.is_device))
        return bytes(out)
