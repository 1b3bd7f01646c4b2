"""Property: random system calls of a client whose CSpace is a server-backed CNode
(capsule's extension, not seL4), interleaved with a server that answers, denies, installs,
deletes, unbinds and rebinds at random, and with the client suspended and resumed, keep
every invariant at every kernel exit, never raise out of the kernel, and suspend only as
the contract says.

The scene is tests/unit/test_server_cnode.py's: the root task serves, the client's CPtr
k names the node's slot k. Whoever the scheduler runs acts next: the client makes a
random system call (Send, NBSend, Call, Recv, NBRecv, Reply, ReplyRecv, or the restart of
its last one with its registers as they are), the root task a random server action.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kernel.abi.arch import Arch
from kernel.abi.constants import Syscall
from kernel.abi.extensions import TraversalLabel
from kernel.model.caps import CNodeCap
from kernel.model.faults import IndexRequest
from kernel.model.tcb import ThreadState
from tests.abi.support import CNODE
from tests.fuzzing import fuzzed, longer
from tests.unit.test_ipc import CAPS, MSG, tag
from tests.unit.test_server_cnode import PC, Scene

SYSCALLS = [Syscall.seL4_SysSend, Syscall.seL4_SysNBSend, Syscall.seL4_SysCall,
            Syscall.seL4_SysRecv, Syscall.seL4_SysNBRecv, Syscall.seL4_SysReply,
            Syscall.seL4_SysReplyRecv]

cptr = st.one_of(st.integers(0, 15), st.integers(0, (1 << 64) - 1))
client_step = st.tuples(
    st.sampled_from(["syscall", "syscall", "restart"]),
    st.sampled_from(SYSCALLS),
    cptr,
    st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 0x1030, 0x1031]),  # labels: some CNode ops
    st.integers(0, 6),
    st.lists(cptr, max_size=3),
    st.lists(st.integers(0, 20), min_size=5, max_size=5),
)
server_step = st.tuples(
    st.sampled_from(["recv", "reply", "deny", "install", "install_node", "delete",
                     "unbind", "bind", "suspend", "resume"]),
    st.integers(0, 15),
)


@fuzzed(40)
@given(arch=st.sampled_from(list(Arch)),
       clients=st.lists(client_step, min_size=1, max_size=longer(12)),
       servers=st.lists(server_step, min_size=1, max_size=longer(12)))
def test_random_syscalls_through_a_server_backed_node(arch: Arch, clients: list,  # type: ignore[type-arg]
                                                      servers: list) -> None:  # type: ignore[type-arg]
    s = Scene(arch)
    assert s.bind() == 0
    client = s.client()
    s.syscall(Syscall.seL4_SysRecv, s.srv_slot)
    delete = s.sys.label("CNodeDelete")
    suspend, resume = s.sys.label("TCBSuspend"), s.sys.label("TCBResume")
    for i in range(max(len(clients), len(servers)) * 2):
        current = s.kernel.current
        if s.kernel.stop is not None or current is None:
            break
        if current is client:
            kind, number, target, label, length, extra, words = clients[i % len(clients)]
            if kind == "restart":
                s.machine.registers[0] = PC
                s.kernel.syscall()
            else:
                s.write_words(client, CAPS, list(extra))
                s.write_words(client, MSG + 32, words[4:])
                s.client_syscall(number, target, tag(label, length, extra=len(extra)),
                                 *words[:4])
            fault = client.fault
            if isinstance(fault, IndexRequest):
                # Suspended: only on an empty slot of the node, with the pc rewound.
                assert s.node.server is not None
                assert fault.node == s.node.paddr and s.node.slots[fault.slot].is_empty
                assert 0 <= fault.address < (1 << fault.bits_left)
                assert fault.kind in (0, 1, 2, 3, 4)
                assert s.kernel.registers_of(client)[0] == PC - 4
            elif client.state.runnable:
                assert client.lookup_denied == ()
            continue
        assert current is s.root
        action, index = servers[i % len(servers)]
        if action == "recv":
            s.syscall(Syscall.seL4_SysRecv, s.srv_slot)
            info = s.info(s.root)
            if s.kernel.current is s.root and info.label == TraversalLabel.capsule_IndexRequest:
                assert info.length == 4 and s.window(s.root)[0] == 0x42
        elif action in ("reply", "deny"):
            s.syscall(Syscall.seL4_SysReply, 0, tag(0 if action == "reply" else 1, 0))
        elif action == "install":
            if s.node.slots[index].is_empty:
                s.install(index, [s.ntfn_slot, s.ep_slot, s.srv_slot][index % 3], badge=index)
        elif action == "install_node":
            if s.node.slots[index].is_empty:
                s.sys.call(s.node_slot, s.mint_label, [index, 4, s.node_slot, 64, 0xF, 0],
                           [CNODE])
        elif action == "delete":
            s.sys.call(s.node_slot, delete, [index, 4])
        elif action == "unbind":
            s.sys.call(s.node_slot, int(TraversalLabel.capsule_CNodeUnbindServer))
        elif action == "bind":
            s.bind(badge=0x42)
        elif action == "suspend":
            s.sys.call(s.tcb_slot, suspend)
        else:
            s.sys.call(s.tcb_slot, resume)
        if client.state is ThreadState.INACTIVE:
            assert not isinstance(client.fault, IndexRequest)
    node_caps = [sl.cap for sl in s.node.slots if isinstance(sl.cap, CNodeCap)]
    assert all(c.paddr == s.node.paddr for c in node_caps)
