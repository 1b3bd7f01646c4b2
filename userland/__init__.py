"""Guest code (C and assembly) and the demo images that ship with the package."""

from __future__ import annotations

from pathlib import Path

__all__ = ["IMAGES_DIR", "demo_image"]

IMAGES_DIR = Path(__file__).resolve().parent / "images"


def demo_image(arch: str, name: str = "hello") -> Path:
    """Path of the shipped image ``<name>-<arch>.img`` (it may not exist)."""
    return IMAGES_DIR / f"{name}-{arch}.img"
