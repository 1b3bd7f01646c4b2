"""System-call tracing, like strace: one record per syscall, decoded by the kernel's code.

A :class:`Tracer` attaches to a kernel as a syscall observer (entry: decode what was
asked, with the kernel's own cap lookup and MessageInfo decoding, before any effect) and
an exit observer (the result the caller got: reply label and words, or the fault that
stopped it). An invocation of a notification cap is shown as what it does: ``Signal``
(with the cap's badge; a signal carries no message) for Send / NBSend / Call, ``Wait``
for Recv / ReplyRecv, ``Poll`` for NBRecv, and the badge a Wait or Poll got (or
``blocked``) as its result. Records are plain dataclasses; :func:`format_record` renders the text
form, ``dataclasses.asdict`` the JSON form. Tracing costs nothing when not attached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .abi.constants import FAST_MESSAGE_REGISTERS, Error, Syscall
from .abi.labels import label_table
from .caps import EndpointCap, NotificationCap
from .cspace import lookup_cap
from .errors import LOOKUP_FAILURES
from .ipc_buffer import read_ipc_words
from .ipc_transfer import get_window
from .message import MessageInfo
from .objects.tcb import TCB, ThreadState
from .syscalls import signed_word

if TYPE_CHECKING:
    from .kernel import Kernel

__all__ = ["TraceRecord", "Tracer", "format_record"]

_INVOKING = {Syscall.seL4_SysCall, Syscall.seL4_SysSend, Syscall.seL4_SysNBSend}
_RECEIVING = {Syscall.seL4_SysRecv, Syscall.seL4_SysNBRecv, Syscall.seL4_SysReplyRecv}
_NOTIFICATION_OPS: dict[int, str] = {
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
    cptr: int | None = None
    cap: str | None = None
    label: str | None = None
    length: int = 0
    extra_caps: int = 0
    mrs: list[int] = field(default_factory=list)
    result: str = ""
    reply: list[int] = field(default_factory=list)
    badge: int | None = None
    """The badge of the notification cap a Signal goes through."""


class Tracer:
    """Collects a :class:`TraceRecord` per syscall and hands it to ``sink`` when complete."""

    def __init__(self, kernel: Kernel, sink: Callable[[TraceRecord], None]) -> None:
        self.kernel = kernel
        self.sink = sink
        self.seq = 0
        self.pending: TraceRecord | None = None
        self.caller: TCB | None = None
        self.labels = {v: k for k, v in label_table(kernel.arch, kernel.config.mcs).items()}
        kernel.syscall_observers.append(self.on_syscall)
        kernel.exit_observers.append(self.on_exit)

    def on_syscall(self, kernel: Kernel, window: list[int]) -> None:
        caller = kernel.current
        assert caller is not None
        number = signed_word(window[7])
        try:
            name = Syscall(number).name.removeprefix("seL4_Sys")
        except ValueError:
            name = f"unknown({number})"
        self.seq += 1
        record = TraceRecord(self.seq, caller.name, name, number)
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
                if not isinstance(cap, EndpointCap):
                    record.label = self.labels.get(info.label, f"label {info.label}")
                record.mrs = self._message(kernel, caller, window, info.clamped_length)
        elif number == Syscall.seL4_SysDebugPutChar:
            record.mrs = [window[0] & 0xFF]
        self.pending, self.caller = record, caller

    @staticmethod
    def _message(kernel: Kernel, caller: TCB, window: list[int], length: int) -> list[int]:
        words = window[2 : 2 + min(length, FAST_MESSAGE_REGISTERS)]
        if length > FAST_MESSAGE_REGISTERS:
            rest = read_ipc_words(kernel, caller, 1 + FAST_MESSAGE_REGISTERS,
                                  length - FAST_MESSAGE_REGISTERS)
            words += rest or []
        return words

    def on_exit(self, kernel: Kernel) -> None:
        record, caller = self.pending, self.caller
        if record is None or caller is None:
            return
        self.pending = self.caller = None
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
        self.sink(record)


def format_record(record: TraceRecord) -> str:
    """The text form: ``#seq thread Syscall(details) -> result``."""
    parts: list[str] = []
    if record.cptr is not None:
        parts.append(f"cap={record.cptr:#x} {record.cap}")
    if record.label is not None:
        parts.append(record.label)
    if record.badge is not None:
        parts.append(f"badge={record.badge:#x}")
    if record.syscall == "DebugPutChar" and record.mrs:
        parts.append(repr(chr(record.mrs[0])))
    elif record.mrs:
        parts.append("mrs=[" + ", ".join(f"{w:#x}" for w in record.mrs) + "]")
    if record.extra_caps:
        parts.append(f"extra_caps={record.extra_caps}")
    line = f"#{record.seq} {record.thread} {record.syscall}({', '.join(parts)})"
    if record.result:
        line += f" -> {record.result}"
        if record.reply:
            line += " [" + ", ".join(f"{w:#x}" for w in record.reply) + "]"
    return line


def as_json(record: TraceRecord) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(record)
