"""Which decoder handles an invocation of which cap type: one explicit table.

Each object module provides ``decode_<object>_invocation(kernel, slot, info, window)``
returning a performer (a zero-argument callable that applies the effects and returns
the reply words) or raising a ``SyscallError`` (STYLE.md Synthesis 1-2). Register it
here, never through ``getattr`` on names.
"""

from __future__ import annotations

from ..caps import Cap
from ..invocation import Decoder

__all__ = ["DECODERS"]

DECODERS: dict[type[Cap], Decoder] = {}
