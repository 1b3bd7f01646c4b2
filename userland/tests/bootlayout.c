/*
 * Print the whole bootinfo and the extra bootinfo chunks that follow it: the output a
 * root task sees of seL4's boot layout, compared line by line between capsule and seL4
 * (README, "Differential testing").
 *
 * Output, one fact a line (numbers decimal unless written 0x...):
 *
 *   bootinfo: <address>
 *   <field>: <value>                     every word field of seL4_BootInfo, in order
 *   <region>: <start>..<end>             every slot region, end exclusive
 *   untyped <i>: slot=<slot> paddr=<0x...> sizeBits=<n> device=<0|1>
 *   extra <offset>: id=<id> len=<bytes>  every extra bootinfo chunk, from offset 0
 *   fdt: magic=<0x...> totalsize=<n> version=<n>   for a device tree chunk
 *   extra end: <offset>
 */
#include <sel4/sel4.h>
#include <stdio.h>

static void region(const char *name, seL4_SlotRegion r)
{
    printf("%s: %lu..%lu\n", name, (unsigned long)r.start, (unsigned long)r.end);
}

static unsigned long be32(const unsigned char *p)
{
    return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
}

int main(void)
{
    seL4_BootInfo *bi = seL4_GetBootInfo();

    printf("bootinfo: %p\n", (void *)bi);
    printf("extraLen: %lu\n", (unsigned long)bi->extraLen);
    printf("nodeID: %lu\n", (unsigned long)bi->nodeID);
    printf("numNodes: %lu\n", (unsigned long)bi->numNodes);
    printf("numIOPTLevels: %lu\n", (unsigned long)bi->numIOPTLevels);
    printf("ipcBuffer: %p\n", (void *)bi->ipcBuffer);
    region("empty", bi->empty);
    region("sharedFrames", bi->sharedFrames);
    region("userImageFrames", bi->userImageFrames);
    region("userImagePaging", bi->userImagePaging);
    region("ioSpaceCaps", bi->ioSpaceCaps);
    region("extraBIPages", bi->extraBIPages);
    printf("initThreadCNodeSizeBits: %lu\n", (unsigned long)bi->initThreadCNodeSizeBits);
    printf("initThreadDomain: %lu\n", (unsigned long)bi->initThreadDomain);
    region("untyped", bi->untyped);

    unsigned long count = bi->untyped.end - bi->untyped.start;
    if (bi->untyped.end < bi->untyped.start || count > CONFIG_MAX_NUM_BOOTINFO_UNTYPED_CAPS) {
        printf("bad untyped region\n");
        return 1;
    }
    for (unsigned long i = 0; i < count; i++) {
        const seL4_UntypedDesc *ut = &bi->untypedList[i];
        printf("untyped %lu: slot=%lu paddr=0x%lx sizeBits=%u device=%u\n", i,
               (unsigned long)(bi->untyped.start + i), (unsigned long)ut->paddr,
               (unsigned)ut->sizeBits, (unsigned)ut->isDevice);
    }

    /* The extra bootinfo starts on the page after the bootinfo frame. */
    const unsigned char *extra = (const unsigned char *)bi + 4096;
    unsigned long offset = 0;
    while (offset + sizeof(seL4_BootInfoHeader) <= bi->extraLen) {
        const seL4_BootInfoHeader *header = (const seL4_BootInfoHeader *)(extra + offset);
        printf("extra %lu: id=%lu len=%lu\n", offset, (unsigned long)header->id,
               (unsigned long)header->len);
        if (header->id == SEL4_BOOTINFO_HEADER_FDT && header->len >= sizeof(*header) + 16) {
            const unsigned char *fdt = (const unsigned char *)(header + 1);
            printf("fdt: magic=0x%lx totalsize=%lu version=%lu\n", be32(fdt), be32(fdt + 4),
                   be32(fdt + 20));
        }
        if (header->len < sizeof(*header)) {
            break;  /* a malformed chunk: stop rather than loop */
        }
        offset += header->len;
    }
    printf("extra end: %lu\n", offset);
    return 0;
}
