/* capsule runtime: internal interfaces between the start-up files. */
#ifndef CAPSULE_RUNTIME_INTERNAL_H
#define CAPSULE_RUNTIME_INTERNAL_H

/* Build the initial thread's static TLS block and point the TLS register at it. */
void capsule_tls_init(void);

#endif
