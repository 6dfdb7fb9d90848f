/*
 * zap.c - clearing and changing ranges of page-table entries: zapping
 * (munmap, MADV_DONTNEED), unmap_region() with free_pgtables(),
 * MADV_FREE's cleaning, and mprotect's change_protection().
 *
 * Locking: callers hold mmap_lock (write for unmap_region and
 * change_protection, read for madvise); each PTE table is changed under
 * its ptl; freed pages and tables go through the caller's mmu_gather.
 */
#include "mm.h"
#include "pt_scheme.h"
#include "gup.h"

/*
 * Zap [addr, end) within one PTE table. Returns where it stopped: @end, or
 * earlier when the gather's batch filled up and must be flushed (which may
 * not happen under the ptl).
 */
static uint64_t zap_pte_range(struct mmu_gather *tlb, uint64_t addr,
			      uint64_t end, bool *had_table)
{
	struct smm_mm *mm = tlb->mm;
	struct smm_pool *pool = mm->pool;
	spinlock_t *ptl;
	pteval_t *pte = pte_offset_map_lock(mm, addr, &ptl);
	long rss = 0, zero = 0;
	int cleared = 0;

	if (!pte)
		return end;
	*had_table = true;
	for (; addr < end; addr += PAGE_SIZE) {
		pteval_t *ptep = &pte[pte_index(addr)];
		pteval_t e;
		pfn_t pfn;

		if (pte_none(pte_read(ptep)))
			continue;
		/* xchg: the hardware walk may set A/D bits until it is gone */
		e = pte_xchg(ptep, 0);
		tlb->need_flush = true;
		cleared++;
		pfn = pte_pfn(e);
		if (is_zero_pfn(pool, pfn)) {
			zero++;
			continue;
		}
		atomic_fetch_sub(&pfn_to_page(pool, pfn)->mapcount, 1);
		rss++;
		if (tlb_remove_page(tlb, pfn)) {
			addr += PAGE_SIZE;
			break;
		}
	}
	pte_table_sub(pool, pte, cleared);
	pte_unmap_unlock(ptl);
	stripe_add(mm->ctr, MC_RSS, -rss);
	stripe_add(mm->ctr, MC_ZERO, -zero);
	return addr;
}

/*
 * Zap [start, end) of @vma, table by table; the scheme hears about each
 * table once this zap is done with it (and may free it: @why says what
 * kind of zap this is).
 */
void zap_page_range(struct mmu_gather *tlb, struct vm_area_struct *vma,
		    uint64_t start, uint64_t end, int why)
{
	const struct pt_scheme_ops *ops = pt_scheme_get(tlb->mm->scheme);
	uint64_t addr = start, next, tstart;

	mmap_assert_locked(tlb->mm);
	while (addr < end) {
		bool had_table = false;

		tstart = addr;
		next = pmd_addr_end(addr, end);
		while (addr < next) {
			addr = zap_pte_range(tlb, addr, next, &had_table);
			/* Batch full (maybe on the table's last page): flush. */
			if (tlb->nr_pages == GATHER_BATCH)
				tlb_flush_mmu(tlb);
		}
		/* No table, nothing for the scheme to free. */
		if (had_table)
			ops->zap_done(tlb, tstart & PMD_MASK, tstart, next,
				      (enum zap_reason)why);
	}
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
 * bit then). Contents stay until such a drop. Zero-page entries and holes
 * are left alone.
 */
void madvise_free_range(struct mmu_gather *tlb, struct vm_area_struct *vma,
			uint64_t start, uint64_t end)
{
	struct smm_mm *mm = tlb->mm;
	struct smm_pool *pool = mm->pool;
	uint64_t addr = start, next;

	mmap_assert_locked(mm);
	for (; addr < end; addr = next) {
		spinlock_t *ptl;
		pteval_t *pte;

		next = pmd_addr_end(addr, end);
		pte = pte_offset_map_lock(mm, addr, &ptl);
		if (!pte)
			continue;
		for (uint64_t a = addr; a < next; a += PAGE_SIZE) {
			pteval_t *ptep = &pte[pte_index(a)];
			pteval_t e = pte_read(ptep);
			struct page *page;

			if (!pte_present(e) || is_zero_pfn(pool, pte_pfn(e)))
				continue;
			page = pfn_to_page(pool, pte_pfn(e));
			if (atomic_load(&page->mapcount) != 1)
				continue;
			if (e & (_PAGE_DIRTY | _PAGE_ACCESSED)) {
				e = pte_xchg(ptep, 0);
				pte_write(ptep, e & ~(_PAGE_DIRTY | _PAGE_ACCESSED));
				tlb->need_flush = true;
			}
			atomic_fetch_and(&page->flags, ~(unsigned int)PG_DIRTY);
			atomic_fetch_or(&page->flags, PG_LAZYFREE);
		}
		pte_unmap_unlock(ptl);
	}
}

/*
 * MADV_PAGEOUT without swap: drop the pages MADV_FREE made lazily freeable
 * and nobody wrote since (page not dirty, entry not dirty), unless pinned.
 * The entry is cleared first and its dirty bit checked in the value the
 * exchange returned: a store that set it meanwhile wins, and the entry is
 * put back. Each table is then offered to the scheme (ZAP_PAGEOUT).
 */
void pageout_range(struct mmu_gather *tlb, struct vm_area_struct *vma,
		   uint64_t start, uint64_t end)
{
	const struct pt_scheme_ops *ops = pt_scheme_get(tlb->mm->scheme);
	struct smm_mm *mm = tlb->mm;
	struct smm_pool *pool = mm->pool;
	uint64_t addr, next;

	mmap_assert_locked(mm);
	for (addr = start; addr < end; addr = next) {
		spinlock_t *ptl;
		pteval_t *pte;
		long dropped = 0;

		next = pmd_addr_end(addr, end);
		if (tlb->nr_pages > GATHER_BATCH - PTRS_PER_TABLE)
			tlb_flush_mmu(tlb);
		pte = pte_offset_map_lock(mm, addr, &ptl);
		if (!pte)
			continue;
		for (uint64_t a = addr; a < next; a += PAGE_SIZE) {
			pteval_t *ptep = &pte[pte_index(a)];
			pteval_t e = pte_read(ptep);
			struct page *page;
			unsigned int fl;

			if (!pte_present(e) || is_zero_pfn(pool, pte_pfn(e)) ||
			    (e & _PAGE_DIRTY))
				continue;
			page = pfn_to_page(pool, pte_pfn(e));
			fl = atomic_load(&page->flags);
			if (!(fl & PG_LAZYFREE) || (fl & PG_DIRTY) ||
			    atomic_load(&page->mapcount) != 1 ||
			    atomic_load(&page->refcount) >= GUP_PIN_COUNTING_BIAS)
				continue;
			e = pte_xchg(ptep, 0);
			if (e & _PAGE_DIRTY) {		/* written meanwhile */
				pte_write(ptep, e);
				continue;
			}
			tlb->need_flush = true;
			atomic_fetch_sub(&page->mapcount, 1);
			dropped++;
			tlb_remove_page(tlb, pte_pfn(e));
		}
		pte_table_sub(pool, pte, (int)dropped);
		pte_unmap_unlock(ptl);
		stripe_add(mm->ctr, MC_RSS, -dropped);
		ops->zap_done(tlb, addr & PMD_MASK, addr, next, ZAP_PAGEOUT);
	}
}

/*
 * mprotect: rewrite each mapped entry of [start, end) for @newflags.
 * PROT_NONE keeps the page but makes the entry not present (_PAGE_PROTNONE,
 * as x86 does); write permission is granted at once to anonymous pages,
 * never to the zero page, which must be copied on write.
 */
int change_protection(struct mmu_gather *tlb, struct vm_area_struct *vma,
		      uint64_t start, uint64_t end, unsigned long newflags)
{
	struct smm_mm *mm = tlb->mm;
	struct smm_pool *pool = mm->pool;
	bool none = !(newflags & VM_ACCESS_FLAGS);
	bool write = newflags & VM_WRITE;
	uint64_t addr, next;

	mmap_assert_write_locked(mm);
	for (addr = start; addr < end; addr = next) {
		spinlock_t *ptl;
		pteval_t *pte;

		next = pmd_addr_end(addr, end);
		pte = pte_offset_map_lock(mm, addr, &ptl);
		if (!pte)
			continue;
		for (uint64_t a = addr; a < next; a += PAGE_SIZE) {
			pteval_t *ptep = &pte[pte_index(a)];
			pteval_t old = pte_read(ptep), new;

			if (!pte_mapped(old))
				continue;
			old = pte_xchg(ptep, 0);	/* collect A/D */
			if (none) {
				new = (old & ~(_PAGE_PRESENT | _PAGE_RW)) | _PAGE_PROTNONE;
			} else {
				new = (old | _PAGE_PRESENT) & ~(_PAGE_PROTNONE | _PAGE_RW);
				if (write && !is_zero_pfn(pool, pte_pfn(old)))
					new |= _PAGE_RW;
			}
			pte_write(ptep, new);
			if ((old & _PAGE_PRESENT) &&
			    (!(new & _PAGE_PRESENT) || ((old & _PAGE_RW) && !(new & _PAGE_RW))))
				tlb->need_flush = true;
		}
		pte_unmap_unlock(ptl);
	}
	return 0;
}
