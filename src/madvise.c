/*
 * madvise.c - madvise(2): DONTNEED(_LOCKED), FREE,
 * PAGEOUT, COLD, REMOVE, POPULATE_READ, POPULATE_WRITE, WILLNEED, and the
 * advice that sets VMA flags (NORMAL, RANDOM, SEQUENTIAL, DONTFORK,
 * DOFORK, DONTDUMP, DODUMP, WIPEONFORK, KEEPONFORK, HUGEPAGE,
 * NOHUGEPAGE, MERGEABLE, UNMERGEABLE, under mmap_lock for write); argument checks, the walk over
 * VMAs with Linux's treatment of holes, and the per-entry work of FREE
 * and PAGEOUT for the range iterator (pagewalk.h).
 *
 * Locking: mmap_lock held for read throughout (for write by the advice
 * that changes VMA flags, through vma.c); entries change under their
 * table's ptl; zaps and drops go through an mmu_gather flushed before the
 * lock is dropped.
 */
#include <errno.h>
#include "fault.h"
#include "pagewalk.h"
#include "gup.h"
#include "filemap.h"

/*
 * MADV_FREE: mark each anonymous page lazily freeable and clean, so that
 * reclaim may drop it unless it is written again (the walk sets the dirty
 * bit then). Contents stay until such a drop. Zero-page entries are left
 * alone.
 */
static inline __attribute__((always_inline)) int
free_pte_entry(struct mm_walk *walk, pteval_t *ptep, pteval_t pte,
	       uint64_t addr)
{
	struct smm_pool *pool = walk->mm->pool;
	struct page *page;

	if (!pte_present(pte) || is_zero_pfn(pool, pte_pfn(pte)))
		return WALK_CONTINUE;
	page = pfn_to_page(pool, pte_pfn(pte));
	if (atomic_load(&page->mapcount) != 1)
		return WALK_CONTINUE;
	if (pte & (_PAGE_DIRTY | _PAGE_ACCESSED)) {
		pte = ptep_get_and_clear(walk->mm, ptep);
		set_pte(walk->mm, ptep, pte & ~(_PAGE_DIRTY | _PAGE_ACCESSED));
		walk->tlb->need_flush = true;
	}
	atomic_fetch_and(&page->flags, ~(unsigned int)PG_DIRTY);
	atomic_fetch_or(&page->flags, PG_LAZYFREE);
	return WALK_CONTINUE;
}

static const struct mm_walk_ops free_walk_ops = {
	.pte_entry = free_pte_entry,
};

static void madvise_free_range(struct mmu_gather *tlb,
			       struct vm_area_struct *vma, uint64_t start,
			       uint64_t end)
{
	struct mm_walk walk = {
		.mm = tlb->mm,
		.vma = vma,
		.tlb = tlb,
	};

	walk_page_range_vma(&walk, &free_walk_ops, start, end);
}

/*
 * MADV_PAGEOUT without swap: drop the pages MADV_FREE made lazily freeable
 * and nobody wrote since (page not dirty, entry not dirty), unless pinned.
 * The entry is cleared first and its dirty bit checked in the value the
 * exchange returned: a store that set it meanwhile wins, and the entry is
 * put back. Each table is then offered to the scheme (ZAP_PAGEOUT).
 */
static inline __attribute__((always_inline)) int
pageout_pte_entry(struct mm_walk *walk, pteval_t *ptep, pteval_t pte,
		  uint64_t addr)
{
	struct smm_pool *pool = walk->mm->pool;
	struct page *page;
	unsigned int fl;

	if (!pte_present(pte) || is_zero_pfn(pool, pte_pfn(pte)) ||
	    (pte & _PAGE_DIRTY))
		return WALK_CONTINUE;
	page = pfn_to_page(pool, pte_pfn(pte));
	fl = atomic_load(&page->flags);
	if (!(fl & PG_LAZYFREE) || (fl & PG_DIRTY) ||
	    atomic_load(&page->mapcount) != 1 ||
	    atomic_load(&page->refcount) >= GUP_PIN_COUNTING_BIAS)
		return WALK_CONTINUE;
	pte = ptep_get_and_clear(walk->mm, ptep);
	if (pte & _PAGE_DIRTY) { /* written meanwhile */
		set_pte(walk->mm, ptep, pte);
		return WALK_CONTINUE;
	}
	walk->tlb->need_flush = true;
	atomic_fetch_sub(&page->mapcount, 1);
	walk->nr_cleared++;
	walk->rss--;
	return tlb_remove_page(walk->tlb, pte_pfn(pte)) ? WALK_FLUSH :
							  WALK_CONTINUE;
}

static const struct mm_walk_ops pageout_walk_ops = {
	.pte_entry = pageout_pte_entry,
	.pte_table_done = zap_table_done,
};

static void pageout_range(struct mmu_gather *tlb, struct vm_area_struct *vma,
			  uint64_t start, uint64_t end)
{
	struct mm_walk walk = {
		.mm = tlb->mm,
		.vma = vma,
		.tlb = tlb,
		.zap = ZAP_PAGEOUT,
	};

	walk_page_range_vma(&walk, &pageout_walk_ops, start, end);
}

/*
 * MADV_POPULATE_*: fault in page by page. A hole gives -ENOMEM, a VMA
 * whose protection forbids the access -EINVAL (GUP's check_vma_flags for
 * populate), a failed fault -ENOMEM or -EFAULT; pages before the failure
 * stay populated. Takes mmap_lock for read, and drops it while a
 * userfaultfd handler resolves a registered page (populate_wait()):
 * -ESRCH if the mm was destroyed meanwhile.
 */
static int madvise_populate(struct smm_mm *mm, uint64_t start, uint64_t end,
			    bool write)
{
	struct vm_area_struct *vma = NULL;
	int err = 0;

	mmap_read_lock(mm);
	if (mm->dead)
		err = -ESRCH;
	while (!err && start < end) {
		uint64_t stop;

		if (!vma || start >= vma->vm_end)
			vma = vma_lookup(mm, start);
		if (!vma) {
			err = -ENOMEM;
			break;
		}
		if (write ? !(vma->vm_flags & VM_WRITE) :
			    !(vma->vm_flags & VM_READ)) {
			err = -EINVAL;
			break;
		}
		stop = MIN(end, vma->vm_end);
		err = populate_vma_range(mm, vma, &start, stop, write, true);
		if (err == VM_FAULT_UFFD) {
			err = populate_wait(mm);
			if (err == -ESRCH)
				return err;
			vma = NULL;
		} else if (err && err != -EFAULT) {
			err = -ENOMEM;
		}
	}
	mmap_read_unlock(mm);
	return err;
}

/*
 * The advice that only changes VMA flags (madvise_update_vma()): the flags
 * each sets and clears. DOFORK (-EINVAL on VM_IO) and DODUMP (on
 * VM_SPECIAL) have no such VMA to refuse in softmm; WIPEONFORK refuses
 * shared and file VMAs (advice_check()); MERGEABLE is what ksm_madvise()
 * does: shared VMAs are not KSM-compatible, and it leaves them alone.
 */
static const struct flag_advice {
	int advice;
	unsigned long set, clear;
} flag_advice[] = {
	{ SMM_MADV_NORMAL, 0, VM_SEQ_READ | VM_RAND_READ },
	{ SMM_MADV_RANDOM, VM_RAND_READ, VM_SEQ_READ },
	{ SMM_MADV_SEQUENTIAL, VM_SEQ_READ, VM_RAND_READ },
	{ SMM_MADV_DONTFORK, VM_DONTCOPY, 0 },
	{ SMM_MADV_DOFORK, 0, VM_DONTCOPY },
	{ SMM_MADV_DONTDUMP, VM_DONTDUMP, 0 },
	{ SMM_MADV_DODUMP, 0, VM_DONTDUMP },
	{ SMM_MADV_WIPEONFORK, VM_WIPEONFORK, 0 },
	{ SMM_MADV_KEEPONFORK, 0, VM_WIPEONFORK },
	{ SMM_MADV_HUGEPAGE, VM_HUGEPAGE, VM_NOHUGEPAGE },
	{ SMM_MADV_NOHUGEPAGE, VM_NOHUGEPAGE, VM_HUGEPAGE },
	{ SMM_MADV_MERGEABLE, VM_MERGEABLE, 0 },
	{ SMM_MADV_UNMERGEABLE, 0, VM_MERGEABLE },
};

static const struct flag_advice *find_flag_advice(int advice)
{
	for (size_t i = 0; i < ARRAY_SIZE(flag_advice); i++)
		if (flag_advice[i].advice == advice)
			return &flag_advice[i];
	return NULL;
}

static unsigned long advice_flags(struct vm_area_struct *vma, void *arg)
{
	const struct flag_advice *fa = arg;

	if (fa->advice == SMM_MADV_MERGEABLE &&
	    (vma->vm_flags & (VM_SHARED | VM_MAYSHARE)))
		return vma->vm_flags; /* vma_ksm_compatible(): ignored */
	return (vma->vm_flags | fa->set) & ~fa->clear;
}

/* MADV_WIPEONFORK is for anonymous private memory only. */
static int advice_check(struct vm_area_struct *vma, void *arg)
{
	const struct flag_advice *fa = arg;

	if (fa->advice == SMM_MADV_WIPEONFORK &&
	    (vma->vm_file || (vma->vm_flags & VM_SHARED)))
		return -EINVAL;
	return 0;
}

static const struct vma_range_ops advice_ops = {
	.check = advice_check,
	.new_flags = advice_flags,
	/* madvise() answers -EAGAIN where a split fails for want of memory
	 * (madvise_vma_behavior()) */
	.split_errno = -EAGAIN,
};

static bool madvise_behavior_valid(int advice)
{
	switch (advice) {
	case SMM_MADV_REMOVE:
	case SMM_MADV_COLD:
	case SMM_MADV_DONTNEED_LOCKED:
	case SMM_MADV_WILLNEED:
	case SMM_MADV_DONTNEED:
	case SMM_MADV_FREE:
	case SMM_MADV_PAGEOUT:
	case SMM_MADV_POPULATE_READ:
	case SMM_MADV_POPULATE_WRITE:
		return true;
	}
	return find_flag_advice(advice);
}

static int madvise_vma(struct mmu_gather *tlb, struct vm_area_struct *vma,
		       uint64_t start, uint64_t end, int advice)
{
	bool locked = vma->vm_flags & VM_LOCKED;

	switch (advice) {
	case SMM_MADV_DONTNEED:
	case SMM_MADV_DONTNEED_LOCKED:
		/* madvise_dontneed_free_valid_vma(): locked pages stay */
		if (locked && advice == SMM_MADV_DONTNEED)
			return -EINVAL;
		zap_page_range(tlb, vma, start, end, ZAP_DONTNEED);
		break;
	case SMM_MADV_FREE:
		if (locked || vma->vm_ops) /* anonymous memory only */
			return -EINVAL;
		madvise_free_range(tlb, vma, start, end);
		break;
	case SMM_MADV_PAGEOUT:
		if (locked) /* can_madv_lru_vma() */
			return -EINVAL;
		pageout_range(tlb, vma, start, end);
		break;
	case SMM_MADV_COLD: /* no LRU to move pages on */
		if (locked)
			return -EINVAL;
		break;
	case SMM_MADV_REMOVE:
		/* Linux's madvise_remove(): a hole punched in the file. */
		if (locked || !vma->vm_file)
			return -EINVAL;
		if ((vma->vm_flags & (VM_SHARED | VM_MAYWRITE)) !=
		    (VM_SHARED | VM_MAYWRITE))
			return -EACCES;
		return filemap_punch_hole(
			vma->vm_file,
			vma->vm_pgoff + ((start - vma->vm_start) >> PAGE_SHIFT),
			vma->vm_pgoff + ((end - vma->vm_start) >> PAGE_SHIFT) -
				1);
	case SMM_MADV_WILLNEED: /* read-ahead: files only (no swap) */
		if (vma->vm_file)
			filemap_willneed(
				vma->vm_file,
				vma->vm_pgoff +
					((start - vma->vm_start) >> PAGE_SHIFT),
				vma->vm_pgoff +
					((end - vma->vm_start) >> PAGE_SHIFT) -
					1);
		break;
	}
	return 0;
}

SMM_API int smm_madvise(struct smm_mm *mm, uint64_t start, uint64_t len_in,
			int advice)
{
	const struct flag_advice *fa;
	struct vm_area_struct *vma;
	struct mmu_gather tlb;
	uint64_t len, end;
	int err = 0, e;

	if (!mm)
		return -EINVAL;
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
	fa = find_flag_advice(advice);
	if (fa) {
		mmap_write_lock(mm);
		err = mm->dead ? -ESRCH :
				 vma_modify_range(mm, start, end, true,
						  &advice_ops, (void *)fa);
		mmap_write_unlock(mm);
		return err;
	}
	if (advice == SMM_MADV_POPULATE_READ ||
	    advice == SMM_MADV_POPULATE_WRITE)
		return madvise_populate(mm, start, end,
					advice == SMM_MADV_POPULATE_WRITE);
	mmap_read_lock(mm);
	if (mm->dead) {
		err = -ESRCH;
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
		e = madvise_vma(&tlb, vma, start, MIN(end, vma->vm_end),
				advice);
		if (e) {
			err = e;
			break;
		}
		start = MIN(end, vma->vm_end);
	}
	tlb_finish_mmu(&tlb);
out:
	mmap_read_unlock(mm);
	return err;
}
