"""Kernel configuration, chosen per image (DESIGN.md decision 6).

A :class:`KernelConfig` travels inside the boot image and is the only place where a
configuration choice is made; the kernel picks modules by it at boot instead of testing
flags throughout its code.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Final

from kernel.abi.constants import PAGE_BITS
from kernel.records import dataclass

__all__ = ["EXTENSION_FIELDS", "LATER_OPTION_FIELDS", "ConfigError", "KernelConfig"]

MIN_RAM: Final = 1 << 20
MAX_RAM: Final = 1 << 32


EXTENSION_FIELDS: Final = ("checkpoint_object", "cap_pages", "server_backed_cnodes")
"""The fields of :class:`KernelConfig` that turn on extensions beyond seL4 (DESIGN.md
decision 10); each is off by default."""

LATER_OPTION_FIELDS: Final = ("arm_export_pmu_user",)
"""seL4's own options that :class:`KernelConfig` gained after images were first made; each
is off by default and, like an extension, left out of an image while off, so that an
image that does not turn it on keeps its bytes."""


class ConfigError(ValueError):
    """A configuration value is out of range; the message names the field."""


@dataclass(frozen=True, slots=True)
class KernelConfig:
    """What seL4 fixes at kernel build time and we fix per image.

    Invariants (checked by :meth:`validate`): ``ram_size`` is a page multiple between
    1 MiB and 4 GiB; ``root_cnode_bits`` is 4..24; ``tick_instructions`` and
    ``time_slice_ticks`` are positive; ``num_domains`` is 1..256 (1 with ``mcs``).
    """

    ram_size: int = 32 << 20
    """Bytes of RAM at the platform's physical base."""
    root_cnode_bits: int = 12
    """CONFIG_ROOT_CNODE_SIZE_BITS: log2 of the root CNode's slot count."""
    mcs: bool = False
    """CONFIG_KERNEL_MCS: seL4's MCS configuration (scheduling contexts, reply objects,
    its own system-call numbers, object types and labels; kernel/entry/variant.py).
    What of it works so far: the README's "MCS"."""
    tick_instructions: int = 10_000
    """Instructions between two timer ticks: time in capsule is instructions retired."""
    time_slice_ticks: int = 5
    """CONFIG_TIME_SLICE: ticks a thread runs before round robin moves on."""
    fastpath: bool = True
    """CONFIG_FASTPATH: Call and ReplyRecv in their common case skip the general path
    (kernel/fastpath.py); the results are the same either way."""
    fpu: bool = True
    """CONFIG_HAVE_FPU: threads may use floating point, and the TCB holds its state
    (seL4_TCBBits 11 on RISC-V; 10 without). Only RISC-V kernels can be built without
    (an FP instruction is then illegal for every thread); AArch64 always has the FPU."""
    num_domains: int = 1
    """CONFIG_NUM_DOMAINS: scheduling domains (1..256). With more than one, the domain
    schedule (kernel/model/domains.py) decides whose threads run."""
    arm_export_pmu_user: bool = False
    """CONFIG_EXPORT_PMU_USER (seL4's KernelArmExportPMUUser, an Arm option): the
    performance monitors (PMCR_EL0, PMCCNTR_EL0, the event counters...) are usable at
    EL0, with deterministic counts derived from instructions retired
    (emulator/arm_pmu.py). Off, as in seL4, an EL0 access to them is a UserException
    with the syndrome of a trapped system-register access (EC 0x18). RISC-V has no such
    option: there the cycle, time and instret counters are always readable in user mode,
    as seL4 under OpenSBI leaves them (emulator/counters.py); an image for RISC-V
    ignores this field."""
    checkpoint_object: bool = False
    """capsule's checkpoint object extension, **not seL4** (kernel/abi/extensions.py):
    Untyped_Retype makes checkpoint objects, whose caps read cspaces slot by slot and
    install caps at given slots. Off, the type number and labels are refused as seL4
    refuses unknown ones."""
    cap_pages: bool = False
    """capsule's capability-page extension (EROS/Coyotos CapPage), **not seL4**
    (kernel/abi/extensions.py, kernel/objects/cap_page.py): page-sized CNodes mapped
    into VSpaces, capability load/store at addresses, type faults. Off, its type
    number and labels are refused as seL4 refuses unknown ones."""
    server_backed_cnodes: bool = False
    """capsule's server-backed CNodes, virtualizable capability-space traversal, **not
    seL4** (kernel/abi/extensions.py, kernel/entry/traversal.py): CNode_BindServer
    binds a CNode to a server's endpoint, and a lookup meeting an empty slot of it asks
    that server and restarts the system call when it answers. Off, the labels are
    illegal operations and the fastpath runs as configured."""

    @property
    def domain_schedule_length(self) -> int:
        """CONFIG_NUM_DOMAIN_SCHEDULES: seL4's default, 100 entries with several domains
        and 2 (one entry and its end marker) with one."""
        return 100 if self.num_domains > 1 else 2

    def validate(self) -> KernelConfig:
        """Return ``self`` if every field is in range, else raise :class:`ConfigError`."""
        page = 1 << PAGE_BITS
        if not (MIN_RAM <= self.ram_size <= MAX_RAM) or self.ram_size % page:
            raise ConfigError(
                f"ram_size {self.ram_size:#x} must be a multiple of 4 KiB between 1 MiB and 4 GiB"
            )
        if not 4 <= self.root_cnode_bits <= 24:
            raise ConfigError(f"root_cnode_bits {self.root_cnode_bits} must be in 4..24")
        if self.tick_instructions <= 0 or self.time_slice_ticks <= 0:
            raise ConfigError("tick_instructions and time_slice_ticks must be positive")
        if not 1 <= self.num_domains <= 256:
            raise ConfigError(f"num_domains {self.num_domains} must be in 1..256")
        if self.mcs and self.num_domains > 1:
            # MCS domain time is kept in timer ticks and charged at every kernel entry;
            # capsule charges it only in the non-MCS kernel's periodic ticks so far.
            raise ConfigError("mcs with num_domains > 1 is not supported by capsule yet")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Every field, except extensions and later seL4 options that are off: an image
        without them carries exactly the configuration it carried before they existed."""
        data = asdict(self)
        for name in EXTENSION_FIELDS + LATER_OPTION_FIELDS:
            if not data[name]:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KernelConfig:
        """Build from a mapping; unknown keys and wrongly typed values are errors."""
        known = {f.name: f for f in fields(cls)}
        for key, value in data.items():
            if key not in known:
                raise ConfigError(f"unknown configuration key {key!r}")
            expected = bool if known[key].type in ("bool", bool) else int
            if type(value) is not expected:
                raise ConfigError(f"configuration key {key!r} must be {expected.__name__}")
        return cls(**data).validate()
