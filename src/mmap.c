/*
 * mmap.c - mmap and munmap on an address space: argument checks with
 * Linux's errno values, placement (hint, top-down, bottom-up fallback),
 * and unmapping with free_pgtables()'s floor/ceiling rule. VMAs are split
 * and merged through vma.c.
 *
 * Locking: each operation takes mmap_lock for write; VMA structures and the
 * tree nodes it may need are allocated before anything changes, so a
 * failed allocation leaves the address space as it was. munmap downgrades
 * to the read lock for its zap, and MAP_POPULATE runs after the write lock
 * is dropped, under the read lock, as in Linux.
 */
#include <errno.h>
#include "mm.h"
#include "fault.h"
#include "pt_scheme.h"
#include "filemap.h"

#define MMAP_MIN_ADDR	    0x10000ULL
#define TASK_UNMAPPED_BASE  PAGE_ALIGN(SMM_TASK_SIZE / 3)
#define MAP_TYPE	    0x0f
#define MAP_SHARED_VALIDATE 0x03
#define MAP_NONBLOCK	    0x10000
/* The flags MAP_SHARED_VALIDATE accepts (Linux's LEGACY_MAP_MASK, with
 * MAP_DENYWRITE, MAP_EXECUTABLE, MAP_UNINITIALIZED and MAP_HUGETLB). */
#define LEGACY_MAP_MASK                                              \
	(SMM_MAP_SHARED | SMM_MAP_PRIVATE | SMM_MAP_FIXED |          \
	 SMM_MAP_ANONYMOUS | 0x0800 | 0x1000 | 0x4000000 | 0x40000 | \
	 SMM_MAP_GROWSDOWN | SMM_MAP_LOCKED | SMM_MAP_NORESERVE |    \
	 SMM_MAP_POPULATE | MAP_NONBLOCK | SMM_MAP_STACK)

#ifdef SMM_DEBUG
/* Test hook: munmap has downgraded mmap_lock and is about to zap. */
void (*smm_debug_munmap_hook)(struct smm_mm *mm, uint64_t start, uint64_t end);
#endif

/*
 * Unmap [start, end): split the VMAs at the edges, detach the ones inside,
 * zap them and free the page tables only they needed. Takes up to two VMAs
 * from @pa and one tree update.
 *
 * With @downgrade (munmap itself, whose caller changes nothing more), it
 * gives back what is left of @pa and downgrades mmap_lock to read once the
 * VMAs are unpublished, as Linux's munmap does, and returns 1 holding it
 * for read; it returns 0 or an error still holding it for write if there
 * was nothing to unmap or the unmap was refused. The zap and
 * free_pgtables() then run beside faults, in the VMAs that remain (the
 * halves of the ones split here too), and beside other readers. They
 * cannot meet: the range is in no VMA, no writer can map into it before
 * we unlock, and free_pgtables() frees only tables that no remaining VMA
 * covers (docs/LOCKING.md, "munmap under the read lock").
 */
static int munmap_vmas(struct smm_mm *mm, uint64_t start, uint64_t end,
		       struct vma_prealloc *pa, bool downgrade)
{
	struct vm_area_struct *vma, *last, *prev, *next, *v;
	uint64_t lo;

	mmap_assert_write_locked(mm);
	vma = vma_find_list(mm, start);
	if (!vma || vma->vm_start >= end)
		return 0;
	/*
	 * A hole in the middle of one VMA leaves one VMA more: Linux refuses
	 * it at max_map_count (vms_gather_munmap_vmas()); the other splits
	 * of an unmap add nothing in the end and are not checked.
	 */
	if (vma->vm_start < start && end < vma->vm_end &&
	    mm->nr_vmas >= DEFAULT_MAX_MAP_COUNT)
		return -ENOMEM;
	lo = MIN(start, vma->vm_start);
	if (vma->vm_start < start) {
		vma_split(mm, vma, start, pa);
		vma = vma->vm_next;
	}
	for (last = vma; last->vm_next && last->vm_next->vm_start < end;)
		last = last->vm_next;
	if (last->vm_end > end)
		vma_split(mm, last, end, pa);

	/* The neighbours, for free_pgtables()'s floor and ceiling. */
	prev = vma->vm_prev;
	next = last->vm_next;
	vma_detach_range(mm, vma, last);
	/* Unpublish before zapping: no lookup may find them any more. */
	vma_tree_update(mm, lo, end + 1);
	for (v = vma;; v = v->vm_next) {
		if (v->vm_flags & VM_LOCKED)
			mm->locked_vm -= (v->vm_end - v->vm_start) >>
					 PAGE_SHIFT;
		if (v == last)
			break;
	}
	if (downgrade) {
		/* Spare VMAs go back to mm->vma_cache: a writer's. */
		vma_prealloc_free(pa);
		mmap_write_downgrade(mm);
#ifdef SMM_DEBUG
		if (smm_debug_munmap_hook)
			smm_debug_munmap_hook(mm, start, end);
#endif
	}

	unmap_region(mm, vma, last, prev ? prev->vm_end : 0,
		     next ? next->vm_start : 0, ZAP_MUNMAP);
	for (v = vma;;) {
		struct vm_area_struct *n = v->vm_next;
		bool done = v == last;

		/* unmap_region() took it out of i_mmap. */
		if (v->vm_file)
			fput(v->vm_file);
		vma_free_rcu(v);
		if (done)
			break;
		v = n;
	}
	return downgrade;
}

int do_munmap(struct smm_mm *mm, uint64_t start, uint64_t end,
	      struct vma_prealloc *pa)
{
	return munmap_vmas(mm, start, end, pa, false);
}

SMM_API int smm_munmap(struct smm_mm *mm, uint64_t start, uint64_t len)
{
	struct vma_prealloc pa;
	uint64_t end;
	int err;

	if (!mm)
		return -EINVAL;
	if ((start & ~PAGE_MASK) || start > SMM_TASK_SIZE ||
	    len > SMM_TASK_SIZE - start)
		return -EINVAL;
	len = PAGE_ALIGN(len);
	if (!len)
		return -EINVAL;
	end = start + len;
	rcu_thread_online();
	mmap_write_lock(mm);
	if (mm->dead) {
		err = -ESRCH;
		goto out;
	}
	err = vma_prealloc(mm, &pa, 2, 2, 1);
	if (err)
		goto out;
	err = munmap_vmas(mm, start, end, &pa, true);
	if (err == 1) {
		mmap_read_unlock(mm);
		return 0;
	}
	vma_prealloc_free(&pa);
out:
	mmap_write_unlock(mm);
	return err;
}

/* ---- placement ---- */

/* No VMA overlaps [addr, addr + len): MAP_FIXED_NOREPLACE's test. */
static bool range_free(struct smm_mm *mm, uint64_t addr, uint64_t len)
{
	struct vm_area_struct *vma = find_vma(mm, addr);

	return !vma || addr + len <= vma->vm_start;
}

/*
 * Placement's view of a range: free of VMAs and of the guard gap below a
 * VM_GROWSDOWN one (x86's hint check: addr + len <= vm_start_gap(vma)).
 */
static bool range_placeable(struct smm_mm *mm, uint64_t addr, uint64_t len)
{
	struct vm_area_struct *vma = find_vma(mm, addr);

	return !vma || addr + len <= vm_start_gap(vma);
}

/*
 * Highest free [a, a+len) with low <= a and a + len <= high, or 0; then
 * the lowest one. Both search the gaps the VMA tree records: O(log n).
 */
static uint64_t unmapped_area_topdown(struct smm_mm *mm, uint64_t len,
				      uint64_t low, uint64_t high)
{
	uint64_t a;

	return vma_tree_find_gap(mm, len, low, high, true, &a) ? a : 0;
}

static uint64_t unmapped_area(struct smm_mm *mm, uint64_t len, uint64_t low,
			      uint64_t high)
{
	uint64_t a;

	return vma_tree_find_gap(mm, len, low, high, false, &a) ? a : 0;
}

/* x86-64's arch_get_unmapped_area_topdown() and the generic checks
 * around it. Returns an address or a negative errno. */
int64_t get_unmapped_area(struct smm_mm *mm, uint64_t addr, uint64_t len,
			  int flags)
{
	if (len > SMM_TASK_SIZE)
		return -ENOMEM;
	if (!(flags & SMM_MAP_FIXED)) {
		uint64_t a = 0;

		if (addr) {
			addr &= PAGE_MASK;
			if (SMM_TASK_SIZE - len >= addr &&
			    range_placeable(mm, addr, len))
				return (int64_t)addr;
		}
		a = unmapped_area_topdown(mm, len, PAGE_SIZE, mm->mmap_base);
		if (!a)
			a = unmapped_area(mm, len, TASK_UNMAPPED_BASE,
					  SMM_TASK_SIZE);
		if (!a)
			return -ENOMEM;
		addr = a;
	}
	if (addr > SMM_TASK_SIZE - len)
		return -ENOMEM;
	if (addr & ~PAGE_MASK)
		return -EINVAL;
	return (int64_t)addr;
}

/*
 * Linux's do_mmap() and mmap_region(), in its order of checks: @file NULL
 * for anonymous memory (MAP_SHARED then makes a file of its own), else
 * mapped from page offset @pgoff.
 */
static int64_t do_mmap(struct smm_mm *mm, uint64_t addr, uint64_t len, int prot,
		       int flags, struct smm_file *file, uint64_t pgoff)
{
	struct vma_prealloc pa;
	unsigned long vm_flags;
	struct smm_file *shm = NULL;
	int orig_flags = flags;
	int64_t ret;

	if (!len)
		return -EINVAL;
	if (flags & SMM_MAP_FIXED_NOREPLACE)
		flags |= SMM_MAP_FIXED;
	if (!(flags & SMM_MAP_FIXED)) {
		addr &= PAGE_MASK;
		if (addr && addr < MMAP_MIN_ADDR)
			addr = MMAP_MIN_ADDR;
	}
	len = PAGE_ALIGN(len);
	if (!len)
		return -ENOMEM;
	if (pgoff + (len >> PAGE_SHIFT) < pgoff)
		return -EOVERFLOW;
	vm_flags = calc_vm_prot_bits(prot) | VM_MAYREAD | VM_MAYWRITE |
		   VM_MAYEXEC;
	/* calc_vm_flag_bits(); a stack gets VM_NOHUGEPAGE even with THP
	 * disabled, so it does not merge with an ordinary neighbour. */
	if (flags & SMM_MAP_GROWSDOWN)
		vm_flags |= VM_GROWSDOWN;
	if (flags & SMM_MAP_LOCKED)
		vm_flags |= VM_LOCKED;
	if (flags & SMM_MAP_STACK)
		vm_flags |= VM_NOHUGEPAGE;

	rcu_thread_online();
	mmap_write_lock(mm);
	if (mm->dead) {
		ret = -ESRCH;
		goto out;
	}
	/* Linux's do_mmap() checks before placement, merging or not. */
	if (mm->nr_vmas > DEFAULT_MAX_MAP_COUNT) {
		ret = -ENOMEM;
		goto out;
	}
	ret = get_unmapped_area(mm, addr, len, flags);
	if (ret < 0)
		goto out;
	addr = (uint64_t)ret;
	if ((flags & SMM_MAP_FIXED_NOREPLACE) && !range_free(mm, addr, len)) {
		ret = -EEXIST;
		goto out;
	}
	/* Checked before MAP_FIXED unmaps what it replaces, as Linux does. */
	if (!mlock_future_ok(mm, vm_flags, len)) {
		ret = -EAGAIN;
		goto out;
	}
	ret = -EINVAL;
	if (file) {
		/* file_mmap_ok(): the last byte within a loff_t */
		if (pgoff > (((uint64_t)INT64_MAX - len) >> PAGE_SHIFT)) {
			ret = -EOVERFLOW;
			goto out;
		}
		switch (flags & MAP_TYPE) {
		case MAP_SHARED_VALIDATE:
			if (orig_flags & ~LEGACY_MAP_MASK) {
				ret = -EOPNOTSUPP;
				goto out;
			}
			/* fall through */
		case SMM_MAP_SHARED:
			if ((prot & SMM_PROT_WRITE) && !file->may_write) {
				ret = -EACCES;
				goto out;
			}
			vm_flags |= VM_SHARED | VM_MAYSHARE;
			if (!file->may_write)
				vm_flags &= ~(VM_MAYWRITE | VM_SHARED);
			/* fall through */
		case SMM_MAP_PRIVATE:
			if (!file->may_read) {
				ret = -EACCES;
				goto out;
			}
			if (vm_flags & VM_GROWSDOWN)
				goto out;
			break;
		default:
			goto out;
		}
	} else {
		switch (flags & MAP_TYPE) {
		case SMM_MAP_SHARED:
			if (vm_flags & VM_GROWSDOWN)
				goto out;
			pgoff = 0;
			vm_flags |= VM_SHARED | VM_MAYSHARE;
			break;
		case SMM_MAP_PRIVATE:
			pgoff = addr >> PAGE_SHIFT;
			break;
		default:
			goto out;
		}
	}
	if (flags & SMM_MAP_NORESERVE)
		vm_flags |= VM_NORESERVE;
	if ((vm_flags & (VM_NORESERVE | VM_SHARED | VM_WRITE)) == VM_WRITE)
		vm_flags |= VM_ACCOUNT;

	ret = -ENOMEM;
	if (!file && (vm_flags & VM_SHARED)) {
		/* shmem_zero_setup(): a file of the mapping's size */
		shm = shmem_file_new(mm->pool, len);
		if (!shm)
			goto out;
		file = shm;
	}
	if (vma_prealloc(mm, &pa, 3, 2, 2))
		goto out;
	if ((flags & SMM_MAP_FIXED) && do_munmap(mm, addr, addr + len, &pa)) {
		vma_prealloc_free(&pa);
		goto out;
	}
	vma_merge_new_range(mm, addr, addr + len, vm_flags, file, pgoff, NULL,
			    NULL, &pa);
	vma_tree_update(mm, addr, addr + len + 1);
	if (vm_flags & VM_LOCKED)
		mm->locked_vm += len >> PAGE_SHIFT;
	vma_prealloc_free(&pa);
	ret = (int64_t)addr;
out:
	/* The mapping holds its own reference now, or failed. */
	if (shm)
		fput(shm);
	mmap_write_unlock(mm);
	if (ret >= 0 &&
	    ((vm_flags & VM_LOCKED) ||
	     (flags & (SMM_MAP_POPULATE | MAP_NONBLOCK)) == SMM_MAP_POPULATE))
		mm_populate(mm, addr, addr + len, true);
	return ret;
}

SMM_API int64_t smm_mmap(struct smm_mm *mm, uint64_t addr, uint64_t len,
			 int prot, int flags)
{
	if (!mm)
		return -EINVAL;
	if (!(flags & SMM_MAP_ANONYMOUS))
		return -EBADF; /* fd -1: files go through smm_mmap_file() */
	return do_mmap(mm, addr, len, prot, flags, NULL, 0);
}

SMM_API int64_t smm_mmap_file(struct smm_mm *mm, uint64_t addr, uint64_t len,
			      int prot, int flags, struct smm_file *file,
			      uint64_t offset)
{
	if (!mm)
		return -EINVAL;
	/* x86's sys_mmap() checks the offset before anything else */
	if (offset & ~PAGE_MASK)
		return -EINVAL;
	if (!file)
		return -EBADF;
	if (flags & SMM_MAP_ANONYMOUS)
		return -EINVAL;
	if (file->pool != mm->pool)
		return -EXDEV;
	return do_mmap(mm, addr, len, prot, flags, file, offset >> PAGE_SHIFT);
}
