/*
 * pt_scheme.h - the PTE-table schemes: how a walker keeps a PTE table alive
 * while it uses it, and when an empty table is freed. One small interface,
 * one file per scheme (pt_scheme_*.c); an address space picks its scheme at
 * creation (smm_mm_opts.scheme), so one binary compares them.
 *
 * Walkers do not call the ops directly: they use pte_offset_map() /
 * pte_unmap() (semi-locked), pte_offset_map_lock() / pte_unmap_unlock()
 * (locked) from pgtable.h, which dispatch to the mm's scheme. Zaps report
 * each PTE table they finished with to ->zap_done(), which may free it.
 *
 * Locking: see docs/LOCKING.md, "PTE-table schemes".
 */
#ifndef SMM_PT_SCHEME_H
#define SMM_PT_SCHEME_H

#include "mm.h"

/* Why a range is being zapped: the schemes free tables for some only. */
enum zap_reason {
	ZAP_MUNMAP,	/* munmap, MAP_FIXED replacement */
	ZAP_DONTNEED,	/* MADV_DONTNEED */
	ZAP_PAGEOUT,	/* clean lazily-freed pages dropped (MADV_PAGEOUT) */
	ZAP_EXIT,	/* address space teardown: free_all_pgtables() follows */
};

struct pt_scheme_ops {
	const char *name;
	/*
	 * Called after a zap of [start, end) — all within the PTE table that
	 * covers @table_start, which the caller no longer holds locked — for
	 * @why. May unlink and free the table (and, for some schemes, the
	 * levels above) through @tlb. Never fails; may do nothing.
	 */
	void (*zap_done)(struct mmu_gather *tlb, uint64_t table_start,
			 uint64_t start, uint64_t end, enum zap_reason why);
};

extern const struct pt_scheme_ops pt_scheme_none;
extern const struct pt_scheme_ops pt_scheme_pt_reclaim;
extern const struct pt_scheme_ops pt_scheme_eager;
const struct pt_scheme_ops *pt_scheme_get(int scheme);

/*
 * Helpers the schemes share (pt_scheme.c).
 *
 * free_empty_pte_table - unlink the PTE table covering @addr if it holds
 * no entry, rechecking under the PMD-table lock and the table's own ptl
 * (with @scan, by looking at all 512 entries, as Linux does; otherwise by
 * the table's count). Returns true if it was unlinked and queued on @tlb.
 * free_empty_upper - after a PTE table went: free the PMD table above
 * @addr if it is now empty, then the PUD table if that is.
 */
bool free_empty_pte_table(struct mmu_gather *tlb, uint64_t addr, bool scan);
#ifdef SMM_DEBUG
extern void (*smm_debug_pt_free_hook)(struct smm_mm *mm, uint64_t addr);
#endif
void free_empty_upper(struct mmu_gather *tlb, uint64_t addr);

#endif
