/*
 * verify.c - smm_mm_verify(): an fsck for an address space. Walks every
 * page table and the VMA list and cross-checks them with the counters and
 * the page metadata (mapcount, exclusivity, anon_vma and index). Used by the torture test and the unit tests; cheap
 * enough to call now and then, not on a hot path.
 *
 * Locking: mmap_lock held for write and every VMA write-locked for the
 * whole walk, so no fault (not even one under a VMA lock), zap or table
 * allocation runs meanwhile (hardware walks may still set accessed/dirty
 * bits, which it ignores).
 */
#include <errno.h>
#include "pt_scheme.h"
#include "filemap.h"
#include "rmap.h"

struct vstate {
	struct smm_mm *mm;
	long anon, zero, file, ptes, pmds, puds;
	int errors;
	struct vm_area_struct *vma; /* cursor: first VMA ending above addr */
};

#define VERR(vs, ...)                                                   \
	do {                                                            \
		if ((vs)->errors++ < 8)                                 \
			fprintf(stderr, "softmm verify: " __VA_ARGS__); \
	} while (0)

/* Is @addr inside a VMA? The cursor makes the whole walk O(n + pages). */
static bool covered(struct vstate *vs, uint64_t addr)
{
	while (vs->vma && vs->vma->vm_end <= addr)
		vs->vma = vs->vma->vm_next;
	return vs->vma && vs->vma->vm_start <= addr;
}

static void check_table_page(struct vstate *vs, pteval_t e, int level)
{
	struct smm_pool *pool = vs->mm->pool;
	struct page *page;

	if (pte_pfn(e) >= pool->nr_frames) {
		VERR(vs, "table entry %#llx points outside the pool\n",
		     (unsigned long long)e);
		return;
	}
	page = pfn_to_page(pool, pte_pfn(e));
	if (!(atomic_load(&page->flags) & PG_TABLE) ||
	    page->pt_level != level || page->pt_owner != vs->mm)
		VERR(vs,
		     "frame %llu is not a level-%d table of this mm "
		     "(flags %#x level %d)\n",
		     (unsigned long long)pte_pfn(e), level,
		     atomic_load(&page->flags), page->pt_level);
}

/* A table's pt_count must equal the entries it holds. */
static void check_count(struct vstate *vs, pteval_t *table, int used, int level)
{
	struct page *page = virt_to_page(vs->mm->pool, table);

	if (atomic_load(&page->pt_count) != used)
		VERR(vs,
		     "level-%d table (frame %llu) counts %d entries, holds %d\n",
		     level, (unsigned long long)page_to_pfn(vs->mm->pool, page),
		     atomic_load(&page->pt_count), used);
	if (atomic_load(&page->flags) & PG_PT_DEAD)
		VERR(vs,
		     "level-%d table (frame %llu) is linked but marked dead\n",
		     level,
		     (unsigned long long)page_to_pfn(vs->mm->pool, page));
	/*
	 * No walker runs while we verify (every VMA is write-locked, and
	 * lockless walkers take neither): refcount's count is the entries
	 * alone, and no PMD table is locked (a waiter's mark may stay).
	 */
	if (level == 1 && (vs->mm->pt_flags & PTF_REFCOUNT) &&
	    atomic_load(&page->pte_refcount) != used)
		VERR(vs, "PTE table (frame %llu) has refcount %d, %d entries\n",
		     (unsigned long long)page_to_pfn(vs->mm->pool, page),
		     atomic_load(&page->pte_refcount), used);
	if (level == 2 && vs->mm->pt_ops == &pt_scheme_pmd_rwsem &&
	    (atomic_load(&page->pmd_rwsem) & ~RWSEM_WAITERS))
		VERR(vs, "PMD table (frame %llu) is locked: %#x\n",
		     (unsigned long long)page_to_pfn(vs->mm->pool, page),
		     atomic_load(&page->pmd_rwsem));
}

/* A page-cache page mapped at @addr: the page of the covering VMA's
 * file at the VMA's index, and writable only as writeback allows. */
static void verify_file_pte(struct vstate *vs, struct page *page, pteval_t e,
			    uint64_t addr)
{
	struct vm_area_struct *vma = vs->vma;
	unsigned int fl = atomic_load(&page->flags);
	uint64_t index;

	vs->file++;
	if (!covered(vs, addr))
		return;
	index = vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT);
	if (!vma->vm_file || page->mapping != vma->vm_file ||
	    page->index != index)
		VERR(vs,
		     "page-cache page at %#llx: file %p index %#llx, its VMA "
		     "maps file %p at index %#llx\n",
		     (unsigned long long)addr, page->mapping,
		     (unsigned long long)page->index, (void *)vma->vm_file,
		     (unsigned long long)index);
	if (atomic_load(&page->mapcount) < 1 ||
	    atomic_load(&page->refcount) < 2)
		VERR(vs, "page-cache page at %#llx: mapcount %d refcount %d\n",
		     (unsigned long long)addr, atomic_load(&page->mapcount),
		     atomic_load(&page->refcount));
	if ((e & _PAGE_RW) && !(vma->vm_flags & VM_SHARED))
		VERR(vs,
		     "page-cache page at %#llx writable in a private "
		     "mapping\n",
		     (unsigned long long)addr);
	/* writenotify: writable only once dirtied (page_mkclean undoes it) */
	if ((e & _PAGE_RW) && vma_needs_dirty_tracking(vma) && !(fl & PG_DIRTY))
		VERR(vs, "clean page-cache page at %#llx is writable\n",
		     (unsigned long long)addr);
}

static void verify_ptes(struct vstate *vs, pteval_t *pte, uint64_t base)
{
	struct smm_pool *pool = vs->mm->pool;
	int used = 0;

	for (int i = 0; i < PTRS_PER_TABLE; i++) {
		pteval_t e = pte_read(&pte[i]);
		uint64_t addr = base + ((uint64_t)i << PAGE_SHIFT);
		struct page *page;

		if (pte_none(e))
			continue;
		used++;
		if (!covered(vs, addr))
			VERR(vs, "entry %#llx at %#llx, outside every VMA\n",
			     (unsigned long long)e, (unsigned long long)addr);
		if (!pte_mapped(e) || pte_pfn(e) >= pool->nr_frames) {
			VERR(vs, "bad entry %#llx at %#llx\n",
			     (unsigned long long)e, (unsigned long long)addr);
			continue;
		}
		if (is_zero_pfn(pool, pte_pfn(e))) {
			vs->zero++;
			if (e & _PAGE_RW)
				VERR(vs, "writable zero page at %#llx\n",
				     (unsigned long long)addr);
			continue;
		}
		page = pfn_to_page(pool, pte_pfn(e));
		if (atomic_load(&page->flags) & PG_FILE) {
			verify_file_pte(vs, page, e, addr);
			continue;
		}
		vs->anon++;
		if (atomic_load(&page->flags) != PG_ANON &&
		    !(atomic_load(&page->flags) & PG_ANON))
			VERR(vs, "page at %#llx is not anonymous (flags %#x)\n",
			     (unsigned long long)addr,
			     atomic_load(&page->flags));
		/*
		 * Exclusive (PageAnonExclusive): mapped once, here, and
		 * writable only then; shared with a fork child or parent:
		 * mapped at least here, read-only. Anchored in the tree of
		 * its VMA's anon_vma (the same root), at the VMA's linear
		 * index.
		 */
		if ((atomic_load(&page->flags) & PG_ANON_EXCLUSIVE) ?
			    atomic_load(&page->mapcount) != 1 :
			    atomic_load(&page->mapcount) < 1 ||
				    (e & _PAGE_RW) ||
				    atomic_load(&page->refcount) <
					    atomic_load(&page->mapcount))
			VERR(vs,
			     "page at %#llx: mapcount %d refcount %d, %s, "
			     "entry %#llx\n",
			     (unsigned long long)addr,
			     atomic_load(&page->mapcount),
			     atomic_load(&page->refcount),
			     atomic_load(&page->flags) & PG_ANON_EXCLUSIVE ?
				     "exclusive" :
				     "shared",
			     (unsigned long long)e);
		if (covered(vs, addr) &&
		    (!page->mapping || !vs->vma->anon_vma ||
		     ((struct anon_vma *)page->mapping)->root !=
			     vs->vma->anon_vma->root ||
		     page->index !=
			     vs->vma->vm_pgoff + ((addr - vs->vma->vm_start) >>
						  PAGE_SHIFT)))
			VERR(vs,
			     "page at %#llx: mapping %p index %#llx, its VMA "
			     "has anon_vma %p and gives index %#llx\n",
			     (unsigned long long)addr, page->mapping,
			     (unsigned long long)page->index,
			     (void *)vs->vma->anon_vma,
			     (unsigned long long)(vs->vma->vm_pgoff +
						  ((addr - vs->vma->vm_start) >>
						   PAGE_SHIFT)));
	}
	check_count(vs, pte, used, 1);
}

/* The page tables, against the counters; no reverse-map walker runs. */
static void verify_tables(struct vstate *vs)
{
	struct smm_mm *mm = vs->mm;
	struct smm_pool *pool = mm->pool;

	vs->vma = mm->vma_head;
	int pgd_used = 0;
	for (int g = 0; g < PTRS_PER_TABLE; g++) {
		pteval_t ge = mm->pgd[g];
		pteval_t *pud;
		int pud_used = 0;

		if (!(ge & _PAGE_PRESENT))
			continue;
		pgd_used++;
		check_table_page(vs, ge, 3);
		vs->puds++;
		pud = table_virt(pool, ge);
		for (int u = 0; u < PTRS_PER_TABLE; u++) {
			pteval_t ue = pud[u];
			pteval_t *pmd;
			int pmd_used = 0;

			if (!(ue & _PAGE_PRESENT))
				continue;
			pud_used++;
			check_table_page(vs, ue, 2);
			vs->pmds++;
			pmd = table_virt(pool, ue);
			for (int m = 0; m < PTRS_PER_TABLE; m++) {
				pteval_t me = pmd[m];
				uint64_t base = ((uint64_t)g << PGDIR_SHIFT) |
						((uint64_t)u << PUD_SHIFT) |
						((uint64_t)m << PMD_SHIFT);

				if (!(me & _PAGE_PRESENT))
					continue;
				pmd_used++;
				check_table_page(vs, me, 1);
				vs->ptes++;
				verify_ptes(vs, table_virt(pool, me), base);
			}
			check_count(vs, pmd, pmd_used, 2);
		}
		check_count(vs, pud, pud_used, 3);
	}
	check_count(vs, mm->pgd, pgd_used, 4);
	if (vs->anon != stripe_sum(mm->ctr, MC_RSS) ||
	    vs->zero != stripe_sum(mm->ctr, MC_ZERO) ||
	    vs->file != stripe_sum(mm->ctr, MC_FILE))
		VERR(vs,
		     "counters: rss_anon %ld zero_ptes %ld rss_file %ld, "
		     "tables hold %ld, %ld and %ld\n",
		     stripe_sum(mm->ctr, MC_RSS), stripe_sum(mm->ctr, MC_ZERO),
		     stripe_sum(mm->ctr, MC_FILE), vs->anon, vs->zero,
		     vs->file);
	if (vs->ptes != atomic_load(&mm->nr_ptes) ||
	    vs->pmds != atomic_load(&mm->nr_pmds) ||
	    vs->puds != atomic_load(&mm->nr_puds))
		VERR(vs,
		     "table counters %ld/%ld/%ld (pud/pmd/pte), tables %ld/%ld/%ld\n",
		     atomic_load(&mm->nr_puds), atomic_load(&mm->nr_pmds),
		     atomic_load(&mm->nr_ptes), vs->puds, vs->pmds, vs->ptes);
}

SMM_API int smm_mm_verify(struct smm_mm *mm)
{
	struct vstate vs = { .mm = mm };
	struct vm_area_struct *v;
	uint64_t nr = 0;

	if (!mm)
		return -EINVAL;
	rcu_thread_online();
	mmap_write_lock(mm);
	if (mm->dead) {
		mmap_write_unlock(mm);
		return -ESRCH;
	}
	for (v = mm->vma_head; v; v = v->vm_next) {
		vma_start_write(v); /* faults under VMA locks are out */
		nr++;
		if (v->vm_start >= v->vm_end || (v->vm_start & ~PAGE_MASK) ||
		    (v->vm_end & ~PAGE_MASK) || v->vm_end > SMM_TASK_SIZE)
			VERR(&vs, "bad VMA %#llx-%#llx\n",
			     (unsigned long long)v->vm_start,
			     (unsigned long long)v->vm_end);
		if (v->vm_next && v->vm_next->vm_start < v->vm_end)
			VERR(&vs, "VMAs overlap at %#llx\n",
			     (unsigned long long)v->vm_next->vm_start);
		if (v->vm_next && v->vm_next->vm_prev != v)
			VERR(&vs, "VMA list links broken at %#llx\n",
			     (unsigned long long)v->vm_start);
		if (!v->vm_next && mm->vma_tail != v)
			VERR(&vs, "VMA list tail is not the last VMA %#llx\n",
			     (unsigned long long)v->vm_start);
		if (v->detached)
			VERR(&vs, "detached VMA %#llx in the list\n",
			     (unsigned long long)v->vm_start);
	}
	if (!mm->vma_head && mm->vma_tail)
		VERR(&vs, "empty VMA list with a tail\n");
	if (nr != mm->nr_vmas)
		VERR(&vs, "nr_vmas %llu, list has %llu\n",
		     (unsigned long long)mm->nr_vmas, (unsigned long long)nr);
	for (v = mm->vma_head; v; v = v->vm_next)
		if (find_vma(mm, v->vm_start) != v)
			VERR(&vs, "tree lookup of %#llx misses its VMA\n",
			     (unsigned long long)v->vm_start);

	/*
	 * Reverse-map walkers (truncation, page_mkclean) change entries
	 * without mmap_lock: hold new ones off and wait for those at work
	 * (rmap_begin() in rmap.c), so that the walk sees still tables.
	 */
	atomic_store(&mm->rmap_verifying, 1);
	while (atomic_load(&mm->rmap_active))
		sched_yield();
	verify_tables(&vs);
	atomic_store(&mm->rmap_verifying, 0);
	mmap_write_unlock(mm);
	return vs.errors ? -EUCLEAN : 0;
}
