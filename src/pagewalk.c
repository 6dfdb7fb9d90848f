/*
 * pagewalk.c - the semi-locked and locked walker classes. The lockless
 * class, on the hardware walk's path, and the range iterator, which each
 * caller instantiates with its own callbacks, are inline in pagewalk.h.
 *
 * Locking: callers hold mmap_lock or a VMA lock (asserted); the locked
 * class takes the PTE table's ptl and rechecks the PMD entry under it; the
 * scheme's hooks add what the scheme needs (pt_scheme.h).
 */
#include "pagewalk.h"

void pt_bad_entry(struct pt_walk *w, pteval_t e)
{
	fprintf(stderr,
		"softmm: walk of %#llx read a corrupt or poisoned "
		"table entry %#llx\n",
		(unsigned long long)w->addr, (unsigned long long)e);
	BUG_ON(1);
	abort();
}

static inline __attribute__((always_inline)) pteval_t *
__pte_offset_map(struct smm_mm *mm, uint64_t addr, struct pt_walk *w)
{
	pteval_t *pmdp, pmdval;

	assert_fault_locked(mm);
	w->mm = mm;
	w->addr = addr;
#ifdef SMM_DEBUG
	w->ptl = NULL;
#endif
	pt_walk_begin(mm);
	w->pmdp = pmdp = walk_to_pmd(w);
	if (likely(pmdp)) {
		w->pmdval = pmdval = table_read(pmdp);
		if (likely(pt_entry_table(pmdval))) {
			/* The scheme's pte_map may reread the entry. */
			if (unlikely(mm->pt_flags & PTF_PTE_MAP) &&
			    mm->pt_ops->pte_map) {
				if (!mm->pt_ops->pte_map(w))
					goto none;
				pmdval = w->pmdval;
			}
			check_locked_entry(w, pmdval);
			return pt_walk_pte(mm, pmdval, addr);
		}
	}
none:
	pt_walk_end(mm);
	return NULL;
}

pteval_t *pte_offset_map(struct smm_mm *mm, uint64_t addr, struct pt_walk *w)
{
	return __pte_offset_map(mm, addr, w);
}

pteval_t *pte_offset_map_lock(struct smm_mm *mm, uint64_t addr,
			      struct pt_walk *w)
{
	pteval_t *pte;
	spinlock_t *ptl;

	for (;;) {
		pte = __pte_offset_map(mm, addr, w);
		if (!pte)
			return NULL;
		ptl = pte_lockptr(mm->pool, w->pmdval);
		race_point();
		spin_lock_class(ptl, LC_PTE);
		/*
		 * The table may have been unlinked (and queued for freeing)
		 * between reading the PMD entry and taking its lock: the
		 * scheme keeps it valid memory, but it is no longer ours to
		 * change. A freer unlinks only while holding this ptl, so
		 * once the PMD entry still points at it under the lock, it
		 * stays linked until we unlock (Linux's recheck since 6.5).
		 */
		if (likely(table_read(w->pmdp) == w->pmdval)) {
			w->ptl = ptl;
			return pte;
		}
		spin_unlock(ptl);
		pte_unmap(w);
	}
}
