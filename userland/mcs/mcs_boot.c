/*
 * The MCS configuration from the root task (built with CONFIG_KERNEL_MCS, as `capsule cc
 * --mcs` builds): the boot caps MCS adds, the MCS bootinfo layout, the MCS object types
 * from Untyped_Retype, and the system calls at their MCS numbers (this program's output
 * itself goes through seL4_DebugPutChar at -12).
 * Output and exit status: see userland/tests/checks.h.
 */
#include "checks.h"

/* Slot 14 holds the root task's scheduling context. */
static int root_sched_context(void)
{
    EXPECT_TAG(seL4_CapInitThreadSC, CAPSULE_CAPTAG_SCHED_CONTEXT_CAP);
    return 0;
}

/* One SchedControl cap, after the image's paging caps (no extra bootinfo here) and
 * before its frames. */
static int sched_control_region(void)
{
    seL4_BootInfo *bi = seL4_GetBootInfo();
    EXPECT_EQ(bi->schedcontrol.end - bi->schedcontrol.start, 1);
    EXPECT_EQ(bi->schedcontrol.start, bi->userImagePaging.end + (bi->extraBIPages.end -
                                                                 bi->extraBIPages.start));
    EXPECT_EQ(bi->userImageFrames.start, bi->schedcontrol.end);
    EXPECT_TAG(bi->schedcontrol.start, CAPSULE_CAPTAG_SCHED_CONTROL_CAP);
    return 0;
}

/* The untyped region and its descriptors, 16 bytes further on than without MCS. */
static int untyped_list(void)
{
    seL4_BootInfo *bi = seL4_GetBootInfo();
    EXPECT_EQ(__builtin_offsetof(seL4_BootInfo, untyped), 168);
    if (bi->untyped.end <= bi->untyped.start) {
        return fail("no untypeds");
    }
    EXPECT_EQ(bi->untyped.start, bi->userImageFrames.end);
    for (seL4_CPtr s = bi->untyped.start; s < bi->untyped.end; s++) {
        EXPECT_TAG(s, CAPSULE_CAPTAG_UNTYPED_CAP);
        if (bi->untypedList[s - bi->untyped.start].sizeBits < seL4_MinUntypedBits) {
            return fail("untyped %lu: %u bits", (unsigned long)s,
                        bi->untypedList[s - bi->untyped.start].sizeBits);
        }
    }
    EXPECT_EMPTY(bi->empty.start);
    return 0;
}

/* Scheduling contexts (from seL4_MinSchedContextBits up) and reply objects. */
static int mcs_objects(void)
{
    unsigned bits;
    seL4_CPtr ut = largest_untyped(0, &bits);
    seL4_CPtr slot = alloc_slots(3);
    EXPECT_ERR(seL4_Untyped_Retype(ut, seL4_SchedContextObject, seL4_MinSchedContextBits - 1,
                                   ROOT, 0, 0, slot, 1), seL4_InvalidArgument);
    EXPECT_MR(0, 1);
    EXPECT_EMPTY(slot);
    EXPECT_OK(seL4_Untyped_Retype(ut, seL4_SchedContextObject, seL4_MinSchedContextBits + 1,
                                  ROOT, 0, 0, slot, 1));
    EXPECT_TAG(slot, CAPSULE_CAPTAG_SCHED_CONTEXT_CAP);
    EXPECT_OK(seL4_Untyped_Retype(ut, seL4_ReplyObject, 0, ROOT, 0, 0, slot + 1, 1));
    EXPECT_TAG(slot + 1, CAPSULE_CAPTAG_REPLY_CAP);
    EXPECT_OK(seL4_Untyped_Retype(ut, OBJ_4K_PAGE, 0, ROOT, 0, 0, slot + 2, 1));
    EXPECT_TAG(slot + 2, CAPSULE_CAPTAG_FRAME_CAP);
    return 0;
}

/* A notification signalled, then polled and waited on with the MCS calls. */
static int notification_wait_and_poll(void)
{
    unsigned bits;
    seL4_CPtr ut = largest_untyped(0, &bits);
    seL4_CPtr ntfn = alloc_slot();
    EXPECT_OK(seL4_Untyped_Retype(ut, seL4_NotificationObject, 0, ROOT, 0, 0, ntfn, 1));
    seL4_Word badge = 0;
    seL4_Poll(ntfn, &badge);
    EXPECT_EQ(badge, 0);
    seL4_Signal(ntfn);
    seL4_Wait(ntfn, &badge);
    EXPECT_EQ(badge, 0);
    return 0;
}

static const struct check checks[] = {
    {"MCSBOOT0001", "the root task's scheduling context is in slot 14", root_sched_context},
    {"MCSBOOT0002", "one SchedControl cap between the paging caps and the frames",
     sched_control_region},
    {"MCSBOOT0003", "the untyped list at its MCS offset", untyped_list},
    {"MCSBOOT0004", "scheduling contexts and reply objects from Untyped_Retype", mcs_objects},
    {"MCSBOOT0005", "seL4_Signal, seL4_Poll and seL4_Wait on a notification",
     notification_wait_and_poll},
};

int main(void)
{
    return run_checks(checks, sizeof(checks) / sizeof(checks[0]));
}
