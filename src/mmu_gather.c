/*
 * mmu_gather.c - batching what a zap frees: pages are put only after the
 * TLB shootdown, page tables are freed only after the shootdown and an RCU
 * grace period, so neither a CPU's stale TLB entry nor a lockless walker
 * can reach freed memory.
 *
 * Pages wait in batches, the first in the gather itself, more allocated
 * from the host as a large zap needs them (mmu_gather.h).
 *
 * Locking: a gather belongs to one thread, which holds mmap_lock (read or
 * write) for its whole life. Pages and tables may be queued under
 * page-table locks; tlb_flush_mmu() and tlb_finish_mmu() may not be
 * called under one (the flush waits for other CPUs).
 */
#include <stdlib.h>
#include "mm.h"
#include "tlb.h"
#include "filemap.h"

void tlb_gather_mmu(struct mmu_gather *tlb, struct smm_mm *mm)
{
	tlb->mm = mm;
	tlb->need_flush = false;
	tlb->file_pending = false;
	tlb->freed_tables = false;
	tlb->nr_batches = 0;
	tlb->local.next = NULL;
	tlb->local.nr = 0;
	tlb->active = &tlb->local;
	tlb->tables = NO_PFN;
}

/* The active batch is full: move to the next, allocating it if need be
 * (from the host: may run under a page-table lock). False: flush now. */
static bool tlb_next_batch(struct mmu_gather *tlb)
{
	struct gather_batch *b = tlb->active->next;

	/*
	 * Alone on the mm, the flush is local and cheap: flush every batch,
	 * while the pages' metadata is still in the cache. A CPU switching
	 * in meanwhile costs one shootdown more, nothing else.
	 */
	if (tlb_mm_only_self(tlb->mm))
		return false;
	if (!b) {
		if (tlb->nr_batches >= GATHER_MAX_BATCHES)
			return false;
		b = malloc(sizeof(*b));
		if (!b)
			return false;
		b->next = NULL;
		tlb->active->next = b;
		tlb->nr_batches++;
	}
	b->nr = 0;
	tlb->active = b;
	return true;
}

bool tlb_remove_page(struct mmu_gather *tlb, pfn_t pfn)
{
	struct gather_batch *b = tlb->active;

	BUG_ON(b->nr >= GATHER_BATCH);
	b->pages[b->nr++] = pfn;
	return b->nr == GATHER_BATCH && !tlb_next_batch(tlb);
}

void free_table_now(struct smm_pool *pool, pfn_t pfn)
{
	struct page *page = pfn_to_page(pool, pfn);

	VM_BUG_ON(!(atomic_load(&page->flags) & PG_TABLE));
	VM_BUG_ON(spin_is_locked(&page->ptl));
	atomic_store(&page->refcount, 0);
	free_frame(pool, pfn);
}

static void free_table_rcu(struct rcu_head *head)
{
	struct page *page = container_of(head, struct page, rcu);
	struct smm_pool *pool;

	tsan_acquire(page);
	pool = page->pt_owner->pool;

	free_table_now(pool, page_to_pfn(pool, page));
}

/*
 * The table's own page links it into the gather, so queueing needs no
 * memory and cannot fail: after the flush no lockless walker can still
 * reach it, after the grace period no semi-locked one.
 */
void tlb_remove_table(struct mmu_gather *tlb, pfn_t pfn)
{
	struct page *page = pfn_to_page(tlb->mm->pool, pfn);

	VM_BUG_ON(!(atomic_load(&page->flags) & PG_TABLE));
	page->gather_next = tlb->tables;
	tlb->tables = pfn;
	tlb->freed_tables = true;
}

void tlb_flush_mmu(struct mmu_gather *tlb)
{
	struct smm_pool *pool = tlb->mm->pool;

	lockdep_assert_none_held_below_mmap();
	if (tlb->need_flush || tlb->freed_tables) {
		flush_tlb_mm(tlb->mm);
		tlb->need_flush = false;
	}
	if (tlb->file_pending) {
		atomic_fetch_sub(&tlb->mm->zap_file_pending, 1);
		tlb->file_pending = false;
	}
	for (struct gather_batch *b = &tlb->local;; b = b->next) {
		for (int i = 0; i < b->nr; i++) {
			pfn_t pfn = b->pages[i];

			if (pfn & GATHER_DIRTY) {
				pfn &= ~GATHER_DIRTY;
				set_page_dirty(pfn_to_page(pool, pfn));
			}
			put_page(pool, pfn);
		}
		b->nr = 0;
		if (b == tlb->active)
			break;
	}
	tlb->active = &tlb->local;
}

void tlb_finish_mmu(struct mmu_gather *tlb)
{
	struct smm_pool *pool = tlb->mm->pool;

	tlb_flush_mmu(tlb);
	while (tlb->tables != NO_PFN) {
		struct page *page = pfn_to_page(pool, tlb->tables);

		/* Read the link before call_rcu() reuses its storage. */
		tlb->tables = page->gather_next;
		tsan_release(page);
		urcu_memb_call_rcu(&page->rcu, free_table_rcu);
	}
	tlb->freed_tables = false;
	while (tlb->local.next) {
		struct gather_batch *b = tlb->local.next;

		tlb->local.next = b->next;
		free(b);
	}
	tlb->nr_batches = 0;
}
