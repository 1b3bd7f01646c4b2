/*
 * ASIDControl_MakePool and ASIDPool_Assign from the root task.
 *
 * Whether a VSpace root has an ASID is visible without mapping anything: a VSpace root
 * (or RISC-V page table) without one cannot be copied, one with an ASID can.
 * Output and exit status: see checks.h.
 */
#include "checks.h"

#define NUM_ASID_POOLS (1ul << seL4_NumASIDPoolsBits)

static seL4_CPtr pool; /* the largest RAM untyped */
static unsigned long pools_made; /* live pools this program created */

#define CARVE(var, bits) EXPECT_OK(make_objects(pool, seL4_UntypedObject, (bits), 1, &(var)))

static seL4_Error make_pool(seL4_CPtr untyped, seL4_CPtr dest)
{
    seL4_Error e = ASIDControl_MakePool(seL4_CapASIDControl, untyped, ROOT, dest, DEPTH);
    if (e == seL4_NoError) {
        pools_made++;
    }
    return e;
}

static seL4_Error copy(seL4_CPtr dest, seL4_CPtr src)
{
    return seL4_CNode_Copy(ROOT, dest, DEPTH, ROOT, src, DEPTH, seL4_AllRights);
}

static int make_one_pool(void)
{
    seL4_CPtr ut, dest = alloc_slot();
    CARVE(ut, seL4_ASIDPoolBits);
    EXPECT_OK(make_pool(ut, dest));
    EXPECT_TAG(dest, CAPSULE_CAPTAG_ASID_POOL_CAP);
    EXPECT_TAG(ut, CAPSULE_CAPTAG_UNTYPED_CAP);
    return 0;
}

static int wrong_size_untyped(void)
{
    seL4_CPtr ut, dest = alloc_slot();
    CARVE(ut, seL4_ASIDPoolBits + 1);
    EXPECT_ERR(make_pool(ut, dest), seL4_InvalidCapability);
    EXPECT_MR(0, 1);
    EXPECT_EMPTY(dest);
    return 0;
}

static int untyped_with_children(void)
{
    seL4_CPtr ut, ep, dest = alloc_slot();
    CARVE(ut, seL4_ASIDPoolBits);
    EXPECT_OK(make_objects(ut, seL4_EndpointObject, 0, 1, &ep));
    EXPECT_ERR(make_pool(ut, dest), seL4_RevokeFirst);
    EXPECT_EMPTY(dest);
    return 0;
}

static int full_destination(void)
{
    seL4_CPtr ut, dest = alloc_slot();
    CARVE(ut, seL4_ASIDPoolBits);
    EXPECT_OK(copy(dest, seL4_CapInitThreadTCB));
    EXPECT_ERR(make_pool(ut, dest), seL4_DeleteFirst);
    EXPECT_TAG(dest, CAPSULE_CAPTAG_THREAD_CAP);
    return 0;
}

static int device_untyped(void)
{
    seL4_CPtr dev = largest_untyped(1, 0);
    if (dev == 0) {
        return fail("bootinfo lists no device untyped");
    }
    seL4_CPtr small, dest = alloc_slot();
    EXPECT_OK(make_objects(dev, seL4_UntypedObject, seL4_ASIDPoolBits, 1, &small));
    EXPECT_ERR(make_pool(small, dest), seL4_InvalidCapability);
    EXPECT_MR(0, 1);
    return 0;
}

/* A fresh VSpace root, or 0. */
static seL4_CPtr new_vspace(void)
{
    seL4_CPtr vs;
    return make_objects(pool, OBJ_VSPACE, 0, 1, &vs) == seL4_NoError ? vs : 0;
}

static int unassigned_vspace_cannot_be_copied(void)
{
    seL4_CPtr vs = new_vspace(), dest = alloc_slot();
    if (vs == 0) {
        return fail("could not retype a VSpace root");
    }
    EXPECT_ERR(copy(dest, vs), seL4_IllegalOperation);
    EXPECT_EMPTY(dest);
    return 0;
}

static int assign_to_new_pool(void)
{
    seL4_CPtr ut, asid_pool = alloc_slot(), dest = alloc_slot();
    CARVE(ut, seL4_ASIDPoolBits);
    EXPECT_OK(make_pool(ut, asid_pool));
    seL4_CPtr vs = new_vspace();
    if (vs == 0) {
        return fail("could not retype a VSpace root");
    }
    EXPECT_OK(ASIDPool_Assign(asid_pool, vs));
    EXPECT_OK(copy(dest, vs));
    EXPECT_TAG(dest, TAG_VSPACE);
    /* A VSpace root gets one ASID only. */
    EXPECT_ERR(ASIDPool_Assign(asid_pool, vs), seL4_InvalidCapability);
    EXPECT_MR(0, 1);
    return 0;
}

static int assign_to_initial_pool(void)
{
    seL4_CPtr vs = new_vspace(), dest = alloc_slot();
    if (vs == 0) {
        return fail("could not retype a VSpace root");
    }
    EXPECT_OK(ASIDPool_Assign(seL4_CapInitThreadASIDPool, vs));
    EXPECT_OK(copy(dest, vs));
    return 0;
}

static int assign_not_a_vspace(void)
{
    seL4_CPtr ep;
    EXPECT_OK(make_objects(pool, seL4_EndpointObject, 0, 1, &ep));
    EXPECT_ERR(ASIDPool_Assign(seL4_CapInitThreadASIDPool, ep), seL4_InvalidCapability);
    EXPECT_MR(0, 1);
    return 0;
}

static int pools_run_out(void)
{
    /* The initial pool is one of the 2^7; make pools until the kernel says no. */
    unsigned long want = NUM_ASID_POOLS - 1 - pools_made;
    seL4_CPtr uts, dests = alloc_slots(want + 1);
    EXPECT_OK(make_objects(pool, seL4_UntypedObject, seL4_ASIDPoolBits, want + 1, &uts));
    for (unsigned long i = 0; i < want; i++) {
        seL4_Error e = make_pool(uts + i, dests + i);
        if (e != seL4_NoError) {
            return fail("pool %lu of %lu: %s", i + 1, want, error_name(e));
        }
    }
    EXPECT_ERR(make_pool(uts + want, dests + want), seL4_DeleteFirst);
    EXPECT_EMPTY(dests + want);
    /* Deleting a pool frees its place. */
    EXPECT_OK(seL4_CNode_Delete(ROOT, dests, DEPTH));
    pools_made--;
    EXPECT_OK(make_pool(uts + want, dests + want));
    EXPECT_TAG(dests + want, CAPSULE_CAPTAG_ASID_POOL_CAP);
    return 0;
}

static const struct check checks[] = {
    {"ASIDPOOL0001", "MakePool from a 4 KiB untyped", make_one_pool},
    {"ASIDPOOL0002", "MakePool from an 8 KiB untyped is InvalidCapability 1",
     wrong_size_untyped},
    {"ASIDPOOL0003", "MakePool from an untyped with children is RevokeFirst",
     untyped_with_children},
    {"ASIDPOOL0004", "MakePool into a full slot is DeleteFirst", full_destination},
    {"ASIDPOOL0005", "MakePool from device memory is InvalidCapability 1", device_untyped},
    {"ASIDPOOL0006", "A VSpace root without an ASID cannot be copied",
     unassigned_vspace_cannot_be_copied},
    {"ASIDPOOL0007", "Assign a VSpace root to a new pool, once", assign_to_new_pool},
    {"ASIDPOOL0008", "Assign a VSpace root to the initial thread's pool",
     assign_to_initial_pool},
    {"ASIDPOOL0009", "Assign of an endpoint is InvalidCapability 1", assign_not_a_vspace},
    {"ASIDPOOL0010", "Pools run out at 2^7 and deleting one frees its place", pools_run_out},
};

int main(void)
{
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
