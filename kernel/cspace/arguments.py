"""The arguments of an invocation (its message words and its extra caps) and its reply.

seL4's handleInvocation gathers both before decoding (abi/invocations.md, "Marshalling
rules"): MR0-MR3 come from the syscall window (a2-a5 / x2-x5), MR4 on from ``msg[]`` of
the caller's IPC buffer; extra caps are the CPtrs in ``caps_or_badges[0..]`` of that
buffer, each looked up with a full 64-bit implicit lookup in the caller's CSpace.

A caller without a usable IPC buffer has its length cut to the four register MRs and no
extra caps. An extra cap that cannot be looked up is a cap fault on that CPtr (send
phase), raised by :func:`kernel.entry.invocation.invoke` before any decoder runs. Both are
read once, into an :class:`InvocationArgs` every decoder gets.

The reply of an invocation is written by one rule (:func:`reply_to_current`, called by
the invocation path only).
"""

from __future__ import annotations

from typing import Final

from kernel.abi.constants import FAST_MESSAGE_REGISTERS, IPC_BUFFER, MSG_MAX_LENGTH, WORD_BYTES
from kernel.cspace.ipc_buffer import WORDS, read_ipc_buffer, read_ipc_words, write_ipc_words
from kernel.cspace.lookup import lookup_slot
from kernel.model.errors import LookupFailure
from kernel.model.message import MessageInfo, message_word
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.model.tcb import TCB
from kernel.records import dataclass

__all__ = [
    "InvocationArgs",
    "lookup_cptrs",
    "lookup_extra_caps",
    "read_message",
    "reply_to_current",
]


@dataclass(frozen=True, slots=True)
class InvocationArgs:
    """Everything a decoder reads of its caller besides the invoked slot, read once at
    kernel entry (:func:`kernel.entry.invocation.invoke`), as seL4's handleInvocation gathers the
    message and looks the extra caps up before any decoder runs.

    ``words`` are MR0 .. MR(length-1) as :func:`read_message` gives them (the tag's
    length clamped, cut to the register MRs without an IPC buffer); ``extra`` are the
    slots of the extra caps, all looked up successfully.
    """
    info: MessageInfo
    words: tuple[int, ...]
    extra: tuple[Slot, ...]

    def __init__(self, info: MessageInfo, words: tuple[int, ...], extra: tuple[Slot, ...]) -> None:
        # Written out: see kernel.records on hot records (mypyc/mypyc#817).
        object.__setattr__(self, "info", info)
        object.__setattr__(self, "words", words)
        object.__setattr__(self, "extra", extra)

    @property
    def label(self) -> int:
        return self.info.label

_MSG_WORD: Final = IPC_BUFFER.offset("msg") // WORD_BYTES
"""Word index of msg[0] in the IPC buffer (1: after the tag)."""
_CAPS_WORD: Final = IPC_BUFFER.offset("caps_or_badges") // WORD_BYTES
"""Word index of caps_or_badges[0] in the IPC buffer (122)."""
_WINDOW_MR0: Final = 2
"""MR0 is the third register of the syscall window (a2 / x2)."""


def read_message(kernel: KernelState, tcb: TCB, info: MessageInfo,
                 window: list[int]) -> tuple[list[int], list[int]]:
    """MR0 .. MR(length-1) of ``tcb``'s message, as the kernel sees them, and the CPtrs
    of its extra caps, read from the IPC buffer at once (one read of guest memory where
    both lie there: reads cost far more than the bytes between the two).

    ``length`` is the tag's length clamped to seL4_MsgMaxLength; without an IPC buffer
    the kernel may read, the words are cut to the four register MRs and there are no
    extra caps.
    """
    length = info.clamped_length
    extra_caps = info.extra_caps
    in_buffer = length > FAST_MESSAGE_REGISTERS
    words = window[_WINDOW_MR0 : _WINDOW_MR0 + (FAST_MESSAGE_REGISTERS if in_buffer else length)]
    if not in_buffer and not extra_caps:
        return words, []
    first = _MSG_WORD + FAST_MESSAGE_REGISTERS if in_buffer else _CAPS_WORD
    end = _CAPS_WORD + extra_caps if extra_caps else _MSG_WORD + length
    raw = read_ipc_buffer(kernel, tcb, WORD_BYTES * first, WORD_BYTES * (end - first))
    if raw is None:
        return words, []
    if in_buffer:
        words += WORDS[length - FAST_MESSAGE_REGISTERS].unpack_from(raw)
    if not extra_caps:
        return words, []
    return words, list(WORDS[extra_caps].unpack_from(raw, WORD_BYTES * (_CAPS_WORD - first)))


def lookup_extra_caps(
    kernel: KernelState, tcb: TCB, info: MessageInfo
) -> list[Slot] | tuple[int, LookupFailure]:
    """The slots of the message's extra caps, or ``(cptr, failure)`` for the first CPtr
    whose lookup failed (seL4's lookupExtraCaps). No IPC buffer: no extra caps."""
    if info.extra_caps == 0:
        return []
    cptrs = read_ipc_words(kernel, tcb, _CAPS_WORD, info.extra_caps)
    if cptrs is None:  # no IPC buffer the kernel may read
        return []
    return lookup_cptrs(kernel, tcb, cptrs)


def lookup_cptrs(
    kernel: KernelState, tcb: TCB, cptrs: list[int]
) -> list[Slot] | tuple[int, LookupFailure]:
    """The slots of extra-cap ``cptrs`` in ``tcb``'s CSpace, or ``(cptr, failure)`` for
    the first whose lookup failed (:func:`lookup_extra_caps` after its read)."""
    slots: list[Slot] = []
    for cptr in cptrs:
        result = lookup_slot(kernel, tcb, cptr)
        if not isinstance(result, Slot):
            return cptr, result
        slots.append(result)
    return slots


def reply_to_current(kernel: KernelState, tcb: TCB, label: int, words: list[int]) -> None:
    """Write a kernel reply (badge 0) into the current thread ``tcb``'s registers.

    MR0-3 go to registers, the rest to the IPC buffer; without an IPC buffer the length
    is cut to the register MRs, as seL4 does.
    """
    if not words:  # what most invocations answer
        kernel.machine.write_syscall_window([0, message_word(label, 0, 0, 0)])
        return
    words = words[:MSG_MAX_LENGTH]
    length = len(words)
    if length > FAST_MESSAGE_REGISTERS and not write_ipc_words(
        kernel, tcb, 1 + FAST_MESSAGE_REGISTERS, words[FAST_MESSAGE_REGISTERS:]
    ):
        length = FAST_MESSAGE_REGISTERS
    kernel.machine.write_syscall_window(
        [0, message_word(label, 0, 0, length), *words[:FAST_MESSAGE_REGISTERS]])
