/* capsule runtime: assert() prints the failed condition and aborts (exit status 134). */
#ifndef CAPSULE_ASSERT_H
#define CAPSULE_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#ifdef NDEBUG
#define assert(cond) ((void)0)
#else
#define assert(cond)                                                                 \
    ((cond) ? (void)0                                                                \
            : (printf("%s:%d: %s: assertion `%s' failed\n", __FILE__, __LINE__, __func__, \
                      #cond),                                                        \
               abort()))
#endif

#if !defined(__cplusplus) && (!defined(__STDC_VERSION__) || __STDC_VERSION__ < 202311L)
#define static_assert _Static_assert
#endif

#endif
