/*
 * The child of spawn.c, built from untyped memory by the process library. Its role is
 * the parent's argument 0; argument 1 is an address for the isolation roles.
 *
 *   1 sender:   writes the shared frame, Calls the endpoint (MR0 42), expects 43
 *   2 receiver: Recv on the endpoint, checks the badge, MR0 and the shared frame,
 *               writes its answer into the frame and replies 43
 *   3 reads another process's memory (argument 1): a VMFault to the parent
 *   4 reads kernel memory (argument 1): a VMFault to the parent
 *   5 invokes a slot it was given nothing in (seL4: InvalidCapability 0, reported),
 *     then a CPtr outside its CSpace (argument 1): a cap fault to the parent
 *
 * Roles 1, 2 and 5 report to the parent (label 0, MR0 = 0 if all went well, else the
 * step that failed; MR1 = what they saw) and then suspend themselves.
 */
#include <process.h>
#include <stdio.h>
#include <string.h>

#define SLOT_ENDPOINT 11
#define SLOT_PARENT 12
#define SLOT_NOTHING 20
#define SHARED ((volatile char *)0x60000000ul)

static void report(seL4_Word status, seL4_Word seen)
{
    seL4_SetMR(0, status);
    seL4_SetMR(1, seen);
    seL4_Send(SLOT_PARENT, seL4_MessageInfo_new(0, 0, 0, 2));
}

static void sender(void)
{
    memcpy((char *)SHARED, "ping from A", sizeof("ping from A"));
    seL4_SetMR(0, 42);
    seL4_MessageInfo_t reply = seL4_Call(SLOT_ENDPOINT, seL4_MessageInfo_new(0, 0, 0, 1));
    if (seL4_MessageInfo_get_label(reply) != 0 || seL4_GetMR(0) != 43) {
        report(1, seL4_GetMR(0));
        return;
    }
    if (strcmp((const char *)SHARED, "pong from B") != 0) {
        report(2, 0);
        return;
    }
    report(0, 43);
}

static void receiver(void)
{
    seL4_Word badge = 0;
    seL4_MessageInfo_t info = seL4_Recv(SLOT_ENDPOINT, &badge);
    if (seL4_MessageInfo_get_length(info) != 1 || seL4_GetMR(0) != 42) {
        report(1, seL4_GetMR(0));
        return;
    }
    if (strcmp((const char *)SHARED, "ping from A") != 0) {
        report(2, 0);
        return;
    }
    memcpy((char *)SHARED, "pong from B", sizeof("pong from B"));
    seL4_SetMR(0, 43);
    seL4_Reply(seL4_MessageInfo_new(0, 0, 0, 1));
    report(0, badge);
}

int main(void)
{
    switch (process_arg(0)) {
    case 1:
        sender();
        break;
    case 2:
        receiver();
        break;
    case 3:
    case 4:
        (void)*(volatile seL4_Word *)process_arg(1);
        printf("child read %lx and should not have\n", (unsigned long)process_arg(1));
        break;
    case 5: {
        seL4_MessageInfo_t info = seL4_Call(SLOT_NOTHING, seL4_MessageInfo_new(0, 0, 0, 0));
        seL4_Word error = seL4_MessageInfo_get_label(info);
        report(error == seL4_InvalidCapability && seL4_GetMR(0) == 0 ? 0 : 1, error);
        seL4_Call(process_arg(1), seL4_MessageInfo_new(0, 0, 0, 0));
        printf("child invoked a cap outside its CSpace and went on\n");
        break;
    }
    }
    process_exit_self();
}
