/*
 * compiler.h - the kernel's small vocabulary for memory accesses and
 * assertions: READ_ONCE/WRITE_ONCE, BUG_ON/VM_BUG_ON, likely/unlikely; in
 * the counter build, the counting of atomic read-modify-writes. Owns no
 * state.
 */
#ifndef SMM_COMPILER_H
#define SMM_COMPILER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef SMM_COUNT_ATOMICS
/*
 * The counter build (build/count/, `softmm bench --atomics`): every atomic
 * read-modify-write the library executes adds one to smm_atomic_rmw, the
 * calling thread's counter, before it runs; a compare-exchange counts each
 * attempt, so a retry loop counts every turn. Plain atomic loads, stores
 * and fences are not counted (x86 runs a seq_cst store as an xchg and a
 * seq_cst fence as a locked or: not RMWs of the algorithm), nor is what the
 * library calls: liburcu's own atomics (call_rcu, registration) and those
 * inside pthread and the C library. The RCU callbacks (freeing page tables
 * and VMAs) count on liburcu's worker thread, not on the caller's. Neither is a C11 compound assignment on an _Atomic object (x++,
 * x |= m), which no macro can see: src/ has none (every locked instruction
 * of an -O0 build is one of the operations below, a seq_cst store or a
 * fence).
 *
 * The GCC builtins are redefined as macros of their own name, which the
 * preprocessor does not expand again inside their own expansion: each calls
 * the builtin. The <stdatomic.h> operations are redefined on top of them
 * (as GCC's header does, but whatever the compiler's header does), so that
 * each is counted exactly once.
 */
extern __thread unsigned long smm_atomic_rmw
	__attribute__((visibility("hidden")));

#define __atomic_exchange_n(p, v, o) \
	(smm_atomic_rmw++, __atomic_exchange_n(p, v, o))
#define __atomic_exchange(p, v, r, o) \
	(smm_atomic_rmw++, __atomic_exchange(p, v, r, o))
#define __atomic_compare_exchange_n(p, e, d, w, s, f) \
	(smm_atomic_rmw++, __atomic_compare_exchange_n(p, e, d, w, s, f))
#define __atomic_compare_exchange(p, e, d, w, s, f) \
	(smm_atomic_rmw++, __atomic_compare_exchange(p, e, d, w, s, f))
#define __atomic_test_and_set(p, o) \
	(smm_atomic_rmw++, __atomic_test_and_set(p, o))
#define __atomic_fetch_add(p, v, o) \
	(smm_atomic_rmw++, __atomic_fetch_add(p, v, o))
#define __atomic_fetch_sub(p, v, o) \
	(smm_atomic_rmw++, __atomic_fetch_sub(p, v, o))
#define __atomic_fetch_and(p, v, o) \
	(smm_atomic_rmw++, __atomic_fetch_and(p, v, o))
#define __atomic_fetch_or(p, v, o) \
	(smm_atomic_rmw++, __atomic_fetch_or(p, v, o))
#define __atomic_fetch_xor(p, v, o) \
	(smm_atomic_rmw++, __atomic_fetch_xor(p, v, o))
#define __atomic_fetch_nand(p, v, o) \
	(smm_atomic_rmw++, __atomic_fetch_nand(p, v, o))
#define __atomic_add_fetch(p, v, o) \
	(smm_atomic_rmw++, __atomic_add_fetch(p, v, o))
#define __atomic_sub_fetch(p, v, o) \
	(smm_atomic_rmw++, __atomic_sub_fetch(p, v, o))
#define __atomic_and_fetch(p, v, o) \
	(smm_atomic_rmw++, __atomic_and_fetch(p, v, o))
#define __atomic_or_fetch(p, v, o) \
	(smm_atomic_rmw++, __atomic_or_fetch(p, v, o))
#define __atomic_xor_fetch(p, v, o) \
	(smm_atomic_rmw++, __atomic_xor_fetch(p, v, o))
#define __atomic_nand_fetch(p, v, o) \
	(smm_atomic_rmw++, __atomic_nand_fetch(p, v, o))

#undef atomic_fetch_add
#undef atomic_fetch_add_explicit
#undef atomic_fetch_sub
#undef atomic_fetch_sub_explicit
#undef atomic_fetch_and
#undef atomic_fetch_and_explicit
#undef atomic_fetch_or
#undef atomic_fetch_or_explicit
#undef atomic_fetch_xor
#undef atomic_fetch_xor_explicit
#undef atomic_exchange
#undef atomic_exchange_explicit
#undef atomic_compare_exchange_strong
#undef atomic_compare_exchange_strong_explicit
#undef atomic_compare_exchange_weak
#undef atomic_compare_exchange_weak_explicit
#undef atomic_flag_test_and_set
#undef atomic_flag_test_and_set_explicit
#define atomic_fetch_add_explicit(p, v, o) __atomic_fetch_add((p), (v), (o))
#define atomic_fetch_sub_explicit(p, v, o) __atomic_fetch_sub((p), (v), (o))
#define atomic_fetch_and_explicit(p, v, o) __atomic_fetch_and((p), (v), (o))
#define atomic_fetch_or_explicit(p, v, o)  __atomic_fetch_or((p), (v), (o))
#define atomic_fetch_xor_explicit(p, v, o) __atomic_fetch_xor((p), (v), (o))
#define atomic_exchange_explicit(p, v, o)  __atomic_exchange_n((p), (v), (o))
#define atomic_compare_exchange_strong_explicit(p, e, d, s, f) \
	__atomic_compare_exchange_n((p), (e), (d), 0, (s), (f))
#define atomic_compare_exchange_weak_explicit(p, e, d, s, f) \
	__atomic_compare_exchange_n((p), (e), (d), 1, (s), (f))
#define atomic_flag_test_and_set_explicit(p, o) __atomic_test_and_set((p), (o))
#define atomic_fetch_add(p, v) \
	atomic_fetch_add_explicit(p, v, memory_order_seq_cst)
#define atomic_fetch_sub(p, v) \
	atomic_fetch_sub_explicit(p, v, memory_order_seq_cst)
#define atomic_fetch_and(p, v) \
	atomic_fetch_and_explicit(p, v, memory_order_seq_cst)
#define atomic_fetch_or(p, v) \
	atomic_fetch_or_explicit(p, v, memory_order_seq_cst)
#define atomic_fetch_xor(p, v) \
	atomic_fetch_xor_explicit(p, v, memory_order_seq_cst)
#define atomic_exchange(p, v) \
	atomic_exchange_explicit(p, v, memory_order_seq_cst)
#define atomic_compare_exchange_strong(p, e, d)                                \
	atomic_compare_exchange_strong_explicit(p, e, d, memory_order_seq_cst, \
						memory_order_seq_cst)
#define atomic_compare_exchange_weak(p, e, d)                                \
	atomic_compare_exchange_weak_explicit(p, e, d, memory_order_seq_cst, \
					      memory_order_seq_cst)
#define atomic_flag_test_and_set(p) \
	atomic_flag_test_and_set_explicit(p, memory_order_seq_cst)
#endif /* SMM_COUNT_ATOMICS */

/* SMM_TSAN: this is a ThreadSanitizer build (gcc or clang). */
#ifdef __SANITIZE_THREAD__
#define SMM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SMM_TSAN 1
#endif
#endif

/*
 * Internal objects shared between files: declared hidden, so that -fPIC
 * code reaches them directly rather than through the GOT (one load fewer
 * on every access section). Functions need nothing: -fvisibility=hidden.
 */
#define __hidden __attribute__((visibility("hidden")))

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define READ_ONCE(x)	 __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define barrier()	 __asm__ __volatile__("" ::: "memory")
#define smp_mb()	 __atomic_thread_fence(__ATOMIC_SEQ_CST)

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr)-offsetof(type, member)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)     ((a) < (b) ? (a) : (b))
#define MAX(a, b)     ((a) > (b) ? (a) : (b))

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	barrier();
#endif
}

void smm_bug(const char *file, int line, const char *cond)
	__attribute__((noreturn));
/* A rule of the API broken by the caller (softmm.h says which): one line
 * naming the function and the rule, then abort. */
void smm_misuse(const char *fn, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 2, 3)));
#define BUG_ON(c)                                        \
	do {                                             \
		if (unlikely(c))                         \
			smm_bug(__FILE__, __LINE__, #c); \
	} while (0)

/*
 * A marked race window: debug builds may yield here (smm_debug_race_yield).
 * The rate is read atomically: a test may change it while other threads
 * pass race points.
 */
#ifdef SMM_DEBUG
extern __hidden unsigned int smm_race_permille;
void smm_race_point(void);
#define race_point()                                             \
	do {                                                     \
		if (unlikely(__atomic_load_n(&smm_race_permille, \
					     __ATOMIC_RELAXED))) \
			smm_race_point();                        \
	} while (0)
#else
#define race_point() \
	do {         \
	} while (0)
#endif

#ifdef SMM_DEBUG
#define VM_BUG_ON(c) BUG_ON(c)
#else
#define VM_BUG_ON(c)             \
	do {                     \
		(void)sizeof(c); \
	} while (0)
#endif

#endif
