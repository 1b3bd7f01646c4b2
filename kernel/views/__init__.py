"""Read-only views of a running kernel: the trace, the renderer of objects and caps (with
its recursion-free JSON forms), and the invariant checker. They sit above the whole kernel
and change nothing in it.
"""
