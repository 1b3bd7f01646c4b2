/*
 * Code a thread rewrites and runs again. Four times, a function that returns 1 or 2 is
 * written into a frame, made visible to instruction fetch as the architecture asks
 * (RISC-V: fence.i; AArch64 as QEMU needs it: dsb; isb) and called.
 *
 * CODE0001 writes and calls it through one mapping (writable and executable): the
 * kernel's deferred execute permission and Unicorn's store checks keep it right.
 * CODE0002 writes it through one mapping of the frame and calls it through another:
 * Unicorn 2.1.4 notices stores to translated code only through the virtual page the
 * code was translated from, so capsule runs the old function (README, "What works,
 * and what does not yet"); tests/guest/test_code_alias.py expects that failure.
 * Output and exit status: see checks.h.
 */
#include "checks.h"

#include <process.h>

#define SAME_VA 0x60000000ul
#define WRITE_VA 0x61000000ul
#define RUN_VA 0x62000000ul

static seL4_CPtr pool;

/* The function returning 1, then the one returning 2: two instructions each. */
#if defined(__riscv)
static const unsigned int returns[2][2] = {{0x00100513u, 0x00008067u},  /* li a0, k; ret */
                                           {0x00200513u, 0x00008067u}};
static void make_fetchable(void) { __asm__ volatile("fence.i" ::: "memory"); }
#else
static const unsigned int returns[2][2] = {{0x52800020u, 0xd65f03c0u},  /* mov w0, #k; ret */
                                           {0x52800040u, 0xd65f03c0u}};
static void make_fetchable(void) { __asm__ volatile("dsb ish\n\tisb" ::: "memory"); }
#endif

/* Write through `write`, call through `run`, four times; 0 if each call returned what
 * was written last. */
static int rewrite_and_run(seL4_Word write, seL4_Word run)
{
    volatile unsigned int *code = (volatile unsigned int *)write;
    int (*function)(void) = (int (*)(void))run;
    int seen[4];
    for (int round = 0; round < 4; round++) {
        code[0] = returns[round & 1][0];
        code[1] = returns[round & 1][1];
        make_fetchable();
        seen[round] = function();
    }
    if (seen[0] != 1 || seen[1] != 2 || seen[2] != 1 || seen[3] != 2) {
        return fail("the calls returned %d %d %d %d; written: 1 2 1 2", seen[0], seen[1],
                    seen[2], seen[3]);
    }
    return 0;
}

static int through_one_mapping(void)
{
    seL4_CPtr frame;
    EXPECT_OK(make_objects(pool, OBJ_4K_PAGE, 0, 1, &frame));
    EXPECT_OK(process_map_page(pool, seL4_CapInitThreadVSpace, frame, SAME_VA,
                               seL4_ReadWrite, 1));
    return rewrite_and_run(SAME_VA, SAME_VA);
}

static int through_two_mappings(void)
{
    seL4_CPtr frame, copy = alloc_slot();
    EXPECT_OK(make_objects(pool, OBJ_4K_PAGE, 0, 1, &frame));
    EXPECT_OK(seL4_CNode_Copy(seL4_CapInitThreadCNode, copy, seL4_WordBits,
                              seL4_CapInitThreadCNode, frame, seL4_WordBits, seL4_AllRights));
    EXPECT_OK(process_map_page(pool, seL4_CapInitThreadVSpace, frame, WRITE_VA,
                               seL4_ReadWrite, 0));
    EXPECT_OK(process_map_page(pool, seL4_CapInitThreadVSpace, copy, RUN_VA, seL4_CanRead, 1));
    return rewrite_and_run(WRITE_VA, RUN_VA);
}

static const struct check checks[] = {
    {"CODE0001", "Code rewritten through its one mapping runs as rewritten",
     through_one_mapping},
    {"CODE0002", "Code rewritten through a second mapping runs as rewritten",
     through_two_mappings},
};

int main(void)
{
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
