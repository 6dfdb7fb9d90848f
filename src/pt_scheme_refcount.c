/*
 * pt_scheme_refcount.c - scheme "refcount", after Qi Zheng's "Free user PTE
 * page table pages" (v3, 2021): every PTE table carries an atomic count,
 * pte_refcount, of its non-none entries plus the walkers that map it. A
 * semi-locked, locked or installing walker takes a reference with
 * pte_try_get() before it uses the table and drops it with pte_put(); an
 * entry installed raises the count and an entry cleared lowers it
 * (pte_table_add). Whoever takes the count to zero unlinks the table under
 * the PMD-table lock and frees it through an mmu_gather (TLB flush, then
 * RCU). So every path that empties a table frees it: MADV_DONTNEED of any
 * size, lazily-freed pages dropped, the part of a table a munmap clears.
 * PMD and PUD tables are freed only by munmap and exit, as in v3.
 *
 * Zero is final. pte_try_get() never raises a count from zero, so a table
 * at zero has no entry, no walker, and no way to get either: the walker
 * that reached zero may unlink it without rechecking, and a walker that
 * finds it there treats the range as having no table (an installer walks
 * again and installs a new one: seed 003's race, tests/test_reclaim.c).
 *
 * Walkers: RCU from the PGD until the reference is taken (map_rcu), so
 * that the table's page cannot be freed and reused between reading the PMD
 * entry and incrementing its count; after that the reference alone keeps
 * the table linked (keeps_linked). A table an installer put in starts at
 * one, the installer's reference (install_maps). Lockless walkers keep
 * their access section: a table is freed only after a shootdown.
 *
 * Locking: the count is atomic; unlinking takes the PMD table's lock
 * (which guards PMD entries), no ptl (nobody at zero can hold it).
 */
#include "pagewalk.h"

/* Increment @table's count unless it is zero; true if it did. */
static inline bool pte_try_get(struct page *table)
{
	int c = atomic_load_explicit(&table->pte_refcount,
				     memory_order_relaxed);

	do {
		if (c <= 0)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(
		&table->pte_refcount, &c, c + 1, memory_order_acquire,
		memory_order_relaxed));
	return true;
}

static int refcount_pte_map(struct pt_walk *w)
{
	struct page *table = pfn_to_page(w->mm->pool, pte_pfn(w->pmdval));
	bool got;

#ifdef SMM_BUG_REFCOUNT_NO_TRYGET
	/*
	 * Planted bug (docs/SCHEMES.md): faults use a table they found
	 * without a reference. The torture must catch it.
	 */
	if (w->installing) {
		urcu_memb_read_unlock();
		return 1;
	}
#endif
	got = pte_try_get(table);
	race_point();
	/* Referenced, or at zero (being unlinked): RCU has done its part. */
	urcu_memb_read_unlock();
	return got;
}

/*
 * The count reached zero: unlink the table, queue it on the walk's gather
 * (a zap's), or on one of our own that we finish here. The caller holds no
 * page-table lock; a flush may wait for other CPUs.
 */
static __attribute__((noinline)) void refcount_free_table(struct pt_walk *w)
{
	struct smm_mm *mm = w->mm;
	struct page *pmd_page = virt_to_page(mm->pool, w->pmdp);
	struct mmu_gather own, *tlb = w->tlb;

#ifdef SMM_DEBUG
	if (smm_debug_pt_free_hook)
		smm_debug_pt_free_hook(mm, w->addr);
#endif
	race_point();
	if (!tlb) {
		tlb = &own;
		tlb_gather_mmu(tlb, mm);
	}
	spin_lock_class(&pmd_page->ptl, LC_PMD);
	/*
	 * No recheck of the count: zero is final. Nor of the entry: only
	 * the walker that reached zero unlinks a PTE table under this
	 * scheme (munmap's free_pgd_range() finds none at zero, and none
	 * with a count in the ranges it frees).
	 */
	BUG_ON(table_read(w->pmdp) != w->pmdval);
	unlink_table(tlb, w->pmdp);
	spin_unlock(&pmd_page->ptl);
	atomic_fetch_add_explicit(&mm->pt_reclaimed, 1, memory_order_relaxed);
	if (tlb == &own)
		tlb_finish_mmu(&own);
}

/* pte_put(): drop the walker's reference; the last one frees the table. */
static void refcount_pte_unmap(struct pt_walk *w)
{
	struct page *table = pfn_to_page(w->mm->pool, pte_pfn(w->pmdval));

#ifdef SMM_BUG_REFCOUNT_NO_TRYGET
	/* Installers took a reference only on a table they installed. */
	if (w->installing && !w->installed)
		return;
#endif
	/* Release: our use of the table happens before its freeing;
	 * acquire: the freer sees every walker's. */
	if (atomic_fetch_sub_explicit(&table->pte_refcount, 1,
				      memory_order_acq_rel) == 1)
		refcount_free_table(w);
}

/*
 * A new PTE table starts at one: the reference of the installer, which
 * uses it without pte_map (install_maps). Published by the entry's release
 * store. Upper tables are never freed under mmap_lock held for read here.
 */
static bool refcount_pte_install(struct pt_walk *w, struct page *parent,
				 struct page *table)
{
	VM_BUG_ON(atomic_load(&parent->flags) & PG_PT_DEAD);
	if (table->pt_level == 1)
		atomic_store_explicit(&table->pte_refcount, 1,
				      memory_order_relaxed);
	return true;
}

const struct pt_scheme_ops pt_scheme_refcount = {
	.name = "refcount",
	.map_rcu = true,
	.pte_refcount = true,
	.keeps_linked = true,
	.install_maps = true,
	.pte_map = refcount_pte_map,
	.pte_unmap = refcount_pte_unmap,
	.pte_install = refcount_pte_install,
};
