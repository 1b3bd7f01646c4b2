/* The smallest capsule guest: one line on the debug console, exit status 0. */
#include <sel4/sel4.h>
#include <stdio.h>

int main(void)
{
    printf("Hello from capsule on %s!\n", CAPSULE_ARCH_NAME);
    return 0;
}
