"""One component's capability space, captured and restored slot for slot (issue #19).

- :mod:`.model`: the plain-data :class:`Component` (objects by identity, caps by slot,
  derivation parents, frame bytes, thread state), capsule's own JSON format and
  :class:`ComponentError`.
- :mod:`.capture`: :func:`capture` a thread's component from the kernel state.
- :mod:`.restore`: :func:`restore` it into fresh objects from a caller's untyped, with
  external objects mapped to existing ones through an identity map.
- :mod:`.capdl`: :func:`to_capdl`, the component as capDL text.

This package sits with the views at the top of the kernel's layers: it reads every
layer below and changes kernel state only through their functions.
"""

from __future__ import annotations

from .capdl import to_capdl
from .capture import capture
from .model import Component, ComponentError, from_json, to_json
from .restore import Restored, restore

__all__ = ["Component", "ComponentError", "Restored", "capture", "from_json", "restore",
           "to_capdl", "to_json"]
