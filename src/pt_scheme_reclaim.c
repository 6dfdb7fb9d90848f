/*
 * pt_scheme_reclaim.c - scheme "pt-reclaim": Linux 6.14+'s
 * CONFIG_PT_RECLAIM, exactly, so that the kernel oracle agrees byte for
 * byte. Only MADV_DONTNEED frees tables, and only a table that one zap
 * covered whole (all 2 MiB of it, inside one VMA) and left with all 512
 * entries none, found by scanning them under the PMD lock and the ptl.
 * Not MADV_FREE or page reclaim, not munmap of part of a table, not tables
 * a smaller or unaligned zap emptied, never PMD or PUD tables.
 *
 * Walkers: semi-locked and locked walkers hold the RCU read lock while a
 * PTE table is mapped (Linux's pte_offset_map()); upper levels are never
 * freed under mmap_lock held for read, so installers need no check.
 *
 * Locking: as free_empty_pte_table() in pt_scheme.c.
 */
#include "pagewalk.h"

static void reclaim_zap_leave(struct mmu_gather *tlb, struct pt_walk *w,
			      uint64_t start, uint64_t end, enum zap_reason why)
{
	if (why != ZAP_DONTNEED || (start & ~PMD_MASK) ||
	    end - start != PMD_SIZE)
		return;
	free_empty_pte_table(tlb, start, true);
}

const struct pt_scheme_ops pt_scheme_pt_reclaim = {
	.name = "pt-reclaim",
	.walk_rcu = true,
	.zap_leave = reclaim_zap_leave,
};
