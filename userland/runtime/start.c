/*
 * The root task's C start-up: _sel4_start (crt0_<arch>.S) calls __capsule_start_root
 * with the bootinfo pointer on a fresh stack.
 *
 * Order matters: the TLS register must be set before anything touches a __thread
 * variable, and __sel4_ipc_buffer is one. The two steps are separate non-inlined
 * functions so that no thread-local address can be computed before the TLS register
 * holds its final value.
 */
#include <sel4/sel4.h>
#include <stdlib.h>

#include "runtime.h"

extern int main(int argc, char **argv, char **envp);

typedef void (*capsule_init_fn)(void);
extern capsule_init_fn __preinit_array_start[], __preinit_array_end[];
extern capsule_init_fn __init_array_start[], __init_array_end[];

/* The process environment sel4runtime gives a root task: one argument, one variable. */
static char *capsule_argv[] = {"rootserver", 0};
static char *capsule_envp[] = {"seL4=1", 0};

static void run_constructors(void)
{
    for (capsule_init_fn *f = __preinit_array_start; f < __preinit_array_end; f++) {
        (*f)();
    }
    for (capsule_init_fn *f = __init_array_start; f < __init_array_end; f++) {
        (*f)();
    }
}

static __attribute__((noinline, noreturn)) void run_main(seL4_BootInfo *bootinfo)
{
    seL4_InitBootInfo(bootinfo);
    seL4_SetIPCBuffer(bootinfo->ipcBuffer);
    run_constructors();
    exit(main(1, capsule_argv, capsule_envp));
}

__attribute__((noreturn, used)) void __capsule_start_root(seL4_BootInfo *bootinfo)
{
    capsule_tls_init();
    run_main(bootinfo);
}
