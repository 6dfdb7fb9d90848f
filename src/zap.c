/*
 * zap.c - clearing and changing ranges of page-table entries: zapping
 * (munmap, MADV_DONTNEED), unmap_region() with free_pgtables(),
 * MADV_FREE's cleaning, MADV_PAGEOUT's drop and mprotect's
 * change_protection(). Each is a pte_entry callback of the range iterator
 * (pagewalk.c), which owns the loop over tables and entries.
 *
 * Locking: callers hold mmap_lock (write for unmap_region and
 * change_protection, read for madvise); each PTE table is changed under
 * its ptl (the iterator's locked walk); freed pages and tables go through
 * the caller's mmu_gather.
 */
#include "pagewalk.h"
#include "gup.h"

static inline __attribute__((always_inline)) int
zap_pte_entry(struct mm_walk *walk, pteval_t *ptep, pteval_t pte,
			 uint64_t addr)
{
	struct smm_pool *pool = walk->mm->pool;
	pfn_t pfn;

	/* xchg: the hardware walk may set A/D bits until it is gone */
	pte = ptep_get_and_clear(walk->mm, ptep);
	walk->tlb->need_flush = true;
	walk->nr_cleared++;
	pfn = pte_pfn(pte);
	if (is_zero_pfn(pool, pfn)) {
		walk->zero--;
		return WALK_CONTINUE;
	}
	atomic_fetch_sub(&pfn_to_page(pool, pfn)->mapcount, 1);
	walk->rss--;
	return tlb_remove_page(walk->tlb, pfn) ? WALK_FLUSH : WALK_CONTINUE;
}

/* A zap is done with a table: the scheme may free it (zap_leave). */
static void zap_table_done(struct mm_walk *walk, uint64_t start, uint64_t end)
{
	const struct pt_scheme_ops *ops = walk->mm->pt_ops;

	if (ops->zap_leave)
		ops->zap_leave(walk->tlb, &walk->pt, start, end, walk->zap);
}

static const struct mm_walk_ops zap_walk_ops = {
	.pte_entry = zap_pte_entry,
	.pte_table_done = zap_table_done,
};

void zap_page_range(struct mmu_gather *tlb, struct vm_area_struct *vma,
		    uint64_t start, uint64_t end, int why)
{
	struct mm_walk walk = {
		.mm = tlb->mm,
		.vma = vma,
		.tlb = tlb,
		.zap = (enum zap_reason)why,
	};

	walk_page_range_vma(&walk, &zap_walk_ops, start, end);
}

/*
 * Linux's free_pgtables() over a chain of detached VMAs: VMAs closer than
 * one PTE table apart are freed as one range, so that a table between them
 * is freed once; each range may free up to the next VMA of the chain, or
 * @ceiling after the last.
 */
static void free_pgtables(struct mmu_gather *tlb, struct vm_area_struct *vma,
			  struct vm_area_struct *last, uint64_t floor,
			  uint64_t ceiling)
{
	while (vma) {
		uint64_t addr = vma->vm_start;
		struct vm_area_struct *next = vma == last ? NULL : vma->vm_next;

		while (next && next->vm_start <= vma->vm_end + PMD_SIZE) {
			vma = next;
			next = vma == last ? NULL : vma->vm_next;
		}
		free_pgd_range(tlb, addr, vma->vm_end, floor,
			       next ? next->vm_start : ceiling);
		vma = next;
	}
}

void unmap_region(struct smm_mm *mm, struct vm_area_struct *first,
		  struct vm_area_struct *last, uint64_t floor, uint64_t ceiling,
		  int why)
{
	struct mmu_gather tlb;

	mmap_assert_write_locked(mm);
	tlb_gather_mmu(&tlb, mm);
	for (struct vm_area_struct *v = first;; v = v->vm_next) {
		zap_page_range(&tlb, v, v->vm_start, v->vm_end, why);
		if (v == last)
			break;
	}
	free_pgtables(&tlb, first, last, floor, ceiling);
	race_point();
	tlb_finish_mmu(&tlb);
}

/*
 * MADV_FREE: mark each anonymous page lazily freeable and clean, so that
 * reclaim may drop it unless it is written again (the walk sets the dirty
 * bit then). Contents stay until such a drop. Zero-page entries are left
 * alone.
 */
static inline __attribute__((always_inline)) int
free_pte_entry(struct mm_walk *walk, pteval_t *ptep, pteval_t pte,
			  uint64_t addr)
{
	struct smm_pool *pool = walk->mm->pool;
	struct page *page;

	if (!pte_present(pte) || is_zero_pfn(pool, pte_pfn(pte)))
		return WALK_CONTINUE;
	page = pfn_to_page(pool, pte_pfn(pte));
	if (atomic_load(&page->mapcount) != 1)
		return WALK_CONTINUE;
	if (pte & (_PAGE_DIRTY | _PAGE_ACCESSED)) {
		pte = ptep_get_and_clear(walk->mm, ptep);
		set_pte(walk->mm, ptep, pte & ~(_PAGE_DIRTY | _PAGE_ACCESSED));
		walk->tlb->need_flush = true;
	}
	atomic_fetch_and(&page->flags, ~(unsigned int)PG_DIRTY);
	atomic_fetch_or(&page->flags, PG_LAZYFREE);
	return WALK_CONTINUE;
}

static const struct mm_walk_ops free_walk_ops = {
	.pte_entry = free_pte_entry,
};

void madvise_free_range(struct mmu_gather *tlb, struct vm_area_struct *vma,
			uint64_t start, uint64_t end)
{
	struct mm_walk walk = {
		.mm = tlb->mm, .vma = vma, .tlb = tlb,
	};

	walk_page_range_vma(&walk, &free_walk_ops, start, end);
}

/*
 * MADV_PAGEOUT without swap: drop the pages MADV_FREE made lazily freeable
 * and nobody wrote since (page not dirty, entry not dirty), unless pinned.
 * The entry is cleared first and its dirty bit checked in the value the
 * exchange returned: a store that set it meanwhile wins, and the entry is
 * put back. Each table is then offered to the scheme (ZAP_PAGEOUT).
 */
static inline __attribute__((always_inline)) int
pageout_pte_entry(struct mm_walk *walk, pteval_t *ptep, pteval_t pte,
			     uint64_t addr)
{
	struct smm_pool *pool = walk->mm->pool;
	struct page *page;
	unsigned int fl;

	if (!pte_present(pte) || is_zero_pfn(pool, pte_pfn(pte)) ||
	    (pte & _PAGE_DIRTY))
		return WALK_CONTINUE;
	page = pfn_to_page(pool, pte_pfn(pte));
	fl = atomic_load(&page->flags);
	if (!(fl & PG_LAZYFREE) || (fl & PG_DIRTY) ||
	    atomic_load(&page->mapcount) != 1 ||
	    atomic_load(&page->refcount) >= GUP_PIN_COUNTING_BIAS)
		return WALK_CONTINUE;
	pte = ptep_get_and_clear(walk->mm, ptep);
	if (pte & _PAGE_DIRTY) {		/* written meanwhile */
		set_pte(walk->mm, ptep, pte);
		return WALK_CONTINUE;
	}
	walk->tlb->need_flush = true;
	atomic_fetch_sub(&page->mapcount, 1);
	walk->nr_cleared++;
	walk->rss--;
	return tlb_remove_page(walk->tlb, pte_pfn(pte)) ? WALK_FLUSH : WALK_CONTINUE;
}

static const struct mm_walk_ops pageout_walk_ops = {
	.pte_entry = pageout_pte_entry,
	.pte_table_done = zap_table_done,
};

void pageout_range(struct mmu_gather *tlb, struct vm_area_struct *vma,
		   uint64_t start, uint64_t end)
{
	struct mm_walk walk = {
		.mm = tlb->mm, .vma = vma, .tlb = tlb,
		.zap = ZAP_PAGEOUT,
	};

	walk_page_range_vma(&walk, &pageout_walk_ops, start, end);
}

/*
 * mprotect: rewrite each mapped entry of [start, end) for @newflags.
 * PROT_NONE keeps the page but makes the entry not present (_PAGE_PROTNONE,
 * as x86 does); write permission is granted at once to anonymous pages,
 * never to the zero page, which must be copied on write.
 */
static inline __attribute__((always_inline)) int
change_pte_entry(struct mm_walk *walk, pteval_t *ptep, pteval_t old,
			    uint64_t addr)
{
	unsigned long newflags = *(unsigned long *)walk->private;
	bool none = !(newflags & VM_ACCESS_FLAGS);
	pteval_t new;

	if (!pte_mapped(old))
		return WALK_CONTINUE;
	old = ptep_get_and_clear(walk->mm, ptep);	/* collect A/D */
	if (none) {
		new = (old & ~(_PAGE_PRESENT | _PAGE_RW)) | _PAGE_PROTNONE;
	} else {
		new = (old | _PAGE_PRESENT) & ~(_PAGE_PROTNONE | _PAGE_RW);
		if ((newflags & VM_WRITE) && !is_zero_pfn(walk->mm->pool, pte_pfn(old)))
			new |= _PAGE_RW;
	}
	set_pte(walk->mm, ptep, new);
	if ((old & _PAGE_PRESENT) &&
	    (!(new & _PAGE_PRESENT) || ((old & _PAGE_RW) && !(new & _PAGE_RW))))
		walk->tlb->need_flush = true;
	return WALK_CONTINUE;
}

static const struct mm_walk_ops change_walk_ops = {
	.pte_entry = change_pte_entry,
};

int change_protection(struct mmu_gather *tlb, struct vm_area_struct *vma,
		      uint64_t start, uint64_t end, unsigned long newflags)
{
	struct mm_walk walk = {
		.mm = tlb->mm, .vma = vma, .tlb = tlb,
		.private = &newflags,
	};

	mmap_assert_write_locked(tlb->mm);
	walk_page_range_vma(&walk, &change_walk_ops, start, end);
	return 0;
}
