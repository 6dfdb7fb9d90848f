/*
 * madvise.c - madvise(2) for anonymous memory: DONTNEED, FREE, PAGEOUT,
 * POPULATE_READ, POPULATE_WRITE, WILLNEED; argument checks and the walk
 * over VMAs with Linux's treatment of holes.
 *
 * Locking: mmap_lock held for read throughout; zaps go through an
 * mmu_gather flushed before the lock is dropped.
 */
#include <errno.h>
#include "mm.h"
#include "fault.h"
#include "pt_scheme.h"

static bool madvise_behavior_valid(int advice)
{
	switch (advice) {
	case SMM_MADV_WILLNEED:
	case SMM_MADV_DONTNEED:
	case SMM_MADV_FREE:
	case SMM_MADV_PAGEOUT:
	case SMM_MADV_POPULATE_READ:
	case SMM_MADV_POPULATE_WRITE:
		return true;
	}
	return false;
}

/*
 * MADV_POPULATE_*: fault in page by page. A hole gives -ENOMEM, a VMA
 * whose protection forbids the access -EINVAL (GUP's check_vma_flags for
 * populate), a failed fault -ENOMEM or -EFAULT; pages before the failure
 * stay populated.
 */
static int madvise_populate(struct smm_mm *mm, uint64_t start, uint64_t end,
			    bool write)
{
	while (start < end) {
		struct vm_area_struct *vma = vma_lookup(mm, start);
		uint64_t stop;
		int err;

		if (!vma)
			return -ENOMEM;
		if (write ? !(vma->vm_flags & VM_WRITE) : !(vma->vm_flags & VM_READ))
			return -EINVAL;
		stop = MIN(end, vma->vm_end);
		err = populate_vma_range(mm, vma, start, stop, write);
		if (err)
			return err == -EFAULT ? -EFAULT : -ENOMEM;
		start = stop;
	}
	return 0;
}

static void madvise_vma(struct mmu_gather *tlb, struct vm_area_struct *vma,
			uint64_t start, uint64_t end, int advice)
{
	switch (advice) {
	case SMM_MADV_DONTNEED:
		zap_page_range(tlb, vma, start, end, ZAP_DONTNEED);
		break;
	case SMM_MADV_FREE:
		madvise_free_range(tlb, vma, start, end);
		break;
	case SMM_MADV_PAGEOUT:
		pageout_range(tlb, vma, start, end);
		break;
	case SMM_MADV_WILLNEED:	/* nothing to read ahead for anon memory */
		break;
	}
}

SMM_API int smm_madvise(struct smm_mm *mm, uint64_t start, uint64_t len_in,
			int advice)
{
	struct vm_area_struct *vma;
	struct mmu_gather tlb;
	uint64_t len, end;
	int err = 0;

	if (!madvise_behavior_valid(advice))
		return -EINVAL;
	if (start & ~PAGE_MASK)
		return -EINVAL;
	len = PAGE_ALIGN(len_in);
	if (len_in && !len)
		return -EINVAL;
	end = start + len;
	if (end < start)
		return -EINVAL;
	if (end == start)
		return 0;

	rcu_thread_online();
	mmap_read_lock(mm);
	if (mm->dead) {
		err = -ESRCH;
		goto out;
	}
	if (advice == SMM_MADV_POPULATE_READ || advice == SMM_MADV_POPULATE_WRITE) {
		err = madvise_populate(mm, start, end,
				       advice == SMM_MADV_POPULATE_WRITE);
		goto out;
	}
	/* Advise each mapped part; a hole anywhere makes the result -ENOMEM. */
	tlb_gather_mmu(&tlb, mm);
	for (vma = find_vma(mm, start); start < end; vma = vma->vm_next) {
		if (!vma) {
			err = -ENOMEM;
			break;
		}
		if (start < vma->vm_start) {
			err = -ENOMEM;
			start = vma->vm_start;
			if (start >= end)
				break;
		}
		madvise_vma(&tlb, vma, start, MIN(end, vma->vm_end), advice);
		start = MIN(end, vma->vm_end);
	}
	tlb_finish_mmu(&tlb);
out:
	mmap_read_unlock(mm);
	return err;
}
