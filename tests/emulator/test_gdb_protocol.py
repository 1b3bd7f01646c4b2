"""The GDB packet layer alone: framing, checksums, escaping, acks, and bad input."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.gdb_protocol import (
    MAX_PACKET,
    Ack,
    BadPacket,
    Connection,
    ConnectionClosed,
    Interrupt,
    Nack,
    Packet,
    PacketReader,
    checksum,
    escape,
    frame,
    unescape,
)

payloads = st.binary(max_size=300)


def test_known_frame() -> None:
    # "$g#67": 'g' is 0x67, the checksum of one byte is that byte.
    assert frame(b"g") == b"$g#67"
    assert frame(b"") == b"$#00"
    assert checksum(b"qSupported") == 0x37


def test_escape_of_each_special_byte() -> None:
    assert escape(b"$#}*a") == b"}\x04}\x03}]}\x0aa"
    assert unescape(b"}\x04}\x03}]}\x0aa") == b"$#}*a"


@given(payloads)
def test_escape_round_trips_and_hides_framing_bytes(data: bytes) -> None:
    escaped = escape(data)
    assert unescape(escaped) == data
    assert b"$" not in escaped and b"#" not in escaped and b"*" not in escaped


@given(payloads, st.lists(st.integers(min_value=1, max_value=64), max_size=20))
def test_framed_packets_survive_any_split(data: bytes, cuts: list[int]) -> None:
    stream = b"+" + frame(escape(data)) + b"\x03" + frame(b"g") + b"-"
    reader = PacketReader()
    events = []
    position = 0
    for cut in cuts:
        events += reader.feed(stream[position : position + cut])
        position += cut
    events += reader.feed(stream[position:])
    assert events[0] == Ack()
    assert isinstance(events[1], Packet) and unescape(events[1].payload) == data
    assert events[2:] == [Interrupt(), Packet(b"g"), Nack()]


@given(payloads)
def test_a_wrong_checksum_is_a_bad_packet_then_reading_goes_on(data: bytes) -> None:
    body = escape(data)
    wrong = (checksum(body) + 1) & 0xFF
    reader = PacketReader()
    events = reader.feed(b"$" + body + b"#%02x" % wrong + frame(b"m0,4"))
    assert events == [BadPacket("checksum mismatch"), Packet(b"m0,4")]


@given(st.binary(max_size=2000))
def test_garbage_never_raises(data: bytes) -> None:
    reader = PacketReader()
    for event in reader.feed(data) + reader.feed(frame(b"?")):
        assert isinstance(event, (Packet, BadPacket, Interrupt, Ack, Nack))
    # whatever came before, a frame that starts cleanly is read whole
    assert reader.feed(frame(b"qC")) == [Packet(b"qC")]


def test_bad_checksum_digits_and_an_over_long_packet() -> None:
    reader = PacketReader()
    assert reader.feed(b"$g#zz") == [BadPacket("bad checksum digits b'zz'")]
    huge = b"a" * (MAX_PACKET + 10)
    assert reader.feed(b"$" + huge + b"#00") == [BadPacket("packet too long")]
    assert reader.feed(frame(b"g")) == [Packet(b"g")]


def test_dangling_escape_is_refused() -> None:
    with pytest.raises(ValueError, match="escape"):
        unescape(b"ab}")


def test_connection_acks_resends_on_nack_and_reports_a_close() -> None:
    ours, theirs = socket.socketpair()
    try:
        conn = Connection(ours)
        theirs.sendall(b"$bad#00" + frame(b"qC"))
        assert conn.next_packet() == b"qC"
        assert theirs.recv(16) == b"-+"
        theirs.sendall(b"-+")  # the first copy is refused, the second accepted
        conn.send(b"OK")
        assert theirs.recv(64) == frame(b"OK") * 2
        theirs.sendall(b"\x03")
        assert conn.poll_interrupt() is True
        assert conn.poll_interrupt() is False
        theirs.close()
        with pytest.raises(ConnectionClosed, match="closed the connection"):
            conn.next_packet()
    finally:
        ours.close()
