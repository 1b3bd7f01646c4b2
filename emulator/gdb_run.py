"""``capsule run --gdb HOST:PORT``: listen, wait for gdb, serve it, finish the run.

Contract: every way this can fail for the user (a bad address, a port in use, gdb going
away) is a :class:`GdbRunError` carrying one line and an exit status; the guest's state
is never left half-changed by a failed request (``emulator.gdb_target``'s invariant).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from kernel.records import dataclass

from .exitstatus import ExitStatus
from .gdb_protocol import Connection, ConnectionClosed
from .gdb_server import GdbServer, listen, parse_address
from .gdb_target import GdbTarget
from .machine import RunResult
from .session import Session

__all__ = ["EXIT_GDB_LOST", "GdbRunError", "GdbListener", "serve"]

EXIT_GDB_LOST = ExitStatus.GDB_LOST
"""Exit status when the gdb connection is dropped before the session ended."""


class GdbRunError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class GdbListener:
    """A socket listening for gdb, opened before the guest boots so that a bad address
    fails first."""

    sock: socket.socket
    host: str
    port: int

    @classmethod
    def open(cls, address: str) -> GdbListener:
        try:
            host, port = parse_address(address)
        except ValueError as error:
            raise GdbRunError(f"--gdb: {error}", ExitStatus.USAGE) from None
        try:
            sock = listen(host, port)
        except (OSError, UnicodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise GdbRunError(f"--gdb: cannot listen on {host}:{port}: {reason}",
                              ExitStatus.USAGE) from None
        return cls(sock, host, sock.getsockname()[1])


def serve(listener: GdbListener, session: Session, stop_at_syscalls: bool,
          say: Callable[[str], None], max_instructions: int | None = None) -> RunResult | None:
    """Wait for gdb on ``listener`` and serve it. Returns how the run ended, or None when
    gdb killed the guest. Raises GdbRunError if the connection fails. The run ends at
    ``max_instructions`` guest instructions, whether gdb is attached or detached."""
    say(f"waiting for gdb on {listener.host}:{listener.port}")
    try:
        client, peer = listener.sock.accept()
    except OSError as error:
        raise GdbRunError(f"gdb connection failed: {error}", EXIT_GDB_LOST) from None
    finally:
        listener.sock.close()
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    target = GdbTarget(session, stop_at_syscalls, max_instructions)
    server = GdbServer(Connection(client), target)
    try:
        end = server.serve()
    except ConnectionClosed as error:
        raise GdbRunError(f"gdb connection lost: {error}", EXIT_GDB_LOST) from None
    finally:
        client.close()
    if end.how == "killed":
        say("the guest was killed by gdb")
        return None
    if end.how == "detached":
        say("gdb detached; the run continues")
        return target.finish()
    return end.result
