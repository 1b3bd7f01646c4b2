"""The MCS kernel's forms of four TCB methods: Configure, SetSpace, SetSchedParams and
SetTimeoutEndpoint (seL4's decodeTCBConfigure, decodeSetSpace, decodeSetSchedParams and
decodeSetTimeoutEndpoint with CONFIG_KERNEL_MCS). The other TCB methods are the same in
both kernels (:mod:`kernel.objects.tcb`).

In the MCS kernel a thread's fault handler is a cap the TCB holds, given with SetSpace or
SetSchedParams from the caller's CSpace, not a CPtr looked up at fault time; its timeout
handler likewise (SetTimeoutEndpoint). A usable handler cap is an endpoint cap with Send
and Grant or GrantReply, or the null cap (no handler).

Decode order (``length`` as for every TCB method):

- Configure: length >= 3 and extra caps 0-2 else TruncatedMessage; MR0 CSpace data,
  MR1 VSpace data, MR2 the buffer address; then the non-MCS Configure's checks (buffer,
  CSpace, VSpace). No fault endpoint.
- SetSpace: length >= 2 and extra caps 0-2 else TruncatedMessage; the CSpace (extra 1,
  MR0) and VSpace (extra 2, MR1) checks; then the fault handler (extra 0) not usable ->
  InvalidCapability(1).
- SetSchedParams: length >= 2 and extra caps 0-2 else TruncatedMessage; the authority
  (extra 0) not a TCB -> InvalidCapability(1); MCP (MR0) then priority (MR1) above the
  authority's MCP -> RangeError(0, mcp); the scheduling context (extra 1): a context
  other than the thread's when the thread has one, or one bound elsewhere ->
  IllegalOperation, one not released while the thread is blocked -> IllegalOperation;
  the null cap (no context) for the caller itself -> IllegalOperation; any other cap
  -> InvalidCapability(2); the fault handler (extra 2) not usable ->
  InvalidCapability(3).
- SetTimeoutEndpoint: extra cap 0 else TruncatedMessage; not usable ->
  InvalidCapability(1).

Performing installs each handler cap as seL4's installTCBCap does: the TCB's slot is
emptied, then gets the cap as a CDT child of its source slot if the source still holds
that object and the invoked slot still names the TCB.
"""

from __future__ import annotations

from typing import Final

from kernel.abi.labels import label_table
from kernel.core.sched_contexts import bind_tcb, is_released, unbind_tcb
from kernel.core.threads import set_priority
from kernel.cspace.arguments import InvocationArgs
from kernel.cspace.cdt import insert
from kernel.cspace.derive import same_object_as
from kernel.model.caps import Cap, EndpointCap, NullCap, SchedContextCap, ThreadCap
from kernel.model.errors import IllegalOperation, InvalidCapability, TruncatedMessage
from kernel.model.sched_context import SchedContext
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.model.tcb import FAULT_HANDLER, TCB, TIMEOUT_HANDLER
from kernel.objects.deletion import delete
from kernel.objects.sched_context import is_blocked
from kernel.objects.tcb import (
    ThreadControl,
    _authority,
    _check_prio,
    _decode_buffer,
    _decode_space,
    _tcb_of,
    perform_thread_control,
)
from kernel.records import dataclass

__all__ = [
    "MCS_TCB_LABELS",
    "TCBSetSchedParamsMCS",
    "TCBSetSpaceMCS",
    "TCBSetTimeoutEndpoint",
    "decode_tcb_mcs_invocation",
    "is_mcs_tcb_label",
    "perform_set_sched_params_mcs",
    "perform_set_space_mcs",
    "perform_set_timeout_endpoint",
]

MCS_TCB_LABELS: Final = ("TCBConfigure", "TCBSetSpace", "TCBSetSchedParams", "TCBSetTimeoutEndpoint")
"""The TCB methods whose MCS form this module decodes."""

Handler = tuple[Cap, Slot]
"""A handler cap to install and the slot it comes from."""


@dataclass(frozen=True, slots=True, eq=False)
class TCBSetSpaceMCS:
    """MCS SetSpace: the fault handler, then the CSpace and VSpace of ``space``."""

    fault_handler: Handler
    space: ThreadControl


@dataclass(frozen=True, slots=True, eq=False)
class TCBSetSchedParamsMCS:
    """MCS SetSchedParams: the fault handler, MCP, priority, and the scheduling context
    (``sc``, None for none) when ``update_sc``."""

    target: TCB
    slot: Slot
    fault_handler: Handler
    mcp: int
    priority: int
    sc: SchedContext | None
    update_sc: bool


@dataclass(frozen=True, slots=True, eq=False)
class TCBSetTimeoutEndpoint:
    target: TCB
    slot: Slot
    timeout_handler: Handler


def is_mcs_tcb_label(kernel: KernelState, label: int) -> bool:
    """Whether ``label`` names a TCB method whose MCS form this module decodes (only
    in an MCS kernel)."""
    if not kernel.config.mcs:
        return False
    labels = label_table(kernel.arch, True)
    return any(labels[name] == label for name in MCS_TCB_LABELS)


def _valid_handler(cap: Cap) -> bool:
    """seL4's validFaultHandler."""
    if isinstance(cap, NullCap):
        return True
    return isinstance(cap, EndpointCap) and cap.rights.write and (
        cap.rights.grant or cap.rights.grant_reply)


def decode_tcb_mcs_invocation(kernel: KernelState, slot: Slot,
                              invocation: InvocationArgs) -> object:
    """Decode an MCS Configure / SetSpace / SetSchedParams / SetTimeoutEndpoint of the
    TCB cap in ``slot`` (module docstring); changes nothing."""
    caller = kernel.current
    assert caller is not None
    target = _tcb_of(kernel, slot.cap)
    labels = label_table(kernel.arch, True)
    label, args, extra = invocation.label, invocation.words, invocation.extra
    if label == labels["TCBConfigure"]:
        if len(args) < 3 or len(extra) < 3:
            raise TruncatedMessage()
        buffer = _decode_buffer(kernel, args[2], extra[2])
        space = _decode_space(kernel, target.fault_ep, args[0], args[1], extra[0], extra[1])
        return ThreadControl(target, slot, space, buffer)
    if label == labels["TCBSetSpace"]:
        if len(args) < 2 or len(extra) < 3:
            raise TruncatedMessage()
        space = _decode_space(kernel, target.fault_ep, args[0], args[1], extra[1], extra[2])
        if not _valid_handler(extra[0].cap):
            raise InvalidCapability(1)
        return TCBSetSpaceMCS((extra[0].cap, extra[0]), ThreadControl(target, slot, space, None))
    if label == labels["TCBSetSchedParams"]:
        if len(args) < 2 or len(extra) < 3:
            raise TruncatedMessage()
        authority = _authority(extra)
        _check_prio(kernel, args[0], authority)
        _check_prio(kernel, args[1], authority)
        sc_cap, handler = extra[1].cap, extra[2].cap
        sc: SchedContext | None = None
        if isinstance(sc_cap, SchedContextCap):
            sc = kernel.object_at(sc_cap.paddr, SchedContext)
            if target.sched_context is not sc and (
                    target.sched_context is not None or sc.tcb is not None):
                raise IllegalOperation()
            if is_blocked(target) and not is_released(kernel, sc):
                raise IllegalOperation()
        elif isinstance(sc_cap, NullCap):
            if target is caller:
                raise IllegalOperation()
        else:
            raise InvalidCapability(2)
        if not _valid_handler(handler):
            raise InvalidCapability(3)
        return TCBSetSchedParamsMCS(target, slot, (handler, extra[2]), args[0], args[1], sc,
                                    target.sched_context is not sc)
    if label == labels["TCBSetTimeoutEndpoint"]:
        if not extra:
            raise TruncatedMessage()
        if not _valid_handler(extra[0].cap):
            raise InvalidCapability(1)
        return TCBSetTimeoutEndpoint(target, slot, (extra[0].cap, extra[0]))
    raise IllegalOperation()  # not reached: the dispatcher routes only these labels


def _install(kernel: KernelState, target: TCB, invoked: Slot, index: int,
             handler: Handler) -> None:
    """seL4's installTCBCap (module docstring)."""
    cap, source = handler
    slot = target.slots[index]
    delete(kernel, slot)
    bits = kernel.tcb_bits
    if (not isinstance(cap, NullCap) and same_object_as(cap, source.cap, bits)
            and same_object_as(ThreadCap(target.paddr), invoked.cap, bits)):
        insert(cap, source, slot)


def perform_set_space_mcs(kernel: KernelState, inv: TCBSetSpaceMCS) -> list[int]:
    """seL4's invokeTCB_ThreadControlCaps for SetSpace: fault handler, then spaces."""
    _install(kernel, inv.space.target, inv.space.slot, FAULT_HANDLER, inv.fault_handler)
    return perform_thread_control(kernel, inv.space)


def perform_set_sched_params_mcs(kernel: KernelState, inv: TCBSetSchedParamsMCS) -> list[int]:
    """seL4's invokeTCB_ThreadControlSched: fault handler, MCP, priority, then the
    scheduling context bound or unbound."""
    target = inv.target
    _install(kernel, target, inv.slot, FAULT_HANDLER, inv.fault_handler)
    target.mcp = inv.mcp
    set_priority(kernel, target, inv.priority)
    if inv.update_sc:
        if inv.sc is not None:
            bind_tcb(kernel, inv.sc, target)
        elif target.sched_context is not None:
            unbind_tcb(kernel, target.sched_context)
    return []


def perform_set_timeout_endpoint(kernel: KernelState, inv: TCBSetTimeoutEndpoint) -> list[int]:
    _install(kernel, inv.target, inv.slot, TIMEOUT_HANDLER, inv.timeout_handler)
    return []
