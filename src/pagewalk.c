/*
 * pagewalk.c - the semi-locked and locked walker classes. The lockless
 * class, on the hardware walk's path, and the range iterator, which each
 * caller instantiates with its own callbacks, are inline in pagewalk.h.
 *
 * Locking: callers hold mmap_lock or a VMA lock (asserted); the locked
 * class takes the PTE table's ptl and rechecks the PMD entry under it; the
 * scheme's hooks add what the scheme needs (pt_scheme.h).
 */
#include <errno.h>
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

/*
 * The scheme's pte_map for the table @w found: 1 kept, 0 no table (the
 * walk's RCU section ended), -EAGAIN walk again (likewise). With map_rcu
 * the hook ends the section itself; with walk_rcu it lasts until
 * pte_unmap.
 */
static inline __attribute__((always_inline)) int
scheme_pte_map(struct pt_walk *w)
{
	struct smm_mm *mm = w->mm;
	int r;

	if (likely(!(mm->pt_flags & PTF_PTE_MAP)) || !mm->pt_ops->pte_map)
		return 1;
	r = mm->pt_ops->pte_map(w);
	if (r <= 0 && (mm->pt_flags & PTF_WALK_RCU))
		urcu_memb_read_unlock();
	return r;
}

static inline __attribute__((always_inline)) pteval_t *
__pte_offset_map(struct smm_mm *mm, uint64_t addr, struct pt_walk *w)
{
	pteval_t *pmdp, pmdval;
	int r;

	assert_fault_locked(mm);
	w->mm = mm;
	w->addr = addr;
	w->tlb = NULL;
	w->installing = false;
	w->installed = false;
#ifdef SMM_DEBUG
	w->ptl = NULL;
#endif
again:
	pt_walk_begin(mm);
	w->pmdp = pmdp = walk_to_pmd(w);
	if (likely(pmdp)) {
		w->pmdval = pmdval = table_read(pmdp);
		if (likely(pt_entry_table(pmdval))) {
			/* The scheme's pte_map may reread the entry. */
			r = scheme_pte_map(w);
			if (unlikely(r <= 0)) {
				if (r == -EAGAIN)
					goto again;
				return NULL;
			}
			pmdval = w->pmdval;
			check_locked_entry(w, pmdval);
			return pt_walk_pte(mm, pmdval, addr);
		}
	}
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

	for (;;) {
		pte = __pte_offset_map(mm, addr, w);
		if (!pte)
			return NULL;
		race_point();
		/*
		 * The table may have been unlinked (and queued for freeing)
		 * between reading the PMD entry and taking its lock: the
		 * scheme keeps it valid memory, but it is no longer ours to
		 * change. A freer unlinks only while holding this ptl (or,
		 * under refcount and pmd-rwsem, only tables no walker
		 * keeps), so once the PMD entry still points at it under
		 * the lock, it stays linked until we unlock (Linux's
		 * recheck since 6.5).
		 */
		if (likely(pte_map_lock(w)))
			return pte;
		pte_unmap(w);
	}
}

pteval_t *pte_alloc_map(struct smm_mm *mm, uint64_t addr, struct pt_walk *w,
			int *err)
{
	pteval_t *pmdp, pmdval;
	int r;

	assert_fault_locked(mm);
	w->mm = mm;
	w->addr = addr;
	w->tlb = NULL;
	w->installing = true;
#ifdef SMM_DEBUG
	w->ptl = NULL;
#endif
	for (;; cpu_relax()) {
		*err = 0;
		w->installed = false;
		pt_walk_begin(mm);
		w->pmdp = pmdp = __walk_to_pmd(w, false, true, err);
		if (unlikely(!pmdp))
			goto end;
		pmdval = table_read(pmdp);
		if (unlikely(!pt_entry_table(pmdval))) {
			*err = alloc_level(w, pmdp, 1, &pmdval);
			if (*err)
				goto end;
		}
		w->pmdval = pmdval;
		if (unlikely(w->installed) &&
		    (mm->pt_flags & PTF_INSTALL_MAPS)) {
			/* pte_install kept it for us: the map_rcu section
			 * is ours to end. */
			if (mm->pt_flags & PTF_MAP_RCU)
				urcu_memb_read_unlock();
		} else {
			r = scheme_pte_map(w);
			/*
			 * 0: the table we found is being freed (refcount: its
			 * count reached zero). The freer unlinks it at once;
			 * walk again and install a new one.
			 */
			if (unlikely(r <= 0))
				continue;
		}
		check_locked_entry(w, w->pmdval);
		return pt_walk_pte(mm, w->pmdval, addr);
end:
		pt_walk_end(mm);
		if (*err != -EAGAIN)
			return NULL;
	}
}
