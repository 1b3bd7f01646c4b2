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


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """A decoded seL4_MessageInfo. Built from any word: fields are masked, not checked."""

    label: int
    caps_unwrapped: int
    extra_caps: int
    length: int

    @classmethod
    def from_word(cls, word: int) -> MessageInfo:
        return cls(_LABEL.get(word), _UNWRAPPED.get(word), _EXTRA.get(word), _LENGTH.get(word))

    def to_word(self) -> int:
        word = _LABEL.put(0, self.label)
        word = _UNWRAPPED.put(word, self.caps_unwrapped)
        word = _EXTRA.put(word, self.extra_caps)
        return _LENGTH.put(word, self.length)

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
