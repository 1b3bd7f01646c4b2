/* capsule runtime: process exit (exit.c; see userland/runtime/README.md). */
#ifndef CAPSULE_STDLIB_H
#define CAPSULE_STDLIB_H

#include <stddef.h>

#define EXIT_SUCCESS 0
#define EXIT_FAILURE 1

__attribute__((__noreturn__)) void exit(int status);
__attribute__((__noreturn__)) void _Exit(int status);
__attribute__((__noreturn__)) void abort(void);

#endif
