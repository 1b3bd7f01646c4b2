"""RISC-V 64 (Sv39) object rules: frames and page tables (``vspace``)."""
