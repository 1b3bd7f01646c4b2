/*
 * Capability transfer through endpoint IPC (non-MCS seL4 semantics, abi/ipc.md
 * "Message transfer", seL4's transferCaps):
 * - extra caps travel only through an endpoint cap with Grant; a reply carries them
 *   only if the reply cap can grant (the replier received the Call through a cap with
 *   Grant); otherwise the receiver sees extraCaps 0;
 * - the receiver names one empty slot (seL4_SetCapReceivePath); a cap to the endpoint
 *   the message travels through is not moved but unwrapped: its badge goes into
 *   caps_or_badges[i] and bit i of capsUnwrapped is set;
 * - caps are handled in order: at most one is derived into the receive slot; the loop
 *   stops at the first cap that is not unwrapped and cannot be moved (no usable slot
 *   left, or it derives to nothing), and extraCaps counts the caps handled before.
 *
 * The root task plays client or sender; threads at its priority (255) run when it
 * blocks or yields.
 */
#include <string.h>
#include <thread.h>

#include "checks.h"

static seL4_CPtr pool;

#define NTHREADS 2
#include "threads_util.h"

static seL4_Error new_object(seL4_Word type, seL4_Word size_bits, seL4_CPtr *slot)
{
    return make_objects(pool, type, size_bits, 1, slot);
}

static seL4_Error mint(seL4_CPtr src, seL4_CapRights_t rights, seL4_Word badge, seL4_CPtr *out)
{
    *out = alloc_slot();
    return seL4_CNode_Mint(ROOT, *out, DEPTH, ROOT, src, DEPTH, rights, badge);
}

/* Send / Recv rights without Grant (GrantReply keeps Call usable). */
#define NO_GRANT seL4_CapRights_new(1, 0, 1, 1)

/* ---- a server that hands out caps in its replies ---- */

static seL4_CPtr srv_ep, srv_recv_cap, gift_ep, gift_ep_badged, gift_untyped;
static volatile seL4_Word srv_badge_on_gift;

static void cap_server(void *arg)
{
    (void)arg;
    seL4_Word badge;
    /* 1: reply with an endpoint cap */
    seL4_Recv(srv_recv_cap, &badge);
    seL4_SetCap(0, gift_ep_badged);
    seL4_SetMR(0, 0x600d);
    seL4_Reply(seL4_MessageInfo_new(1, 0, 1, 1));
    /* 2: the client calls through the cap it got */
    seL4_Recv(gift_ep, &badge);
    srv_badge_on_gift = badge;
    seL4_SetMR(0, badge + 1);
    seL4_Reply(seL4_MessageInfo_new(2, 0, 0, 1));
    /* 3: reply with an untyped cap */
    seL4_Recv(srv_recv_cap, &badge);
    seL4_SetCap(0, gift_untyped);
    seL4_Reply(seL4_MessageInfo_new(3, 0, 1, 0));
    seL4_Recv(srv_recv_cap, &badge); /* park */
}

static int start_server(seL4_CPtr recv_cap)
{
    srv_recv_cap = recv_cap;
    srv_badge_on_gift = 0;
    EXPECT_OK(new_object(seL4_EndpointObject, 0, &gift_ep));
    EXPECT_OK(mint(gift_ep, seL4_AllRights, 0x77, &gift_ep_badged));
    EXPECT_OK(new_object(seL4_UntypedObject, 12, &gift_untyped));
    EXPECT_OK(make(0, "capserver", cap_server, 0, 255));
    EXPECT_OK(thread_start(&threads[0]));
    return 0;
}

/* Call `ep` (to the server) with a new empty slot, returned in *got, as receive slot. */
static seL4_MessageInfo_t call_receiving_in_new_slot(seL4_CPtr ep, seL4_CPtr *got)
{
    *got = alloc_slot();
    seL4_SetCapReceivePath(ROOT, *got, DEPTH);
    return seL4_Call(ep, seL4_MessageInfo_new(0, 0, 0, 0));
}

static int server_hands_out_an_endpoint(void)
{
    EXPECT_OK(new_object(seL4_EndpointObject, 0, &srv_ep));
    EXPECT_PASS(start_server(srv_ep));
    seL4_CPtr got;
    seL4_MessageInfo_t info = call_receiving_in_new_slot(srv_ep, &got);
    EXPECT_EQ(seL4_MessageInfo_get_label(info), 1);
    EXPECT_EQ(seL4_MessageInfo_get_extraCaps(info), 1);
    EXPECT_EQ(seL4_MessageInfo_get_capsUnwrapped(info), 0);
    EXPECT_EQ(seL4_GetMR(0), 0x600d);
    EXPECT_TAG(got, CAPSULE_CAPTAG_ENDPOINT_CAP);
    /* The cap works, and kept its badge. */
    info = seL4_Call(got, seL4_MessageInfo_new(0, 0, 0, 0));
    EXPECT_EQ(srv_badge_on_gift, 0x77);
    EXPECT_EQ(seL4_MessageInfo_get_label(info), 2);
    EXPECT_EQ(seL4_GetMR(0), 0x78);
    /* An untyped next: the client retypes from the copy it got. */
    seL4_CPtr ut;
    info = call_receiving_in_new_slot(srv_ep, &ut);
    EXPECT_EQ(seL4_MessageInfo_get_label(info), 3);
    EXPECT_EQ(seL4_MessageInfo_get_extraCaps(info), 1);
    EXPECT_TAG(ut, CAPSULE_CAPTAG_UNTYPED_CAP);
    seL4_CPtr made_ep = alloc_slot();
    EXPECT_OK(seL4_Untyped_Retype(ut, seL4_EndpointObject, 0, ROOT, 0, 0, made_ep, 1));
    EXPECT_TAG(made_ep, CAPSULE_CAPTAG_ENDPOINT_CAP);
    return 0;
}

static int reply_without_grant_carries_no_cap(void)
{
    seL4_CPtr ep, no_grant;
    EXPECT_OK(new_object(seL4_EndpointObject, 0, &ep));
    EXPECT_OK(mint(ep, NO_GRANT, 0, &no_grant));
    /* The server receives through a cap without Grant: its reply cap cannot grant. */
    EXPECT_PASS(start_server(no_grant));
    seL4_CPtr got;
    seL4_MessageInfo_t info = call_receiving_in_new_slot(ep, &got);
    EXPECT_EQ(seL4_MessageInfo_get_label(info), 1);
    EXPECT_EQ(seL4_MessageInfo_get_length(info), 1);
    EXPECT_EQ(seL4_GetMR(0), 0x600d);
    EXPECT_EQ(seL4_MessageInfo_get_extraCaps(info), 0);
    EXPECT_EMPTY(got);
    return 0;
}

/* ---- a receiver that records what arrives ---- */

static seL4_CPtr rx_ep;
static volatile seL4_CPtr rx_slot;
static volatile seL4_Word rx_badge, rx_label, rx_len, rx_extra, rx_unwrapped, rx_count;
static volatile seL4_Word rx_badges[3];

static void receiver(void *arg)
{
    (void)arg;
    for (;;) {
        seL4_SetCapReceivePath(ROOT, rx_slot, DEPTH);
        for (int i = 0; i < 3; i++) {
            seL4_GetIPCBuffer()->caps_or_badges[i] = 0xbbbb;
        }
        seL4_Word badge;
        seL4_MessageInfo_t info = seL4_Recv(rx_ep, &badge);
        rx_badge = badge;
        rx_label = seL4_MessageInfo_get_label(info);
        rx_len = seL4_MessageInfo_get_length(info);
        rx_extra = seL4_MessageInfo_get_extraCaps(info);
        rx_unwrapped = seL4_MessageInfo_get_capsUnwrapped(info);
        for (int i = 0; i < 3; i++) {
            rx_badges[i] = seL4_GetBadge(i);
        }
        rx_count++;
    }
}

/* Start the receiver on a new endpoint; it waits with its receive slot at `slot`. */
static int start_receiver(seL4_CPtr slot)
{
    EXPECT_OK(new_object(seL4_EndpointObject, 0, &rx_ep));
    rx_slot = slot;
    rx_count = 0;
    EXPECT_OK(make(1, "receiver", receiver, 0, 255));
    EXPECT_OK(thread_start(&threads[1]));
    seL4_Yield(); /* it blocks in Recv */
    return 0;
}

/*
 * Send `n` caps through `via` (a cap to rx_ep) with one message word; the receiver
 * records the message, then waits again with its receive slot at `next_slot`. Fail
 * unless it got the message once, with extraCaps `extra` and capsUnwrapped `unwrapped`.
 */
static int deliver(seL4_CPtr via, const seL4_CPtr *caps, int n, seL4_CPtr next_slot,
                   seL4_Word extra, seL4_Word unwrapped)
{
    seL4_Word before = rx_count;
    for (int i = 0; i < n; i++) {
        seL4_SetCap(i, caps[i]);
    }
    seL4_SetMR(0, 0xabc);
    seL4_Send(via, seL4_MessageInfo_new(0x51, 0, (seL4_Word)n, 1));
    rx_slot = next_slot;
    seL4_Yield();
    if (rx_count != before + 1) {
        return fail("the receiver got %lu messages, expected 1",
                    (unsigned long)(rx_count - before));
    }
    if (rx_label != 0x51 || rx_len != 1) {
        return fail("the receiver got label %#lx length %lu", (unsigned long)rx_label,
                    (unsigned long)rx_len);
    }
    EXPECT_EQ(rx_extra, extra);
    EXPECT_EQ(rx_unwrapped, unwrapped);
    return 0;
}

static int send_without_grant_carries_no_cap(void)
{
    seL4_CPtr slot = alloc_slot();
    EXPECT_PASS(start_receiver(slot));
    seL4_CPtr via, other;
    EXPECT_OK(mint(rx_ep, NO_GRANT, 0x5, &via));
    EXPECT_OK(new_object(seL4_EndpointObject, 0, &other));
    const seL4_CPtr caps[] = {other};
    EXPECT_PASS(deliver(via, caps, 1, slot, 0, 0));
    EXPECT_EQ(rx_badge, 0x5);
    EXPECT_EMPTY(slot);
    /* The same message through a cap with Grant moves the cap. */
    seL4_CPtr with_grant;
    EXPECT_OK(mint(rx_ep, seL4_AllRights, 0x6, &with_grant));
    EXPECT_PASS(deliver(with_grant, caps, 1, alloc_slot(), 1, 0));
    EXPECT_EQ(rx_badge, 0x6);
    EXPECT_TAG(slot, CAPSULE_CAPTAG_ENDPOINT_CAP);
    return 0;
}

static int caps_to_the_endpoint_are_unwrapped(void)
{
    seL4_CPtr slot = alloc_slot();
    EXPECT_PASS(start_receiver(slot));
    seL4_CPtr badged;
    EXPECT_OK(mint(rx_ep, seL4_AllRights, 0x33, &badged));
    /* The badged cap and the original (badge 0), both to the endpoint carrying them. */
    const seL4_CPtr caps[] = {badged, rx_ep};
    EXPECT_PASS(deliver(badged, caps, 2, slot, 2, 0x3));
    EXPECT_EQ(rx_badge, 0x33);
    EXPECT_EQ(rx_badges[0], 0x33);
    EXPECT_EQ(rx_badges[1], 0);
    EXPECT_EQ(rx_badges[2], 0xbbbb);
    EXPECT_EMPTY(slot);
    /* Unwrapping needs no receive slot: here it holds a cap already. */
    seL4_CPtr occupied;
    EXPECT_OK(new_object(seL4_EndpointObject, 0, &occupied));
    /* The receiver waits on `occupied` next. */
    EXPECT_PASS(deliver(badged, caps, 1, occupied, 1, 0x1));
    const seL4_CPtr third[] = {rx_ep, badged, badged};
    EXPECT_PASS(deliver(rx_ep, third, 3, occupied, 3, 0x7));
    EXPECT_EQ(rx_badge, 0);
    EXPECT_EQ(rx_badges[0], 0);
    EXPECT_EQ(rx_badges[1], 0x33);
    EXPECT_EQ(rx_badges[2], 0x33);
    EXPECT_TAG(occupied, CAPSULE_CAPTAG_ENDPOINT_CAP);
    return 0;
}

static int occupied_receive_slot_stops_the_transfer(void)
{
    seL4_CPtr occupied;
    EXPECT_OK(new_object(seL4_EndpointObject, 0, &occupied));
    EXPECT_PASS(start_receiver(occupied));
    seL4_CPtr ut;
    EXPECT_OK(new_object(seL4_UntypedObject, 12, &ut));
    const seL4_CPtr one[] = {ut};
    EXPECT_PASS(deliver(rx_ep, one, 1, occupied, 0, 0));
    EXPECT_TAG(occupied, CAPSULE_CAPTAG_ENDPOINT_CAP); /* kept its own cap */
    /* An unwrapped cap first still counts; the transfer stops at the untyped. */
    const seL4_CPtr two[] = {rx_ep, ut, rx_ep};
    EXPECT_PASS(deliver(rx_ep, two, 3, occupied, 1, 0x1));
    EXPECT_EQ(rx_badges[1], 0xbbbb);
    EXPECT_EQ(rx_badges[2], 0xbbbb);
    return 0;
}

static int one_cap_goes_into_the_slot(void)
{
    seL4_CPtr slot = alloc_slot();
    EXPECT_PASS(start_receiver(slot));
    seL4_CPtr ut, other, badged;
    EXPECT_OK(new_object(seL4_UntypedObject, 12, &ut));
    EXPECT_OK(new_object(seL4_EndpointObject, 0, &other));
    EXPECT_OK(mint(rx_ep, seL4_AllRights, 0x44, &badged));
    /* The untyped fills the slot; the second cap finds no slot: extraCaps 1. */
    seL4_CPtr next = alloc_slot();
    const seL4_CPtr two[] = {ut, other};
    EXPECT_PASS(deliver(rx_ep, two, 2, next, 1, 0));
    EXPECT_TAG(slot, CAPSULE_CAPTAG_UNTYPED_CAP);
    /* Endpoint, unwrapped cap, untyped: the endpoint moves, the badge arrives, the
     * untyped stops the loop. */
    const seL4_CPtr three[] = {other, badged, ut};
    EXPECT_PASS(deliver(rx_ep, three, 3, alloc_slot(), 2, 0x2));
    EXPECT_EQ(rx_badges[1], 0x44);
    EXPECT_TAG(next, CAPSULE_CAPTAG_ENDPOINT_CAP);
    return 0;
}

static int a_cap_deriving_to_nothing_stops_the_transfer(void)
{
    seL4_CPtr slot = alloc_slot();
    EXPECT_PASS(start_receiver(slot));
    seL4_CPtr other, empty = alloc_slot();
    EXPECT_OK(new_object(seL4_EndpointObject, 0, &other));
    /* The IRQ control cap derives to a null cap: the loop ends there. */
    const seL4_CPtr irq[] = {rx_ep, seL4_CapIRQControl, other};
    EXPECT_PASS(deliver(rx_ep, irq, 3, slot, 1, 0x1));
    EXPECT_EMPTY(slot);
    /* So does an empty slot named as an extra cap. */
    const seL4_CPtr null_first[] = {empty, other};
    EXPECT_PASS(deliver(rx_ep, null_first, 2, slot, 0, 0));
    EXPECT_EMPTY(slot);
    return 0;
}

static const struct check checks[] = {
    {"IPCCAP0001", "A server hands out an endpoint and an untyped; the client uses them",
     server_hands_out_an_endpoint},
    {"IPCCAP0002", "A reply cap without Grant carries no cap", reply_without_grant_carries_no_cap},
    {"IPCCAP0003", "A Send without Grant carries no cap, with Grant it does",
     send_without_grant_carries_no_cap},
    {"IPCCAP0004", "Caps to the receiving endpoint are unwrapped into badges",
     caps_to_the_endpoint_are_unwrapped},
    {"IPCCAP0005", "An occupied receive slot stops the transfer",
     occupied_receive_slot_stops_the_transfer},
    {"IPCCAP0006", "Only the first cap not unwrapped goes into the receive slot",
     one_cap_goes_into_the_slot},
    {"IPCCAP0007", "A cap that derives to a null cap stops the transfer",
     a_cap_deriving_to_nothing_stops_the_transfer},
};

int main(void)
{
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
