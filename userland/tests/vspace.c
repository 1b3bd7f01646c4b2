/*
 * Frames and page tables from the root task: retype them from untyped memory, map them
 * into its own VSpace, read and write through the mappings, and the map error matrix.
 *
 * Every check works in its own 2 MiB window of the 1 GiB region at REGION, which the
 * root task's image does not use on either architecture. Output and exit status: see
 * checks.h. (Access after unmap faults; that is vspace_unmap_fault.c, a program of its
 * own, because the root task has no fault handler.)
 */
#include "checks.h"

#if defined(__riscv)
#define Page_Map seL4_RISCV_Page_Map
#define Page_Unmap seL4_RISCV_Page_Unmap
#define Page_GetAddress seL4_RISCV_Page_GetAddress
#define PageTable_Map seL4_RISCV_PageTable_Map
#define PageTable_Unmap seL4_RISCV_PageTable_Unmap
#define ATTR seL4_RISCV_Default_VMAttributes
#define USER_END 0x3ffffff000ul /* seL4_UserTop */
#else
#define Page_Map seL4_ARM_Page_Map
#define Page_Unmap seL4_ARM_Page_Unmap
#define Page_GetAddress seL4_ARM_Page_GetAddress
#define PageTable_Map seL4_ARM_PageTable_Map
#define PageTable_Unmap seL4_ARM_PageTable_Unmap
#define ATTR seL4_ARM_Default_VMAttributes
#define USER_END 0x800000000000ul /* seL4_UserTop (0x7fffffffffff) + 1 */
#endif

#define VSPACE seL4_CapInitThreadVSpace
#define REGION 0x40000000ul
#define WINDOW(n) (REGION + (n) * (1ul << 21))
#define PAGE 4096ul
/* 1 GiB regions far from everything else, below the user limit of both (RISC-V's 256 GiB). */
#define FAR(n) ((128ul + 32ul * (n)) << 30)

static seL4_CPtr pool; /* the largest RAM untyped */

static seL4_CPtr new_object(seL4_Word type)
{
    seL4_CPtr slot;
    return make_objects(pool, type, 0, 1, &slot) == seL4_NoError ? slot : 0;
}

/* Map page tables over `vaddr` until every level is there (the kernel says DeleteFirst):
 * the count of levels is the kernel's, never assumed here. */
static seL4_Error tables_for(seL4_CPtr vspace, seL4_Word vaddr)
{
    for (;;) {
        seL4_CPtr pt = new_object(OBJ_PAGE_TABLE);
        if (pt == 0) {
            return seL4_NotEnoughMemory;
        }
        seL4_Error e = PageTable_Map(pt, vspace, vaddr, ATTR);
        if (e == seL4_DeleteFirst) {
            return seL4_NoError;
        }
        if (e != seL4_NoError) {
            return e;
        }
    }
}

/* A fresh 4 KiB frame mapped read-write at `vaddr` in the root VSpace, or 0. */
static seL4_CPtr mapped_frame(seL4_Word vaddr)
{
    seL4_CPtr f = new_object(OBJ_4K_PAGE);
    if (f == 0 || tables_for(VSPACE, vaddr) != seL4_NoError) {
        return 0;
    }
    return Page_Map(f, VSPACE, vaddr, seL4_ReadWrite, ATTR) == seL4_NoError ? f : 0;
}

static seL4_CPtr copy_of(seL4_CPtr src)
{
    seL4_CPtr dest = alloc_slot();
    return seL4_CNode_Copy(ROOT, dest, DEPTH, ROOT, src, DEPTH, seL4_AllRights) ==
                   seL4_NoError
               ? dest
               : 0;
}

#define VOLATILE_WORD(va) (*(volatile seL4_Word *)(va))

static int map_and_use_a_frame(void)
{
    seL4_CPtr f = mapped_frame(WINDOW(0));
    if (f == 0) {
        return fail("could not map a fresh frame");
    }
    if (VOLATILE_WORD(WINDOW(0)) != 0 || VOLATILE_WORD(WINDOW(0) + PAGE - 8) != 0) {
        return fail("a fresh frame is not zero");
    }
    VOLATILE_WORD(WINDOW(0) + 8) = 0x1234567890abcdeful;
    if (VOLATILE_WORD(WINDOW(0) + 8) != 0x1234567890abcdeful) {
        return fail("read back a different word");
    }
    return 0;
}

static int two_caps_share_the_bytes(void)
{
    seL4_Word a = WINDOW(1), b = WINDOW(1) + 5 * PAGE;
    seL4_CPtr f = mapped_frame(a);
    if (f == 0) {
        return fail("could not map a fresh frame");
    }
    seL4_CPtr g = copy_of(f);
    if (g == 0) {
        return fail("could not copy the frame cap");
    }
    EXPECT_OK(Page_Map(g, VSPACE, b, seL4_ReadWrite, ATTR));
    VOLATILE_WORD(a + 16) = 0xfeedface;
    if (VOLATILE_WORD(b + 16) != 0xfeedface) {
        return fail("the second mapping does not see the first one's write");
    }
    VOLATILE_WORD(b + 24) = 77;
    if (VOLATILE_WORD(a + 24) != 77) {
        return fail("the first mapping does not see the second one's write");
    }
    return 0;
}

static int get_address_names_one_frame(void)
{
    seL4_CPtr f = new_object(OBJ_4K_PAGE);
    seL4_CPtr g = f ? copy_of(f) : 0;
    if (g == 0) {
        return fail("could not make and copy a frame");
    }
    __typeof__(Page_GetAddress(f)) x = Page_GetAddress(f), y = Page_GetAddress(g);
    EXPECT_OK((seL4_Error)x.error);
    EXPECT_OK((seL4_Error)y.error);
    if (x.paddr != y.paddr || x.paddr == 0 || (x.paddr & (PAGE - 1)) != 0) {
        return fail("paddrs %lx and %lx", (unsigned long)x.paddr, (unsigned long)y.paddr);
    }
    return 0;
}

static int bytes_survive_unmap_and_remap(void)
{
    seL4_Word a = WINDOW(2), b = WINDOW(2) + 3 * PAGE;
    seL4_CPtr f = mapped_frame(a);
    if (f == 0) {
        return fail("could not map a fresh frame");
    }
    VOLATILE_WORD(a + 40) = 4242;
    EXPECT_OK(Page_Unmap(f));
    EXPECT_OK(Page_Unmap(f)); /* unmapping an unmapped frame is no error */
    EXPECT_OK(Page_Map(f, VSPACE, b, seL4_ReadWrite, ATTR));
    if (VOLATILE_WORD(b + 40) != 4242) {
        return fail("the frame lost its bytes");
    }
    return 0;
}

static int remap_in_place_changes_rights(void)
{
    seL4_Word a = WINDOW(3);
    seL4_CPtr f = mapped_frame(a);
    if (f == 0) {
        return fail("could not map a fresh frame");
    }
    VOLATILE_WORD(a) = 5;
    EXPECT_OK(Page_Map(f, VSPACE, a, seL4_CanRead, ATTR));
    if (VOLATILE_WORD(a) != 5) {
        return fail("the read-only remap does not read the frame");
    }
    EXPECT_OK(Page_Map(f, VSPACE, a, seL4_ReadWrite, ATTR));
    VOLATILE_WORD(a) = 6;
    return VOLATILE_WORD(a) == 6 ? 0 : fail("write after the read-write remap lost");
}

static int large_page(void)
{
    seL4_Word a = WINDOW(4);
    seL4_CPtr big;
    EXPECT_OK(make_objects(pool, OBJ_LARGE_PAGE, 0, 1, &big));
    /* The 1 GiB region's table exists already: a 2 MiB page maps right into it. */
    EXPECT_OK(Page_Map(big, VSPACE, a, seL4_ReadWrite, ATTR));
    VOLATILE_WORD(a) = 1;
    VOLATILE_WORD(a + (1ul << 21) - 8) = 2;
    if (VOLATILE_WORD(a) + VOLATILE_WORD(a + (1ul << 21) - 8) != 3) {
        return fail("the 2 MiB page does not keep its bytes");
    }
    /* A 4 KiB page inside it has no table to go into. */
    seL4_CPtr f = new_object(OBJ_4K_PAGE);
    EXPECT_ERR(Page_Map(f, VSPACE, a + PAGE, seL4_ReadWrite, ATTR), seL4_FailedLookup);
    EXPECT_MR(1, seL4_MissingCapability);
    EXPECT_MR(2, 21);
    EXPECT_OK(Page_Unmap(big));
    EXPECT_OK(tables_for(VSPACE, a));
    EXPECT_OK(Page_Map(f, VSPACE, a, seL4_ReadWrite, ATTR));
    return VOLATILE_WORD(a) == 0 ? 0 : fail("a fresh 4 KiB page where the 2 MiB one was");
}

/* ---- the map error matrix ---- */

static int map_misaligned(void)
{
    seL4_CPtr f = new_object(OBJ_4K_PAGE);
    EXPECT_OK(tables_for(VSPACE, WINDOW(5)));
    EXPECT_ERR(Page_Map(f, VSPACE, WINDOW(5) + 0x800, seL4_ReadWrite, ATTR),
               seL4_AlignmentError);
    seL4_CPtr big = new_object(OBJ_LARGE_PAGE);
    EXPECT_ERR(Page_Map(big, VSPACE, WINDOW(5) + PAGE, seL4_ReadWrite, ATTR),
               seL4_AlignmentError);
    return 0;
}

static int map_without_tables(void)
{
    seL4_CPtr f = new_object(OBJ_4K_PAGE);
    /* 64 GiB up: no table below the root there. */
    EXPECT_ERR(Page_Map(f, VSPACE, 64ul << 30, seL4_ReadWrite, ATTR), seL4_FailedLookup);
    EXPECT_MR(0, 0);
    EXPECT_MR(1, seL4_MissingCapability);
    EXPECT_MR(2, 30);
    return 0;
}

static int map_past_the_user_limit(void)
{
    seL4_CPtr f = new_object(OBJ_4K_PAGE);
    EXPECT_ERR(Page_Map(f, VSPACE, USER_END, seL4_ReadWrite, ATTR), seL4_InvalidArgument);
    EXPECT_MR(0, 0);
    seL4_CPtr pt = new_object(OBJ_PAGE_TABLE);
    EXPECT_ERR(PageTable_Map(pt, VSPACE, USER_END, ATTR), seL4_InvalidArgument);
    EXPECT_MR(0, 0);
    return 0;
}

static int map_over_a_mapping(void)
{
    seL4_Word a = WINDOW(6);
    seL4_CPtr f = mapped_frame(a), g = new_object(OBJ_4K_PAGE);
    if (f == 0 || g == 0) {
        return fail("could not make the frames");
    }
    VOLATILE_WORD(a) = 99;
#if defined(__riscv)
    /* RISC-V refuses; the first mapping stays. */
    EXPECT_ERR(Page_Map(g, VSPACE, a, seL4_ReadWrite, ATTR), seL4_DeleteFirst);
    return VOLATILE_WORD(a) == 99 ? 0 : fail("the first mapping changed");
#else
    /* AArch64 replaces the entry (seL4 16 does not check it). */
    EXPECT_OK(Page_Map(g, VSPACE, a, seL4_ReadWrite, ATTR));
    return VOLATILE_WORD(a) == 0 ? 0 : fail("the new frame is not what the address reaches");
#endif
}

static int map_a_mapped_frame_elsewhere(void)
{
    seL4_Word a = WINDOW(7);
    seL4_CPtr f = mapped_frame(a);
    if (f == 0) {
        return fail("could not map a fresh frame");
    }
    EXPECT_ERR(Page_Map(f, VSPACE, a + PAGE, seL4_ReadWrite, ATTR), seL4_InvalidArgument);
    EXPECT_MR(0, 0);
    return 0;
}

static int map_into_what_is_not_a_vspace(void)
{
    seL4_CPtr f = new_object(OBJ_4K_PAGE), ep = new_object(seL4_EndpointObject);
    seL4_CPtr unassigned = new_object(OBJ_VSPACE);
    EXPECT_ERR(Page_Map(f, ep, WINDOW(8), seL4_ReadWrite, ATTR), seL4_InvalidCapability);
    EXPECT_MR(0, 1);
    EXPECT_ERR(Page_Map(f, unassigned, WINDOW(8), seL4_ReadWrite, ATTR),
               seL4_InvalidCapability);
    EXPECT_MR(0, 1);
    seL4_CPtr pt = new_object(OBJ_PAGE_TABLE);
    EXPECT_ERR(PageTable_Map(pt, unassigned, WINDOW(8), ATTR), seL4_InvalidCapability);
    EXPECT_MR(0, 1);
    return 0;
}

static int page_table_errors(void)
{
    seL4_Word a = WINDOW(9);
    EXPECT_OK(tables_for(VSPACE, a));
    seL4_CPtr pt = new_object(OBJ_PAGE_TABLE);
    EXPECT_ERR(PageTable_Map(pt, VSPACE, a, ATTR), seL4_DeleteFirst);
    /* A table maps once. */
    EXPECT_OK(PageTable_Map(pt, VSPACE, FAR(0), ATTR));
    EXPECT_ERR(PageTable_Map(pt, VSPACE, FAR(1), ATTR), seL4_InvalidCapability);
    EXPECT_MR(0, 0);
    /* Unmap needs the only cap to the table. */
    seL4_CPtr copy = copy_of(pt);
    if (copy == 0) {
        return fail("could not copy a mapped page table");
    }
    EXPECT_ERR(PageTable_Unmap(pt), seL4_RevokeFirst);
    EXPECT_OK(seL4_CNode_Delete(ROOT, copy, DEPTH));
    EXPECT_OK(PageTable_Unmap(pt));
    EXPECT_OK(PageTable_Map(pt, VSPACE, FAR(1), ATTR));
    return 0;
}

static int unmapped_table_takes_its_pages(void)
{
    /* A fresh 2 MiB window: the region's upper table exists, so one table completes
     * the walk. A page through it, then the table goes. */
    seL4_Word a = WINDOW(12);
    seL4_CPtr low = new_object(OBJ_PAGE_TABLE);
    seL4_CPtr f = new_object(OBJ_4K_PAGE), g = new_object(OBJ_4K_PAGE);
    EXPECT_OK(PageTable_Map(low, VSPACE, a, ATTR));
    EXPECT_OK(Page_Map(f, VSPACE, a, seL4_ReadWrite, ATTR));
    VOLATILE_WORD(a) = 11;
    EXPECT_OK(PageTable_Unmap(low));
    /* The address has no last-level table now: a page cannot go there... */
    EXPECT_ERR(Page_Map(g, VSPACE, a, seL4_ReadWrite, ATTR), seL4_FailedLookup);
    EXPECT_MR(2, 21);
    /* ...until the table is mapped again, empty; the old frame's cap still says mapped. */
    EXPECT_OK(PageTable_Map(low, VSPACE, a, ATTR));
    EXPECT_OK(Page_Map(g, VSPACE, a, seL4_ReadWrite, ATTR));
    if (VOLATILE_WORD(a) != 0) {
        return fail("the table still held the old mapping");
    }
    EXPECT_OK(Page_Unmap(f)); /* stale: touches nothing */
    VOLATILE_WORD(a) = 12;
    return VOLATILE_WORD(a) == 12 ? 0 : fail("the new mapping went away");
}

static int deleting_the_mapping_cap_unmaps(void)
{
    seL4_Word a = WINDOW(10);
    seL4_CPtr f = mapped_frame(a), g = new_object(OBJ_4K_PAGE);
    if (f == 0 || g == 0) {
        return fail("could not make the frames");
    }
    VOLATILE_WORD(a) = 1;
    EXPECT_OK(seL4_CNode_Delete(ROOT, f, DEPTH));
    /* The slot is free on both architectures: on RISC-V the map would be DeleteFirst. */
    EXPECT_OK(Page_Map(g, VSPACE, a, seL4_ReadWrite, ATTR));
    return VOLATILE_WORD(a) == 0 ? 0 : fail("the deleted cap's mapping is still there");
}

static int a_second_vspace(void)
{
    seL4_CPtr vs = new_object(OBJ_VSPACE);
    if (vs == 0) {
        return fail("could not retype a VSpace");
    }
    EXPECT_OK(ASIDPool_Assign(seL4_CapInitThreadASIDPool, vs));
    seL4_Word a = WINDOW(11);
    seL4_CPtr f = mapped_frame(a);
    seL4_CPtr g = f ? copy_of(f) : 0;
    if (g == 0) {
        return fail("could not make the frame");
    }
    EXPECT_OK(tables_for(vs, a));
    EXPECT_OK(Page_Map(g, vs, a, seL4_ReadWrite, ATTR));
    /* One cap, one mapping: the same cap cannot go into the root VSpace as well. */
    EXPECT_ERR(Page_Map(g, VSPACE, a + PAGE, seL4_ReadWrite, ATTR), seL4_InvalidCapability);
    EXPECT_MR(0, 1);
    /* Deleting the second VSpace leaves the root task's mapping alone. */
    EXPECT_OK(seL4_CNode_Delete(ROOT, vs, DEPTH));
    VOLATILE_WORD(a) = 3;
    return VOLATILE_WORD(a) == 3 ? 0 : fail("lost the root task's mapping");
}

static int high_addresses(void)
{
    /* Above 2^31, above 4 GiB, and the last page of the user range. */
    static const seL4_Word vas[] = {0x80000000ul, FAR(2), USER_END - PAGE};
    for (unsigned i = 0; i < sizeof(vas) / sizeof(vas[0]); i++) {
        seL4_CPtr f = mapped_frame(vas[i]);
        if (f == 0) {
            return fail("could not map a frame at %lx", (unsigned long)vas[i]);
        }
        VOLATILE_WORD(vas[i] + PAGE - 8) = vas[i];
        if (VOLATILE_WORD(vas[i] + PAGE - 8) != vas[i]) {
            return fail("lost the word at %lx", (unsigned long)vas[i]);
        }
    }
    return 0;
}

/* Far above 2^39: seL4's AArch64 has a 48-bit user range (root = L0 table), RISC-V's
 * Sv39 ends at 2^38. On AArch64 nothing is below the root there, so Page_Map reports
 * each missing level (bits left 39, 30, 21) until three page tables are in. */
#define ABOVE_2_39 0x7f0012345000ul

static int above_2_39(void)
{
    seL4_CPtr f = new_object(OBJ_4K_PAGE);
#if defined(__riscv)
    EXPECT_ERR(Page_Map(f, VSPACE, ABOVE_2_39, seL4_ReadWrite, ATTR), seL4_InvalidArgument);
    EXPECT_MR(0, 0);
    seL4_CPtr pt = new_object(OBJ_PAGE_TABLE);
    EXPECT_ERR(PageTable_Map(pt, VSPACE, ABOVE_2_39, ATTR), seL4_InvalidArgument);
    EXPECT_MR(0, 0);
    return 0;
#else
    static const seL4_Word bits_left[] = {39, 30, 21};
    for (unsigned i = 0; i < sizeof(bits_left) / sizeof(bits_left[0]); i++) {
        EXPECT_ERR(Page_Map(f, VSPACE, ABOVE_2_39, seL4_ReadWrite, ATTR), seL4_FailedLookup);
        EXPECT_MR(1, seL4_MissingCapability);
        EXPECT_MR(2, bits_left[i]);
        EXPECT_OK(PageTable_Map(new_object(OBJ_PAGE_TABLE), VSPACE, ABOVE_2_39, ATTR));
    }
    EXPECT_OK(Page_Map(f, VSPACE, ABOVE_2_39, seL4_ReadWrite, ATTR));
    VOLATILE_WORD(ABOVE_2_39 + 64) = 0x7f00;
    if (VOLATILE_WORD(ABOVE_2_39 + 64) != 0x7f00 || VOLATILE_WORD(ABOVE_2_39) != 0) {
        return fail("the page above 2^39 does not keep its bytes");
    }
    return 0;
#endif
}

static const struct check checks[] = {
    {"VSPACEG0001", "Map a frame retyped from untyped and use it", map_and_use_a_frame},
    {"VSPACEG0002", "Two caps to one frame map it twice: same bytes", two_caps_share_the_bytes},
    {"VSPACEG0003", "GetAddress gives one page-aligned address for both caps",
     get_address_names_one_frame},
    {"VSPACEG0004", "A frame keeps its bytes across unmap and a map elsewhere",
     bytes_survive_unmap_and_remap},
    {"VSPACEG0005", "Remap at the same address changes the rights", remap_in_place_changes_rights},
    {"VSPACEG0006", "A 2 MiB page maps without a last-level table", large_page},
    {"VSPACEG0007", "Misaligned maps are AlignmentError", map_misaligned},
    {"VSPACEG0008", "Map without page tables is FailedLookup, 30 bits left",
     map_without_tables},
    {"VSPACEG0009", "Map at the user limit is InvalidArgument 0", map_past_the_user_limit},
    {"VSPACEG0010", "Map over a mapping: RISC-V DeleteFirst, AArch64 replaces",
     map_over_a_mapping},
    {"VSPACEG0011", "A mapped frame cannot map at another address", map_a_mapped_frame_elsewhere},
    {"VSPACEG0012", "Endpoint or unassigned root as VSpace is InvalidCapability 1",
     map_into_what_is_not_a_vspace},
    {"VSPACEG0013", "PageTable Map / Unmap errors", page_table_errors},
    {"VSPACEG0014", "Unmapping a page table takes its pages", unmapped_table_takes_its_pages},
    {"VSPACEG0015", "Deleting the mapping cap unmaps the frame", deleting_the_mapping_cap_unmaps},
    {"VSPACEG0016", "A frame cap maps into one VSpace; a second VSpace's deletion",
     a_second_vspace},
    {"VSPACEG0017", "Memory at 2 GiB, 192 GiB and the last user page", high_addresses},
    {"VSPACEG0018", "Above 2^39: AArch64 maps after 3 tables (bits left 39, 30, 21) "
                    "and uses the page; RISC-V InvalidArgument 0", above_2_39},
};

int main(void)
{
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
