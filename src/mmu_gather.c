/*
 * mmu_gather.c - batching what a zap frees: pages are put only after the
 * TLB shootdown, page tables are freed only after the shootdown and an RCU
 * grace period, so neither a CPU's stale TLB entry nor a lockless walker
 * can reach freed memory.
 *
 * Locking: a gather belongs to one thread. Callers hold mmap_lock (read
 * for zaps, write when tables are freed); tlb_flush_mmu() may not be called
 * under a page-table lock (it waits for other CPUs).
 */
#include "mm.h"
#include "tlb.h"

void tlb_gather_mmu(struct mmu_gather *tlb, struct smm_mm *mm)
{
	tlb->mm = mm;
	tlb->need_flush = false;
	tlb->freed_tables = false;
	tlb->nr_pages = 0;
	tlb->nr_tables = 0;
	tlb->tables = NULL;
	tlb->tables_cap = 0;
}

bool tlb_remove_page(struct mmu_gather *tlb, pfn_t pfn)
{
	BUG_ON(tlb->nr_pages >= GATHER_BATCH);
	tlb->pages[tlb->nr_pages++] = pfn;
	return tlb->nr_pages == GATHER_BATCH;
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
	struct smm_pool *pool = page->pt_owner->pool;

	free_table_now(pool, page_to_pfn(pool, page));
}

/*
 * Queue an unlinked table. If the array cannot grow, flush now and hand
 * this table to RCU at once (its rcu_head is in its page, so that needs no
 * memory): after the flush no lockless walker can still reach it, after
 * the grace period no semi-locked one. Never fails, and never waits for a
 * grace period (callers may be inside an RCU read-side section).
 */
void tlb_remove_table(struct mmu_gather *tlb, pfn_t pfn)
{
	tlb->freed_tables = true;
	if (tlb->nr_tables == tlb->tables_cap) {
		int cap = tlb->tables_cap ? tlb->tables_cap * 2 : 16;
		pfn_t *t = realloc(tlb->tables, (size_t)cap * sizeof(pfn_t));

		if (!t) {
			flush_tlb_mm(tlb->mm);
			urcu_memb_call_rcu(&pfn_to_page(tlb->mm->pool, pfn)->rcu,
					   free_table_rcu);
			return;
		}
		tlb->tables = t;
		tlb->tables_cap = cap;
	}
	tlb->tables[tlb->nr_tables++] = pfn;
}

void tlb_flush_mmu(struct mmu_gather *tlb)
{
	struct smm_pool *pool = tlb->mm->pool;

	lockdep_assert_none_held_below_mmap();
	if (tlb->need_flush || tlb->freed_tables) {
		flush_tlb_mm(tlb->mm);
		tlb->need_flush = false;
	}
	for (int i = 0; i < tlb->nr_pages; i++)
		put_page(pool, tlb->pages[i]);
	tlb->nr_pages = 0;
}

void tlb_finish_mmu(struct mmu_gather *tlb)
{
	struct smm_pool *pool = tlb->mm->pool;

	tlb_flush_mmu(tlb);
	for (int i = 0; i < tlb->nr_tables; i++) {
		struct page *page = pfn_to_page(pool, tlb->tables[i]);

		urcu_memb_call_rcu(&page->rcu, free_table_rcu);
	}
	free(tlb->tables);
	tlb->tables = NULL;
	tlb->nr_tables = tlb->tables_cap = 0;
	tlb->freed_tables = false;
}
