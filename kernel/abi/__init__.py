"""The seL4 user ABI as one declaration, read by the kernel and by the libsel4 generator.

``constants`` holds what both architectures share, ``arch`` what differs between them,
``labels`` the invocation-label numbering. Import names from those modules directly.
"""
