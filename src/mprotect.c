/*
 * mprotect.c - mprotect(2): argument checks with Linux's errno values and
 * order, the walk over VMAs (a hole stops it with -ENOMEM after the VMAs
 * before it changed), commit accounting, VMAs split and merged through
 * vma.c, and change_protection(), the per-entry rewrite for the range
 * iterator (pagewalk.h).
 *
 * Locking: mmap_lock held for write throughout; each VMA changed is
 * write-locked (vma.c); entries change under their table's ptl; one
 * mmu_gather flushes the TLB before the lock is dropped.
 */
#include <errno.h>
#include "pagewalk.h"
#include "fault.h"

#define PROT_SEM       0x08
#define PROT_GROWSDOWN 0x01000000
#define PROT_GROWSUP   0x02000000

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
	old = ptep_get_and_clear(walk->mm, ptep); /* collect A/D */
	if (none) {
		new = (old & ~(_PAGE_PRESENT | _PAGE_RW)) | _PAGE_PROTNONE;
	} else {
		new = (old | _PAGE_PRESENT) & ~(_PAGE_PROTNONE | _PAGE_RW);
		if ((newflags & VM_WRITE) &&
		    !is_zero_pfn(walk->mm->pool, pte_pfn(old)))
			new |= _PAGE_RW;
	}
	set_pte(walk->mm, ptep, new);
	if ((old & _PAGE_PRESENT) &&
	    (!(new &_PAGE_PRESENT) || ((old & _PAGE_RW) && !(new &_PAGE_RW))))
		walk->tlb->need_flush = true;
	return WALK_CONTINUE;
}

static const struct mm_walk_ops change_walk_ops = {
	.pte_entry = change_pte_entry,
};

static int change_protection(struct mmu_gather *tlb, struct vm_area_struct *vma,
			     uint64_t start, uint64_t end,
			     unsigned long newflags)
{
	struct mm_walk walk = {
		.mm = tlb->mm,
		.vma = vma,
		.tlb = tlb,
		.private = &newflags,
	};

	mmap_assert_write_locked(tlb->mm);
	walk_page_range_vma(&walk, &change_walk_ops, start, end);
	return 0;
}

/*
 * Give [start, end) of @vma the flags @newflags, merging with *@pprev or
 * the next VMA where Linux would, splitting @vma where it would not.
 * *@pprev becomes the VMA that now covers [start, end).
 */
/*
 * Give [start, end) of @vma the flags @newflags: the VMAs through vma.c
 * (merging with *@pprev or the next VMA where Linux would, splitting where
 * it would not), then the entries. *@pprev becomes the VMA that now covers
 * [start, end).
 */
static int mprotect_fixup(struct smm_mm *mm, struct mmu_gather *tlb,
			  struct vm_area_struct *vma,
			  struct vm_area_struct **pprev, uint64_t start,
			  uint64_t end, unsigned long newflags,
			  struct vma_prealloc *pa)
{
	unsigned long oldflags = vma->vm_flags;

	if (newflags == oldflags) {
		*pprev = vma;
		return 0;
	}
	/*
	 * Commit accounting, as Linux keeps it: making a private mapping
	 * writable charges it; making it read-only again uncharges it only
	 * while no anonymous page was ever faulted in (no anon_vma). The
	 * flag is invisible, but it decides merging.
	 */
	if (newflags & VM_WRITE) {
		if (!(oldflags &
		      (VM_ACCOUNT | VM_WRITE | VM_SHARED | VM_NORESERVE)))
			newflags |= VM_ACCOUNT;
	} else if ((oldflags & VM_ACCOUNT) && !vma->anon_vma) {
		newflags &= ~VM_ACCOUNT;
	}
	vma = vma_modify_flags(mm, *pprev, vma, start, end, newflags, pa);
	if (!vma)
		return -ENOMEM; /* max_map_count */
	change_protection(tlb, vma, start, end, newflags);
	/*
	 * A private VM_LOCKED VMA becoming writable is faulted in for
	 * writing now, as Linux does, so that a write never has to break
	 * COW (of the zero page) later. Failures are ignored.
	 */
	if ((oldflags & (VM_WRITE | VM_SHARED | VM_LOCKED)) == VM_LOCKED &&
	    (newflags & VM_WRITE) && !(newflags & VM_LOCKONFAULT))
		populate_vma_range(mm, vma, start, end, true);
	*pprev = vma;
	return 0;
}

SMM_API int smm_mprotect(struct smm_mm *mm, uint64_t start, uint64_t len,
			 int prot)
{
	struct vm_area_struct *vma, *prev;
	struct vma_prealloc pa;
	struct mmu_gather tlb;
	uint64_t end, nstart, tmp;
	size_t m = 0;
	int grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
	int err;

	if (!mm)
		return -EINVAL;
	prot &= ~(PROT_GROWSDOWN | PROT_GROWSUP);
	if (grows == (PROT_GROWSDOWN | PROT_GROWSUP))
		return -EINVAL;
	if (start & ~PAGE_MASK)
		return -EINVAL;
	if (!len)
		return 0;
	len = PAGE_ALIGN(len);
	end = start + len;
	if (end <= start)
		return -ENOMEM;
	if (prot & ~(SMM_PROT_READ | SMM_PROT_WRITE | SMM_PROT_EXEC | PROT_SEM))
		return -EINVAL;

	rcu_thread_online();
	mmap_write_lock(mm);
	if (mm->dead) {
		err = -ESRCH;
		goto out;
	}
	/* Linux's order: a VMA in the range at all, then the grows checks,
	 * then a VMA at the start. */
	err = -ENOMEM;
	vma = vma_find_list(mm, start);
	if (!vma || vma->vm_start >= end)
		goto out;
	if (grows & PROT_GROWSDOWN) {
		/* The change reaches down to the stack's start. */
		start = vma->vm_start;
		err = -EINVAL;
		if (!(vma->vm_flags & VM_GROWSDOWN))
			goto out;
	} else {
		if (vma->vm_start > start)
			goto out;
		if (grows & PROT_GROWSUP) { /* nothing grows up on x86 */
			err = -EINVAL;
			goto out;
		}
	}
	for (struct vm_area_struct *v = vma; v && v->vm_start < end;
	     v = v->vm_next)
		m++;
	err = vma_prealloc(mm, &pa, 2, m + 2, 1);
	if (err)
		goto out;
	tlb_gather_mmu(&tlb, mm);
	prev = start > vma->vm_start ? vma : vma->vm_prev;
	nstart = start;
	tmp = vma->vm_start;
	while (vma && vma->vm_start < end) {
		unsigned long newflags;

		if (vma->vm_start != tmp) {
			err = -ENOMEM;
			break;
		}
		newflags = calc_vm_prot_bits(prot) |
			   (vma->vm_flags & ~VM_ACCESS_FLAGS);
		tmp = MIN(vma->vm_end, end);
		err = mprotect_fixup(mm, &tlb, vma, &prev, nstart, tmp,
				     newflags, &pa);
		if (err)
			break;
		nstart = tmp = prev->vm_end < end ? prev->vm_end : end;
		vma = prev->vm_next;
	}
	if (!err && tmp < end)
		err = -ENOMEM;
	vma_tree_update(mm, start, end + 1);
	vma_prealloc_free(&pa);
	tlb_finish_mmu(&tlb);
out:
	mmap_write_unlock(mm);
	return err;
}
