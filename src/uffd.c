/*
 * uffd.c - the userfaultfd API (Linux's UFFDIO_* ioctls, fs/userfaultfd.c
 * and mm/userfaultfd.c): registration as VMA flags, reading events,
 * setting the callback, and the resolving calls (copy, zeropage,
 * write-protect, wake). The faulting side, below the fault path, is
 * uffd_wait.c.
 *
 * Owns: the VM_UFFD_* flags of VMAs and the _PAGE_UFFD_WP bit of entries.
 *
 * Locking (docs/LOCKING.md, "Userfaultfd"):
 *  - mm->uffd.lock (LC_UFFD) for the handler and waking (uffd_wait.c).
 *  - Copy and zeropage install each page under its ptl after checking
 *    the entry is still none, and wake after dropping it: a fault queued
 *    under that ptl is then found (uffd_wait.c says why no wake is lost).
 *  - register and unregister hold mmap_lock for write (VMA flags change
 *    through vma_modify_range(), which write-locks each VMA it changes);
 *    copy and zeropage hold the VMA's read lock or mmap_lock for read;
 *    write-protect holds mmap_lock for read; entries change under their
 *    ptl.
 */
#include <errno.h>
#include "mm.h"
#include "fault.h"
#include "filemap.h"
#include "pagewalk.h"
#include "rmap.h"
#include "tlb.h"

/* vm.mmap_min_addr of this machine: validate_range() refuses below it. */
#define UFFD_MIN_ADDR 4096ULL

static void uffd_wake(struct smm_mm *mm, uint64_t start, uint64_t len)
{
	uffd_ctx_lock(&mm->uffd);
	uffd_wake_range(&mm->uffd, start, len);
	uffd_ctx_unlock(&mm->uffd);
}

/* ---- argument checks ---- */

/* Linux's validate_range() */
static int validate_range(uint64_t start, uint64_t len)
{
	if ((start | len) & ~PAGE_MASK)
		return -EINVAL;
	if (!len || start < UFFD_MIN_ADDR || start >= SMM_TASK_SIZE ||
	    len > SMM_TASK_SIZE - start)
		return -EINVAL;
	return 0;
}

/* Linux's vma_can_userfault(), for what softmm models: private
 * anonymous memory (shared anonymous memory has a file: shmem). */
static bool vma_can_userfault(struct vm_area_struct *vma)
{
	return !vma->vm_file && !vma->vm_ops && !(vma->vm_flags & VM_SHARED);
}

/*
 * The first VMA intersecting [start, end), all of them can userfault:
 * 0, else -EINVAL (mmap_lock held). To unregister (@unreg), shared
 * anonymous memory (shmem) passes too: Linux can register it, so it
 * unregisters it (a no-op here, where it never is registered) as it
 * does any other range that can userfault.
 */
static int check_vmas(struct smm_mm *mm, uint64_t start, uint64_t end,
		      bool unreg)
{
	struct vm_area_struct *v = vma_find_list(mm, start);

	if (!v || v->vm_start >= end)
		return -EINVAL;
	for (; v && v->vm_start < end; v = v->vm_next)
		if (!vma_can_userfault(v) &&
		    !(unreg && v->vm_file && v->vm_file->shmem))
			return -EINVAL;
	return 0;
}

/* ---- write-protect walks ---- */

enum {
	WP_SET,
	WP_CLEAR,      /* and make writable where the VMA allows */
	WP_CLEAR_ONLY, /* registration lost: the bit only */
};

static inline __attribute__((always_inline)) int
uffd_wp_entry(struct mm_walk *walk, pteval_t *ptep, pteval_t e, uint64_t addr)
{
	int how = *(int *)walk->private;
	struct smm_pool *pool = walk->mm->pool;
	pteval_t old, new;

	if (!pte_mapped(e))
		return WALK_CONTINUE;
	if (how == WP_SET ? (e & _PAGE_UFFD_WP) && !(e & _PAGE_RW) :
			    !(e & _PAGE_UFFD_WP))
		return WALK_CONTINUE;
	old = ptep_get_and_clear(walk->mm, ptep); /* collect A/D */
	if (how == WP_SET) {
		new = (old & ~_PAGE_RW) | _PAGE_UFFD_WP;
		if ((old & _PAGE_PRESENT) && (old & _PAGE_RW))
			walk->tlb->need_flush = true;
	} else {
		new = old & ~_PAGE_UFFD_WP;
		/* can_change_pte_writable(): an exclusive anonymous page */
		if (how == WP_CLEAR && (old & _PAGE_PRESENT) &&
		    (walk->vma->vm_flags & VM_WRITE) &&
		    !is_zero_pfn(pool, pte_pfn(old)) &&
		    (atomic_load(&pfn_to_page(pool, pte_pfn(old))->flags) &
		     PG_ANON_EXCLUSIVE))
			new |= _PAGE_RW;
	}
	set_pte(walk->mm, ptep, new);
	return WALK_CONTINUE;
}

static const struct mm_walk_ops uffd_wp_ops = {
	.pte_entry = uffd_wp_entry,
};

static void wp_range(struct mmu_gather *tlb, struct vm_area_struct *vma,
		     uint64_t start, uint64_t end, int how)
{
	struct mm_walk walk = {
		.mm = vma->vm_mm,
		.vma = vma,
		.tlb = tlb,
		.private = &how,
	};

	walk_page_range_vma(&walk, &uffd_wp_ops, start, end);
}

void uffd_wp_clear_range(struct vm_area_struct *vma, uint64_t start,
			 uint64_t end)
{
	struct mmu_gather tlb;

	mmap_assert_write_locked(vma->vm_mm);
	tlb_gather_mmu(&tlb, vma->vm_mm);
	wp_range(&tlb, vma, start, end, WP_CLEAR_ONLY);
	tlb_finish_mmu(&tlb);
}

/* ---- register, unregister ---- */

/* vma_modify_range()'s errno for a split that failed, told apart from
 * the -ENOMEM it answers for holes (which registration allows). */
#define SPLIT_FAILED (-E2BIG)

static unsigned long register_flags(struct vm_area_struct *vma, void *arg)
{
	unsigned long want = *(unsigned long *)arg;

	/* Linux skips a VMA that has every mode asked for already. */
	if ((vma->vm_flags & want) == want)
		return vma->vm_flags;
	return (vma->vm_flags & ~VM_UFFD_FLAGS) | want;
}

static const struct vma_range_ops register_ops = {
	.new_flags = register_flags,
	.split_errno = SPLIT_FAILED,
};

static unsigned long unregister_flags(struct vm_area_struct *vma, void *arg)
{
	return vma->vm_flags & ~VM_UFFD_FLAGS;
}

static void unregister_changed(struct vm_area_struct *vma, uint64_t start,
			       uint64_t end, unsigned long oldflags, void *arg)
{
	if (oldflags & VM_UFFD_WP)
		wp_range(arg, vma, start, end, WP_CLEAR_ONLY);
}

static const struct vma_range_ops unregister_ops = {
	.new_flags = unregister_flags,
	.changed = unregister_changed,
	.split_errno = SPLIT_FAILED,
};

static int do_register(struct smm_mm *mm, uint64_t addr, uint64_t len,
		       unsigned long flags, bool reg)
{
	struct mmu_gather tlb;
	int err;

	if (!mm)
		return -EINVAL;
	err = validate_range(addr, len);
	if (err)
		return err;
	rcu_thread_online();
	mmap_write_lock(mm);
	if (mm->dead) {
		err = -ESRCH;
		goto out;
	}
	err = check_vmas(mm, addr, addr + len, !reg);
	if (err)
		goto out;
	if (reg) {
		err = vma_modify_range(mm, addr, addr + len, true,
				       &register_ops, &flags);
	} else {
		tlb_gather_mmu(&tlb, mm);
		err = vma_modify_range(mm, addr, addr + len, true,
				       &unregister_ops, &tlb);
		tlb_finish_mmu(&tlb);
		/* The faults waiting there fault again, as ordinary ones:
		 * their VMAs are no longer registered when they look. */
		uffd_wake(mm, addr, len);
	}
	/* a hole: fine here */
	err = err == SPLIT_FAILED ? -ENOMEM : err == -ENOMEM ? 0 : err;
out:
	mmap_write_unlock(mm);
	return err;
}

SMM_API int smm_uffd_register(struct smm_mm *mm, uint64_t addr, uint64_t len,
			      uint64_t mode)
{
	unsigned long flags = 0;

	if (!mode || (mode & ~(uint64_t)(SMM_UFFD_REGISTER_MODE_MISSING |
					 SMM_UFFD_REGISTER_MODE_WP)))
		return -EINVAL;
	if (mode & SMM_UFFD_REGISTER_MODE_MISSING)
		flags |= VM_UFFD_MISSING;
	if (mode & SMM_UFFD_REGISTER_MODE_WP)
		flags |= VM_UFFD_WP;
	return do_register(mm, addr, len, flags, true);
}

SMM_API int smm_uffd_unregister(struct smm_mm *mm, uint64_t addr, uint64_t len)
{
	return do_register(mm, addr, len, 0, false);
}

/* ---- handler, queue ---- */

SMM_API int smm_uffd_set_handler(struct smm_mm *mm, smm_uffd_handler_t fn,
				 void *arg)
{
	int err = 0;

	if (!mm)
		return -EINVAL;
	uffd_ctx_lock(&mm->uffd);
	if (mm->uffd.dead) {
		err = -ESRCH;
	} else {
		mm->uffd.handler_arg = arg;
		__atomic_store_n(&mm->uffd.handler, fn, __ATOMIC_RELAXED);
	}
	uffd_ctx_unlock(&mm->uffd);
	return err;
}

SMM_API int smm_uffd_set_poll(struct smm_mm *mm, uint64_t ns)
{
	int err = 0;

	if (!mm || ns > SMM_UFFD_POLL_MAX_NS)
		return -EINVAL;
	uffd_ctx_lock(&mm->uffd);
	if (mm->uffd.dead)
		err = -ESRCH;
	else
		__atomic_store_n(&mm->uffd.poll_ns, ns, __ATOMIC_RELAXED);
	uffd_ctx_unlock(&mm->uffd);
	return err;
}

SMM_API int smm_uffd_read(struct smm_mm *mm, struct smm_uffd_msg *msg,
			  int flags)
{
	int err;

	if (!mm || !msg || (flags & ~SMM_UFFD_NONBLOCK))
		return -EINVAL;
	rcu_thread_online();
	/* A reader blocked here outlives a concurrent destroy. */
	atomic_fetch_add(&mm->refs, 1);
	err = uffd_read_event(mm, msg, flags & SMM_UFFD_NONBLOCK);
	mm_put(mm);
	return err;
}

SMM_API int smm_uffd_wake(struct smm_mm *mm, uint64_t addr, uint64_t len)
{
	int err;

	if (!mm)
		return -EINVAL;
	err = validate_range(addr, len);
	if (err)
		return err;
	uffd_ctx_lock(&mm->uffd);
	if (mm->uffd.dead)
		err = -ESRCH;
	else
		uffd_wake_range(&mm->uffd, addr, len);
	uffd_ctx_unlock(&mm->uffd);
	return err;
}

/* ---- copy, zeropage ---- */

/*
 * Map one page at @addr of @vma: a new anonymous page holding @src, or
 * the zero page (@src NULL). The page is allocated and filled before the
 * ptl; under it the entry must still be none (-EEXIST), as in Linux's
 * mfill_atomic_install_pte(). 0, -EEXIST, -ENOMEM, or -EAGAIN (the table
 * went away under us: try again).
 */
static int mfill_one(struct vm_area_struct *vma, uint64_t addr, const void *src,
		     bool wp)
{
	struct smm_mm *mm = vma->vm_mm;
	struct smm_pool *pool = mm->pool;
	pteval_t entry, *ptep;
	pfn_t pfn = NO_PFN;
	struct pt_walk w;
	int err = 0;

#ifdef SMM_BUG_UFFD_NO_RECHECK
	/* planted bug: the check done before the lock, not under it */
	ptep = pte_offset_map(mm, addr, &w);
	if (ptep) {
		pteval_t e = pte_read(ptep);

		pte_unmap(&w);
		if (!pte_none(e))
			return -EEXIST;
	}
#endif
	if (src) {
		pfn = alloc_frame(pool, PG_ANON | ALLOC_NOZERO);
		if (pfn == NO_PFN)
			return -ENOMEM;
		frame_copy(pfn_to_virt(pool, pfn), src, PAGE_SIZE);
		anon_page_init(pfn_to_page(pool, pfn), vma, addr);
		entry = pfn_pte(pfn, vm_page_prot(vma->vm_flags) | _PAGE_DIRTY);
		if (wp)
			entry |= _PAGE_UFFD_WP;
		else if (vma->vm_flags & VM_WRITE)
			entry |= _PAGE_RW;
	} else {
		entry = pfn_pte(pool->zero_pfn, vm_page_prot(vma->vm_flags));
	}
	if (!(vma->vm_flags & VM_ACCESS_FLAGS)) /* PROT_NONE, as mprotect */
		entry = (entry & ~(_PAGE_PRESENT | _PAGE_RW)) | _PAGE_PROTNONE;
	race_point();
	ptep = pte_alloc_map(mm, addr, &w, &err);
	if (!ptep)
		goto out;
	if (!pte_map_lock(&w)) {
		pte_unmap(&w);
		err = -EAGAIN;
		goto out;
	}
#ifndef SMM_BUG_UFFD_NO_RECHECK
	if (!pte_none(pte_read(ptep))) {
		pte_unmap_unlock(&w);
		err = -EEXIST;
		goto out;
	}
#endif
	set_pte(mm, ptep, entry);
	pte_table_add(mm, ptep, 1);
	if (src) {
		atomic_store_explicit(&pfn_to_page(pool, pfn)->mapcount, 1,
				      memory_order_relaxed);
		stripe_add(mm->ctr, MC_RSS, 1);
		pfn = NO_PFN;
	} else {
		stripe_add(mm->ctr, MC_ZERO, 1);
	}
	pte_unmap_unlock(&w);
out:
	if (pfn != NO_PFN)
		put_page(pool, pfn);
	return err;
}

static int mfill(struct smm_mm *mm, uint64_t dst, const void *src, uint64_t len,
		 uint64_t mode, int64_t *done)
{
	bool zero = !src, wp = !zero && (mode & SMM_UFFD_COPY_MODE_WP);
	uint64_t dontwake = zero ? SMM_UFFD_ZEROPAGE_MODE_DONTWAKE :
				   SMM_UFFD_COPY_MODE_DONTWAKE;
	struct vm_area_struct *vma = NULL;
	bool mmap_locked = false;
	uint64_t copied = 0;
	int err;

	rcu_thread_online();
	if (!(mm->flags & SMM_MM_NO_VMA_LOCK))
		vma = lock_vma_under_rcu(mm, dst);
retry:
	if (!vma) {
		mmap_read_lock(mm);
		mmap_locked = true;
		if (mm->dead) {
			err = -ESRCH;
			goto unlock;
		}
		vma = vma_lookup(mm, dst);
	}
	/* Linux's uffd_mfill_lock(): a private VMA at @dst gets its
	 * anon_vma before anything is checked, so even a copy or zeropage
	 * that fails (an unregistered VMA) leaves it one, which fork (it
	 * copies the tables) and merging then see. */
	err = -ENOENT;
	if (!vma)
		goto unlock;
	err = vma->vm_flags & VM_SHARED ? 0 :
					  anon_vma_prepare(vma, !mmap_locked);
	if (err == -EAGAIN) { /* needs mmap_lock */
		vma_end_read(vma);
		vma = NULL;
		goto retry;
	}
	if (err)
		goto unlock;
	/* validate_dst_vma() */
	err = -ENOENT;
	if (dst + len > vma->vm_end || !(vma->vm_flags & VM_UFFD_FLAGS))
		goto unlock;
	err = -EINVAL;
	if (wp && !(vma->vm_flags & VM_UFFD_WP))
		goto unlock;
	err = 0;
	while (!err && copied < len) {
		err = mfill_one(vma, dst + copied,
				zero ? NULL : (const uint8_t *)src + copied,
				wp);
		if (err == -EAGAIN) {
			err = 0;
			continue;
		}
		if (!err)
			copied += PAGE_SIZE;
	}
unlock:
	if (mmap_locked)
		mmap_read_unlock(mm);
	else if (vma)
		vma_end_read(vma);
	if (copied && !(mode & dontwake))
		uffd_wake(mm, dst, copied);
	if (done)
		*done = copied ? (int64_t)copied : err;
	return copied == len ? 0 : copied ? -EAGAIN : err;
}

SMM_API int smm_uffd_copy(struct smm_mm *mm, uint64_t dst, const void *src,
			  uint64_t len, uint64_t mode, int64_t *copied)
{
	int err;

	if (!mm)
		return -EINVAL;
	err = validate_range(dst, len);
	if (err)
		return err;
	if (mode &
	    ~(uint64_t)(SMM_UFFD_COPY_MODE_DONTWAKE | SMM_UFFD_COPY_MODE_WP))
		return -EINVAL;
	if (!src)
		return -EFAULT;
	return mfill(mm, dst, src, len, mode, copied);
}

SMM_API int smm_uffd_zeropage(struct smm_mm *mm, uint64_t dst, uint64_t len,
			      uint64_t mode, int64_t *zeroed)
{
	int err;

	if (!mm)
		return -EINVAL;
	err = validate_range(dst, len);
	if (err)
		return err;
	if (mode & ~(uint64_t)SMM_UFFD_ZEROPAGE_MODE_DONTWAKE)
		return -EINVAL;
	return mfill(mm, dst, NULL, len, mode, zeroed);
}

/* ---- write-protect ---- */

SMM_API int smm_uffd_wp(struct smm_mm *mm, uint64_t addr, uint64_t len,
			uint64_t mode)
{
	bool set = mode & SMM_UFFD_WP_MODE_WP;
	uint64_t end = addr + len;
	struct mmu_gather tlb;
	int err;

	if (!mm)
		return -EINVAL;
	err = validate_range(addr, len);
	if (err)
		return err;
	if ((mode &
	     ~(uint64_t)(SMM_UFFD_WP_MODE_WP | SMM_UFFD_WP_MODE_DONTWAKE)) ||
	    (set && (mode & SMM_UFFD_WP_MODE_DONTWAKE)))
		return -EINVAL;
	rcu_thread_online();
	mmap_read_lock(mm);
	if (mm->dead) {
		mmap_read_unlock(mm);
		return -ESRCH;
	}
	/* Linux's mwriteprotect_range(): holes are skipped, a VMA not
	 * registered for WP stops it, and no VMA at all is -ENOENT. */
	err = -ENOENT;
	tlb_gather_mmu(&tlb, mm);
	for (struct vm_area_struct *v = find_vma(mm, addr);
	     v && v->vm_start < end; v = v->vm_next) {
		if (!(v->vm_flags & VM_UFFD_WP)) {
			err = -ENOENT;
			break;
		}
		wp_range(&tlb, v, MAX(addr, v->vm_start), MIN(end, v->vm_end),
			 set ? WP_SET : WP_CLEAR);
		err = 0;
	}
	tlb_finish_mmu(&tlb);
	mmap_read_unlock(mm);
	if (!err && !set && !(mode & SMM_UFFD_WP_MODE_DONTWAKE))
		uffd_wake(mm, addr, len);
	return err;
}
