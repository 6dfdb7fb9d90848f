/*
 * rcu.h - softmm's use of liburcu (memb flavour): the read-side API, the
 * registration of threads, and the pointer publication macros as
 * ThreadSanitizer must see them. Owns no state but each thread's
 * registration flag (rcu.c).
 */
#ifndef SMM_RCU_H
#define SMM_RCU_H

#include <urcu/urcu-memb.h>
#include "compiler.h"

#ifdef SMM_TSAN
/*
 * Debian's liburcu 0.13 publishes and follows RCU pointers in uninstrumented
 * out-of-line functions (rcu_set_pointer_sym, rcu_dereference_sym): TSan
 * sees no release/acquire pair between a writer filling a node and a reader
 * following the pointer to it. Use the compiler's atomics, which TSan
 * models; acquire and release are at least as strong as what they replace.
 */
#undef rcu_dereference
#define rcu_dereference(p) __atomic_load_n(&(p), __ATOMIC_ACQUIRE)
#undef rcu_assign_pointer
#define rcu_assign_pointer(p, v) __atomic_store_n(&(p), (v), __ATOMIC_RELEASE)
#endif

/*
 * rcu_thread_online - make sure the calling thread is registered with
 * liburcu; every public entry point calls it before its first read-side
 * section or call_rcu(). The thread is unregistered when it exits.
 */
void rcu_thread_online(void);

#endif
