"""Read-only views of a running kernel: the trace, the renderer of objects and caps, and the
invariant checker. They sit above the whole kernel and change nothing in it.
"""
