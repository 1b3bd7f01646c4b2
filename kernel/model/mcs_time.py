"""MCS time: timer ticks at the platform's frequency, from instructions retired.

seL4's MCS kernel counts time in ticks of the platform timer (10 MHz on qemu-riscv-virt,
62.5 MHz on qemu-arm-virt) and takes budgets and periods in microseconds, converting
them as its ``usToTicks`` does. capsule has no wall clock (DESIGN.md decision 3): one
instruction retired is one timer tick, so an MCS run is the same on every run.
"""

from __future__ import annotations

from typing import Final

from kernel.abi.arch import ArchABI
from kernel.abi.constants import KERNEL_WCET_US, WORD_MASK

__all__ = ["max_period_us", "max_release_time", "min_budget_ticks", "min_budget_us",
           "us_to_ticks"]

_US_PER_S: Final = 1_000_000


def us_to_ticks(abi: ArchABI, us: int) -> int:
    """Microseconds as timer ticks, rounded down as seL4's usToTicks rounds (whole MHz:
    ``us * MHz``; otherwise ``us * kHz / 1000``)."""
    hz = abi.timer_hz
    if hz % _US_PER_S:
        return (us * (hz // 1000)) // 1000
    return us * (hz // _US_PER_S)


def _max_us_to_ticks(abi: ArchABI) -> int:
    """getMaxUsToTicks: the largest microsecond count usToTicks takes without overflow."""
    hz = abi.timer_hz
    return WORD_MASK // (hz // 1000 if hz % _US_PER_S else hz // _US_PER_S)


def max_period_us(abi: ArchABI) -> int:
    """MAX_PERIOD_US: an eighth of what converts without overflow (seL4's default,
    CONFIG_KERNEL_STATIC_MAX_PERIOD_US = 0)."""
    return _max_us_to_ticks(abi) // 8


def min_budget_us() -> int:
    """MIN_BUDGET_US: twice the kernel's worst-case execution time (scale 1)."""
    return 2 * KERNEL_WCET_US


def min_budget_ticks(abi: ArchABI) -> int:
    """MIN_BUDGET, in ticks."""
    return 2 * us_to_ticks(abi, KERNEL_WCET_US)


def max_release_time(abi: ArchABI) -> int:
    """MAX_RELEASE_TIME: no refill is moved past this (5 maximal periods below the top
    of the 64-bit clock)."""
    return WORD_MASK - 5 * us_to_ticks(abi, max_period_us(abi))
