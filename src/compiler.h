/*
 * compiler.h - the kernel's small vocabulary for memory accesses and
 * assertions: READ_ONCE/WRITE_ONCE, BUG_ON/VM_BUG_ON, likely/unlikely.
 * Owns no state.
 */
#ifndef SMM_COMPILER_H
#define SMM_COMPILER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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

/* A marked race window: debug builds may yield here (smm_debug_race_yield). */
#ifdef SMM_DEBUG
extern __hidden unsigned int smm_race_permille;
void smm_race_point(void);
#define race_point()                             \
	do {                                     \
		if (unlikely(smm_race_permille)) \
			smm_race_point();        \
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
