"""Moving one message between two threads (seL4's doIPCTransfer and its helpers).

A message is the sender's tag, its MRs and its extra caps (abi/ipc.md, "Message
transfer"). MR0-MR3 live in registers (the syscall window: a2-a5 / x2-x5), MR4 on in
the IPC buffer's ``msg[]``. A thread's registers are in the machine while it is the
current, unsaved thread and in ``tcb.registers`` otherwise: :func:`get_window` /
:func:`set_window` hide which, and every register access here goes through them.

Rules kept (seL4 16.0.0, non-MCS):
- the length is clamped to 120, copied register MRs first, then buffer MRs only if
  both threads have a usable IPC buffer; the receiver's length = words copied;
- extra caps only through a cap with Grant; a cap to the endpoint the message travels
  through is unwrapped (badge in ``caps_or_badges[i]``, bit i of capsUnwrapped); at
  most one other cap is derived into the receive slot, as a CDT child of the sender's
  cap; the loop stops at the first cap that cannot be handled;
- a sender with a pending fault sends its fault message instead (label = fault type).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from kernel.abi.constants import (
    FAST_MESSAGE_REGISTERS,
    IPC_BUFFER,
    MSG_MAX_EXTRA_CAPS,
    WORD_BYTES,
    WORD_MASK,
    fault_label_mcs,
)
from kernel.cspace.arguments import lookup_extra_caps
from kernel.cspace.cdt import derive_cap, insert
from kernel.cspace.ipc_buffer import ipc_buffer_paddr, read_ipc_words, write_ipc_words
from kernel.cspace.lookup import lookup_cap, lookup_target_slot
from kernel.cspace.restrictions import path_restrictions
from kernel.model.caps import EndpointCap
from kernel.model.endpoint import Endpoint
from kernel.model.errors import LOOKUP_FAILURES, SyscallError
from kernel.model.faults import TimeoutFault
from kernel.model.message import MessageInfo, message_word
from kernel.model.sched_context import take_consumed_us
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.model.tcb import TCB

__all__ = [
    "BADGE",
    "INFO",
    "MR0",
    "get_mrs",
    "get_window",
    "receive_slot",
    "set_window",
    "transfer",
    "write_message",
]

BADGE: Final = 0
INFO: Final = 1
MR0: Final = 2
"""Window positions: badge / cap register, msginfo register, first message register."""
_MSG_WORD: Final = IPC_BUFFER.offset("msg") // WORD_BYTES
_CAPS_WORD: Final = IPC_BUFFER.offset("caps_or_badges") // WORD_BYTES
_RECV_WORD: Final = IPC_BUFFER.offset("receiveCNode") // WORD_BYTES


def get_window(kernel: KernelState, tcb: TCB) -> list[int]:
    """``tcb``'s a0-a7 / x0-x7, wherever its registers live now."""
    if kernel.registers_live(tcb):
        return kernel.machine.read_syscall_window()
    registers = kernel.registers_of(tcb)
    return [registers[i] for i in kernel.window_index]


def set_window(kernel: KernelState, tcb: TCB, start: int, values: Sequence[int]) -> None:
    """Store ``values`` from window position ``start`` in ``tcb``'s registers."""
    if kernel.registers_live(tcb):
        window = kernel.machine.read_syscall_window()
        window[start : start + len(values)] = values
        kernel.machine.write_syscall_window(window)
        return
    names = kernel.window_index
    put = tcb.set_register
    for offset, value in enumerate(values):
        put(names[start + offset], value)


def get_mrs(kernel: KernelState, tcb: TCB, count: int) -> list[int]:
    """MR0..MR(count-1) of ``tcb`` as a sender: registers, then its IPC buffer (cut
    at the register MRs when it has none)."""
    regs = get_window(kernel, tcb)[MR0 : MR0 + min(count, FAST_MESSAGE_REGISTERS)]
    if count <= FAST_MESSAGE_REGISTERS:
        return regs
    rest = read_ipc_words(kernel, tcb, _MSG_WORD + FAST_MESSAGE_REGISTERS,
                          count - FAST_MESSAGE_REGISTERS)
    return regs if rest is None else regs + rest


def _put_mrs(kernel: KernelState, tcb: TCB, words: list[int]) -> int:
    """Store MRs into receiver ``tcb``; returns how many arrived (seL4's setMRs)."""
    set_window(kernel, tcb, MR0, words[:FAST_MESSAGE_REGISTERS])
    if len(words) > FAST_MESSAGE_REGISTERS and write_ipc_words(
        kernel, tcb, _MSG_WORD + FAST_MESSAGE_REGISTERS, words[FAST_MESSAGE_REGISTERS:]
    ):
        return len(words)
    return min(len(words), FAST_MESSAGE_REGISTERS)


def write_message(kernel: KernelState, tcb: TCB, label: int, badge: int, words: list[int]) -> None:
    """Deliver a kernel-made message (fault message, reply) to receiver ``tcb``."""
    sent = _put_mrs(kernel, tcb, [word & WORD_MASK for word in words])
    set_window(kernel, tcb, BADGE, [badge, message_word(label, 0, 0, sent)])


def transfer(
    kernel: KernelState, sender: TCB, endpoint: Endpoint | None, badge: int, grant: bool,
    receiver: TCB,
) -> None:
    """seL4's doIPCTransfer: ``sender``'s message (or its fault) arrives at ``receiver``
    with ``badge``. ``endpoint`` is None for replies (nothing is unwrapped then)."""
    if sender.fault is not None:
        fault = sender.fault
        label = int(fault.label)
        words = fault.message(kernel.abi)
        if isinstance(fault, TimeoutFault):  # MCS only, numbered so already
            if sender.sched_context is not None:
                words.append(take_consumed_us(kernel.abi, sender.sched_context))
        elif kernel.config.mcs:  # the MCS numbering of fault labels (VMFault is 6)
            label = fault_label_mcs(label)
        write_message(kernel, receiver, label, badge, words)
        return
    info = MessageInfo.from_word(get_window(kernel, sender)[INFO])
    length = info.clamped_length
    # Register MRs need no buffer; longer messages need both (else they are cut to the
    # register MRs), and only extra caps need the lookups. The common short, capless
    # message thus touches neither IPC buffer.
    if length > FAST_MESSAGE_REGISTERS and (
            ipc_buffer_paddr(kernel, sender, for_write=False) is None
            or ipc_buffer_paddr(kernel, receiver, for_write=True) is None):
        length = FAST_MESSAGE_REGISTERS
    words = get_mrs(kernel, sender, length)
    sent = _put_mrs(kernel, receiver, words)
    extra = unwrapped = 0
    if grant and info.extra_caps:
        found = lookup_extra_caps(kernel, sender, info)
        caps: list[Slot] = [] if isinstance(found, tuple) else found
        extra, unwrapped = _transfer_caps(kernel, caps, endpoint, receiver)
    tag = message_word(info.label, unwrapped, extra, sent)
    set_window(kernel, receiver, BADGE, [badge, tag])


def _transfer_caps(
    kernel: KernelState, caps: list[Slot], endpoint: Endpoint | None, receiver: TCB
) -> tuple[int, int]:
    """seL4's transferCaps: returns (extraCaps, capsUnwrapped) for the receiver's tag."""
    if not caps or ipc_buffer_paddr(kernel, receiver, for_write=True) is None:
        return 0, 0

    dest = receive_slot(kernel, receiver)
    unwrapped = 0
    done = 0
    for index, slot in enumerate(caps[:MSG_MAX_EXTRA_CAPS]):
        cap = slot.cap
        if (isinstance(cap, EndpointCap) and endpoint is not None
                and cap.paddr == endpoint.paddr):
            write_ipc_words(kernel, receiver, _CAPS_WORD + index, [cap.badge])
            unwrapped |= 1 << index
        else:
            if dest is None:
                break
            try:
                derived = derive_cap(kernel, slot, cap)
            except SyscallError:
                break
            if derived.is_null:
                break
            insert(derived, slot, dest)
            dest = None
        done = index + 1
    return done, unwrapped


def receive_slot(kernel: KernelState, receiver: TCB) -> Slot | None:
    """seL4's getReceiveSlots: the empty slot named by receiveCNode/Index/Depth.

    Changes nothing. With server-backed CNodes (not seL4), raises
    ``kernel.cspace.lookup.ServerLookup`` only when ``kernel.lookup_phase`` allows it: a
    Recv looks the slot up this way before it commits (``kernel.entry.invocation``);
    during a transfer the phase is -1 and a lookup is an ordinary one."""
    words = read_ipc_words(kernel, receiver, _RECV_WORD, 3)
    if words is None:
        return None
    cnode_cptr, index, depth = words
    root = lookup_cap(kernel, receiver, cnode_cptr)
    if isinstance(root, LOOKUP_FAILURES):
        return None
    try:
        slot = lookup_target_slot(kernel, root, index, depth)
    except SyscallError:
        return None
    if kernel.config.cap_pages and path_restrictions(kernel, root, index, depth)[0]:
        return None  # capsule's cap pages (not seL4): nothing is stored by a read-only path
    return slot if slot.is_empty else None
