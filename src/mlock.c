/*
 * mlock.c - mlock(2), mlock2(2), munlock(2): VM_LOCKED (and
 * VM_LOCKONFAULT) on VMAs through vma_modify_range(), mm->locked_vm and
 * its limit (SMM_MLOCK_LIMIT, Linux's default RLIMIT_MEMLOCK), and
 * populating what was locked. softmm has no reclaim that could take a
 * locked page away, so VM_LOCKED matters for what it refuses (DONTNEED,
 * FREE, PAGEOUT, COLD answer -EINVAL) and for merging.
 *
 * Locking: the flags and locked_vm change under mmap_lock held for write;
 * populate runs after it is dropped, under the read lock, as in Linux.
 */
#include <errno.h>
#include "mm.h"
#include "fault.h"

/* Pages of VM_LOCKED VMAs in [start, start + len), counted as Linux's
 * count_mm_mlocked_page_nr() counts them. */
static uint64_t mlocked_pages(struct smm_mm *mm, uint64_t start, uint64_t len)
{
	uint64_t end = start + len, count = 0;

	if (end < start)
		end = SMM_TASK_SIZE;
	for (struct vm_area_struct *v = find_vma(mm, start);
	     v && v->vm_start < end; v = v->vm_next) {
		if (!(v->vm_flags & VM_LOCKED))
			continue;
		if (start > v->vm_start)
			count -= start - v->vm_start;
		if (end < v->vm_end) {
			count += end - v->vm_start;
			break;
		}
		count += v->vm_end - v->vm_start;
	}
	return count >> PAGE_SHIFT;
}

static unsigned long lock_flags(struct vm_area_struct *vma, void *arg)
{
	return (vma->vm_flags & ~VM_LOCKED_MASK) | *(unsigned long *)arg;
}

static void lock_changed(struct vm_area_struct *vma, uint64_t start,
			 uint64_t end, unsigned long oldflags, void *arg)
{
	uint64_t pages = (end - start) >> PAGE_SHIFT;

	if (!(vma->vm_flags & VM_LOCKED))
		vma->vm_mm->locked_vm -= pages;
	else if (!(oldflags & VM_LOCKED))
		vma->vm_mm->locked_vm += pages;
}

static const struct vma_range_ops lock_ops = {
	.new_flags = lock_flags,
	.changed = lock_changed,
	.split_errno = -ENOMEM,
};

/* Fault in what mlock locked, with __mlock_posix_error_return()'s errno:
 * a PROT_NONE VMA stops it (-EFAULT: -ENOMEM), so does the pool running
 * out (-ENOMEM: -EAGAIN). */
static int mlock_populate(struct smm_mm *mm, uint64_t start, uint64_t end)
{
	int err = mm_populate(mm, start, end, false);

	if (err == -EFAULT)
		return -ENOMEM;
	if (err == -ENOMEM)
		return -EAGAIN;
	return err;
}

static int do_mlock(struct smm_mm *mm, uint64_t start, uint64_t len,
		    unsigned long flags)
{
	uint64_t locked, end;
	int err;

	if (!mm)
		return -EINVAL;
	/* Linux rounds the range out; a length that wraps becomes 0. */
	len = PAGE_ALIGN(len + (start & ~PAGE_MASK));
	start &= PAGE_MASK;
	rcu_thread_online();
	mmap_write_lock(mm);
	if (mm->dead) {
		err = -ESRCH;
		goto out;
	}
	err = -ENOMEM;
	if (flags & VM_LOCKED) {
		locked = (len >> PAGE_SHIFT) + mm->locked_vm;
		/* What is locked already does not count twice. */
		if (locked > MLOCK_LIMIT_PAGES)
			locked -= mlocked_pages(mm, start, len);
		if (locked > MLOCK_LIMIT_PAGES)
			goto out;
	}
	end = start + len;
	err = -EINVAL;
	if (end < start)
		goto out;
	err = 0;
	if (end == start)
		goto out;
	err = vma_modify_range(mm, start, end, false, &lock_ops, &flags);
out:
	mmap_write_unlock(mm);
	if (!err && (flags & VM_LOCKED) && len)
		err = mlock_populate(mm, start, start + len);
	return err;
}

SMM_API int smm_mlock(struct smm_mm *mm, uint64_t addr, uint64_t len)
{
	return do_mlock(mm, addr, len, VM_LOCKED);
}

SMM_API int smm_mlock2(struct smm_mm *mm, uint64_t addr, uint64_t len,
		       unsigned int flags)
{
	if (flags & ~(unsigned int)SMM_MLOCK_ONFAULT)
		return -EINVAL;
	return do_mlock(
		mm, addr, len,
		VM_LOCKED | (flags & SMM_MLOCK_ONFAULT ? VM_LOCKONFAULT : 0));
}

SMM_API int smm_munlock(struct smm_mm *mm, uint64_t addr, uint64_t len)
{
	return do_mlock(mm, addr, len, 0);
}
