/*
 * A notification shared by two threads: the root task and a waiter thread it creates in
 * its own CSpace and VSpace, at the root's priority (255): the waiter runs when the root
 * yields or waits, and a thread woken by a signal runs only when the other blocks or
 * yields (a wake-up at equal priority does not preempt).
 *
 * The waiter is made with the runtime's thread_create (its own stack, IPC buffer and
 * TLS).
 *
 * Protocol: the waiter waits on `ntfn` (or, bound to it, receives on `ep`), stores the
 * badge it got in `seen`, counts `wakes` and signals `ack`; the root waits on `ack`.
 */
#include "checks.h"
#include <thread.h>

static seL4_CPtr pool;
static seL4_CPtr ntfn, ack, ep, waiter_tcb, ack_signal;
static volatile seL4_Word seen, wakes;
static volatile int receive_on_endpoint;

static struct thread_storage waiter_storage;
static struct thread waiter_thread;

static void waiter(void *unused)
{
    (void)unused;
    for (;;) {
        seL4_Word badge = 0;
        if (receive_on_endpoint) {
            seL4_Recv(ep, &badge);
        } else {
            seL4_Wait(ntfn, &badge);
        }
        seen = badge;
        wakes = wakes + 1;
        seL4_Signal(ack_signal);
    }
}

static int start_waiter(void)
{
    EXPECT_OK(thread_create(&waiter_thread, &waiter_storage, pool, "waiter", waiter, 0, 255));
    EXPECT_OK(thread_start(&waiter_thread));
    waiter_tcb = waiter_thread.tcb;
    return 0;
}

static seL4_CPtr badged(seL4_Word badge)
{
    seL4_CPtr slot = alloc_slot();
    seL4_CNode_Mint(ROOT, slot, DEPTH, ROOT, ntfn, DEPTH, seL4_CanWrite, badge);
    return slot;
}

/* Let the waiter run until it acknowledges one wake-up. */
static void await_ack(void)
{
    seL4_Word ignored;
    seL4_Wait(ack, &ignored);
}

#define EXPECT_SEEN(n, badge)                                                              \
    do {                                                                                   \
        if (wakes != (n) || seen != (badge)) {                                             \
            return fail("line %d: wakes %lu, badge %#lx; expected %d and %#lx", __LINE__, \
                        (unsigned long)wakes, (unsigned long)seen, (n),                    \
                        (unsigned long)(badge));                                           \
        }                                                                                  \
    } while (0)

static int setup(void)
{
    EXPECT_OK(make_objects(pool, seL4_NotificationObject, 0, 1, &ntfn));
    EXPECT_OK(make_objects(pool, seL4_NotificationObject, 0, 1, &ack));
    EXPECT_OK(make_objects(pool, seL4_EndpointObject, 0, 1, &ep));
    ack_signal = alloc_slot();
    EXPECT_OK(seL4_CNode_Mint(ROOT, ack_signal, DEPTH, ROOT, ack, DEPTH, seL4_CanWrite, 0));
    if (start_waiter() != 0) {
        return 1;
    }
    seL4_Yield(); /* the waiter runs until it blocks in its Wait */
    EXPECT_SEEN(0, 0);
    return 0;
}

static int signal_wakes_the_waiter(void)
{
    seL4_Signal(badged(0x1)); /* the waiter is blocked on ntfn: it wakes with 0x1 */
    await_ack();
    EXPECT_SEEN(1, 0x1);
    return 0;
}

static int signals_while_it_runs_are_ored(void)
{
    seL4_Signal(badged(0x2)); /* wakes the waiter (it runs once the root waits) */
    seL4_Signal(badged(0x4)); /* nobody waits now: pending */
    seL4_Signal(badged(0x8)); /* OR-ed into the pending word */
    await_ack();
    await_ack();
    EXPECT_SEEN(3, 0xC);
    return 0;
}

static int bound_receiver_is_woken_by_a_signal(void)
{
    /* Binding needs a notification nobody waits on: wake the waiter first. */
    receive_on_endpoint = 1;
    seL4_Signal(badged(0x10));
    EXPECT_OK(seL4_TCB_BindNotification(waiter_tcb, ntfn));
    await_ack(); /* the waiter records 0x10, then blocks receiving on ep */
    EXPECT_SEEN(4, 0x10);
    seL4_Signal(badged(0x20)); /* wakes it out of the endpoint receive */
    await_ack();
    EXPECT_SEEN(5, 0x20);
    return 0;
}

static int unbinding_ends_receive_on_either(void)
{
    EXPECT_OK(seL4_TCB_UnbindNotification(waiter_tcb));
    seL4_Signal(badged(0x40)); /* the waiter stays in its endpoint receive */
    seL4_Yield();
    EXPECT_SEEN(5, 0x20);
    seL4_Word badge = 0;
    seL4_Poll(ntfn, &badge);
    if (badge != 0x40) {
        return fail("poll got %#lx, expected the pending 0x40", (unsigned long)badge);
    }
    return 0;
}

static const struct check checks[] = {
    {"NOTIFY0001", "A second thread starts and waits on the notification", setup},
    {"NOTIFY0002", "A signal wakes the thread waiting on the notification",
     signal_wakes_the_waiter},
    {"NOTIFY0003", "Signals while the waiter runs are OR-ed into one wake-up",
     signals_while_it_runs_are_ored},
    {"NOTIFY0004", "A bound thread receiving on an endpoint is woken by a signal",
     bound_receiver_is_woken_by_a_signal},
    {"NOTIFY0005", "After unbinding, a signal stays pending", unbinding_ends_receive_on_either},
};

int main(void)
{
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
