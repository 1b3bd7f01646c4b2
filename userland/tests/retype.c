/*
 * Untyped_Retype from the root task: every object type, many objects at once, the
 * argument checks, running out of memory, alignment of objects inside an untyped, and
 * the reset of an untyped whose children are all gone.
 *
 * Addresses are not visible to the root task yet (no Page_GetAddress), so placement is
 * checked through what must then fit: small untypeds carved from the largest RAM
 * untyped have a known size, and NotEnoughMemory reports the bytes still available.
 * Output and exit status: see checks.h.
 */
#include "checks.h"

static seL4_CPtr pool; /* the largest RAM untyped */

#define NEED_OK(call) EXPECT_OK(call)

/* A fresh untyped of 2^bits bytes carved from the pool; fails the check if impossible. */
#define CARVE(var, bits) NEED_OK(make_objects(pool, seL4_UntypedObject, (bits), 1, &(var)))

static seL4_Error retype_at(seL4_CPtr ut, seL4_Word type, seL4_Word size_bits, seL4_CPtr slot,
                            seL4_Word n)
{
    return seL4_Untyped_Retype(ut, type, size_bits, ROOT, 0, 0, slot, n);
}

/* ---- every object type ---- */

static int one_of(seL4_Word type, seL4_Word size_bits, seL4_Uint32 tag)
{
    seL4_CPtr slot;
    EXPECT_OK(make_objects(pool, type, size_bits, 1, &slot));
    EXPECT_TAG(slot, tag);
    return 0;
}

static int endpoint(void)
{
    return one_of(seL4_EndpointObject, 0, CAPSULE_CAPTAG_ENDPOINT_CAP);
}

static int notification(void)
{
    return one_of(seL4_NotificationObject, 0, CAPSULE_CAPTAG_NOTIFICATION_CAP);
}

static int tcb(void)
{
    return one_of(seL4_TCBObject, 0, CAPSULE_CAPTAG_THREAD_CAP);
}

static int cnode_radix_1(void)
{
    return one_of(seL4_CapTableObject, 1, CAPSULE_CAPTAG_CNODE_CAP);
}

/* A new CNode of 2^radix slots answers at depth `radix` and not at radix - 1. */
static int cnode_of_radix(seL4_Word radix)
{
    seL4_CPtr cn;
    EXPECT_OK(make_objects(pool, seL4_CapTableObject, radix, 1, &cn));
    EXPECT_TAG(cn, CAPSULE_CAPTAG_CNODE_CAP);
    seL4_Word last = (1ul << radix) - 1;
    EXPECT_OK(seL4_CNode_Copy(cn, last, radix, ROOT, seL4_CapInitThreadTCB, DEPTH,
                              seL4_AllRights));
    EXPECT_ERR(seL4_CNode_Copy(cn, 0, radix - 1, ROOT, seL4_CapInitThreadTCB, DEPTH,
                               seL4_AllRights),
               seL4_FailedLookup);
    EXPECT_ERR(seL4_CNode_Copy(cn, last, radix, ROOT, seL4_CapInitThreadTCB, DEPTH,
                               seL4_AllRights),
               seL4_DeleteFirst);
    return 0;
}

static int cnode_radix_4(void)
{
    return cnode_of_radix(4);
}

static int cnode_radix_10(void)
{
    return cnode_of_radix(10);
}

static int frame_4k(void)
{
    return one_of(OBJ_4K_PAGE, 0, CAPSULE_CAPTAG_FRAME_CAP);
}

static int frame_large(void)
{
    return one_of(OBJ_LARGE_PAGE, 0, CAPSULE_CAPTAG_FRAME_CAP);
}

static int page_table(void)
{
    return one_of(OBJ_PAGE_TABLE, 0, CAPSULE_CAPTAG_PAGE_TABLE_CAP);
}

static int vspace_root(void)
{
    return one_of(OBJ_VSPACE, 0, TAG_VSPACE);
}

static int untyped_children(void)
{
    seL4_CPtr parent, kids;
    CARVE(parent, 14);
    EXPECT_OK(make_objects(parent, seL4_UntypedObject, 12, 4, &kids));
    for (seL4_CPtr s = kids; s < kids + 4; s++) {
        EXPECT_TAG(s, CAPSULE_CAPTAG_UNTYPED_CAP);
    }
    /* The four children fill the parent exactly. */
    seL4_CPtr more = alloc_slot();
    EXPECT_ERR(retype_at(parent, seL4_EndpointObject, 0, more, 1), seL4_NotEnoughMemory);
    EXPECT_MR(0, 0);
    /* A child is an untyped like any other. */
    seL4_CPtr ep;
    EXPECT_OK(make_objects(kids + 2, seL4_EndpointObject, 0, 1, &ep));
    EXPECT_TAG(ep, CAPSULE_CAPTAG_ENDPOINT_CAP);
    return 0;
}

static int fan_out_limit(void)
{
    seL4_CPtr first;
    EXPECT_OK(make_objects(pool, seL4_EndpointObject, 0, CONFIG_RETYPE_FAN_OUT_LIMIT, &first));
    for (seL4_CPtr s = first; s < first + CONFIG_RETYPE_FAN_OUT_LIMIT; s++) {
        EXPECT_TAG(s, CAPSULE_CAPTAG_ENDPOINT_CAP);
    }
    return 0;
}

/* ---- argument checks ---- */

static int too_many_objects(void)
{
    seL4_CPtr first = alloc_slots(CONFIG_RETYPE_FAN_OUT_LIMIT + 1);
    EXPECT_ERR(retype_at(pool, seL4_EndpointObject, 0, first, CONFIG_RETYPE_FAN_OUT_LIMIT + 1),
               seL4_RangeError);
    EXPECT_MR(0, 1);
    EXPECT_MR(1, CONFIG_RETYPE_FAN_OUT_LIMIT);
    EXPECT_EMPTY(first);
    return 0;
}

static int zero_objects(void)
{
    seL4_CPtr slot = alloc_slot();
    EXPECT_ERR(retype_at(pool, seL4_EndpointObject, 0, slot, 0), seL4_RangeError);
    EXPECT_MR(0, 1);
    EXPECT_MR(1, CONFIG_RETYPE_FAN_OUT_LIMIT);
    return 0;
}

static int bad_type(void)
{
    seL4_CPtr slot = alloc_slot();
    EXPECT_ERR(retype_at(pool, seL4_ObjectTypeCount, 0, slot, 1), seL4_InvalidArgument);
    EXPECT_MR(0, 0);
    EXPECT_EMPTY(slot);
    return 0;
}

static int tiny_untyped(void)
{
    seL4_CPtr slot = alloc_slot();
    EXPECT_ERR(retype_at(pool, seL4_UntypedObject, seL4_MinUntypedBits - 1, slot, 1),
               seL4_InvalidArgument);
    EXPECT_MR(0, 1);
    return 0;
}

static int cnode_radix_0(void)
{
    seL4_CPtr slot = alloc_slot();
    EXPECT_ERR(retype_at(pool, seL4_CapTableObject, 0, slot, 1), seL4_InvalidArgument);
    EXPECT_MR(0, 1);
    return 0;
}

static int huge_size(void)
{
    seL4_CPtr slot = alloc_slot();
    EXPECT_ERR(retype_at(pool, seL4_UntypedObject, 64, slot, 1), seL4_RangeError);
    EXPECT_MR(0, 0);
    EXPECT_MR(1, seL4_MaxUntypedBits);
    EXPECT_ERR(retype_at(pool, seL4_UntypedObject, seL4_MaxUntypedBits + 1, slot, 1),
               seL4_RangeError);
    return 0;
}

/* A 16-slot CNode to retype into, addressed through its root-CNode slot. */
static seL4_CPtr small_cnode(void)
{
    seL4_CPtr cn;
    if (make_objects(pool, seL4_CapTableObject, 4, 1, &cn) != seL4_NoError) {
        return 0;
    }
    return cn;
}

static int offset_past_end(void)
{
    seL4_CPtr cn = small_cnode();
    if (cn == 0) {
        return fail("could not create a CNode");
    }
    EXPECT_ERR(seL4_Untyped_Retype(pool, seL4_EndpointObject, 0, ROOT, cn, DEPTH, 16, 1),
               seL4_RangeError);
    EXPECT_MR(0, 0);
    EXPECT_MR(1, 15);
    return 0;
}

static int too_few_slots_left(void)
{
    seL4_CPtr cn = small_cnode();
    if (cn == 0) {
        return fail("could not create a CNode");
    }
    EXPECT_ERR(seL4_Untyped_Retype(pool, seL4_EndpointObject, 0, ROOT, cn, DEPTH, 12, 5),
               seL4_RangeError);
    EXPECT_MR(0, 1);
    EXPECT_MR(1, 4);
    return 0;
}

static int into_sub_cnode(void)
{
    seL4_CPtr cn = small_cnode();
    if (cn == 0) {
        return fail("could not create a CNode");
    }
    EXPECT_OK(seL4_Untyped_Retype(pool, seL4_EndpointObject, 0, ROOT, cn, DEPTH, 12, 4));
    /* Slots 12..15 of the new CNode are full now, 11 is not. */
    for (seL4_Word i = 12; i < 16; i++) {
        EXPECT_ERR(seL4_CNode_Copy(cn, i, 4, ROOT, seL4_CapInitThreadTCB, DEPTH,
                                   seL4_AllRights),
                   seL4_DeleteFirst);
    }
    EXPECT_OK(seL4_CNode_Copy(cn, 11, 4, ROOT, seL4_CapInitThreadTCB, DEPTH, seL4_AllRights));
    return 0;
}

static int explicit_root_destination(void)
{
    /* node_index = the root CNode's own slot at full depth names the same CNode. */
    seL4_CPtr slot = alloc_slot();
    EXPECT_OK(seL4_Untyped_Retype(pool, seL4_NotificationObject, 0, ROOT,
                                  seL4_CapInitThreadCNode, DEPTH, slot, 1));
    EXPECT_TAG(slot, CAPSULE_CAPTAG_NOTIFICATION_CAP);
    return 0;
}

static int destination_not_cnode(void)
{
    seL4_CPtr slot = alloc_slot();
    EXPECT_ERR(seL4_Untyped_Retype(pool, seL4_EndpointObject, 0, ROOT, seL4_CapInitThreadTCB,
                                   DEPTH, slot, 1),
               seL4_FailedLookup);
    EXPECT_EMPTY(slot);
    return 0;
}

static int destination_full(void)
{
    seL4_CPtr first = alloc_slots(2);
    EXPECT_OK(seL4_CNode_Copy(ROOT, first + 1, DEPTH, ROOT, seL4_CapInitThreadTCB, DEPTH,
                              seL4_AllRights));
    EXPECT_ERR(retype_at(pool, seL4_EndpointObject, 0, first, 2), seL4_DeleteFirst);
    EXPECT_EMPTY(first); /* nothing was created */
    EXPECT_TAG(first + 1, CAPSULE_CAPTAG_THREAD_CAP);
    return 0;
}

/* ---- memory ---- */

static int not_enough_memory(void)
{
    seL4_CPtr ut, slots = alloc_slots(2);
    CARVE(ut, seL4_PageBits);
    EXPECT_ERR(retype_at(ut, OBJ_4K_PAGE, 0, slots, 2), seL4_NotEnoughMemory);
    EXPECT_MR(0, 1ul << seL4_PageBits);
    EXPECT_EMPTY(slots);
    EXPECT_OK(retype_at(ut, OBJ_4K_PAGE, 0, slots, 1));
    EXPECT_ERR(retype_at(ut, seL4_EndpointObject, 0, slots + 1, 1), seL4_NotEnoughMemory);
    EXPECT_MR(0, 0);
    return 0;
}

static int too_big_for_untyped(void)
{
    seL4_CPtr ut, slot = alloc_slot();
    CARVE(ut, seL4_PageBits);
    EXPECT_ERR(retype_at(ut, seL4_UntypedObject, seL4_PageBits + 1, slot, 1),
               seL4_NotEnoughMemory);
    EXPECT_MR(0, 1ul << seL4_PageBits);
    return 0;
}

static int alignment(void)
{
    /* 8 KiB: an endpoint at 0, then a 4 KiB frame must start at 4 KiB, filling it. */
    seL4_CPtr ut, slots = alloc_slots(3);
    CARVE(ut, seL4_PageBits + 1);
    EXPECT_OK(retype_at(ut, seL4_EndpointObject, 0, slots, 1));
    EXPECT_OK(retype_at(ut, OBJ_4K_PAGE, 0, slots + 1, 1));
    EXPECT_ERR(retype_at(ut, seL4_EndpointObject, 0, slots + 2, 1), seL4_NotEnoughMemory);
    EXPECT_MR(0, 0);
    return 0;
}

static int available_counts_from_free_index(void)
{
    /* After one endpoint, 8 KiB - 16 bytes are free, yet only one page fits. */
    seL4_CPtr ut, slots = alloc_slots(3);
    CARVE(ut, seL4_PageBits + 1);
    EXPECT_OK(retype_at(ut, seL4_EndpointObject, 0, slots, 1));
    EXPECT_ERR(retype_at(ut, OBJ_4K_PAGE, 0, slots + 1, 2), seL4_NotEnoughMemory);
    EXPECT_MR(0, (2ul << seL4_PageBits) - (1ul << seL4_EndpointBits));
    return 0;
}

static int reset_after_revoke(void)
{
    seL4_CPtr ut, slots = alloc_slots(4);
    CARVE(ut, seL4_PageBits + 1);
    EXPECT_OK(retype_at(ut, seL4_EndpointObject, 0, slots, 1));
    EXPECT_OK(retype_at(ut, OBJ_4K_PAGE, 0, slots + 1, 1));
    EXPECT_OK(seL4_CNode_Revoke(ROOT, ut, DEPTH));
    EXPECT_EMPTY(slots);
    EXPECT_EMPTY(slots + 1);
    /* Childless again: allocation starts over at the beginning. */
    EXPECT_OK(retype_at(ut, OBJ_4K_PAGE, 0, slots + 2, 2));
    EXPECT_TAG(slots + 3, CAPSULE_CAPTAG_FRAME_CAP);
    return 0;
}

static int reset_after_deleting_each_child(void)
{
    seL4_CPtr ut, slots = alloc_slots(4);
    CARVE(ut, seL4_PageBits + 1);
    EXPECT_OK(retype_at(ut, OBJ_4K_PAGE, 0, slots, 2));
    EXPECT_OK(seL4_CNode_Delete(ROOT, slots, DEPTH));
    /* One child left: no reset, the untyped stays full. */
    EXPECT_ERR(retype_at(ut, OBJ_4K_PAGE, 0, slots + 2, 1), seL4_NotEnoughMemory);
    EXPECT_MR(0, 0);
    EXPECT_OK(seL4_CNode_Delete(ROOT, slots + 1, DEPTH));
    EXPECT_OK(retype_at(ut, OBJ_4K_PAGE, 0, slots + 2, 2));
    EXPECT_TAG(slots + 2, CAPSULE_CAPTAG_FRAME_CAP);
    EXPECT_TAG(slots + 3, CAPSULE_CAPTAG_FRAME_CAP);
    return 0;
}

static int device_untyped(void)
{
    unsigned bits;
    seL4_CPtr dev = largest_untyped(1, &bits);
    if (dev == 0) {
        return fail("bootinfo lists no device untyped");
    }
    seL4_CPtr slots = alloc_slots(2);
    EXPECT_ERR(retype_at(dev, seL4_EndpointObject, 0, slots, 1), seL4_InvalidArgument);
    EXPECT_MR(0, 1);
    EXPECT_EMPTY(slots);
    EXPECT_OK(retype_at(dev, OBJ_4K_PAGE, 0, slots + 1, 1));
    EXPECT_TAG(slots + 1, CAPSULE_CAPTAG_FRAME_CAP);
    return 0;
}

static const struct check checks[] = {
    {"RETYPE0001", "Retype an endpoint", endpoint},
    {"RETYPE0002", "Retype a notification", notification},
    {"RETYPE0003", "Retype a TCB", tcb},
    {"RETYPE0004", "Retype a CNode of 2 slots", cnode_radix_1},
    {"RETYPE0005", "Retype a CNode of 16 slots and address its last slot", cnode_radix_4},
    {"RETYPE0006", "Retype a CNode of 1024 slots and address its last slot", cnode_radix_10},
    {"RETYPE0007", "Retype a 4 KiB frame", frame_4k},
    {"RETYPE0008", "Retype a 2 MiB frame", frame_large},
    {"RETYPE0009", "Retype a page table", page_table},
    {"RETYPE0010", "Retype a VSpace root", vspace_root},
    {"RETYPE0011", "Retype untyped children that fill their parent", untyped_children},
    {"RETYPE0012", "Retype the fan-out limit of endpoints at once", fan_out_limit},
    {"RETYPE0013", "More objects than the fan-out limit is RangeError", too_many_objects},
    {"RETYPE0014", "Zero objects is RangeError", zero_objects},
    {"RETYPE0015", "An unknown object type is InvalidArgument 0", bad_type},
    {"RETYPE0016", "An untyped below the minimum size is InvalidArgument 1", tiny_untyped},
    {"RETYPE0017", "A CNode of radix 0 is InvalidArgument 1", cnode_radix_0},
    {"RETYPE0018", "A size above the maximum untyped size is RangeError", huge_size},
    {"RETYPE0019", "A node offset past the CNode's end is RangeError", offset_past_end},
    {"RETYPE0020", "More objects than slots left is RangeError", too_few_slots_left},
    {"RETYPE0021", "Retype into a CNode named by index and depth", into_sub_cnode},
    {"RETYPE0022", "The root CNode named by its own slot as destination",
     explicit_root_destination},
    {"RETYPE0023", "A destination that is not a CNode is FailedLookup", destination_not_cnode},
    {"RETYPE0024", "A full destination slot is DeleteFirst and creates nothing",
     destination_full},
    {"RETYPE0025", "NotEnoughMemory reports the bytes available", not_enough_memory},
    {"RETYPE0026", "An object larger than the untyped is NotEnoughMemory",
     too_big_for_untyped},
    {"RETYPE0027", "Objects are aligned to their size inside the untyped", alignment},
    {"RETYPE0028", "Available memory is counted from the free index",
     available_counts_from_free_index},
    {"RETYPE0029", "Revoke resets the untyped: retyping starts over", reset_after_revoke},
    {"RETYPE0030", "Deleting the last child resets the untyped, not before",
     reset_after_deleting_each_child},
    {"RETYPE0031", "A device untyped gives frames, not endpoints", device_untyped},
};

int main(void)
{
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
