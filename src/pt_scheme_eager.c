/*
 * pt_scheme_eager.c - scheme "eager", softmm's own and the default: every
 * zap that leaves a PTE table empty frees it, whatever its size and
 * alignment — MADV_DONTNEED of any range, clean lazily-freed pages dropped
 * (MADV_PAGEOUT), munmap of part of a table that other VMAs still share —
 * and then the PMD and PUD tables above if they became empty too.
 * Emptiness is the table's count of non-none entries: O(1), no scan.
 *
 * Walkers: semi-locked and locked walkers walk under the RCU read lock,
 * from the PGD down (upper levels are freed too); installers refuse a
 * parent table marked dead. Lockless walkers need only their access
 * section.
 *
 * Locking: as free_empty_pte_table() and free_empty_upper() in
 * pt_scheme.c; the count is read without a lock first (a cheap filter)
 * and decided again under the locks.
 */
#include "pagewalk.h"

static void eager_zap_leave(struct mmu_gather *tlb, struct pt_walk *w,
			    uint64_t start, uint64_t end, enum zap_reason why)
{
	if (!zap_left_empty(tlb, w, why))
		return;
	if (free_empty_pte_table(tlb, start, false))
		free_empty_upper(tlb, start);
}

const struct pt_scheme_ops pt_scheme_eager = {
	.name = "eager",
	.walk_rcu = true,
	.pte_install = pt_install_alive,
	.zap_leave = eager_zap_leave,
};
