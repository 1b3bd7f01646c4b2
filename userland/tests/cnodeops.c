/*
 * CNode invocations from the root task: Copy, Mint, Move, Mutate, Rotate, Delete,
 * Revoke, CancelBadgedSends and SaveCaller, their successes and their main errors.
 *
 * Every check works in fresh slots of the root CNode (bootinfo's empty region) and
 * looks at the result with seL4_DebugCapIdentify. Objects come from the largest RAM
 * untyped. Output and exit status: see checks.h.
 */
#include "checks.h"

static seL4_CPtr pool; /* the largest RAM untyped */

/* One fresh object of `type` in a new slot, or 0 (the check then fails). */
static seL4_CPtr new_object(seL4_Word type, seL4_Word size_bits)
{
    seL4_CPtr slot;
    if (make_objects(pool, type, size_bits, 1, &slot) != seL4_NoError) {
        return 0;
    }
    return slot;
}

/* A fresh untyped of 2^bits bytes carved from the pool, or 0. */
static seL4_CPtr new_untyped(seL4_Word bits)
{
    return new_object(seL4_UntypedObject, bits);
}

static seL4_Error copy(seL4_CPtr dest, seL4_CPtr src)
{
    return seL4_CNode_Copy(ROOT, dest, DEPTH, ROOT, src, DEPTH, seL4_AllRights);
}

#define NEED(slot)                                                                         \
    do {                                                                                   \
        if ((slot) == 0) {                                                                 \
            return fail("line %d: could not create %s (Untyped_Retype failed)", __LINE__,  \
                        #slot);                                                            \
        }                                                                                  \
    } while (0)

/* ---- Copy ---- */

static int copy_tcb(void)
{
    seL4_CPtr dest = alloc_slot();
    EXPECT_OK(copy(dest, seL4_CapInitThreadTCB));
    EXPECT_TAG(dest, CAPSULE_CAPTAG_THREAD_CAP);
    EXPECT_TAG(seL4_CapInitThreadTCB, CAPSULE_CAPTAG_THREAD_CAP);
    return 0;
}

static int copy_into_full_slot(void)
{
    seL4_CPtr dest = alloc_slot();
    EXPECT_OK(copy(dest, seL4_CapDomain));
    EXPECT_ERR(copy(dest, seL4_CapInitThreadTCB), seL4_DeleteFirst);
    EXPECT_TAG(dest, CAPSULE_CAPTAG_DOMAIN_CAP);
    return 0;
}

static int copy_from_empty_slot(void)
{
    seL4_CPtr dest = alloc_slot(), src = alloc_slot();
    EXPECT_ERR(copy(dest, src), seL4_FailedLookup);
    EXPECT_MR(0, 1); /* the source lookup failed */
    EXPECT_MR(1, seL4_MissingCapability);
    EXPECT_MR(2, DEPTH); /* bits left: the source depth */
    EXPECT_EMPTY(dest);
    return 0;
}

static int copy_depth_zero(void)
{
    seL4_CPtr dest = alloc_slot();
    EXPECT_ERR(seL4_CNode_Copy(ROOT, dest, 0, ROOT, seL4_CapInitThreadTCB, DEPTH,
                               seL4_AllRights),
               seL4_RangeError);
    EXPECT_MR(0, 1);
    EXPECT_MR(1, DEPTH);
    EXPECT_EMPTY(dest);
    return 0;
}

static int copy_irq_control(void)
{
    seL4_CPtr dest = alloc_slot();
    EXPECT_ERR(copy(dest, seL4_CapIRQControl), seL4_IllegalOperation);
    EXPECT_EMPTY(dest);
    return 0;
}

static int copy_truncated(void)
{
    /* A Copy whose message stops before the rights word. */
    seL4_CPtr dest = alloc_slot();
    seL4_SetCap(0, ROOT);
    seL4_SetMR(0, dest);
    seL4_SetMR(1, DEPTH);
    seL4_SetMR(2, seL4_CapInitThreadTCB);
    seL4_SetMR(3, DEPTH);
    seL4_MessageInfo_t reply = seL4_Call(ROOT, seL4_MessageInfo_new(CNodeCopy, 0, 1, 4));
    EXPECT_ERR((seL4_Error)seL4_MessageInfo_get_label(reply), seL4_TruncatedMessage);
    /* ... and one without its extra cap. */
    seL4_SetMR(0, dest);
    seL4_SetMR(1, DEPTH);
    seL4_SetMR(2, seL4_CapInitThreadTCB);
    seL4_SetMR(3, DEPTH);
    seL4_SetMR(4, seL4_AllRights.words[0]);
    reply = seL4_Call(ROOT, seL4_MessageInfo_new(CNodeCopy, 0, 0, 5));
    EXPECT_ERR((seL4_Error)seL4_MessageInfo_get_label(reply), seL4_TruncatedMessage);
    EXPECT_EMPTY(dest);
    return 0;
}

static int guard_mismatch_detail(void)
{
    /* 32 bits cannot get past the root CNode's 52-bit guard. */
    EXPECT_ERR(seL4_CNode_Delete(ROOT, 0, 32), seL4_FailedLookup);
    EXPECT_MR(0, 0); /* not a source lookup */
    EXPECT_MR(1, seL4_GuardMismatch);
    EXPECT_MR(2, 32);                                                      /* bits left */
    EXPECT_MR(3, 0);                                                       /* guard found */
    EXPECT_MR(4, DEPTH - seL4_GetBootInfo()->initThreadCNodeSizeBits);     /* guard size */
    return 0;
}

/* ---- Delete ---- */

static int delete_copy(void)
{
    seL4_CPtr dest = alloc_slot();
    EXPECT_OK(copy(dest, seL4_CapInitThreadTCB));
    EXPECT_OK(seL4_CNode_Delete(ROOT, dest, DEPTH));
    EXPECT_EMPTY(dest);
    EXPECT_TAG(seL4_CapInitThreadTCB, CAPSULE_CAPTAG_THREAD_CAP);
    return 0;
}

static int delete_empty(void)
{
    seL4_CPtr slot = alloc_slot();
    EXPECT_OK(seL4_CNode_Delete(ROOT, slot, DEPTH));
    EXPECT_EMPTY(slot);
    return 0;
}

/* ---- Move ---- */

static int move_cap(void)
{
    seL4_CPtr a = alloc_slot(), b = alloc_slot();
    EXPECT_OK(copy(a, seL4_CapInitThreadTCB));
    EXPECT_OK(seL4_CNode_Move(ROOT, b, DEPTH, ROOT, a, DEPTH));
    EXPECT_EMPTY(a);
    EXPECT_TAG(b, CAPSULE_CAPTAG_THREAD_CAP);
    return 0;
}

static int move_into_full_slot(void)
{
    seL4_CPtr a = alloc_slot(), b = alloc_slot();
    EXPECT_OK(copy(a, seL4_CapInitThreadTCB));
    EXPECT_OK(copy(b, seL4_CapDomain));
    EXPECT_ERR(seL4_CNode_Move(ROOT, b, DEPTH, ROOT, a, DEPTH), seL4_DeleteFirst);
    EXPECT_TAG(a, CAPSULE_CAPTAG_THREAD_CAP);
    EXPECT_TAG(b, CAPSULE_CAPTAG_DOMAIN_CAP);
    return 0;
}

static int move_from_empty_slot(void)
{
    seL4_CPtr a = alloc_slot(), b = alloc_slot();
    EXPECT_ERR(seL4_CNode_Move(ROOT, b, DEPTH, ROOT, a, DEPTH), seL4_FailedLookup);
    EXPECT_MR(0, 1);
    EXPECT_MR(1, seL4_MissingCapability);
    return 0;
}

/* ---- Mint and CancelBadgedSends ---- */

static int mint_badge(void)
{
    seL4_CPtr ep = new_object(seL4_EndpointObject, 0);
    NEED(ep);
    seL4_CPtr badged = alloc_slot();
    EXPECT_OK(seL4_CNode_Mint(ROOT, badged, DEPTH, ROOT, ep, DEPTH, seL4_AllRights, 0x42));
    EXPECT_TAG(badged, CAPSULE_CAPTAG_ENDPOINT_CAP);
    EXPECT_TAG(ep, CAPSULE_CAPTAG_ENDPOINT_CAP);
    return 0;
}

static int mint_rebadge(void)
{
    seL4_CPtr ep = new_object(seL4_EndpointObject, 0);
    NEED(ep);
    seL4_CPtr badged = alloc_slot(), again = alloc_slot();
    EXPECT_OK(seL4_CNode_Mint(ROOT, badged, DEPTH, ROOT, ep, DEPTH, seL4_AllRights, 7));
    /* A badged cap cannot be given another badge. */
    EXPECT_ERR(seL4_CNode_Mint(ROOT, again, DEPTH, ROOT, badged, DEPTH, seL4_AllRights, 8),
               seL4_IllegalOperation);
    EXPECT_EMPTY(again);
    return 0;
}

static int cancel_badged_sends(void)
{
    seL4_CPtr ep = new_object(seL4_EndpointObject, 0);
    NEED(ep);
    seL4_CPtr badged = alloc_slot();
    EXPECT_OK(seL4_CNode_Mint(ROOT, badged, DEPTH, ROOT, ep, DEPTH, seL4_AllRights, 5));
    EXPECT_OK(seL4_CNode_CancelBadgedSends(ROOT, badged, DEPTH));
    EXPECT_OK(seL4_CNode_CancelBadgedSends(ROOT, ep, DEPTH)); /* unbadged: nothing to do */
    return 0;
}

static int cancel_badged_sends_read_only(void)
{
    seL4_CPtr ep = new_object(seL4_EndpointObject, 0);
    NEED(ep);
    seL4_CPtr ro = alloc_slot();
    EXPECT_OK(seL4_CNode_Mint(ROOT, ro, DEPTH, ROOT, ep, DEPTH, seL4_CanRead, 9));
    /* Cancelling needs every right: the mint kept only Read. */
    EXPECT_ERR(seL4_CNode_CancelBadgedSends(ROOT, ro, DEPTH), seL4_IllegalOperation);
    return 0;
}

static int cancel_badged_sends_not_endpoint(void)
{
    EXPECT_ERR(seL4_CNode_CancelBadgedSends(ROOT, seL4_CapInitThreadTCB, DEPTH),
               seL4_IllegalOperation);
    return 0;
}

/* ---- Mutate ---- */

static int mutate_tcb(void)
{
    seL4_CPtr a = alloc_slot(), b = alloc_slot();
    EXPECT_OK(copy(a, seL4_CapInitThreadTCB));
    EXPECT_OK(seL4_CNode_Mutate(ROOT, b, DEPTH, ROOT, a, DEPTH, 0));
    EXPECT_EMPTY(a);
    EXPECT_TAG(b, CAPSULE_CAPTAG_THREAD_CAP);
    return 0;
}

static int mutate_endpoint(void)
{
    seL4_CPtr ep = new_object(seL4_EndpointObject, 0);
    NEED(ep);
    seL4_CPtr b = alloc_slot();
    /* Mutate cannot set a badge: the new cap would be null. */
    EXPECT_ERR(seL4_CNode_Mutate(ROOT, b, DEPTH, ROOT, ep, DEPTH, 3), seL4_IllegalOperation);
    EXPECT_TAG(ep, CAPSULE_CAPTAG_ENDPOINT_CAP);
    EXPECT_EMPTY(b);
    return 0;
}

static int mutate_cnode_guard(void)
{
    const seL4_Word radix = 4;
    seL4_CPtr cn = new_object(seL4_CapTableObject, radix);
    NEED(cn);
    /* Without a guard, `radix` bits address a slot and 64 bits are too many. */
    EXPECT_OK(seL4_CNode_Copy(cn, 3, radix, ROOT, seL4_CapInitThreadTCB, DEPTH,
                              seL4_AllRights));
    EXPECT_ERR(seL4_CNode_Copy(cn, 4, DEPTH, ROOT, seL4_CapInitThreadTCB, DEPTH,
                               seL4_AllRights),
               seL4_FailedLookup);
    /* Mutate to a guard of 64 - radix zero bits: now exactly the reverse holds. */
    seL4_CPtr guarded = alloc_slot();
    seL4_CNode_CapData_t data = seL4_CNode_CapData_new(0, DEPTH - radix);
    EXPECT_OK(seL4_CNode_Mutate(ROOT, guarded, DEPTH, ROOT, cn, DEPTH, data.words[0]));
    EXPECT_EMPTY(cn);
    EXPECT_TAG(guarded, CAPSULE_CAPTAG_CNODE_CAP);
    EXPECT_OK(seL4_CNode_Copy(guarded, 5, DEPTH, ROOT, seL4_CapInitThreadTCB, DEPTH,
                              seL4_AllRights));
    EXPECT_ERR(seL4_CNode_Copy(guarded, 6, radix, ROOT, seL4_CapInitThreadTCB, DEPTH,
                               seL4_AllRights),
               seL4_FailedLookup);
    /* Slot 3, filled before the mutate, is still there. */
    EXPECT_ERR(seL4_CNode_Copy(guarded, 3, DEPTH, ROOT, seL4_CapInitThreadTCB, DEPTH,
                               seL4_AllRights),
               seL4_DeleteFirst);
    return 0;
}

/* ---- Rotate ---- */

static int rotate_three(void)
{
    seL4_CPtr dest = alloc_slot(), pivot = alloc_slot(), src = alloc_slot();
    EXPECT_OK(copy(pivot, seL4_CapDomain));
    EXPECT_OK(copy(src, seL4_CapInitThreadTCB));
    EXPECT_OK(seL4_CNode_Rotate(ROOT, dest, DEPTH, 0, ROOT, pivot, DEPTH, 0, ROOT, src, DEPTH));
    EXPECT_TAG(dest, CAPSULE_CAPTAG_DOMAIN_CAP);
    EXPECT_TAG(pivot, CAPSULE_CAPTAG_THREAD_CAP);
    EXPECT_EMPTY(src);
    return 0;
}

static int rotate_swap(void)
{
    /* dest == src: the two caps trade places. */
    seL4_CPtr a = alloc_slot(), b = alloc_slot();
    EXPECT_OK(copy(a, seL4_CapInitThreadTCB));
    EXPECT_OK(copy(b, seL4_CapDomain));
    EXPECT_OK(seL4_CNode_Rotate(ROOT, a, DEPTH, 0, ROOT, b, DEPTH, 0, ROOT, a, DEPTH));
    EXPECT_TAG(a, CAPSULE_CAPTAG_DOMAIN_CAP);
    EXPECT_TAG(b, CAPSULE_CAPTAG_THREAD_CAP);
    return 0;
}

static int rotate_pivot_is_src(void)
{
    seL4_CPtr dest = alloc_slot(), src = alloc_slot();
    EXPECT_OK(copy(src, seL4_CapInitThreadTCB));
    EXPECT_ERR(seL4_CNode_Rotate(ROOT, dest, DEPTH, 0, ROOT, src, DEPTH, 0, ROOT, src, DEPTH),
               seL4_IllegalOperation);
    EXPECT_TAG(src, CAPSULE_CAPTAG_THREAD_CAP);
    EXPECT_EMPTY(dest);
    return 0;
}

static int rotate_into_full_slot(void)
{
    seL4_CPtr dest = alloc_slot(), pivot = alloc_slot(), src = alloc_slot();
    EXPECT_OK(copy(dest, seL4_CapDomain));
    EXPECT_OK(copy(pivot, seL4_CapInitThreadTCB));
    EXPECT_OK(copy(src, seL4_CapInitThreadTCB));
    EXPECT_ERR(seL4_CNode_Rotate(ROOT, dest, DEPTH, 0, ROOT, pivot, DEPTH, 0, ROOT, src, DEPTH),
               seL4_DeleteFirst);
    EXPECT_TAG(dest, CAPSULE_CAPTAG_DOMAIN_CAP);
    EXPECT_TAG(pivot, CAPSULE_CAPTAG_THREAD_CAP);
    EXPECT_TAG(src, CAPSULE_CAPTAG_THREAD_CAP);
    return 0;
}

/* ---- Revoke ---- */

static int revoke_endpoint(void)
{
    seL4_CPtr ep = new_object(seL4_EndpointObject, 0);
    NEED(ep);
    seL4_CPtr minted = alloc_slot(), copied = alloc_slot();
    EXPECT_OK(seL4_CNode_Mint(ROOT, minted, DEPTH, ROOT, ep, DEPTH, seL4_AllRights, 0x11));
    EXPECT_OK(copy(copied, ep));
    EXPECT_OK(seL4_CNode_Revoke(ROOT, ep, DEPTH));
    EXPECT_EMPTY(minted);
    EXPECT_EMPTY(copied);
    EXPECT_TAG(ep, CAPSULE_CAPTAG_ENDPOINT_CAP);
    return 0;
}

static int revoke_untyped(void)
{
    seL4_CPtr ut = new_untyped(12);
    NEED(ut);
    seL4_CPtr eps;
    EXPECT_OK(make_objects(ut, seL4_EndpointObject, 0, 2, &eps));
    EXPECT_TAG(eps, CAPSULE_CAPTAG_ENDPOINT_CAP);
    EXPECT_TAG(eps + 1, CAPSULE_CAPTAG_ENDPOINT_CAP);
    EXPECT_OK(seL4_CNode_Revoke(ROOT, ut, DEPTH));
    EXPECT_EMPTY(eps);
    EXPECT_EMPTY(eps + 1);
    EXPECT_TAG(ut, CAPSULE_CAPTAG_UNTYPED_CAP);
    return 0;
}

static int copy_untyped_with_children(void)
{
    seL4_CPtr ut = new_untyped(12);
    NEED(ut);
    seL4_CPtr ep, dest = alloc_slot();
    EXPECT_OK(make_objects(ut, seL4_EndpointObject, 0, 1, &ep));
    EXPECT_ERR(copy(dest, ut), seL4_RevokeFirst);
    EXPECT_EMPTY(dest);
    return 0;
}

static int copy_untyped_without_children(void)
{
    seL4_CPtr ut = new_untyped(12);
    NEED(ut);
    seL4_CPtr dest = alloc_slot();
    EXPECT_OK(copy(dest, ut));
    EXPECT_TAG(dest, CAPSULE_CAPTAG_UNTYPED_CAP);
    return 0;
}

/* ---- SaveCaller ---- */

static int save_caller_nothing(void)
{
    /* Nobody called the root task: there is no reply cap to save. */
    seL4_CPtr slot = alloc_slot();
    EXPECT_OK(seL4_CNode_SaveCaller(ROOT, slot, DEPTH));
    EXPECT_EMPTY(slot);
    return 0;
}

static int save_caller_full_slot(void)
{
    seL4_CPtr slot = alloc_slot();
    EXPECT_OK(copy(slot, seL4_CapInitThreadTCB));
    EXPECT_ERR(seL4_CNode_SaveCaller(ROOT, slot, DEPTH), seL4_DeleteFirst);
    EXPECT_TAG(slot, CAPSULE_CAPTAG_THREAD_CAP);
    return 0;
}

/* ---- the invoked cap ---- */

static int cnode_label_on_tcb(void)
{
    seL4_CPtr dest = alloc_slot();
    EXPECT_ERR(seL4_CNode_Copy(seL4_CapInitThreadTCB, dest, DEPTH, ROOT, seL4_CapDomain, DEPTH,
                               seL4_AllRights),
               seL4_IllegalOperation);
    EXPECT_EMPTY(dest);
    return 0;
}

static const struct check checks[] = {
    {"CNODEOP0001", "Copy the TCB cap into an empty slot", copy_tcb},
    {"CNODEOP0002", "Copy into a full slot is DeleteFirst", copy_into_full_slot},
    {"CNODEOP0003", "Copy from an empty slot is FailedLookup on the source",
     copy_from_empty_slot},
    {"CNODEOP0004", "Copy with depth 0 is RangeError 1..64", copy_depth_zero},
    {"CNODEOP0005", "Copy of IRQControl is IllegalOperation", copy_irq_control},
    {"CNODEOP0006", "Copy with a short message or no extra cap is TruncatedMessage",
     copy_truncated},
    {"CNODEOP0007", "A guard mismatch reports its lookup failure words", guard_mismatch_detail},
    {"CNODEOP0008", "Delete a copy, the original stays", delete_copy},
    {"CNODEOP0009", "Delete an empty slot succeeds", delete_empty},
    {"CNODEOP0010", "Move a cap to an empty slot", move_cap},
    {"CNODEOP0011", "Move into a full slot is DeleteFirst", move_into_full_slot},
    {"CNODEOP0012", "Move from an empty slot is FailedLookup", move_from_empty_slot},
    {"CNODEOP0013", "Mint a badged endpoint cap", mint_badge},
    {"CNODEOP0014", "Mint a new badge onto a badged cap is IllegalOperation", mint_rebadge},
    {"CNODEOP0015", "CancelBadgedSends on badged and unbadged endpoints", cancel_badged_sends},
    {"CNODEOP0016", "CancelBadgedSends without full rights is IllegalOperation",
     cancel_badged_sends_read_only},
    {"CNODEOP0017", "CancelBadgedSends on a TCB cap is IllegalOperation",
     cancel_badged_sends_not_endpoint},
    {"CNODEOP0018", "Mutate moves a TCB cap", mutate_tcb},
    {"CNODEOP0019", "Mutate of an endpoint cap is IllegalOperation", mutate_endpoint},
    {"CNODEOP0020", "Mutate sets a CNode cap's guard", mutate_cnode_guard},
    {"CNODEOP0021", "Rotate three slots", rotate_three},
    {"CNODEOP0022", "Rotate with dest == src swaps two caps", rotate_swap},
    {"CNODEOP0023", "Rotate with pivot == src is IllegalOperation", rotate_pivot_is_src},
    {"CNODEOP0024", "Rotate into a full slot is DeleteFirst", rotate_into_full_slot},
    {"CNODEOP0025", "Revoke an endpoint deletes its minted and copied children",
     revoke_endpoint},
    {"CNODEOP0026", "Revoke an untyped deletes the objects retyped from it", revoke_untyped},
    {"CNODEOP0027", "Copy of an untyped with children is RevokeFirst",
     copy_untyped_with_children},
    {"CNODEOP0028", "Copy of an untyped without children", copy_untyped_without_children},
    {"CNODEOP0029", "SaveCaller with no caller leaves the slot empty", save_caller_nothing},
    {"CNODEOP0030", "SaveCaller into a full slot is DeleteFirst", save_caller_full_slot},
    {"CNODEOP0031", "A CNode label on a TCB cap is IllegalOperation", cnode_label_on_tcb},
};

int main(void)
{
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
