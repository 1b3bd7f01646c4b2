/*
 * capsule's server-backed CNodes (virtualizable capability-space traversal, NOT seL4;
 * the image turns the extension on): a client thread whose whole CSpace is a CNode
 * bound to a server's endpoint, the server (the root task) filling its slots on demand.
 *
 * - The client (priority 254) names node slot k by CPtr k (its CSpace root has a guard
 *   making CPtrs 64 bits). When its system call meets an empty slot, the kernel
 *   suspends it and the server receives an index request (label capsule_IndexRequest,
 *   the binding's badge, MRs: address, bits left, which lookup, slot); the server
 *   installs a cap with seL4_CNode_Mint and replies 0, or denies with another label.
 *   The client's system call then restarts from its beginning, transparently.
 * - The server (priority 255) loops on its endpoint: index requests, the client's echo
 *   calls (through a badged cap to the same endpoint that the server itself installed
 *   in the node), and the client's "done".
 */
#include <sel4/gen/capsule_traversal.h>
#include <string.h>
#include <thread.h>

#include "checks.h"

static seL4_CPtr pool;

#define NTHREADS 2
#include "threads_util.h"

#define NODE_BADGE 0x42
#define ECHO_BADGE 0x100
#define ECHO_SLOT 5
#define LABEL_ECHO 0x77
#define LABEL_DONE 0xd0e

/* ---- the server's side ---- */

static seL4_CPtr srv_ep, ntfn, recv_slot;
static seL4_CPtr node;          /* the server-backed CNode being served */
static unsigned node_bits;
static volatile unsigned long requests;
static volatile seL4_Word last_req[4];
static volatile seL4_Word kinds[4];
static volatile seL4_Word echo_extra_tag;
static volatile int deny_slot;  /* the slot the server denies (-1: none) */
static volatile int loop_slot;  /* the slot whose answer makes the server loop (-1) */
static volatile seL4_Error loop_error;

/* Answer one index request: what goes into `slot` of the node (0 = deny). */
static int answer(seL4_Word slot)
{
    if ((int)slot == deny_slot) {
        return 0;
    }
    if ((int)slot == loop_slot) {
        /* While answering, look a slot up through the very node served (slot 12, empty):
         * that would ask this server itself, so the kernel refuses at once: seL4's
         * failure for an empty source slot. Then deny. */
        seL4_CPtr tmp = alloc_slot();
        loop_error = seL4_CNode_Copy(ROOT, tmp, DEPTH, node, 12, node_bits, seL4_AllRights);
        return 0;
    }
    if (slot == ECHO_SLOT) {
        return seL4_CNode_Mint(node, slot, node_bits, ROOT, srv_ep, DEPTH, seL4_AllRights,
                               ECHO_BADGE) == seL4_NoError;
    }
    return seL4_CNode_Mint(node, slot, node_bits, ROOT, ntfn, DEPTH, seL4_AllRights,
                           1ul << (slot % 32)) == seL4_NoError;
}

/* Serve the node until the client says it is done. */
static void serve(void)
{
    for (;;) {
        seL4_Word badge;
        seL4_SetCapReceivePath(ROOT, recv_slot, DEPTH);
        seL4_MessageInfo_t info = seL4_Recv(srv_ep, &badge);
        seL4_Word label = seL4_MessageInfo_get_label(info);
        if (label == capsule_IndexRequest && badge == NODE_BADGE) {
            for (int i = 0; i < 4; i++) {
                last_req[i] = seL4_GetMR(i);
            }
            if (requests < 4) {
                kinds[requests] = last_req[capsule_IndexRequest_kind];
            }
            requests++;
            int ok = answer(last_req[capsule_IndexRequest_slot]);
            seL4_Reply(seL4_MessageInfo_new(ok ? 0 : 1, 0, 0, 0));
        } else if (label == LABEL_ECHO && badge == ECHO_BADGE) {
            echo_extra_tag = seL4_MessageInfo_get_extraCaps(info)
                                 ? seL4_DebugCapIdentify(recv_slot) : 0;
            if (echo_extra_tag) {
                seL4_CNode_Delete(ROOT, recv_slot, DEPTH);
            }
            seL4_SetMR(0, seL4_GetMR(0) + 1);
            seL4_Reply(seL4_MessageInfo_new(LABEL_ECHO, 0, 0, 1));
        } else if (label == LABEL_DONE) {
            return;
        }
    }
}

/* A fresh node of 2^bits slots bound to `ep`, and client thread i whose CSpace it is. */
static int start_client(int i, unsigned bits, seL4_CPtr ep, thread_entry_fn fn, seL4_CPtr *out)
{
    seL4_CPtr n;
    EXPECT_OK(make_objects(pool, seL4_CapTableObject, bits, 1, &n));
    EXPECT_OK(capsule_CNode_BindServer(n, ep, NODE_BADGE));
    EXPECT_OK(make(i, "client", fn, 0, 254));
    seL4_Word guard = seL4_CNode_CapData_new(0, seL4_WordBits - bits).words[0];
    EXPECT_OK(seL4_TCB_SetSpace(threads[i].tcb, 0, n, guard, seL4_CapInitThreadVSpace, 0));
    *out = n;
    return 0;
}

static int serve_client(unsigned bits, thread_entry_fn fn)
{
    requests = 0;
    deny_slot = -1;
    loop_slot = -1;
    node_bits = bits;
    EXPECT_PASS(start_client(0, bits, srv_ep, fn, &node));
    EXPECT_OK(thread_start(&threads[0]));
    serve();
    EXPECT_OK(seL4_TCB_Suspend(threads[0].tcb));
    return 0;
}

/* ---- the clients (they hold caps only in their node) ---- */

static volatile seL4_Word results[8];
static volatile unsigned long requests_seen[4];

static void done(void)
{
    seL4_Send(ECHO_SLOT, seL4_MessageInfo_new(LABEL_DONE, 0, 0, 0));
    for (;;) {
        seL4_Yield();
    }
}

static seL4_Word echo(seL4_Word x)
{
    seL4_SetMR(0, x);
    seL4_MessageInfo_t info = seL4_Call(ECHO_SLOT, seL4_MessageInfo_new(LABEL_ECHO, 0, 0, 1));
    return seL4_MessageInfo_get_label(info) == LABEL_ECHO ? seL4_GetMR(0) : ~0ul;
}

static void cached_client(void *arg)
{
    (void)arg;
    results[0] = echo(41);
    requests_seen[0] = requests;
    results[1] = echo(1);
    requests_seen[1] = requests;
    done();
}

static int first_from_the_server_then_from_the_cache(void)
{
    EXPECT_PASS(serve_client(4, cached_client));
    EXPECT_EQ(results[0], 42);
    EXPECT_EQ(requests_seen[0], 1);
    EXPECT_EQ(kinds[0], capsule_LookupInvokedCap);
    EXPECT_EQ(last_req[capsule_IndexRequest_address], ECHO_SLOT);
    EXPECT_EQ(last_req[capsule_IndexRequest_bits_left], 64);
    EXPECT_EQ(last_req[capsule_IndexRequest_slot], ECHO_SLOT);
    EXPECT_EQ(results[1], 2);
    EXPECT_EQ(requests_seen[1], 1); /* the second call: from the cache */
    EXPECT_EQ(requests, 1);
    return 0;
}

static void extra_cap_client(void *arg)
{
    (void)arg;
    seL4_SetCap(0, 7);
    seL4_SetMR(0, 10);
    seL4_MessageInfo_t info = seL4_Call(ECHO_SLOT, seL4_MessageInfo_new(LABEL_ECHO, 0, 1, 1));
    results[0] = seL4_MessageInfo_get_label(info);
    results[1] = seL4_GetMR(0);
    done();
}

static int extra_caps_found_through_the_server(void)
{
    echo_extra_tag = 0;
    EXPECT_PASS(serve_client(4, extra_cap_client));
    EXPECT_EQ(results[0], LABEL_ECHO);
    EXPECT_EQ(results[1], 11);
    EXPECT_EQ(kinds[0], capsule_LookupInvokedCap);
    EXPECT_EQ(kinds[1], capsule_LookupExtraCap);
    EXPECT_EQ(echo_extra_tag, CAPSULE_CAPTAG_NOTIFICATION_CAP);
    return 0;
}

static void denied_client(void *arg)
{
    (void)arg;
    seL4_MessageInfo_t info = seL4_Call(9, seL4_MessageInfo_new(0, 0, 0, 0));
    results[0] = seL4_MessageInfo_get_label(info);
    results[1] = seL4_GetMR(0);
    requests_seen[0] = requests;
    done();
}

static int a_denied_lookup_is_sel4s_failure(void)
{
    requests = 0;
    node_bits = 4;
    deny_slot = 9;
    loop_slot = -1;
    EXPECT_PASS(start_client(0, 4, srv_ep, denied_client, &node));
    EXPECT_OK(thread_start(&threads[0]));
    serve();
    EXPECT_OK(seL4_TCB_Suspend(threads[0].tcb));
    /* seL4: invoking an empty slot is InvalidCapability 0; asked once only. */
    EXPECT_EQ(results[0], seL4_InvalidCapability);
    EXPECT_EQ(results[1], 0);
    EXPECT_EQ(requests_seen[0], 1);
    return 0;
}

#define LAZY_FIRST 16
#define LAZY_COUNT 10000

static void lazy_client(void *arg)
{
    (void)arg;
    for (seL4_CPtr i = LAZY_FIRST; i < LAZY_FIRST + LAZY_COUNT; i++) {
        seL4_Signal(i);
    }
    requests_seen[0] = requests;
    seL4_Word wrong = 0;
    for (seL4_CPtr i = LAZY_FIRST; i < LAZY_FIRST + LAZY_COUNT; i++) {
        if (seL4_DebugCapIdentify(i) != CAPSULE_CAPTAG_NOTIFICATION_CAP) {
            wrong++;
        }
    }
    results[0] = wrong;
    for (seL4_CPtr i = LAZY_FIRST; i < LAZY_FIRST + 100; i++) {
        seL4_Signal(i); /* from the cache */
    }
    requests_seen[1] = requests;
    done();
}

static int a_lazily_populated_cspace_of_10000_slots(void)
{
    EXPECT_PASS(serve_client(14, lazy_client));
    EXPECT_EQ(requests_seen[0], LAZY_COUNT);
    EXPECT_EQ(results[0], 0);
    EXPECT_EQ(requests_seen[1], LAZY_COUNT);
    EXPECT_EQ(requests, LAZY_COUNT + 1); /* and the echo slot for "done" */
    seL4_Word signalled;
    seL4_Poll(ntfn, &signalled);
    EXPECT_EQ(signalled, ~0ul >> 32); /* badges 1 << (slot % 32): all 32 bits */
    return 0;
}

static void looping_client(void *arg)
{
    (void)arg;
    seL4_MessageInfo_t info = seL4_Call(11, seL4_MessageInfo_new(0, 0, 0, 0));
    results[0] = seL4_MessageInfo_get_label(info);
    done();
}

static volatile int stuck_returned;

static void stuck_client(void *arg)
{
    (void)arg;
    seL4_Signal(3); /* its node's server never answers */
    stuck_returned = 1;
    for (;;) {
        seL4_Yield();
    }
}

static int a_misbehaving_server_does_not_stop_the_system(void)
{
    /* A server whose own lookup goes through the node it serves is refused, not hung. */
    requests = 0;
    node_bits = 4;
    deny_slot = -1;
    loop_slot = 11;
    loop_error = seL4_NoError;
    EXPECT_PASS(start_client(0, 4, srv_ep, looping_client, &node));
    EXPECT_OK(thread_start(&threads[0]));
    serve();
    EXPECT_OK(seL4_TCB_Suspend(threads[0].tcb));
    EXPECT_EQ(loop_error, seL4_FailedLookup);
    EXPECT_EQ(results[0], seL4_InvalidCapability);

    /* A server that never answers: its client waits; everything else runs on, and the
     * client is cancelled by suspending it, as any blocked thread. */
    seL4_CPtr dead_ep, dead_node;
    EXPECT_OK(make_objects(pool, seL4_EndpointObject, 0, 1, &dead_ep));
    stuck_returned = 0;
    EXPECT_PASS(start_client(1, 4, dead_ep, stuck_client, &dead_node));
    EXPECT_OK(thread_start(&threads[1]));
    EXPECT_OK(let_run());
    EXPECT_EQ(stuck_returned, 0);
    /* The rest of the system: another client is served meanwhile. */
    EXPECT_PASS(serve_client(4, cached_client));
    EXPECT_EQ(results[0], 42);
    EXPECT_OK(seL4_TCB_Suspend(threads[1].tcb));
    EXPECT_OK(let_run());
    EXPECT_EQ(stuck_returned, 0);
    return 0;
}

static const struct check checks[] = {
    {"VTRAV0001", "An endpoint behind a server-backed node: first from the server, then cached",
     first_from_the_server_then_from_the_cache},
    {"VTRAV0002", "A message's extra caps are found through the server",
     extra_caps_found_through_the_server},
    {"VTRAV0003", "A denied lookup is seL4's failure, asked once",
     a_denied_lookup_is_sel4s_failure},
    {"VTRAV0004", "A capability space of 10,000 slots filled on demand",
     a_lazily_populated_cspace_of_10000_slots},
    {"VTRAV0005", "A looping or silent server does not stop the system",
     a_misbehaving_server_does_not_stop_the_system},
};

static int setup(void)
{
    EXPECT_OK(make_objects(pool, seL4_EndpointObject, 0, 1, &srv_ep));
    EXPECT_OK(make_objects(pool, seL4_NotificationObject, 0, 1, &ntfn));
    recv_slot = alloc_slot();
    return 0;
}

int main(void)
{
    slots_init();
    pool = largest_untyped(0, 0);
    if (setup() != 0) {
        printf("setup failed: %s\nverdict: 0 passed, 1 failed\n", check_detail);
        return 1;
    }
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
