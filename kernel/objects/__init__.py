"""Kernel objects, one module per object type (STYLE.md Synthesis 2)."""
