"""AArch64 object rules: frames, page tables and VSpace roots (``vspace``)."""
