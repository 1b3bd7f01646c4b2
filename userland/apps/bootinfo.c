/*
 * Print the bootinfo the kernel gave the root task.
 *
 * Output format (the guest tests parse the last line):
 *
 *   bootinfo: <address>
 *   nodeID: <n>
 *   numNodes: <n>
 *   numIOPTLevels: <n>
 *   ipcBuffer: <address>
 *   initThreadCNodeSizeBits: <n>
 *   initThreadDomain: <n>
 *   extraLen: <bytes>
 *   <region>: <start>..<end>        one line per slot region, end exclusive
 *   untypeds: <count>
 *   untyped <i>: slot=<slot> paddr=<0x...> sizeBits=<n> device=<0|1>
 *   untyped total: ram=<decimal bytes> device=<decimal bytes>
 *
 * Numbers are decimal unless written as 0x...; the totals sum 2^sizeBits over the
 * non-device and the device untypeds.
 */
#include <sel4/sel4.h>
#include <stdio.h>

static void print_region(const char *name, seL4_SlotRegion r)
{
    printf("%s: %lu..%lu\n", name, (unsigned long)r.start, (unsigned long)r.end);
}

int main(void)
{
    seL4_BootInfo *bi = seL4_GetBootInfo();

    printf("bootinfo: %p\n", (void *)bi);
    printf("nodeID: %lu\n", (unsigned long)bi->nodeID);
    printf("numNodes: %lu\n", (unsigned long)bi->numNodes);
    printf("numIOPTLevels: %lu\n", (unsigned long)bi->numIOPTLevels);
    printf("ipcBuffer: %p\n", (void *)bi->ipcBuffer);
    printf("initThreadCNodeSizeBits: %lu\n", (unsigned long)bi->initThreadCNodeSizeBits);
    printf("initThreadDomain: %lu\n", (unsigned long)bi->initThreadDomain);
    printf("extraLen: %lu\n", (unsigned long)bi->extraLen);

    print_region("empty", bi->empty);
    print_region("sharedFrames", bi->sharedFrames);
    print_region("userImageFrames", bi->userImageFrames);
    print_region("userImagePaging", bi->userImagePaging);
    print_region("ioSpaceCaps", bi->ioSpaceCaps);
    print_region("extraBIPages", bi->extraBIPages);
    print_region("untyped", bi->untyped);

    unsigned long count = bi->untyped.end - bi->untyped.start;
    if (bi->untyped.end < bi->untyped.start || count > CONFIG_MAX_NUM_BOOTINFO_UNTYPED_CAPS) {
        printf("bad untyped region %lu..%lu\n", (unsigned long)bi->untyped.start,
               (unsigned long)bi->untyped.end);
        return 1;
    }
    printf("untypeds: %lu\n", count);

    unsigned long long ram = 0, device = 0;
    for (unsigned long i = 0; i < count; i++) {
        const seL4_UntypedDesc *ut = &bi->untypedList[i];
        printf("untyped %lu: slot=%lu paddr=0x%lx sizeBits=%u device=%u\n", i,
               (unsigned long)(bi->untyped.start + i), (unsigned long)ut->paddr,
               (unsigned)ut->sizeBits, (unsigned)ut->isDevice);
        unsigned long long bytes = 1ull << ut->sizeBits;
        if (ut->isDevice) {
            device += bytes;
        } else {
            ram += bytes;
        }
    }
    printf("untyped total: ram=%llu device=%llu\n", ram, device);
    return 0;
}
