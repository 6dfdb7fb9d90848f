/*
 * zap.c - zapping ranges (munmap, MADV_DONTNEED, exit): the zap's
 * pte_entry for the range iterator (pagewalk.h), telling the scheme about
 * each table a zap leaves (zap_leave), and unmap_region() with Linux's
 * free_pgtables().
 *
 * Locking: callers hold mmap_lock (write for unmap_region() from mremap
 * and MAP_FIXED, read for munmap's after its downgrade and for madvise);
 * each PTE table is changed under its ptl (the iterator's locked walk);
 * freed pages and tables go through the caller's mmu_gather.
 */
#include "pagewalk.h"
#include "filemap.h"

/*
 * How many entries ahead a zap brings the page's metadata into the cache:
 * far enough that the miss (a page freed long after it was faulted) is
 * over by the time the zap's locked instructions reach it.
 */
#define ZAP_PREFETCH 8

static inline __attribute__((always_inline)) void
zap_prefetch(struct smm_pool *pool, pteval_t *ptep)
{
	pteval_t ahead;

	/* Only within this table: it is mapped, and its ptl held. */
	if ((((uintptr_t)ptep / sizeof(pteval_t)) & (PTRS_PER_TABLE - 1)) >=
	    PTRS_PER_TABLE - ZAP_PREFETCH)
		return;
	ahead = pte_read(ptep + ZAP_PREFETCH);
	if (pte_present(ahead) && pte_pfn(ahead) < pool->nr_frames)
		__builtin_prefetch(pfn_to_page(pool, pte_pfn(ahead)), 1, 3);
}

static inline __attribute__((always_inline)) int
zap_pte_entry(struct mm_walk *walk, pteval_t *ptep, pteval_t pte, uint64_t addr)
{
	struct smm_pool *pool = walk->mm->pool;
	pfn_t pfn = pte_pfn(pte);
	struct page *page;
	unsigned int flags;

	zap_prefetch(pool, ptep);
	if (is_zero_pfn(pool, pfn)) {
		pte = ptep_get_and_clear(walk->mm, ptep);
		walk->tlb->need_flush = true;
		walk->nr_cleared++;
		walk->zero--;
		return WALK_CONTINUE;
	}
	page = pfn_to_page(pool, pfn);
	flags = atomic_load_explicit(&page->flags, memory_order_relaxed);
	if (unlikely(walk->skip_anon) && (flags & PG_ANON))
		return WALK_CONTINUE;
	if ((flags & PG_FILE) && (pte & _PAGE_RW) && !walk->tlb->file_pending) {
		walk->tlb->file_pending = true;
		atomic_fetch_add(&walk->mm->zap_file_pending, 1);
	}
	/* xchg: the hardware walk may set A/D bits until it is gone */
	pte = ptep_get_and_clear(walk->mm, ptep);
	walk->tlb->need_flush = true;
	walk->nr_cleared++;
	atomic_fetch_sub(&page->mapcount, 1);
	if (flags & PG_FILE) {
		walk->rss_file--;
		if (pte & _PAGE_DIRTY)
			pfn |= GATHER_DIRTY;
	} else {
		walk->rss--;
	}
	return tlb_remove_page(walk->tlb, pfn) ? WALK_FLUSH : WALK_CONTINUE;
}

/* A zap is done with a table: the scheme may free it (zap_leave). */
void zap_table_done(struct mm_walk *walk, uint64_t start, uint64_t end)
{
	const struct pt_scheme_ops *ops = walk->mm->pt_ops;

	/*
	 * Not for the reverse map's zaps: without mmap_lock, freeing upper
	 * tables could race munmap's free_pgtables(). Linux's PT_RECLAIM
	 * does not reclaim there either.
	 */
	if (ops->zap_leave && !walk->rmap)
		ops->zap_leave(walk->tlb, &walk->pt, start, end, walk->zap);
}

static const struct mm_walk_ops zap_walk_ops = {
	.pte_entry = zap_pte_entry,
	.pte_table_done = zap_table_done,
};

void zap_vma_rmap(struct vm_area_struct *vma, uint64_t start, uint64_t end,
		  bool skip_anon)
{
	struct mmu_gather tlb;
	struct mm_walk walk = {
		.mm = vma->vm_mm,
		.vma = vma,
		.tlb = &tlb,
		.zap = ZAP_DONTNEED,
		.rmap = true,
		.skip_anon = skip_anon,
	};

	tlb_gather_mmu(&tlb, vma->vm_mm);
	walk_page_range_vma(&walk, &zap_walk_ops, start, end);
	tlb_finish_mmu(&tlb);
}

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

	mmap_assert_locked(mm);
	tlb_gather_mmu(&tlb, mm);
	for (struct vm_area_struct *v = first;; v = v->vm_next) {
		zap_page_range(&tlb, v, v->vm_start, v->vm_end, why);
		if (v == last)
			break;
	}
	/*
	 * No CPU may store through a cleared entry of a file page once the
	 * VMA is out of the reverse map, where page_mkclean() could no longer
	 * find this mm to flush it (mm->zap_file_pending).
	 */
	if (tlb.file_pending)
		tlb_flush_mmu(&tlb);
	/*
	 * Out of the reverse map before the tables go (Linux's
	 * unlink_file_vma() in free_pgtables()): a walker under i_mmap_lock
	 * must not reach a table freed here. The reference on the file goes
	 * with the VMA (the caller's).
	 */
	for (struct vm_area_struct *v = first;; v = v->vm_next) {
		if (v->vm_file) {
			i_mmap_lock_write(v->vm_file);
			i_mmap_remove(v);
			i_mmap_unlock_write(v->vm_file);
		}
		if (v == last)
			break;
	}
	free_pgtables(&tlb, first, last, floor, ceiling);
	race_point();
	tlb_finish_mmu(&tlb);
}
