/*
 * Notifications from the root task alone: Signal, Poll, Wait (only when a signal is
 * pending: a lone thread that blocks never wakes), badges OR-ed while Active, Call on a
 * notification, and the Send right.
 *
 * Each check retypes a fresh notification from the largest RAM untyped and mints the
 * badged or reduced-rights caps it needs. Output and exit status: see checks.h. The
 * two-thread checks (a waiter woken by another thread, receive-on-either) need TCB
 * invocations and live in notify.c.
 */
#include "checks.h"

static seL4_CPtr pool; /* the largest RAM untyped */

/* A fresh notification in a new slot, or 0 (the check then fails). */
static seL4_CPtr new_notification(void)
{
    seL4_CPtr slot;
    if (make_objects(pool, seL4_NotificationObject, 0, 1, &slot) != seL4_NoError) {
        return 0;
    }
    return slot;
}

/* A copy of notification cap `src` with `rights` and `badge`, or 0. */
static seL4_CPtr mint(seL4_CPtr src, seL4_CapRights_t rights, seL4_Word badge)
{
    seL4_CPtr dest = alloc_slot();
    if (seL4_CNode_Mint(ROOT, dest, DEPTH, ROOT, src, DEPTH, rights, badge) != seL4_NoError) {
        return 0;
    }
    return dest;
}

#define NEED(slot)                                                                         \
    do {                                                                                   \
        if ((slot) == 0) {                                                                 \
            return fail("line %d: could not create %s", __LINE__, #slot);                  \
        }                                                                                  \
    } while (0)

#define EXPECT_BADGE(got, want)                                                            \
    do {                                                                                   \
        if ((got) != (seL4_Word)(want)) {                                                  \
            return fail("line %d: badge %#lx, expected %#lx", __LINE__,                    \
                        (unsigned long)(got), (unsigned long)(want));                      \
        }                                                                                  \
    } while (0)

static int signal_then_poll(void)
{
    seL4_CPtr ntfn = new_notification();
    NEED(ntfn);
    seL4_CPtr badged = mint(ntfn, seL4_CanWrite, 0x50);
    NEED(badged);
    seL4_Word badge = 0xdead;
    seL4_Signal(badged);
    seL4_Poll(ntfn, &badge);
    EXPECT_BADGE(badge, 0x50);
    seL4_Poll(ntfn, &badge); /* the word was consumed */
    EXPECT_BADGE(badge, 0);
    return 0;
}

static int badges_are_ored(void)
{
    seL4_CPtr ntfn = new_notification();
    NEED(ntfn);
    seL4_CPtr one = mint(ntfn, seL4_CanWrite, 1), two = mint(ntfn, seL4_CanWrite, 2);
    seL4_CPtr four = mint(ntfn, seL4_CanWrite, 4);
    NEED(one);
    NEED(two);
    NEED(four);
    seL4_Signal(one);
    seL4_Signal(four);
    seL4_Signal(two);
    seL4_Word badge = 0;
    seL4_Wait(ntfn, &badge); /* pending: does not block */
    EXPECT_BADGE(badge, 7);
    return 0;
}

static int poll_idle(void)
{
    seL4_CPtr ntfn = new_notification();
    NEED(ntfn);
    seL4_Word badge = 0xdead;
    seL4_Poll(ntfn, &badge);
    EXPECT_BADGE(badge, 0);
    return 0;
}

static int unbadged_signal(void)
{
    seL4_CPtr ntfn = new_notification();
    NEED(ntfn);
    seL4_Word badge = 0xdead;
    seL4_Signal(ntfn);
    seL4_Wait(ntfn, &badge); /* Active with word 0: returns at once */
    EXPECT_BADGE(badge, 0);
    return 0;
}

static int signal_needs_write(void)
{
    seL4_CPtr ntfn = new_notification();
    NEED(ntfn);
    seL4_CPtr read_only = mint(ntfn, seL4_CanRead, 0x8);
    NEED(read_only);
    seL4_Word badge = 0xdead;
    seL4_Signal(read_only);                         /* Send: dropped silently */
    seL4_NBSend(read_only, seL4_MessageInfo_new(0, 0, 0, 0)); /* NBSend too */
    seL4_Poll(ntfn, &badge);
    EXPECT_BADGE(badge, 0);
    return 0;
}

static int call_signals(void)
{
    seL4_CPtr ntfn = new_notification();
    NEED(ntfn);
    seL4_CPtr badged = mint(ntfn, seL4_CanWrite, 0x21);
    NEED(badged);
    seL4_MessageInfo_t info = seL4_Call(badged, seL4_MessageInfo_new(99, 0, 0, 2));
    if (seL4_MessageInfo_get_label(info) != 0 || seL4_MessageInfo_get_length(info) != 0) {
        return fail("reply label %lu length %lu, expected 0 and 0",
                    (unsigned long)seL4_MessageInfo_get_label(info),
                    (unsigned long)seL4_MessageInfo_get_length(info));
    }
    seL4_Word badge = 0;
    seL4_Poll(ntfn, &badge);
    EXPECT_BADGE(badge, 0x21);
    return 0;
}

static int call_without_write(void)
{
    seL4_CPtr ntfn = new_notification();
    NEED(ntfn);
    seL4_CPtr read_only = mint(ntfn, seL4_CanRead, 0x8);
    NEED(read_only);
    seL4_MessageInfo_t info = seL4_Call(read_only, seL4_MessageInfo_new(0, 0, 0, 0));
    EXPECT_ERR((seL4_Error)seL4_MessageInfo_get_label(info), seL4_InvalidCapability);
    EXPECT_MR(0, 0);
    seL4_Word badge = 0xdead;
    seL4_Poll(ntfn, &badge);
    EXPECT_BADGE(badge, 0);
    return 0;
}

static int wait_through_read_only(void)
{
    seL4_CPtr ntfn = new_notification();
    NEED(ntfn);
    seL4_CPtr read_only = mint(ntfn, seL4_CanRead, 0);
    NEED(read_only);
    seL4_CPtr badged = mint(ntfn, seL4_CanWrite, 0x300);
    NEED(badged);
    EXPECT_TAG(read_only, CAPSULE_CAPTAG_NOTIFICATION_CAP);
    seL4_Signal(badged);
    seL4_Word badge = 0;
    seL4_Wait(read_only, &badge);
    EXPECT_BADGE(badge, 0x300);
    return 0;
}

static const struct check checks[] = {
    {"NTFNOP0001", "Signal then Poll gets the badge, once", signal_then_poll},
    {"NTFNOP0002", "Badges are OR-ed while a signal is pending", badges_are_ored},
    {"NTFNOP0003", "Poll on an idle notification gets badge 0", poll_idle},
    {"NTFNOP0004", "An unbadged signal makes Wait return badge 0", unbadged_signal},
    {"NTFNOP0005", "Send / NBSend without the Write right do nothing", signal_needs_write},
    {"NTFNOP0006", "Call on a notification signals and gets an empty reply", call_signals},
    {"NTFNOP0007", "Call without the Write right is InvalidCapability", call_without_write},
    {"NTFNOP0008", "Wait needs only the Read right", wait_through_read_only},
};

int main(void)
{
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
