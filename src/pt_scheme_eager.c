/*
 * pt_scheme_eager.c - scheme "eager", softmm's own and the default: every
 * zap that leaves a PTE table empty frees it, whatever its size and
 * alignment — MADV_DONTNEED of any range, clean lazily-freed pages dropped
 * (MADV_PAGEOUT), munmap of part of a table that other VMAs still share —
 * and then the PMD and PUD tables above if they became empty too.
 * Emptiness is the table's count of non-none entries: O(1), no scan.
 *
 * Locking: as free_empty_pte_table() and free_empty_upper() in
 * pt_scheme.c; the count is read without a lock first (a cheap filter)
 * and decided again under the locks.
 */
#include "pt_scheme.h"

static void eager_zap_done(struct mmu_gather *tlb, uint64_t table_start,
			   uint64_t start, uint64_t end, enum zap_reason why)
{
	struct smm_mm *mm = tlb->mm;
	pteval_t *pte;
	pfn_t pfn;
	bool empty;

	if (why == ZAP_EXIT)
		return;		/* free_all_pgtables() follows */
	pte = pte_offset_map(mm, table_start, &pfn);
	if (!pte)
		return;
	empty = atomic_load_explicit(&pfn_to_page(mm->pool, pfn)->pt_count,
				     memory_order_relaxed) == 0;
	pte_unmap(pte);
	if (empty && free_empty_pte_table(tlb, table_start, false))
		free_empty_upper(tlb, table_start);
}

const struct pt_scheme_ops pt_scheme_eager = {
	.name = "eager",
	.zap_done = eager_zap_done,
};
