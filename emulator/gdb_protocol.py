"""The GDB remote serial protocol's transport: packet framing, checksums, escaping, acks.

This module knows bytes and packets only; what a packet means is ``emulator.gdb_server``'s
business. The wire format (GDB manual, "Overview" of the remote protocol):

- a packet is ``$`` payload ``#`` two lowercase hex digits, the payload's byte sum mod 256;
- in a payload, ``$ # } *`` are sent as ``}`` followed by the byte XOR 0x20 (binary data in
  ``X`` packets and in ``qXfer`` replies; gdb never sends run-length encoding, only stubs
  may, and we never do);
- each packet is answered by ``+`` (received) or ``-`` (checksum wrong, send it again),
  until both sides agree on ``QStartNoAckMode``;
- a lone byte 0x03 outside a packet is an interrupt request (Ctrl-C in gdb).

Contract: nothing a peer sends makes :class:`PacketReader` raise. Garbage outside packets
is dropped, a packet with a bad checksum or a bad escape becomes a :class:`BadPacket`
event (answered ``-``), and a packet longer than :data:`MAX_PACKET` is dropped whole.
"""

from __future__ import annotations

import select
import socket

from kernel.records import dataclass

__all__ = [
    "Ack",
    "BadPacket",
    "Connection",
    "ConnectionClosed",
    "Event",
    "Interrupt",
    "MAX_PACKET",
    "Nack",
    "Packet",
    "PacketReader",
    "checksum",
    "escape",
    "frame",
    "unescape",
]

MAX_PACKET = 0x4000
"""Longest payload accepted (we announce ``PacketSize`` below it, so gdb never reaches it)."""

_SPECIAL = frozenset(b"$#}*")
INTERRUPT_BYTE = 0x03


class ConnectionClosed(Exception):
    """The peer closed the connection or it failed; the message says how."""


@dataclass(frozen=True, slots=True)
class Packet:
    payload: bytes


@dataclass(frozen=True, slots=True)
class BadPacket:
    """A framed packet we could not accept (the peer should send it again)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Interrupt:
    """The peer asked the running target to stop (byte 0x03)."""


@dataclass(frozen=True, slots=True)
class Ack:
    pass


@dataclass(frozen=True, slots=True)
class Nack:
    pass


Event = Packet | BadPacket | Interrupt | Ack | Nack


def checksum(payload: bytes) -> int:
    return sum(payload) & 0xFF


def escape(data: bytes) -> bytes:
    """``data`` with every ``$ # } *`` escaped, for a binary payload."""
    out = bytearray()
    for byte in data:
        if byte in _SPECIAL:
            out += bytes((0x7D, byte ^ 0x20))
        else:
            out.append(byte)
    return bytes(out)


def unescape(data: bytes) -> bytes:
    """The bytes an escaped payload stands for. Raises ValueError on a dangling ``}``."""
    out = bytearray()
    pending = False
    for byte in data:
        if pending:
            out.append(byte ^ 0x20)
            pending = False
        elif byte == 0x7D:
            pending = True
        else:
            out.append(byte)
    if pending:
        raise ValueError("payload ends inside an escape")
    return bytes(out)


def frame(payload: bytes) -> bytes:
    """``payload`` (already escaped where needed) as a packet on the wire."""
    return b"$" + payload + b"#" + f"{checksum(payload):02x}".encode()


class PacketReader:
    """Turns a byte stream into events; feed it whatever arrives, in any pieces."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._in_packet = False
        self._too_long = False

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        for byte in data:
            event = self._byte(byte)
            if event is not None:
                events.append(event)
        return events

    def _byte(self, byte: int) -> Event | None:
        if not self._in_packet:
            if byte == ord("$"):
                self._in_packet, self._too_long = True, False
                self._buffer.clear()
                return None
            if byte == INTERRUPT_BYTE:
                return Interrupt()
            if byte == ord("+"):
                return Ack()
            if byte == ord("-"):
                return Nack()
            return None  # noise between packets
        self._buffer.append(byte)
        hash_at = self._hash_position()
        if hash_at is None:
            if len(self._buffer) > MAX_PACKET + 1:
                self._too_long = True
                self._buffer.clear()
            return None
        if len(self._buffer) < hash_at + 3:
            return None
        self._in_packet = False
        body, digits = bytes(self._buffer[:hash_at]), bytes(self._buffer[hash_at + 1 :])
        self._buffer.clear()
        if self._too_long:
            return BadPacket("packet too long")
        try:
            expected = int(digits, 16)
        except ValueError:
            return BadPacket(f"bad checksum digits {digits!r}")
        if checksum(body) != expected:
            return BadPacket("checksum mismatch")
        return Packet(body)

    def _hash_position(self) -> int | None:
        """Where the ``#`` ending the payload is, if it has arrived. An escaped ``#``
        (after ``}``) is payload, not the end."""
        escaped = False
        for index, byte in enumerate(self._buffer):
            if escaped:
                escaped = False
            elif byte == 0x7D:
                escaped = True
            elif byte == ord("#"):
                return index
        return None


class Connection:
    """One gdb connection over a connected socket: acks, retransmission, interrupts.

    Every failure of the socket (reset, closed, timeout while waiting for an ack) is
    raised as :class:`ConnectionClosed`.
    """

    RETRIES = 5

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = PacketReader()
        self.ack_mode = True
        self._events: list[Event] = []

    def _receive(self) -> None:
        try:
            data = self.sock.recv(4096)
        except OSError as error:
            raise ConnectionClosed(f"connection failed: {error}") from None
        if not data:
            raise ConnectionClosed("gdb closed the connection")
        self._events += self.reader.feed(data)

    def _send_raw(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as error:
            raise ConnectionClosed(f"connection failed: {error}") from None

    def next_packet(self) -> bytes:
        """Block until a whole, valid packet arrives; ack it; return its payload.

        Bad packets are answered ``-``; stray acks, and interrupts that arrive while the
        target is already stopped, are ignored.
        """
        while True:
            while not self._events:
                self._receive()
            event = self._events.pop(0)
            if isinstance(event, Packet):
                if self.ack_mode:
                    self._send_raw(b"+")
                return event.payload
            if isinstance(event, BadPacket):
                if self.ack_mode:
                    self._send_raw(b"-")

    def send(self, payload: bytes) -> None:
        """Send one packet; in ack mode, resend until gdb acknowledges it."""
        data = frame(payload)
        for _ in range(self.RETRIES):
            self._send_raw(data)
            if not self.ack_mode:
                return
            while not any(isinstance(e, (Ack, Nack)) for e in self._events):
                self._receive()
            index = next(i for i, e in enumerate(self._events) if isinstance(e, (Ack, Nack)))
            if isinstance(self._events.pop(index), Ack):
                return
        raise ConnectionClosed("gdb rejected a packet too many times")

    def poll_interrupt(self) -> bool:
        """Whether gdb asked to interrupt the running target (without blocking)."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError) as error:
            raise ConnectionClosed(f"connection failed: {error}") from None
        if readable:
            self._receive()
        for index, event in enumerate(self._events):
            if isinstance(event, Interrupt):
                del self._events[index]
                return True
        return False
