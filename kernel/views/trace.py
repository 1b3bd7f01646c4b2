"""System-call tracing, like strace: one record per syscall, decoded by the kernel's code.

A :class:`Tracer` attaches to a kernel as a syscall observer (entry: decode what was
asked, with the kernel's own cap lookup and MessageInfo decoding, before any effect) and
an exit observer (the result the caller got: reply label and words, or the fault that
stopped it). An invocation of a notification cap is shown as what it does: ``Signal``
(with the cap's badge; a signal carries no message) for Send / NBSend / Call, ``Wait``
for Recv / ReplyRecv, ``Poll`` for NBRecv, and the badge a Wait or Poll got (or
``blocked``) as its result. Records are plain dataclasses; :func:`format_record` renders the text
form, ``dataclasses.asdict`` the JSON form. Tracing costs nothing when not attached.

Endpoint IPC is traced as the message and where it went: a send shows the cap's badge
(what the receiver gets), the label and the words; its result names the thread that
received it, or says that the sender blocked or (NBSend) that the message was dropped.
Reply and ReplyRecv show the reply and the thread it went to. A receive that completes
in the same kernel entry shows what arrived (badge, label, words, extra caps and
unwrapped caps); one that blocks says so (the message shows on the sender's line).

Besides the syscalls, a :class:`kernel.views.trace_events.EventTracer` reports the other
kernel events, each as one record, after the record of the entry that caused it: a
blocked call completing (a Recv that got its message, a Call its reply, a Wait its
signal), a fault delivered to its handler or stopping its thread, and the machine
switching to another thread.

Under MCS a syscall record also lists the scheduling contexts that changed threads
during it (lent along a Call, back with a reply, bound, unbound:
:func:`kernel.views.mcs.context_moves`, one look per thread at entry and exit), and a
Send on a reply object's cap is shown as the ``Reply`` it is, to the caller it held.

The records hold what was read (the cap's tag, ``endpoint_cap``; arguments as numbers),
for JSON and the Python API; the text form names caps as the cspace view names them
(:func:`kernel.views.render.cap_type_name`: ``endpoint``, ``untyped``, ``null``) and
rights arguments as it writes rights (``WRGg``, :class:`kernel.model.caps.Rights`): one
formatter each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, field
from typing import Any, Final

from kernel.abi.arch import Arch
from kernel.abi.constants import (
    FAST_MESSAGE_REGISTERS,
    IPC_BUFFER,
    WORD_BYTES,
    CapTag,
    Error,
    Syscall,
)
from kernel.abi.extensions import configured_labels, configured_methods
from kernel.abi.methods import Method
from kernel.core.ipc_transfer import get_window
from kernel.cspace.ipc_buffer import read_ipc_words
from kernel.cspace.lookup import lookup_cap
from kernel.entry.mcs_syscalls import syscall_name_and_kind
from kernel.entry.syscalls import signed_word
from kernel.kernel import Kernel
from kernel.model.caps import EndpointCap, NotificationCap, ReplyCap, ReplyObjectCap, Rights
from kernel.model.endpoint import Endpoint, EndpointState
from kernel.model.errors import LOOKUP_FAILURES
from kernel.model.message import MessageInfo
from kernel.model.reply_object import ReplyObject
from kernel.model.sched_context import SchedContext
from kernel.model.tcb import CALLER, TCB, ThreadState
from kernel.records import dataclass
from kernel.views.invocations import describe_invocation
from kernel.views.mcs import ContextMove, context_holders, context_moves, format_moves
from kernel.views.render import cap_type_name

__all__ = ["TraceRecord", "Tracer", "as_json", "cap_text", "format_record", "named_args",
           "received", "rights_text"]

_CAPS_WORD: Final = IPC_BUFFER.offset("caps_or_badges") // WORD_BYTES
_INVOKING: Final = {Syscall.seL4_SysCall, Syscall.seL4_SysSend, Syscall.seL4_SysNBSend}
_RECEIVING: Final = {Syscall.seL4_SysRecv, Syscall.seL4_SysNBRecv, Syscall.seL4_SysReplyRecv}
_MCS_WITH_REPLY_OBJECT: Final = frozenset({"Recv", "NBRecv", "ReplyRecv", "NBSendRecv"})
"""MCS calls that name a reply object in a6 / x6 (NBSendWait's a6 is its destination)."""
_MCS_REPLY_REGISTER: Final = 6
_NOTIFICATION_OPS: Final[dict[int, str]] = {
    Syscall.seL4_SysCall: "Signal", Syscall.seL4_SysSend: "Signal",
    Syscall.seL4_SysNBSend: "Signal", Syscall.seL4_SysRecv: "Wait",
    Syscall.seL4_SysReplyRecv: "Wait", Syscall.seL4_SysNBRecv: "Poll",
}


@dataclass
class TraceRecord:
    """One syscall. ``result`` is filled at kernel exit."""
    seq: int
    thread: str
    syscall: str
    number: int
    tcb: int = 0
    """The calling thread's TCB address (names need not be unique)."""
    cptr: int | None = None
    cap: str | None = None
    label: str | None = None
    length: int = 0
    extra_caps: int = 0
    mrs: list[int] = field(default_factory=list)
    result: str = ""
    reply: list[int] = field(default_factory=list)
    badge: int | None = None
    """The badge of the invoked cap: a Signal's notification badge, or what the
    receiver of an endpoint send gets."""
    msg_label: int | None = None
    """Endpoint sends, Reply and ReplyRecv: the message's label."""
    args: dict[str, int | list[int]] | None = None
    """Object invocations: the arguments by libsel4's parameter names (capability
    parameters are the CPtrs the caller put in its IPC buffer); None when the label is
    not a method capsule declares."""
    decoded: str | None = None
    """Object invocations the kernel accepted: the record its decoder made (slots and
    objects resolved), as :func:`kernel.views.invocations.describe_invocation` shows it;
    None for refused invocations and for IPC."""
    reply_cptr: int | None = None
    """MCS kernels only (None otherwise, and then absent from the JSON form): the reply
    object cap (a6 / x6) a Recv / NBRecv / NBSendRecv receives with, or a ReplyRecv
    replies through and receives with."""
    sched_contexts: list[ContextMove] | None = None
    """MCS kernels only (None without MCS, and then absent from the JSON form): the
    scheduling contexts that changed threads during the syscall, lent along a Call,
    back with a reply, bound or unbound (:func:`kernel.views.mcs.context_moves`)."""


class Tracer:
    """Collects a :class:`TraceRecord` per syscall and hands it to ``sink`` when complete.

    It attaches itself to ``kernel``'s observers; with ``attach=False`` the owner calls
    :meth:`on_syscall` and :meth:`on_exit` itself (to order them among its own)."""

    def __init__(self, kernel: Kernel, sink: Callable[[TraceRecord], None],
                 attach: bool = True) -> None:
        self.kernel = kernel
        self.sink = sink
        self.seq = 0
        self.pending: TraceRecord | None = None
        self.caller: TCB | None = None
        self.last_caller: TCB | None = None
        """The thread whose syscall :meth:`complete` finished last (None after an entry
        that was not a syscall)."""
        self.receiver: TCB | None = None
        """Endpoint sends: the thread waiting to receive when the send began."""
        self.replied_to: TCB | None = None
        """Reply / ReplyRecv: the thread the caller slot's reply cap names."""
        self.sender_waiting = False
        """Receives on an endpoint: a sender was queued when the receive began."""
        self.decoded_before: object | None = None
        self.holders: dict[int, tuple[SchedContext, TCB]] = {}
        """MCS: which thread ran on which context when the syscall began
        (:func:`kernel.views.mcs.context_holders`)."""
        """``kernel.last_invocation`` when the syscall began: a different record at exit
        is the one this syscall's invocation decoded to."""
        config = kernel.config
        self.labels = {v: k for k, v in configured_labels(
            kernel.arch, config.mcs, config.checkpoint_object, config.cap_pages,
            traversal=config.server_backed_cnodes).items()}
        self.methods = {m.label: m for m in configured_methods(
            kernel.arch, config.mcs, config.checkpoint_object, config.cap_pages,
            traversal=config.server_backed_cnodes)}
        """Label name -> the libsel4 method, whose parameter names the trace shows."""
        if attach:
            kernel.syscall_observers.append(self.on_syscall)
            kernel.exit_observers.append(self.on_exit)

    def on_syscall(self, kernel: Kernel, window: list[int]) -> None:
        caller = kernel.current
        assert caller is not None
        # Under MCS the numbers differ: the record keeps the MCS name and the non-MCS
        # number of what the call does, which the rest of the trace reads.
        name, number = syscall_name_and_kind(kernel.config.mcs, signed_word(window[7]))
        self.seq = kernel.syscall_entries  # since boot, whenever the tracer was attached
        record = TraceRecord(self.seq, caller.name, name, number, caller.paddr)
        self.receiver = self.replied_to = None
        self.sender_waiting = False
        self.decoded_before = kernel.last_invocation
        if kernel.config.mcs:
            self.holders = context_holders(kernel)
        if number in (Syscall.seL4_SysReply, Syscall.seL4_SysReplyRecv):
            self.replied_to = self._reply_target(kernel, caller)
            info = MessageInfo.from_word(window[1])
            record.msg_label, record.length = info.label, info.clamped_length
            record.extra_caps = info.extra_caps
            record.mrs = self._message(kernel, caller, window, info.clamped_length)
        if kernel.config.mcs and name in _MCS_WITH_REPLY_OBJECT:
            self._mcs_reply_object(kernel, caller, window, name, record)
        if number in _INVOKING or number in _RECEIVING:
            record.cptr = window[0]
            cap = lookup_cap(kernel, caller, window[0])
            record.cap = type(cap).__name__ if isinstance(cap, LOOKUP_FAILURES) else cap.tag.name
            if isinstance(cap, NotificationCap):
                record.label = _NOTIFICATION_OPS[number]
                if number in _INVOKING:
                    record.badge = cap.badge
                    info = MessageInfo.from_word(window[1])
                    record.extra_caps = info.extra_caps
            elif number in _INVOKING:
                info = MessageInfo.from_word(window[1])
                record.length, record.extra_caps = info.clamped_length, info.extra_caps
                if isinstance(cap, EndpointCap):
                    record.badge, record.msg_label = cap.badge, info.label
                    endpoint = kernel.objects.get(cap.paddr)
                    if isinstance(endpoint, Endpoint) and endpoint.state is EndpointState.RECV:
                        self.receiver = endpoint.queue[0]
                elif isinstance(cap, ReplyObjectCap):
                    # MCS: a send on a reply object is the reply to the caller it holds.
                    record.label, record.msg_label = "Reply", info.label
                    self.replied_to = self._reply_object_caller(kernel, cap)
                else:
                    record.label = self.labels.get(info.label, f"label {info.label}")
                record.mrs = self._message(kernel, caller, window, info.clamped_length)
                if not isinstance(cap, EndpointCap) and record.label in self.methods:
                    extra = read_ipc_words(kernel, caller, _CAPS_WORD, info.extra_caps)
                    record.args = named_args(self.methods[record.label], record.mrs,
                                             extra or [])
            elif isinstance(cap, EndpointCap):
                endpoint = kernel.objects.get(cap.paddr)
                self.sender_waiting = (isinstance(endpoint, Endpoint)
                                       and endpoint.state is EndpointState.SEND)
        elif number == Syscall.seL4_SysDebugPutChar:
            record.mrs = [window[0] & 0xFF]
        self.pending, self.caller = record, caller

    def _mcs_reply_object(self, kernel: Kernel, caller: TCB, window: list[int], name: str,
                          record: TraceRecord) -> None:
        """MCS: the reply object a receive names; a ReplyRecv also replies through it
        (its message and the caller it answers) and receives on the cap in a0 / x0."""
        record.reply_cptr = window[_MCS_REPLY_REGISTER]
        if name != "ReplyRecv":
            return
        cap = lookup_cap(kernel, caller, window[_MCS_REPLY_REGISTER])
        if isinstance(cap, ReplyObjectCap):
            self.replied_to = self._reply_object_caller(kernel, cap)
        info = MessageInfo.from_word(window[1])
        record.msg_label, record.length = info.label, info.clamped_length
        record.extra_caps = info.extra_caps
        record.mrs = self._message(kernel, caller, window, info.clamped_length)
        record.cptr = window[0]
        received = lookup_cap(kernel, caller, window[0])
        record.cap = (type(received).__name__ if isinstance(received, LOOKUP_FAILURES)
                      else received.tag.name)

    @staticmethod
    def _reply_target(kernel: Kernel, caller: TCB) -> TCB | None:
        cap = caller.slots[CALLER].cap
        if not isinstance(cap, ReplyCap) or cap.is_master:
            return None
        target = kernel.objects.get(cap.tcb_paddr)
        return target if isinstance(target, TCB) else None

    @staticmethod
    def _reply_object_caller(kernel: Kernel, cap: ReplyObjectCap) -> TCB | None:
        """The caller waiting on the reply object ``cap`` names (None: nobody waits)."""
        reply = kernel.objects.get(cap.paddr)
        tcb = reply.tcb if isinstance(reply, ReplyObject) else None
        return tcb if tcb is not None and tcb.state is ThreadState.BLOCKED_ON_REPLY else None

    @staticmethod
    def _message(kernel: Kernel, caller: TCB, window: list[int], length: int) -> list[int]:
        words = window[2 : 2 + min(length, FAST_MESSAGE_REGISTERS)]
        if length > FAST_MESSAGE_REGISTERS:
            rest = read_ipc_words(kernel, caller, 1 + FAST_MESSAGE_REGISTERS,
                                  length - FAST_MESSAGE_REGISTERS)
            words += rest or []
        return words

    def on_exit(self, kernel: Kernel) -> None:
        record = self.complete(kernel)
        if record is not None:
            self.sink(record)

    def complete(self, kernel: Kernel) -> TraceRecord | None:
        """At a kernel exit: the record of the syscall this entry handled, its result
        filled in (None after an entry that was not a syscall)."""
        record, caller = self.pending, self.caller
        self.last_caller = caller
        if record is None or caller is None:
            return None
        self.pending = self.caller = None
        if kernel.config.mcs:
            record.sched_contexts = context_moves(self.holders, context_holders(kernel))
        decoded = kernel.last_invocation
        if decoded is not None and decoded is not self.decoded_before:
            record.decoded = describe_invocation(kernel, decoded)
        if caller.stop_reason is not None and not caller.state.runnable:
            record.result = f"stopped: {caller.stop_reason}"
        elif kernel.stop is not None:
            record.result = f"halt({kernel.stop.status})"
        elif record.label in ("Wait", "Poll") and caller.state.runnable:
            record.result = f"badge={get_window(kernel, caller)[0]:#x}"
        elif record.label == "Wait" and caller.state is ThreadState.BLOCKED_ON_NOTIFICATION:
            record.result = "blocked"
        elif record.number == Syscall.seL4_SysCall and record.label is not None:
            window = kernel.machine.read_syscall_window() if kernel.current is caller else None
            if window is not None:
                info = MessageInfo.from_word(window[1])
                record.reply = window[2 : 2 + min(info.length, FAST_MESSAGE_REGISTERS)]
                record.result = Error(info.label).name if info.label < len(Error) else str(info.label)
        else:
            record.result = self._ipc_result(kernel, record, caller)
        return record

    def _ipc_result(self, kernel: Kernel, record: TraceRecord, caller: TCB) -> str:
        """Where an endpoint message went and what the caller got, after the entry."""
        steps: list[str] = []
        if self.replied_to is not None:
            steps.append(f"replied to {self.replied_to.name}")
        elif record.number == Syscall.seL4_SysReply or record.label == "Reply":
            steps.append("nobody to reply to")
        if record.badge is not None and record.cap == "endpoint_cap":  # an endpoint send
            if self.receiver is not None:
                steps.append(f"to {self.receiver.name}")
            elif caller.state is ThreadState.BLOCKED_ON_SEND:
                steps.append("blocked")
            elif record.number == Syscall.seL4_SysNBSend:
                steps.append("dropped")
            if caller.state is ThreadState.BLOCKED_ON_REPLY:
                steps.append("waiting for the reply")
        elif record.number in _RECEIVING and record.cap == "endpoint_cap":
            if caller.state is ThreadState.BLOCKED_ON_RECEIVE:
                steps.append("blocked")
            elif record.number == Syscall.seL4_SysNBRecv and not self.sender_waiting:
                steps.append("nothing (badge 0)")
            elif caller.state.runnable:
                text, record.reply = received(kernel, caller)
                steps.append(text)
        return ", ".join(steps)


def received(kernel: Kernel, tcb: TCB) -> tuple[str, list[int]]:
    """The message now in ``tcb``'s registers (and IPC buffer) after a receive: as text
    (badge, label, length, extra and unwrapped caps), and its words."""
    window = get_window(kernel, tcb)
    info = MessageInfo.from_word(window[1])
    words = Tracer._message(kernel, tcb, window, info.length)
    text = f"badge={window[0]:#x} label={info.label:#x} length={info.length}"
    if info.extra_caps:
        text += f" extra_caps={info.extra_caps}"
    if info.caps_unwrapped:
        text += f" unwrapped={info.caps_unwrapped:#b}"
    return text, words


def format_record(record: TraceRecord) -> str:
    """The text form: ``#seq thread Syscall(details) -> result``; under MCS, then
    ``; sched_context 0x... A -> B (lent)`` for each context that changed threads."""
    parts: list[str] = []
    if record.cptr is not None:
        parts.append(f"cap={record.cptr:#x} {cap_text(record.cap)}")
    if record.reply_cptr is not None:
        parts.append(f"reply={record.reply_cptr:#x}")
    if record.label is not None:
        parts.append(record.label)
    if record.badge is not None:
        parts.append(f"badge={record.badge:#x}")
    if record.msg_label is not None:
        parts.append(f"label={record.msg_label:#x}")
    if record.syscall == "DebugPutChar" and record.mrs:
        parts.append(repr(chr(record.mrs[0])))
    elif record.args is not None:
        rights = _RIGHTS_PARAMS.get(record.label or "", frozenset())
        parts.extend(f"{name}={_arg_text(value, name in rights)}"
                     for name, value in record.args.items())
    elif record.mrs:
        parts.append("mrs=[" + ", ".join(f"{w:#x}" for w in record.mrs) + "]")
    if record.extra_caps and record.args is None:
        parts.append(f"extra_caps={record.extra_caps}")
    line = f"#{record.seq} {record.thread} {record.syscall}({', '.join(parts)})"
    if record.result:
        line += f" -> {record.result}"
        if record.reply:
            line += " [" + ", ".join(f"{w:#x}" for w in record.reply) + "]"
    if record.sched_contexts:
        line += ("; " if record.result else " -> ") + format_moves(record.sched_contexts)
    return line


def _arg_text(value: int | list[int], is_rights: bool) -> str:
    return rights_text(value) if is_rights and isinstance(value, int) else _value(value)


def _value(value: int | list[int]) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(f"{w:#x}" for w in value) + "]"
    return f"{value:#x}"


_RIGHTS_BITS: Final = Rights().to_word()



def _rights_params() -> dict[str, frozenset[str]]:
    """Label -> its seL4_CapRights_t parameters, from every configuration's methods."""
    found: dict[str, set[str]] = {}
    for arch in Arch:
        for mcs in (False, True):
            for method in configured_methods(arch, mcs, checkpoint=True, cap_pages=True,
                                             traversal=True):
                for param in method.params:
                    if param.c_type == "seL4_CapRights_t":
                        found.setdefault(method.label, set()).add(param.name)
    return {label: frozenset(names) for label, names in found.items()}


_RIGHTS_PARAMS: Final = _rights_params()


def cap_text(cap: str | None) -> str:
    """A record's ``cap`` (a cap tag's name, or a lookup failure's) as the text shows it:
    a tag as the cspace view names its type (``endpoint_cap`` -> ``endpoint``)."""
    if cap is None:
        return ""
    tag = CapTag.__members__.get(cap)
    return cap if tag is None else cap_type_name(tag)


def rights_text(word: int) -> str:
    """A seL4_CapRights_t word as the cspace view writes rights (``WRGg``, ``-`` for
    none; :class:`kernel.model.caps.Rights`), with any bits seL4 ignores after a ``+``."""
    text = str(Rights.from_word(word))
    return text if not word & ~_RIGHTS_BITS else f"{text}+{word & ~_RIGHTS_BITS:#x}"


def named_args(method: Method, mrs: list[int], extra: list[int]) -> dict[str, int | list[int]]:
    """``method``'s parameters by name, unpacked from the message words ``mrs`` by the
    marshalling rule (kernel.abi.methods) and from the extra-cap CPtrs ``extra``, in
    signature order. Parameters the message is too short to hold are left out, so a
    truncated invocation shows what it really carried."""
    caps = iter(extra)
    placed = {id(w.param): w for w in method.words}
    out: dict[str, int | list[int]] = {}
    for param in method.params:
        if param.is_cap:
            cptr = next(caps, None)
            if cptr is not None:
                out[param.name] = cptr
            continue
        where = placed[id(param)]
        if param.is_struct:
            words = mrs[where.mr : where.mr + param.words]
            if words:
                out[param.name] = words
        elif where.mr < len(mrs):
            out[param.name] = (mrs[where.mr] >> where.bit) & ((1 << where.bits) - 1)
    return out


def as_json(record: TraceRecord) -> dict[str, Any]:
    """The JSON form of a syscall record: ``kind`` ``"syscall"`` and its fields
    (``sched_contexts`` and ``reply_cptr`` only under MCS)."""
    plain = {"kind": "syscall", **asdict(record)}
    for mcs_only in ("sched_contexts", "reply_cptr"):
        if plain[mcs_only] is None:
            del plain[mcs_only]
    return plain
