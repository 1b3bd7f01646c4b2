"""Native code for the optional compiled build (see :mod:`emulator.native.build`)."""
