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
 * - A fault handler for thread 0: make_with_fault_handler() gives it a badged cap to a
 *   new endpoint `fault_ep`; expect_user_exception() and reply_resume_at() receive and
 *   answer its UserExceptions.
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

/* ---- a fault handler for thread 0 ----
 *
 * fault_ep: the endpoint thread 0's faults go to, once make_with_fault_handler() made
 * it. UE_LENGTH / UE_NUMBER: a UserException message's length and where its Number sits
 * (seL4's layout: FaultIP, SP, (AArch64: SPSR,) Number, Code). */

#if defined(__riscv)
#define UE_LENGTH 4 /* FaultIP, SP, Number, Code */
#define UE_NUMBER 2
#else
#define UE_LENGTH 5 /* FaultIP, SP, SPSR, Number, Code */
#define UE_NUMBER 3
#endif

static seL4_CPtr fault_ep __attribute__((unused));

/* Make thread 0 afresh running `fn`, its fault handler a cap to a new endpoint
 * `fault_ep` badged `badge`. It is Inactive until thread_start(). */
static __attribute__((unused)) int make_with_fault_handler(const char *name, thread_entry_fn fn,
                                                           seL4_Word badge)
{
    EXPECT_OK(make_objects(pool, seL4_EndpointObject, 0, 1, &fault_ep));
    seL4_CPtr badged = alloc_slot();
    EXPECT_OK(seL4_CNode_Mint(ROOT, badged, DEPTH, ROOT, fault_ep, DEPTH, seL4_AllRights,
                              badge));
    EXPECT_OK(make(0, name, fn, 0, 255));
    EXPECT_OK(seL4_TCB_SetSpace(threads[0].tcb, badged, ROOT, 0, seL4_CapInitThreadVSpace, 0));
    return 0;
}

/* Receive thread 0's next fault: fail unless it comes with `badge` and is a
 * UserException at `ip` with Number `number` and Code 0. The thread stays blocked on
 * the fault until the caller replies. */
static __attribute__((unused)) int expect_user_exception(seL4_Word badge, seL4_Word ip,
                                                         seL4_Word number)
{
    seL4_Word sender;
    seL4_MessageInfo_t info = seL4_Recv(fault_ep, &sender);
    EXPECT_EQ(sender, badge);
    EXPECT_EQ(seL4_MessageInfo_get_label(info), seL4_Fault_UserException);
    EXPECT_EQ(seL4_MessageInfo_get_length(info), UE_LENGTH);
    EXPECT_EQ(seL4_GetMR(0), ip);
    EXPECT_EQ(seL4_GetMR(UE_NUMBER), number);
    EXPECT_EQ(seL4_GetMR(UE_NUMBER + 1), 0);
    printf("  UserException ip %#lx number %#lx code %#lx\n", (unsigned long)seL4_GetMR(0),
           (unsigned long)seL4_GetMR(UE_NUMBER), (unsigned long)seL4_GetMR(UE_NUMBER + 1));
    return 0;
}

/* Reply to the fault received last with FaultIP = `pc` alone (label 0: resume there). */
static __attribute__((unused)) void reply_resume_at(seL4_Word pc)
{
    seL4_SetMR(0, pc);
    seL4_Reply(seL4_MessageInfo_new(0, 0, 0, 1));
}

#endif /* CAPSULE_TESTS_THREADS_UTIL_H */
