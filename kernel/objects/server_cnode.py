"""capsule's server-backed CNodes: binding a CNode to a server (**not seL4**).

Only in images whose configuration sets ``server_backed_cnodes``; elsewhere the labels
are illegal operations of a CNode cap, as on seL4 (``kernel.entry.dispatch`` routes
them here only then). What a binding does to lookups is :mod:`kernel.entry.traversal`.

Decode order:
- ``capsule_CNodeBindServer``: length >= 1 and one extra cap else TruncatedMessage; the
  extra cap an endpoint cap with the Write right else InvalidCapability(1). MR0 is the
  badge of the index requests. Binding a bound CNode replaces its binding.
- ``capsule_CNodeUnbindServer``: nothing; an unbound CNode stays unbound.

Any CNode cap to the node may bind it, as any of them may Copy into its slots (seL4's
CNode invocations check no rights). Neither invocation fails once decoded.
"""

from __future__ import annotations

from kernel.abi.extensions import TraversalLabel
from kernel.cspace.arguments import InvocationArgs
from kernel.model.caps import CNodeCap, EndpointCap
from kernel.model.cnode import CNode, ServerBinding
from kernel.model.errors import IllegalOperation, InvalidCapability, TruncatedMessage
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.records import dataclass

__all__ = [
    "CNodeBindServer",
    "decode_server_cnode_invocation",
    "is_traversal_label",
    "perform_bind_server",
]


@dataclass(frozen=True, slots=True, eq=False)
class CNodeBindServer:
    """Set the binding of the CNode at ``node`` (None: unbind)."""

    node: int
    binding: ServerBinding | None


def is_traversal_label(label: int) -> bool:
    """Whether ``label`` is one of the CNode labels of this extension."""
    return label in (TraversalLabel.capsule_CNodeBindServer,
                     TraversalLabel.capsule_CNodeUnbindServer)


def decode_server_cnode_invocation(kernel: KernelState, slot: Slot,
                                   args: InvocationArgs) -> CNodeBindServer:
    """Validate BindServer / UnbindServer on the CNode cap in ``slot`` (order in the
    module docstring). Raises SyscallError; changes nothing."""
    cap = slot.cap
    assert isinstance(cap, CNodeCap)
    if args.info.label == TraversalLabel.capsule_CNodeUnbindServer:
        return CNodeBindServer(cap.paddr, None)
    if args.info.label != TraversalLabel.capsule_CNodeBindServer:
        raise IllegalOperation()
    if not args.words or not args.extra:
        raise TruncatedMessage()
    endpoint = args.extra[0].cap
    if not isinstance(endpoint, EndpointCap) or not endpoint.rights.write:
        raise InvalidCapability(1)
    return CNodeBindServer(cap.paddr, ServerBinding(endpoint.paddr, args.words[0]))


def perform_bind_server(kernel: KernelState, inv: CNodeBindServer) -> list[int]:
    """Bind (or unbind) the CNode; cannot fail, no reply words."""
    kernel.object_at(inv.node, CNode).server = inv.binding
    return []
