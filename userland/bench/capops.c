/*
 * Benchmark: capability and object operations.
 *
 * Parameters (bench.h):
 *   [0] RETYPE_OBJECTS  endpoints made by Untyped_Retype, 256 per call (seL4's fan-out
 *                       limit), into fresh slots                          (phase "retype")
 *   [1] COPY_PAIRS      CNode_Copy of a cap into a slot, then CNode_Delete of that slot
 *                                                                        (phase "copy_delete")
 *   [2] MEM_ENDPOINTS   endpoints made between two memory marks "before" and "after"; the
 *                       harness reads the resident memory of the process at each mark
 *
 * The image's root_cnode_bits must leave room for RETYPE_OBJECTS + MEM_ENDPOINTS slots.
 */
#include "bench.h"

enum { RETYPE_OBJECTS, COPY_PAIRS, MEM_ENDPOINTS };

volatile seL4_Word bench_params[BENCH_PARAMS] = {2560, 10000, 0};

int main(void)
{
    seL4_CPtr pool = bench_pool();

    unsigned long n = bench_params[RETYPE_OBJECTS];
    seL4_CPtr first = bench_slots(n);
    unsigned long done = 0;
    bench_begin("retype");
    while (done < n) {
        unsigned long batch = n - done < 256 ? n - done : 256;
        BENCH_OK(seL4_Untyped_Retype(pool, seL4_EndpointObject, 0, ROOT, 0, 0, first + done,
                                     batch));
        done += batch;
    }
    bench_end("retype", done);

    seL4_CPtr slot = bench_slots(1);
    n = bench_params[COPY_PAIRS];
    unsigned long i;
    bench_begin("copy_delete");
    for (i = 0; i < n; i++) {
        BENCH_OK(seL4_CNode_Copy(ROOT, slot, DEPTH, ROOT, seL4_CapInitThreadTCB, DEPTH,
                                 seL4_AllRights));
        BENCH_OK(seL4_CNode_Delete(ROOT, slot, DEPTH));
    }
    bench_end("copy_delete", i);

    n = bench_params[MEM_ENDPOINTS];
    if (n) {
        bench_mark("before");
        bench_objects(pool, seL4_EndpointObject, 0, n);
        bench_mark("after");
        bench_end("mem", n);
    }
    return 0;
}
