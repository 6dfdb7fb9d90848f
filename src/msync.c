/*
 * msync.c - msync(2): argument checks with Linux's errno values and order,
 * the walk over the VMAs of the range, and MS_SYNC's writeback of the
 * shared file mappings in it (filemap_writeback()).
 *
 * Locking: mmap_lock held for read while the VMAs are looked at; each
 * file's writeback runs without it, holding a reference on the file, as
 * Linux drops mmap_lock around vfs_fsync_range().
 */
#include <errno.h>
#include "filemap.h"

SMM_API int smm_msync(struct smm_mm *mm, uint64_t start, uint64_t len,
		      int flags)
{
	int err = 0, unmapped = 0;
	uint64_t end;

	if (!mm)
		return -EINVAL;
	if (flags & ~(SMM_MS_ASYNC | SMM_MS_INVALIDATE | SMM_MS_SYNC))
		return -EINVAL;
	if (start & ~PAGE_MASK)
		return -EINVAL;
	if ((flags & SMM_MS_ASYNC) && (flags & SMM_MS_SYNC))
		return -EINVAL;
	len = PAGE_ALIGN(len);
	end = start + len;
	if (end < start)
		return -ENOMEM;
	if (end == start)
		return 0;
	rcu_thread_online();
	mmap_read_lock(mm);
	if (mm->dead) {
		mmap_read_unlock(mm);
		return -ESRCH;
	}
	for (struct vm_area_struct *vma = find_vma(mm, start);;) {
		struct smm_file *f;
		uint64_t first, last;

		if (!vma) {
			err = -ENOMEM;
			break;
		}
		if (start < vma->vm_start) {
			/* A hole: MS_ASYNC alone stops at once. */
			if (flags == SMM_MS_ASYNC) {
				err = -ENOMEM;
				break;
			}
			start = vma->vm_start;
			if (start >= end) {
				err = -ENOMEM;
				break;
			}
			unmapped = -ENOMEM;
		}
		if ((flags & SMM_MS_INVALIDATE) &&
		    (vma->vm_flags & VM_LOCKED)) {
			err = -EBUSY;
			break;
		}
		f = vma->vm_file;
		first = vma->vm_pgoff + ((start - vma->vm_start) >> PAGE_SHIFT);
		last = vma->vm_pgoff +
		       ((MIN(end, vma->vm_end) - vma->vm_start) >> PAGE_SHIFT) -
		       1;
		start = vma->vm_end;
		if ((flags & SMM_MS_SYNC) && f && (vma->vm_flags & VM_SHARED)) {
			get_file(f);
			mmap_read_unlock(mm);
			err = filemap_writeback(f, first, last, true);
			fput(f);
			if (err || start >= end)
				return err ? err : unmapped;
			mmap_read_lock(mm);
			if (mm->dead) {
				err = -ESRCH;
				break;
			}
			vma = find_vma(mm, start);
		} else {
			if (start >= end)
				break;
			vma = vma->vm_next;
		}
	}
	mmap_read_unlock(mm);
	return err ? err : unmapped;
}
