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
#include "filemap.h"

#define PROT_SEM       0x08
#define PROT_GROWSDOWN 0x01000000
#define PROT_GROWSUP   0x02000000

/*
 * Linux's can_change_pte_writable(): may a store go through @pte without
 * a fault now that the VMA is writable? Not to the zero page (copied on
 * write), nor to an anonymous page that fork left shared (not
 * PageAnonExclusive), nor to a page-cache page of a private mapping,
 * nor to a clean page-cache page of a shared mapping that writeback
 * tracks (the store must fault to dirty it: writenotify).
 */
static inline bool can_change_pte_writable(struct mm_walk *walk, pteval_t pte)
{
	struct smm_pool *pool = walk->mm->pool;
	struct vm_area_struct *vma = walk->vma;
	unsigned int fl;

	if (is_zero_pfn(pool, pte_pfn(pte)))
		return false;
	if ((pte & _PAGE_UFFD_WP) && (vma->vm_flags & VM_UFFD_WP))
		return false; /* a store must reach the uffd handler */
	fl = atomic_load_explicit(&pfn_to_page(pool, pte_pfn(pte))->flags,
				  memory_order_relaxed);
	if (!(fl & PG_FILE))
		/* an anonymous page, or a private copy of a file page: only
		 * if exclusive to this mm (fork shares it until a write) */
		return fl & PG_ANON_EXCLUSIVE;
	if (!(vma->vm_flags & VM_SHARED))
		return false;
	return !vma_needs_dirty_tracking(vma) || (pte & _PAGE_DIRTY);
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
	old = ptep_get_and_clear(walk->mm, ptep); /* collect A/D */
	if (none) {
		new = (old & ~(_PAGE_PRESENT | _PAGE_RW)) | _PAGE_PROTNONE;
	} else {
		new = (old | _PAGE_PRESENT) & ~(_PAGE_PROTNONE | _PAGE_RW);
		if ((newflags & VM_WRITE) && can_change_pte_writable(walk, old))
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

struct mprotect_arg {
	struct mmu_gather *tlb;
	int prot;
};

/*
 * The flags a VMA gets: the new protection, and commit accounting as
 * Linux keeps it: making a private mapping writable charges it; making it
 * read-only again uncharges an anonymous one only, and only while no
 * anonymous page was ever faulted in (no anon_vma). The flag is
 * invisible, but it decides merging.
 */
static unsigned long mprotect_flags(struct vm_area_struct *vma, void *arg)
{
	const struct mprotect_arg *a = arg;
	unsigned long oldflags = vma->vm_flags;
	unsigned long newflags = calc_vm_prot_bits(a->prot) |
				 (oldflags & ~VM_ACCESS_FLAGS);

	if (newflags == oldflags)
		return oldflags;
	if (newflags & VM_WRITE) {
		if (!(oldflags &
		      (VM_ACCOUNT | VM_WRITE | VM_SHARED | VM_NORESERVE)))
			newflags |= VM_ACCOUNT;
	} else if ((oldflags & VM_ACCOUNT) && !vma->vm_ops && !vma->anon_vma) {
		newflags &= ~VM_ACCOUNT;
	}
	return newflags;
}

/* [start, end) of @vma has its new flags: now the entries. */
static void mprotect_changed(struct vm_area_struct *vma, uint64_t start,
			     uint64_t end, unsigned long oldflags, void *arg)
{
	const struct mprotect_arg *a = arg;
	unsigned long newflags = vma->vm_flags;

	change_protection(a->tlb, vma, start, end, newflags);
	/*
	 * A private VM_LOCKED VMA becoming writable is faulted in for
	 * writing now, as Linux does, so that a write never has to break
	 * COW (of the zero page) later. Failures are ignored.
	 */
	if ((oldflags & (VM_WRITE | VM_SHARED | VM_LOCKED)) == VM_LOCKED &&
	    (newflags & VM_WRITE) && !(newflags & VM_LOCKONFAULT))
		populate_vma_range(vma->vm_mm, vma, &start, end, true, false);
}

/* A protection the VMA may not have (VM_MAY*): a shared mapping of a file
 * not open for writing cannot be made writable. */
static int mprotect_check(struct vm_area_struct *vma, void *arg)
{
	const struct mprotect_arg *a = arg;
	unsigned long newflags = calc_vm_prot_bits(a->prot) |
				 (vma->vm_flags & ~VM_ACCESS_FLAGS);

	/* newflags >> 4 puts the VM_MAY* bits over the VM_* ones */
	return (newflags & ~(newflags >> 4)) & VM_ACCESS_FLAGS ? -EACCES : 0;
}

static const struct vma_range_ops mprotect_ops = {
	.check = mprotect_check,
	.new_flags = mprotect_flags,
	.changed = mprotect_changed,
	.split_errno = -ENOMEM, /* max_map_count, or memory */
};

SMM_API int smm_mprotect(struct smm_mm *mm, uint64_t start, uint64_t len,
			 int prot)
{
	struct vm_area_struct *vma;
	struct mmu_gather tlb;
	struct mprotect_arg arg;
	uint64_t end;
	int grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
	int err;

	if (!mm)
		return -EINVAL;
	prot &= ~(PROT_GROWSDOWN | PROT_GROWSUP);
	arg.prot = prot;
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
	/* VMAs split and merged through vma.c; a hole stops the walk with
	 * -ENOMEM after the VMAs before it changed. */
	tlb_gather_mmu(&tlb, mm);
	arg.tlb = &tlb;
	err = vma_modify_range(mm, start, end, false, &mprotect_ops, &arg);
	tlb_finish_mmu(&tlb);
out:
	mmap_write_unlock(mm);
	return err;
}
