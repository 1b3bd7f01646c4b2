"""Server-backed CNodes (capsule's extension, not seL4) on the fake machine: every lookup
that may suspend does, the server's message, the transparent restart, denials, refusals
(loops, depth), cancellation, the views, and seL4's behaviour with the extension off.

The scene: the root task is the server. It holds the server endpoint, a notification, an
endpoint, and a CNode cap (radix 4, no guard) to the server-backed node N. A client
thread's whole CSpace is N (its root cap has a 60-bit guard, so CPtr k < 16 names N's
slot k). The invariant checks run after every kernel entry.
"""

from __future__ import annotations

import pytest

from kernel.abi.arch import Arch
from kernel.abi.constants import Error, Syscall
from kernel.abi.extensions import (
    INDEX_REQUEST_WORDS,
    MAX_SERVER_DEPTH,
    CheckpointLabel,
    LookupKind,
    TraversalLabel,
    configured_labels,
)
from kernel.abi.labels import label_table
from kernel.core.threads import restart, suspend
from kernel.cspace import cdt
from kernel.entry.traversal import refused_request
from kernel.model.caps import CNodeCap, NotificationCap, ReplyCap, Rights
from kernel.model.cnode import CNode, ServerBinding
from kernel.model.endpoint import EndpointState
from kernel.model.faults import IndexRequest
from kernel.model.notification import Notification, NotificationState
from kernel.model.tcb import CALLER, TCB, ThreadState
from kernel.views.invariants import check_all
from kernel.views.render import snapshot, to_json, to_text
from tests.abi.support import CNODE
from tests.unit.test_ipc import CAPS, MSG, RECV, VSPACE, World, tag

BIND = int(TraversalLabel.capsule_CNodeBindServer)
UNBIND = int(TraversalLabel.capsule_CNodeUnbindServer)
REQUEST = int(TraversalLabel.capsule_IndexRequest)
PC = 0x1_0004
"""The client's pc after its trap instruction (the fake machine executes nothing)."""


class Scene(World):
    def __init__(self, arch: Arch, on: bool = True) -> None:
        super().__init__(arch, server_backed_cnodes=on)
        self.srv_slot, self.srv_ep = self.endpoint()
        self.ntfn_slot = self.make(self.sys.otype("seL4_NotificationObject"))
        self.ep_slot, self.ep = self.endpoint()
        self.node_slot = self.sys.free_slots(1)
        assert self.sys.retype(self.ut, self.sys.otype("seL4_CapTableObject"), 4,
                               self.node_slot, 1).label == 0
        cap = self.sys.cap(self.node_slot)
        assert isinstance(cap, CNodeCap)
        node = self.kernel.objects[cap.paddr]
        assert isinstance(node, CNode)
        self.node = node
        self.copy, self.mint_label = self.sys.label("CNodeCopy"), self.sys.label("CNodeMint")

    def bind(self, badge: int = 0x42, node_slot: int | None = None,
             ep_slot: int | None = None) -> int:
        return self.sys.call(self.node_slot if node_slot is None else node_slot, BIND,
                             [badge], [self.srv_slot if ep_slot is None else ep_slot]).label

    def client(self, priority: int = 100, node_slot: int | None = None) -> TCB:
        """A thread whose CSpace root is the node (guard 60: CPtr k is slot k)."""
        slot = self.make(self.sys.otype("seL4_TCBObject"))
        tcb = self.kernel.objects[self.sys.cap(slot).object_paddr]  # type: ignore[index]
        assert isinstance(tcb, TCB)
        self.tcb_slot = slot
        parent = self.sys.slots[self.node_slot if node_slot is None else node_slot]
        cap = parent.cap
        assert isinstance(cap, CNodeCap)
        cdt.insert_child(parent, tcb.ctable, CNodeCap(cap.paddr, 4, 60, 0), False)
        cdt.insert_child(self.sys.slots[VSPACE], tcb.vtable, self.sys.cap(VSPACE), False)
        frame = self.make(self.page_type)
        cdt.insert_child(self.sys.slots[frame], tcb.ipc_buffer_slot, self.sys.cap(frame), False)
        tcb.ipc_buffer = 0x7000_0000
        tcb.priority = priority
        tcb.state = ThreadState.RUNNING
        self.kernel.scheduler.enqueue(tcb)
        check_all(self.kernel)
        return tcb

    def install(self, index: int, src: int, badge: int = 0) -> None:
        """The server's answer: Mint its cap ``src`` into the node's slot ``index``."""
        assert self.sys.call(self.node_slot, self.mint_label, [index, 4, src, 64, 0xF, badge],
                             [CNODE]).label == 0

    def client_syscall(self, number: int, *args: int) -> None:
        self.machine.registers[0] = PC
        self.syscall(number, *args)

    def request(self) -> tuple[int, int, list[int]]:
        """(badge, label, words) of the message the root task received last."""
        window = self.window(self.root)
        info = self.info(self.root)
        return window[0], info.label, window[2:2 + info.length]


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def scene(request: pytest.FixtureRequest) -> Scene:
    s = Scene(request.param)
    assert s.bind() == 0
    assert s.node.server == ServerBinding(s.srv_ep.paddr, 0x42)
    return s


def test_the_numbers_and_the_message_layout() -> None:
    for arch in Arch:
        for mcs in (False, True):
            sel4 = set(label_table(arch, mcs).values())
            assert not sel4 & {int(m) for m in TraversalLabel}
            on = configured_labels(arch, mcs, False, traversal=True)
            assert {k: v for k, v in on.items() if v not in sel4} == \
                {m.name: int(m) for m in TraversalLabel}
    assert [p.name for p in INDEX_REQUEST_WORDS] == ["address", "bits_left", "kind", "slot"]
    # Clear of the other extensions' numbers (labels a server or handler receives too).
    others = {int(m) for m in CheckpointLabel}
    assert not others & {int(m) for m in TraversalLabel}
    assert min(TraversalLabel) >= 0x1030


def test_invoked_cap_first_from_the_server_then_from_the_cache(scene: Scene) -> None:
    s = scene
    client = s.client()
    s.syscall(Syscall.seL4_SysRecv, s.srv_slot)
    assert s.kernel.current is client
    s.client_syscall(Syscall.seL4_SysSend, 5, tag(7, 0))
    # The client waits on the server, its pc back on the trap instruction.
    assert client.state is ThreadState.BLOCKED_ON_REPLY
    assert isinstance(client.fault, IndexRequest)
    assert s.kernel.registers_of(client)[0] == PC - 4
    assert s.kernel.current is s.root
    assert s.request() == (0x42, REQUEST, [5, 64, int(LookupKind.capsule_LookupInvokedCap), 5])
    assert not s.root.slots[CALLER].is_empty
    s.install(5, s.ntfn_slot, badge=0x9)
    s.syscall(Syscall.seL4_SysReply, 0, tag(0, 0))
    assert client.state is ThreadState.RESTART and client.fault is None
    window = s.window(client)
    assert window[0] == 5 and window[1] == tag(7, 0)  # the caller's registers untouched
    s.syscall(Syscall.seL4_SysRecv, s.srv_slot)
    assert s.kernel.current is client
    # The restarted trap: the registers are the client's own, reloaded by the switch.
    s.machine.registers[0] = PC
    s.kernel.syscall()
    ntfn = s.kernel.objects[s.sys.cap(s.ntfn_slot).object_paddr]  # type: ignore[index]
    assert isinstance(ntfn, Notification)
    assert ntfn.state is NotificationState.ACTIVE and ntfn.word == 0x9
    assert client.lookup_denied == ()
    # The second time: from the cache, no request.
    ntfn.word, ntfn.state = 0, NotificationState.IDLE
    s.client_syscall(Syscall.seL4_SysSend, 5, tag(7, 0))
    assert s.kernel.current is client and client.state is ThreadState.RUNNING
    assert ntfn.word == 0x9 and s.srv_ep.queue == [s.root]  # the server still waits


def test_a_request_queues_like_a_send_when_no_server_waits(scene: Scene) -> None:
    s = scene
    client = s.client()
    # The server is busy elsewhere (blocked on another endpoint), not waiting on its own.
    s.syscall(Syscall.seL4_SysRecv, s.ep_slot)
    assert s.kernel.current is client
    s.client_syscall(Syscall.seL4_SysSend, 3, tag(0, 0))
    assert client.state is ThreadState.BLOCKED_ON_SEND
    assert s.srv_ep.queue == [client] and client.blocking is not None
    assert client.blocking.badge == 0x42 and client.blocking.is_call
    s.kernel.current = s.root  # (the test skips how the server gets back to running)
    s.ep.queue.clear()
    s.ep.state = EndpointState.IDLE
    s.root.blocking = None
    s.kernel.set_thread_state(s.root, ThreadState.RUNNING)
    s.syscall(Syscall.seL4_SysRecv, s.srv_slot)
    assert s.request()[1] == REQUEST and client.state is ThreadState.BLOCKED_ON_REPLY


def _first_request(s: Scene, client: TCB, number: int, *args: int) -> list[int]:
    s.syscall(Syscall.seL4_SysRecv, s.srv_slot)
    assert s.kernel.current is client
    s.client_syscall(number, *args)
    badge, label, words = s.request()
    assert (badge, label) == (0x42, REQUEST)
    assert client.state is ThreadState.BLOCKED_ON_REPLY
    return words


def test_extra_caps_are_found_through_the_server(scene: Scene) -> None:
    s = scene
    s.install(5, s.ep_slot)
    client = s.client()
    s.write_words(client, CAPS, [7])
    words = _first_request(s, client, Syscall.seL4_SysSend, 5, tag(3, 0, extra=1))
    assert words == [7, 64, int(LookupKind.capsule_LookupExtraCap), 7]


def test_the_receive_endpoint_is_found_through_the_server(scene: Scene) -> None:
    s = scene
    client = s.client()
    words = _first_request(s, client, Syscall.seL4_SysRecv, 6)
    assert words == [6, 64, int(LookupKind.capsule_LookupReceiveEndpoint), 6]
    s.install(6, s.ep_slot)
    s.syscall(Syscall.seL4_SysReply, 0, tag(0, 0))
    s.syscall(Syscall.seL4_SysRecv, s.srv_slot)
    s.machine.registers[0] = PC
    s.kernel.syscall()  # the restarted Recv now waits on the endpoint
    assert client.state is ThreadState.BLOCKED_ON_RECEIVE and s.ep.queue == [client]


def test_the_receive_slot_of_a_recv_is_found_through_the_server(scene: Scene) -> None:
    s = scene
    s.install(6, s.ep_slot)
    sender = s.thread(120)  # the root task's CSpace
    client = s.client(100)
    s.syscall(Syscall.seL4_SysRecv, s.srv_slot)
    assert s.kernel.current is sender
    s.write_words(sender, CAPS, [s.ntfn_slot])
    s.syscall(Syscall.seL4_SysSend, s.ep_slot, tag(5, 0, extra=1))
    assert s.kernel.current is client and s.ep.queue == [sender]
    s.write_words(client, RECV, [3, 9, 4])  # receive into (N's slot 3 cap, 9, depth 4)
    s.client_syscall(Syscall.seL4_SysRecv, 6)
    assert client.state is ThreadState.BLOCKED_ON_REPLY
    assert s.request() == (0x42, REQUEST, [3, 64, int(LookupKind.capsule_LookupReceiveSlot), 3])
    assert s.ep.queue == [sender]  # nothing committed: the sender still waits
    s.sys.call(s.node_slot, s.mint_label, [3, 4, s.node_slot, 64, 0xF, 0], [CNODE])
    s.syscall(Syscall.seL4_SysReply, 0, tag(0, 0))
    s.syscall(Syscall.seL4_SysRecv, s.srv_slot)
    assert s.kernel.current is client
    s.machine.registers[0] = PC
    s.kernel.syscall()
    assert s.info(client).extra_caps == 1 and s.info(client).label == 5
    assert isinstance(s.node.slots[9].cap, NotificationCap)


def test_a_cnode_operation_source_slot_is_found_through_the_server(scene: Scene) -> None:
    s = scene
    client = s.client()
    # N's slot 3: a guardless cap to N itself, so that the client names N's slots by
    # (index, depth 4) as CNode operations do.
    cdt.insert_child(s.sys.slots[s.node_slot], s.node.slots[3], CNodeCap(s.node.paddr, 4, 0, 0),
                     False)
    s.write_words(client, CAPS, [3])
    s.write_words(client, MSG + 32, [0xF])  # MR4: the rights
    words = _first_request(s, client, Syscall.seL4_SysCall, 3, tag(s.copy, 5, extra=1),
                           9, 4, 11, 4)
    assert words == [11, 4, int(LookupKind.capsule_LookupOperationSlot), 11]
    # The destination (empty, as it must be) was not a question: only the source was.
    s.install(11, s.ep_slot)
    s.syscall(Syscall.seL4_SysReply, 0, tag(0, 0))
    s.syscall(Syscall.seL4_SysRecv, s.srv_slot)
    s.machine.registers[0] = PC
    s.kernel.syscall()
    assert s.info(client).label == 0
    assert s.node.slots[9].cap == s.node.slots[11].cap


def test_a_deeper_missing_level_is_a_question_for_a_destination_too(scene: Scene) -> None:
    s = scene
    client = s.client()
    cdt.insert_child(s.sys.slots[s.node_slot], s.node.slots[3], CNodeCap(s.node.paddr, 4, 0, 0),
                     False)
    # dest (index 0x12, depth 8): N's slot 1 (empty) should hold the next level.
    words = _first_request(s, client, Syscall.seL4_SysCall, 3, tag(s.sys.label("CNodeDelete"),
                                                                   2), 0x12, 8)
    assert words == [0x12, 8, int(LookupKind.capsule_LookupOperationSlot), 1]


def test_a_denial_gives_sel4s_failure_and_is_not_asked_again(scene: Scene) -> None:
    s = scene
    client = s.client()
    _first_request(s, client, Syscall.seL4_SysCall, 5, tag(0, 0))
    s.syscall(Syscall.seL4_SysReply, 0, tag(1, 0))  # any non-zero label denies
    assert client.state is ThreadState.RESTART
    assert client.lookup_denied == ((s.node.paddr, 5, 64),)
    s.syscall(Syscall.seL4_SysRecv, s.srv_slot)
    s.machine.registers[0] = PC
    s.kernel.syscall()
    # seL4: invoking an empty slot is InvalidCapability 0 (the Call's error reply).
    assert s.info(client).label == Error.seL4_InvalidCapability
    assert s.window(client)[2] == 0
    assert client.lookup_denied == () and s.srv_ep.queue == [s.root]


def test_a_denied_receive_endpoint_is_sel4s_cap_fault(scene: Scene) -> None:
    s = scene
    client = s.client()
    client.fault_ep = 0  # no fault handler: the cap fault stops the thread
    _first_request(s, client, Syscall.seL4_SysRecv, 6)
    s.syscall(Syscall.seL4_SysReply, 0, tag(1, 0))
    s.syscall(Syscall.seL4_SysRecv, s.srv_slot)
    s.machine.registers[0] = PC
    s.kernel.syscall()
    assert client.state is ThreadState.INACTIVE
    assert client.stop_reason is not None and "cap fault in receive phase" in client.stop_reason


def test_a_server_whose_own_lookup_loops_through_its_node_is_refused(scene: Scene) -> None:
    s = scene
    client = s.client()
    _first_request(s, client, Syscall.seL4_SysCall, 5, tag(0, 0))
    # While answering, the server copies from N's empty slot 12: that lookup would ask
    # itself. It is answered at once as a denial: seL4's empty-source failure.
    free = s.sys.free_slots(1)
    reply = s.sys.call(CNODE, s.copy, [free, 64, 12, 4, 0xF], [s.node_slot])
    assert reply.label == Error.seL4_FailedLookup
    assert reply.words[:3] == [1, 2, 4]  # source, MissingCapability, 4 bits left
    assert s.kernel.current is s.root and s.root.lookup_denied == ()
    assert client.state is ThreadState.BLOCKED_ON_REPLY


def test_nesting_beyond_the_fixed_depth_is_refused(scene: Scene) -> None:
    s = scene
    client = s.client()
    _first_request(s, client, Syscall.seL4_SysCall, 5, tag(0, 0))
    # The root task answers the client. Make the client itself a server that was
    # answering another suspended lookup, and so on: a chain of MAX_SERVER_DEPTH
    # suspended lookups behind the root task, each to a different endpoint.
    chain = [client]
    for _ in range(MAX_SERVER_DEPTH - 1):
        t = s.thread(50)
        s.kernel.scheduler.dequeue(t)
        _, ep = s.endpoint()
        t.state = ThreadState.BLOCKED_ON_REPLY
        t.fault = IndexRequest(0, s.node.paddr, ep.paddr, 0, 0, 0, 0)
        cdt.insert_root(chain[-1].slots[CALLER], ReplyCap(t.paddr))
        chain.append(t)
    check_all(s.kernel)
    fresh = s.ep.paddr
    assert refused_request(s.kernel, s.root, fresh)  # one deeper than allowed
    assert refused_request(s.kernel, s.root, s.srv_ep.paddr)  # and a loop
    assert not refused_request(s.kernel, chain[1], fresh)  # a shorter chain is fine
    # Through the system call: the root task's lookup through N is refused at once.
    free = s.sys.free_slots(1)
    reply = s.sys.call(CNODE, s.copy, [free, 64, 12, 4, 0xF], [s.node_slot])
    assert reply.label == Error.seL4_FailedLookup and s.kernel.current is s.root


def test_deleting_the_server_endpoint_cancels_and_restarts_the_lookup(scene: Scene) -> None:
    s = scene
    client = s.client()
    s.syscall(Syscall.seL4_SysRecv, s.ep_slot)  # the server is busy elsewhere
    s.client_syscall(Syscall.seL4_SysCall, 5, tag(0, 0))
    assert client.state is ThreadState.BLOCKED_ON_SEND  # it never answers
    # Anyone holding the endpoint's cap (here: the client's own send restarts the
    # server's receive) deletes it; the client restarts and meets an ordinary CNode.
    s.kernel.current = s.root
    s.ep.queue.clear()
    s.ep.state = EndpointState.IDLE
    s.root.blocking = None
    s.kernel.set_thread_state(s.root, ThreadState.RUNNING)
    assert s.sys.call(CNODE, s.sys.label("CNodeDelete"), [s.srv_slot, 64]).label == 0
    assert client.state is ThreadState.RESTART and client.fault is None


def test_suspending_a_waiting_client_cancels_its_request(scene: Scene) -> None:
    s = scene
    client = s.client()
    _first_request(s, client, Syscall.seL4_SysCall, 5, tag(0, 0))
    assert s.sys.call(s.tcb_slot, s.sys.label("TCBSuspend")).label == 0
    assert client.state is ThreadState.INACTIVE and client.fault is None
    s.syscall(Syscall.seL4_SysReply, 0, tag(0, 0))  # the late answer finds nobody
    assert client.state is ThreadState.INACTIVE


def test_suspending_a_queued_request_forgets_it(scene: Scene) -> None:
    s = scene
    client = s.client()
    s.syscall(Syscall.seL4_SysRecv, s.ep_slot)  # the server is busy elsewhere
    s.client_syscall(Syscall.seL4_SysCall, 5, tag(0, 0))
    assert client.state is ThreadState.BLOCKED_ON_SEND and s.srv_ep.queue == [client]
    # What TCB_Suspend and TCB_Resume do (kernel.core.threads).
    suspend(s.kernel, client)
    assert client.state is ThreadState.INACTIVE and client.fault is None
    assert s.srv_ep.queue == []
    check_all(s.kernel)
    restart(s.kernel, client)
    assert client.state is ThreadState.RESTART
    assert s.kernel.registers_of(client)[0] == PC - 4  # still on its trap: it asks again
    check_all(s.kernel)


def test_the_views_show_the_node_and_the_suspended_lookup(scene: Scene) -> None:
    s = scene
    client = s.client()
    client.name = "client"
    _first_request(s, client, Syscall.seL4_SysCall, 5, tag(0, 0))
    text = to_text(snapshot(s.kernel))
    assert f"server-backed: endpoint={s.srv_ep.paddr:#x} badge=0x42" in text
    assert "suspended lookup: index request to the server of CNode" in text
    plain = to_json(snapshot(s.kernel))
    (view,) = [t for t in plain["threads"] if t["name"] == "client"]
    assert view["waiting_lookup"].startswith("index request to the server of CNode")
    assert view["cspace_root"]["cnode"]["server"] == \
        f"endpoint={s.srv_ep.paddr:#x} badge=0x42"


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_bind_errors(arch: Arch) -> None:
    s = Scene(arch)
    assert s.sys.call(s.node_slot, BIND, [], [s.srv_slot]).label == Error.seL4_TruncatedMessage
    assert s.sys.call(s.node_slot, BIND, [1], []).label == Error.seL4_TruncatedMessage
    assert s.bind(ep_slot=s.ntfn_slot) == Error.seL4_InvalidCapability
    no_write = s.mint(s.srv_slot, rights=Rights(write=False))
    assert s.bind(ep_slot=no_write) == Error.seL4_InvalidCapability
    assert s.node.server is None
    assert s.bind() == 0 and s.node.server is not None
    assert s.sys.call(s.node_slot, UNBIND).label == 0 and s.node.server is None


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_off_the_labels_are_illegal_and_lookups_are_sel4s(arch: Arch) -> None:
    s = Scene(arch, on=False)
    assert s.bind() == Error.seL4_IllegalOperation
    assert s.sys.call(s.node_slot, UNBIND).label == Error.seL4_IllegalOperation
    assert s.node.server is None
    client = s.client()
    s.syscall(Syscall.seL4_SysRecv, s.srv_slot)
    s.client_syscall(Syscall.seL4_SysCall, 5, tag(0, 0))
    assert s.info(client).label == Error.seL4_InvalidCapability
    assert s.kernel.current is client and client.state is ThreadState.RUNNING


def test_unbinding_leaves_an_ordinary_cnode(scene: Scene) -> None:
    s = scene
    assert s.sys.call(s.node_slot, UNBIND).label == 0 and s.node.server is None
    client = s.client()
    s.syscall(Syscall.seL4_SysRecv, s.srv_slot)
    assert s.kernel.current is client
    s.client_syscall(Syscall.seL4_SysCall, 5, tag(0, 0))
    assert s.info(client).label == Error.seL4_InvalidCapability
    assert s.srv_ep.queue == [s.root]
