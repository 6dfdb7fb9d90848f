/*
 * pt_scheme_pmd_rwsem.c - scheme "pmd-rwsem", after Jason Gunthorpe's reply
 * to Qi Zheng in the 2021 "Free user PTE page table pages" thread: a
 * read-write lock per PMD table, taken once per walk instead of an atomic
 * per PTE table and per entry. Its read side means: no entry of this PMD
 * table turns from a table pointer into none or a leaf. A semi-locked,
 * locked or installing walker read-locks the PMD table it reaches (under
 * RCU, map_rcu), and then uses the PTE table below with no further
 * protection until pte_unmap (keeps_linked). A zap that leaves a PTE table
 * empty write-locks the PMD table above it, so that no walker is below,
 * unlinks the table, and then the PMD and PUD tables that became empty:
 * the write side guards a whole level, so every level can go.
 *
 * The lock is one word in the PMD table's page metadata (page->pmd_rwsem,
 * RWSEM_* in pt_scheme.h). Waiters sleep on a hashed wait table, the
 * "hitching post" of the thread (a condition variable per bucket), never on
 * a queue of the table's own: the table may be freed while they sleep.
 *
 * Fairness, both ways:
 *  - Readers do not starve writers: a writer that finds readers sets
 *    RWSEM_WWAIT, which keeps new readers out, and waits for the ones
 *    inside (a fault each: microseconds).
 *  - Writers do not starve the fault path: a writer takes the lock only
 *    when a zap left a table empty (the count says so without a lock),
 *    holds it for an unlink and two counts (no scan, no TLB flush, no
 *    freeing: the zap's mmu_gather does those afterwards, lock dropped),
 *    and wakes every sleeper when it leaves. Faults elsewhere in the
 *    address space never see it: the lock is per 1 GiB of address space.
 *
 * Sleeping: a waiter marks the word (RWSEM_WAITERS) under its bucket's
 * mutex and while its RCU section still keeps the PMD table's page from
 * being freed and reused; then it ends the RCU section and sleeps. The one
 * who releases the lock clears the mark in the same atomic operation and,
 * if it was set, wakes the bucket under its mutex, so no wake-up is lost.
 * After a wake-up the walker walks again from the PGD: the PMD table may
 * be gone.
 *
 * Lockless walkers keep their access section: tables are freed only after
 * a shootdown, and through RCU.
 *
 * Locking (docs/LOCKING.md): the read and write sides are lock class
 * LC_PMD_RWSEM, below the VMA lock and above page_table_lock; the writer
 * takes page_table_lock and the PMD-table lock under it to unlink.
 */
#include <errno.h>
#include <pthread.h>
#include "pagewalk.h"

/* The planted bug of docs/SCHEMES.md: free with no write side. */
#ifdef SMM_BUG_PMD_RWSEM_NO_WRITE
#define BUG_NO_WRITE 1
#else
#define BUG_NO_WRITE 0
#endif

#define SPIN_READ  128
#define SPIN_WRITE 1024

#define POST_SHIFT 6
static struct post {
	pthread_mutex_t lock;
	pthread_cond_t cond;
} __attribute__((aligned(64))) posts[1 << POST_SHIFT] = {
	[0 ...(1 << POST_SHIFT) - 1] = { PTHREAD_MUTEX_INITIALIZER,
					 PTHREAD_COND_INITIALIZER },
};

static struct post *post_of(atomic_uint *word)
{
	uint64_t h = (uint64_t)(uintptr_t)word * 0x9e3779b97f4a7c15ULL;

	return &posts[h >> (64 - POST_SHIFT)];
}

/*
 * Sleep until whoever holds @word in a state with one of @blocks set
 * releases it. Called in the walk's RCU section, which it ends. Spurious
 * wake-ups are allowed: the caller walks again.
 */
static void post_wait(atomic_uint *word, unsigned int blocks)
{
	struct post *p = post_of(word);
	unsigned int v;

	pthread_mutex_lock(&p->lock);
	v = atomic_fetch_or_explicit(word, RWSEM_WAITERS, memory_order_seq_cst);
	/* From here on we do not touch the word: it may be freed. */
	urcu_memb_read_unlock();
	if (v & blocks)
		pthread_cond_wait(&p->cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

static void post_wake(atomic_uint *word)
{
	struct post *p = post_of(word);

	pthread_mutex_lock(&p->lock);
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

/*
 * Read-lock @word, in an RCU section. True: held, RCU still held. False:
 * we slept, RCU ended; walk again.
 */
static bool read_lock_rcu(atomic_uint *word)
{
	unsigned int v = atomic_load_explicit(word, memory_order_relaxed);

	for (int spins = 0;; spins++) {
		if (likely(!(v & (RWSEM_WRITER | RWSEM_WWAIT)))) {
			if (atomic_compare_exchange_weak_explicit(
				    word, &v, v + 1, memory_order_acquire,
				    memory_order_relaxed))
				return true;
			continue;
		}
		if (spins < SPIN_READ) {
			cpu_relax();
			v = atomic_load_explicit(word, memory_order_relaxed);
			continue;
		}
		post_wait(word, RWSEM_WRITER | RWSEM_WWAIT);
		return false;
	}
}

static void read_unlock(atomic_uint *word)
{
	unsigned int v = atomic_load_explicit(word, memory_order_relaxed), n;

	do {
		n = v - 1;
		/* The last reader out wakes the writer waiting for it. */
		if (!(n & RWSEM_READERS))
			n &= ~RWSEM_WAITERS;
	} while (!atomic_compare_exchange_weak_explicit(
		word, &v, n, memory_order_release, memory_order_relaxed));
	if (v & ~n & RWSEM_WAITERS)
		post_wake(word);
}

/*
 * Write-lock @word, in an RCU section: as read_lock_rcu(). A writer that
 * finds readers first shuts new ones out (RWSEM_WWAIT), and keeps that
 * mark while it sleeps: it comes back to the same table, unless another
 * writer took the lock (clearing the mark) and freed the table.
 */
static bool write_lock_rcu(atomic_uint *word)
{
	unsigned int v = atomic_load_explicit(word, memory_order_relaxed);

	for (int spins = 0;; spins++) {
		if (!(v & (RWSEM_WRITER | RWSEM_READERS))) {
			if (atomic_compare_exchange_weak_explicit(
				    word, &v, (v & ~RWSEM_WWAIT) | RWSEM_WRITER,
				    memory_order_acquire, memory_order_relaxed))
				return true;
			continue;
		}
		if (!(v & RWSEM_WWAIT)) {
			atomic_compare_exchange_weak_explicit(
				word, &v, v | RWSEM_WWAIT, memory_order_relaxed,
				memory_order_relaxed);
			continue;
		}
		if (spins < SPIN_WRITE) {
			cpu_relax();
			v = atomic_load_explicit(word, memory_order_relaxed);
			continue;
		}
		post_wait(word, RWSEM_WRITER | RWSEM_READERS);
		return false;
	}
}

static void write_unlock(atomic_uint *word)
{
	unsigned int v = atomic_fetch_and_explicit(
		word, ~(RWSEM_WRITER | RWSEM_WAITERS), memory_order_release);

	VM_BUG_ON(!(v & RWSEM_WRITER));
	if (v & RWSEM_WAITERS)
		post_wake(word);
}

/* ---- the scheme's hooks ---- */

static int pmd_rwsem_pte_map(struct pt_walk *w)
{
	struct page *pmd_page = virt_to_page(w->mm->pool, w->pmdp);

	if (unlikely(!read_lock_rcu(&pmd_page->pmd_rwsem)))
		return -EAGAIN;
	/*
	 * Unlinked before we got the lock (the writer marks it dead before
	 * it unlocks)? Checked before RCU ends: after that, only our read
	 * lock would keep the table, and that keeps only a linked one.
	 */
	if (unlikely(atomic_load_explicit(&pmd_page->flags,
					  memory_order_relaxed) &
		     PG_PT_DEAD)) {
		read_unlock(&pmd_page->pmd_rwsem);
		urcu_memb_read_unlock();
		return -EAGAIN;
	}
	urcu_memb_read_unlock();
	lockdep_acquire(&pmd_page->pmd_rwsem, LC_PMD_RWSEM, true);
	/* A writer may have freed the PTE table before we got the lock. */
	w->pmdval = table_read(w->pmdp);
	if (unlikely(!pt_entry_table(w->pmdval))) {
		lockdep_release(&pmd_page->pmd_rwsem);
		read_unlock(&pmd_page->pmd_rwsem);
		return 0;
	}
	return 1;
}

static void pmd_rwsem_pte_unmap(struct pt_walk *w)
{
	struct page *pmd_page = virt_to_page(w->mm->pool, w->pmdp);

	lockdep_release(&pmd_page->pmd_rwsem);
	read_unlock(&pmd_page->pmd_rwsem);
}

/*
 * The zap left the PTE table covering @addr empty: write-lock the PMD
 * table above it (walking again: the zap no longer holds it), and, if the
 * table is still empty, unlink it, then the PMD and PUD tables it leaves
 * empty (free_empty_upper()).
 */
static void pmd_rwsem_free_empty(struct mmu_gather *tlb, uint64_t addr)
{
	struct smm_mm *mm = tlb->mm;
	struct pt_walk w = { .mm = mm, .addr = addr };
	struct page *pmd_page;
	pteval_t *pmdp, e;
	bool dead, freed = false;

	for (;;) {
		urcu_memb_read_lock();
		pmdp = walk_to_pmd(&w);
		if (!pmdp) {
			urcu_memb_read_unlock();
			return;
		}
		pmd_page = virt_to_page(mm->pool, pmdp);
		if (BUG_NO_WRITE || write_lock_rcu(&pmd_page->pmd_rwsem))
			break;
	}
	dead = atomic_load(&pmd_page->flags) & PG_PT_DEAD;
	urcu_memb_read_unlock();
	lockdep_acquire(&pmd_page->pmd_rwsem, LC_PMD_RWSEM, false);
	if (dead)
		goto out;
#ifdef SMM_DEBUG
	if (smm_debug_pt_free_hook)
		smm_debug_pt_free_hook(mm, addr);
#endif
	race_point();
	/*
	 * No walker maps a PTE table below this PMD table now, and none
	 * can until we unlock: nobody can fill the table, so the count read
	 * here is final. Installers still put new PTE tables into empty
	 * entries before they read-lock (pte_alloc_map), under the PMD
	 * lock; that lock, and the dead mark free_empty_upper() sets under
	 * it, keep them out of a PMD table we unlink.
	 */
	spin_lock_class(&pmd_page->ptl, LC_PMD);
	e = table_read(pmdp);
	if (pt_entry_table(e) &&
	    !atomic_load_explicit(&pfn_to_page(mm->pool, pte_pfn(e))->pt_count,
				  memory_order_relaxed)) {
		unlink_table(tlb, pmdp);
		freed = true;
	}
	spin_unlock(&pmd_page->ptl);
	if (freed) {
		atomic_fetch_add(&mm->pt_reclaimed, 1);
		free_empty_upper(tlb, addr);
	}
out:
	lockdep_release(&pmd_page->pmd_rwsem);
	if (!BUG_NO_WRITE)
		write_unlock(&pmd_page->pmd_rwsem);
}

static void pmd_rwsem_zap_leave(struct mmu_gather *tlb, struct pt_walk *w,
				uint64_t start, uint64_t end,
				enum zap_reason why)
{
	if (!zap_left_empty(tlb, w, why))
		return;
	pmd_rwsem_free_empty(tlb, start);
}

const struct pt_scheme_ops pt_scheme_pmd_rwsem = {
	.name = "pmd-rwsem",
	.map_rcu = true,
	.keeps_linked = true,
	.pte_map = pmd_rwsem_pte_map,
	.pte_unmap = pmd_rwsem_pte_unmap,
	.pte_install = pt_install_alive,
	.zap_leave = pmd_rwsem_zap_leave,
};
