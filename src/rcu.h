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
 * tsan_release/tsan_acquire - in TSan builds, tell TSan about an ordering
 * it cannot see: liburcu 0.13 hands callbacks to its worker with
 * uninstrumented atomics and futexes, so nothing orders what the caller of
 * call_rcu() did before the call with the callback. Release on the object
 * before call_rcu(), acquire on it at the top of the callback. Nothing in
 * other builds. (docs/THREADSANITIZER.md)
 */
#ifdef SMM_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
/*
 * And the readers' side, which RCU orders before every callback that runs
 * after their section: each rcu_read_unlock() releases one object, every
 * callback acquires it. Without this edge TSan reports a reader's plain
 * read of a page table's metadata (alloc_level() reads the parent's
 * level, under RCU) against the next owner of the frame, which the
 * callback freed and the pool handed out: neither access is in liburcu,
 * so the suppression cannot match. A reader that used the object after
 * its grace period (an RCU bug) is still reported: its release comes
 * after the callback's acquire.
 */
extern __hidden char smm_tsan_rcu_readers;
#define urcu_memb_read_unlock()                        \
	do {                                           \
		__tsan_release(&smm_tsan_rcu_readers); \
		urcu_memb_read_unlock();               \
	} while (0)
#define tsan_release(p) __tsan_release(p)
#define tsan_acquire(p)                                \
	do {                                           \
		__tsan_acquire(p);                     \
		__tsan_acquire(&smm_tsan_rcu_readers); \
	} while (0)
#else
#define tsan_release(p)    \
	do {               \
		(void)(p); \
	} while (0)
#define tsan_acquire(p)    \
	do {               \
		(void)(p); \
	} while (0)
#endif

/*
 * rcu_thread_online - make sure the calling thread is registered with
 * liburcu; every public entry point calls it before its first read-side
 * section or call_rcu(). The thread is unregistered when it exits.
 */
void rcu_thread_online(void);

#endif
