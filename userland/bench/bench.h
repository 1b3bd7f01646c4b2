/*
 * What every benchmark guest shares: its parameters and its phase marks.
 *
 * Parameters: `bench_params` is a word array in .data with the defaults below; the
 * harness (bench/guest.py) overwrites it in the ELF before building the boot image, so
 * one build serves every size (the smoke test's tiny runs and `make bench`'s full ones).
 * Each program names its slots with an enum and documents them.
 *
 * Marks: the harness timestamps console lines that start with '@' as they arrive:
 *
 *     @b NAME           a phase begins (timestamped at the newline: the work follows)
 *     @e NAME COUNT     it ended after COUNT operations (timestamped at the '@')
 *     @m NAME           a point for a memory reading (the harness reads its RSS here)
 *
 * so that set-up (thread creation, cap copies) is never in a measured phase. A program
 * that cannot do what it was asked prints "@fail REASON" and exits with status 1.
 */
#ifndef CAPSULE_BENCH_H
#define CAPSULE_BENCH_H

#include <sel4/sel4.h>
#include <stdio.h>
#include <stdlib.h>
#include <thread.h>

#define BENCH_PARAMS 8

/* Defined by each program with its defaults; patched by the harness (see above). */
extern volatile seL4_Word bench_params[BENCH_PARAMS];

#define ROOT seL4_CapInitThreadCNode
#define DEPTH seL4_WordBits

static inline void bench_begin(const char *name)
{
    printf("@b %s\n", name);
}

static inline void bench_end(const char *name, unsigned long count)
{
    printf("@e %s %lu\n", name, count);
}

static inline void bench_mark(const char *name)
{
    printf("@m %s\n", name);
}

static inline __attribute__((noreturn)) void bench_fail(const char *what, seL4_Word err)
{
    printf("@fail %s (error %lu)\n", what, (unsigned long)err);
    exit(1);
}

/* Stop the program unless `call` returned seL4_NoError. */
#define BENCH_OK(call)                                                                     \
    do {                                                                                   \
        seL4_Error e_ = (call);                                                            \
        if (e_ != seL4_NoError) {                                                          \
            bench_fail(#call, e_);                                                         \
        }                                                                                  \
    } while (0)

/* `n` consecutive empty root-CNode slots, or the program stops (none asked: 0). */
static inline seL4_CPtr bench_slots(unsigned long n)
{
    if (n == 0) {
        return 0;
    }
    seL4_CPtr first = slot_alloc_n(n);
    if (first == 0) {
        bench_fail("out of empty root-CNode slots", n);
    }
    return first;
}

/* The largest RAM untyped in bootinfo (the program stops if there is none). */
static inline seL4_CPtr bench_pool(void)
{
    seL4_BootInfo *bi = seL4_GetBootInfo();
    seL4_CPtr best = 0;
    unsigned best_bits = 0;
    for (seL4_CPtr s = bi->untyped.start; s < bi->untyped.end; s++) {
        const seL4_UntypedDesc *d = &bi->untypedList[s - bi->untyped.start];
        if (!d->isDevice && d->sizeBits > best_bits) {
            best = s;
            best_bits = d->sizeBits;
        }
    }
    if (best == 0) {
        bench_fail("no RAM untyped", 0);
    }
    return best;
}

/* Retype `n` objects of `type` from `ut` into fresh slots (at most 256 per call, seL4's
 * fan-out limit); returns the first slot. */
static inline seL4_CPtr bench_objects(seL4_CPtr ut, seL4_Word type, seL4_Word size_bits,
                                      unsigned long n)
{
    seL4_CPtr first = bench_slots(n);
    for (unsigned long done = 0; done < n;) {
        unsigned long batch = n - done < 256 ? n - done : 256;
        BENCH_OK(seL4_Untyped_Retype(ut, type, size_bits, ROOT, 0, 0, first + done, batch));
        done += batch;
    }
    return first;
}

#endif /* CAPSULE_BENCH_H */
