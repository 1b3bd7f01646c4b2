"""seL4_MessageInfo: the tag word of every message (label, caps unwrapped, extra caps, length)."""

from __future__ import annotations

from typing import Final

from kernel.abi.constants import MESSAGE_INFO, MSG_MAX_LENGTH
from kernel.records import dataclass

__all__ = ["MessageInfo", "message_word"]

_LENGTH: Final = MESSAGE_INFO["length"]
_EXTRA: Final = MESSAGE_INFO["extraCaps"]
_UNWRAPPED: Final = MESSAGE_INFO["capsUnwrapped"]
_LABEL: Final = MESSAGE_INFO["label"]
# The fields as plain shifts and masks: this is on every IPC path.
_LABEL_SHIFT: Final = _LABEL.lsb
_LABEL_MASK: Final = _LABEL.mask
_UNWRAPPED_SHIFT: Final = _UNWRAPPED.lsb
_UNWRAPPED_MASK: Final = _UNWRAPPED.mask
_EXTRA_SHIFT: Final = _EXTRA.lsb
_EXTRA_MASK: Final = _EXTRA.mask
_LENGTH_MASK: Final = _LENGTH.mask
assert _LENGTH.lsb == 0

_DECODED: Final[dict[int, MessageInfo]] = {}
"""Tag words decoded so far (:meth:`MessageInfo.from_word`): a guest uses a handful of
distinct tags, and building the frozen record costs several times a dict lookup."""
_DECODED_MAX: Final = 1024
"""Emptied when it holds this many: a guest cannot make it grow without bound."""


def message_word(label: int, caps_unwrapped: int, extra_caps: int, length: int) -> int:
    """``MessageInfo(label, caps_unwrapped, extra_caps, length).to_word()``, without
    building the record (every reply the kernel writes makes one)."""
    return ((label & _LABEL_MASK) << _LABEL_SHIFT
            | (caps_unwrapped & _UNWRAPPED_MASK) << _UNWRAPPED_SHIFT
            | (extra_caps & _EXTRA_MASK) << _EXTRA_SHIFT
            | (length & _LENGTH_MASK))


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """A decoded seL4_MessageInfo. Built from any word: fields are masked, not checked."""

    label: int
    caps_unwrapped: int
    extra_caps: int
    length: int

    @staticmethod
    def from_word(word: int) -> MessageInfo:
        """The fields of ``word``; equal words give the same (immutable) record."""
        info = _DECODED.get(word)
        if info is None:
            if len(_DECODED) >= _DECODED_MAX:
                _DECODED.clear()
            info = _DECODED[word] = MessageInfo(
                (word >> _LABEL_SHIFT) & _LABEL_MASK,
                (word >> _UNWRAPPED_SHIFT) & _UNWRAPPED_MASK,
                (word >> _EXTRA_SHIFT) & _EXTRA_MASK,
                word & _LENGTH_MASK)
        return info

    def to_word(self) -> int:
        return message_word(self.label, self.caps_unwrapped, self.extra_caps, self.length)

    @property
    def clamped_length(self) -> int:
        """The length the kernel uses: larger values are clamped to seL4_MsgMaxLength."""
        length = self.length
        return length if length <= MSG_MAX_LENGTH else MSG_MAX_LENGTH
