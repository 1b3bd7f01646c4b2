/*
 * Static TLS for the root task's initial thread.
 *
 * Both architectures use TLS variant I ("TLS above the thread pointer"), as the
 * toolchain's local-exec accesses expect (abi/boot.md):
 *
 *   riscv64:  tp ──► [ TLS block: .tdata image | .tbss zeros ]
 *                    a variable lives at tp + (its address - _tdata_start)
 *
 *   aarch64:  TPIDR_EL0 ──► [ 16-byte gap ][ pad ][ TLS block ]
 *                    the gap (the TCB slot of variant I) is 16 bytes rounded up to the
 *                    TLS segment's alignment; a variable lives at
 *                    TPIDR_EL0 + roundup(16, align) + (its address - _tdata_start)
 *
 * The block is the .bss area _capsule_tls_area the link script reserves (64-byte
 * aligned, 64 + segment-size bytes), so no allocation is needed. The link script aligns
 * .tdata to the whole segment's alignment (_tls_align, at most 64), which makes the
 * block's offsets in memory the same as in the ELF image.
 */
#include <string.h>

#include "runtime.h"

extern char _tdata_start[], _tdata_end[], _tbss_end[];
extern char _tls_align[];
extern char _capsule_tls_area[];

unsigned long capsule_tls_size(void)
{
    return 64 + ((unsigned long)_tbss_end - (unsigned long)_tdata_start);
}

void *capsule_tls_setup(char *area)
{
    unsigned long align = (unsigned long)_tls_align;
    unsigned long filesz = (unsigned long)_tdata_end - (unsigned long)_tdata_start;
    unsigned long memsz = (unsigned long)_tbss_end - (unsigned long)_tdata_start;
    char *tp = area;
#if defined(__aarch64__)
    unsigned long gap = (16 + align - 1) & ~(align - 1);
#else
    unsigned long gap = 0;
    (void)align;
#endif
    char *block = tp + gap;

    memcpy(block, _tdata_start, filesz);
    memset(block + filesz, 0, memsz - filesz);
    return tp;
}

void capsule_tls_init(void)
{
    char *tp = capsule_tls_setup(_capsule_tls_area);
#if defined(__riscv)
    __asm__ volatile("mv tp, %0" : : "r"(tp) : "memory");
#elif defined(__aarch64__)
    __asm__ volatile("msr tpidr_el0, %0" : : "r"(tp) : "memory");
#else
#error "capsule runtime: unsupported architecture"
#endif
}
