/*
 * A client of cappage.c's capability pool (capsule's capability-page extension, not
 * seL4), built from untyped memory by the process library. Its parent maps the pool,
 * a capability page, read-only at POOL_VA in this process's VSpace. The client:
 *
 *   1. loads slot 1 of the pool (a notification, badged by the server) into its slot 20
 *      and slot 2 (the server's endpoint, badged) into slot 21 (capsule_VSpace_CapLoad);
 *   2. signals the notification it loaded;
 *   3. tries to store a capability into the pool (slot 5): refused, IllegalOperation,
 *      since its mapping is read-only;
 *   4. reports on the endpoint it loaded: MR0 = 0 if steps 1-2 went well (else the
 *      failing step), MR1 = the error of step 3, MR2 = its number (argument 0).
 */
#include <process.h>
#include <sel4/gen/capsule_cap_page.h>

#define POOL_VA 0x61000000ul
#define SLOT_NTFN 20
#define SLOT_SERVER 21
#define DEPTH seL4_WordBits

int main(void)
{
    seL4_Word status = 0;
    if (capsule_VSpace_CapLoad(PROCESS_SLOT_VSPACE, POOL_VA + 32 * 1, PROCESS_SLOT_CNODE,
                               SLOT_NTFN, DEPTH) != seL4_NoError) {
        status = 1;
    } else if (capsule_VSpace_CapLoad(PROCESS_SLOT_VSPACE, POOL_VA + 32 * 2,
                                      PROCESS_SLOT_CNODE, SLOT_SERVER, DEPTH) != seL4_NoError) {
        status = 2;
    }
    if (status == 0) {
        seL4_Signal(SLOT_NTFN);
    }
    seL4_Error store = capsule_VSpace_CapStore(PROCESS_SLOT_VSPACE, POOL_VA + 32 * 5,
                                               PROCESS_SLOT_CNODE, SLOT_NTFN, DEPTH);
    seL4_SetMR(0, status);
    seL4_SetMR(1, (seL4_Word)store);
    seL4_SetMR(2, process_arg(0));
    seL4_Send(SLOT_SERVER, seL4_MessageInfo_new(0, 0, 0, 3));
    process_exit_self();
}
