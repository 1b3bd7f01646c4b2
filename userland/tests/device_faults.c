/*
 * Device memory with nothing behind it. A frame retyped from a device untyped whose
 * physical range holds no device (the one right above RAM: nothing answers there on
 * QEMU's virt boards, nor on capsule's) maps like any frame, but an access through the
 * mapping finds nothing on the bus. seL4 (handleVMFault) passes the hardware's report
 * on as a VMFault to the thread's fault handler, as for any other VM fault (abi/errors.md
 * "Message layouts": MR0 IP, MR1 Addr, MR2 PrefetchFault, MR3 FSR):
 * - RISC-V: FSR is scause, an access fault: load 5, store/AMO 7, instruction 1;
 * - AArch64: FSR is ESR_EL1: EC 0x24 (data abort from a lower exception level) or 0x20
 *   (instruction abort from a lower level), IL set, WnR (bit 6) set for a store, and
 *   the fault status code 0b010000, a synchronous external abort not on a table walk.
 * Only the faulting thread stops; the root task (every fault handler here) and other
 * threads run on. The handler fixes each fault with WriteRegisters, as in ipc_faults.c.
 */
#include <string.h>
#include <thread.h>

#include "checks.h"

static seL4_CPtr pool;

#define NTHREADS 2
#include "threads_util.h"

#define FAULT_BADGE 0xde
#define DEVICE_VA 0x40000000ul /* where the device frame is mapped */
#define NREGS (sizeof(seL4_UserContext) / sizeof(seL4_Word))

/* The VMFault message (abi/errors.md). */
#define VM_IP 0
#define VM_ADDR 1
#define VM_PREFETCH 2
#define VM_FSR 3
#define VM_LENGTH 4

#if defined(__riscv)
#define Page_Map seL4_RISCV_Page_Map
#define PageTable_Map seL4_RISCV_PageTable_Map
#define ATTR seL4_RISCV_Default_VMAttributes
#define FSR_LOAD 5  /* scause: load access fault */
#define FSR_STORE 7 /* store/AMO access fault */
#define FSR_FETCH 1 /* instruction access fault */
#define ARG_REG(n) "a" #n
#define CTX_ARG0 a0
#define CTX_LINK ra
/* One 4-byte load / store, so that the handler can step over it. */
#define LOAD_AT(label) ".option push\n.option norvc\n.global " #label "\n" #label ":\n\tld a0, 0(a0)\n.option pop"
#define STORE_AT(label) ".option push\n.option norvc\n.global " #label "\n" #label ":\n\tsd a1, 0(a0)\n.option pop"
#else
#define Page_Map seL4_ARM_Page_Map
#define PageTable_Map seL4_ARM_PageTable_Map
#define ATTR seL4_ARM_Default_VMAttributes
#define ESR(ec, iss) (((seL4_Word)(ec) << 26) | (1ul << 25) | (iss)) /* IL set */
#define EC_DATA_ABORT_LOWER 0x24
#define EC_INSTRUCTION_ABORT_LOWER 0x20
#define WNR (1ul << 6)
#define FSC_SYNC_EXTERNAL 0x10 /* synchronous external abort, not on a table walk */
#define FSR_LOAD ESR(EC_DATA_ABORT_LOWER, FSC_SYNC_EXTERNAL)
#define FSR_STORE ESR(EC_DATA_ABORT_LOWER, WNR | FSC_SYNC_EXTERNAL)
#define FSR_FETCH ESR(EC_INSTRUCTION_ABORT_LOWER, FSC_SYNC_EXTERNAL)
#define ARG_REG(n) "x" #n
#define CTX_ARG0 x0
#define CTX_LINK x30
#define LOAD_AT(label) ".global " #label "\n" #label ":\n\tldr x0, [x0]"
#define STORE_AT(label) ".global " #label "\n" #label ":\n\tstr x1, [x0]"
#endif

/* ---- the device frame ---- */

/* The device untyped that starts where RAM ends: nothing is behind it. 0 if none. */
static seL4_CPtr device_untyped_above_ram(void)
{
    seL4_BootInfo *bi = seL4_GetBootInfo();
    unsigned long n = bi->untyped.end - bi->untyped.start;
    seL4_Word ram_top = 0;
    for (unsigned long i = 0; i < n; i++) {
        const seL4_UntypedDesc *d = &bi->untypedList[i];
        seL4_Word end = d->paddr + (1ul << d->sizeBits);
        if (!d->isDevice && end > ram_top) {
            ram_top = end;
        }
    }
    for (unsigned long i = 0; i < n; i++) {
        const seL4_UntypedDesc *d = &bi->untypedList[i];
        if (d->isDevice && d->paddr == ram_top) {
            return bi->untyped.start + i;
        }
    }
    return 0;
}

/* Map page tables over `vaddr` until every level is there (the kernel says DeleteFirst). */
static int tables_for(seL4_Word vaddr)
{
    for (;;) {
        seL4_CPtr pt;
        EXPECT_OK(make_objects(pool, OBJ_PAGE_TABLE, 0, 1, &pt));
        seL4_Error e = PageTable_Map(pt, seL4_CapInitThreadVSpace, vaddr, ATTR);
        if (e == seL4_DeleteFirst) {
            return 0;
        }
        EXPECT_OK(e);
    }
}

static int device_mapped;

/* A frame from the device untyped above RAM, mapped read-write (and executable) at
 * DEVICE_VA in the root VSpace, which every thread here shares. Done once. */
static int map_device_frame(void)
{
    if (device_mapped) {
        return 0;
    }
    seL4_CPtr ut = device_untyped_above_ram();
    if (ut == 0) {
        return fail("no device untyped starts at the end of RAM");
    }
    seL4_CPtr frame;
    EXPECT_OK(make_objects(ut, OBJ_4K_PAGE, 0, 1, &frame));
    EXPECT_PASS(tables_for(DEVICE_VA));
    EXPECT_OK(Page_Map(frame, seL4_CapInitThreadVSpace, DEVICE_VA, seL4_ReadWrite, ATTR));
    device_mapped = 1;
    return 0;
}

/* ---- faulting threads and their handler ---- */

/*
 * Map the device frame, start thread 0 running `fn` with a badged cap to a new fault_ep
 * as its fault handler, and receive its first fault: fail unless it is a VMFault. Its
 * MRs are left for the caller to check.
 */
static int start_faulter(const char *name, thread_entry_fn fn)
{
    EXPECT_PASS(map_device_frame());
    EXPECT_PASS(make_with_fault_handler(name, fn, FAULT_BADGE));
    EXPECT_OK(thread_start(&threads[0]));
    seL4_Word badge;
    seL4_MessageInfo_t info = seL4_Recv(fault_ep, &badge);
    EXPECT_EQ(badge, FAULT_BADGE);
    EXPECT_EQ(seL4_MessageInfo_get_label(info), seL4_Fault_VMFault);
    EXPECT_EQ(seL4_MessageInfo_get_length(info), VM_LENGTH);
    return 0;
}

/* Fail unless the VMFault just received says (ip, addr, prefetch, fsr). */
static int expect_vm_fault(seL4_Word ip, seL4_Word addr, seL4_Word prefetch, seL4_Word fsr)
{
    EXPECT_EQ(seL4_GetMR(VM_IP), ip);
    EXPECT_EQ(seL4_GetMR(VM_ADDR), addr);
    EXPECT_EQ(seL4_GetMR(VM_PREFETCH), prefetch);
    EXPECT_EQ(seL4_GetMR(VM_FSR), fsr);
    printf("  VMFault ip %#lx addr %#lx prefetch %lu fsr %#lx\n",
           (unsigned long)seL4_GetMR(VM_IP), (unsigned long)seL4_GetMR(VM_ADDR),
           (unsigned long)seL4_GetMR(VM_PREFETCH), (unsigned long)seL4_GetMR(VM_FSR));
    return 0;
}

/*
 * Thread 0, stopped by the fault: set its pc to `pc` (its return address when `pc` is
 * 0) and a0 / x0 to `arg0` with WriteRegisters (the pc a reply restarts it at), reply,
 * and let it run: fail unless it ran to its end (set *done).
 */
static int resume_at(seL4_Word pc, seL4_Word arg0, volatile seL4_Word *done)
{
    seL4_UserContext regs;
    EXPECT_OK(seL4_TCB_ReadRegisters(threads[0].tcb, 0, 0, NREGS, &regs));
    regs.pc = pc != 0 ? pc : regs.CTX_LINK;
    regs.CTX_ARG0 = arg0;
    EXPECT_OK(seL4_TCB_WriteRegisters(threads[0].tcb, 0, 0, NREGS, &regs));
    seL4_Reply(seL4_MessageInfo_new(0, 0, 0, 0));
    seL4_Yield();
    EXPECT_EQ(*done, 1);
    return 0;
}

/* ---- load ---- */

extern const char device_load_at[];
static volatile seL4_Word loaded, load_done;

static void load_thread(void *arg)
{
    (void)arg;
    register seL4_Word r0 __asm__(ARG_REG(0)) = DEVICE_VA + 8;
    __asm__ volatile(LOAD_AT(device_load_at) : "+r"(r0) : : "memory");
    loaded = r0;
    load_done = 1;
}

static int load_faults_in_its_thread(void)
{
    load_done = 0;
    EXPECT_PASS(start_faulter("devload", load_thread));
    EXPECT_PASS(expect_vm_fault((seL4_Word)device_load_at, DEVICE_VA + 8, 0, FSR_LOAD));
    /* A reply alone would run the load again: skip it and supply the value. */
    EXPECT_PASS(resume_at((seL4_Word)device_load_at + 4, 0x10ad, &load_done));
    EXPECT_EQ(loaded, 0x10ad);
    return 0;
}

/* ---- store ---- */

extern const char device_store_at[];
static volatile seL4_Word store_done;

static void store_thread(void *arg)
{
    (void)arg;
    register seL4_Word r0 __asm__(ARG_REG(0)) = DEVICE_VA + 16;
    register seL4_Word r1 __asm__(ARG_REG(1)) = 0x5703e;
    __asm__ volatile(STORE_AT(device_store_at) : : "r"(r0), "r"(r1) : "memory");
    store_done = 1;
}

static int store_faults_in_its_thread(void)
{
    store_done = 0;
    EXPECT_PASS(start_faulter("devstore", store_thread));
    EXPECT_PASS(expect_vm_fault((seL4_Word)device_store_at, DEVICE_VA + 16, 0, FSR_STORE));
    EXPECT_PASS(resume_at((seL4_Word)device_store_at + 4, 0, &store_done));
    return 0;
}

/* ---- instruction fetch ---- */

typedef seL4_Word (*word_fn)(void);
static word_fn volatile device_fn = (word_fn)DEVICE_VA;
static volatile seL4_Word fetched, fetch_done;

static void fetch_thread(void *arg)
{
    (void)arg;
    fetched = device_fn();
    fetch_done = 1;
}

static int fetch_faults_in_its_thread(void)
{
    fetch_done = 0;
    EXPECT_PASS(start_faulter("devfetch", fetch_thread));
    EXPECT_PASS(expect_vm_fault(DEVICE_VA, DEVICE_VA, 1, FSR_FETCH));
    /* Return from the "call" with 0x77. */
    EXPECT_PASS(resume_at(0, 0x77, &fetch_done));
    EXPECT_EQ(fetched, 0x77);
    return 0;
}

/* ---- no handler: the others run on ---- */

static volatile seL4_Word orphan_after, bystander_ran;

static void orphan_thread(void *arg)
{
    (void)arg;
    orphan_after = *(volatile seL4_Word *)DEVICE_VA;
    orphan_after = 1;
}

static void bystander_thread(void *arg)
{
    (void)arg;
    seL4_Yield(); /* the orphan faults meanwhile */
    bystander_ran = 1;
}

static int fault_without_handler_stops_only_that_thread(void)
{
    orphan_after = 0;
    bystander_ran = 0;
    EXPECT_PASS(map_device_frame());
    /* thread_create leaves the fault endpoint CPtr 0: the null slot, no handler. */
    EXPECT_OK(make(0, "orphan", orphan_thread, 0, 255));
    EXPECT_OK(make(1, "bystander", bystander_thread, 0, 255));
    EXPECT_OK(thread_start(&threads[0]));
    EXPECT_OK(thread_start(&threads[1]));
    seL4_Yield();
    seL4_Yield();
    EXPECT_EQ(bystander_ran, 1);
    EXPECT_EQ(orphan_after, 0);
    printf("  the root task and the bystander ran on\n");
    return 0;
}

static const struct check checks[] = {
    {"DEVFLT0001", "A load from a device frame with nothing behind it: VMFault, load FSR",
     load_faults_in_its_thread},
    {"DEVFLT0002", "A store to it: VMFault with the store FSR", store_faults_in_its_thread},
    {"DEVFLT0003", "An instruction fetch from it: VMFault, prefetch, fetch FSR",
     fetch_faults_in_its_thread},
    {"DEVFLT0004", "Such a fault without a handler stops only that thread",
     fault_without_handler_stops_only_that_thread},
};

int main(void)
{
    return checks_main(checks, sizeof(checks) / sizeof(checks[0]), &pool);
}
