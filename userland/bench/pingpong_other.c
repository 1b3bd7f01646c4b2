/* Benchmark: IPC ping-pong with a thread in an address space of its own (pingpong.h). */
#include "pingpong.h"

int main(void)
{
    return pingpong(1);
}
