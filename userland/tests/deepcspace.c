/*
 * CSpaces as deep as a guest cares to make them: chains of CHAIN radix-1 CNodes, each
 * holding in slot 0 a copy of the cap to the next. The kernel resolves, deletes and
 * revokes through them; the host's tools that show a CSpace (capsule cspace, the
 * debugger, checkpoints) must cope with them too (DESIGN.md decision 9).
 *
 * The run ends with one such chain in the CSpace, the one DEEPCS0001 builds (its CNode
 * caps in the first CHAIN slots the program allocates), for the tests to look at.
 * Output and exit status: see checks.h.
 */
#include "checks.h"

#define CHAIN 1200
#define RADIX 1 /* two slots: 0 holds the next CNode, 1 is spare */
#define CHAIN_UNTYPED_BITS 17 /* room for CHAIN CNodes of 2^(RADIX + 5) bytes */

static seL4_CPtr pool; /* the largest RAM untyped */

/*
 * CHAIN CNodes retyped from `ut` into new consecutive root slots, the first in *first;
 * each but the last holds in slot 0 a copy of the cap to the next.
 */
static int build_chain(seL4_CPtr ut, seL4_CPtr *first)
{
    seL4_CPtr base = alloc_slots(CHAIN);
    for (unsigned long done = 0; done < CHAIN; done += 256) {
        unsigned long n = CHAIN - done < 256 ? CHAIN - done : 256;
        EXPECT_OK(seL4_Untyped_Retype(ut, seL4_CapTableObject, RADIX, ROOT, 0, 0, base + done,
                                      n));
    }
    for (unsigned long i = 0; i + 1 < CHAIN; i++) {
        EXPECT_OK(seL4_CNode_Copy(base + i, 0, RADIX, ROOT, base + i + 1, DEPTH,
                                  seL4_AllRights));
    }
    *first = base;
    return 0;
}

/* A new untyped of CHAIN_UNTYPED_BITS from the pool, or 0. */
static seL4_CPtr chain_untyped(void)
{
    seL4_CPtr slot;
    if (make_objects(pool, seL4_UntypedObject, CHAIN_UNTYPED_BITS, 1, &slot) != seL4_NoError) {
        return 0;
    }
    return slot;
}

/* Every root slot of the chain at `base` is empty, and `ut` has no children left: a
 * retype of all its memory succeeds only if the untyped was reset, which it is only when
 * no cap to anything in it remains (the copies inside the chain included). */
static int expect_chain_gone(seL4_CPtr base, seL4_CPtr ut)
{
    for (unsigned long i = 0; i < CHAIN; i++) {
        EXPECT_EMPTY(base + i);
    }
    seL4_CPtr whole = alloc_slot();
    EXPECT_OK(seL4_Untyped_Retype(ut, seL4_UntypedObject, CHAIN_UNTYPED_BITS, ROOT, 0, 0, whole,
                                  1));
    return 0;
}

static int build_and_resolve(void)
{
    seL4_CPtr base;
    EXPECT_PASS(build_chain(pool, &base));
    for (unsigned long i = 0; i < CHAIN; i++) {
        EXPECT_TAG(base + i, CAPSULE_CAPTAG_CNODE_CAP);
    }
    /* 64 bits from the top CNode, one a level: 63 zeros take slot 0 down the chain, the
     * last bit 1 names slot 1 of the 64th CNode, the deepest slot a CPtr can name. */
    EXPECT_OK(seL4_CNode_Copy(base, 1, DEPTH, ROOT, seL4_CapDomain, DEPTH, seL4_AllRights));
    EXPECT_ERR(seL4_CNode_Copy(base, 1, DEPTH, ROOT, seL4_CapDomain, DEPTH, seL4_AllRights),
               seL4_DeleteFirst);
    EXPECT_OK(seL4_CNode_Delete(base, 1, DEPTH));
    EXPECT_OK(seL4_CNode_Copy(base, 1, DEPTH, ROOT, seL4_CapDomain, DEPTH, seL4_AllRights));
    EXPECT_OK(seL4_CNode_Delete(base, 1, DEPTH));
    return 0;
}

static int delete_from_the_top(void)
{
    seL4_CPtr ut = chain_untyped(), base;
    if (ut == 0) {
        return fail("could not carve an untyped of %d bits", CHAIN_UNTYPED_BITS);
    }
    EXPECT_PASS(build_chain(ut, &base));
    /* The root caps go first, each not final (its copy sits in the CNode above), then
     * the top one, final: its CNode goes. As on seL4, each CNode below, whose last cap
     * went with the CNode above, stays as a zombie in its own slot 0, so the chain's
     * memory is still in use: a retype of the whole untyped fails until it is revoked. */
    for (unsigned long i = CHAIN - 1; i > 0; i--) {
        EXPECT_OK(seL4_CNode_Delete(ROOT, base + i, DEPTH));
    }
    EXPECT_OK(seL4_CNode_Delete(ROOT, base, DEPTH));
    seL4_CPtr whole = alloc_slot();
    EXPECT_ERR(seL4_Untyped_Retype(ut, seL4_UntypedObject, CHAIN_UNTYPED_BITS, ROOT, 0, 0,
                                   whole, 1), seL4_NotEnoughMemory);
    EXPECT_OK(seL4_CNode_Revoke(ROOT, ut, DEPTH));
    return expect_chain_gone(base, ut);
}

static int revoke_the_untyped(void)
{
    seL4_CPtr ut = chain_untyped(), base;
    if (ut == 0) {
        return fail("could not carve an untyped of %d bits", CHAIN_UNTYPED_BITS);
    }
    EXPECT_PASS(build_chain(ut, &base));
    EXPECT_OK(seL4_CNode_Revoke(ROOT, ut, DEPTH));
    return expect_chain_gone(base, ut);
}

static const struct check checks[] = {
    {"DEEPCS0001", "A chain of 1200 CNodes is built; a CPtr resolves 64 levels down it",
     build_and_resolve},
    {"DEEPCS0002", "Deleting a 1200-deep chain's caps leaves zombies; revoking empties it",
     delete_from_the_top},
    {"DEEPCS0003", "Revoking the untyped of a 1200-deep chain empties it", revoke_the_untyped},
};

int main(void)
{
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
