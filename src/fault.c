/*
 * fault.c - the entry of page faults: finding and locking the VMA (per-VMA
 * lock, or mmap_lock), checking the access, counting, and handing the
 * fault to memory.c; and populate (MAP_POPULATE, MADV_POPULATE_*), which
 * faults ranges in as GUP does.
 *
 * Locking: a fault first finds its VMA under RCU and read-locks it with a
 * trylock (lock_vma_under_rcu); on any failure it falls back to mmap_lock
 * for read. Page tables are allocated under either lock (docs/LOCKING.md
 * says why a concurrent munmap cannot free them), and each entry is
 * installed under its PTE table's ptl after rechecking that the entry did
 * not change since it was read (memory.c).
 */
#include <errno.h>
#include "fault.h"
#include "pagewalk.h"
#include "rmap.h"

/* x86: any of read, write, exec allows a load; only VM_WRITE a store. */
bool vma_access_ok(struct vm_area_struct *vma, bool write)
{
	if (write)
		return vma->vm_flags & VM_WRITE;
	return vma->vm_flags & VM_ACCESS_FLAGS;
}

int handle_mm_fault_locked(struct smm_mm *mm, struct vm_area_struct *vma,
			   uint64_t addr, unsigned int flags)
{
	bool write = flags & FAULT_WRITE;

	struct vm_fault vmf;

	assert_fault_locked(mm);
	if (!vma || vma->vm_start > addr || !vma_access_ok(vma, write))
		return -EFAULT;
	stripe_add(mm->ctr, MC_FAULTS, 1);
	vmf.vma = vma;
	vmf.address = addr & PAGE_MASK;
	vmf.flags = flags;
	return handle_pte_fault(&vmf);
}

/*
 * Find and read-lock the VMA covering @addr without mmap_lock, or return
 * NULL (the caller falls back to mmap_lock). The lookup ran on some version
 * of the tree; by the time we hold the lock, a writer may have shrunk,
 * split or removed the VMA and released it again. Only after the lock is
 * held can its bounds and its detached flag be trusted, hence the recheck:
 * without it a fault could fill a range that munmap already emptied, or
 * apply the old protection to a part mprotect changed.
 */
struct vm_area_struct *lock_vma_under_rcu(struct smm_mm *mm, uint64_t addr)
{
	struct vm_area_struct *vma;

	urcu_memb_read_lock();
	vma = lockless_vma_lookup(mm, addr);
	race_point();
	if (!vma || !vma_start_read(vma)) {
		urcu_memb_read_unlock();
		return NULL;
	}
#ifndef SMM_BUG_NO_VMA_RECHECK
	if (unlikely(READ_ONCE(vma->detached) ||
		     addr < READ_ONCE(vma->vm_start) ||
		     addr >= READ_ONCE(vma->vm_end))) {
		vma_end_read(vma);
		urcu_memb_read_unlock();
		return NULL;
	}
#endif
	/* Write-locking waits for us now: the VMA outlives the RCU section. */
	urcu_memb_read_unlock();
	return vma;
}

/*
 * A fault below a VM_GROWSDOWN VMA grows it down to the faulting page
 * (Linux's expand_downwards()), unless that comes within stack_guard_gap
 * of an accessible VMA below (another stack may come right up to it), or
 * the stack would pass SMM_STACK_LIMIT (RLIMIT_STACK) or the mlock limit.
 * The access is checked afterwards: a write below a read-only stack grows
 * it and still faults. mmap_lock held for write. 0 or -ENOMEM.
 */
static int expand_downwards(struct vm_area_struct *vma, uint64_t addr)
{
	struct smm_mm *mm = vma->vm_mm;
	struct vm_area_struct *prev = vma->vm_prev;
	struct vma_prealloc pa;
	uint64_t grow;

	mmap_assert_write_locked(mm);
	addr &= PAGE_MASK;
	if (!(vma->vm_flags & VM_GROWSDOWN) || addr < 0x10000)
		return -ENOMEM;
	if (prev && !(prev->vm_flags & VM_GROWSDOWN) &&
	    (prev->vm_flags & VM_ACCESS_FLAGS) &&
	    addr - prev->vm_end < STACK_GUARD_GAP)
		return -ENOMEM;
	if (vma_prealloc(mm, &pa, 0, 1, 1))
		return -ENOMEM;
	/*
	 * Linux gives the stack its anon_vma before it checks the limits,
	 * so even a growth refused below leaves the VMA one (which then
	 * decides what it may merge with).
	 */
	if (anon_vma_prepare(vma, false))
		goto nomem;
	grow = (vma->vm_start - addr) >> PAGE_SHIFT;
	if (vma->vm_end - addr > SMM_STACK_LIMIT || grow > vma->vm_pgoff ||
	    !mlock_future_ok(mm, vma->vm_flags, grow << PAGE_SHIFT))
		goto nomem;
	vma_start_write(vma);
	if (vma->vm_flags & VM_LOCKED)
		mm->locked_vm += grow;
	WRITE_ONCE(vma->vm_start, addr);
	vma->vm_pgoff -= grow;
	vma_tree_update(mm, addr, vma->vm_end + 1);
	vma_prealloc_free(&pa);
	return 0;
nomem:
	vma_prealloc_free(&pa);
	return -ENOMEM;
}

int handle_mm_fault(struct smm_mm *mm, uint64_t addr, unsigned int flags)
{
	struct vm_area_struct *vma;
	int ret;

	if (!(mm->flags & SMM_MM_NO_VMA_LOCK)) {
		vma = lock_vma_under_rcu(mm, addr);
		if (vma) {
			ret = handle_mm_fault_locked(mm, vma, addr,
						     flags | FAULT_VMA_LOCK);
			vma_end_read(vma);
			if (ret != -EAGAIN) {
				stripe_add(mm->ctr, MC_FAULTS_VMA, 1);
				if (unlikely(ret == VM_FAULT_UFFD))
					return uffd_wait(mm);
				return ret;
			}
			/* Needs mmap_lock after all: retry under it. */
		}
	}
	mmap_read_lock(mm);
	vma = find_vma(mm, addr);
	if (unlikely(vma && vma->vm_start > addr &&
		     (vma->vm_flags & VM_GROWSDOWN))) {
		/* Growing a stack changes the VMA: mmap_lock for write. */
		mmap_read_unlock(mm);
		mmap_write_lock(mm);
		vma = find_vma(mm, addr);
		if (vma && vma->vm_start > addr && expand_downwards(vma, addr))
			vma = NULL;
		ret = handle_mm_fault_locked(mm, vma, addr, flags);
		mmap_write_unlock(mm);
	} else {
		ret = handle_mm_fault_locked(mm, vma, addr, flags);
		mmap_read_unlock(mm);
	}
	stripe_add(mm->ctr, MC_FAULTS_MMAP, 1);
	if (unlikely(ret == VM_FAULT_UFFD)) /* every lock dropped: wait */
		return uffd_wait(mm);
	return ret;
}

/* The PTE for @addr as a semi-locked walker sees it (0: no table). */
static pteval_t peek_pte(struct smm_mm *mm, uint64_t addr)
{
	struct pt_walk w;
	pteval_t *ptep = pte_offset_map(mm, addr, &w);
	pteval_t e = 0;

	if (ptep) {
		e = pte_read(ptep);
		pte_unmap(&w);
	}
	return e;
}

/*
 * A populate that met a page registered with userfaultfd waits for the
 * handler as a fault would, which Linux's GUP does with FOLL_UNLOCKABLE:
 * the fault returns VM_FAULT_RETRY, GUP drops mmap_lock, and takes it
 * again to go on. What it held before the wait tells nothing after it:
 * the range may have been unmapped, remapped, mprotected or split
 * meanwhile, and the VMA freed; the callers look the address up again.
 */
int populate_wait(struct smm_mm *mm)
{
	int err;

	mmap_read_unlock(mm);
	err = uffd_wait(mm);
	if (err == -ESRCH)
		return err;
	mmap_read_lock(mm);
	if (mm->dead) {
		mmap_read_unlock(mm);
		return -ESRCH;
	}
	return err ? -EFAULT : 0;
}

/*
 * Linux's __mm_populate() faults a range in VMA by VMA through GUP, with
 * write faults where the VMA is private and writable. When a page waits
 * for its userfaultfd handler GUP returns, with mmap_lock dropped, the
 * count of pages done before it; __mm_populate() takes the lock again
 * and looks up the VMAs from that page on, as if starting afresh: what it
 * held before the wait may have been unmapped, mprotected or split
 * meanwhile, and freed. So a range unmapped while populate waited is
 * skipped without an error, as any hole is, and a VMA made read-only
 * has read faults from then on (6.18 does both: mlock answers 0).
 */
int mm_populate(struct smm_mm *mm, uint64_t start, uint64_t end,
		bool ignore_errors)
{
	uint64_t nstart, nend;
	int err = 0;

	mmap_read_lock(mm);
	for (nstart = start; nstart < end; nstart = nend) {
		struct vm_area_struct *v = find_vma(mm, nstart);
		uint64_t addr;
		bool write;
		int e;

		if (!v || v->vm_start >= end)
			break;
		nstart = MAX(nstart, v->vm_start);
		nend = MIN(end, v->vm_end);
		/* Linux's populate_vma_page_range(): onfault locks fault
		 * nothing in, PROT_NONE refuses. */
		if (v->vm_flags & VM_LOCKONFAULT)
			continue;
		write = (v->vm_flags & (VM_WRITE | VM_SHARED)) == VM_WRITE;
		addr = nstart;
		e = !(v->vm_flags & VM_ACCESS_FLAGS) ?
			    -EFAULT :
			    populate_vma_range(mm, v, &addr, nend, write, true);
		while (e == VM_FAULT_UFFD) {
			e = populate_wait(mm);
			if (e == -ESRCH)
				return e;
#ifndef SMM_BUG_POPULATE_STALE_VMA
			break;
#else
			/* Planted bug (build/bug11): go on with the VMA held
			 * before the wait; test_uffd must catch it reading
			 * a VMA freed meanwhile. */
			if (!e)
				e = populate_vma_range(mm, v, &addr, nend,
						       write, true);
#endif
		}
		if (!e && addr < nend) {
			nend = addr; /* it waited: look the page up again */
			continue;
		}
		if (e && !ignore_errors) {
			err = e;
			break;
		}
	}
	mmap_read_unlock(mm);
	return err;
}

int populate_vma_range(struct smm_mm *mm, struct vm_area_struct *vma,
		       uint64_t *start, uint64_t end, bool write, bool may_wait)
{
	mmap_assert_locked(mm);
	for (uint64_t addr = *start; addr < end; addr += PAGE_SIZE) {
		pteval_t e = peek_pte(mm, addr);
		int err;

		*start = addr;
		if (pte_present(e) && (!write || (e & _PAGE_RW)))
			continue;
		err = handle_mm_fault_locked(
			mm, vma, addr,
			(write ? FAULT_WRITE : 0) |
				(may_wait ? 0 : FAULT_NO_UFFD));
		if (err == -ENXIO) /* a bus error: GUP says -EFAULT */
			err = -EFAULT;
		if (err)
			return err;
		/* a retry (0) leaves the entry to be checked again */
		e = peek_pte(mm, addr);
		if (!(pte_present(e) && (!write || (e & _PAGE_RW))))
			addr -= PAGE_SIZE;
	}
	*start = end;
	return 0;
}
