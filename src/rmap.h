/*
 * rmap.h - the reverse map's anchor for anonymous memory: struct anon_vma
 * (rmap.c). Today it decides which VMAs may merge and is what an
 * anonymous page's mapping points at; fork will chain VMAs to it.
 *
 * Lifetime: one reference per VMA that points at it (vma->anon_vma); the
 * last VMA to go frees it. A page's mapping holds no reference: it is
 * meaningful only while the page is mapped.
 */
#ifndef SMM_RMAP_H
#define SMM_RMAP_H

#include "mm_types.h"

struct anon_vma {
	struct anon_vma *root; /* the parent's root after fork, else itself */
	/* After fork: the parent VMA's anon_vma, with a reference, so that
	 * every anon_vma a page of this tree can point at stays alive. */
	struct anon_vma *parent;
	atomic_long refcount; /* VMAs pointing at it */
};

/*
 * Linux's vma_had_uncowed_parents(): @vma came through fork with an
 * anon_vma (its anon_vma chain, here the parent link, is not singular).
 * Such a VMA neither merges with a neighbour that has no anon_vma nor
 * lends its anon_vma to one (vma.c, find_mergeable_anon_vma()).
 */
static inline bool vma_had_uncowed_parents(const struct vm_area_struct *vma)
{
	return vma && vma->anon_vma && vma->anon_vma->parent;
}

/*
 * The reverse-map identity of a new anonymous page of @vma at @addr, set
 * before the entry that publishes it: in @vma's anon_vma at its linear
 * index, exclusive to this mm, dirty (what a drop would lose). Its
 * mapcount is set with the entry, under the ptl. A fault, a copy on
 * write, fork's copy of a maybe-pinned page and userfaultfd's copy all
 * make their pages so.
 */
static inline void anon_page_init(struct page *page, struct vm_area_struct *vma,
				  uint64_t addr)
{
	atomic_store_explicit(&page->flags,
			      PG_ANON | PG_ANON_EXCLUSIVE | PG_DIRTY,
			      memory_order_relaxed);
	/* Set by anon_vma_prepare(), maybe by another fault: READ_ONCE. */
	page->mapping = READ_ONCE(vma->anon_vma);
	page->index =
		vma->vm_pgoff + ((addr - vma->vm_start) >> SMM_PAGE_SHIFT);
}

static inline void anon_vma_get(struct anon_vma *av)
{
	atomic_fetch_add_explicit(&av->refcount, 1, memory_order_relaxed);
}

/* Drop a VMA's reference; the last one frees the anon_vma (and drops its
 * reference on its root). */
void anon_vma_put(struct anon_vma *av);

/*
 * anon_vma_fork - the child VMA's anon_vma at fork: a new one in the
 * parent's tree (the same root; it holds a reference on the parent's,
 * which holds one on its own parent, up to the root). Pages the
 * two share keep the parent's as their mapping; the root tells whose they
 * are (Linux's anon_vma chains, reduced to what softmm asks of them).
 * NULL if memory is short.
 */
struct anon_vma *anon_vma_fork(struct smm_mm *mm, struct anon_vma *parent);

/*
 * anon_vma_prepare - give @vma an anon_vma before its first anonymous page:
 * a neighbour's where Linux's find_mergeable_anon_vma() would lend it, so
 * that the two can merge later, else a new one. Caller holds mmap_lock for
 * read, or only @vma's read lock (@vma_locked); then the neighbours may be
 * changing, and like Linux's vmf_anon_prepare() it needs mmap_lock, which
 * it takes with a trylock (it is the outer lock) or answers -EAGAIN: retry
 * the fault under mmap_lock. -ENOMEM if a new one cannot be allocated.
 */
int __anon_vma_prepare(struct vm_area_struct *vma, bool vma_locked);
static inline int anon_vma_prepare(struct vm_area_struct *vma, bool vma_locked)
{
	/* Acquire: pairs with the release that published it (rmap.c). */
	if (likely(__atomic_load_n(&vma->anon_vma, __ATOMIC_ACQUIRE)))
		return 0;
	return __anon_vma_prepare(vma, vma_locked);
}

#endif
