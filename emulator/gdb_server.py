"""The GDB stub: gdb's packets, answered from a :class:`~emulator.gdb_target.GdbTarget`.

``capsule run --gdb HOST:PORT IMAGE`` boots the image, waits for one gdb connection, and
serves it until gdb detaches (the guest then runs to its end), kills the guest, or the run
ends. Transport is ``emulator.gdb_protocol``; thread, register and memory semantics are
``emulator.gdb_target``'s. This module is the packet syntax in between.

Supported (GDB manual, "Packets"): ``?``, ``g G p P``, ``m M X``, ``Z0 z0`` (``Z1 z1``
too: hardware breakpoints are the same hooks), ``c s`` and ``vCont`` (``c s``; a step
always steps the kernel's current thread), ``H T``, ``qSupported``, ``QStartNoAckMode``,
``qfThreadInfo qsThreadInfo qC qThreadExtraInfo qAttached``,
``qXfer:features:read`` (``target.xml``) and ``qXfer:threads:read`` (thread names), ``D``
(detach), ``k`` and ``vKill``. Anything else gets the empty reply ("not supported").
A malformed packet gets ``E16`` (EINVAL); an unmapped address ``E0e`` (EFAULT).

Stops are ``T05`` (SIGTRAP) with ``thread:`` and, at our breakpoints, ``swbreak:`` when
gdb announced it understands that; ``T02`` after a Ctrl-C. With ``stop_at_syscalls``
the target also stops right after each system call (plain SIGTRAP in the thread that made
it: gdb's ``catch syscall`` needs an OS ABI that bare-metal gdb targets lack). The end of
the run is ``W`` with the exit status ``capsule run`` will exit with
(``emulator.exitstatus``).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from xml.sax.saxutils import escape as xml_escape

from kernel.model.tcb import TCB
from kernel.records import dataclass

from .exitstatus import exit_status
from .gdb_protocol import Connection, escape, unescape
from .gdb_target import EINVAL, GdbTarget, Stop, TargetError
from .machine import RunResult

__all__ = ["GdbServer", "ServerEnd", "listen", "parse_address"]

PACKET_SIZE = 0x3FFF


class _BadPacket(Exception):
    """A packet we understood the name of but not the arguments."""


@dataclass(frozen=True, slots=True)
class ServerEnd:
    """How a gdb session ended: ``how`` is ``"exited"`` (the run ended; ``result``),
    ``"detached"`` (``result``: the run finished without gdb) or ``"killed"``."""

    how: str
    result: RunResult | None


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT``, host 127.0.0.1) -> (host, port). Raises ValueError."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise ValueError(f"{text!r} is not HOST:PORT")
    try:
        port = int(port_text, 10)
    except ValueError:
        raise ValueError(f"bad port {port_text!r} in {text!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 0..65535")
    return (host.strip("[]") or "127.0.0.1"), port


def listen(host: str, port: int) -> socket.socket:
    """A listening socket. Raises OSError (address in use, unknown host, ...)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    family, kind, proto, _, address = infos[0]
    server = socket.socket(family, kind, proto)
    try:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(address)
        server.listen(1)
    except OSError:
        server.close()
        raise
    return server


def _hex_number(text: bytes) -> int:
    try:
        return int(text, 16)
    except ValueError:
        raise _BadPacket(f"bad number {text!r}") from None


def _thread_number(text: bytes) -> int:
    if text == b"-1":
        return -1
    return _hex_number(text)


def _xfer_slice(document: bytes, annex: bytes) -> bytes:
    """A ``qXfer`` reply: ``m`` + the part at ``offset,length`` of ``annex``, ``l`` at the end."""
    offset_text, _, length_text = annex.partition(b",")
    offset, length = _hex_number(offset_text), _hex_number(length_text)
    part = document[offset : offset + length]
    return (b"l" if offset + length >= len(document) else b"m") + escape(part)


class GdbServer:
    """Serves one gdb connection over ``target``."""

    def __init__(self, connection: Connection, target: GdbTarget,
                 log: Callable[[str], None] = lambda line: None) -> None:
        self.conn = connection
        self.target = target
        self.log = log
        self.selected: TCB | None = None
        """The thread ``Hg`` chose for register and memory access (None: the current)."""
        self.swbreak = False
        self.last_stop = Stop(thread=target.kernel.current)
        self.end: ServerEnd | None = None

    def serve(self) -> ServerEnd:
        """Answer packets until the session ends. Raises ConnectionClosed if gdb goes."""
        while self.end is None:
            payload = self.conn.next_packet()
            reply = self.handle(payload)
            if reply is not None:
                self.conn.send(reply)
        return self.end

    def handle(self, payload: bytes) -> bytes | None:
        """The reply to one packet (None: nothing more to send)."""
        try:
            return self._dispatch(payload)
        except _BadPacket:
            return b"E%02x" % EINVAL
        except TargetError as error:
            return b"E%02x" % error.errno

    # --- dispatch ------------------------------------------------------------------------

    def _dispatch(self, payload: bytes) -> bytes | None:
        if not payload:
            return b""
        head, rest = payload[:1], payload[1:]
        simple: dict[bytes, Callable[[bytes], bytes | None]] = {
            b"?": lambda _: self._stop_reply(self.last_stop),
            b"g": lambda _: self.target.layout.encode(self._context()),
            b"G": self._write_registers,
            b"p": self._read_register,
            b"P": self._write_register,
            b"m": self._read_memory,
            b"M": self._write_memory,
            b"X": self._write_binary,
            b"Z": lambda args: self._breakpoint(args, insert=True),
            b"z": lambda args: self._breakpoint(args, insert=False),
            b"c": lambda _: self._resume(step=False),
            b"s": lambda _: self._resume(step=True),
            b"H": self._set_thread,
            b"T": self._thread_alive,
            b"D": self._detach,
            b"k": lambda _: self._kill(),
        }
        if head in simple:
            return simple[head](rest)
        if payload.startswith(b"vCont"):
            return self._vcont(payload[5:])
        if payload == b"vKill" or payload.startswith(b"vKill;"):
            self._kill()
            return b"OK"
        if payload.startswith(b"q") or payload.startswith(b"Q"):
            return self._query(payload)
        return b""

    def _query(self, payload: bytes) -> bytes | None:
        name, _, args = payload.partition(b":")
        if name == b"qSupported":
            self.swbreak = b"swbreak+" in args.split(b";")
            return (b"PacketSize=%x;qXfer:features:read+;qXfer:threads:read+;"
                    b"QStartNoAckMode+;swbreak+;vContSupported+" % PACKET_SIZE)
        if name == b"QStartNoAckMode":
            self.conn.send(b"OK")  # acknowledged in the old mode, then no more acks
            self.conn.ack_mode = False
            return None
        if name == b"qAttached":
            return b"1"
        if name == b"qC":
            return b"QC%x" % self._id(self._thread_or_current(None))
        if name == b"qfThreadInfo":
            ids = [b"%x" % number for number, _ in self.target.threads()]
            return b"m" + b",".join(ids) if ids else b"l"
        if name == b"qsThreadInfo":
            return b"l"
        if payload.startswith(b"qThreadExtraInfo,"):
            tcb = self.target.thread(_thread_number(payload.split(b",", 1)[1]))
            return f"{tcb.name} ({self.target.describe(tcb)})".encode().hex().encode()
        if name == b"qXfer":
            return self._xfer(args)
        return b""

    def _xfer(self, args: bytes) -> bytes:
        parts = args.split(b":")
        if len(parts) != 4 or parts[1] != b"read":
            return b""
        obj, _, annex, window = parts
        if obj == b"features":
            if annex != b"target.xml":
                return b"E00"
            return _xfer_slice(self.target.layout.target_xml().encode(), window)
        if obj == b"threads":
            return _xfer_slice(self._threads_xml(), window)
        return b""

    def _threads_xml(self) -> bytes:
        lines = ['<?xml version="1.0"?>', "<threads>"]
        for number, tcb in self.target.threads():
            name = xml_escape(tcb.name, {'"': "&quot;"})
            lines.append(f'<thread id="{number:x}" name="{name}">'
                         f"{xml_escape(self.target.describe(tcb))}</thread>")
        lines.append("</threads>")
        return "\n".join(lines).encode()

    # --- threads -------------------------------------------------------------------------

    def _id(self, tcb: TCB) -> int:
        return self.target.thread_id(tcb)

    def _thread_or_current(self, tcb: TCB | None) -> TCB:
        if tcb is not None and self.target.kernel.threads.get(tcb.paddr) is tcb:
            return tcb
        return self.target.thread(0)

    def _set_thread(self, args: bytes) -> bytes:
        if len(args) < 2:
            raise _BadPacket("H needs an operation and a thread")
        op, number = args[:1], _thread_number(args[1:])
        tcb = self.target.thread(number)
        if op == b"g":
            self.selected = None if number in (0, -1) else tcb
        return b"OK"  # Hc: which thread runs is the kernel scheduler's choice

    def _thread_alive(self, args: bytes) -> bytes:
        self.target.thread(_thread_number(args))
        return b"OK"

    # --- registers -----------------------------------------------------------------------

    def _context(self) -> list[int]:
        return self.target.context(self._thread_or_current(self.selected))

    def _register_number(self, text: bytes) -> int:
        number = _hex_number(text)
        if not 0 <= number < len(self.target.layout.registers):
            raise TargetError(EINVAL, f"no register {number}")
        return number

    def _read_register(self, args: bytes) -> bytes:
        return self.target.layout.encode_one(self._register_number(args), self._context())

    def _write_register(self, args: bytes) -> bytes:
        number_text, sep, value_text = args.partition(b"=")
        if not sep:
            raise _BadPacket("P needs n=value")
        number = self._register_number(number_text)
        raw = self._hex_bytes(value_text)
        layout = self.target.layout
        if len(raw) != layout.registers[number].size:
            raise _BadPacket("register value of the wrong size")
        tcb = self._thread_or_current(self.selected)
        context = self.target.context(tcb)
        layout.decode_into(number, raw, context)
        self.target.set_context(tcb, context)
        return b"OK"

    def _write_registers(self, args: bytes) -> bytes:
        raw = self._hex_bytes(args)
        layout = self.target.layout
        if len(raw) != layout.g_size:
            raise _BadPacket("G packet of the wrong size")
        tcb = self._thread_or_current(self.selected)
        context = self.target.context(tcb)
        offset = 0
        for number, reg in enumerate(layout.registers):
            layout.decode_into(number, raw[offset : offset + reg.size], context)
            offset += reg.size
        self.target.set_context(tcb, context)
        return b"OK"

    @staticmethod
    def _hex_bytes(text: bytes) -> bytes:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise _BadPacket("bad hex data") from None

    # --- memory --------------------------------------------------------------------------

    @staticmethod
    def _address_length(text: bytes) -> tuple[int, int]:
        address_text, sep, length_text = text.partition(b",")
        if not sep:
            raise _BadPacket("need ADDR,LENGTH")
        return _hex_number(address_text), _hex_number(length_text)

    def _memory_thread(self) -> TCB:
        return self._thread_or_current(self.selected)

    def _read_memory(self, args: bytes) -> bytes:
        address, length = self._address_length(args)
        return self.target.read_memory(self._memory_thread(), address, length).hex().encode()

    def _write_memory(self, args: bytes) -> bytes:
        where, sep, data = args.partition(b":")
        if not sep:
            raise _BadPacket("M needs ADDR,LENGTH:DATA")
        address, length = self._address_length(where)
        raw = self._hex_bytes(data)
        if len(raw) != length:
            raise _BadPacket("M data length differs from LENGTH")
        self.target.write_memory(self._memory_thread(), address, raw)
        return b"OK"

    def _write_binary(self, args: bytes) -> bytes:
        where, sep, data = args.partition(b":")
        if not sep:
            raise _BadPacket("X needs ADDR,LENGTH:DATA")
        address, length = self._address_length(where)
        try:
            raw = unescape(data)
        except ValueError:
            raise _BadPacket("bad escape in X data") from None
        if len(raw) != length:
            raise _BadPacket("X data length differs from LENGTH")
        self.target.write_memory(self._memory_thread(), address, raw)
        return b"OK"

    def _breakpoint(self, args: bytes, insert: bool) -> bytes:
        fields = args.split(b",")
        if len(fields) < 3:
            raise _BadPacket("Z/z need TYPE,ADDR,KIND")
        if fields[0] not in (b"0", b"1"):
            return b""  # watchpoints: not supported
        address = _hex_number(fields[1])
        if insert:
            self.target.add_breakpoint(address)
        else:
            self.target.remove_breakpoint(address)
        return b"OK"

    # --- running -------------------------------------------------------------------------

    def _vcont(self, args: bytes) -> bytes:
        if args == b"?":
            return b"vCont;c;C;s;S"
        actions = [action.split(b":")[0] for action in args.split(b";") if action]
        if not actions:
            raise _BadPacket("vCont without an action")
        step = any(action[:1] in (b"s", b"S") for action in actions)
        if not step and not all(action[:1] in (b"c", b"C") for action in actions):
            return b""
        return self._resume(step)

    def _resume(self, step: bool) -> bytes:
        stop = self.target.resume(step, self.conn.poll_interrupt)
        self.last_stop = stop
        if stop.thread is not None:
            self.selected = None
        return self._stop_reply(stop)

    def _stop_reply(self, stop: Stop) -> bytes:
        if stop.exited is not None:
            self.end = ServerEnd("exited", stop.exited)
            return b"W%02x" % exit_status(stop.exited)
        reply = b"T%02x" % stop.signal
        tcb = stop.thread if stop.thread is not None and \
            self.target.kernel.threads.get(stop.thread.paddr) is stop.thread else None
        if tcb is None and self.target.threads():
            tcb = self.target.thread(0)
        if tcb is not None:
            reply += b"thread:%x;" % self._id(tcb)
        if stop.breakpoint and self.swbreak:
            reply += b"swbreak:;"
        return reply

    def _detach(self, _args: bytes) -> bytes | None:
        self.conn.send(b"OK")
        self.end = ServerEnd("detached", None)
        return None

    def _kill(self) -> None:
        self.end = ServerEnd("killed", None)
