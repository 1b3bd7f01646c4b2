"""Architecture-specific kernel parts: page-table formats and fault encodings."""
