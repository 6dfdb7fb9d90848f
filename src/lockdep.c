/*
 * lockdep.c - debug-build lock tracking: each thread's held locks, the
 * order check on acquisition, and the "is held" queries behind
 * lockdep_assert_held(). Thread-local state only; no locks of its own.
 * Also home of smm_bug(), the BUG_ON() report, and smm_misuse(), the
 * report of an API rule broken by the caller.
 */
#include <stdarg.h>
#include <string.h>
#include "lock.h"
#include "softmm.h"
#include "tlb.h"

void smm_bug(const char *file, int line, const char *cond)
{
	fprintf(stderr, "softmm: BUG at %s:%d: %s\n", file, line, cond);
	fflush(stderr);
	abort();
}

void smm_misuse(const char *fn, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "softmm: %s: ", fn);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	abort();
}

#ifdef SMM_DEBUG
unsigned int smm_race_permille;

void smm_race_point(void)
{
	static __thread uint32_t x;

	if (!x)
		x = (uint32_t)(uintptr_t)&x | 1;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	if (x % 1000 < __atomic_load_n(&smm_race_permille, __ATOMIC_RELAXED))
		sched_yield();
}

SMM_API int smm_debug_race_yield(unsigned int permille)
{
	__atomic_store_n(&smm_race_permille, permille > 1000 ? 1000 : permille,
			 __ATOMIC_RELAXED);
	return 0;
}
#else
SMM_API int smm_debug_race_yield(unsigned int permille)
{
	return -38; /* -ENOSYS */
}
#endif

#ifdef SMM_DEBUG
#define MAX_HELD 24

struct held_lock {
	const void *lock;
	int cls;
	bool shared;
};

static __thread struct held_lock held[MAX_HELD];
static __thread int nr_held;

/*
 * No lock inside an access section, of any class: a sleeping lock may be
 * held by a flusher that waits for this section (a deadlock), and the
 * spinlocks' holders may be such flushers' callers. Lockless walkers take
 * none; an embedder calling softmm between smm_access_begin() and
 * smm_access_end() is caught here.
 */
static void assert_no_section(const void *lock, int cls)
{
	if (in_access_section())
		smm_misuse("lockdep",
			   "lock %p (class %d) taken inside an access section "
			   "(softmm.h: no softmm call but smm_translate(), "
			   "smm_access_fault() and smm_access_end() there)",
			   lock, cls);
}

void lockdep_acquire(const void *lock, int cls, bool shared)
{
	assert_no_section(lock, cls);
	BUG_ON(nr_held >= MAX_HELD);
	for (int i = 0; i < nr_held; i++) {
		if (held[i].lock == lock) {
			fprintf(stderr,
				"softmm lockdep: recursive acquisition "
				"of %p (class %d)\n",
				lock, cls);
			BUG_ON(1);
		}
		/*
		 * Classes nest strictly outward-in, and two locks of one
		 * class are never held together (a trylock may be taken
		 * out of order: lockdep_acquire_trylock()). VMA write marks
		 * are not locks here: a writer marks several VMAs under
		 * mmap_lock held for write, which already excludes every
		 * other writer.
		 */
		if (held[i].cls >= cls) {
			fprintf(stderr,
				"softmm lockdep: lock order violation: "
				"taking class %d while holding class %d\n",
				cls, held[i].cls);
			BUG_ON(1);
		}
	}
	held[nr_held++] = (struct held_lock){ lock, cls, shared };
}

/* A successful trylock: recorded as held, exempt from the order check. */
void lockdep_acquire_trylock(const void *lock, int cls, bool shared)
{
	assert_no_section(lock, cls);
	BUG_ON(nr_held >= MAX_HELD);
	for (int i = 0; i < nr_held; i++)
		BUG_ON(held[i].lock == lock);
	held[nr_held++] = (struct held_lock){ lock, cls, shared };
}

void lockdep_release(const void *lock)
{
	for (int i = nr_held - 1; i >= 0; i--) {
		if (held[i].lock == lock) {
			memmove(&held[i], &held[i + 1],
				(size_t)(nr_held - i - 1) * sizeof(held[0]));
			nr_held--;
			return;
		}
	}
	fprintf(stderr, "softmm lockdep: releasing %p, not held\n", lock);
	BUG_ON(1);
}

void lockdep_downgrade(const void *lock)
{
	for (int i = 0; i < nr_held; i++) {
		if (held[i].lock == lock) {
			BUG_ON(held[i].shared);
			held[i].shared = true;
			return;
		}
	}
	fprintf(stderr, "softmm lockdep: downgrading %p, not held\n", lock);
	BUG_ON(1);
}

bool lockdep_is_held(const void *lock, int mode)
{
	for (int i = 0; i < nr_held; i++)
		if (held[i].lock == lock)
			return mode == 0 || !held[i].shared;
	return false;
}

bool lockdep_holds_class_above(int cls)
{
	for (int i = 0; i < nr_held; i++)
		if (held[i].cls > cls && held[i].cls != LC_LEAF)
			return true;
	return false;
}

bool lockdep_holds_class(int cls)
{
	for (int i = 0; i < nr_held; i++)
		if (held[i].cls == cls)
			return true;
	return false;
}

int lockdep_depth(void)
{
	return nr_held;
}
#endif
