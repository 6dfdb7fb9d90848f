/*
 * fault.c - page faults on anonymous memory: the zero page on read, a
 * fresh zeroed page on write, copy-on-write away from the zero page, and
 * populate (MAP_POPULATE, MADV_POPULATE_*), which faults ranges in as GUP
 * does.
 *
 * Locking: a fault first finds its VMA under RCU and read-locks it with a
 * trylock (lock_vma_under_rcu); on any failure it falls back to mmap_lock
 * for read. Page tables are allocated under either lock (docs/LOCKING.md
 * says why a concurrent munmap cannot free them), and each entry is
 * installed under its PTE table's ptl after rechecking that the entry did
 * not change since it was read.
 */
#include <errno.h>
#include "fault.h"
#include "pagewalk.h"

pteval_t vm_page_prot(unsigned long vm_flags)
{
	return _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;
}

/* x86: any of read, write, exec allows a load; only VM_WRITE a store. */
bool vma_access_ok(struct vm_area_struct *vma, bool write)
{
	if (write)
		return vma->vm_flags & VM_WRITE;
	return vma->vm_flags & VM_ACCESS_FLAGS;
}

/*
 * Linux's find_mergeable_anon_vma(): a VMA that touches @vma, with the same
 * flags but for access permissions and a linear pgoff, lends its anon_vma
 * (the next one first, then the previous one), so that the two can merge
 * again later. Needs mmap_lock (the neighbours must hold still) and
 * page_table_lock (their anon_vma may be being set).
 */
static uint64_t find_mergeable_anon_vma(struct vm_area_struct *vma)
{
	struct vm_area_struct *n = vma->vm_next, *p = vma->vm_prev;

	if (n && n->anon_vma && vma->vm_end == n->vm_start &&
	    !((vma->vm_flags ^ n->vm_flags) & ~VM_ACCESS_FLAGS) &&
	    n->vm_pgoff == vma->vm_pgoff + ((n->vm_start - vma->vm_start) >> PAGE_SHIFT))
		return n->anon_vma;
	if (p && p->anon_vma && p->vm_end == vma->vm_start &&
	    !((vma->vm_flags ^ p->vm_flags) & ~VM_ACCESS_FLAGS) &&
	    vma->vm_pgoff == p->vm_pgoff + ((vma->vm_start - p->vm_start) >> PAGE_SHIFT))
		return p->anon_vma;
	return 0;
}

/*
 * Give @vma an anon_vma identity before its first anonymous page. Under a
 * VMA lock alone the neighbours may be changing: like Linux's
 * vmf_anon_prepare(), take mmap_lock with a trylock (it is the outer lock,
 * so only a trylock is safe here) or ask the caller to retry the fault
 * under mmap_lock (-EAGAIN).
 */
static int anon_vma_prepare(struct smm_mm *mm, struct vm_area_struct *vma,
			    bool vma_locked)
{
	if (likely(READ_ONCE(vma->anon_vma)))
		return 0;
	if (vma_locked && !mmap_read_trylock(mm))
		return -EAGAIN;
	spin_lock_class(&mm->page_table_lock, LC_PAGE_TABLE);
	if (!vma->anon_vma) {
		uint64_t av = find_mergeable_anon_vma(vma);

		WRITE_ONCE(vma->anon_vma, av ? av : ++mm->anon_vma_seq);
	}
	spin_unlock(&mm->page_table_lock);
	if (vma_locked)
		mmap_read_unlock(mm);
	return 0;
}

/*
 * The fault proper, with the VMA found and the access checked. Returns 0
 * when the entry now allows the access (or another CPU changed it first:
 * the access is retried either way), -ENOMEM when the pool ran out,
 * -EAGAIN when it needs mmap_lock and holds only the VMA lock.
 *
 * Like Linux's do_anonymous_page(), a write that needs a fresh page
 * allocates (and zeroes) it before taking the PTE lock, then takes the lock
 * once and installs it if the entry is still what it was.
 */
static int do_fault(struct smm_mm *mm, struct vm_area_struct *vma,
		    uint64_t addr, bool write, bool vma_locked)
{
	struct smm_pool *pool = mm->pool;
	pteval_t *ptep, orig, entry;
	pfn_t new = NO_PFN;
	struct pt_walk w;
	bool flush = false;

	if (pte_alloc(mm, addr, &orig))
		return -ENOMEM;
	if (write && (pte_none(orig) ||
		      (pte_present(orig) && is_zero_pfn(pool, pte_pfn(orig))))) {
		if (anon_vma_prepare(mm, vma, vma_locked))
			return -EAGAIN;
		new = alloc_frame(pool, PG_ANON);
		if (new == NO_PFN)
			return -ENOMEM;
		race_point();
	}
	ptep = pte_offset_map_lock(mm, addr, &w);
	if (unlikely(!ptep))
		goto retry;	/* table went away under us */
	if (unlikely(pte_read(ptep) != orig)) {
		/* Changed since we looked: let the access retry. */
		pte_unmap_unlock(&w);
		goto retry;
	}
	if (pte_present(orig) && (!write || (orig & _PAGE_RW))) {
		/* Spurious: another CPU fixed it, or a stale TLB entry. */
		pte_unmap_unlock(&w);
		return 0;
	}
	if (!write) {
		/* Read of untouched memory: map the shared zero page. */
		set_pte(mm, ptep, pfn_pte(pool->zero_pfn, vm_page_prot(vma->vm_flags)));
		pte_table_add(mm, ptep, 1);
		stripe_add(mm->ctr, MC_ZERO, 1);
		pte_unmap_unlock(&w);
		return 0;
	}
	if (new == NO_PFN) {
		/*
		 * Write to a present, read-only anonymous page in a writable
		 * VMA. Without fork every anonymous page is exclusive to its
		 * mapping: reuse it, just make the entry writable.
		 */
		set_pte(mm, ptep, orig | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED);
		pte_unmap_unlock(&w);
		return 0;
	}
	atomic_store(&pfn_to_page(pool, new)->mapcount, 1);
	atomic_fetch_or(&pfn_to_page(pool, new)->flags, PG_DIRTY);
	entry = pfn_pte(new, vm_page_prot(vma->vm_flags) | _PAGE_RW | _PAGE_DIRTY);
	if (pte_present(orig)) {
		/* Replacing the zero page: CPUs may cache it (ptep_clear_flush). */
		ptep_xchg(mm, ptep, entry);
		stripe_add(mm->ctr, MC_ZERO, -1);
		flush = true;
	} else {
		set_pte(mm, ptep, entry);
		pte_table_add(mm, ptep, 1);
	}
	stripe_add(mm->ctr, MC_RSS, 1);
	pte_unmap_unlock(&w);
	if (flush)
		flush_tlb_mm(mm);
	return 0;
retry:
	if (new != NO_PFN)
		put_page(pool, new);
	return 0;
}

int handle_mm_fault_locked(struct smm_mm *mm, struct vm_area_struct *vma,
			   uint64_t addr, unsigned int flags)
{
	bool write = flags & FAULT_WRITE;

	assert_fault_locked(mm);
	if (!vma || vma->vm_start > addr || !vma_access_ok(vma, write))
		return -EFAULT;
	stripe_add(mm->ctr, MC_FAULTS, 1);
	return do_fault(mm, vma, addr & PAGE_MASK, write, flags & FAULT_VMA_LOCK);
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
	if (unlikely(READ_ONCE(vma->detached) || addr < READ_ONCE(vma->vm_start) ||
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
				return ret;
			}
			/* Needs mmap_lock after all: retry under it. */
		}
	}
	mmap_read_lock(mm);
	ret = handle_mm_fault_locked(mm, find_vma(mm, addr), addr, flags);
	mmap_read_unlock(mm);
	stripe_add(mm->ctr, MC_FAULTS_MMAP, 1);
	return ret;
}

/*
 * Fault in every page of [start, end) within @vma that does not already
 * allow the access, as GUP with FOLL_TOUCH does for populate. Returns 0,
 * or -ENOMEM with the pages before the failing one populated.
 */
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

int populate_vma_range(struct smm_mm *mm, struct vm_area_struct *vma,
		       uint64_t start, uint64_t end, bool write)
{
	mmap_assert_locked(mm);
	for (uint64_t addr = start; addr < end; addr += PAGE_SIZE) {
		pteval_t e = peek_pte(mm, addr);
		int err;

		if (pte_present(e) && (!write || (e & _PAGE_RW)))
			continue;
		err = handle_mm_fault_locked(mm, vma, addr,
					     write ? FAULT_WRITE : 0);
		if (err)
			return err;
		/* a retry (0) leaves the entry to be checked again */
		e = peek_pte(mm, addr);
		if (!(pte_present(e) && (!write || (e & _PAGE_RW))))
			addr -= PAGE_SIZE;
	}
	return 0;
}
