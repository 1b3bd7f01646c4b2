/*
 * A user-level checkpointer written against capsule's checkpoint object (an extension,
 * NOT seL4: sel4/gen/capsule_checkpoint.h; its image turns the extension on).
 *
 * The root task builds a small component: its own CNode holding an endpoint, a badged
 * copy of it with fewer rights, a badged notification, a read-only frame with data, a
 * guarded child CNode (a notification cap with another badge, an endpoint cap) and the
 * cap to the component's thread, whose CSpace is that CNode and which waits on its
 * notification (CPtr 3) in a loop. Its objects all come from one untyped (the thread's
 * stack and IPC buffer are in the root task's image). Then, as a checkpointer:
 *
 *   save     suspend the thread and read its registers (seL4_TCB_ReadRegisters); walk
 *            the component's cspace with capsule_Checkpoint_NextSlot only (child
 *            CNodes as they are found), record every slot (its address, cap type,
 *            rights, badge, size, guard, flags, object identity), and copy each frame's
 *            contents out through the component's own frame cap (Install, then map);
 *   destroy  revoke the untyped: every object and cap of the component is gone;
 *   restore  retype one new object per recorded identity from that untyped, install
 *            every cap at its recorded slot with its recorded rights and badge
 *            (capsule_Checkpoint_Install from the new originals), write frame data back;
 *   verify   walk again and compare slot by slot (identities: the same sharing as
 *            before), signal through the restored notification caps, read the restored
 *            frame through the restored cap; configure the new TCB as the old one was
 *            (the checkpointer made it: seL4 has no getters for a TCB's spaces), write
 *            the saved registers back and resume it: the thread goes on waiting in its
 *            restored cspace and wakes to signals there.
 *
 * The saved table is printed ("saved ..." lines) for the test to compare. Output and
 * exit status: see checks.h.
 */
#include "checks.h"

#include <sel4/gen/capsule_checkpoint.h>
#include <string.h>

#if defined(__riscv)
#define Page_Map seL4_RISCV_Page_Map
#define Page_Unmap seL4_RISCV_Page_Unmap
#define PageTable_Map seL4_RISCV_PageTable_Map
#define ATTR seL4_RISCV_Default_VMAttributes
#else
#define Page_Map seL4_ARM_Page_Map
#define Page_Unmap seL4_ARM_Page_Unmap
#define PageTable_Map seL4_ARM_PageTable_Map
#define ATTR seL4_ARM_Default_VMAttributes
#endif

#define COMP_BITS 4     /* the component's root CNode: 16 slots, no guard */
#define CHILD_BITS 2    /* its child CNode: 4 slots */
#define CHILD_GUARD 1   /* the child CNode cap's guard: one bit, 1 */
#define CHILD_GUARD_BITS 1
#define COMP_UT_BITS 16 /* the untyped the component's objects come from */
#define FRAME_VA 0x50000000ul
#define DATA_BYTES 64
#define MAX_RECORDS 32
#define MAX_NODES 8
#define COMP_NTFN 3 /* the component's notification: a CPtr in its own cspace */
#define COMP_TCB 7  /* the component's cap to its thread */
#define NREGS (sizeof(seL4_UserContext) / sizeof(seL4_Word))

static const char frame_text[DATA_BYTES] = "the component's frame, saved and restored";

static seL4_CPtr pool;    /* the largest RAM untyped: the checkpointer's own objects */
static seL4_CPtr comp_ut; /* the component's objects */
static seL4_CPtr ckpt;    /* the checkpoint object */
static seL4_CPtr comp;    /* the checkpointer's cap to the component's root CNode */
static seL4_Word comp_identity;

/* One recorded slot: where it is (index and depth from the component's root CNode
 * cap, as CNode invocations address slots) and what it held. */
struct record {
    seL4_Word index, depth;
    seL4_Word type, rights, badge, size_bits, guard_size, flags, object;
    char data[DATA_BYTES]; /* a frame's first bytes */
};

static struct record saved[MAX_RECORDS];
static unsigned long n_saved;

static struct thread_storage comp_storage;
static struct thread comp_thread;
static seL4_UserContext comp_regs; /* the thread's registers, saved */
static seL4_CPtr kick;             /* a badged cap to the component's notification */
static volatile seL4_Word woke[8]; /* the badges the component's thread woke with */
static volatile unsigned long wakes;

/* The component's thread: wait on its notification (CPtr 3 of its own cspace) and
 * note each badge. */
static void component_main(void *arg)
{
    (void)arg;
    for (;;) {
        seL4_Word badge = 0;
        seL4_Wait(COMP_NTFN, &badge);
        if (wakes < 8) {
            woke[wakes] = badge;
        }
        wakes++;
    }
}

/* The component thread's CSpace root: its CNode with a guard making CPtrs 64 bits. */
static seL4_Word comp_cspace_data(void)
{
    return seL4_CNode_CapData_new(0, seL4_WordBits - COMP_BITS).words[0];
}

/* Signal `cap` and let the component's thread (same priority) run until it waits. */
static void signal_component(seL4_CPtr cap)
{
    seL4_Signal(cap);
    seL4_Yield();
}

/* The new object made for each recorded identity, and the slot of its original cap. */
static seL4_Word old_ids[MAX_RECORDS], new_slots[MAX_RECORDS];
static unsigned long n_objects;

/* ---- helpers ---- */

static seL4_CPtr retype_one(seL4_CPtr ut, seL4_Word type, seL4_Word size_bits)
{
    seL4_CPtr slot;
    return make_objects(ut, type, size_bits, 1, &slot) == seL4_NoError ? slot : 0;
}

/* Map `frame` at FRAME_VA in the root VSpace with `rights`, adding page tables (from
 * the pool) while Page_Map needs one. */
static seL4_Error map_frame(seL4_CPtr frame, seL4_CapRights_t rights)
{
    for (;;) {
        seL4_Error e = Page_Map(frame, seL4_CapInitThreadVSpace, FRAME_VA, rights, ATTR);
        if (e != seL4_FailedLookup) {
            return e;
        }
        seL4_CPtr pt = retype_one(pool, OBJ_PAGE_TABLE, 0);
        if (pt == 0) {
            return seL4_NotEnoughMemory;
        }
        e = PageTable_Map(pt, seL4_CapInitThreadVSpace, FRAME_VA, ATTR);
        if (e != seL4_NoError) {
            return e;
        }
    }
}

static seL4_CapRights_t rights_word(seL4_Word word)
{
    seL4_CapRights_t r;
    r.words[0] = word;
    return r;
}

/* Copy the frame cap at `index`/`depth` in the component out to a root slot (Install:
 * a derived copy, child of the component's cap), map it read-only, copy its first bytes
 * to `out`, unmap and delete the copy. */
static int read_component_frame(seL4_Word index, seL4_Word depth, char *out)
{
    seL4_CPtr copy = alloc_slot();
    EXPECT_OK(capsule_Checkpoint_Install(ckpt, ROOT, copy, DEPTH, comp, index,
                                         (seL4_Uint8)depth, seL4_CanRead, 0));
    EXPECT_OK(map_frame(copy, seL4_CanRead));
    memcpy(out, (const void *)FRAME_VA, DATA_BYTES);
    EXPECT_OK(Page_Unmap(copy));
    EXPECT_OK(seL4_CNode_Delete(ROOT, copy, DEPTH));
    return 0;
}

/* ---- the walk: every non-empty slot of the component, child CNodes included ---- */

struct node {
    seL4_Word index, depth; /* the CNode cap's slot; depth 0: the root CNode itself */
    seL4_Word slot_prefix, slot_depth; /* a slot i of it is (prefix | i, slot_depth) */
};

typedef int (*visit_fn)(seL4_Word index, seL4_Word depth,
                        const capsule_Checkpoint_NextSlot_t *slot);

static int walk(visit_fn visit)
{
    struct node nodes[MAX_NODES] = {{0, 0, 0, COMP_BITS}};
    unsigned long n_nodes = 1;
    for (unsigned long k = 0; k < n_nodes; k++) {
        struct node nd = nodes[k];
        seL4_Word start = 0;
        for (;;) {
            capsule_Checkpoint_NextSlot_t s =
                capsule_Checkpoint_NextSlot(ckpt, comp, nd.index, (seL4_Uint8)nd.depth, start);
            EXPECT_OK(s.error);
            if (s.type == CAPSULE_CAPTAG_NULL_CAP) {
                break; /* s.index is the slot count */
            }
            seL4_Word index = nd.slot_prefix | s.index;
            EXPECT_PASS(visit(index, nd.slot_depth, &s));
            if (s.type == CAPSULE_CAPTAG_CNODE_CAP) {
                if (n_nodes == MAX_NODES) {
                    return fail("too many CNodes");
                }
                seL4_Word below = s.guard_size + s.size_bits;
                nodes[n_nodes++] = (struct node){
                    index, nd.slot_depth,
                    (index << below) | (s.badge << s.size_bits), nd.slot_depth + below};
            }
            start = s.index + 1;
        }
    }
    return 0;
}

/* ---- the checks ---- */

/* The component: slot 1 endpoint, 2 badged endpoint (read+write), 3 badged
 * notification, 4 read-only frame, 6 guarded child CNode: 1 badged notification
 * (write only), 2 endpoint (read only). The root task keeps the original caps. */
static int build_component(void)
{
    /* Without the extension (an image built without it), seL4 refuses the type:
     * InvalidArgument, argument 0. */
    EXPECT_OK(make_objects(pool, capsule_CheckpointObject, 0, 1, &ckpt));
    comp_ut = retype_one(pool, seL4_UntypedObject, COMP_UT_BITS);
    if (comp_ut == 0) {
        return fail("could not retype the component's untyped");
    }
    EXPECT_TAG(ckpt, CAPSULE_CAPTAG_CHECKPOINT_CAP);
    comp = retype_one(comp_ut, seL4_CapTableObject, COMP_BITS);
    seL4_CPtr ep = retype_one(comp_ut, seL4_EndpointObject, 0);
    seL4_CPtr ntfn = retype_one(comp_ut, seL4_NotificationObject, 0);
    seL4_CPtr frame = retype_one(comp_ut, OBJ_4K_PAGE, 0);
    seL4_CPtr child = retype_one(comp_ut, seL4_CapTableObject, CHILD_BITS);
    if (!comp || !ep || !ntfn || !frame || !child) {
        return fail("could not retype the component's objects");
    }
    EXPECT_OK(map_frame(frame, seL4_ReadWrite));
    memcpy((void *)FRAME_VA, frame_text, DATA_BYTES);
    EXPECT_OK(Page_Unmap(frame));

    seL4_Word guard = seL4_CNode_CapData_new(CHILD_GUARD, CHILD_GUARD_BITS).words[0];
    EXPECT_OK(seL4_CNode_Mint(comp, 1, COMP_BITS, ROOT, ep, DEPTH, seL4_AllRights, 0));
    EXPECT_OK(seL4_CNode_Mint(comp, 2, COMP_BITS, ROOT, ep, DEPTH, seL4_ReadWrite, 0x55));
    EXPECT_OK(seL4_CNode_Mint(comp, 3, COMP_BITS, ROOT, ntfn, DEPTH, seL4_AllRights, 0x3));
    EXPECT_OK(seL4_CNode_Mint(comp, 4, COMP_BITS, ROOT, frame, DEPTH, seL4_CanRead, 0));
    EXPECT_OK(seL4_CNode_Mint(comp, 6, COMP_BITS, ROOT, child, DEPTH, seL4_AllRights, guard));
    EXPECT_OK(seL4_CNode_Mint(child, 1, CHILD_BITS, ROOT, ntfn, DEPTH, seL4_CanWrite, 0x9));
    EXPECT_OK(seL4_CNode_Mint(child, 2, CHILD_BITS, ROOT, ep, DEPTH, seL4_CanRead, 0));

    EXPECT_OK(thread_create(&comp_thread, &comp_storage, comp_ut, "component", component_main,
                            0, seL4_MaxPrio));
    EXPECT_OK(seL4_TCB_SetSpace(comp_thread.tcb, 0, comp, comp_cspace_data(),
                                seL4_CapInitThreadVSpace, 0));
    EXPECT_OK(seL4_CNode_Mint(comp, COMP_TCB, COMP_BITS, ROOT, comp_thread.tcb, DEPTH,
                              seL4_AllRights, 0));
    kick = alloc_slot();
    EXPECT_OK(seL4_CNode_Mint(ROOT, kick, DEPTH, ROOT, ntfn, DEPTH, seL4_CanWrite, 0x40));
    EXPECT_OK(thread_start(&comp_thread));
    seL4_Yield(); /* it runs until it waits */
    signal_component(kick);
    EXPECT_EQ(wakes, 1);
    EXPECT_EQ(woke[0], 0x40);
    return 0;
}

static int record_slot(seL4_Word index, seL4_Word depth, const capsule_Checkpoint_NextSlot_t *s)
{
    if (n_saved == MAX_RECORDS) {
        return fail("too many slots");
    }
    struct record *r = &saved[n_saved++];
    *r = (struct record){index, depth, s->type, s->rights, s->badge, s->size_bits,
                         s->guard_size, s->flags, s->object, {0}};
    if (s->type == CAPSULE_CAPTAG_FRAME_CAP) {
        EXPECT_PASS(read_component_frame(index, depth, r->data));
    }
    return 0;
}

static int save(void)
{
    EXPECT_OK(seL4_TCB_Suspend(comp_thread.tcb));
    EXPECT_OK(seL4_TCB_ReadRegisters(comp_thread.tcb, 0, 0, NREGS, &comp_regs));
    capsule_Checkpoint_ReadSlot_t self = capsule_Checkpoint_ReadSlot(ckpt, ROOT, comp, DEPTH);
    EXPECT_OK(self.error);
    EXPECT_EQ(self.type, CAPSULE_CAPTAG_CNODE_CAP);
    EXPECT_EQ(self.size_bits, COMP_BITS);
    comp_identity = self.object;
    EXPECT_PASS(walk(record_slot));
    EXPECT_EQ(n_saved, 8);
    for (unsigned long i = 0; i < n_saved; i++) {
        const struct record *r = &saved[i];
        printf("saved %#lx/%lu: type %lu rights %#lx badge %#lx size %lu guard %lu flags %#lx"
               " kind %lu%s\n",
               (unsigned long)r->index, (unsigned long)r->depth, (unsigned long)r->type,
               (unsigned long)r->rights, (unsigned long)r->badge, (unsigned long)r->size_bits,
               (unsigned long)r->guard_size, (unsigned long)r->flags,
               (unsigned long)(r->object & capsule_ObjectKindMask), r->data[0] ? " data" : "");
    }
    return 0;
}

static int read_agrees_with_walk(void)
{
    for (unsigned long i = 0; i < n_saved; i++) {
        const struct record *r = &saved[i];
        capsule_Checkpoint_ReadSlot_t s =
            capsule_Checkpoint_ReadSlot(ckpt, comp, r->index, (seL4_Uint8)r->depth);
        EXPECT_OK(s.error);
        EXPECT_EQ(s.type, r->type);
        EXPECT_EQ(s.rights, r->rights);
        EXPECT_EQ(s.badge, r->badge);
        EXPECT_EQ(s.object, r->object);
    }
    /* Slot 1, 2 and the child's slot 2 name one endpoint; the notifications another. */
    EXPECT_EQ(saved[1].object, saved[0].object);
    EXPECT_EQ(saved[7].object, saved[0].object);
    EXPECT_EQ(saved[6].object, saved[2].object);
    if (saved[2].object == saved[0].object || saved[3].object == saved[0].object) {
        return fail("different objects share an identity");
    }
    if (memcmp(saved[3].data, frame_text, DATA_BYTES) != 0) {
        return fail("the saved frame data differs");
    }
    return 0;
}

static int destroy(void)
{
    EXPECT_OK(seL4_CNode_Revoke(ROOT, comp_ut, DEPTH));
    EXPECT_EMPTY(comp);
    /* The checkpointer's cap to the component is gone, so is everything in it. */
    capsule_Checkpoint_NextSlot_t s = capsule_Checkpoint_NextSlot(ckpt, comp, 0, 0, 0);
    EXPECT_ERR(s.error, seL4_FailedLookup);
    return 0;
}

static int new_object_for(const struct record *r, seL4_CPtr *slot)
{
    for (unsigned long i = 0; i < n_objects; i++) {
        if (old_ids[i] == r->object) {
            *slot = new_slots[i];
            return 0;
        }
    }
    seL4_Word type, size_bits = 0;
    switch (r->type) {
    case CAPSULE_CAPTAG_ENDPOINT_CAP:
        type = seL4_EndpointObject;
        break;
    case CAPSULE_CAPTAG_NOTIFICATION_CAP:
        type = seL4_NotificationObject;
        break;
    case CAPSULE_CAPTAG_CNODE_CAP:
        type = seL4_CapTableObject;
        size_bits = r->size_bits;
        break;
    case CAPSULE_CAPTAG_THREAD_CAP:
        type = seL4_TCBObject;
        break;
    case CAPSULE_CAPTAG_FRAME_CAP:
        if (r->size_bits != seL4_PageBits) {
            return fail("only 4 KiB frames are restored");
        }
        type = OBJ_4K_PAGE;
        break;
    default:
        return fail("no restore for cap type %lu", (unsigned long)r->type);
    }
    *slot = retype_one(comp_ut, type, size_bits);
    if (*slot == 0) {
        return fail("could not retype a new object of type %lu", (unsigned long)type);
    }
    old_ids[n_objects] = r->object;
    new_slots[n_objects++] = *slot;
    if (r->type == CAPSULE_CAPTAG_FRAME_CAP) {
        EXPECT_OK(map_frame(*slot, seL4_ReadWrite));
        memcpy((void *)FRAME_VA, r->data, DATA_BYTES);
        EXPECT_OK(Page_Unmap(*slot));
    }
    return 0;
}

static int recreate_objects(void)
{
    comp = retype_one(comp_ut, seL4_CapTableObject, COMP_BITS);
    if (comp == 0) {
        return fail("could not retype the component's new CNode");
    }
    old_ids[n_objects] = comp_identity;
    new_slots[n_objects++] = comp;
    for (unsigned long i = 0; i < n_saved; i++) {
        seL4_CPtr slot;
        EXPECT_PASS(new_object_for(&saved[i], &slot));
    }
    EXPECT_EQ(n_objects, 6); /* root CNode, endpoint, notification, frame, TCB, child CNode */
    return 0;
}

static int reinstall(void)
{
    /* Walk order puts a CNode cap before the slots inside it. */
    for (unsigned long i = 0; i < n_saved; i++) {
        const struct record *r = &saved[i];
        seL4_CPtr src;
        EXPECT_PASS(new_object_for(r, &src));
        seL4_Word badge = r->type == CAPSULE_CAPTAG_CNODE_CAP
                              ? seL4_CNode_CapData_new(r->badge, r->guard_size).words[0]
                              : r->badge;
        EXPECT_OK(capsule_Checkpoint_Install(ckpt, comp, r->index, (seL4_Uint8)r->depth, ROOT,
                                             src, DEPTH, rights_word(r->rights), badge));
    }
    return 0;
}

static unsigned long n_checked;

static int compare_slot(seL4_Word index, seL4_Word depth, const capsule_Checkpoint_NextSlot_t *s)
{
    if (n_checked == n_saved) {
        return fail("a slot more than was saved: %#lx", (unsigned long)index);
    }
    const struct record *r = &saved[n_checked++];
    EXPECT_EQ(index, r->index);
    EXPECT_EQ(depth, r->depth);
    EXPECT_EQ(s->type, r->type);
    EXPECT_EQ(s->rights, r->rights);
    EXPECT_EQ(s->badge, r->badge);
    EXPECT_EQ(s->size_bits, r->size_bits);
    EXPECT_EQ(s->guard_size, r->guard_size);
    EXPECT_EQ(s->flags, r->flags);
    /* The same sharing: the identity is that of the new object made for the old one. */
    seL4_CPtr orig;
    EXPECT_PASS(new_object_for(r, &orig));
    capsule_Checkpoint_ReadSlot_t o = capsule_Checkpoint_ReadSlot(ckpt, ROOT, orig, DEPTH);
    EXPECT_OK(o.error);
    EXPECT_EQ(s->object, o.object);
    return 0;
}

static int read_back(void)
{
    n_checked = 0;
    EXPECT_PASS(walk(compare_slot));
    EXPECT_EQ(n_checked, n_saved);
    return 0;
}

/* Copy the restored cap at index/depth out to a root slot (seL4's CNode_Copy). */
static seL4_CPtr copy_out(seL4_Word index, seL4_Word depth)
{
    seL4_CPtr slot = alloc_slot();
    if (seL4_CNode_Copy(ROOT, slot, DEPTH, comp, index, (seL4_Uint8)depth, seL4_AllRights)
        != seL4_NoError) {
        return 0;
    }
    return slot;
}

static int restored_notifications(void)
{
    seL4_CPtr own = copy_out(3, COMP_BITS);
    seL4_Word child_index =
        (6ul << (CHILD_GUARD_BITS + CHILD_BITS)) | (CHILD_GUARD << CHILD_BITS) | 1;
    seL4_CPtr childs = copy_out(child_index, COMP_BITS + CHILD_GUARD_BITS + CHILD_BITS);
    if (own == 0 || childs == 0) {
        return fail("could not copy the restored notification caps out");
    }
    seL4_Word badge = 0;
    seL4_Signal(childs);
    seL4_Poll(own, &badge); /* slot 3 has Read: it may poll */
    EXPECT_EQ(badge, 0x9);
    seL4_Signal(own);
    seL4_Signal(childs);
    seL4_Poll(own, &badge);
    EXPECT_EQ(badge, 0x3 | 0x9);
    return 0;
}

static int restored_frame(void)
{
    seL4_CPtr frame = copy_out(4, COMP_BITS);
    if (frame == 0) {
        return fail("could not copy the restored frame cap out");
    }
    EXPECT_OK(map_frame(frame, seL4_ReadWrite)); /* the cap's rights make it read-only */
    if (memcmp((const void *)FRAME_VA, frame_text, DATA_BYTES) != 0) {
        return fail("the restored frame does not hold the saved data");
    }
    EXPECT_OK(Page_Unmap(frame));
    return 0;
}

static seL4_CPtr restored_original(seL4_Word type)
{
    for (unsigned long i = 0; i < n_saved; i++) {
        seL4_CPtr slot;
        if (saved[i].type == type && new_object_for(&saved[i], &slot) == 0) {
            return slot;
        }
    }
    return 0;
}

static int restored_thread(void)
{
    seL4_CPtr tcb = restored_original(CAPSULE_CAPTAG_THREAD_CAP);
    seL4_CPtr ntfn = restored_original(CAPSULE_CAPTAG_NOTIFICATION_CAP);
    if (tcb == 0 || ntfn == 0) {
        return fail("no restored TCB or notification");
    }
    seL4_Word buffer = (seL4_Word)&comp_storage.ipc_buffer;
    EXPECT_OK(seL4_TCB_Configure(tcb, 0, comp, comp_cspace_data(), seL4_CapInitThreadVSpace,
                                 0, buffer, image_frame_cap(&comp_storage.ipc_buffer)));
    EXPECT_OK(seL4_TCB_SetPriority(tcb, seL4_CapInitThreadTCB, seL4_MaxPrio));
    EXPECT_OK(seL4_TCB_WriteRegisters(tcb, 0, 0, NREGS, &comp_regs));
    seL4_UserContext back;
    EXPECT_OK(seL4_TCB_ReadRegisters(tcb, 0, 0, NREGS, &back));
    if (memcmp(&back, &comp_regs, sizeof back) != 0) {
        return fail("the new thread's registers differ from the saved ones");
    }
    EXPECT_OK(seL4_TCB_Resume(tcb));
    seL4_Yield(); /* it goes on with its Wait, now on the restored notification */
    EXPECT_EQ(wakes, 1);
    kick = alloc_slot();
    EXPECT_OK(seL4_CNode_Mint(ROOT, kick, DEPTH, ROOT, ntfn, DEPTH, seL4_CanWrite, 0x40));
    signal_component(kick);
    EXPECT_EQ(wakes, 2);
    EXPECT_EQ(woke[1], 0x40);
    /* and through the component's own restored badged cap (slot 3, badge 3) */
    seL4_CPtr own = copy_out(COMP_NTFN, COMP_BITS);
    if (own == 0) {
        return fail("could not copy the restored notification cap out");
    }
    signal_component(own);
    EXPECT_EQ(wakes, 3);
    EXPECT_EQ(woke[2], 0x3);
    return 0;
}

static int errors_through_the_stubs(void)
{
    capsule_Checkpoint_ReadSlot_t r = capsule_Checkpoint_ReadSlot(ckpt, comp, 1, 0);
    EXPECT_ERR(r.error, seL4_RangeError);
    EXPECT_MR(0, 1);
    EXPECT_MR(1, 64);
    capsule_Checkpoint_NextSlot_t n = capsule_Checkpoint_NextSlot(ckpt, comp, 0, 0, 17);
    EXPECT_ERR(n.error, seL4_RangeError);
    EXPECT_MR(0, 0);
    EXPECT_MR(1, 16);
    EXPECT_ERR(capsule_Checkpoint_Install(ckpt, comp, 1, COMP_BITS, ROOT, comp, DEPTH,
                                          seL4_AllRights, 0),
               seL4_DeleteFirst);
    /* A checkpoint cap is no CNode, and a CNode no checkpoint object. */
    r = capsule_Checkpoint_ReadSlot(ckpt, ckpt, 1, COMP_BITS);
    EXPECT_ERR(r.error, seL4_FailedLookup);
    EXPECT_MR(0, 0);
    EXPECT_MR(1, seL4_InvalidRoot);
    r = capsule_Checkpoint_ReadSlot(comp, comp, 1, COMP_BITS);
    EXPECT_ERR(r.error, seL4_IllegalOperation);
    return 0;
}

static const struct check checks[] = {
    {"CKPTG0001", "the root task builds a component from one untyped", build_component},
    {"CKPTG0002", "NextSlot walks the component's cspace; the table is saved", save},
    {"CKPTG0003", "ReadSlot agrees; identities show which caps share an object",
     read_agrees_with_walk},
    {"CKPTG0004", "revoking the untyped destroys the component", destroy},
    {"CKPTG0005", "one new object per recorded identity, frame data written back",
     recreate_objects},
    {"CKPTG0006", "Install puts every cap back at its slot with its rights and badge",
     reinstall},
    {"CKPTG0007", "read back, the restored cspace equals the saved one", read_back},
    {"CKPTG0008", "signals through the restored notification caps carry their badges",
     restored_notifications},
    {"CKPTG0009", "the restored frame holds the saved data", restored_frame},
    {"CKPTG0010", "refused invocations through the stubs", errors_through_the_stubs},
    {"CKPTG0011", "the restored thread, registers written back, waits and wakes in the "
                  "restored cspace", restored_thread},
};

int main(void)
{
    return checks_main(checks, sizeof checks / sizeof checks[0], &pool);
}
