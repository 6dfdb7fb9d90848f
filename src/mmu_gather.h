/*
 * mmu_gather.h - batching what a zap frees (mmu_gather.c): pages are put
 * only after the TLB shootdown, page tables only after the shootdown and an
 * RCU grace period. A gather belongs to one thread; tlb_flush_mmu() and
 * tlb_finish_mmu() may not run under a page-table lock.
 */
#ifndef SMM_MMU_GATHER_H
#define SMM_MMU_GATHER_H

#include "mm_types.h"

/*
 * Pages wait for the flush in batches: the first lives in the gather (on
 * its owner's stack), up to GATHER_MAX_BATCHES more are allocated as a
 * large zap needs them, as Linux's tlb_next_batch() does, so that a zap
 * shoots down once per ~8,700 pages instead of once per 512: each
 * shootdown interrupts every other CPU running the mm (membarrier). Not
 * when no other CPU runs the mm: the flush is then local and cheap, and
 * the pages are put while their metadata is still in the cache. If a
 * batch cannot be allocated the zap just flushes sooner.
 */
#define GATHER_BATCH	   512
#define GATHER_MAX_BATCHES 16
struct gather_batch {
	struct gather_batch *next;
	int nr;
	pfn_t pages[GATHER_BATCH];
};
struct mmu_gather {
	struct smm_mm *mm;
	bool need_flush;   /* entries cleared or downgraded */
	bool file_pending; /* counted in mm->zap_file_pending */
	bool freed_tables;
	int nr_batches;		     /* allocated beyond local */
	struct gather_batch *active; /* the one being filled */
	struct gather_batch local;
	/* Unlinked tables, linked through page->gather_next (NO_PFN ends
	 * the list): handed to RCU at tlb_finish_mmu(). */
	pfn_t tables;
};
/*
 * Or'ed into a queued page: a page-cache page whose entry was dirty. It is
 * marked dirty after the flush, when no CPU can store to it through the
 * old entry any more, so that a writeback that cleaned it meanwhile
 * cannot have missed a store (Linux forces a flush for the same reason).
 */
#define GATHER_DIRTY (1ULL << 63)
void tlb_gather_mmu(struct mmu_gather *tlb, struct smm_mm *mm);
/* Queue a page to put after the flush; true when the batch is full and
 * the caller must tlb_flush_mmu() before queueing more. */
bool tlb_remove_page(struct mmu_gather *tlb, pfn_t pfn);
/* Queue an unlinked table to free after the flush and a grace period.
 * O(1); allocates nothing, so it may be called under page-table locks. */
void tlb_remove_table(struct mmu_gather *tlb, pfn_t pfn);
void tlb_flush_mmu(struct mmu_gather *tlb);
void tlb_finish_mmu(struct mmu_gather *tlb);
void free_table_now(struct smm_pool *pool, pfn_t pfn);

#endif
