/*
 * Exits with the status held in `exit_with_status` (0 as built). The exit-status tests
 * patch that byte in the ELF, found through its symbol, so that one program exits with
 * any status (tests/cli/test_exit_status.py).
 */
#include <stdio.h>

volatile const unsigned char exit_with_status = 0;

int main(void)
{
    int status = exit_with_status;
    printf("exit_with %d\n", status);
    return status;
}
