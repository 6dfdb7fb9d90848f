/*
 * pt_scheme.c - what the PTE-table schemes share: the table of schemes,
 * scheme "none" (Linux before 6.14: empty tables go only at munmap and
 * exit, and no walker needs more than its mmap or VMA lock), the RCU walk
 * protection of the reclaim schemes, and the two careful steps of freeing
 * an empty table under mmap_lock held for read: unlinking a PTE table, and
 * the levels above.
 *
 * Locking: unlinking a PTE table takes the PMD-table lock, then the PTE
 * table's ptl, and rechecks under both that the table is still linked and
 * still empty (a table refilled while no lock was held must never be
 * freed: the 2025 Linux bug). Unlinking a PMD or PUD table takes
 * page_table_lock (which guards PUD and PGD entries), then the PMD table's
 * lock. Unlinked tables are marked PG_PT_DEAD under those locks, so an
 * installer holding the same lock sees the mark and retries its walk; they
 * are freed after the TLB flush and an RCU grace period (mmu_gather).
 */
#include <errno.h>
#include <string.h>
#include "pagewalk.h"

const struct pt_scheme_ops pt_scheme_none = {
	.name = "none",
};

static const struct pt_scheme_ops *const schemes[SMM_SCHEME_COUNT] = {
	[SMM_SCHEME_NONE] = &pt_scheme_none,
	[SMM_SCHEME_PT_RECLAIM] = &pt_scheme_pt_reclaim,
	[SMM_SCHEME_EAGER] = &pt_scheme_eager,
	[SMM_SCHEME_REFCOUNT] = &pt_scheme_refcount,
	[SMM_SCHEME_PMD_RWSEM] = &pt_scheme_pmd_rwsem,
};

const struct pt_scheme_ops *pt_scheme_get(int scheme)
{
	return schemes[scheme];
}

SMM_API int smm_scheme_from_name(const char *name)
{
	for (int i = 0; i < SMM_SCHEME_COUNT; i++)
		if (name && !strcmp(name, schemes[i]->name))
			return i;
	return -EINVAL;
}

SMM_API const char *smm_scheme_name(int scheme)
{
	if (scheme < 0 || scheme >= SMM_SCHEME_COUNT)
		return NULL;
	return schemes[scheme]->name;
}

bool pt_install_alive(struct pt_walk *w, struct page *parent,
		      struct page *table)
{
	return !(atomic_load(&parent->flags) & PG_PT_DEAD);
}

bool zap_left_empty(struct mmu_gather *tlb, struct pt_walk *w,
		    enum zap_reason why)
{
	struct page *table = pfn_to_page(tlb->mm->pool, pte_pfn(w->pmdval));

	return why != ZAP_EXIT &&
	       !atomic_load_explicit(&table->pt_count, memory_order_relaxed);
}

static bool table_is_empty(pteval_t *pte, struct page *page, bool scan)
{
	if (!scan)
		return atomic_load_explicit(&page->pt_count,
					    memory_order_relaxed) == 0;
	for (int i = 0; i < PTRS_PER_TABLE; i++)
		if (!pte_none(pte_read(&pte[i])))
			return false;
	return true;
}

#ifdef SMM_DEBUG
/* Test hook: runs after a zap saw a table empty, before the locks are
 * taken — where a concurrent fault may refill it (tests/test_reclaim.c). */
void (*smm_debug_pt_free_hook)(struct smm_mm *mm, uint64_t addr);
#endif

bool free_empty_pte_table(struct mmu_gather *tlb, uint64_t addr, bool scan)
{
	struct smm_mm *mm = tlb->mm;
	struct smm_pool *pool = mm->pool;
	struct page *pmd_page;
	spinlock_t *ptl;
	struct pt_walk w;
	bool freed = false;

#ifdef SMM_DEBUG
	if (smm_debug_pt_free_hook)
		smm_debug_pt_free_hook(mm, addr);
#endif
	race_point();
	if (!pte_offset_map(mm, addr, &w))
		return false;
	pmd_page = virt_to_page(pool, w.pmdp);
	spin_lock_class(&pmd_page->ptl, LC_PMD);
	/* The PMD table itself may have gone meanwhile (eager frees it). */
	if (!(atomic_load(&pmd_page->flags) & PG_PT_DEAD) &&
	    table_read(w.pmdp) == w.pmdval) {
		ptl = pte_lockptr(pool, w.pmdval);
		spin_lock_class(ptl, LC_PTE);
		/*
		 * The recheck that matters: the caller saw the table empty
		 * with no lock held; a fault may have filled it since. Only
		 * under both locks is "empty" final: a fault needs the ptl
		 * to fill it, and the PMD lock to install a new table.
		 */
		if (table_is_empty(table_virt(pool, w.pmdval),
				   pfn_to_page(pool, pte_pfn(w.pmdval)),
				   scan)) {
			unlink_table(tlb, w.pmdp);
			freed = true;
		}
		spin_unlock(ptl);
	}
	spin_unlock(&pmd_page->ptl);
	pte_unmap(&w);
	if (freed)
		atomic_fetch_add(&mm->pt_reclaimed, 1);
	return freed;
}

/*
 * Under page_table_lock the PGD and PUD entries for @addr cannot change,
 * so the PUD and PMD tables they point at stay linked and need no RCU.
 */
void free_empty_upper(struct mmu_gather *tlb, uint64_t addr)
{
	struct smm_mm *mm = tlb->mm;
	struct smm_pool *pool = mm->pool;
	pteval_t *pgdp = &mm->pgd[pgd_index(addr)], *pudp, e;
	struct page *pud_page, *pmd_page;
	long freed = 0;

	spin_lock_class(&mm->page_table_lock, LC_PAGE_TABLE);
	e = table_read(pgdp);
	if (!pt_entry_table(e))
		goto out;
	pud_page = pfn_to_page(pool, pte_pfn(e));
	pudp = &table_virt(pool, e)[pud_index(addr)];
	e = table_read(pudp);
	if (pt_entry_table(e)) {
		pmd_page = pfn_to_page(pool, pte_pfn(e));
		/* PMD entries change under the PMD table's lock. */
		spin_lock_class(&pmd_page->ptl, LC_PMD);
		if (atomic_load(&pmd_page->pt_count) == 0) {
			unlink_table(tlb, pudp);
			freed++;
		}
		spin_unlock(&pmd_page->ptl);
	}
	/* PUD entries change under page_table_lock, which we hold. */
	if (atomic_load(&pud_page->pt_count) == 0) {
		unlink_table(tlb, pgdp);
		freed++;
	}
out:
	spin_unlock(&mm->page_table_lock);
	if (freed)
		atomic_fetch_add(&mm->pt_reclaimed, freed);
}
