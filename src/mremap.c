/*
 * mremap.c - mremap(2): argument checks with Linux's errno values and
 * order, shrinking, growing in place, and moving a range (MREMAP_MAYMOVE,
 * FIXED, DONTUNMAP): a new VMA with the old one's flags, file, offset and
 * anon_vma, then the page-table entries moved to it (move_page_tables()),
 * then the old range unmapped (not with DONTUNMAP).
 *
 * Locking: mmap_lock held for write throughout; the VMAs involved are
 * write-locked (no fault runs on them); each entry moves under its source
 * table's ptl and then its destination table's ptl, never both at once
 * (one lock class), and only one table is mapped at a time. A file VMA's move holds the file's i_mmap_lock for
 * write, so that no reverse-map walker looks for an entry in flight. One
 * mmu_gather flushes the TLBs before mmap_lock is dropped: until then a
 * CPU may still reach a page through the old address, the same page.
 *
 * Entries move one by one, not a whole table at once by its PMD entry as
 * Linux's move_pgt_entry() does (left for later, see issue 14): the
 * destination gets new PTE tables and the source's emptied ones are freed
 * when the old range is unmapped (free_pgtables()), so the page-table
 * bytes end the same, but a large move costs a table walk per entry.
 */
#include <errno.h>
#include "pagewalk.h"
#include "filemap.h"
#include "fault.h"

#define MREMAP_FLAGS \
	(SMM_MREMAP_MAYMOVE | SMM_MREMAP_FIXED | SMM_MREMAP_DONTUNMAP)

/* Install @k entries @buf at the entries @at of the PTE table for @addr
 * (its first entry), allocating the table if need be. 0 or -ENOMEM. */
static int put_ptes(struct smm_mm *mm, uint64_t addr, const pteval_t *buf,
		    const unsigned int *at, unsigned int k,
		    struct mmu_gather *tlb)
{
	struct pt_walk pt;
	pteval_t *ptep;
	int err;

	ptep = pte_alloc_map(mm, addr, &pt, &err);
	if (!ptep)
		return err;
	pt.tlb = tlb;
	/* our installing walk keeps it linked while mapped */
	BUG_ON(!pte_map_lock(&pt));
	for (unsigned int i = 0; i < k; i++) {
		VM_BUG_ON(!pte_none(pte_read(ptep + at[i])));
		set_pte(mm, ptep + at[i], buf[i]);
	}
	pte_table_add(mm, ptep, (int)k);
	pte_unmap_unlock(&pt);
	return 0;
}

/*
 * Move the entries of [old, old + len) to [new, new + len), where both
 * ranges lie in one PTE table each. The source's entries are cleared under
 * its ptl and collected; then they are installed in the destination under
 * its ptl. Only one table is mapped at a time: two walks of one scheme's
 * class may not nest (pmd-rwsem's read side, refcount's references are
 * the walker's). If the destination table cannot be allocated, the
 * entries go back where they were (that allocation, if the scheme freed
 * the emptied source table, takes the frame just freed). 0 or -ENOMEM.
 */
static int move_ptes(struct smm_mm *mm, uint64_t old, uint64_t new,
		     uint64_t len, struct mmu_gather *tlb)
{
	pteval_t buf[PTRS_PER_TABLE];
	unsigned int at[PTRS_PER_TABLE];
	struct pt_walk spt;
	unsigned int k = 0;
	pteval_t *src;
	int err;

	src = pte_offset_map_lock(mm, old, &spt);
	if (!src)
		return 0;
	spt.tlb = tlb;
	for (unsigned int i = 0; i < len >> PAGE_SHIFT; i++) {
		if (pte_none(pte_read(src + i)))
			continue;
		buf[k] = ptep_get_and_clear(mm, src + i);
		at[k++] = i;
	}
	if (k) {
		pte_table_add(mm, src, -(int)k);
		tlb->need_flush = true;
	}
	pte_unmap_unlock(&spt);
	if (!k)
		return 0;
	err = put_ptes(mm, new, buf, at, k, tlb);
	if (err)
		BUG_ON(put_ptes(mm, old, buf, at, k, tlb));
	return err;
}

/*
 * Linux's move_page_tables() for [old, old + len) to [new, ...), in pieces
 * that stay within one table on both sides. Returns how many bytes were
 * moved: less than @len only if a destination table could not be
 * allocated (the piece that failed is back in place).
 */
static uint64_t move_page_tables(struct smm_mm *mm, uint64_t old, uint64_t new,
				 uint64_t len, struct mmu_gather *tlb)
{
	uint64_t done = 0;

	while (done < len) {
		uint64_t o = old + done, n = new + done;
		uint64_t step = MIN(pmd_addr_end(o, old + len) - o,
				    pmd_addr_end(n, new + len) - n);

		if (move_ptes(mm, o, n, step, tlb))
			break;
		done += step;
	}
	return done;
}

/* munmap of [start, end) with its own preallocation: 0 or -ENOMEM. */
static int munmap_range(struct smm_mm *mm, uint64_t start, uint64_t end)
{
	struct vma_prealloc pa;
	int err;

	if (vma_prealloc(mm, &pa, 2, 2, 1))
		return -ENOMEM;
	err = do_munmap(mm, start, end, &pa);
	vma_prealloc_free(&pa);
	return err;
}

/*
 * Move [old, old + old_len) of @vma to [new, new + new_len) (new_len >=
 * old_len; the destination is free): Linux's move_vma(). Returns @new, or
 * -ENOMEM with the source as it was.
 */
static int64_t move_vma(struct smm_mm *mm, struct vm_area_struct *vma,
			uint64_t old, uint64_t old_len, uint64_t new,
			uint64_t new_len, int flags)
{
	struct smm_file *f = vma->vm_file;
	unsigned long vm_flags = vma->vm_flags;
	uint64_t pgoff = vma->vm_pgoff + ((old - vma->vm_start) >> PAGE_SHIFT);
	struct vma_prealloc pa;
	struct mmu_gather tlb;
	uint64_t moved;

	if (mm->nr_vmas >= DEFAULT_MAX_MAP_COUNT - 3)
		return -ENOMEM;
	/* Linux's copy_vma(): anonymous memory never faulted in takes the
	 * offset of its new place, so that it may merge there. */
	if (!f && !vma->anon_vma)
		pgoff = new >> PAGE_SHIFT;
	if (vma_prealloc(mm, &pa, 3, 3, 3))
		return -ENOMEM;
	vma_start_write(vma);
	vma_merge_new_range(mm, new, new + new_len, vm_flags, f, pgoff,
			    vma->anon_vma, &pa);
	vma_prealloc_free(&pa);
	vma_tree_update(mm, new, new + new_len + 1);
	tlb_gather_mmu(&tlb, mm);
	if (f)
		i_mmap_lock_write(f);
	moved = move_page_tables(mm, old, new, old_len, &tlb);
	if (moved < old_len) {
		/* Back where they were: the source tables are all there. */
		BUG_ON(move_page_tables(mm, new, old, moved, &tlb) != moved);
	}
	if (f)
		i_mmap_unlock_write(f);
	tlb_finish_mmu(&tlb);
	/* The new VMA counts as locked memory; munmap uncounts the old. */
	if (vm_flags & VM_LOCKED)
		mm->locked_vm += new_len >> PAGE_SHIFT;
	if (moved < old_len) {
		BUG_ON(munmap_range(mm, new, new + new_len));
		return -ENOMEM;
	}
	if (!(flags & SMM_MREMAP_DONTUNMAP))
		BUG_ON(munmap_range(mm, old, old + old_len));
	return (int64_t) new;
}

/* Grow @vma's end in place to @end (nothing mapped up to it). */
static int64_t expand_vma(struct smm_mm *mm, struct vm_area_struct *vma,
			  uint64_t addr, uint64_t end)
{
	uint64_t grow = end - vma->vm_end;

	vma_start_write(vma);
	if (vma->vm_file) {
		i_mmap_lock_write(vma->vm_file);
		i_mmap_remove(vma);
	}
	WRITE_ONCE(vma->vm_end, end);
	if (vma->vm_file) {
		i_mmap_insert(vma);
		i_mmap_unlock_write(vma->vm_file);
	}
	vma_tree_update(mm, vma->vm_start, end + 1);
	if (vma->vm_flags & VM_LOCKED)
		mm->locked_vm += grow >> PAGE_SHIFT;
	return (int64_t)addr;
}

/*
 * An old length of 0 on shared memory: a second mapping of the same pages
 * at the new place, @new_len long (Linux's "duplicate shm area").
 */
static int64_t dup_shared(struct smm_mm *mm, struct vm_area_struct *vma,
			  uint64_t addr, uint64_t new_len, int flags,
			  uint64_t new_addr)
{
	uint64_t pgoff = vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT);
	struct vma_prealloc pa;
	int64_t dst;

	if (flags & SMM_MREMAP_FIXED) {
		if (munmap_range(mm, new_addr, new_addr + new_len))
			return -ENOMEM;
		dst = (int64_t)new_addr;
	} else {
		dst = get_unmapped_area(mm, 0, new_len, 0);
		if (dst < 0)
			return dst;
	}
	if (vma_prealloc(mm, &pa, 3, 2, 1))
		return -ENOMEM;
	vma_merge_new_range(mm, (uint64_t)dst, (uint64_t)dst + new_len,
			    vma->vm_flags, vma->vm_file, pgoff, NULL, &pa);
	vma_tree_update(mm, (uint64_t)dst, (uint64_t)dst + new_len + 1);
	vma_prealloc_free(&pa);
	return dst;
}

SMM_API int64_t smm_mremap(struct smm_mm *mm, uint64_t addr, uint64_t old_len,
			   uint64_t new_len, int flags, uint64_t new_addr)
{
	struct vm_area_struct *vma, *next;
	bool implies_new = flags & (SMM_MREMAP_FIXED | SMM_MREMAP_DONTUNMAP);
	uint64_t pop_start = 0, pop_end = 0;
	bool locked;
	int64_t ret;

	if (!mm)
		return -EINVAL;
	/* Linux 6.18's check_mremap_params(), in its order */
	if (flags & ~MREMAP_FLAGS)
		return -EINVAL;
	if (addr & ~PAGE_MASK)
		return -EINVAL;
	old_len = PAGE_ALIGN(old_len);
	new_len = PAGE_ALIGN(new_len);
	if (!new_len || new_len > SMM_TASK_SIZE)
		return -EINVAL;
	if (addr + old_len < addr) /* measured: a wrapping old range */
		return -EINVAL;
	if (implies_new) {
		if (new_addr > SMM_TASK_SIZE - new_len ||
		    (new_addr & ~PAGE_MASK) || !(flags & SMM_MREMAP_MAYMOVE))
			return -EINVAL;
		if ((flags & SMM_MREMAP_DONTUNMAP) && old_len != new_len)
			return -EINVAL;
		if (addr < new_addr + new_len && new_addr < addr + old_len)
			return -EINVAL; /* overlapping (a DONTUNMAP hint too) */
	}
	rcu_thread_online();
	mmap_write_lock(mm);
	ret = -ESRCH;
	if (mm->dead)
		goto out;
	ret = -ENOMEM;
	if (implies_new && mm->nr_vmas + 2 >= DEFAULT_MAX_MAP_COUNT - 3)
		goto out;
	ret = -EFAULT;
	vma = vma_find_list(mm, addr);
	if (!vma || vma->vm_start > addr)
		goto out;
	ret = -EINVAL;
	if (!old_len && !(vma->vm_flags & VM_MAYSHARE))
		goto out; /* the old-length-0 duplicate is for shared memory */
	if (!old_len) {
		ret = -ENOMEM;
		if (!(flags & SMM_MREMAP_MAYMOVE))
			goto out;
		ret = dup_shared(mm, vma, addr, new_len, flags, new_addr);
		goto out;
	}
	ret = -EFAULT;
	if (old_len > vma->vm_end - addr)
		goto out;
	ret = -EAGAIN;
	if (new_len > old_len &&
	    !mlock_future_ok(mm, vma->vm_flags, new_len - old_len))
		goto out;
	if (flags & SMM_MREMAP_FIXED) {
		/* mremap_to(): the destination goes, then a shrink */
		ret = munmap_range(mm, new_addr, new_addr + new_len);
		if (ret)
			goto out;
		if (old_len > new_len) {
			ret = munmap_range(mm, addr + new_len, addr + old_len);
			if (ret)
				goto out;
			old_len = new_len;
		}
		vma = vma_find_list(mm, addr);
		ret = move_vma(mm, vma, addr, old_len, new_addr, new_len,
			       flags);
		goto out;
	}
	if (old_len >= new_len && !(flags & SMM_MREMAP_DONTUNMAP)) {
		ret = (int64_t)addr;
		if (old_len > new_len &&
		    munmap_range(mm, addr + new_len, addr + old_len))
			ret = -ENOMEM;
		goto out;
	}
	/* Grow in place if the VMA ends there and nothing lies after. */
	next = vma->vm_next;
	if (!(flags & SMM_MREMAP_DONTUNMAP) && vma->vm_end == addr + old_len &&
	    addr + new_len <= SMM_TASK_SIZE &&
	    (!next || next->vm_start >= addr + new_len)) {
		ret = expand_vma(mm, vma, addr, addr + new_len);
		if (vma->vm_flags & VM_LOCKED) {
			pop_start = addr + old_len;
			pop_end = addr + new_len;
		}
		goto out;
	}
	ret = -ENOMEM;
	if (!(flags & SMM_MREMAP_MAYMOVE))
		goto out;
	ret = get_unmapped_area(
		mm, (flags & SMM_MREMAP_DONTUNMAP) ? new_addr : 0, new_len, 0);
	if (ret < 0)
		goto out;
	locked = vma->vm_flags & VM_LOCKED;
	ret = move_vma(mm, vma, addr, old_len, (uint64_t)ret, new_len, flags);
	if (ret >= 0 && locked && new_len > old_len) {
		pop_start = (uint64_t)ret + old_len;
		pop_end = (uint64_t)ret + new_len;
	}
out:
	mmap_write_unlock(mm);
	/* A locked mapping's new part is faulted in, as mlock would. */
	if (pop_end)
		mm_populate(mm, pop_start, pop_end, true);
	return ret;
}
