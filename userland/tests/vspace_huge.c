/*
 * The largest frame seL4 has, from the root task: a 1 GiB page (RISC-V Giga_Page, a
 * leaf in the Sv39 root table; AArch64 HugePage, a block entry in an L1 table of the
 * 4-level, 48-bit VSpace: the one boot made for the root task's image, as L0 entry 0
 * covers the low 512 GiB). Retyped from a 1 GiB untyped, mapped, written at
 * both ends, its address checked, a misaligned map refused, unmapped.
 *
 * The image needs a naturally aligned 1 GiB RAM untyped, so tests/guest runs it with
 * more RAM than the default (userland/build.py, IMAGE_CONFIGS). The checks run in order
 * and share the one frame: it is far too big to make one per check. Output and exit
 * status: see checks.h.
 */
#include "checks.h"

#if defined(__riscv)
#define OBJ_HUGE_PAGE seL4_RISCV_Giga_Page
#define Page_Map seL4_RISCV_Page_Map
#define Page_Unmap seL4_RISCV_Page_Unmap
#define Page_GetAddress seL4_RISCV_Page_GetAddress
#define ATTR seL4_RISCV_Default_VMAttributes
#else
#define OBJ_HUGE_PAGE seL4_ARM_HugePageObject
#define Page_Map seL4_ARM_Page_Map
#define Page_Unmap seL4_ARM_Page_Unmap
#define Page_GetAddress seL4_ARM_Page_GetAddress
#define ATTR seL4_ARM_Default_VMAttributes
#endif

#define VSPACE seL4_CapInitThreadVSpace
#define HUGE_BITS 30
#define HUGE (1ul << HUGE_BITS)
/* 64 GiB: 1 GiB-aligned, far from the root task's image (below 16 MiB on both
 * architectures), its whole 1 GiB below the user limit of both (256 GiB). */
#define HUGE_VADDR (64ul << 30)
#define LAST_WORD (HUGE_VADDR + HUGE - sizeof(seL4_Word))

#define VOLATILE_WORD(va) (*(volatile seL4_Word *)(va))

static seL4_CPtr pool; /* checks_main wants it; the frame comes from its own untyped */
static seL4_CPtr huge; /* the 1 GiB frame, once retyped */
static seL4_Word huge_ut_paddr; /* where the untyped it came from starts */

/* A RAM untyped of exactly 1 GiB or more, naturally aligned (every boot untyped is). */
static seL4_CPtr gigabyte_untyped(seL4_Word *paddr, unsigned *bits)
{
    seL4_BootInfo *bi = seL4_GetBootInfo();
    for (seL4_CPtr s = bi->untyped.start; s < bi->untyped.end; s++) {
        const seL4_UntypedDesc *d = &bi->untypedList[s - bi->untyped.start];
        if (!d->isDevice && d->sizeBits >= HUGE_BITS) {
            *paddr = d->paddr;
            *bits = d->sizeBits;
            return s;
        }
    }
    return 0;
}

static int retype_a_huge_frame(void)
{
    unsigned bits = 0;
    seL4_CPtr ut = gigabyte_untyped(&huge_ut_paddr, &bits);
    if (ut == 0) {
        return fail("no RAM untyped of 1 GiB or more in bootinfo");
    }
    if (huge_ut_paddr & (HUGE - 1)) {
        return fail("the untyped at %#lx is not 1 GiB-aligned", (unsigned long)huge_ut_paddr);
    }
    seL4_CPtr f;
    EXPECT_OK(make_objects(ut, OBJ_HUGE_PAGE, 0, 1, &f));
    EXPECT_TAG(f, CAPSULE_CAPTAG_FRAME_CAP);
    huge = f;
    return 0;
}

static int map_and_use_both_ends(void)
{
    if (huge == 0) {
        return fail("no frame (VSPACEH0001 failed)");
    }
    /* No page table needed: the 1 GiB entry goes into the root table (RISC-V) or the
     * L1 table boot made for the image (AArch64). */
    EXPECT_OK(Page_Map(huge, VSPACE, HUGE_VADDR, seL4_ReadWrite, ATTR));
    if (VOLATILE_WORD(HUGE_VADDR) != 0 || VOLATILE_WORD(LAST_WORD) != 0) {
        return fail("a fresh 1 GiB frame is not zero at its ends");
    }
    VOLATILE_WORD(HUGE_VADDR) = 0x0123456789abcdeful;
    VOLATILE_WORD(LAST_WORD) = 0xfedcba9876543210ul;
    EXPECT_EQ(VOLATILE_WORD(HUGE_VADDR), 0x0123456789abcdeful);
    EXPECT_EQ(VOLATILE_WORD(LAST_WORD), 0xfedcba9876543210ul);
    return 0;
}

static int get_address_is_the_untyped_base(void)
{
    if (huge == 0) {
        return fail("no frame (VSPACEH0001 failed)");
    }
    __typeof__(Page_GetAddress(huge)) x = Page_GetAddress(huge);
    EXPECT_OK((seL4_Error)x.error);
    /* A fresh untyped hands out its first bytes: the frame starts where it starts. */
    EXPECT_EQ(x.paddr, huge_ut_paddr);
    return 0;
}

static int misaligned_map_is_alignment_error(void)
{
    if (huge == 0) {
        return fail("no frame (VSPACEH0001 failed)");
    }
    seL4_CPtr copy = alloc_slot();
    EXPECT_OK(seL4_CNode_Copy(ROOT, copy, DEPTH, ROOT, huge, DEPTH, seL4_AllRights));
    /* 2 MiB- and 4 KiB-aligned, not 1 GiB-aligned; the whole page stays below the limit. */
    EXPECT_ERR(Page_Map(copy, VSPACE, HUGE_VADDR + HUGE + (1ul << 21), seL4_ReadWrite, ATTR),
               seL4_AlignmentError);
    EXPECT_ERR(Page_Map(copy, VSPACE, HUGE_VADDR + HUGE + (1ul << seL4_PageBits), seL4_ReadWrite, ATTR),
               seL4_AlignmentError);
    /* The copy maps at the aligned address next door and sees the same bytes. */
    EXPECT_OK(Page_Map(copy, VSPACE, HUGE_VADDR + HUGE, seL4_ReadWrite, ATTR));
    EXPECT_EQ(VOLATILE_WORD(LAST_WORD + HUGE), 0xfedcba9876543210ul);
    EXPECT_OK(Page_Unmap(copy));
    EXPECT_OK(seL4_CNode_Delete(ROOT, copy, DEPTH));
    return 0;
}

static int unmap_and_map_again(void)
{
    if (huge == 0) {
        return fail("no frame (VSPACEH0001 failed)");
    }
    EXPECT_OK(Page_Unmap(huge));
    EXPECT_OK(Page_Unmap(huge)); /* unmapping an unmapped frame is no error */
    /* Mapped again at the next 1 GiB up, the bytes are still there. */
    EXPECT_OK(Page_Map(huge, VSPACE, HUGE_VADDR + 2 * HUGE, seL4_ReadWrite, ATTR));
    EXPECT_EQ(VOLATILE_WORD(HUGE_VADDR + 2 * HUGE), 0x0123456789abcdeful);
    EXPECT_OK(Page_Unmap(huge));
    return 0;
}

static const struct check checks[] = {
    {"VSPACEH0001", "Retype a 1 GiB frame from a 1 GiB-aligned untyped", retype_a_huge_frame},
    {"VSPACEH0002", "Map it with no page table to add; words at both ends read back",
     map_and_use_both_ends},
    {"VSPACEH0003", "GetAddress gives the untyped's base", get_address_is_the_untyped_base},
    {"VSPACEH0004", "Misaligned maps are AlignmentError; the aligned one works",
     misaligned_map_is_alignment_error},
    {"VSPACEH0005", "Unmap, map elsewhere: the bytes stay", unmap_and_map_again},
};

int main(void)
{
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
