/* Benchmark: IPC ping-pong with a thread in the root task's address space (pingpong.h). */
#include "pingpong.h"

int main(void)
{
    return pingpong(0);
}
