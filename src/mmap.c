/*
 * mmap.c - mmap, munmap and mprotect on an address space: argument checks
 * with Linux's errno values, placement (hint, top-down, bottom-up
 * fallback), VMA split and merge as Linux does them for private anonymous
 * memory, and unmapping with free_pgtables()'s floor/ceiling rule.
 *
 * Locking: each operation takes mmap_lock for write; VMA structures and the
 * tree nodes it may need are allocated before anything changes, so a
 * failed allocation leaves the address space as it was. MAP_POPULATE runs
 * after the write lock is dropped, under the read lock, as in Linux.
 */
#include <errno.h>
#include "mm.h"
#include "fault.h"
#include "pt_scheme.h"

#define MMAP_MIN_ADDR		0x10000ULL
#define TASK_UNMAPPED_BASE	PAGE_ALIGN(SMM_TASK_SIZE / 3)
#define MAP_TYPE		0x0f
#define MAP_SHARED_VALIDATE	0x03
#define PROT_SEM		0x08
#define PROT_GROWSDOWN		0x01000000
#define PROT_GROWSUP		0x02000000

/*
 * What a writer may need, allocated before it changes anything: new VMAs
 * for splits, and tree nodes for @updates tree updates rebuilding up to @m
 * VMAs each.
 */
struct vma_prealloc {
	struct vm_area_struct *v[3];
	int nr;
};

static void prealloc_free(struct vma_prealloc *pa)
{
	while (pa->nr)
		vma_free(pa->v[--pa->nr]);
}

static int prealloc_vmas(struct smm_mm *mm, struct vma_prealloc *pa, int n,
			 size_t m, int updates)
{
	pa->nr = 0;
	for (int i = 0; i < n; i++) {
		pa->v[i] = vma_alloc(mm);
		if (!pa->v[i])
			goto fail;
		pa->nr++;
	}
	if (!vma_tree_reserve(mm, m, updates))
		return 0;
fail:
	prealloc_free(pa);
	return -ENOMEM;
}

static struct vm_area_struct *take_vma(struct vma_prealloc *pa)
{
	BUG_ON(!pa->nr);
	return pa->v[--pa->nr];
}


/*
 * Split @vma at @addr: @vma keeps [vm_start, addr), @new gets [addr,
 * vm_end) with the same flags, anon_vma and a matching pgoff.
 */
static void split_vma(struct smm_mm *mm, struct vm_area_struct *vma,
		      uint64_t addr, struct vm_area_struct *new)
{
	VM_BUG_ON(addr <= vma->vm_start || addr >= vma->vm_end);
	vma_start_write(vma);
	new->vm_start = addr;
	new->vm_end = vma->vm_end;
	new->vm_flags = vma->vm_flags;
	new->vm_pgoff = vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT);
	new->anon_vma = vma->anon_vma;
	WRITE_ONCE(vma->vm_end, addr);
	vma_link_after(mm, vma, new);
}

static void remove_vma(struct smm_mm *mm, struct vm_area_struct *vma)
{
	vma_start_write(vma);
	vma_unlink(mm, vma);
	vma_free_rcu(vma);
}

/* The first VMA ending above @addr, by the list (valid mid-operation). */
static struct vm_area_struct *list_find(struct smm_mm *mm, uint64_t addr)
{
	struct vm_area_struct *v = find_vma(mm, addr);

	/* The tree may be stale mid-operation; step along the list. */
	if (v)
		while (v->vm_prev && v->vm_prev->vm_end > addr)
			v = v->vm_prev;
	else
		for (v = mm->vma_head; v && v->vm_end <= addr; v = v->vm_next)
			;
	while (v && v->vm_end <= addr)
		v = v->vm_next;
	return v;
}

/*
 * Unmap [start, end): split the VMAs at the edges, detach the ones inside,
 * zap them and free the page tables only they needed. Takes up to two VMAs
 * from @pa and one tree update.
 */
static void do_munmap(struct smm_mm *mm, uint64_t start, uint64_t end,
		      struct vma_prealloc *pa)
{
	struct vm_area_struct *vma, *last, *prev, *next, *v;
	uint64_t lo;

	mmap_assert_write_locked(mm);
	vma = list_find(mm, start);
	if (!vma || vma->vm_start >= end)
		return;
	lo = MIN(start, vma->vm_start);
	if (vma->vm_start < start) {
		struct vm_area_struct *new = take_vma(pa);

		split_vma(mm, vma, start, new);
		vma = new;
	}
	for (last = vma; last->vm_next && last->vm_next->vm_start < end;)
		last = last->vm_next;
	if (last->vm_end > end)
		split_vma(mm, last, end, take_vma(pa));

	/* Detach [vma, last] as one chain; its vm_next links stay. */
	prev = vma->vm_prev;
	next = last->vm_next;
	for (v = vma;; v = v->vm_next) {
		/* Waits out faults under this VMA's lock; later ones fail. */
		vma_start_write(v);
		v->detached = true;
		mm->nr_vmas--;
		if (v == last)
			break;
	}
	if (prev)
		prev->vm_next = next;
	else
		mm->vma_head = next;
	if (next)
		next->vm_prev = prev;
	/* Unpublish before zapping: no lookup may find them any more. */
	vma_tree_update(mm, lo, end + 1);

	unmap_region(mm, vma, last, prev ? prev->vm_end : 0,
		     next ? next->vm_start : 0, ZAP_MUNMAP);
	for (v = vma;;) {
		struct vm_area_struct *n = v->vm_next;
		bool done = v == last;

		vma_free_rcu(v);
		if (done)
			break;
		v = n;
	}
}

SMM_API int smm_munmap(struct smm_mm *mm, uint64_t start, uint64_t len)
{
	struct vma_prealloc pa;
	uint64_t end;
	int err;

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
	err = prealloc_vmas(mm, &pa, 2, 2, 1);
	if (err)
		goto out;
	do_munmap(mm, start, end, &pa);
	prealloc_free(&pa);
out:
	mmap_write_unlock(mm);
	return err;
}

/* ---- placement ---- */

static bool range_free(struct smm_mm *mm, uint64_t addr, uint64_t len)
{
	struct vm_area_struct *vma = find_vma(mm, addr);

	return !vma || addr + len <= vma->vm_start;
}

/* Highest free [a, a+len) with low <= a and a + len <= high, or 0. */
static uint64_t unmapped_area_topdown(struct smm_mm *mm, uint64_t len,
				      uint64_t low, uint64_t high)
{
	struct vm_area_struct *v = mm->vma_head, *last = NULL;
	uint64_t gap_end;

	if (high < len || high - len < low)
		return 0;
	for (; v && v->vm_start < high; v = v->vm_next)
		last = v;
	/* Gaps from the top: [last->vm_end, high), then between VMAs. */
	gap_end = high;
	for (v = last;; v = v->vm_prev) {
		uint64_t gap_start = v ? v->vm_end : low;

		if (gap_start < low)
			gap_start = low;
		if (gap_end > gap_start && gap_end - gap_start >= len)
			return gap_end - len;
		if (!v)
			return 0;
		gap_end = MIN(gap_end, v->vm_start);
	}
}

/* Lowest free [a, a+len) with low <= a and a + len <= high, or 0. */
static uint64_t unmapped_area(struct smm_mm *mm, uint64_t len, uint64_t low,
			      uint64_t high)
{
	uint64_t gap_start = low;

	for (struct vm_area_struct *v = mm->vma_head; v; v = v->vm_next) {
		if (v->vm_end <= gap_start)
			continue;
		if (v->vm_start >= gap_start + len)
			break;
		gap_start = v->vm_end;
	}
	if (gap_start > high || high - gap_start < len)
		return 0;
	return gap_start;
}

/* x86-64's arch_get_unmapped_area_topdown() and the generic checks
 * around it. Returns an address or a negative errno. */
static int64_t get_unmapped_area(struct smm_mm *mm, uint64_t addr,
				 uint64_t len, int flags)
{
	if (len > SMM_TASK_SIZE)
		return -ENOMEM;
	if (!(flags & SMM_MAP_FIXED)) {
		uint64_t a = 0;

		if (addr) {
			addr &= PAGE_MASK;
			if (SMM_TASK_SIZE - len >= addr && range_free(mm, addr, len))
				return (int64_t)addr;
		}
		a = unmapped_area_topdown(mm, len, PAGE_SIZE, mm->mmap_base);
		if (!a)
			a = unmapped_area(mm, len, TASK_UNMAPPED_BASE, SMM_TASK_SIZE);
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

static unsigned long calc_vm_prot_bits(int prot)
{
	return (prot & SMM_PROT_READ ? VM_READ : 0) |
	       (prot & SMM_PROT_WRITE ? VM_WRITE : 0) |
	       (prot & SMM_PROT_EXEC ? VM_EXEC : 0);
}

/*
 * Insert [addr, end) with @vm_flags into a hole, merging with the VMAs on
 * either side as Linux's vma_merge_new_range() does: a new VMA has no
 * anon_vma yet, so each side is compatible alone, but merging both needs
 * the two sides compatible with each other.
 */
static void mmap_region(struct smm_mm *mm, uint64_t addr, uint64_t end,
			unsigned long vm_flags, struct vma_prealloc *pa)
{
	struct vm_area_struct *next = list_find(mm, addr);
	struct vm_area_struct *prev = next ? next->vm_prev : NULL;
	struct vm_area_struct *vma;
	bool left, right;

	if (!next)
		for (prev = mm->vma_head; prev && prev->vm_next;)
			prev = prev->vm_next;
	VM_BUG_ON(next && next->vm_start < end);
	left = prev && prev->vm_end == addr &&
	       vma_flags_mergeable(prev->vm_flags, vm_flags);
	right = next && next->vm_start == end &&
		vma_flags_mergeable(next->vm_flags, vm_flags) &&
		(!left || anon_vma_compatible(prev->anon_vma, next->anon_vma));

	if (left)
		vma_start_write(prev);
	if (right)
		vma_start_write(next);
	if (left && right) {
		WRITE_ONCE(prev->vm_end, next->vm_end);
		if (!prev->anon_vma)
			prev->anon_vma = next->anon_vma;
		remove_vma(mm, next);
	} else if (left) {
		WRITE_ONCE(prev->vm_end, end);
	} else if (right) {
		WRITE_ONCE(next->vm_start, addr);
		next->vm_pgoff = addr >> PAGE_SHIFT;
	} else {
		vma = take_vma(pa);
		vma->vm_start = addr;
		vma->vm_end = end;
		vma->vm_flags = vm_flags;
		vma->vm_pgoff = addr >> PAGE_SHIFT;
		vma_link_after(mm, prev, vma);
	}
}

/* MAP_POPULATE / mm_populate(): fault in, ignoring errors. */
static void mm_populate(struct smm_mm *mm, uint64_t start, uint64_t end)
{
	mmap_read_lock(mm);
	for (struct vm_area_struct *v = find_vma(mm, start);
	     v && v->vm_start < end; v = v->vm_next) {
		if (!(v->vm_flags & VM_ACCESS_FLAGS))
			continue;
		populate_vma_range(mm, v, MAX(start, v->vm_start),
				   MIN(end, v->vm_end),
				   (v->vm_flags & (VM_WRITE | VM_SHARED)) == VM_WRITE);
	}
	mmap_read_unlock(mm);
}

SMM_API int64_t smm_mmap(struct smm_mm *mm, uint64_t addr, uint64_t len,
			 int prot, int flags)
{
	struct vma_prealloc pa;
	unsigned long vm_flags;
	int64_t ret;

	if (!(flags & SMM_MAP_ANONYMOUS))
		return -EBADF;	/* no file descriptors in softmm yet */
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
	vm_flags = calc_vm_prot_bits(prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;

	rcu_thread_online();
	mmap_write_lock(mm);
	if (mm->dead) {
		ret = -ESRCH;
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
	switch (flags & MAP_TYPE) {
	case SMM_MAP_PRIVATE:
		break;
	case SMM_MAP_SHARED:
	case MAP_SHARED_VALIDATE:	/* shared memory does not exist yet */
	default:
		ret = -EINVAL;
		goto out;
	}
	if (flags & SMM_MAP_NORESERVE)
		vm_flags |= VM_NORESERVE;
	if ((vm_flags & (VM_NORESERVE | VM_SHARED | VM_WRITE)) == VM_WRITE)
		vm_flags |= VM_ACCOUNT;

	if (prealloc_vmas(mm, &pa, 3, 2, 2)) {
		ret = -ENOMEM;
		goto out;
	}
	if (flags & SMM_MAP_FIXED)
		do_munmap(mm, addr, addr + len, &pa);
	mmap_region(mm, addr, addr + len, vm_flags, &pa);
	vma_tree_update(mm, addr, addr + len + 1);
	prealloc_free(&pa);
	ret = (int64_t)addr;
out:
	mmap_write_unlock(mm);
	if (ret >= 0 && (flags & SMM_MAP_POPULATE))
		mm_populate(mm, addr, addr + len);
	return ret;
}

/* ---- mprotect ---- */

/*
 * Give [start, end) of @vma the flags @newflags, merging with *@pprev or
 * the next VMA where Linux would, splitting @vma where it would not.
 * *@pprev becomes the VMA that now covers [start, end).
 */
static void mprotect_fixup(struct smm_mm *mm, struct mmu_gather *tlb,
			   struct vm_area_struct *vma,
			   struct vm_area_struct **pprev, uint64_t start,
			   uint64_t end, unsigned long newflags,
			   struct vma_prealloc *pa)
{
	unsigned long oldflags = vma->vm_flags;
	struct vm_area_struct *prev = *pprev, *next = vma->vm_next;
	bool left, right;

	if (newflags == oldflags) {
		*pprev = vma;
		return;
	}
	/*
	 * Commit accounting, as Linux keeps it: making a private mapping
	 * writable charges it; making it read-only again uncharges it only
	 * while no anonymous page was ever faulted in (no anon_vma). The
	 * flag is invisible, but it decides merging.
	 */
	if (newflags & VM_WRITE) {
		if (!(oldflags & (VM_ACCOUNT | VM_WRITE | VM_SHARED | VM_NORESERVE)))
			newflags |= VM_ACCOUNT;
	} else if ((oldflags & VM_ACCOUNT) && !vma->anon_vma) {
		newflags &= ~VM_ACCOUNT;
	}
	vma_start_write(vma);

	left = start == vma->vm_start && prev && prev != vma &&
	       prev->vm_end == start &&
	       vma_flags_mergeable(prev->vm_flags, newflags) &&
	       anon_vma_compatible(prev->anon_vma, vma->anon_vma);
	right = end == vma->vm_end && next && next->vm_start == end &&
		vma_flags_mergeable(next->vm_flags, newflags) &&
		anon_vma_compatible(next->anon_vma, vma->anon_vma) &&
		(!left || anon_vma_compatible(prev->anon_vma, next->anon_vma));

	if (left)
		vma_start_write(prev);
	if (right)
		vma_start_write(next);
	if (left || right) {
		/* Merged pages keep their entries; only the range changes. */
		struct vm_area_struct *tgt = left ? prev : next;
		uint64_t anon = prev && left && prev->anon_vma ? prev->anon_vma :
				vma->anon_vma ? vma->anon_vma :
				right ? next->anon_vma : 0;

		change_protection(tlb, vma, start, end, newflags);
		if (left && right) {
			WRITE_ONCE(prev->vm_end, next->vm_end);
			remove_vma(mm, vma);
			remove_vma(mm, next);
		} else if (left) {
			WRITE_ONCE(prev->vm_end, end);
			if (end == vma->vm_end)
				remove_vma(mm, vma);
			else {
				WRITE_ONCE(vma->vm_start, end);
				vma->vm_pgoff += (end - start) >> PAGE_SHIFT;
			}
		} else {
			WRITE_ONCE(next->vm_start, start);
			next->vm_pgoff = vma->vm_pgoff +
					 ((start - vma->vm_start) >> PAGE_SHIFT);
			if (start == vma->vm_start)
				remove_vma(mm, vma);
			else
				WRITE_ONCE(vma->vm_end, start);
		}
		tgt->anon_vma = anon;
		*pprev = tgt;
		return;
	}
	if (start > vma->vm_start) {
		struct vm_area_struct *new = take_vma(pa);

		split_vma(mm, vma, start, new);
		vma = new;
	}
	if (end < vma->vm_end)
		split_vma(mm, vma, end, take_vma(pa));
	vma->vm_flags = newflags;
	change_protection(tlb, vma, start, end, newflags);
	*pprev = vma;
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
	/* Linux's order: a VMA in the range at all, then the grows checks
	 * (nothing grows in softmm), then a VMA at the start. */
	err = -ENOMEM;
	vma = list_find(mm, start);
	if (!vma || vma->vm_start >= end)
		goto out;
	if (grows & PROT_GROWSDOWN) {
		err = -EINVAL;
		goto out;
	}
	if (vma->vm_start > start)
		goto out;
	if (grows & PROT_GROWSUP) {
		err = -EINVAL;
		goto out;
	}
	for (struct vm_area_struct *v = vma; v && v->vm_start < end; v = v->vm_next)
		m++;
	err = prealloc_vmas(mm, &pa, 2, m + 2, 1);
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
		mprotect_fixup(mm, &tlb, vma, &prev, nstart, tmp, newflags, &pa);
		nstart = tmp = prev->vm_end < end ? prev->vm_end : end;
		vma = prev->vm_next;
	}
	if (!err && tmp < end)
		err = -ENOMEM;
	vma_tree_update(mm, start, end + 1);
	prealloc_free(&pa);
	tlb_finish_mmu(&tlb);
out:
	mmap_write_unlock(mm);
	return err;
}
