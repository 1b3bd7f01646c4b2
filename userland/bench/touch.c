/*
 * A guest with a lot of RAM that uses a little of it: what the host pays for it.
 *
 * The root task retypes one 1 GiB frame (RISC-V Giga_Page, AArch64 HugePage) from a
 * RAM untyped, maps it at 64 GiB and writes one word in each of the first
 * bench_params[P_MIB] MiB of its 4 KiB pages; marks `before` (after boot) and `after`
 * (everything written) let the harness read the host's resident set at both points.
 * The image is built with 3 GiB of RAM (bench/run.py), as seL4's simulate script gives
 * qemu-riscv-virt.
 *
 * Parameters: P_MIB, the MiB to touch (default 100, at most 1024).
 */
#include "bench.h"

#if defined(__riscv)
#define OBJ_HUGE_PAGE seL4_RISCV_Giga_Page
#define Page_Map seL4_RISCV_Page_Map
#define ATTR seL4_RISCV_Default_VMAttributes
#else
#define OBJ_HUGE_PAGE seL4_ARM_HugePageObject
#define Page_Map seL4_ARM_Page_Map
#define ATTR seL4_ARM_Default_VMAttributes
#endif

enum { P_MIB };

volatile seL4_Word bench_params[BENCH_PARAMS] = {[P_MIB] = 100};

#define HUGE_BITS 30
#define HUGE_VADDR (64ul << 30)
#define PAGE 4096ul

int main(void)
{
    seL4_BootInfo *bi = seL4_GetBootInfo();
    seL4_Word mib = bench_params[P_MIB];
    if (mib > (1ul << (HUGE_BITS - 20))) {
        bench_fail("P_MIB larger than the 1 GiB frame", 0);
    }
    seL4_CPtr untyped = 0;
    for (seL4_CPtr s = bi->untyped.start; s < bi->untyped.end; s++) {
        const seL4_UntypedDesc *d = &bi->untypedList[s - bi->untyped.start];
        if (!d->isDevice && d->sizeBits >= HUGE_BITS) {
            untyped = s;
            break;
        }
    }
    if (untyped == 0) {
        bench_fail("no RAM untyped of 1 GiB (build the image with more RAM)", 0);
    }
    seL4_CPtr frame = bi->empty.start;
    bench_mark("before");
    BENCH_OK(seL4_Untyped_Retype(untyped, OBJ_HUGE_PAGE, 0, ROOT, 0, 0, frame, 1));
    BENCH_OK(Page_Map(frame, seL4_CapInitThreadVSpace, HUGE_VADDR, seL4_AllRights, ATTR));
    bench_begin("touch");
    seL4_Word pages = (mib << 20) / PAGE;
    for (seL4_Word i = 0; i < pages; i++) {
        *(volatile seL4_Word *)(HUGE_VADDR + i * PAGE) = i + 1;
    }
    bench_end("touch", pages);
    bench_mark("after");
    return 0;
}
