/*
 * Exact instruction counts for Unicorn without a call per instruction.
 *
 * Unicorn counts instructions (uc_emu_start's `count`) with a code hook: every
 * instruction of every translated block calls it and then checks for a stop, which
 * costs more than the guest's own work on ordinary code. This block hook counts a
 * whole translated block when it starts, with the block's instruction count, and asks
 * Unicorn to stop before a block that would take the count past the limit. What the
 * hook cannot know (a block left early by a trap, a stop inside a block, the part of
 * a block before the limit) the Python side settles from the pc: see
 * emulator/blockcount.py, which states the contract.
 *
 * Built by `make compiled` beside the mypyc modules; not needed by the pure build.
 */

#include <stdint.h>
#include <unicorn/unicorn.h>

typedef uc_err (*stop_fn)(uc_engine *uc);
typedef uc_err (*ctl_fn)(uc_engine *uc, uc_control_type control, ...);

/* Shared with emulator/blockcount.py (BlockCountState): same fields, same order. */
struct block_count {
    uint64_t counted;     /* instructions of the blocks started in this emu_start */
    uint64_t limit;       /* stop before a block that would take `counted` past this */
    uint64_t block_pc;    /* the last block counted: its start, */
    uint64_t block_n;     /* its instructions */
    uint64_t block_size;  /* and its bytes */
    uint64_t open;        /* 1: that block may not have run to its end */
    uint64_t crossing;    /* 1: stopped before a block at block_pc that would cross the limit */
    uint64_t width;       /* bytes per instruction, or 0 (variable: ask Unicorn) */
    uint64_t failed;      /* 1: Unicorn could not say how long a block is (stopped) */
    stop_fn stop;         /* uc_emu_stop */
    ctl_fn ctl;           /* uc_ctl */
};

void capsule_count_block(uc_engine *uc, uint64_t address, uint32_t size, void *user)
{
    struct block_count *state = user;
    uint64_t n;

    if (state->width) {
        n = size / state->width;
    } else {
        /* The block about to run is in Unicorn's cache: this finds it, not translates. */
        uc_tb tb;
        if (state->ctl(uc, UC_CTL_READ_WRITE(UC_CTL_TB_REQUEST_CACHE, 2), address, &tb)
            != UC_ERR_OK) {
            state->failed = 1;
            state->open = 0;
            state->stop(uc);
            return;
        }
        n = tb.icount;
    }
    state->block_pc = address;
    state->block_n = n;
    state->block_size = size;
    if (state->counted + n > state->limit) {
        state->crossing = 1;
        state->open = 0;
        state->stop(uc);
        return;
    }
    state->counted += n;
    state->open = 1;
}
