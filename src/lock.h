/*
 * lock.h - spinlocks, the mmap_lock rwsem, and the lock-order checker that
 * debug builds (SMM_DEBUG) run on every acquisition. The lock classes below
 * are the order of docs/LOCKING.md, outermost first; taking a lock of a class
 * not above every class already held is a bug. Each thread's held locks live
 * in thread-local storage (lockdep.c).
 */
#ifndef SMM_LOCK_H
#define SMM_LOCK_H

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include "compiler.h"

enum lock_class {
	LC_WB = 1,     /* file->wb_lock: one writeback of a file at a time */
	LC_MMAP,       /* mm->mmap_lock */
	LC_VMA,	       /* per-VMA lock */
	LC_INVALIDATE, /* file->invalidate_lock: truncation vs new pages */
	LC_PAGE_LOCK,  /* a page-cache page's lock (PG_LOCKED) */
	LC_I_MMAP,     /* file->i_mmap_lock: the VMAs mapping a file */
	LC_PMD_RWSEM,  /* scheme pmd-rwsem: a PMD table's read-write lock */
	LC_PAGE_TABLE, /* mm->page_table_lock: PGD and PUD entries */
	LC_PMD,	       /* split PMD-table lock */
	LC_PTE,	       /* split PTE-table lock (ptl) */
	LC_I_PAGES,    /* file->i_pages_lock: the page cache's tree, marks */
	LC_UFFD,       /* mm->uffd.lock: userfaultfd waiters and events */
	LC_LEAF,       /* pool and allocator internals: nothing nests in */
};

#ifdef SMM_DEBUG
void lockdep_acquire(const void *lock, int cls, bool shared);
void lockdep_acquire_trylock(const void *lock, int cls, bool shared);
void lockdep_release(const void *lock);
/* A held write lock is now held for read (mmap_write_downgrade()). */
void lockdep_downgrade(const void *lock);
bool lockdep_is_held(const void *lock, int mode); /* mode: 0 any, 1 excl */
int lockdep_depth(void);
#define lockdep_assert_held(l)	     BUG_ON(!lockdep_is_held((l), 0))
#define lockdep_assert_held_write(l) BUG_ON(!lockdep_is_held((l), 1))
#define lockdep_assert_not_held(l)   BUG_ON(lockdep_is_held((l), 0))
#define lockdep_assert_none_held()   BUG_ON(lockdep_depth() != 0)
#else
static inline void lockdep_acquire(const void *l, int c, bool s)
{
}
static inline void lockdep_acquire_trylock(const void *l, int c, bool s)
{
}
static inline void lockdep_release(const void *l)
{
}
static inline void lockdep_downgrade(const void *l)
{
}
#define lockdep_assert_held(l) \
	do {                   \
		(void)(l);     \
	} while (0)
#define lockdep_assert_held_write(l) \
	do {                         \
		(void)(l);           \
	} while (0)
#define lockdep_assert_not_held(l) \
	do {                       \
		(void)(l);         \
	} while (0)
#define lockdep_assert_none_held() \
	do {                       \
	} while (0)
#endif

/*
 * A test-and-test-and-set spinlock that yields the host CPU after spinning
 * a while: softmm's "CPUs" are threads the host may preempt while they hold
 * a lock.
 */
typedef struct {
	atomic_int v;
} spinlock_t;

static inline void spin_lock_init(spinlock_t *l)
{
	atomic_init(&l->v, 0);
}

static inline void __spin_lock(spinlock_t *l)
{
	for (;;) {
		if (!atomic_exchange_explicit(&l->v, 1, memory_order_acquire))
			return;
		for (unsigned int n = 0;
		     atomic_load_explicit(&l->v, memory_order_relaxed); n++) {
			if (n < 64)
				cpu_relax();
			else
				sched_yield();
		}
	}
}

static inline bool __spin_trylock(spinlock_t *l)
{
	return !atomic_load_explicit(&l->v, memory_order_relaxed) &&
	       !atomic_exchange_explicit(&l->v, 1, memory_order_acquire);
}

static inline void __spin_unlock(spinlock_t *l)
{
	atomic_store_explicit(&l->v, 0, memory_order_release);
}

#define spin_lock_class(l, cls)                     \
	do {                                        \
		lockdep_acquire((l), (cls), false); \
		__spin_lock(l);                     \
	} while (0)
#define spin_unlock(l)              \
	do {                        \
		__spin_unlock(l);   \
		lockdep_release(l); \
	} while (0)

static inline bool spin_is_locked(spinlock_t *l)
{
	return atomic_load_explicit(&l->v, memory_order_relaxed);
}

/*
 * A TLB flush waits for other CPUs: no page-table lock may be held. The
 * file locks above the page tables (invalidate_lock, page locks, i_mmap)
 * may be: no CPU takes one inside an access section.
 */
#ifdef SMM_DEBUG
bool lockdep_holds_class_above(int cls);
#define lockdep_assert_none_held_below_mmap() \
	BUG_ON(lockdep_holds_class_above(LC_I_MMAP))
#else
#define lockdep_assert_none_held_below_mmap() \
	do {                                  \
	} while (0)
#endif

#endif
