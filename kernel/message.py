"""seL4_MessageInfo and the message registers of the current thread."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .abi.constants import FAST_MESSAGE_REGISTERS, MESSAGE_INFO, MSG_MAX_LENGTH
from .ipc_buffer import write_ipc_words

if TYPE_CHECKING:
    from .kernel import Kernel
    from .objects.tcb import TCB

__all__ = ["MessageInfo", "reply_to_current"]

_LENGTH = MESSAGE_INFO["length"]
_EXTRA = MESSAGE_INFO["extraCaps"]
_UNWRAPPED = MESSAGE_INFO["capsUnwrapped"]
_LABEL = MESSAGE_INFO["label"]
# The fields as plain shifts and masks: this is on every IPC path.
_LABEL_SHIFT, _LABEL_MASK = _LABEL.lsb, _LABEL.mask
_UNWRAPPED_SHIFT, _UNWRAPPED_MASK = _UNWRAPPED.lsb, _UNWRAPPED.mask
_EXTRA_SHIFT, _EXTRA_MASK = _EXTRA.lsb, _EXTRA.mask
_LENGTH_MASK = _LENGTH.mask
assert _LENGTH.lsb == 0


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """A decoded seL4_MessageInfo. Built from any word: fields are masked, not checked."""

    label: int
    caps_unwrapped: int
    extra_caps: int
    length: int

    @classmethod
    def from_word(cls, word: int) -> MessageInfo:
        return cls((word >> _LABEL_SHIFT) & _LABEL_MASK,
                   (word >> _UNWRAPPED_SHIFT) & _UNWRAPPED_MASK,
                   (word >> _EXTRA_SHIFT) & _EXTRA_MASK,
                   word & _LENGTH_MASK)

    def to_word(self) -> int:
        return ((self.label & _LABEL_MASK) << _LABEL_SHIFT
                | (self.caps_unwrapped & _UNWRAPPED_MASK) << _UNWRAPPED_SHIFT
                | (self.extra_caps & _EXTRA_MASK) << _EXTRA_SHIFT
                | (self.length & _LENGTH_MASK))

    @property
    def clamped_length(self) -> int:
        """The length the kernel uses: larger values are clamped to seL4_MsgMaxLength."""
        return min(self.length, MSG_MAX_LENGTH)


def reply_to_current(kernel: Kernel, tcb: TCB, label: int, words: list[int]) -> None:
    """Write a kernel reply (badge 0) into the current thread ``tcb``'s registers.

    MR0-3 go to registers, the rest to the IPC buffer; without an IPC buffer the length
    is cut to the register MRs, as seL4 does.
    """
    words = words[:MSG_MAX_LENGTH]
    length = len(words)
    if length > FAST_MESSAGE_REGISTERS and not write_ipc_words(
        kernel, tcb, 1 + FAST_MESSAGE_REGISTERS, words[FAST_MESSAGE_REGISTERS:]
    ):
        length = FAST_MESSAGE_REGISTERS
    info = MessageInfo(label, 0, 0, length).to_word()
    regs = words[:FAST_MESSAGE_REGISTERS]
    kernel.machine.write_syscall_window([0, info, *regs])
