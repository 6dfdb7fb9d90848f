/*
 * fork.c - smm_fork(): a new address space with a copy of an mm's VMAs
 * (Linux's dup_mmap()) and of their page tables (copy_page_range()):
 * private anonymous pages shared read-only for copy-on-write, pages that
 * may be DMA-pinned copied for the child at once, file pages shared.
 *
 * Locking: the parent's mmap_lock held for write throughout, the child's
 * taken with a trylock (nobody else knows the child yet); the parent's
 * write_protect_seq is odd meanwhile, so that GUP-fast pins nothing that
 * fork may be sharing (gup.c). Each parent PTE table is read and
 * write-protected under its ptl; the collected entries then go into the
 * child's table under its ptl (one table mapped at a time). The parent's
 * TLBs are flushed before mmap_lock is dropped.
 */
#include <errno.h>
#include "pagewalk.h"
#include "filemap.h"
#include "rmap.h"
#include "gup.h"

#ifdef SMM_DEBUG
/* Testing hook: called with the parent's ptl held, after fork decided to
 * share an anonymous page and before it write-protects the entry. */
void (*smm_debug_fork_hook)(struct smm_mm *mm, uint64_t addr);
#endif

/* A pinned page must not be shared (Linux's folio_needs_cow_for_dma()). */
static inline bool page_maybe_dma_pinned(struct page *page)
{
	return atomic_load(&page->refcount) >= GUP_PIN_COUNTING_BIAS;
}

struct copy_counts {
	long anon, zero, file;
};

/*
 * The child's entry for the parent's present entry *@ptep (parent's ptl
 * held): share the page, write-protecting the parent's entry when it is a
 * private anonymous page (Linux's copy_present_pte()), or give the child a
 * copy of a page that may be pinned. Returns the entry, or 0 if a copy
 * could not be allocated. *@wp is set when the parent's entry lost
 * write permission.
 */
static pteval_t copy_present_pte(struct smm_mm *src, struct smm_mm *dst,
				 struct vm_area_struct *dvma, pteval_t *ptep,
				 pteval_t pte, uint64_t addr, bool *wp,
				 struct copy_counts *c)
{
	struct smm_pool *pool = src->pool;
	pfn_t pfn = pte_pfn(pte), new;
	struct page *page;
	unsigned int fl;

	if (is_zero_pfn(pool, pfn)) {
		c->zero++;
		return pte;
	}
	page = pfn_to_page(pool, pfn);
	fl = atomic_load(&page->flags);
#ifndef SMM_BUG_FORK_SHARES_PINNED /* planted bug (build/bug4): shares it */
	if ((fl & PG_ANON) && page_maybe_dma_pinned(page)) {
#else
	if (false) {
#endif
		/* The pin and the parent keep the page; the child gets a
		 * copy as of now. */
		new = alloc_frame(pool, PG_ANON | ALLOC_NOZERO);
		if (new == NO_PFN)
			return 0;
		frame_copy(pfn_to_virt(pool, new), pfn_to_virt(pool, pfn),
			   PAGE_SIZE);
		page = pfn_to_page(pool, new);
		anon_page_init(page, dvma, addr);
		atomic_store(&page->mapcount, 1);
		c->anon++;
		return pfn_pte(new, pte & ~PTE_PFN_MASK);
	}
#ifdef SMM_DEBUG
	if ((fl & PG_ANON) && smm_debug_fork_hook)
		smm_debug_fork_hook(src, addr);
#endif
	atomic_fetch_add(&page->refcount, 1);
	atomic_fetch_add(&page->mapcount, 1);
	if (fl & PG_FILE) {
		c->file++;
		return pte & ~(pteval_t)_PAGE_RW;
	}
	c->anon++;
	atomic_fetch_and(&page->flags, ~PG_ANON_EXCLUSIVE);
	if (pte & _PAGE_RW) {
		/* xchg: the hardware walk may set D meanwhile */
		pte = ptep_xchg(src, ptep, pte & ~(pteval_t)_PAGE_RW) &
		      ~(pteval_t)_PAGE_RW;
		*wp = true;
	}
	return pte;
}

/* Undo copy_present_pte() for an entry the child did not get, its count
 * in @c included (the child's counters must end at zero when it goes). */
static void drop_copied_pte(struct smm_pool *pool, pteval_t pte,
			    struct copy_counts *c)
{
	struct page *page;

	if (is_zero_pfn(pool, pte_pfn(pte))) {
		c->zero--;
		return;
	}
	page = pfn_to_page(pool, pte_pfn(pte));
	if (atomic_load(&page->flags) & PG_FILE)
		c->file--;
	else
		c->anon--;
	atomic_fetch_sub(&page->mapcount, 1);
	put_page(pool, pte_pfn(pte));
}

/*
 * Copy the entries of [addr, end), within one PTE table, from @vma of @src
 * to @dvma of @dst. 0 or -ENOMEM (what was collected given back).
 */
static int copy_pte_range(struct smm_mm *src, struct smm_mm *dst,
			  struct vm_area_struct *vma,
			  struct vm_area_struct *dvma, uint64_t addr,
			  uint64_t end, bool *wp, struct copy_counts *c)
{
	struct smm_pool *pool = src->pool;
	pteval_t buf[PTRS_PER_TABLE];
	unsigned int at[PTRS_PER_TABLE], k = 0, n = (end - addr) >> PAGE_SHIFT;
	struct pt_walk spt, dpt;
	pteval_t *ptep;
	int err = 0;

	/* The child's table first, entries to copy or not, as Linux's
	 * pte_alloc_map_lock() does (VmPTE counts it). */
	if (!pte_alloc_map(dst, addr, &dpt, &err))
		return err;
	pte_unmap(&dpt);
	ptep = pte_offset_map_lock(src, addr, &spt);
	if (!ptep)
		return 0;
	for (unsigned int i = 0; i < n; i++) {
		pteval_t pte = pte_read(ptep + i), e;

		if (pte_none(pte))
			continue;
		VM_BUG_ON(!pte_mapped(pte));
		e = copy_present_pte(src, dst, dvma, ptep + i, pte,
				     addr + ((uint64_t)i << PAGE_SHIFT), wp, c);
		if (!e) {
			err = -ENOMEM;
			break;
		}
		buf[k] = e & ~_PAGE_UFFD_WP; /* the child is not registered */
		at[k++] = i;
	}
	pte_unmap_unlock(&spt);
	if (!err && k) {
		ptep = pte_alloc_map(dst, addr, &dpt, &err);
		if (ptep) {
			BUG_ON(!pte_map_lock(&dpt));
			for (unsigned int i = 0; i < k; i++)
				set_pte(dst, ptep + at[i], buf[i]);
			pte_table_add(dst, ptep, (int)k);
			pte_unmap_unlock(&dpt);
			return 0;
		}
	}
	for (unsigned int i = 0; i < k; i++)
		drop_copied_pte(pool, buf[i], c);
	return err;
}

/*
 * Linux's copy_page_range() for one VMA: level by level, the child gets a
 * PUD table for each PGD entry the parent has in the range, a PMD table
 * for each PUD entry, and a PTE table for each PMD entry, whether or not
 * entries are copied into it (VmPTE counts them as Linux's do).
 */
static int copy_page_range(struct smm_mm *src, struct smm_mm *dst,
			   struct vm_area_struct *vma,
			   struct vm_area_struct *dvma, bool *wp)
{
	struct copy_counts c = { 0 };
	uint64_t end = vma->vm_end;
	int err = 0;

	for (uint64_t a = vma->vm_start, g; !err && a < end; a = g) {
		g = pgd_addr_end(a, end);
		if (!pt_upper_entry(src, a, 4))
			continue;
		if (!pt_upper_alloc(dst, a, 3)) {
			err = -ENOMEM;
			break;
		}
		for (uint64_t b = a, u; !err && b < g; b = u) {
			u = pud_addr_end(b, g);
			if (!pt_upper_entry(src, b, 3))
				continue;
			if (!pt_upper_alloc(dst, b, 2)) {
				err = -ENOMEM;
				break;
			}
			for (uint64_t m = b, n; !err && m < u; m = n) {
				n = pmd_addr_end(m, u);
				if (pt_upper_entry(src, m, 2))
					err = copy_pte_range(src, dst, vma,
							     dvma, m, n, wp,
							     &c);
			}
		}
	}
	stripe_add(dst->ctr, MC_RSS, c.anon);
	stripe_add(dst->ctr, MC_ZERO, c.zero);
	stripe_add(dst->ctr, MC_FILE, c.file);
	return err;
}

/* The child's copy of @vma, linked at the end of @mm's list. */
static int dup_vma(struct smm_mm *oldmm, struct smm_mm *mm,
		   struct vm_area_struct *vma, bool *wp)
{
	struct vm_area_struct *n = vma_alloc(mm);

	if (!n)
		return -ENOMEM;
	n->vm_start = vma->vm_start;
	n->vm_end = vma->vm_end;
	/* the child does not inherit locks (Linux clears VM_LOCKED_MASK) */
	n->vm_flags = vma->vm_flags & ~VM_LOCKED_MASK;
	/* nor userfaultfd registration (no UFFD_FEATURE_EVENT_FORK) */
	n->vm_flags &= ~VM_UFFD_FLAGS;
	n->vm_pgoff = vma->vm_pgoff;
	n->vm_ops = vma->vm_ops;
	if (vma->anon_vma && !(vma->vm_flags & VM_WIPEONFORK)) {
		n->anon_vma = anon_vma_fork(mm, vma->anon_vma);
		if (!n->anon_vma) {
			vma_free(n);
			return -ENOMEM;
		}
	}
	vma_link_after(mm, mm->vma_tail, n);
	if (vma->vm_file) {
		n->vm_file = vma->vm_file;
		get_file(n->vm_file);
		i_mmap_lock_write(n->vm_file);
		i_mmap_insert(n);
		i_mmap_unlock_write(n->vm_file);
	}
	/* Linux's vma_needs_copy(): anonymous pages (and private copies of
	 * file pages) to share; shared mappings refault from the file. */
	if (!n->anon_vma)
		return 0;
	return copy_page_range(oldmm, mm, vma, n, wp);
}

SMM_API struct smm_mm *smm_fork(struct smm_mm *oldmm)
{
	struct smm_mm_opts o;
	struct smm_mm *mm;
	bool wp = false;
	int err = 0;

	if (!oldmm) {
		errno = EINVAL;
		return NULL;
	}
	o = (struct smm_mm_opts){ .scheme = oldmm->scheme,
				  .mmap_base = oldmm->mmap_base,
				  .flags = oldmm->flags };
	mm = smm_mm_create(oldmm->pool, &o);
	if (!mm)
		return NULL;
	rcu_thread_online();
	mmap_write_lock(oldmm);
	if (oldmm->dead) {
		mmap_write_unlock(oldmm);
		smm_mm_destroy(mm);
		errno = ESRCH;
		return NULL;
	}
	mmap_write_lock_new(mm);
	atomic_fetch_add(&oldmm->write_protect_seq, 1); /* odd */
	for (struct vm_area_struct *v = oldmm->vma_head; v && !err;
	     v = v->vm_next) {
		if (v->vm_flags & VM_DONTCOPY)
			continue;
		vma_start_write(v);
		err = dup_vma(oldmm, mm, v, &wp);
	}
	if (!err && vma_tree_reserve(mm, mm->nr_vmas, 1))
		err = -ENOMEM;
	if (!err)
		vma_tree_update(mm, 0, SMM_TASK_SIZE);
	/* Write-protected entries: no CPU may store through the old ones. */
	if (wp)
		flush_tlb_mm(oldmm);
	atomic_fetch_add(&oldmm->write_protect_seq, 1); /* even */
	mmap_write_unlock(mm);
	mmap_write_unlock(oldmm);
	if (err) {
		smm_mm_destroy(mm);
		errno = -err;
		return NULL;
	}
	return mm;
}
