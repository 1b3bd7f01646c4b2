/*
 * Process exit for capsule guests (README.md, "Exit convention").
 *
 * exit(status) stops the system with seL4_DebugHalt, status in a0/x0 and
 * CAPSULE_EXIT_MAGIC in a1/x1; the kernel turns that into the exit status of
 * `capsule run`. There is nothing to flush: output goes out character by character.
 */
#include <sel4/sel4.h>
#include <stdlib.h>

void exit(int status)
{
    capsule_DebugHaltWithStatus((seL4_Word)(long)status);
}

void _Exit(int status)
{
    capsule_DebugHaltWithStatus((seL4_Word)(long)status);
}

void abort(void)
{
    /* 128 + SIGABRT, the status a POSIX shell shows for an aborted process. */
    capsule_DebugHaltWithStatus(134);
}
