/*
 * A small harness for guest test programs made of named checks.
 *
 * Each check is a function returning 0 (pass) or 1 (fail, with a detail written by
 * fail()). run_checks() prints one line per check,
 *
 *     <ID> PASS <title>
 *     <ID> FAIL <title>: <detail>
 *
 * then "verdict: <n> passed, <m> failed", and returns the number of failures, which
 * the program passes to exit(). IDs are stable: a check keeps its ID when others are
 * added, so tests/guest can ask for each one by name.
 *
 * Also here: root-CNode slot allocation from bootinfo's empty region, untyped lookup,
 * and the per-architecture object type names the checks share.
 */
#ifndef CAPSULE_TESTS_CHECKS_H
#define CAPSULE_TESTS_CHECKS_H

#include <sel4/sel4.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <thread.h>

/* ---- per-architecture names ---- */
#if defined(__riscv)
#define OBJ_4K_PAGE seL4_RISCV_4K_Page
#define OBJ_LARGE_PAGE seL4_RISCV_Mega_Page
#define OBJ_PAGE_TABLE seL4_RISCV_PageTableObject
#define OBJ_VSPACE seL4_RISCV_PageTableObject
#define TAG_VSPACE CAPSULE_CAPTAG_PAGE_TABLE_CAP
#define ASIDControl_MakePool seL4_RISCV_ASIDControl_MakePool
#define ASIDPool_Assign seL4_RISCV_ASIDPool_Assign
#elif defined(__aarch64__)
#define OBJ_4K_PAGE seL4_ARM_SmallPageObject
#define OBJ_LARGE_PAGE seL4_ARM_LargePageObject
#define OBJ_PAGE_TABLE seL4_ARM_PageTableObject
#define OBJ_VSPACE seL4_ARM_VSpaceObject
#define TAG_VSPACE CAPSULE_CAPTAG_VSPACE_CAP
#define ASIDControl_MakePool seL4_ARM_ASIDControl_MakePool
#define ASIDPool_Assign seL4_ARM_ASIDPool_Assign
#else
#error "unsupported architecture"
#endif

/* The root CNode: every slot number is a CPtr resolved at full depth. */
#define ROOT seL4_CapInitThreadCNode
#define DEPTH seL4_WordBits

/* ---- reporting ---- */

struct check {
    const char *id;
    const char *title;
    int (*run)(void);
};

static char check_detail[200];

static __attribute__((__format__(__printf__, 1, 2))) int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(check_detail, sizeof(check_detail), fmt, ap);
    va_end(ap);
    return 1;
}

static const char *error_name(seL4_Word e)
{
    static const char *const names[] = {
        [seL4_NoError] = "NoError",
        [seL4_InvalidArgument] = "InvalidArgument",
        [seL4_InvalidCapability] = "InvalidCapability",
        [seL4_IllegalOperation] = "IllegalOperation",
        [seL4_RangeError] = "RangeError",
        [seL4_AlignmentError] = "AlignmentError",
        [seL4_FailedLookup] = "FailedLookup",
        [seL4_TruncatedMessage] = "TruncatedMessage",
        [seL4_DeleteFirst] = "DeleteFirst",
        [seL4_RevokeFirst] = "RevokeFirst",
        [seL4_NotEnoughMemory] = "NotEnoughMemory",
    };
    return e < seL4_NumErrors ? names[e] : "(not an seL4_Error)";
}

static int run_checks(const struct check *list, unsigned long n)
{
    int passed = 0, failed = 0;
    for (unsigned long i = 0; i < n; i++) {
        check_detail[0] = '\0';
        if (list[i].run() == 0) {
            printf("%s PASS %s\n", list[i].id, list[i].title);
            passed++;
        } else {
            printf("%s FAIL %s: %s\n", list[i].id, list[i].title, check_detail);
            failed++;
        }
    }
    printf("verdict: %d passed, %d failed\n", passed, failed);
    return failed;
}

/* Fail the current check unless `call` returns `want`. */
#define EXPECT_ERR(call, want)                                                             \
    do {                                                                                   \
        seL4_Error got_ = (call);                                                          \
        if (got_ != (want)) {                                                              \
            return fail("line %d: %s returned %s, expected %s", __LINE__, #call,           \
                        error_name(got_), error_name(want));                               \
        }                                                                                  \
    } while (0)

#define EXPECT_OK(call) EXPECT_ERR(call, seL4_NoError)

/* Fail the current check unless the word `got` equals `want`. */
#define EXPECT_EQ(got, want)                                                               \
    do {                                                                                   \
        seL4_Word g_ = (seL4_Word)(got), w_ = (seL4_Word)(want);                           \
        if (g_ != w_) {                                                                    \
            return fail("line %d: %s = %#lx, expected %#lx", __LINE__, #got,               \
                        (unsigned long)g_, (unsigned long)w_);                             \
        }                                                                                  \
    } while (0)

/* Fail unless error-reply message register i holds v (read right after the call). */
#define EXPECT_MR(i, v)                                                                    \
    do {                                                                                   \
        seL4_Word got_ = seL4_GetMR(i), want_ = (seL4_Word)(v);                            \
        if (got_ != want_) {                                                               \
            return fail("line %d: MR%d = %lu, expected %lu", __LINE__, (i),                \
                        (unsigned long)got_, (unsigned long)want_);                        \
        }                                                                                  \
    } while (0)

/* Fail unless the root-CNode slot holds a cap of kernel tag `tag`. */
#define EXPECT_TAG(slot, tag)                                                              \
    do {                                                                                   \
        seL4_Uint32 got_ = seL4_DebugCapIdentify(slot);                                    \
        if (got_ != (seL4_Uint32)(tag)) {                                                  \
            return fail("line %d: slot %lu holds tag %u, expected %s (%u)", __LINE__,     \
                        (unsigned long)(slot), (unsigned)got_, #tag, (unsigned)(tag));     \
        }                                                                                  \
    } while (0)

#define EXPECT_EMPTY(slot) EXPECT_TAG(slot, CAPSULE_CAPTAG_NULL_CAP)

/* Stop the current check if `call`, a helper of the check's own that returns 0 or what
 * fail() returns (it has said why), failed. */
#define EXPECT_PASS(call)                                                                  \
    do {                                                                                   \
        if ((call) != 0) {                                                                 \
            return 1;                                                                      \
        }                                                                                  \
    } while (0)

/* ---- slots and untypeds from bootinfo ---- */

/* Slots come from the runtime's allocator (thread.h), shared with thread_create(). */
static void slots_init(void)
{
}

/* `n` consecutive empty slots of the root CNode; stops the program if none are left. */
static seL4_CPtr alloc_slots(unsigned long n)
{
    seL4_CPtr first = slot_alloc_n(n);
    if (first == 0) {
        printf("out of empty slots\nverdict: 0 passed, 1 failed\n");
        exit(1);
    }
    return first;
}

static seL4_CPtr alloc_slot(void)
{
    return alloc_slots(1);
}

/* The slot of the largest untyped with the given device flag, 0 if there is none. */
static seL4_CPtr largest_untyped(int device, unsigned *size_bits)
{
    seL4_BootInfo *bi = seL4_GetBootInfo();
    seL4_CPtr best = 0;
    unsigned best_bits = 0;
    for (seL4_CPtr s = bi->untyped.start; s < bi->untyped.end; s++) {
        const seL4_UntypedDesc *d = &bi->untypedList[s - bi->untyped.start];
        if ((d->isDevice != 0) == (device != 0) && d->sizeBits > best_bits) {
            best = s;
            best_bits = d->sizeBits;
        }
    }
    if (size_bits) {
        *size_bits = best_bits;
    }
    return best;
}

/* Retype `n` objects of one type from `ut` into fresh root slots; returns the first. */
static seL4_Error make_objects(seL4_CPtr ut, seL4_Word type, seL4_Word size_bits,
                               unsigned long n, seL4_CPtr *first)
{
    *first = alloc_slots(n);
    return seL4_Untyped_Retype(ut, type, size_bits, ROOT, 0, 0, *first, n);
}

/*
 * The main() every check program shares: set up slot allocation, put the largest RAM
 * untyped in *pool, run the checks and exit with the number of failures.
 */
static int checks_main(const struct check *list, unsigned long n, seL4_CPtr *pool)
{
    slots_init();
    *pool = largest_untyped(0, 0);
    if (*pool == 0) {
        printf("no RAM untyped in bootinfo\nverdict: 0 passed, 1 failed\n");
        return 1;
    }
    exit(run_checks(list, n));
}

#endif /* CAPSULE_TESTS_CHECKS_H */
