/*
 * capsule libsel4: the user-visible ABI types.
 *
 * Written for capsule from the ABI facts; the numbers (bit positions, sizes, array
 * lengths) come from the generated headers in sel4/gen/, and sel4/gen/layout.h checks
 * every struct below against the Python declaration in kernel/abi.
 */
#ifndef SEL4_TYPES_H
#define SEL4_TYPES_H

#include <sel4/gen/constants.h>

#if !defined(__LP64__)
#error "capsule libsel4 is for 64-bit (LP64) targets"
#endif

/* ---- plain integer types (LP64: long is 64 bits) ---- */
typedef signed char seL4_Int8;
typedef unsigned char seL4_Uint8;
typedef signed short seL4_Int16;
typedef unsigned short seL4_Uint16;
typedef signed int seL4_Int32;
typedef unsigned int seL4_Uint32;
typedef signed long seL4_Int64;
typedef unsigned long seL4_Uint64;

typedef seL4_Int8 seL4_Bool;
typedef seL4_Uint64 seL4_Word;
typedef seL4_Word seL4_CPtr;
typedef seL4_Word seL4_NodeId;
typedef seL4_Word seL4_PAddr;
typedef seL4_Word seL4_Domain;
typedef seL4_Uint64 seL4_Time;
typedef seL4_Word seL4_SlotPos;

typedef seL4_CPtr seL4_CNode;
typedef seL4_CPtr seL4_IRQHandler;
typedef seL4_CPtr seL4_IRQControl;
typedef seL4_CPtr seL4_TCB;
typedef seL4_CPtr seL4_Untyped;
typedef seL4_CPtr seL4_DomainSet;
typedef seL4_CPtr seL4_SchedContext;
typedef seL4_CPtr seL4_SchedControl;

#define seL4_True 1
#define seL4_False 0
#define seL4_Null ((void *)0)
#define seL4_NilData 0

#include <sel4/gen/syscalls.h>
#include <sel4/gen/errors.h>
#include <sel4/gen/faults.h>
#include <sel4/gen/initial_caps.h>
#include <sel4/gen/object_types.h>
#include <sel4/gen/invocation.h>
#include <sel4/gen/user_context.h>

/* Alias kept by libsel4 for the VSpace root slot. */
#define seL4_CapInitThreadPD seL4_CapInitThreadVSpace

/* ---- seL4_MessageInfo_t: label | capsUnwrapped | extraCaps | length in one word ---- */
typedef struct seL4_MessageInfo {
    seL4_Uint64 words[1];
} seL4_MessageInfo_t;

#define SEL4_MI_GET(mi, F) (((mi).words[0] >> SEL4_MSGINFO_##F##_SHIFT) & SEL4_MSGINFO_##F##_MASK)
#define SEL4_MI_PUT(mi, F, v)                                                                 \
    ((mi).words[0] = ((mi).words[0] & ~(SEL4_MSGINFO_##F##_MASK << SEL4_MSGINFO_##F##_SHIFT)) | \
                     (((seL4_Uint64)(v) & SEL4_MSGINFO_##F##_MASK) << SEL4_MSGINFO_##F##_SHIFT))

static inline seL4_MessageInfo_t seL4_MessageInfo_new(seL4_Uint64 label,
                                                      seL4_Uint64 capsUnwrapped,
                                                      seL4_Uint64 extraCaps,
                                                      seL4_Uint64 length)
{
    seL4_MessageInfo_t mi = {{0}};
    SEL4_MI_PUT(mi, LABEL, label);
    SEL4_MI_PUT(mi, CAPSUNWRAPPED, capsUnwrapped);
    SEL4_MI_PUT(mi, EXTRACAPS, extraCaps);
    SEL4_MI_PUT(mi, LENGTH, length);
    return mi;
}

#define SEL4_MI_ACCESSORS(field, F)                                                          \
    static inline seL4_Uint64 seL4_MessageInfo_get_##field(seL4_MessageInfo_t mi)            \
    {                                                                                         \
        return SEL4_MI_GET(mi, F);                                                            \
    }                                                                                         \
    static inline seL4_MessageInfo_t seL4_MessageInfo_set_##field(seL4_MessageInfo_t mi,      \
                                                                  seL4_Uint64 v)              \
    {                                                                                         \
        SEL4_MI_PUT(mi, F, v);                                                                \
        return mi;                                                                            \
    }                                                                                         \
    static inline seL4_Uint64 seL4_MessageInfo_ptr_get_##field(seL4_MessageInfo_t *p)         \
    {                                                                                         \
        return SEL4_MI_GET(*p, F);                                                            \
    }                                                                                         \
    static inline void seL4_MessageInfo_ptr_set_##field(seL4_MessageInfo_t *p, seL4_Uint64 v) \
    {                                                                                         \
        SEL4_MI_PUT(*p, F, v);                                                                \
    }

SEL4_MI_ACCESSORS(label, LABEL)
SEL4_MI_ACCESSORS(capsUnwrapped, CAPSUNWRAPPED)
SEL4_MI_ACCESSORS(extraCaps, EXTRACAPS)
SEL4_MI_ACCESSORS(length, LENGTH)

#undef SEL4_MI_ACCESSORS
#undef SEL4_MI_GET
#undef SEL4_MI_PUT

/* ---- seL4_CapRights_t: one bit per right ---- */
typedef struct seL4_CapRights {
    seL4_Uint64 words[1];
} seL4_CapRights_t;

static inline seL4_CapRights_t seL4_CapRights_new(seL4_Uint64 capAllowGrantReply,
                                                  seL4_Uint64 capAllowGrant,
                                                  seL4_Uint64 capAllowRead,
                                                  seL4_Uint64 capAllowWrite)
{
    seL4_CapRights_t r;
    r.words[0] = (capAllowGrantReply ? SEL4_CAPRIGHTS_CANGRANTREPLY : 0) |
                 (capAllowGrant ? SEL4_CAPRIGHTS_CANGRANT : 0) |
                 (capAllowRead ? SEL4_CAPRIGHTS_CANREAD : 0) |
                 (capAllowWrite ? SEL4_CAPRIGHTS_CANWRITE : 0);
    return r;
}

#define SEL4_RIGHT_GET(r, M) (((r).words[0] & (M)) != 0)
static inline seL4_Uint64 seL4_CapRights_get_capAllowGrantReply(seL4_CapRights_t r)
{
    return SEL4_RIGHT_GET(r, SEL4_CAPRIGHTS_CANGRANTREPLY);
}
static inline seL4_Uint64 seL4_CapRights_get_capAllowGrant(seL4_CapRights_t r)
{
    return SEL4_RIGHT_GET(r, SEL4_CAPRIGHTS_CANGRANT);
}
static inline seL4_Uint64 seL4_CapRights_get_capAllowRead(seL4_CapRights_t r)
{
    return SEL4_RIGHT_GET(r, SEL4_CAPRIGHTS_CANREAD);
}
static inline seL4_Uint64 seL4_CapRights_get_capAllowWrite(seL4_CapRights_t r)
{
    return SEL4_RIGHT_GET(r, SEL4_CAPRIGHTS_CANWRITE);
}
#undef SEL4_RIGHT_GET

#define seL4_NoRights seL4_CapRights_new(0, 0, 0, 0)
#define seL4_CanWrite seL4_CapRights_new(0, 0, 0, 1)
#define seL4_CanRead seL4_CapRights_new(0, 0, 1, 0)
#define seL4_CanGrant seL4_CapRights_new(0, 1, 0, 0)
#define seL4_CanGrantReply seL4_CapRights_new(1, 0, 0, 0)
#define seL4_ReadWrite seL4_CapRights_new(0, 0, 1, 1)
#define seL4_AllRights seL4_CapRights_new(1, 1, 1, 1)

/* ---- seL4_CNode_CapData_t: guard and guard size of a CNode cap ---- */
typedef struct seL4_CNode_CapData {
    seL4_Uint64 words[1];
} seL4_CNode_CapData_t;

static inline seL4_CNode_CapData_t seL4_CNode_CapData_new(seL4_Uint64 guard, seL4_Uint64 guardSize)
{
    seL4_CNode_CapData_t d;
    d.words[0] = ((guard & SEL4_CNODE_CAPDATA_GUARD_MASK) << SEL4_CNODE_CAPDATA_GUARD_SHIFT) |
                 ((guardSize & SEL4_CNODE_CAPDATA_GUARDSIZE_MASK)
                  << SEL4_CNODE_CAPDATA_GUARDSIZE_SHIFT);
    return d;
}

/* ---- the IPC buffer: one per thread, 1 KiB, aligned to its size ---- */
typedef struct seL4_IPCBuffer_ {
    seL4_MessageInfo_t tag;
    seL4_Word msg[seL4_MsgMaxLength];
    seL4_Word userData;
    seL4_Word caps_or_badges[seL4_MsgMaxExtraCaps];
    seL4_CPtr receiveCNode;
    seL4_CPtr receiveIndex;
    seL4_Word receiveDepth;
} seL4_IPCBuffer __attribute__((__aligned__(1 << seL4_IPCBufferSizeBits)));

/* ---- bootinfo ---- */
typedef struct seL4_SlotRegion {
    seL4_SlotPos start; /* first slot of the region */
    seL4_SlotPos end;   /* first slot after the region */
} seL4_SlotRegion;

typedef struct seL4_UntypedDesc {
    seL4_Word paddr;
    seL4_Uint8 sizeBits;
    seL4_Uint8 isDevice;
    seL4_Uint8 padding[sizeof(seL4_Word) - 2 * sizeof(seL4_Uint8)];
} seL4_UntypedDesc;

typedef struct seL4_BootInfo {
    seL4_Word extraLen;
    seL4_NodeId nodeID;
    seL4_Word numNodes;
    seL4_Word numIOPTLevels;
    seL4_IPCBuffer *ipcBuffer;
    seL4_SlotRegion empty;
    seL4_SlotRegion sharedFrames;
    seL4_SlotRegion userImageFrames;
    seL4_SlotRegion userImagePaging;
    seL4_SlotRegion ioSpaceCaps;
    seL4_SlotRegion extraBIPages;
    seL4_Word initThreadCNodeSizeBits;
    seL4_Domain initThreadDomain;
#if defined(CONFIG_KERNEL_MCS)
    seL4_SlotRegion schedcontrol; /* the SchedControl caps, one per core */
#endif
    seL4_SlotRegion untyped;
    seL4_UntypedDesc untypedList[CONFIG_MAX_NUM_BOOTINFO_UNTYPED_CAPS];
} seL4_BootInfo;

/* One chunk of extra bootinfo (its id is a SEL4_BOOTINFO_HEADER_* value). */
typedef struct seL4_BootInfoHeader {
    seL4_Word id;
    seL4_Word len; /* bytes, including this header */
} seL4_BootInfoHeader;

#include <sel4/gen/layout.h>

#endif /* SEL4_TYPES_H */
