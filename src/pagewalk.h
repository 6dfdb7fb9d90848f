/*
 * pagewalk.h - the one walk from the PGD down to a PTE table, one entry
 * point per walker class, and the range iterator (walk_page_range_vma)
 * that zap, MADV_FREE, MADV_PAGEOUT and mprotect are built on.
 *
 * The walker classes (Jason Gunthorpe's, refined by David Hildenbrand):
 *
 *   locked       mmap_lock or a VMA lock, and the PTE table's ptl:
 *                pte_offset_map_lock() .. pte_unmap_unlock(). Faults
 *                installing a PTE, zap, mprotect, MADV_FREE, slow GUP.
 *   semi-locked  mmap_lock or a VMA lock, no ptl: pte_offset_map() ..
 *                pte_unmap(). mincore, populate's peek, the schemes'
 *                reclaim helpers. The table may be unlinked while mapped;
 *                it then stays valid memory and reads as empty.
 *   lockless     nothing but the calling CPU's access section:
 *                pte_offset_lockless() .. pte_lockless_end(). The
 *                hardware walk, GUP-fast.
 *
 * All of them go from the PGD to the PMD entry through walk_to_pmd(), and
 * call the mm's scheme (pt_scheme.h) where it must protect them. Only
 * walkers holding mmap_lock for write may walk outside VMAs.
 *
 * State: a struct pt_walk on the walker's stack; no locks of its own.
 */
#ifndef SMM_PAGEWALK_H
#define SMM_PAGEWALK_H

#include "pt_scheme.h"
#include "tlb.h"

/* One walk's position and what it holds. */
struct pt_walk {
	struct smm_mm *mm;
	uint64_t addr;
	pteval_t *pmdp;	 /* the PMD entry for @addr, once reached */
	pteval_t pmdval; /* its value when the PTE table was mapped */
	spinlock_t *ptl; /* the PTE table's lock, while held */
	/* Where pte_unmap queues a table it frees (a zap's gather), or
	 * NULL: it then flushes one of its own. */
	struct mmu_gather *tlb;
	bool installing; /* the installing class (pte_alloc_map) */
	bool installed;	 /* pte_alloc_map installed the PTE table itself */
};

void pt_bad_entry(struct pt_walk *w, pteval_t e) __attribute__((noreturn));

static inline unsigned int pt_scheme_flags(const struct pt_scheme_ops *ops)
{
	/*
	 * The interface's rules between hooks: a scheme that frees tables
	 * when a zap leaves them, under mmap_lock held for read, must
	 * protect the semi-locked and locked walkers that may be on them
	 * (walk_rcu, or a pte_map of its own); map_rcu ends in pte_map;
	 * install_maps and the entry count are pte_map's and pte_unmap's.
	 */
	BUG_ON(ops->zap_leave && !ops->walk_rcu && !ops->pte_map);
	BUG_ON(ops->map_rcu && (ops->walk_rcu || !ops->pte_map));
	BUG_ON((ops->install_maps || ops->pte_refcount) &&
	       (!ops->pte_map || !ops->pte_unmap));
	return (ops->walk_rcu ? PTF_WALK_RCU : 0) |
	       (ops->map_rcu ? PTF_MAP_RCU : 0) |
	       (ops->lockless_begin || ops->lockless_end ? PTF_LOCKLESS : 0) |
	       (ops->pte_map || ops->pte_unmap ? PTF_PTE_MAP : 0) |
	       (ops->pte_refcount ? PTF_REFCOUNT : 0) |
	       (ops->keeps_linked ? PTF_KEEPS_LINKED : 0) |
	       (ops->install_maps ? PTF_INSTALL_MAPS : 0);
}

/* The start and end of a semi-locked, locked or installing walk's RCU
 * section (walk_rcu: until pte_unmap; map_rcu: until pte_map). */
static inline __attribute__((always_inline)) void
pt_walk_begin(struct smm_mm *mm)
{
	if (mm->pt_flags & (PTF_WALK_RCU | PTF_MAP_RCU))
		urcu_memb_read_lock();
}

static inline __attribute__((always_inline)) void pt_walk_end(struct smm_mm *mm)
{
	if (mm->pt_flags & (PTF_WALK_RCU | PTF_MAP_RCU))
		urcu_memb_read_unlock();
}

/*
 * A table entry must point into the pool; a poisoned or corrupt table
 * does not (a use after free, reported at once). Lockless walkers check
 * always: they are the ones a table freed too early would hurt first.
 * Walkers under locks check in debug builds.
 */
static inline void check_table_entry(struct pt_walk *w, pteval_t e)
{
	if (unlikely(pte_pfn(e) >= w->mm->pool->nr_frames))
		pt_bad_entry(w, e);
}
#ifdef SMM_DEBUG
#define check_locked_entry(w, e) check_table_entry(w, e)
#else
#define check_locked_entry(w, e) \
	do {                     \
	} while (0)
#endif

/*
 * The one walk: from the PGD to the PMD entry for @w->addr. Without @alloc
 * it returns NULL if a level is missing; with it (installing walkers, under
 * mmap_lock or a VMA lock) it installs missing levels and returns NULL only
 * with *@err set (-ENOMEM, or -EAGAIN: walk again). The caller's class keeps
 * the tables it passes through valid memory; @lockless says it is the
 * lockless class.
 */
static inline __attribute__((always_inline)) pteval_t *
__walk_to_pmd(struct pt_walk *w, bool lockless, bool alloc, int *err)
{
	/*
	 * Locals: the acquire loads order memory, so the compiler would
	 * reload anything it read through @w or the mm at every level.
	 */
	struct smm_mm *mm = w->mm;
	uint8_t *base = mm->pool->base;
	uint64_t addr = w->addr;
	pteval_t *table = mm->pgd, *entryp, e;

	for (int level = 4; level > 2; level--) {
		entryp = &table[(addr >> (PAGE_SHIFT + 9 * (level - 1))) & 511];
		e = table_read(entryp);
		if (unlikely(!pt_entry_table(e))) {
			if (!alloc)
				return NULL;
			*err = alloc_level(w, entryp, level - 1, &e);
			if (*err)
				return NULL;
		}
		if (lockless)
			check_table_entry(w, e);
		else
			check_locked_entry(w, e);
		table = (pteval_t *)(base + (e & PTE_PFN_MASK));
		race_point();
	}
	return &table[pmd_index(addr)];
}

static inline __attribute__((always_inline)) pteval_t *
walk_to_pmd(struct pt_walk *w)
{
	return __walk_to_pmd(w, false, false, NULL);
}

/* The entry for @addr in the PTE table the PMD entry @pmdval points at. */
static inline pteval_t *pt_walk_pte(struct smm_mm *mm, pteval_t pmdval,
				    uint64_t addr)
{
	return (pteval_t *)(mm->pool->base + (pmdval & PTE_PFN_MASK)) +
	       pte_index(addr);
}

static inline __attribute__((always_inline)) void
pte_lockless_end(struct pt_walk *w)
{
	struct smm_mm *mm = w->mm;

	if (unlikely(mm->pt_flags & PTF_LOCKLESS) && mm->pt_ops->lockless_end)
		mm->pt_ops->lockless_end(w);
}

/*
 * pte_offset_lockless - lockless walkers, inside the calling CPU's access
 * section on @mm: the entry for @addr in its PTE table, or NULL if there
 * is no table (nothing to end then). The table stays valid memory until
 * pte_lockless_end(), which must come before the section ends; its
 * entries may change at any time (read them with table_read() and recheck
 * whatever a decision depends on).
 */
static inline __attribute__((always_inline)) pteval_t *
pte_offset_lockless(struct smm_mm *mm, uint64_t addr, struct pt_walk *w)
{
	pteval_t *pmdp, pmdval;

	VM_BUG_ON(!in_access_section());
	w->mm = mm;
	w->addr = addr;
	if (unlikely(mm->pt_flags & PTF_LOCKLESS) && mm->pt_ops->lockless_begin)
		mm->pt_ops->lockless_begin(w);
	w->pmdp = pmdp = __walk_to_pmd(w, true, false, NULL);
	if (likely(pmdp)) {
		w->pmdval = pmdval = table_read(pmdp);
		if (likely(pt_entry_table(pmdval))) {
			check_table_entry(w, pmdval);
			return pt_walk_pte(mm, pmdval, addr);
		}
	}
	pte_lockless_end(w);
	return NULL;
}

/*
 * pte_offset_map - semi-locked walkers, holding mmap_lock or a VMA lock
 * covering @addr: the entry for @addr in its PTE table, mapped (the scheme
 * keeps the table valid memory) until pte_unmap(); or NULL if there is no
 * table, or the scheme refused one being freed. Entries may change under a
 * semi-locked walker; the table may even be unlinked, and then reads as
 * empty.
 */
pteval_t *pte_offset_map(struct smm_mm *mm, uint64_t addr, struct pt_walk *w);

static inline __attribute__((always_inline)) void pte_unmap(struct pt_walk *w)
{
	struct smm_mm *mm = w->mm;
	unsigned int flags = mm->pt_flags;

	VM_BUG_ON(w->ptl);
	if (unlikely(flags & PTF_PTE_MAP) && mm->pt_ops->pte_unmap)
		mm->pt_ops->pte_unmap(w);
	if (flags & PTF_WALK_RCU)
		urcu_memb_read_unlock();
}

/*
 * pte_alloc_map - installing walkers (faults), holding mmap_lock or a VMA
 * lock covering @addr: install the missing levels down to a PTE table for
 * @addr and map it, as pte_offset_map() does, until pte_unmap(). Returns
 * the entry for @addr, or NULL with *@err set to -ENOMEM. A table that is
 * being freed when the walk reaches it is waited out: the walk starts
 * again from the PGD and installs a new one.
 */
/*
 * pmd_alloc - install what is missing above @addr's PMD entry (the PUD and
 * PMD tables), not the PTE table: what Linux's __handle_mm_fault() does
 * before it looks at the entry, so that a file fault ending in a bus error
 * leaves those tables and no PTE table. mmap_lock or a VMA lock held.
 * 0 or -ENOMEM.
 */
int pmd_alloc(struct smm_mm *mm, uint64_t addr);

/*
 * For the walks that copy or move tables level by level, as Linux's
 * copy_page_range() and move_page_tables() do, with mmap_lock held for
 * write (no scheme frees an upper table meanwhile, so the entries found
 * stay valid until it is dropped):
 *
 * pt_upper_entry - the entry for @addr in its table of @level (3: a PUD
 * entry, 2: a PMD entry) if that entry points at a table, else NULL
 * (Linux's get_old_pud(), get_old_pmd()).
 *
 * pt_upper_alloc - the entry for @addr in its table of @level, installing
 * that table and those above it if missing, but not the table the entry
 * points at (pud_alloc(), pmd_alloc()). NULL if memory is short.
 */
pteval_t *pt_upper_entry(struct smm_mm *mm, uint64_t addr, int level);
pteval_t *pt_upper_alloc(struct smm_mm *mm, uint64_t addr, int level);
pteval_t *pte_alloc_map(struct smm_mm *mm, uint64_t addr, struct pt_walk *w,
			int *err);

/*
 * pte_map_lock - a walker that mapped @w's table (pte_offset_map or
 * pte_alloc_map) takes its ptl, and rechecks under it that the PMD entry
 * still points at the table: false (ptl not held, table still mapped) if
 * it does not, which only the schemes that keep tables by RCU alone allow
 * (the others, keeps_linked, promise it and debug builds assert it).
 */
static inline __attribute__((always_inline)) bool
pte_map_lock(struct pt_walk *w)
{
	spinlock_t *ptl = pte_lockptr(w->mm->pool, w->pmdval);

	spin_lock_class(ptl, LC_PTE);
	if (w->mm->pt_flags & PTF_KEEPS_LINKED) {
		/* The scheme keeps it linked: debug builds check. */
		VM_BUG_ON(table_read(w->pmdp) != w->pmdval);
	} else if (unlikely(table_read(w->pmdp) != w->pmdval)) {
		spin_unlock(ptl);
		return false;
	}
	w->ptl = ptl;
	return true;
}

/* Drop the ptl pte_map_lock() took; the table stays mapped. */
static inline __attribute__((always_inline)) void pte_unlock(struct pt_walk *w)
{
	spin_unlock(w->ptl);
#ifdef SMM_DEBUG
	w->ptl = NULL; /* for pte_unmap()'s check */
#endif
}

/*
 * pte_offset_map_lock - locked walkers: as pte_offset_map(), and with the
 * table's ptl held (@w->ptl), rechecked after taking it that the PMD entry
 * still points at the table (retrying if not), so that the table stays
 * linked, and its entries change only under our hands, until
 * pte_unmap_unlock(). NULL if there is no table.
 */
pteval_t *pte_offset_map_lock(struct smm_mm *mm, uint64_t addr,
			      struct pt_walk *w);

static inline __attribute__((always_inline)) void
pte_unmap_unlock(struct pt_walk *w)
{
	pte_unlock(w);
	pte_unmap(w);
}

/* ---- the range iterator ---- */

struct mm_walk;

/* What pte_entry returns. */
enum {
	WALK_CONTINUE,
	/* Drop the ptl, flush the walk's mmu_gather, go on with the next
	 * entry (the gather's page batch is full). */
	WALK_FLUSH,
};

struct mm_walk_ops {
	/*
	 * pte_entry - one entry of the range that is not none, with its PTE
	 * table mapped and locked (the locked class: the ptl is held and the
	 * table linked). @pte is the value read. Change the entry only
	 * through the setters of pgtable.h; count in @walk->nr_cleared the
	 * entries made none, and in @walk->rss / @walk->zero /
	 * @walk->rss_file the change to the mm's anonymous, zero-page and
	 * page-cache entries: the iterator applies them
	 * to the table's count (under the ptl) and to the mm's counters.
	 * Returns WALK_CONTINUE or WALK_FLUSH.
	 */
	int (*pte_entry)(struct mm_walk *walk, pteval_t *ptep, pteval_t pte,
			 uint64_t addr);
	/*
	 * pte_table_done - after the part [start, end) of the range that one
	 * PTE table covers, if there was a table: the table is neither
	 * mapped nor locked any more; @walk->pt says where it was found.
	 * May be NULL.
	 */
	void (*pte_table_done)(struct mm_walk *walk, uint64_t start,
			       uint64_t end);
};

struct mm_walk {
	struct smm_mm *mm;
	struct vm_area_struct *vma;
	struct mmu_gather *tlb; /* for WALK_FLUSH, and what pte_entry frees */
	enum zap_reason zap;	/* zaps: why, for the scheme's zap_leave */
	/*
	 * The caller holds the VMA's file's i_mmap_lock instead of mmap_lock
	 * (truncation, unmap_mapping_range): the VMA's range cannot change,
	 * and the zap leaves the tables to the scheme's own accounting.
	 */
	bool rmap;
	bool skip_anon; /* zaps: leave private copies (anonymous pages) */
	void *private;
	/* Per table, applied and reset by the iterator (see pte_entry). */
	int nr_cleared;
	long rss, zero, rss_file;
	struct pt_walk pt; /* the table being walked */
};

/*
 * The entries of one PTE table in [addr, end), from @ptep, under its ptl.
 * Returns where it stopped: @end, or the entry after one whose callback
 * asked for a flush, which may not happen under the ptl.
 */
static inline __attribute__((always_inline)) uint64_t
__walk_pte_range(struct mm_walk *walk, const struct mm_walk_ops *ops,
		 pteval_t *ptep, uint64_t addr, uint64_t end)
{
	struct smm_mm *mm = walk->mm;
	pteval_t *first = ptep;
	int ret = WALK_CONTINUE;

	walk->nr_cleared = 0;
	walk->rss = walk->zero = walk->rss_file = 0;
	for (; addr < end; addr += PAGE_SIZE, ptep++) {
		pteval_t e = pte_read(ptep);

		if (pte_none(e))
			continue;
		ret = ops->pte_entry(walk, ptep, e, addr);
		if (unlikely(ret == WALK_FLUSH)) {
			addr += PAGE_SIZE;
			break;
		}
	}
	if (walk->nr_cleared)
		pte_table_add(mm, first, -walk->nr_cleared);
	pte_unmap_unlock(&walk->pt);
	if (walk->rss)
		stripe_add(mm->ctr, MC_RSS, walk->rss);
	if (walk->zero)
		stripe_add(mm->ctr, MC_ZERO, walk->zero);
	if (walk->rss_file)
		stripe_add(mm->ctr, MC_FILE, walk->rss_file);
	if (ret == WALK_FLUSH)
		tlb_flush_mmu(walk->tlb);
	return addr;
}

/*
 * walk_page_range_vma - call @ops on [start, end), which lies in
 * @walk->vma, table by table. The caller holds mmap_lock (read or write).
 *
 * Inline, and @ops apart from @walk: each caller passes its constant ops,
 * so that its callbacks are inlined into the loop and a zap costs no
 * indirect call per entry. (Inside @walk they would not be: its address
 * escapes to pte_offset_map_lock(), and the compiler reloads them.)
 */
static inline __attribute__((always_inline)) void
walk_page_range_vma(struct mm_walk *walk, const struct mm_walk_ops *ops,
		    uint64_t start, uint64_t end)
{
	struct smm_mm *mm = walk->mm;
	uint64_t addr, next, a;
	pteval_t *ptep;

	if (!walk->rmap)
		mmap_assert_locked(mm);
	VM_BUG_ON(start < walk->vma->vm_start || end > walk->vma->vm_end);
	for (addr = start; addr < end; addr = next) {
		next = pmd_addr_end(addr, end);
		ptep = pte_offset_map_lock(mm, addr, &walk->pt);
		if (!ptep) {
			/* No PMD table: its whole PUD slot has no tables. */
			if (!walk->pt.pmdp)
				next = pud_addr_end(addr, end);
			continue;
		}
		walk->pt.tlb = walk->tlb;
		a = __walk_pte_range(walk, ops, ptep, addr, next);
		while (a < next) { /* after a flush: the rest of the table */
			ptep = pte_offset_map_lock(mm, a, &walk->pt);
			if (!ptep)
				break;
			walk->pt.tlb = walk->tlb;
			a = __walk_pte_range(walk, ops, ptep, a, next);
		}
		if (ops->pte_table_done)
			ops->pte_table_done(walk, addr, next);
	}
}

#endif
