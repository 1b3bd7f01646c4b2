/* capsule runtime: internal interfaces between the start-up files. */
#ifndef CAPSULE_RUNTIME_INTERNAL_H
#define CAPSULE_RUNTIME_INTERNAL_H

/* Build the initial thread's static TLS block and point the TLS register at it. */
void capsule_tls_init(void);

/*
 * Fill a TLS block at `area` (64-byte aligned, capsule_tls_size() bytes) from the image's
 * TLS segment and return the thread pointer to load for it (tp / TPIDR_EL0).
 */
void *capsule_tls_setup(char *area);
unsigned long capsule_tls_size(void);

#endif
