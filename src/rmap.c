/*
 * rmap.c - anon_vma objects: allocating one for a VMA's first anonymous
 * page or borrowing a neighbour's (find_mergeable_anon_vma), and their
 * reference counts.
 *
 * Locking: vma->anon_vma is set once, from NULL, under page_table_lock by
 * a fault holding mmap_lock for read (release; faults read it with
 * acquire); it is copied (split) or moved (merge) under mmap_lock held for
 * write (vma.c), which excludes such faults. Reference counts are atomics.
 */
#include <errno.h>
#include "rmap.h"
#include "mm.h"
#include "filemap.h"
#include "pagewalk.h"
#include "tlb.h"

static struct anon_vma *anon_vma_alloc(struct smm_mm *mm)
{
	struct anon_vma *av = pool_zalloc(mm->pool, sizeof(*av));

	if (av) {
		av->root = av;
		atomic_init(&av->refcount, 1);
	}
	return av;
}

void anon_vma_put(struct anon_vma *av)
{
	long old = atomic_fetch_sub_explicit(&av->refcount, 1,
					     memory_order_acq_rel);

	BUG_ON(old <= 0);
	if (old == 1) {
		if (av->parent)
			anon_vma_put(av->parent);
		free(av);
	}
}

struct anon_vma *anon_vma_fork(struct smm_mm *mm, struct anon_vma *parent)
{
	struct anon_vma *av = anon_vma_alloc(mm);

	if (av) {
		av->root = parent->root;
		av->parent = parent;
		anon_vma_get(parent);
	}
	return av;
}

/*
 * Linux's find_mergeable_anon_vma(): a VMA that touches @vma, with the same
 * flags but for access permissions and a linear pgoff, lends its anon_vma
 * (the next one first, then the previous one), so that the two can merge
 * again later; not one that came through fork (its anon_vma chain is
 * not singular: the parent's anon_vma is on it too). Needs mmap_lock (the
 * neighbours must hold still) and page_table_lock (their anon_vma may be
 * being set).
 */
static struct anon_vma *find_mergeable_anon_vma(struct vm_area_struct *vma)
{
	struct vm_area_struct *n = vma->vm_next, *p = vma->vm_prev;

	if (n && n->anon_vma && !vma_had_uncowed_parents(n) &&
	    vma->vm_end == n->vm_start &&
	    !((vma->vm_flags ^ n->vm_flags) & ~VM_ACCESS_FLAGS) &&
	    n->vm_pgoff == vma->vm_pgoff + ((n->vm_start - vma->vm_start) >>
					    PAGE_SHIFT))
		return n->anon_vma;
	if (p && p->anon_vma && !vma_had_uncowed_parents(p) &&
	    p->vm_end == vma->vm_start &&
	    !((vma->vm_flags ^ p->vm_flags) & ~VM_ACCESS_FLAGS) &&
	    vma->vm_pgoff ==
		    p->vm_pgoff + ((vma->vm_start - p->vm_start) >> PAGE_SHIFT))
		return p->anon_vma;
	return NULL;
}

int __anon_vma_prepare(struct vm_area_struct *vma, bool vma_locked)
{
	struct smm_mm *mm = vma->vm_mm;
	struct anon_vma *av;
	int err = 0;

	if (vma_locked && !mmap_read_trylock(mm))
		return -EAGAIN;
	spin_lock_class(&mm->page_table_lock, LC_PAGE_TABLE);
	if (!vma->anon_vma) {
		av = find_mergeable_anon_vma(vma);
		if (av)
			anon_vma_get(av);
		else
			av = anon_vma_alloc(mm);
		/*
		 * Release: faults that find it without page_table_lock
		 * (anon_vma_prepare's fast path) see it initialised.
		 */
		if (av)
			__atomic_store_n(&vma->anon_vma, av, __ATOMIC_RELEASE);
		else
			err = -ENOMEM;
	}
	spin_unlock(&mm->page_table_lock);
	if (vma_locked)
		mmap_read_unlock(mm);
	return err;
}

/* ---- the reverse map of file pages (filemap.h) ---- */

/*
 * A reverse-map walker is at work on @mm's entries. smm_mm_verify() holds
 * new ones off while it walks (it takes no lock a walker may hold), and
 * waits for those already counted.
 */
static inline void rmap_begin(struct smm_mm *mm)
{
	for (;;) {
		atomic_fetch_add(&mm->rmap_active, 1);
		if (likely(!atomic_load(&mm->rmap_verifying)))
			return;
		atomic_fetch_sub(&mm->rmap_active, 1);
		while (atomic_load(&mm->rmap_verifying))
			sched_yield();
	}
}

static inline void rmap_end(struct smm_mm *mm)
{
	atomic_fetch_sub(&mm->rmap_active, 1);
}

/* The address at which @vma maps page offset @pgoff (inside it). */
static inline uint64_t vma_pgoff_address(struct vm_area_struct *vma,
					 uint64_t pgoff)
{
	return vma->vm_start + ((pgoff - vma->vm_pgoff) << PAGE_SHIFT);
}

void unmap_mapping_range(struct smm_file *f, uint64_t first, uint64_t last,
			 bool even_cows)
{
	struct itree_node *n;

	i_mmap_lock_read(f);
	for (n = itree_iter_first(&f->i_mmap, first, last); n;
	     n = itree_iter_next(n, first, last)) {
		struct vm_area_struct *vma =
			container_of(n, struct vm_area_struct, shared);
		uint64_t lo = MAX(first, vma->vm_pgoff);
		uint64_t hi = MIN(last, vma_last_pgoff(vma));

		rmap_begin(vma->vm_mm);
		zap_vma_rmap(vma, vma_pgoff_address(vma, lo),
			     vma_pgoff_address(vma, hi) + PAGE_SIZE,
			     !even_cows || (vma->vm_flags & VM_MAYSHARE));
		rmap_end(vma->vm_mm);
	}
	i_mmap_unlock_read(f);
}

int page_mkclean(struct page *page)
{
	struct smm_file *f = page->mapping;
	struct smm_pool *pool = f->pool;
	pfn_t pfn = page_to_pfn(pool, page);
	uint64_t index = page->index;
	struct itree_node *n;
	int cleaned = 0;

	VM_BUG_ON(!(atomic_load(&page->flags) & PG_LOCKED));
	i_mmap_lock_read(f);
	for (n = itree_iter_first(&f->i_mmap, index, index); n;
	     n = itree_iter_next(n, index, index)) {
		struct vm_area_struct *vma =
			container_of(n, struct vm_area_struct, shared);
		struct smm_mm *mm = vma->vm_mm;
		struct pt_walk pt;
		pteval_t *ptep, pte;
		bool changed = false;

		/* Private mappings map the page read-only, never dirty. */
		if (!(vma->vm_flags & VM_SHARED))
			continue;
		rmap_begin(mm);
		ptep = pte_offset_map_lock(mm, vma_pgoff_address(vma, index),
					   &pt);
		if (!ptep) {
			rmap_end(mm);
			/* A zap may have freed the table it emptied. */
			if (atomic_load(&mm->zap_file_pending))
				flush_tlb_mm(mm);
			continue;
		}
		pte = pte_read(ptep);
		if (pte_present(pte) && pte_pfn(pte) == pfn &&
		    (pte & (_PAGE_RW | _PAGE_DIRTY))) {
#ifdef SMM_BUG_MKCLEAN_SKIP
			/* Planted bug: the first shared mapping is skipped. */
			if (vma == container_of(itree_iter_first(&f->i_mmap,
								 index, index),
						struct vm_area_struct,
						shared)) {
				pte_unmap_unlock(&pt);
				rmap_end(mm);
				continue;
			}
#endif
			/* xchg: the hardware walk may set D meanwhile */
			ptep_xchg(mm, ptep, pte & ~(_PAGE_RW | _PAGE_DIRTY));
			changed = true;
			cleaned++;
		}
		/* A zap's entry may be gone, its translation not yet. */
		if (atomic_load(&mm->zap_file_pending))
			changed = true;
		pte_unmap_unlock(&pt);
		rmap_end(mm);
		if (changed)
			flush_tlb_mm(mm);
	}
	i_mmap_unlock_read(f);
	return cleaned;
}
