/*
 * Helpers for the check programs that run threads of their own (threads.c, ipc_*.c).
 * Include after checks.h, with NTHREADS defined to the number of thread slots.
 *
 * - Thread slots: threads[i] is made afresh by make(i, ...) from `pool` (the program
 *   declares it; checks_main fills it). Each slot's storage is reused, so a thread that
 *   used the slot before is suspended first: its stack and IPC buffer are about to be
 *   cleared and given to the new thread.
 * - The order recorder: threads note() one character each as they run, and a check
 *   compares the string with the order seL4's scheduler gives.
 * - let_run(): the root task (priority 255) lets every thread of a priority above 50
 *   run until it has nothing left to do, then takes the processor back.
 * - READ_SP(v), READ_TLS_BASE(v): a thread reads its stack pointer or its TLS base
 *   (tp / TPIDR_EL0) into `v`, as they are at that point of the caller (macros: a
 *   function would read its own frame's).
 *
 * Not every program uses every helper, hence __attribute__((unused)).
 */
#ifndef CAPSULE_TESTS_THREADS_UTIL_H
#define CAPSULE_TESTS_THREADS_UTIL_H

#include <string.h>
#include <thread.h>

#include "checks.h"

#ifndef NTHREADS
#error "define NTHREADS (the number of thread slots) before including threads_util.h"
#endif

/* ---- thread slots ---- */

static struct thread_storage thread_slot_storage[NTHREADS];
static struct thread threads[NTHREADS];
static int thread_slot_used[NTHREADS];

/* Make thread i afresh from `pool`; a thread that used the same slot before is stopped
 * first. The new thread is Inactive until thread_start(). */
static seL4_Error make(int i, const char *name, thread_entry_fn fn, void *arg, seL4_Word prio)
{
    if (thread_slot_used[i]) {
        seL4_Error err = seL4_TCB_Suspend(threads[i].tcb);
        if (err != seL4_NoError) {
            return err;
        }
    }
    memset(&thread_slot_storage[i], 0, sizeof(thread_slot_storage[i]));
    thread_slot_used[i] = 1;
    return thread_create(&threads[i], &thread_slot_storage[i], pool, name, fn, arg, prio);
}

/* Lower the root task below every thread, then take the processor back. */
static __attribute__((unused)) seL4_Error let_run(void)
{
    seL4_Error err = seL4_TCB_SetPriority(seL4_CapInitThreadTCB, seL4_CapInitThreadTCB, 50);
    if (err != seL4_NoError) {
        return err;
    }
    return seL4_TCB_SetPriority(seL4_CapInitThreadTCB, seL4_CapInitThreadTCB, 255);
}

/* ---- register reads ---- */

#if defined(__riscv)
#define READ_SP(v) __asm__ volatile("mv %0, sp" : "=r"(v))
#define READ_TLS_BASE(v) __asm__ volatile("mv %0, tp" : "=r"(v))
#else
#define READ_SP(v) __asm__ volatile("mov %0, sp" : "=r"(v))
#define READ_TLS_BASE(v) __asm__ volatile("mrs %0, tpidr_el0" : "=r"(v))
#endif

/* ---- the order recorder ---- */

/* Volatile: written by threads, read by the root task after they ran. */
static volatile char order[32];
static volatile unsigned long order_len;

/* Append `c` to the order (dropped once the buffer is full, which the compare shows). */
static __attribute__((unused)) void note(char c)
{
    if (order_len < sizeof(order) - 1) {
        order[order_len++] = c;
        order[order_len] = '\0';
    }
}

static __attribute__((unused)) void reset_order(void)
{
    order_len = 0;
    order[0] = '\0';
}

/* Fail the current check unless the recorded order is `want`. */
#define EXPECT_ORDER_IS(want)                                                              \
    do {                                                                                   \
        if (strcmp((const char *)order, (want)) != 0) {                                    \
            return fail("line %d: order %s, expected %s", __LINE__, (const char *)order,   \
                        (want));                                                           \
        }                                                                                  \
    } while (0)

/* Print the order (so the run's output shows it), then compare it. */
#define EXPECT_ORDER(want)                                                                 \
    do {                                                                                   \
        printf("  order %s\n", (const char *)order);                                      \
        EXPECT_ORDER_IS(want);                                                             \
    } while (0)

#endif /* CAPSULE_TESTS_THREADS_UTIL_H */
