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

/*
 * The walk of the semi-locked and locked classes and, with @alloc, of the
 * installing one: down to the PMD entry for @addr (installing what is
 * missing with @alloc), then the scheme's pte_map. Without @alloc, NULL
 * when there is no table or the scheme refused one (a table at zero holds
 * no entry). With @alloc, NULL only with *@err set (-ENOMEM): a table
 * being freed, or a parent that is (-EAGAIN), is waited out by walking
 * again, and a new one installed. Inline: each entry point is this with
 * @alloc constant.
 */
static inline __attribute__((always_inline)) pteval_t *
__pte_offset_map(struct smm_mm *mm, uint64_t addr, struct pt_walk *w,
		 bool alloc, int *err)
{
	pteval_t *pmdp, pmdval;
	int r;

	assert_fault_locked(mm);
	w->mm = mm;
	w->addr = addr;
	w->tlb = NULL;
	w->installing = alloc;
#ifdef SMM_DEBUG
	w->ptl = NULL;
#endif
	for (;; cpu_relax()) {
		if (alloc)
			*err = 0;
		w->installed = false;
		pt_walk_begin(mm);
		w->pmdp = pmdp = __walk_to_pmd(w, false, alloc, err);
		if (unlikely(!pmdp))
			goto none;
		pmdval = table_read(pmdp);
		if (unlikely(!pt_entry_table(pmdval))) {
			if (!alloc)
				goto none;
			*err = alloc_level(w, pmdp, 1, &pmdval);
			if (*err)
				goto none;
		}
		w->pmdval = pmdval;
		if (alloc && unlikely(w->installed) &&
		    (mm->pt_flags & PTF_INSTALL_MAPS)) {
			/* pte_install kept it for us: the map_rcu section
			 * is ours to end. */
			if (mm->pt_flags & PTF_MAP_RCU)
				urcu_memb_read_unlock();
		} else {
			/* The scheme's pte_map may reread the entry. */
			r = scheme_pte_map(w);
			if (unlikely(r <= 0)) {
				/* -EAGAIN: the scheme waited; 0: the table
				 * is at zero (refcount), and its freer
				 * unlinks it at once: an installer walks
				 * again and installs a new one. */
				if (r == -EAGAIN || alloc)
					continue;
				return NULL;
			}
		}
		check_locked_entry(w, w->pmdval);
		return pt_walk_pte(mm, w->pmdval, addr);
none:
		pt_walk_end(mm);
		if (!alloc || *err != -EAGAIN)
			return NULL;
	}
}

pteval_t *pte_offset_map(struct smm_mm *mm, uint64_t addr, struct pt_walk *w)
{
	return __pte_offset_map(mm, addr, w, false, NULL);
}

pteval_t *pte_offset_map_lock(struct smm_mm *mm, uint64_t addr,
			      struct pt_walk *w)
{
	pteval_t *pte;

	for (;;) {
		pte = __pte_offset_map(mm, addr, w, false, NULL);
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
	return __pte_offset_map(mm, addr, w, true, err);
}

int pmd_alloc(struct smm_mm *mm, uint64_t addr)
{
	struct pt_walk w = {
		.mm = mm,
		.addr = addr,
		.installing = true,
	};
	int err;

	assert_fault_locked(mm);
	do {
		err = 0;
		w.installed = false;
		pt_walk_begin(mm);
		__walk_to_pmd(&w, false, true, &err);
		pt_walk_end(mm);
	} while (err == -EAGAIN);
	return err;
}

static inline unsigned int level_index(uint64_t addr, int level)
{
	return (addr >> (PAGE_SHIFT + 9 * (level - 1))) & 511;
}

pteval_t *pt_upper_entry(struct smm_mm *mm, uint64_t addr, int level)
{
	pteval_t *table = mm->pgd, *entryp;

	mmap_assert_write_locked(mm);
	for (int l = 4;; l--) {
		entryp = &table[level_index(addr, l)];
		if (!pt_entry_table(table_read(entryp)))
			return NULL;
		if (l == level)
			return entryp;
		table = table_virt(mm->pool, table_read(entryp));
	}
}

pteval_t *pt_upper_alloc(struct smm_mm *mm, uint64_t addr, int level)
{
	struct pt_walk w = { .mm = mm, .addr = addr, .installing = true };
	pteval_t *table, e;
	int err;

	mmap_assert_write_locked(mm);
	do {
		table = mm->pgd;
		err = 0;
		pt_walk_begin(mm);
		for (int l = 4; l > level; l--) {
			pteval_t *entryp = &table[level_index(addr, l)];

			e = table_read(entryp);
			if (!pt_entry_table(e)) {
				err = alloc_level(&w, entryp, l - 1, &e);
				if (err)
					break;
			}
			table = table_virt(mm->pool, e);
		}
		pt_walk_end(mm);
	} while (err == -EAGAIN);
	return err ? NULL : &table[level_index(addr, level)];
}
