"""seL4_MessageInfo: the tag word of every message (label, caps unwrapped, extra caps, length)."""

from __future__ import annotations

from dataclasses import dataclass

from kernel.abi.constants import MESSAGE_INFO, MSG_MAX_LENGTH

__all__ = ["MessageInfo"]

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
