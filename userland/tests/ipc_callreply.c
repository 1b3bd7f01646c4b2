/*
 * Endpoint IPC between threads (non-MCS seL4 semantics): Call / ReplyRecv, long
 * messages through the IPC buffer, the length rules, Send / Recv / NBSend / NBRecv,
 * badges, the caller slot (Reply, SaveCaller, Send on a saved reply cap) and the
 * scheduling decisions IPC makes.
 *
 * Every expected value follows from seL4's rules (abi/ipc.md):
 * - a message is MR0..MR(length-1), length clamped to seL4_MsgMaxLength (120); MR0-MR3
 *   travel in registers, MR4 on through the IPC buffers, and only when both threads
 *   have one (else the receiver's length is min(length, 4));
 * - the receiver's badge is the badge of the sender's endpoint cap;
 * - an endpoint queue is FIFO; NBSend without a waiting receiver drops the message,
 *   NBRecv without a waiting sender returns badge 0;
 * - Reply with an empty caller slot does nothing; SaveCaller moves the reply cap out of
 *   the caller slot, and a Send on it is the reply (the cap is used up);
 * - scheduling (seL4's possibleSwitchTo / schedule): a thread woken by IPC runs at once
 *   if it has a higher priority than the current thread, or, at equal priority, when
 *   the current thread has blocked (Call and ReplyRecv switch straight to the partner,
 *   ahead of other ready threads of that priority); Resume puts a thread at the front
 *   of its priority's queue, Yield the current thread at the back.
 *
 * The root task runs at priority 255; threads it makes at 255 run only when it blocks
 * or yields.
 */
#include <string.h>
#include <thread.h>

#include "checks.h"

static seL4_CPtr pool;

#define NTHREADS 4
#include "threads_util.h"

static seL4_Error new_endpoint(seL4_CPtr *ep)
{
    return make_objects(pool, seL4_EndpointObject, 0, 1, ep);
}

/* A copy of `ep` with all rights and `badge`, in a fresh slot. */
static seL4_Error mint(seL4_CPtr ep, seL4_Word badge, seL4_CPtr *out)
{
    *out = alloc_slot();
    return seL4_CNode_Mint(ROOT, *out, DEPTH, ROOT, ep, DEPTH, seL4_AllRights, badge);
}

#define SENTINEL(i) (0xdead000000000000UL + (seL4_Word)(i))

/* Fill the current thread's whole msg[] with sentinels (to see what IPC wrote). */
static void fill_sentinels(void)
{
    for (int i = 0; i < seL4_MsgMaxLength; i++) {
        seL4_SetMR(i, SENTINEL(i));
    }
}

/* ---- an echo server: replies label + 1 and MR i = MR i * 3 + i ---- */

#define CLAMP_LABEL 0x999 /* the server replies with a length field of 127 */

static seL4_CPtr echo_ep;
static volatile unsigned long echo_rounds;
static volatile seL4_Word echo_len, echo_badge, echo_extra;

static seL4_Word echo_word(seL4_Word v, int i)
{
    return v * 3 + (seL4_Word)i;
}

static void echo_server(void *arg)
{
    (void)arg;
    seL4_Word badge;
    seL4_MessageInfo_t info = seL4_Recv(echo_ep, &badge);
    for (;;) {
        seL4_Word n = seL4_MessageInfo_get_length(info);
        seL4_Word label = seL4_MessageInfo_get_label(info);
        for (seL4_Word i = 0; i < n; i++) {
            seL4_SetMR((int)i, echo_word(seL4_GetMR((int)i), (int)i));
        }
        echo_len = n;
        echo_badge = badge;
        echo_extra = seL4_MessageInfo_get_extraCaps(info);
        echo_rounds++;
        seL4_Word reply_len = label == CLAMP_LABEL ? 127 : n;
        info = seL4_ReplyRecv(echo_ep, seL4_MessageInfo_new(label + 1, 0, 0, reply_len),
                              &badge);
    }
}

static seL4_Word round_word(int round, int i)
{
    return 0x1000000UL * (seL4_Word)(round + 1) + 0x10001UL * (seL4_Word)i;
}

/* One Call to the echo server with `len` words; checks the whole reply. */
static int echo_round(int round, seL4_Word label, seL4_Word len)
{
    fill_sentinels();
    for (seL4_Word i = 0; i < len && i < seL4_MsgMaxLength; i++) {
        seL4_SetMR((int)i, round_word(round, (int)i));
    }
    seL4_Word sent = len > seL4_MsgMaxLength ? seL4_MsgMaxLength : len;
    seL4_GetIPCBuffer()->userData = 0x5eed;
    seL4_MessageInfo_t reply = seL4_Call(echo_ep, seL4_MessageInfo_new(label, 0, 0, len));
    if (echo_len != sent) {
        return fail("round %d: the server got length %lu, expected %lu", round,
                    (unsigned long)echo_len, (unsigned long)sent);
    }
    EXPECT_EQ(echo_badge, 0);
    EXPECT_EQ(seL4_MessageInfo_get_label(reply), label + 1);
    EXPECT_EQ(seL4_MessageInfo_get_length(reply), sent);
    EXPECT_EQ(seL4_MessageInfo_get_extraCaps(reply), 0);
    EXPECT_EQ(seL4_MessageInfo_get_capsUnwrapped(reply), 0);
    for (seL4_Word i = 0; i < sent; i++) {
        seL4_Word want = echo_word(round_word(round, (int)i), (int)i);
        if (seL4_GetMR((int)i) != want) {
            return fail("round %d: MR%lu = %#lx, expected %#lx", round, (unsigned long)i,
                        (unsigned long)seL4_GetMR((int)i), (unsigned long)want);
        }
    }
    /* Buffer words past the reply were not written. */
    for (seL4_Word i = sent < 4 ? 4 : sent; i < seL4_MsgMaxLength; i++) {
        if (seL4_GetMR((int)i) != SENTINEL(i)) {
            return fail("round %d: MR%lu past the reply changed to %#lx", round,
                        (unsigned long)i, (unsigned long)seL4_GetMR((int)i));
        }
    }
    EXPECT_EQ(seL4_GetIPCBuffer()->userData, 0x5eed);
    return 0;
}

static int start_echo_server(void)
{
    echo_rounds = 0;
    EXPECT_OK(new_endpoint(&echo_ep));
    EXPECT_OK(make(0, "echo", echo_server, 0, 255));
    EXPECT_OK(thread_start(&threads[0]));
    return 0;
}

static int call_reply_rounds(void)
{
    EXPECT_PASS(start_echo_server());
    static const struct {
        seL4_Word label, len;
    } rounds[] = {
        {1, 0}, {2, 1}, {3, 4}, {4, 5}, {0x7ffff, 64}, {0xffffffffffffeUL, 120},
    };
    for (int r = 0; r < (int)(sizeof(rounds) / sizeof(rounds[0])); r++) {
        EXPECT_PASS(echo_round(r, rounds[r].label, rounds[r].len));
    }
    EXPECT_EQ(echo_rounds, 6);
    return 0;
}

static int length_clamped(void)
{
    EXPECT_PASS(start_echo_server());
    /* A length field of 127 is sent as 120 words. */
    EXPECT_PASS(echo_round(0, 7, 127));
    /* A reply with a length field of 127 arrives as 120 words too. */
    for (int i = 0; i < seL4_MsgMaxLength; i++) {
        seL4_SetMR(i, (seL4_Word)i);
    }
    seL4_MessageInfo_t reply =
        seL4_Call(echo_ep, seL4_MessageInfo_new(CLAMP_LABEL, 0, 0, 120));
    EXPECT_EQ(echo_len, 120);
    EXPECT_EQ(seL4_MessageInfo_get_label(reply), CLAMP_LABEL + 1);
    EXPECT_EQ(seL4_MessageInfo_get_length(reply), 120);
    EXPECT_EQ(seL4_GetMR(119), echo_word(119, 119));
    EXPECT_EQ(seL4_GetMR(4), echo_word(4, 4));
    return 0;
}

/* ---- a thread without an IPC buffer ---- */

static seL4_CPtr nobuf_ep;
static volatile seL4_Word nobuf_len, nobuf_label, nobuf_mr[6];

static void no_buffer_thread(void *arg)
{
    (void)arg;
    /* libsel4's msg[] is ordinary memory here: the kernel knows of no IPC buffer. */
    for (int i = 0; i < 10; i++) {
        seL4_SetMR(i, 0x100 + (seL4_Word)i);
    }
    seL4_Send(nobuf_ep, seL4_MessageInfo_new(5, 0, 0, 10));
    fill_sentinels();
    seL4_Word badge;
    seL4_MessageInfo_t info = seL4_Recv(nobuf_ep, &badge);
    nobuf_len = seL4_MessageInfo_get_length(info);
    nobuf_label = seL4_MessageInfo_get_label(info);
    for (int i = 0; i < 6; i++) {
        nobuf_mr[i] = seL4_GetMR(i);
    }
}

static int no_ipc_buffer_four_words(void)
{
    EXPECT_OK(new_endpoint(&nobuf_ep));
    EXPECT_OK(make(0, "nobuf", no_buffer_thread, 0, 255));
    EXPECT_OK(seL4_TCB_SetIPCBuffer(threads[0].tcb, 0, seL4_CapNull));
    nobuf_len = 99;
    EXPECT_OK(thread_start(&threads[0]));
    fill_sentinels();
    seL4_Word badge = 1;
    seL4_MessageInfo_t info = seL4_Recv(nobuf_ep, &badge); /* the thread sends 10 words */
    EXPECT_EQ(badge, 0);
    EXPECT_EQ(seL4_MessageInfo_get_label(info), 5);
    EXPECT_EQ(seL4_MessageInfo_get_length(info), 4);
    for (int i = 0; i < 4; i++) {
        EXPECT_EQ(seL4_GetMR(i), 0x100 + (seL4_Word)i);
    }
    for (int i = 4; i < 10; i++) {
        EXPECT_EQ(seL4_GetMR(i), SENTINEL(i));
    }
    /* It is blocked in Recv now (it ran until it blocked): send it 10 words back. */
    for (int i = 0; i < 10; i++) {
        seL4_SetMR(i, 0x200 + (seL4_Word)i);
    }
    seL4_Send(nobuf_ep, seL4_MessageInfo_new(6, 0, 0, 10));
    seL4_Yield();
    EXPECT_EQ(nobuf_len, 4);
    EXPECT_EQ(nobuf_label, 6);
    for (int i = 0; i < 4; i++) {
        EXPECT_EQ(nobuf_mr[i], 0x200 + (seL4_Word)i);
    }
    EXPECT_EQ(nobuf_mr[4], SENTINEL(4));
    EXPECT_EQ(nobuf_mr[5], SENTINEL(5));
    return 0;
}

/* ---- Send / Recv / NBSend / NBRecv ---- */

static seL4_CPtr basic_ep, basic_badged;

static void two_sends(void *arg)
{
    (void)arg;
    seL4_SetMR(0, 0xa);
    seL4_Send(basic_badged, seL4_MessageInfo_new(0x21, 0, 0, 1));
    seL4_SetMR(0, 0xb);
    seL4_Send(basic_badged, seL4_MessageInfo_new(0x22, 0, 0, 1));
}

static int send_recv_basics(void)
{
    EXPECT_OK(new_endpoint(&basic_ep));
    EXPECT_OK(mint(basic_ep, 0x66, &basic_badged));
    seL4_Word badge = 0x1234;
    /* Nothing is queued: NBRecv returns at once with badge 0. */
    seL4_NBRecv(basic_ep, &badge);
    EXPECT_EQ(badge, 0);
    /* Nobody waits: NBSend drops the message. */
    seL4_CPtr dropped;
    EXPECT_OK(mint(basic_ep, 0x55, &dropped));
    seL4_SetMR(0, 0xdd);
    seL4_NBSend(dropped, seL4_MessageInfo_new(0x20, 0, 0, 1));
    badge = 0x1234;
    seL4_NBRecv(basic_ep, &badge);
    EXPECT_EQ(badge, 0);
    /* A blocking Send waits for a receiver; NBRecv takes it. */
    EXPECT_OK(make(0, "sender", two_sends, 0, 255));
    EXPECT_OK(thread_start(&threads[0]));
    seL4_Yield(); /* the sender blocks in its first Send */
    seL4_MessageInfo_t info = seL4_NBRecv(basic_ep, &badge);
    EXPECT_EQ(badge, 0x66);
    EXPECT_EQ(seL4_MessageInfo_get_label(info), 0x21);
    EXPECT_EQ(seL4_MessageInfo_get_length(info), 1);
    EXPECT_EQ(seL4_GetMR(0), 0xa);
    /* The sender is runnable but has not run (equal priority): nothing is queued. */
    badge = 0x1234;
    seL4_NBRecv(basic_ep, &badge);
    EXPECT_EQ(badge, 0);
    /* A blocking Recv gets the second message once the sender has run. */
    info = seL4_Recv(basic_ep, &badge);
    EXPECT_EQ(badge, 0x66);
    EXPECT_EQ(seL4_MessageInfo_get_label(info), 0x22);
    EXPECT_EQ(seL4_GetMR(0), 0xb);
    return 0;
}

/* ---- FIFO order of blocked senders ---- */

static seL4_CPtr fifo_ep, fifo_caps[3];

static void fifo_sender(void *arg)
{
    seL4_Word i = (seL4_Word)arg;
    seL4_SetMR(0, 0x70 + i);
    seL4_Send(fifo_caps[i], seL4_MessageInfo_new(i, 0, 0, 1));
}

static int senders_queue_fifo(void)
{
    EXPECT_OK(new_endpoint(&fifo_ep));
    for (int i = 0; i < 3; i++) {
        EXPECT_OK(mint(fifo_ep, 0xf0 + (seL4_Word)i, &fifo_caps[i]));
    }
    /* Resumed 0, 1, 2 at one priority: they run (and queue on the endpoint) 2, 1, 0. */
    EXPECT_OK(make(0, "s0", fifo_sender, (void *)0, 255));
    EXPECT_OK(make(1, "s1", fifo_sender, (void *)1, 255));
    EXPECT_OK(make(2, "s2", fifo_sender, (void *)2, 255));
    for (int i = 0; i < 3; i++) {
        EXPECT_OK(thread_start(&threads[i]));
    }
    seL4_Yield();
    for (int k = 0; k < 3; k++) {
        seL4_Word badge = 0, want = 2 - (seL4_Word)k;
        seL4_MessageInfo_t info = seL4_NBRecv(fifo_ep, &badge);
        EXPECT_EQ(badge, 0xf0 + want);
        EXPECT_EQ(seL4_MessageInfo_get_label(info), want);
        EXPECT_EQ(seL4_GetMR(0), 0x70 + want);
    }
    return 0;
}

/* ---- a server telling two clients apart by badge ---- */

static seL4_CPtr badge_ep, client_caps[2];
static volatile seL4_Word client_reply[2], client_label[2];

static void badge_client(void *arg)
{
    seL4_Word i = (seL4_Word)arg;
    seL4_SetMR(0, 0x1000 * (i + 1));
    seL4_MessageInfo_t info = seL4_Call(client_caps[i], seL4_MessageInfo_new(0x40, 0, 0, 1));
    client_label[i] = seL4_MessageInfo_get_label(info);
    client_reply[i] = seL4_GetMR(0);
}

static int server_tells_clients_apart(void)
{
    EXPECT_OK(new_endpoint(&badge_ep));
    EXPECT_OK(mint(badge_ep, 0x11, &client_caps[0]));
    EXPECT_OK(mint(badge_ep, 0x22, &client_caps[1]));
    client_reply[0] = client_reply[1] = 0;
    EXPECT_OK(make(0, "client1", badge_client, (void *)0, 255));
    EXPECT_OK(make(1, "client2", badge_client, (void *)1, 255));
    EXPECT_OK(thread_start(&threads[0]));
    EXPECT_OK(thread_start(&threads[1]));
    seL4_Word seen[2], payload[2];
    seL4_Word badge;
    /* Recv blocks; client2 (resumed last) runs first and Calls. */
    seL4_MessageInfo_t info = seL4_Recv(badge_ep, &badge);
    for (int k = 0; k < 2; k++) {
        seen[k] = badge;
        payload[k] = seL4_GetMR(0);
        EXPECT_EQ(seL4_MessageInfo_get_label(info), 0x40);
        seL4_SetMR(0, badge * 0x100 + payload[k]);
        seL4_MessageInfo_t reply = seL4_MessageInfo_new(badge, 0, 0, 1);
        if (k == 0) {
            info = seL4_ReplyRecv(badge_ep, reply, &badge);
        } else {
            seL4_Reply(reply);
        }
    }
    seL4_Yield(); /* client1 takes its reply */
    EXPECT_EQ(seen[0], 0x22);
    EXPECT_EQ(payload[0], 0x2000);
    EXPECT_EQ(seen[1], 0x11);
    EXPECT_EQ(payload[1], 0x1000);
    EXPECT_EQ(client_label[0], 0x11);
    EXPECT_EQ(client_reply[0], 0x1100 + 0x1000);
    EXPECT_EQ(client_label[1], 0x22);
    EXPECT_EQ(client_reply[1], 0x2200 + 0x2000);
    return 0;
}

/* ---- the caller slot: Reply, SaveCaller, Send on the saved reply cap ---- */

static seL4_CPtr caller_ep;
static volatile int caller_done;
static volatile seL4_Word caller_reply, caller_label, caller_len;

static void one_call(void *arg)
{
    (void)arg;
    seL4_SetMR(0, 0x42);
    seL4_MessageInfo_t info = seL4_Call(caller_ep, seL4_MessageInfo_new(3, 0, 0, 1));
    caller_label = seL4_MessageInfo_get_label(info);
    caller_len = seL4_MessageInfo_get_length(info);
    caller_reply = seL4_GetMR(0);
    caller_done = 1;
}

static int save_caller_and_reply(void)
{
    EXPECT_OK(new_endpoint(&caller_ep));
    seL4_CPtr saved = alloc_slot();
    /* Nothing to reply to: Reply does nothing, SaveCaller saves nothing. */
    seL4_SetMR(0, 1);
    seL4_Reply(seL4_MessageInfo_new(0, 0, 0, 1));
    EXPECT_OK(seL4_CNode_SaveCaller(ROOT, saved, DEPTH));
    EXPECT_EMPTY(saved);

    caller_done = 0;
    EXPECT_OK(make(0, "caller", one_call, 0, 255));
    EXPECT_OK(thread_start(&threads[0]));
    seL4_Word badge;
    seL4_Recv(caller_ep, &badge);
    EXPECT_EQ(seL4_GetMR(0), 0x42);
    EXPECT_OK(seL4_CNode_SaveCaller(ROOT, saved, DEPTH));
    EXPECT_TAG(saved, CAPSULE_CAPTAG_REPLY_CAP);
    /* The caller slot is empty now: this Reply reaches nobody. */
    seL4_SetMR(0, 0xbad);
    seL4_Reply(seL4_MessageInfo_new(9, 0, 0, 1));
    seL4_Yield();
    EXPECT_EQ(caller_done, 0);
    /* A Send on the saved reply cap is the reply, and uses the cap up. */
    seL4_SetMR(0, 0x43);
    seL4_SetMR(1, 0x44);
    seL4_Send(saved, seL4_MessageInfo_new(7, 0, 0, 2));
    EXPECT_EMPTY(saved);
    seL4_Yield();
    EXPECT_EQ(caller_done, 1);
    EXPECT_EQ(caller_label, 7);
    EXPECT_EQ(caller_len, 2);
    EXPECT_EQ(caller_reply, 0x43);
    return 0;
}

/* ---- scheduling across IPC ---- */

static seL4_CPtr sched_ep;

static void receive_and_note(void *arg)
{
    seL4_Word badge;
    for (;;) {
        seL4_Recv(sched_ep, &badge);
        note((char)(seL4_Word)arg);
    }
}

static void send_between_notes(void *arg)
{
    (void)arg;
    note('1');
    seL4_Send(sched_ep, seL4_MessageInfo_new(0, 0, 0, 0));
    note('3');
}

/* A receiver of higher priority runs as soon as the Send wakes it; a lower one later. */
static int send_wakes_by_priority(void)
{
    reset_order();
    EXPECT_OK(new_endpoint(&sched_ep));
    EXPECT_OK(make(0, "high", receive_and_note, (void *)'2', 200));
    EXPECT_OK(make(1, "low", send_between_notes, 0, 100));
    EXPECT_OK(thread_start(&threads[0])); /* runs first, and waits in Recv */
    EXPECT_OK(thread_start(&threads[1]));
    EXPECT_OK(let_run());
    EXPECT_ORDER("123");

    /* A lower receiver, already waiting, runs only once the sender has finished. */
    reset_order();
    EXPECT_OK(make(0, "lower", receive_and_note, (void *)'2', 60));
    EXPECT_OK(thread_start(&threads[0]));
    EXPECT_OK(let_run()); /* it blocks in Recv */
    EXPECT_OK(make(1, "sender", send_between_notes, 0, 100));
    EXPECT_OK(thread_start(&threads[1]));
    EXPECT_OK(let_run());
    EXPECT_ORDER("132");
    return 0;
}

/* The server of the next two checks: it notes the character `arg` for each Call on
 * server_ep, then replies (with ReplyRecv, so it waits for the next one). */
static seL4_CPtr server_ep;

static void noting_server(void *arg)
{
    seL4_Word badge;
    seL4_Recv(server_ep, &badge);
    for (;;) {
        note((char)(seL4_Word)arg);
        seL4_ReplyRecv(server_ep, seL4_MessageInfo_new(0, 0, 0, 0), &badge);
    }
}

static void direct_client(void *arg)
{
    (void)arg;
    note('c');
    seL4_Call(server_ep, seL4_MessageInfo_new(0, 0, 0, 0));
    note('C');
    seL4_Call(server_ep, seL4_MessageInfo_new(0, 0, 0, 0));
    note('D');
}

static void bystander(void *arg)
{
    (void)arg;
    note('X');
}

/* Call and ReplyRecv switch straight to the partner, ahead of a ready equal thread. */
static int call_switches_directly(void)
{
    reset_order();
    EXPECT_OK(new_endpoint(&server_ep));
    EXPECT_OK(make(0, "bystander", bystander, 0, 100));
    EXPECT_OK(make(1, "client", direct_client, 0, 100));
    EXPECT_OK(make(2, "server", noting_server, (void *)'S', 100));
    /* Resumed X, client, server: the ready queue is server, client, X. */
    EXPECT_OK(thread_start(&threads[0]));
    EXPECT_OK(thread_start(&threads[1]));
    EXPECT_OK(thread_start(&threads[2]));
    EXPECT_OK(let_run());
    EXPECT_ORDER("cSCSDX");
    return 0;
}

/* Two clients of one priority take turns through a higher-priority server. */
static void rr_client(void *arg)
{
    for (int i = 0; i < 2; i++) {
        note((char)(seL4_Word)arg);
        seL4_Call(server_ep, seL4_MessageInfo_new(0, 0, 0, 0));
        seL4_Yield();
    }
}

static int round_robin_through_a_server(void)
{
    reset_order();
    EXPECT_OK(new_endpoint(&server_ep));
    EXPECT_OK(make(0, "rrserver", noting_server, (void *)'s', 200));
    EXPECT_OK(make(1, "a", rr_client, (void *)'a', 100));
    EXPECT_OK(make(2, "b", rr_client, (void *)'b', 100));
    EXPECT_OK(thread_start(&threads[0]));
    EXPECT_OK(thread_start(&threads[1]));
    EXPECT_OK(thread_start(&threads[2])); /* queue at 100: b, a */
    EXPECT_OK(let_run());
    /* The server (200) runs as soon as a Call reaches it; after each reply the client
     * yields to the other one. */
    EXPECT_ORDER("bsasbsas");
    return 0;
}

static const struct check checks[] = {
    {"IPC0001", "Call / ReplyRecv rounds of 0 to 120 words with labels", call_reply_rounds},
    {"IPC0002", "A length field above 120 is clamped to 120, both ways", length_clamped},
    {"IPC0003", "A thread without an IPC buffer sends and receives 4 words at most",
     no_ipc_buffer_four_words},
    {"IPC0004", "Send / Recv / NBSend / NBRecv", send_recv_basics},
    {"IPC0005", "Blocked senders are received in FIFO order", senders_queue_fifo},
    {"IPC0006", "A server tells two clients apart by badge", server_tells_clients_apart},
    {"IPC0007", "Reply with an empty caller slot; SaveCaller then Send on the reply cap",
     save_caller_and_reply},
    {"IPC0008", "A Send wakes a higher-priority receiver at once, a lower one later",
     send_wakes_by_priority},
    {"IPC0009", "Call and ReplyRecv switch directly to the partner thread",
     call_switches_directly},
    {"IPC0010", "Clients of one priority take turns through a server", round_robin_through_a_server},
};

int main(void)
{
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
