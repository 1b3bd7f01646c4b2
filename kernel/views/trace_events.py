"""The kernel events of a trace besides system calls, and the trace's filter.

An :class:`EventTracer` is a :class:`~kernel.views.trace.Tracer` that also reports, after
the record of each kernel entry, what else that entry did:

- :class:`FaultRecord`: the thread that was running faulted (a VM fault, an illegal
  instruction, an unknown syscall, a cap fault of a Call), and the fault went to the
  handler endpoint the thread's fault-endpoint CPtr names (its address and the badge the
  handler receives), or, with no usable handler, stopped the thread.
- :class:`ResumeRecord`: a thread that was blocked completed: the Recv / ReplyRecv / Wait
  that blocked got its message or signal, the Call its reply, the Send was taken; or a
  fault's handler replied (the thread restarts, or stays stopped). It names the syscall
  record that blocked (its ``seq``) and shows what the thread got.
- :class:`SwitchRecord`: the thread on the machine changed.

How: faults come from the kernel's fault observers (``KernelState.fault_observers``),
reported at the exit of their entry, once delivered. The tracer keeps the threads it saw
block (a syscall that ended blocked, a fault that went to a handler) and, at every kernel
exit, looks at those threads' states: one that is no longer blocked has completed, and
its registers hold what it got. The cost is one look per waiting thread per kernel exit,
and only while tracing.

:class:`TraceFilter` chooses records by syscall, invocation label, thread name, cap type
and kind of event (``--trace-filter``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import asdict, field
from typing import Any, Final

from kernel.abi.arch import Arch
from kernel.abi.constants import CapTag, Error, Syscall
from kernel.abi.extensions import configured_labels
from kernel.core.ipc_transfer import get_window
from kernel.cspace.lookup import lookup_cap
from kernel.kernel import Kernel
from kernel.model.caps import EndpointCap
from kernel.model.faults import Fault
from kernel.model.message import MessageInfo
from kernel.model.tcb import TCB, ThreadState
from kernel.records import dataclass
from kernel.views.trace import Tracer, TraceRecord, format_record, received
from kernel.views.trace import as_json as syscall_json

__all__ = [
    "EventTracer", "FaultRecord", "FilterError", "ResumeRecord", "SwitchRecord", "TraceFilter",
    "TraceLine", "format_line", "line_json",
]

_BLOCKED: Final = frozenset({ThreadState.BLOCKED_ON_RECEIVE, ThreadState.BLOCKED_ON_SEND,
                      ThreadState.BLOCKED_ON_REPLY, ThreadState.BLOCKED_ON_NOTIFICATION})


@dataclass
class ResumeRecord:
    """A blocked thread completed. ``seq``, ``syscall``, ``cap`` and ``label`` are those of
    the syscall record that blocked; for a fault, ``seq`` is None and ``fault`` names its
    kind (``VMFault``, ``CapFault``, ``UnknownSyscall``, ``UserException``). ``result`` is
    what the thread got; ``reply`` the message words."""

    seq: int | None
    thread: str
    tcb: int
    syscall: str | None
    cap: str | None
    label: str | None
    result: str
    reply: list[int] = field(default_factory=list)
    fault: str | None = None


@dataclass
class FaultRecord:
    """A fault of ``thread``: ``fault`` describes it; ``handler`` is where it went
    (``endpoint 0x... badge=0x...``), None when there was no usable handler and it
    stopped the thread (``result`` says so)."""

    thread: str
    tcb: int
    fault: str
    handler: str | None
    result: str


@dataclass
class SwitchRecord:
    """The machine switched from thread ``thread`` to ``to`` (None: no thread runs)."""

    thread: str | None
    to: str | None


TraceLine = TraceRecord | ResumeRecord | FaultRecord | SwitchRecord


@dataclass
class _Waiting:
    tcb: TCB
    record: TraceRecord | None
    """The syscall that blocked (None: a fault waits for its handler's reply)."""
    fault: str | None = None


class EventTracer(Tracer):
    """A :class:`Tracer` whose ``sink`` also gets the events of the module docstring."""

    def __init__(self, kernel: Kernel, sink: Callable[[TraceLine], None]) -> None:
        super().__init__(kernel, sink)
        self.line_sink = sink
        self.running: TCB | None = kernel.current
        """The thread on the machine at the last kernel exit: the next entry is its."""
        self.waiting: dict[int, _Waiting] = {}
        """Blocked threads by TCB address, in the order they blocked."""
        self.faulted: list[tuple[TCB, Fault]] = []
        """Faults of the kernel entry in progress, in the order they happened."""
        kernel.fault_observers.append(self._on_fault)

    def _on_fault(self, tcb: TCB, fault: Fault) -> None:
        self.faulted.append((tcb, fault))

    def on_exit(self, kernel: Kernel) -> None:
        record = self.complete(kernel)
        if record is not None:
            self.line_sink(record)
        for tcb, fault in self.faulted:
            self._fault(kernel, tcb, fault)
        self.faulted.clear()
        caller = self.last_caller
        if record is not None and caller is not None:
            if caller.state in _BLOCKED and caller.paddr not in self.waiting:
                self.waiting[caller.paddr] = _Waiting(caller, record)
        self._resumed(kernel)
        if kernel.current is not self.running:
            before = None if self.running is None else self.running.name
            after = None if kernel.current is None else kernel.current.name
            self.line_sink(SwitchRecord(before, after))
            self.running = kernel.current

    def _fault(self, kernel: Kernel, tcb: TCB, fault: Fault) -> None:
        """Report ``fault`` of ``tcb``, delivered in this entry: where it went."""
        if tcb.fault is not fault:  # no usable handler: the thread stopped
            self.line_sink(FaultRecord(tcb.name, tcb.paddr, fault.describe(), None,
                                       "no handler: stopped"))
            return
        cap = lookup_cap(kernel, tcb, tcb.fault_ep)
        handler = (f"endpoint {cap.paddr:#x} badge={cap.badge:#x}"
                   if isinstance(cap, EndpointCap) else None)
        result = "blocked" if tcb.state is ThreadState.BLOCKED_ON_SEND else \
            "waiting for the reply"
        self.line_sink(FaultRecord(tcb.name, tcb.paddr, fault.describe(), handler, result))
        kind = fault.label.name.removeprefix("seL4_Fault_").removeprefix("capsule_Fault_")
        self.waiting[tcb.paddr] = _Waiting(tcb, None, kind)

    def _resumed(self, kernel: Kernel) -> None:
        """Report every waiting thread that is no longer blocked."""
        done = []
        for paddr, waiting in self.waiting.items():
            tcb = waiting.tcb
            if kernel.threads.get(paddr) is not tcb:
                done.append(paddr)  # the TCB was deleted while it waited
            elif tcb.state not in _BLOCKED:
                done.append(paddr)
                self.line_sink(self._resume(kernel, waiting))
        for paddr in done:
            del self.waiting[paddr]

    def _resume(self, kernel: Kernel, waiting: _Waiting) -> ResumeRecord:
        tcb, record = waiting.tcb, waiting.record
        if record is None:
            if tcb.state.runnable:
                result = f"restarts at pc {get_pc(kernel, tcb):#x}"
            else:
                result = f"not restarted ({tcb.state.value})"
            return ResumeRecord(None, tcb.name, tcb.paddr, None, None, None, result,
                                fault=waiting.fault)
        resumed = ResumeRecord(record.seq, tcb.name, tcb.paddr, record.syscall, record.cap,
                               record.label, "")
        if tcb.state is ThreadState.RESTART:
            resumed.result = "interrupted: the call restarts"
        elif not tcb.state.runnable:
            resumed.result = f"stopped ({tcb.state.value})"
        elif record.label == "Wait":
            resumed.result = f"badge={get_window(kernel, tcb)[0]:#x}"
        elif record.number == Syscall.seL4_SysCall:
            window = get_window(kernel, tcb)
            info = MessageInfo.from_word(window[1])
            resumed.reply = Tracer._message(kernel, tcb, window, info.length)
            resumed.result = (f"reply label={info.label:#x} length={info.length}"
                              if record.cap == "endpoint_cap" else _error_name(info.label))
        elif record.number in (Syscall.seL4_SysSend, Syscall.seL4_SysNBSend):
            resumed.result = "delivered"
        else:
            resumed.result, resumed.reply = received(kernel, tcb)
        return resumed


def get_pc(kernel: Kernel, tcb: TCB) -> int:
    if kernel.registers_live(tcb):
        return kernel.machine.save_context()[0]
    return kernel.registers_of(tcb)[0]


def _error_name(label: int) -> str:
    return Error(label).name if label < len(Error) else str(label)


# --- text and JSON -------------------------------------------------------------------------


def format_line(line: TraceLine) -> str:
    """The text form of any trace record: a syscall as :func:`format_record`; events as

    ``#SEQ thread <... Syscall resumed> -> result [words]`` (SEQ: the syscall that blocked),
    ``-- thread <... VMFault fault resumed> -> restarts at pc 0x...``,
    ``-- fault thread: description -> endpoint 0x... badge=0x...`` (or ``-> no handler``),
    ``-- switch thread -> thread``.
    """
    if isinstance(line, TraceRecord):
        return format_record(line)
    if isinstance(line, ResumeRecord):
        what = f"<... {line.syscall if line.fault is None else line.fault + ' fault'} resumed>"
        head = f"#{line.seq}" if line.seq is not None else "--"
        text = f"{head} {line.thread} {what} -> {line.result}"
        if line.reply:
            text += " [" + ", ".join(f"{w:#x}" for w in line.reply) + "]"
        return text
    if isinstance(line, FaultRecord):
        where = line.handler if line.handler is not None else line.result
        tail = f", {line.result}" if line.handler is not None else ""
        return f"-- fault {line.thread}: {line.fault} -> {where}{tail}"
    return f"-- switch {line.thread or '(none)'} -> {line.to or '(none)'}"


_KINDS: Final[dict[type, str]] = {ResumeRecord: "resume", FaultRecord: "fault", SwitchRecord: "switch"}


def line_json(line: TraceLine) -> dict[str, Any]:
    """The JSON form: ``kind`` (``syscall``, ``resume``, ``fault``, ``switch``) first,
    then the record's fields."""
    if isinstance(line, TraceRecord):
        return syscall_json(line)
    return {"kind": _KINDS[type(line)], **asdict(line)}


# --- filtering -----------------------------------------------------------------------------


class FilterError(ValueError):
    """A ``--trace-filter`` that cannot be understood; the message is one line."""


def _names() -> dict[str, frozenset[str]]:
    """What each filter key can name (threads: anything)."""
    labels = {"Signal", "Wait", "Poll", "Reply"}
    for arch in Arch:
        for mcs in (False, True):
            labels |= set(configured_labels(arch, mcs, checkpoint=True, traversal=True))
    return {
        "syscall": frozenset(s.name.removeprefix("seL4_Sys") for s in Syscall),
        "label": frozenset(labels),
        "type": frozenset(tag.name.removesuffix("_cap") for tag in CapTag),
        "event": frozenset({"syscall", "resume", "fault", "switch"}),
    }


FILTER_KEYS: Final = ("syscall", "label", "thread", "type", "event")


@dataclass(frozen=True, slots=True)
class TraceFilter:
    """Which trace records to keep. ``include[key]``: a record is kept only if one of its
    values for ``key`` is in the set; ``exclude[key]``: only if none is. A record without
    a value for a key (a switch has no syscall) fails that key's include and passes its
    exclude. Values: ``syscall`` the syscall (``Call``, ``DebugPutChar``; a resume, the
    one it resumes), ``label`` the invocation label (``UntypedRetype``; ``Signal``,
    ``Wait``, ``Poll`` on notifications), ``thread`` the thread's name (a switch has two),
    ``type`` the invoked cap's type as the cspace view names it (``endpoint``), ``event``
    the kind of record (``syscall``, ``resume``, ``fault``, ``switch``)."""

    include: dict[str, frozenset[str]] = field(default_factory=dict)
    exclude: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, specs: Iterable[str]) -> TraceFilter:
        """From ``KEY=V1,V2`` and ``KEY!=V1,V2`` specs (values of one key in several
        specs add up).

        Raises:
            FilterError: an unknown key, or a value no syscall, label, cap type or event
                kind has (with the closest names).
        """
        include: dict[str, set[str]] = {}
        exclude: dict[str, set[str]] = {}
        names = _names()
        for spec in specs:
            negated = "!=" in spec
            key, sep, values = spec.partition("!=" if negated else "=")
            key = key.strip()
            if not sep or key not in FILTER_KEYS:
                raise FilterError(f"{spec!r}: expected KEY=VALUE[,VALUE...] or KEY!=..., "
                                  f"KEY one of {', '.join(FILTER_KEYS)}")
            chosen = {v.strip() for v in values.split(",") if v.strip()}
            if key == "type":
                chosen = {v.removesuffix("_cap") for v in chosen}
            if not chosen:
                raise FilterError(f"{spec!r}: no value after {key}{'!=' if negated else '='}")
            for value in sorted(chosen - names.get(key, chosen)):
                close = difflib.get_close_matches(value, names[key], n=3)
                hint = f" (did you mean {' or '.join(close)}?)" if close else ""
                raise FilterError(f"{spec!r}: no {key} named {value!r}{hint}")
            (exclude if negated else include).setdefault(key, set()).update(chosen)
        return cls({k: frozenset(v) for k, v in include.items()},
                   {k: frozenset(v) for k, v in exclude.items()})

    def accepts(self, line: TraceLine) -> bool:
        values = _values(line)
        for key, wanted in self.include.items():
            if not wanted & values.get(key, frozenset()):
                return False
        for key, unwanted in self.exclude.items():
            if unwanted & values.get(key, frozenset()):
                return False
        return True


def _values(line: TraceLine) -> dict[str, frozenset[str]]:
    def of(*items: str | None) -> frozenset[str]:
        return frozenset(item for item in items if item is not None)

    if isinstance(line, SwitchRecord):
        return {"thread": of(line.thread, line.to), "event": of("switch")}
    if isinstance(line, FaultRecord):
        return {"thread": of(line.thread), "event": of("fault")}
    kind = "syscall" if isinstance(line, TraceRecord) else "resume"
    cap = None if line.cap is None else line.cap.removesuffix("_cap")
    return {"syscall": of(line.syscall), "label": of(line.label), "thread": of(line.thread),
            "type": of(cap), "event": of(kind)}
