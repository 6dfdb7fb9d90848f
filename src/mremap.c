/*
 * mremap.c - mremap(2) as Linux 6.18 does it: the argument checks with its
 * errno values and order (check_mremap_params, then check_prep_vma on the
 * VMA), shrinking, growing in place (merging with the next VMA), moving a
 * range (MREMAP_MAYMOVE, FIXED, DONTUNMAP), the FIXED same-length move of
 * several VMAs at once (remap_move, 6.17), and the page-table move:
 * whole PMD tables by their PUD entry and whole PTE tables by their PMD
 * entry where both sides line up (move_pgt_entry), single entries
 * elsewhere, with Linux's realignment of an unaligned start and its
 * allocation of destination tables, so that VmPTE ends as the kernel's.
 *
 * Locking: mmap_lock held for write throughout; the source VMA is
 * write-locked before anything moves and the destination VMA is new or
 * merged (write-locked), so no fault, madvise or GUP runs on either range.
 * Entries move under their source table's ptl and then their destination
 * table's ptl, never both at once (one lock class); a whole table moves
 * under its parent's lock (a PMD table's lock for a PTE table,
 * page_table_lock for a PMD table), first out of the source entry, then
 * into the destination entry. No other walker can be on a table that
 * moves whole: it covers only the moving range (and an empty prefix with
 * no VMA when realigned), and the schemes free tables only under
 * mmap_lock, which we hold. A file VMA's move holds the file's i_mmap_lock
 * for write, so that no reverse-map walker looks for an entry in flight.
 * Lockless walkers may still be on a moved table: it is not freed, it
 * maps the same pages, and one mmu_gather flushes the TLBs before
 * mmap_lock is dropped (a shootdown waits for their access sections).
 */
#include <errno.h>
#include "pagewalk.h"
#include "filemap.h"
#include "fault.h"
#include "rmap.h"

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
	struct pt_walk spt, dpt;
	unsigned int k = 0;
	pteval_t *src;
	int err;

	/* The destination's table first, moving entries or not (Linux's
	 * pte_alloc() in move_page_tables(): VmPTE counts it). */
	if (!pte_alloc_map(mm, new, &dpt, &err))
		return err;
	dpt.tlb = tlb;
	pte_unmap(&dpt);
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
#ifndef SMM_BUG_MREMAP_NO_FLUSH
		tlb->need_flush = true;
#endif
	}
	pte_unmap_unlock(&spt);
	if (!k)
		return 0;
	err = put_ptes(mm, new, buf, at, k, tlb);
	if (err)
		BUG_ON(put_ptes(mm, old, buf, at, k, tlb));
	return err;
}

/* ---- moving whole tables (Linux's move_pgt_entry) ---- */

/*
 * Move the table *@oldp points at (a PTE table from a PMD entry, a PMD
 * table from a PUD entry) to the empty entry *@newp: out under the source
 * parent's lock, in under the destination's. Nobody but lockless walkers
 * can be on the table (see the top of the file); they keep seeing the
 * same pages through it until the flush. False if the destination entry
 * is not empty (Linux warns and moves entries one by one instead).
 */
static bool move_table_entry(struct smm_mm *mm, pteval_t *oldp, pteval_t *newp,
			     struct mmu_gather *tlb)
{
	struct smm_pool *pool = mm->pool;
	int cls = virt_to_page(pool, oldp)->pt_level == 2 ? LC_PMD :
							    LC_PAGE_TABLE;
	spinlock_t *lock;
	pteval_t e;

	if (table_read(newp))
		return false;
	lock = pt_entry_lock(mm, oldp);
	spin_lock_class(lock, cls);
	e = ptep_xchg(mm, oldp, 0); /* asserts the lock */
	VM_BUG_ON(!pt_entry_table(e));
	pt_count_add(virt_to_page(pool, oldp), -1);
	spin_unlock(lock);

	lock = pt_entry_lock(mm, newp);
	spin_lock_class(lock, cls);
	VM_BUG_ON(table_read(newp));
	set_table_entry(mm, newp, e);
	pt_count_add(virt_to_page(pool, newp), 1);
	spin_unlock(lock);
#ifndef SMM_BUG_MREMAP_NO_FLUSH
	/* CPUs may still translate the old addresses through the table:
	 * the gather's flush shoots them down before mmap_lock goes. */
	tlb->need_flush = true;
#endif
	return true;
}

/* Linux's pagetable_move_control. */
struct pt_move {
	struct smm_mm *mm;
	struct vm_area_struct *old_vma, *new_vma;
	uint64_t old_addr, new_addr; /* advance together */
	uint64_t old_end, len_in;
	struct mmu_gather *tlb;
};

/* The bytes from here to the next @size boundary on either side, capped
 * at the end of the move (Linux's get_extent()). */
static uint64_t move_extent(const struct pt_move *pm, uint64_t size)
{
	uint64_t extent = ((pm->old_addr + size) & ~(size - 1)) - pm->old_addr;
	uint64_t n = ((pm->new_addr + size) & ~(size - 1)) - pm->new_addr;

	if (extent > pm->old_end - pm->old_addr)
		extent = pm->old_end - pm->old_addr;
	return MIN(extent, n);
}

/* May a move start at @addr, the start of @vma, be pulled down to its PMD
 * boundary? Only if no VMA lies between (Linux's can_align_down()). */
static bool can_align_down(struct vm_area_struct *vma, uint64_t addr)
{
	return vma->vm_start == addr &&
	       (!vma->vm_prev || vma->vm_prev->vm_end <= (addr & PMD_MASK));
}

/*
 * Linux's try_realign_addr(): a move whose source and destination sit at
 * the same offset in their PTE tables, reaching the next PMD boundary,
 * with nothing mapped below either start down to that boundary, starts at
 * the boundary instead, so that its first table moves whole. The end stays.
 */
static void try_realign(struct pt_move *pm)
{
	uint64_t off = pm->old_addr & ~PMD_MASK;

	if (!off || pm->len_in < PMD_SIZE - off ||
	    off != (pm->new_addr & ~PMD_MASK))
		return;
	if (!can_align_down(pm->old_vma, pm->old_addr) ||
	    !can_align_down(pm->new_vma, pm->new_addr))
		return;
	pm->old_addr &= PMD_MASK;
	pm->new_addr &= PMD_MASK;
}

/*
 * Linux's move_page_tables(): per 1 GiB extent, a PMD table that covers
 * it on both sides moves by its PUD entry; else per 2 MiB extent, a PTE
 * table likewise by its PMD entry; else the entries move one by one. The
 * destination's tables are allocated for every extent whose source has
 * the table, entries or not, as Linux does (VmPTE counts them). Returns
 * the bytes of the requested range moved: less than asked only when a
 * table could not be allocated.
 */
static uint64_t move_page_tables(struct pt_move *pm)
{
	struct smm_mm *mm = pm->mm;
	uint64_t orig = pm->old_end - pm->len_in, extent;

	if (!pm->len_in)
		return 0;
	try_realign(pm);
	for (; pm->old_addr < pm->old_end;
	     pm->old_addr += extent, pm->new_addr += extent) {
		pteval_t *oldp, *newp;

		extent = move_extent(pm, PUD_SIZE);
		oldp = pt_upper_entry(mm, pm->old_addr, 3);
		if (!oldp)
			continue;
		newp = pt_upper_alloc(mm, pm->new_addr, 3);
		if (!newp)
			break;
		if (extent == PUD_SIZE &&
		    move_table_entry(mm, oldp, newp, pm->tlb))
			continue;

		extent = move_extent(pm, PMD_SIZE);
		oldp = pt_upper_entry(mm, pm->old_addr, 2);
		if (!oldp)
			continue;
		newp = pt_upper_alloc(mm, pm->new_addr, 2);
		if (!newp)
			break;
		if (extent == PMD_SIZE &&
		    move_table_entry(mm, oldp, newp, pm->tlb))
			continue;
		if (move_ptes(mm, pm->old_addr, pm->new_addr, extent, pm->tlb))
			break;
	}
	return pm->old_addr < orig ? 0 : pm->old_addr - orig;
}

/* ---- the mremap operations ---- */

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

/* The VMA containing @addr, by the list (valid mid-operation). */
static struct vm_area_struct *vma_at(struct smm_mm *mm, uint64_t addr)
{
	struct vm_area_struct *vma = vma_find_list(mm, addr);

	return vma && vma->vm_start <= addr ? vma : NULL;
}

/* Linux's struct vma_remap_struct: one mremap, or one VMA's part of a
 * move of several. */
struct remap {
	uint64_t addr, old_len, new_len, new_addr;
	int flags;
	struct vm_area_struct *vma; /* the VMA at @addr */
	bool populate; /* locked and grown: fault the new part in after */
};

static bool implies_new_addr(const struct remap *r)
{
	return r->flags & (SMM_MREMAP_FIXED | SMM_MREMAP_DONTUNMAP);
}

/*
 * Linux's check_prep_vma(): the checks on the VMA at @r->addr, in 6.18's
 * order. A shrink or a same-size call that does not move checks nothing
 * more (the range unmapped by a shrink may span VMAs and holes).
 */
static int check_prep_vma(struct smm_mm *mm, struct remap *r)
{
	struct vm_area_struct *vma = r->vma;
	uint64_t old_len = r->old_len, new_len = r->new_len, pgoff;

	if (!vma)
		return -EFAULT;
	if (!implies_new_addr(r))
		r->new_addr = r->addr;
	if (new_len <= old_len && !implies_new_addr(r))
		return 0;
	if (!old_len && !(vma->vm_flags & (VM_SHARED | VM_MAYSHARE)))
		return -EINVAL; /* the old-length-0 duplicate is for shared memory */
	if (old_len > new_len)
		old_len = new_len; /* only what stays must lie in the VMA */
	if (old_len > vma->vm_end - r->addr)
		return -EFAULT;
	if (new_len == old_len)
		return 0;
	if (vma->vm_flags & VM_LOCKED)
		r->populate = true;
	pgoff = vma->vm_pgoff + ((r->addr - vma->vm_start) >> PAGE_SHIFT);
	if (pgoff + (new_len >> PAGE_SHIFT) < pgoff)
		return -EINVAL;
	if (!mlock_future_ok(mm, vma->vm_flags, new_len - old_len))
		return -EAGAIN;
	return 0;
}

/*
 * Linux's move_vma(): map [new_addr, + new_len) with the VMA's flags,
 * file, offset and anon_vma (copy_vma(), which may merge it with its
 * neighbours, the source VMA included), move the page tables, then unmap
 * the source (with DONTUNMAP: leave it, unlocked and, if it went whole,
 * without its anon_vma). An old length of 0 (shared memory) maps the
 * same pages a second time. Returns the new address, or -ENOMEM with the
 * source as it was.
 */
static int64_t move_vma(struct smm_mm *mm, struct remap *r)
{
	struct vm_area_struct *vma = r->vma, *new_vma;
	struct smm_file *f = vma->vm_file;
	unsigned long vm_flags = vma->vm_flags;
	uint64_t addr = r->addr, old_len = r->old_len, new = r->new_addr;
	uint64_t new_len = r->new_len, moved;
	uint64_t pgoff = vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT);
	bool whole = vma->vm_start == addr && vma->vm_end == addr + old_len;
	struct vma_prealloc pa, pa_unmap;
	struct mmu_gather tlb;
	struct pt_move pm;

	if (mm->nr_vmas >= DEFAULT_MAX_MAP_COUNT - 3)
		return -ENOMEM;
	/* Linux's copy_vma(): anonymous memory never faulted in takes the
	 * offset of its new place, so that it may merge there. */
	if (!f && !vma->anon_vma)
		pgoff = new >> PAGE_SHIFT;
	if (vma_prealloc(mm, &pa, 3, 3, 3))
		return -ENOMEM;
	/* The unmap that ends the move (of the source, or of the new range
	 * if the move fails) must not fail for memory: its VMAs now. */
	if (vma_prealloc(mm, &pa_unmap, 2, 2, 1)) {
		vma_prealloc_free(&pa);
		return -ENOMEM;
	}
	vma_start_write(vma);
	/* The copy keeps the source's userfaultfd flags, so that it merges
	 * as Linux's copy_vma() merges; they are dropped after the move. */
	new_vma = vma_merge_new_range(mm, new, new + new_len, vm_flags, f,
				      pgoff, vma->anon_vma, vma, &pa);
	vma_prealloc_free(&pa);
	vma_tree_update(mm, new_vma->vm_start, new_vma->vm_end + 1);
	/* The source may have merged into the new VMA. */
	vma = vma_at(mm, addr);

	tlb_gather_mmu(&tlb, mm);
	if (f)
		i_mmap_lock_write(f);
	pm = (struct pt_move){ .mm = mm,
			       .old_vma = vma,
			       .new_vma = new_vma,
			       .old_addr = addr,
			       .new_addr = new,
			       .old_end = addr + old_len,
			       .len_in = old_len,
			       .tlb = &tlb };
	moved = move_page_tables(&pm);
	if (moved < old_len) {
		/* Back where they were: the source's tables are all there. */
		pm = (struct pt_move){ .mm = mm,
				       .old_vma = new_vma,
				       .new_vma = vma,
				       .old_addr = new,
				       .new_addr = addr,
				       .old_end = new + moved,
				       .len_in = moved,
				       .tlb = &tlb };
		BUG_ON(move_page_tables(&pm) != moved);
	}
	if (f)
		i_mmap_unlock_write(f);
	tlb_finish_mmu(&tlb);
	/* The new VMA counts as locked memory; munmap uncounts the old. */
	if (vm_flags & VM_LOCKED)
		mm->locked_vm += new_len >> PAGE_SHIFT;
	if (moved == old_len && (vm_flags & VM_UFFD_WP))
		uffd_wp_clear_range(new_vma, new, new + old_len);
	/*
	 * Linux's mremap_userfaultfd_prep() for a uffd without
	 * UFFD_FEATURE_EVENT_REMAP: the new VMA loses its registration,
	 * all of it, including what it merged with at its new place (a
	 * registered neighbour, or the source itself).
	 */
	if (moved == old_len && (new_vma->vm_flags & VM_UFFD_FLAGS)) {
		vma_start_write(new_vma);
		new_vma->vm_flags &= ~VM_UFFD_FLAGS;
	}
	if (moved < old_len) {
		BUG_ON(do_munmap(mm, new, new + new_len, &pa_unmap));
		vma_prealloc_free(&pa_unmap);
		return -ENOMEM;
	}
	if (r->flags & SMM_MREMAP_DONTUNMAP) {
		/* Linux's dontunmap_complete(): the source VMA stays, no
		 * longer locked (locked_vm keeps counting it, as in Linux),
		 * and without anon_vma if all of it moved. It keeps
		 * VM_ACCOUNT (measured on 6.18). */
		vma_start_write(vma);
		vma->vm_flags &= ~VM_LOCKED_MASK;
		if (whole && vma != new_vma && vma->anon_vma) {
			anon_vma_put(vma->anon_vma);
			vma->anon_vma = NULL;
		}
	} else if (old_len) {
		BUG_ON(do_munmap(mm, addr, addr + old_len, &pa_unmap));
	}
	vma_prealloc_free(&pa_unmap);
	r->new_addr = new;
	return (int64_t) new;
}

/*
 * Linux's mremap_to(): to @r->new_addr (FIXED: that range is unmapped
 * first), or with DONTUNMAP alone to a place found with it as a hint.
 * A shrink unmaps the tail first.
 */
static int64_t mremap_to(struct smm_mm *mm, struct remap *r)
{
	int64_t ret;

	if (r->flags & SMM_MREMAP_FIXED) {
		ret = munmap_range(mm, r->new_addr, r->new_addr + r->new_len);
		if (ret)
			return ret;
		r->vma = vma_at(mm, r->addr);
		if (!r->vma)
			return -EFAULT;
	}
	if (r->old_len > r->new_len) {
		ret = munmap_range(mm, r->addr + r->new_len,
				   r->addr + r->old_len);
		if (ret)
			return ret;
		r->vma = vma_at(mm, r->addr);
		if (!r->vma)
			return -EFAULT;
		r->old_len = r->new_len;
	}
	ret = get_unmapped_area(mm, r->new_addr, r->new_len,
				r->flags & SMM_MREMAP_FIXED ? SMM_MAP_FIXED :
							      0);
	if (ret < 0)
		return ret;
	r->new_addr = (uint64_t)ret;
	return move_vma(mm, r);
}

/* Grow @vma's end in place by @delta, merging with the next VMA where
 * Linux would (vma_merge_extend()). 0 or -ENOMEM. */
static int expand_in_place(struct smm_mm *mm, struct vm_area_struct *vma,
			   uint64_t delta)
{
	uint64_t end = vma->vm_end;
	struct vm_area_struct *res;
	struct vma_prealloc pa;

	if (vma_prealloc(mm, &pa, 1, 2, 1))
		return -ENOMEM;
	vma_start_write(vma);
	res = vma_merge_new_range(
		mm, end, end + delta, vma->vm_flags, vma->vm_file,
		vma->vm_pgoff + ((end - vma->vm_start) >> PAGE_SHIFT),
		vma->anon_vma, NULL, &pa);
	vma_prealloc_free(&pa);
	vma_tree_update(mm, res->vm_start, res->vm_end + 1);
	if (vma->vm_flags & VM_LOCKED)
		mm->locked_vm += delta >> PAGE_SHIFT;
	return 0;
}

/* Linux's mremap_at(): resize where it is; a growth that does not fit
 * moves if MAYMOVE allows. */
static int64_t mremap_at(struct smm_mm *mm, struct remap *r)
{
	struct vm_area_struct *vma = r->vma, *next;
	uint64_t delta;
	int64_t ret;

	if (r->old_len == r->new_len)
		return (int64_t)r->addr;
	if (r->old_len > r->new_len) {
		ret = munmap_range(mm, r->addr + r->new_len,
				   r->addr + r->old_len);
		return ret ? ret : (int64_t)r->addr;
	}
	delta = r->new_len - r->old_len;
	next = vma->vm_next;
	/* vma_expandable(): the range ends the VMA, and the growth
	 * overlaps no VMA and stays below the top. */
	if (vma->vm_end - r->addr == r->old_len &&
	    vma->vm_end + delta > vma->vm_end &&
	    vma->vm_end + delta <= SMM_TASK_SIZE &&
	    (!next || next->vm_start >= vma->vm_end + delta)) {
		ret = expand_in_place(mm, vma, delta);
		return ret ? ret : (int64_t)r->addr;
	}
	if (!(r->flags & SMM_MREMAP_MAYMOVE))
		return -ENOMEM;
	ret = get_unmapped_area(mm, 0, r->new_len, 0);
	if (ret < 0)
		return ret;
	r->new_addr = (uint64_t)ret;
	return move_vma(mm, r);
}

/*
 * Linux's remap_move() (6.17): MREMAP_FIXED with equal lengths moves every
 * VMA in [addr, addr + len), each to the same offset from new_addr, so
 * that the gaps between them stay; the range must start in a VMA. Each
 * part is checked and moved in turn; an error stops the loop, leaving the
 * parts already moved where they went, as Linux does. Returns where the
 * first part went.
 */
static int64_t remap_move(struct smm_mm *mm, const struct remap *r)
{
	uint64_t start = r->addr, end = r->addr + r->old_len;
	uint64_t target = r->new_addr, last_end = 0, cur = start;
	int64_t res = -EFAULT;
	bool seen = false;

	for (;;) {
		struct vm_area_struct *vma = vma_find_list(mm, cur);
		struct remap part = *r;
		uint64_t a, len, offset;
		int64_t ret;

		if (!vma || vma->vm_start >= end)
			break;
		if (!seen && start < vma->vm_start)
			return -EFAULT;
		a = MAX(vma->vm_start, start);
		len = MIN(end, vma->vm_end) - a;
		offset = seen ? vma->vm_start - last_end : 0;
		last_end = vma->vm_end;
		part.vma = vma;
		part.addr = a;
		part.new_addr = target + offset;
		part.old_len = part.new_len = len;
		/* vma_multi_allowed(): a VMA registered with userfaultfd
		 * moves only alone (its events need the lock dropped) */
		if ((vma->vm_flags & VM_UFFD_FLAGS) &&
		    (seen || vma->vm_end < end))
			return -EFAULT;
		ret = check_prep_vma(mm, &part);
		if (!ret)
			ret = mremap_to(mm, &part);
		if (ret < 0)
			return ret;
		if (!seen)
			res = ret;
		seen = true;
		target = (uint64_t)ret + len;
		/* On past this VMA as it was: with DONTUNMAP it stays, and
		 * a destination just after it may have merged into it. */
		cur = last_end;
		if (cur >= end)
			break;
	}
	return res;
}

SMM_API int64_t smm_mremap(struct smm_mm *mm, uint64_t addr, uint64_t old_len,
			   uint64_t new_len, int flags, uint64_t new_addr)
{
	struct remap r = { .addr = addr, .flags = flags, .new_addr = new_addr };
	int64_t ret;

	if (!mm)
		return -EINVAL;
	/* Linux 6.18's check_mremap_params(), in its order */
	if (flags & ~MREMAP_FLAGS)
		return -EINVAL;
	if (addr & ~PAGE_MASK)
		return -EINVAL;
	r.old_len = old_len = PAGE_ALIGN(old_len);
	r.new_len = new_len = PAGE_ALIGN(new_len);
	if (!new_len || new_len > SMM_TASK_SIZE)
		return -EINVAL;
	if (addr + old_len < addr) /* measured: a wrapping old range */
		return -EINVAL;
	if (implies_new_addr(&r)) {
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
	if (implies_new_addr(&r) &&
	    mm->nr_vmas + 2 >= DEFAULT_MAX_MAP_COUNT - 3)
		goto out;
	if ((flags & SMM_MREMAP_FIXED) && old_len == new_len) {
		ret = remap_move(mm, &r);
		goto out;
	}
	r.vma = vma_at(mm, addr);
	ret = check_prep_vma(mm, &r);
	if (ret)
		goto out;
	ret = implies_new_addr(&r) ? mremap_to(mm, &r) : mremap_at(mm, &r);
out:
	mmap_write_unlock(mm);
	/* A locked mapping's new part is faulted in, as mlock would. */
	if (ret >= 0 && r.populate)
		mm_populate(mm, r.new_addr + r.old_len, r.new_addr + r.new_len,
			    true);
	return ret;
}
