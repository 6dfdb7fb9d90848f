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
	if (old == 1)
		free(av);
}

/*
 * Linux's find_mergeable_anon_vma(): a VMA that touches @vma, with the same
 * flags but for access permissions and a linear pgoff, lends its anon_vma
 * (the next one first, then the previous one), so that the two can merge
 * again later. Needs mmap_lock (the neighbours must hold still) and
 * page_table_lock (their anon_vma may be being set).
 */
static struct anon_vma *find_mergeable_anon_vma(struct vm_area_struct *vma)
{
	struct vm_area_struct *n = vma->vm_next, *p = vma->vm_prev;

	if (n && n->anon_vma && vma->vm_end == n->vm_start &&
	    !((vma->vm_flags ^ n->vm_flags) & ~VM_ACCESS_FLAGS) &&
	    n->vm_pgoff == vma->vm_pgoff + ((n->vm_start - vma->vm_start) >>
					    PAGE_SHIFT))
		return n->anon_vma;
	if (p && p->anon_vma && p->vm_end == vma->vm_start &&
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
