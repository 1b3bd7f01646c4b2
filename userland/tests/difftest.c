/*
 * Differential test: a seeded random sequence of invocations, every result printed, so
 * that the same ELF run on capsule and on seL4 can be compared line by line
 * (`python -m capsule.difftest`, README "Differential testing").
 *
 * The sequence works in an arena of slots of the root CNode and a RAM untyped of at
 * least 2 MiB: Untyped_Retype of every object type (into the arena, from the untyped or
 * from an arena slot, some sizes out of range), CNode Copy/Mint/Move/Mutate/Delete/Revoke,
 * TCB SetPriority/SetMCPriority/ReadRegisters/Suspend, Signal/Poll on notifications,
 * NBSend/NBRecv on endpoints (only through caps with the right to send or receive: a cap
 * without it faults the root task), page table and frame Map/Unmap/GetAddress in the root
 * VSpace; CNode Rotate and CancelBadgedSends, TCB SetSpace, Bind/UnbindNotification,
 * SetIPCBuffer, WriteRegisters (not resumed), DomainSet_Set, ASIDPool_Assign, with other
 * arena caps of any kind as arguments. Any seL4 runs it: nothing depends on capsule.
 *
 * The guest also keeps a model of which arena slots are full and checks the results
 * seL4's rules fix whatever the objects: a destination slot that is full is
 * seL4_DeleteFirst (Retype, Copy, Mint, Move, Mutate), an empty source slot then
 * seL4_FailedLookup, Delete and Revoke succeed (a Retype's size must be below the word
 * size, and in range for an Untyped or a CNode, for its DeleteFirst to count). A broken rule prints a line starting
 * "MISMATCH". After a Revoke it probes every slot (a Copy to a scratch slot) and prints
 * which are full.
 *
 * difftest_seed and difftest_steps are patched in the ELF to choose a sequence.
 * Output: "difftest seed=<n> steps=<n> untyped=<slot> bits=<n>", a line per step
 * "<i> <operation> <arguments> = <error>[ <results>]", then "difftest done".
 */
#include <sel4/sel4.h>
#include <stdio.h>

volatile const unsigned long difftest_seed = 1;
volatile const unsigned long difftest_steps = 300;

#define ARENA 24
#define VADDR_BASE 0x40000000ul
#define VADDRS 4

#if defined(__riscv)
#define FRAME_TYPE seL4_RISCV_4K_Page
#define PT_TYPE seL4_RISCV_PageTableObject
#define PAGE_MAP(f, v, r) seL4_RISCV_Page_Map(f, seL4_CapInitThreadVSpace, v, r, seL4_RISCV_Default_VMAttributes)
#define PAGE_UNMAP seL4_RISCV_Page_Unmap
#define PAGE_ADDR seL4_RISCV_Page_GetAddress
#define PT_MAP(p, v) seL4_RISCV_PageTable_Map(p, seL4_CapInitThreadVSpace, v, seL4_RISCV_Default_VMAttributes)
#define PT_UNMAP seL4_RISCV_PageTable_Unmap
#define ASID_ASSIGN seL4_RISCV_ASIDPool_Assign
static const int arch_types[] = {seL4_RISCV_Giga_Page, seL4_RISCV_4K_Page, seL4_RISCV_Mega_Page,
                                 seL4_RISCV_PageTableObject};
#else
#define FRAME_TYPE seL4_ARM_SmallPageObject
#define PT_TYPE seL4_ARM_PageTableObject
#define PAGE_MAP(f, v, r) seL4_ARM_Page_Map(f, seL4_CapInitThreadVSpace, v, r, seL4_ARM_Default_VMAttributes)
#define PAGE_UNMAP seL4_ARM_Page_Unmap
#define PAGE_ADDR seL4_ARM_Page_GetAddress
#define PT_MAP(p, v) seL4_ARM_PageTable_Map(p, seL4_CapInitThreadVSpace, v, seL4_ARM_Default_VMAttributes)
#define PT_UNMAP seL4_ARM_PageTable_Unmap
#define ASID_ASSIGN seL4_ARM_ASIDPool_Assign
static const int arch_types[] = {seL4_ARM_HugePageObject, seL4_ARM_VSpaceObject,
                                 seL4_ARM_SmallPageObject, seL4_ARM_LargePageObject,
                                 seL4_ARM_PageTableObject};
#endif
#define N_ARCH_TYPES (sizeof(arch_types) / sizeof(arch_types[0]))

static unsigned long long state;
static int full[ARENA];
static int type[ARENA];
static int can_read[ARENA], can_write[ARENA];  /* the cap's rights, for Receive and Send */
static seL4_CPtr base, scratch;
static int mismatches;
static int bound;  /* a notification was bound to a TCB: Poll on it would fault */

static unsigned long rnd(unsigned long n)
{
    /* xorshift64*: the same numbers on every machine */
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return (unsigned long)((state * 2685821657736338717ull) >> 33) % n;
}

static void expect(int got, int want)
{
    if (got != want) {
        printf("MISMATCH: expected %d\n", want);
        mismatches++;
    }
}

static void probe(void)
{
    printf("  probe:");
    for (int i = 0; i < ARENA; i++) {
        int err = seL4_CNode_Copy(seL4_CapInitThreadCNode, scratch, seL4_WordBits,
                                  seL4_CapInitThreadCNode, base + i, seL4_WordBits, seL4_AllRights);
        full[i] = err != seL4_FailedLookup;
        if (err == seL4_NoError) {
            seL4_CNode_Delete(seL4_CapInitThreadCNode, scratch, seL4_WordBits);
        }
        printf(" %d", full[i]);
    }
    printf("\n");
}

/* Whether arena slot i holds a cap (a Copy to the scratch slot finds out), kept in the
 * model: a Send or Receive on an empty slot would fault the root task. */
static int still_full(int i)
{
    int err = seL4_CNode_Copy(seL4_CapInitThreadCNode, scratch, seL4_WordBits,
                              seL4_CapInitThreadCNode, base + i, seL4_WordBits, seL4_AllRights);
    if (err == seL4_NoError) {
        seL4_CNode_Delete(seL4_CapInitThreadCNode, scratch, seL4_WordBits);
    }
    full[i] = err != seL4_FailedLookup;
    return full[i];
}

/* An arena slot, biased towards full ones of type t (-1: any). */
static int pick(int t)
{
    for (int tries = 0; tries < 4; tries++) {
        int i = (int)rnd(ARENA);
        if (full[i] && (t < 0 || type[i] == t)) {
            return i;
        }
    }
    return (int)rnd(ARENA);
}

static void retype(unsigned long step, seL4_CPtr untyped)
{
    static const int common[] = {seL4_UntypedObject, seL4_TCBObject, seL4_EndpointObject,
                                 seL4_NotificationObject, seL4_CapTableObject};
    unsigned long k = rnd(5 + N_ARCH_TYPES + 1);
    int t = k < 5 ? common[k] : k < 5 + N_ARCH_TYPES ? arch_types[k - 5] : (int)rnd(64);
    unsigned long bits = t == seL4_UntypedObject ? 4 + rnd(14) : t == seL4_CapTableObject ? rnd(8) : 0;
    if (rnd(10) == 0) {
        bits = rnd(70);  /* sometimes out of range */
    }
    int dest = (int)rnd(ARENA), count = 1 + (int)rnd(2);
    if (dest + count > ARENA) {
        count = 1;
    }
    int err = seL4_Untyped_Retype(untyped, t, bits, seL4_CapInitThreadCNode, 0, 0, base + dest, count);
    printf("%lu retype ut=%lu type=%d bits=%lu dest=%d n=%d = %d\n", step, (unsigned long)untyped,
           t, bits, dest, count, err);
    int valid = (k < 5 + N_ARCH_TYPES) && bits < seL4_WordBits
                && (t != seL4_UntypedObject || (bits >= 4 && bits <= 17))
                && (t != seL4_CapTableObject || (bits >= 1 && bits <= 7)) && (untyped < base);
    int any_full = 0;
    for (int i = 0; i < count; i++) {
        any_full |= full[dest + i];
    }
    if (valid && any_full) {
        expect(err, seL4_DeleteFirst);
    }
    if (err == seL4_NoError) {
        for (int i = 0; i < count; i++) {
            full[dest + i] = 1;
            type[dest + i] = t;
            can_read[dest + i] = can_write[dest + i] = 1;
        }
    }
}

static void cnode_op(unsigned long step, unsigned long op)
{
    int src = pick(-1), dest = (int)rnd(ARENA);
    seL4_CPtr s = base + src, d = base + dest;
    seL4_CPtr root = seL4_CapInitThreadCNode;
    seL4_Word badge = rnd(4) == 0 ? 0 : rnd(1000);
    int read = (int)rnd(2), write = (int)rnd(2);
    seL4_CapRights_t rights = seL4_CapRights_new(rnd(2), rnd(2), read, write);
    int err;
    switch (op) {
    case 0:
        err = seL4_CNode_Copy(root, d, seL4_WordBits, root, s, seL4_WordBits, rights);
        printf("%lu copy %d->%d = %d\n", step, src, dest, err);
        break;
    case 1:
        err = seL4_CNode_Mint(root, d, seL4_WordBits, root, s, seL4_WordBits, rights, badge);
        printf("%lu mint %d->%d badge=%lu = %d\n", step, src, dest, (unsigned long)badge, err);
        break;
    case 2:
        err = seL4_CNode_Move(root, d, seL4_WordBits, root, s, seL4_WordBits);
        printf("%lu move %d->%d = %d\n", step, src, dest, err);
        break;
    default:
        err = seL4_CNode_Mutate(root, d, seL4_WordBits, root, s, seL4_WordBits, badge);
        printf("%lu mutate %d->%d badge=%lu = %d\n", step, src, dest, (unsigned long)badge, err);
        break;
    }
    if (src != dest && full[dest]) {
        expect(err, seL4_DeleteFirst);
    } else if (src != dest && !full[src]) {
        expect(err, seL4_FailedLookup);
    }
    if (err == seL4_NoError) {
        full[dest] = 1;
        type[dest] = type[src];
        /* Copy and Mint mask the rights; Move and Mutate keep them. */
        can_read[dest] = can_read[src] & (op >= 2 || read);
        can_write[dest] = can_write[src] & (op >= 2 || write);
        if (op >= 2) {
            full[src] = 0;
        }
    }
}

static void object_op(unsigned long step)
{
    seL4_Word badge = 0;
    int i;
    switch (rnd(10)) {
    case 0: {
        i = pick(seL4_TCBObject);
        if (!full[i] || type[i] != seL4_TCBObject || !still_full(i)) {
            return;
        }
        int prio = (int)rnd(256);
        int err = rnd(2) ? seL4_TCB_SetPriority(base + i, seL4_CapInitThreadTCB, prio)
                         : seL4_TCB_SetMCPriority(base + i, seL4_CapInitThreadTCB, prio);
        printf("%lu tcb-priority %d %d = %d\n", step, i, prio, err);
        return;
    }
    case 1: {
        i = pick(seL4_TCBObject);
        if (!full[i] || type[i] != seL4_TCBObject || !still_full(i)) {
            return;
        }
        seL4_UserContext regs = {0};
        unsigned long n = rnd(sizeof(regs) / sizeof(seL4_Word) + 1);
        int err = seL4_TCB_ReadRegisters(base + i, 0, 0, n, &regs);
        printf("%lu tcb-read %d n=%lu = %d pc=%lx\n", step, i, n, err, (unsigned long)regs.pc);
        return;
    }
    case 2:
        i = pick(seL4_TCBObject);
        if (full[i] && type[i] == seL4_TCBObject && still_full(i)) {
            printf("%lu tcb-suspend %d = %d\n", step, i, seL4_TCB_Suspend(base + i));
        }
        return;
    case 3:
        i = pick(seL4_NotificationObject);
        if (full[i] && type[i] == seL4_NotificationObject && can_write[i] && still_full(i)) {
            seL4_Signal(base + i);
            printf("%lu signal %d\n", step, i);
        }
        return;
    case 4:
        i = pick(seL4_NotificationObject);
        if (full[i] && type[i] == seL4_NotificationObject && can_read[i] && !bound
            && still_full(i)) {
            seL4_Poll(base + i, &badge);
            printf("%lu poll %d = badge %lu\n", step, i, (unsigned long)badge);
        }
        return;
    case 5:
        i = pick(seL4_EndpointObject);
        if (full[i] && type[i] == seL4_EndpointObject && can_write[i] && still_full(i)) {
            seL4_NBSend(base + i, seL4_MessageInfo_new(rnd(100), 0, 0, 0));
            printf("%lu nbsend %d\n", step, i);
        }
        return;
    case 6:
        i = pick(seL4_EndpointObject);
        if (full[i] && type[i] == seL4_EndpointObject && can_read[i] && still_full(i)) {
            seL4_MessageInfo_t info = seL4_NBRecv(base + i, &badge);
            printf("%lu nbrecv %d = label %lu badge %lu\n", step, i,
                   (unsigned long)seL4_MessageInfo_get_label(info), (unsigned long)badge);
        }
        return;
    case 7: {
        i = pick(PT_TYPE);
        if (full[i] && type[i] != PT_TYPE) {
            return;  /* a Call on an endpoint would block for ever */
        }
        seL4_Word vaddr = VADDR_BASE + rnd(VADDRS) * 0x1000;
        int err = rnd(3) ? PT_MAP(base + i, vaddr) : PT_UNMAP(base + i);
        printf("%lu pt-map-or-unmap %d %lx = %d\n", step, i, (unsigned long)vaddr, err);
        return;
    }
    case 8: {
        i = pick(FRAME_TYPE);
        if (full[i] && type[i] != FRAME_TYPE) {
            return;
        }
        seL4_Word vaddr = VADDR_BASE + rnd(VADDRS) * 0x1000;
        int err = rnd(3) ? PAGE_MAP(base + i, vaddr, seL4_CapRights_new(0, 0, rnd(2), 1))
                         : PAGE_UNMAP(base + i);
        printf("%lu page-map-or-unmap %d %lx = %d\n", step, i, (unsigned long)vaddr, err);
        return;
    }
    default: {
        i = pick(FRAME_TYPE);
        if (full[i] && type[i] == FRAME_TYPE) {
            __typeof__(PAGE_ADDR(0)) r = PAGE_ADDR(base + i);
            printf("%lu page-address %d = %d %lx\n", step, i, r.error, (unsigned long)r.paddr);
        }
        return;
    }
    }
}

/* Invocations whose other caps are arena slots of any kind: Rotate, CancelBadgedSends,
 * TCB SetSpace/BindNotification/UnbindNotification/SetIPCBuffer/WriteRegisters, the
 * domain cap, ASID pool Assign. */
static void more_op(unsigned long step)
{
    seL4_CPtr root = seL4_CapInitThreadCNode;
    int a = pick(-1), b = pick(-1), c = pick(-1), t = pick(seL4_TCBObject);
    int tcb_ok = full[t] && type[t] == seL4_TCBObject && still_full(t);
    int err;
    switch (rnd(8)) {
    case 0: {
        seL4_Word badge1 = rnd(3) ? 0 : rnd(50), badge2 = rnd(3) ? 0 : rnd(50);
        int ra = can_read[b], wa = can_write[b], rs = can_read[c], ws = can_write[c];
        int tb = type[b], tc = type[c];
        err = seL4_CNode_Rotate(root, base + a, seL4_WordBits, badge1, root, base + b,
                                seL4_WordBits, badge2, root, base + c, seL4_WordBits);
        printf("%lu rotate %d<-%d<-%d = %d\n", step, a, b, c, err);
        if (err == seL4_NoError) {
            if (c != a) {
                full[c] = 0;
            }
            full[a] = full[b] = 1;
            type[a] = tb, can_read[a] = ra, can_write[a] = wa;
            type[b] = tc, can_read[b] = rs, can_write[b] = ws;
        }
        return;
    }
    case 1:
        err = seL4_CNode_CancelBadgedSends(root, base + a, seL4_WordBits);
        printf("%lu cancel-badged %d = %d\n", step, a, err);
        return;
    case 2:
        if (tcb_ok) {
            err = seL4_TCB_SetSpace(base + t, 0, base + a, rnd(3) ? 0 : rnd(1 << 10), base + b, 0);
            printf("%lu tcb-setspace %d %d %d = %d\n", step, t, a, b, err);
        }
        return;
    case 3:
        if (tcb_ok) {
            int bind = (int)rnd(2);
            err = bind ? seL4_TCB_BindNotification(base + t, base + a)
                       : seL4_TCB_UnbindNotification(base + t);
            bound |= bind && err == seL4_NoError;
            printf("%lu tcb-bind-or-unbind %d %d = %d\n", step, t, a, err);
        }
        return;
    case 4:
        if (tcb_ok) {
            seL4_Word buffer = rnd(2) ? 0 : VADDR_BASE + rnd(VADDRS) * 0x1000 + rnd(4) * 256;
            err = seL4_TCB_SetIPCBuffer(base + t, buffer, base + a);
            printf("%lu tcb-ipcbuffer %d %lx %d = %d\n", step, t, (unsigned long)buffer, a, err);
        }
        return;
    case 5:
        if (tcb_ok) {
            seL4_UserContext regs = {0};
            regs.pc = 0x10000 + rnd(16) * 4;
            unsigned long n = rnd(sizeof(regs) / sizeof(seL4_Word) + 1);
            err = seL4_TCB_WriteRegisters(base + t, 0, 0, n, &regs);
            printf("%lu tcb-write %d n=%lu = %d\n", step, t, n, err);
        }
        return;
    case 6:
        err = seL4_DomainSet_Set(seL4_CapDomain, (seL4_Uint8)rnd(3), base + a);
        printf("%lu domain-set %d = %d\n", step, a, err);
        return;
    default:
        err = ASID_ASSIGN(seL4_CapInitThreadASIDPool, base + a);
        printf("%lu asid-assign %d = %d\n", step, a, err);
        return;
    }
}

int main(void)
{
    seL4_BootInfo *bi = seL4_GetBootInfo();
    state = difftest_seed * 0x9E3779B97F4A7C15ull + 1;
    base = bi->empty.start;
    scratch = base + ARENA;
    seL4_CPtr untyped = 0;
    unsigned bits = 0;
    for (seL4_CPtr s = bi->untyped.start; s < bi->untyped.end; s++) {
        const seL4_UntypedDesc *d = &bi->untypedList[s - bi->untyped.start];
        if (!d->isDevice && d->sizeBits >= 21) {
            untyped = s;
            bits = d->sizeBits;
            break;
        }
    }
    printf("difftest seed=%lu steps=%lu untyped=%lu bits=%u\n", (unsigned long)difftest_seed,
           (unsigned long)difftest_steps, (unsigned long)untyped, bits);
    if (!untyped) {
        return 1;
    }
    for (unsigned long step = 0; step < difftest_steps; step++) {
        unsigned long op = rnd(16);
        if (op < 4) {
            int from = pick(seL4_UntypedObject);
            /* An arena slot as the untyped, unless it holds another object's cap: a Call
             * on an endpoint would block for ever. */
            int arena = rnd(4) == 0 && !(full[from] && type[from] != seL4_UntypedObject);
            retype(step, arena ? base + (seL4_CPtr)from : untyped);
        } else if (op < 8) {
            cnode_op(step, op - 4);
        } else if (op == 8) {
            int i = pick(-1);
            int err = seL4_CNode_Delete(seL4_CapInitThreadCNode, base + i, seL4_WordBits);
            printf("%lu delete %d = %d\n", step, i, err);
            expect(err, seL4_NoError);
            full[i] = 0;
        } else if (op == 9) {
            int i = pick(-1);
            int err = seL4_CNode_Revoke(seL4_CapInitThreadCNode, base + i, seL4_WordBits);
            printf("%lu revoke %d = %d\n", step, i, err);
            expect(err, seL4_NoError);
            probe();
        } else if (op < 14) {
            object_op(step);
        } else {
            more_op(step);
        }
    }
    printf("difftest done: %d mismatches\n", mismatches);
    return mismatches != 0;
}
