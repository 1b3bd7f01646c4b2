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
#include <string.h>
#include <unicorn/unicorn.h>

#define CODE_SLOTS 64

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
    uint64_t width;       /* bytes per instruction, or 0 (variable: RISC-V lengths) */
    uint64_t failed;      /* 1: Unicorn could not say how long a block is (stopped) */
    stop_fn stop;         /* uc_emu_stop */
    ctl_fn ctl;           /* uc_ctl */
    const uint8_t *ram;   /* guest RAM in this process (NULL: not known), */
    uint64_t ram_base;    /* its guest-physical address */
    uint64_t ram_size;    /* and length */
    uint64_t root;        /* Sv39 root table of the installed address space (0: none) */
    uint64_t decoded;     /* blocks counted from their bytes */
    uint64_t asked;       /* blocks counted by asking Unicorn */
    uint64_t exit_at;     /* the `until` of a run of part of a block, or 0 */
    uint64_t check;       /* 1: count both ways and tally disagreements (tests) */
    uint64_t disagreed;   /* blocks whose two counts differed, while checking */
    uint64_t epoch;       /* bumped by the machine at every TLB flush and root change */
    struct code_slot {    /* code pages walked to since then, by user page address */
        uint64_t va;
        uint64_t epoch;
        const uint8_t *host;
    } slots[CODE_SLOTS];
};

#define PAGE_BITS 12
#define PAGE_MASK ((1ULL << PAGE_BITS) - 1)
#define PTE_V 1ULL
#define PTE_R 2ULL
#define PTE_X 8ULL

/*
 * The host address of the 4 KiB code page holding user address `va` in the installed
 * address space, or NULL where the walk does not end in RAM (the caller then asks
 * Unicorn). An Sv39 walk of the tables in guest RAM, as Unicorn's MMU makes it: only
 * the kernel writes those tables, and it flushes Unicorn's TLB whenever a change takes
 * a translation away, so a block about to run was fetched through the same leaf.
 */
static const uint8_t *code_page(const struct block_count *state, uint64_t va)
{
    uint64_t table = state->root;
    int level;

    if (!state->ram || !table || (uint64_t)((int64_t)(va << 25) >> 25) != va) {
        return NULL;  /* no RAM view, no address space, or not an Sv39 address */
    }
    for (level = 2; level >= 0; level--) {
        unsigned shift = PAGE_BITS + 9 * (unsigned)level;
        uint64_t at = table + ((va >> shift) & 511) * 8 - state->ram_base;
        uint64_t pte, ppn, span, paddr;

        if (at > state->ram_size - 8) {
            return NULL;
        }
        memcpy(&pte, state->ram + at, sizeof pte);
        if (!(pte & PTE_V)) {
            return NULL;
        }
        ppn = (pte >> 10) & ((1ULL << 44) - 1);
        if (!(pte & (PTE_R | PTE_X))) {
            table = ppn << PAGE_BITS;  /* the next level's table */
            continue;
        }
        span = (1ULL << shift) - 1;
        if ((ppn << PAGE_BITS) & span) {
            return NULL;  /* a misaligned superpage: leave it to Unicorn */
        }
        paddr = (ppn << PAGE_BITS) + (va & span & ~PAGE_MASK) - state->ram_base;
        if (paddr > state->ram_size - (PAGE_MASK + 1)) {
            return NULL;
        }
        return state->ram + paddr;
    }
    return NULL;
}

/*
 * The host address of the code page at user page address `va`, as code_page finds it,
 * remembered until the machine next flushes Unicorn's TLB or changes the root (which
 * is when a walk could end elsewhere: see code_page).
 */
static const uint8_t *cached_code_page(struct block_count *state, uint64_t va)
{
    struct code_slot *slot = &state->slots[(va >> PAGE_BITS) & (CODE_SLOTS - 1)];
    const uint8_t *host;

    if (slot->va == va && slot->epoch == state->epoch) {
        return slot->host;
    }
    host = code_page(state, va);
    if (host) {
        slot->va = va;
        slot->epoch = state->epoch;
        slot->host = host;
    }
    return host;
}

/*
 * Instruction starts among four halfwords, by whether the first continues an
 * instruction (`cont`) and which of them end in binary 11 (`mask`, bit k for halfword
 * k): starts[cont][mask][r] counts them in the first r halfwords; carry[cont][mask] says
 * whether the halfword after the four continues an instruction.
 */
static uint8_t starts[2][16][5];
static uint8_t carry[2][16];

__attribute__((constructor)) static void build_tables(void)
{
    unsigned cont, mask, k;

    for (cont = 0; cont < 2; cont++) {
        for (mask = 0; mask < 16; mask++) {
            unsigned c = cont, n = 0;
            for (k = 0; k < 4; k++) {
                if (c) {
                    c = 0;
                } else {
                    n++;
                    c = (mask >> k) & 1;  /* a 4-byte instruction starts here */
                }
                starts[cont][mask][k + 1] = (uint8_t)n;
            }
            carry[cont][mask] = (uint8_t)c;
        }
    }
}

/* Bit k set: halfword k of the little-endian word `w` ends in binary 11. */
static unsigned long_marks(uint64_t w)
{
    uint64_t ends = w & (w >> 1) & 0x0001000100010001ULL;  /* bits 0, 16, 32, 48 */
    /* Each product term lands on its own bit; bits 48-51 gather the four marks. */
    return (unsigned)((ends * ((1ULL << 48) | (1ULL << 33) | (1ULL << 18) | (1ULL << 3)))
                      >> 48) & 15;
}

/* C.ADDI4SPN with a zero immediate (0x0000 among them): see decode_count. */
static int ends_at_zero_addi4spn(uint16_t half)
{
    return (half & 0xffe3) == 0;
}

/* The slow way, for a block near or over a page end: one halfword at a time. */
static uint64_t decode_by_halfword(struct block_count *state, uint64_t address, uint32_t size)
{
    uint64_t pc = address, end = address + size, page_va = 1, n = 0;
    const uint8_t *page = NULL;
    uint16_t half;

    for (;;) {
        if ((pc & ~PAGE_MASK) != page_va) {
            page_va = pc & ~PAGE_MASK;
            page = cached_code_page(state, page_va);
            if (!page) {
                return 0;
            }
        }
        memcpy(&half, page + (pc & PAGE_MASK), sizeof half);
        if (pc >= end) {
            return ends_at_zero_addi4spn(half) ? 0 : n;
        }
        pc += (half & 3) == 3 ? 4 : 2;
        n++;
    }
}

/*
 * The instructions in the `size` bytes at `address`, from the code itself (RISC-V:
 * an instruction is 4 bytes when the low two bits of its first halfword are 11, else
 * 2), or 0 when the bytes cannot be reached that way or do not settle the count.
 *
 * They do not when the halfword just past the block is C.ADDI4SPN with a zero
 * immediate (0x0000 among them): Unicorn ends a block at that illegal instruction and
 * counts it without its bytes, and whether this block ended there or before it (a
 * jump) is not in the bytes. Unicorn is asked then; compilers do not put it after code.
 */
static uint64_t decode_count(struct block_count *state, uint64_t address, uint32_t size)
{
    uint64_t offset = address & PAGE_MASK, word, n = 0;
    uint32_t halves = size / 2, h;
    unsigned cont = 0, marks;
    const uint8_t *code;
    uint16_t half;

    if (!size || (address & 1)) {
        return 0;
    }
    if (offset + size + 8 > PAGE_MASK + 1) {
        return decode_by_halfword(state, address, size);
    }
    code = cached_code_page(state, address & ~PAGE_MASK);
    if (!code) {
        return 0;
    }
    /* Four halfwords at a time: the words read may run past the block, not the page. */
    code += offset;
    for (h = 0; h + 4 <= halves; h += 4) {
        memcpy(&word, code + 2 * h, sizeof word);
        marks = long_marks(word);
        n += starts[cont][marks][4];
        cont = carry[cont][marks];
    }
    if (h < halves) {
        memcpy(&word, code + 2 * h, sizeof word);
        n += starts[cont][long_marks(word)][halves - h];
    }
    memcpy(&half, code + size, sizeof half);
    return ends_at_zero_addi4spn(half) ? 0 : n;
}

/* The block Unicorn is about to run is in its cache: this finds it, not translates. */
static int ask_count(uc_engine *uc, struct block_count *state, uint64_t address, uint64_t *n)
{
    uc_tb tb;

    if (state->ctl(uc, UC_CTL_READ_WRITE(UC_CTL_TB_REQUEST_CACHE, 2), address, &tb)
        != UC_ERR_OK) {
        return 0;
    }
    *n = tb.icount;
    return 1;
}

void capsule_count_block(uc_engine *uc, uint64_t address, uint32_t size, void *user)
{
    struct block_count *state = user;
    uint64_t n;

    if (state->width) {
        n = size / state->width;
    } else {
        /* Counting the code's own instruction lengths is a few loads; asking Unicorn
         * is a lookup that misses after every TLB flush (each RISC-V unmap). */
        n = decode_count(state, address, size);
        if (n && address + size == state->exit_at) {
            n++;  /* Unicorn ends the block at the exit and counts it, without its bytes */
        }
        if (n && !state->check) {
            state->decoded++;
        } else {
            uint64_t asked;
            if (!ask_count(uc, state, address, &asked)) {
                state->failed = 1;
                state->open = 0;
                state->stop(uc);
                return;
            }
            if (n) {
                state->decoded++;
                state->disagreed += n != asked;
            } else {
                state->asked++;
            }
            n = asked;
        }
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
