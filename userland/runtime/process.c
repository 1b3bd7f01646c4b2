/*
 * Processes from untyped memory (include/process.h).
 *
 * The ELF is read from memory: the file header and its program headers, then every
 * PT_LOAD segment page by page. Each page is a fresh frame, mapped in the parent at
 * PROCESS_SCRATCH to be filled (zeros, then the file bytes that fall in it), unmapped,
 * and mapped in the child with the segment's rights (write if PF_W; execute-never
 * unless PF_X).
 */
#include <process.h>
#include <string.h>
#include <thread.h>

#if defined(__riscv)
#define OBJ_4K seL4_RISCV_4K_Page
#define OBJ_PT seL4_RISCV_PageTableObject
#define OBJ_VSPACE seL4_RISCV_PageTableObject
#define PAGE_MAP seL4_RISCV_Page_Map
#define PAGE_UNMAP seL4_RISCV_Page_Unmap
#define PT_MAP seL4_RISCV_PageTable_Map
#define ASSIGN seL4_RISCV_ASIDPool_Assign
#define ATTR_EXEC seL4_RISCV_Default_VMAttributes
#define ATTR_NOEXEC seL4_RISCV_ExecuteNever
#define EM_SELF 243
#else
#define OBJ_4K seL4_ARM_SmallPageObject
#define OBJ_PT seL4_ARM_PageTableObject
#define OBJ_VSPACE seL4_ARM_VSpaceObject
#define PAGE_MAP seL4_ARM_Page_Map
#define PAGE_UNMAP seL4_ARM_Page_Unmap
#define PT_MAP seL4_ARM_PageTable_Map
#define ASSIGN seL4_ARM_ASIDPool_Assign
#define ATTR_EXEC seL4_ARM_Default_VMAttributes
#define ATTR_NOEXEC (seL4_ARM_Default_VMAttributes | seL4_ARM_ExecuteNever)
#define EM_SELF 183
#endif

#define PAGE 4096ul
#define ROOT seL4_CapInitThreadCNode
#define PT_LOAD 1
#define PF_X 1
#define PF_W 2

_Static_assert(sizeof(seL4_BootInfo) <= PROCESS_ARGS_OFFSET, "process args overlap bootinfo");

struct elf64_header {
    unsigned char ident[16];
    seL4_Uint16 type, machine;
    seL4_Uint32 version;
    seL4_Word entry, phoff, shoff;
    seL4_Uint32 flags;
    seL4_Uint16 ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};

struct elf64_phdr {
    seL4_Uint32 type, flags;
    seL4_Word offset, vaddr, paddr, filesz, memsz, align;
};

static seL4_Error retype(seL4_CPtr ut, seL4_Word type, seL4_Word size_bits, seL4_CPtr *slot)
{
    *slot = slot_alloc();
    if (*slot == 0) {
        return seL4_NotEnoughMemory;
    }
    return seL4_Untyped_Retype(ut, type, size_bits, ROOT, 0, 0, *slot, 1);
}

seL4_Error process_map_page(seL4_CPtr untyped, seL4_CPtr vspace, seL4_CPtr frame,
                            seL4_Word vaddr, seL4_CapRights_t rights, int executable)
{
    for (int tables = 0;; tables++) {
        seL4_Error e = PAGE_MAP(frame, vspace, vaddr, rights,
                                executable ? ATTR_EXEC : ATTR_NOEXEC);
        if (e != seL4_FailedLookup || tables == 4) {
            return e;
        }
        seL4_CPtr pt;
        e = retype(untyped, OBJ_PT, 0, &pt);
        if (e == seL4_NoError) {
            e = PT_MAP(pt, vspace, vaddr, ATTR_EXEC);
        }
        if (e != seL4_NoError) {
            return e;
        }
    }
}

/* A fresh frame mapped in the child at `vaddr`, filled by `fill` through the scratch
 * mapping in the parent. */
static seL4_Error child_page(struct process *p, seL4_Word vaddr, seL4_CapRights_t rights,
                             int executable, void (*fill)(void *page, const void *ctx),
                             const void *ctx, seL4_CPtr *frame_out)
{
    seL4_CPtr frame;
    seL4_Error e = retype(p->untyped, OBJ_4K, 0, &frame);
    if (e != seL4_NoError) {
        return e;
    }
    e = process_map_page(p->untyped, seL4_CapInitThreadVSpace, frame, PROCESS_SCRATCH,
                         seL4_ReadWrite, 0);
    if (e != seL4_NoError) {
        return e;
    }
    fill((void *)PROCESS_SCRATCH, ctx);
    e = PAGE_UNMAP(frame);
    if (e == seL4_NoError) {
        e = process_map_page(p->untyped, p->vspace, frame, vaddr, rights, executable);
    }
    if (frame_out) {
        *frame_out = frame;
    }
    return e;
}

struct segment_page {
    const unsigned char *elf;
    const struct elf64_phdr *ph;
    seL4_Word page; /* the page's virtual address */
};

static void fill_segment_page(void *dst, const void *ctx)
{
    const struct segment_page *sp = ctx;
    seL4_Word start = sp->ph->vaddr, file_end = start + sp->ph->filesz;
    memset(dst, 0, PAGE);
    seL4_Word lo = sp->page > start ? sp->page : start;
    seL4_Word hi = sp->page + PAGE < file_end ? sp->page + PAGE : file_end;
    if (lo < hi) {
        memcpy((char *)dst + (lo - sp->page), sp->elf + sp->ph->offset + (lo - start),
               hi - lo);
    }
}

static void fill_zero(void *dst, const void *ctx)
{
    (void)ctx;
    memset(dst, 0, PAGE);
}

struct bootinfo_fill {
    const seL4_Word *args;
};

static void fill_bootinfo(void *dst, const void *ctx)
{
    const struct bootinfo_fill *bf = ctx;
    memset(dst, 0, PAGE);
    seL4_BootInfo *bi = dst;
    bi->nodeID = 0;
    bi->numNodes = 1;
    bi->ipcBuffer = (seL4_IPCBuffer *)PROCESS_IPC_BUFFER;
    bi->empty.start = PROCESS_FIRST_FREE_SLOT;
    bi->empty.end = 1ul << PROCESS_CNODE_BITS;
    bi->initThreadCNodeSizeBits = PROCESS_CNODE_BITS;
    seL4_Word *args = (seL4_Word *)((char *)dst + PROCESS_ARGS_OFFSET);
    for (unsigned i = 0; bf->args && i < PROCESS_NUM_ARGS; i++) {
        args[i] = bf->args[i];
    }
}

static seL4_Error load_elf(struct process *p, const unsigned char *elf, unsigned long size)
{
    const struct elf64_header *eh = (const struct elf64_header *)elf;
    if (size < sizeof(*eh) || memcmp(eh->ident, "\177ELF\2\1", 6) != 0 ||
        eh->machine != EM_SELF || eh->phentsize != sizeof(struct elf64_phdr) ||
        eh->phoff + (seL4_Word)eh->phnum * sizeof(struct elf64_phdr) > size) {
        return seL4_InvalidArgument;
    }
    p->entry = eh->entry;
    const struct elf64_phdr *ph = (const struct elf64_phdr *)(elf + eh->phoff);
    for (unsigned i = 0; i < eh->phnum; i++) {
        if (ph[i].type != PT_LOAD) {
            continue;
        }
        if (ph[i].offset + ph[i].filesz > size || ph[i].filesz > ph[i].memsz) {
            return seL4_InvalidArgument;
        }
        seL4_CapRights_t rights = (ph[i].flags & PF_W) ? seL4_ReadWrite : seL4_CanRead;
        seL4_Word first = ph[i].vaddr & ~(PAGE - 1);
        for (seL4_Word page = first; page < ph[i].vaddr + ph[i].memsz; page += PAGE) {
            struct segment_page sp = {elf, &ph[i], page};
            seL4_Error e = child_page(p, page, rights, (ph[i].flags & PF_X) != 0,
                                      fill_segment_page, &sp, 0);
            if (e != seL4_NoError) {
                return e;
            }
        }
    }
    return seL4_NoError;
}

seL4_Error process_give_cap(struct process *p, seL4_Word slot, seL4_CPtr src,
                            seL4_CapRights_t rights, seL4_Word badge)
{
    return seL4_CNode_Mint(p->cnode, slot, PROCESS_CNODE_BITS, ROOT, src, seL4_WordBits,
                           rights, badge);
}

seL4_Error process_share_frame(struct process *p, seL4_CPtr frame, seL4_Word vaddr,
                               seL4_CapRights_t rights)
{
    seL4_CPtr copy = slot_alloc();
    if (copy == 0) {
        return seL4_NotEnoughMemory;
    }
    seL4_Error e = seL4_CNode_Copy(ROOT, copy, seL4_WordBits, ROOT, frame, seL4_WordBits,
                                   seL4_AllRights);
    if (e != seL4_NoError) {
        return e;
    }
    return process_map_page(p->untyped, p->vspace, copy, vaddr, rights, 0);
}

seL4_Error process_create(struct process *p, seL4_CPtr untyped, const void *elf,
                          unsigned long size, const char *name, seL4_Word priority,
                          const seL4_Word *args, seL4_CPtr fault_ep, seL4_Word fault_badge)
{
    seL4_Error e;
    p->untyped = untyped;
    if ((e = retype(untyped, seL4_CapTableObject, PROCESS_CNODE_BITS, &p->cnode)) ||
        (e = retype(untyped, OBJ_VSPACE, 0, &p->vspace)) ||
        (e = retype(untyped, seL4_TCBObject, 0, &p->tcb)) ||
        (e = ASSIGN(seL4_CapInitThreadASIDPool, p->vspace))) {
        return e;
    }
    if ((e = load_elf(p, elf, size))) {
        return e;
    }
    for (unsigned i = 0; i < PROCESS_STACK_PAGES; i++) {
        if ((e = child_page(p, PROCESS_STACK_TOP - (i + 1) * PAGE, seL4_ReadWrite, 0,
                            fill_zero, 0, 0))) {
            return e;
        }
    }
    seL4_CPtr ipc_frame;
    struct bootinfo_fill bf = {args};
    if ((e = child_page(p, PROCESS_IPC_BUFFER, seL4_ReadWrite, 0, fill_zero, 0, &ipc_frame)) ||
        (e = child_page(p, PROCESS_BOOTINFO, seL4_CanRead, 0, fill_bootinfo, &bf, 0))) {
        return e;
    }
    /* The child's own caps, at seL4's initial slot numbers. */
    seL4_Word guard = seL4_CNode_CapData_new(0, seL4_WordBits - PROCESS_CNODE_BITS).words[0];
    if ((e = seL4_CNode_Mint(p->cnode, PROCESS_SLOT_CNODE, PROCESS_CNODE_BITS, ROOT, p->cnode,
                             seL4_WordBits, seL4_AllRights, guard)) ||
        (e = process_give_cap(p, PROCESS_SLOT_TCB, p->tcb, seL4_AllRights, 0)) ||
        (e = process_give_cap(p, PROCESS_SLOT_VSPACE, p->vspace, seL4_AllRights, 0))) {
        return e;
    }
    seL4_Word fault_slot = 0;
    if (fault_ep != 0) {
        if ((e = process_give_cap(p, PROCESS_SLOT_FAULT_EP, fault_ep, seL4_AllRights,
                                  fault_badge))) {
            return e;
        }
        fault_slot = PROCESS_SLOT_FAULT_EP;
    }
#if defined(CONFIG_KERNEL_MCS)
    /* MCS: Configure names no fault endpoint; the handler cap would be given with
     * SetSpace, from the caller's CSpace (not done yet: such a process has none). */
    (void)fault_slot;
    if ((e = seL4_TCB_Configure(p->tcb, p->cnode, guard, p->vspace, 0, PROCESS_IPC_BUFFER,
                                ipc_frame)) ||
#else
    if ((e = seL4_TCB_Configure(p->tcb, fault_slot, p->cnode, guard, p->vspace, 0,
                                PROCESS_IPC_BUFFER, ipc_frame)) ||
#endif
        (e = seL4_TCB_SetPriority(p->tcb, seL4_CapInitThreadTCB, priority))) {
        return e;
    }
    seL4_UserContext regs;
    memset(&regs, 0, sizeof(regs));
    regs.pc = p->entry;
    regs.sp = PROCESS_STACK_TOP;
#if defined(__riscv)
    regs.a0 = PROCESS_BOOTINFO;
#else
    regs.x0 = PROCESS_BOOTINFO;
#endif
    if ((e = seL4_TCB_WriteRegisters(p->tcb, 0, 0, sizeof(regs) / sizeof(seL4_Word), &regs))) {
        return e;
    }
    seL4_DebugNameThread(p->tcb, name);
    return seL4_NoError;
}

seL4_Error process_start(struct process *p)
{
    return seL4_TCB_Resume(p->tcb);
}

seL4_Word process_arg(unsigned i)
{
    const seL4_Word *args =
        (const seL4_Word *)((const char *)seL4_GetBootInfo() + PROCESS_ARGS_OFFSET);
    return i < PROCESS_NUM_ARGS ? args[i] : 0;
}

void process_exit_self(void)
{
    seL4_TCB_Suspend(seL4_CapInitThreadTCB);
    for (;;) {
        seL4_Yield();
    }
}
