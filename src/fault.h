/*
 * fault.h - page faults (fault.c): the entry from a user access, the
 * locked entry that slow GUP and populate use, and the per-VMA lock
 * lookup they share.
 */
#ifndef SMM_FAULT_H
#define SMM_FAULT_H

#include "pagewalk.h"

#define FAULT_WRITE    0x1
#define FAULT_VMA_LOCK 0x2 /* only the VMA lock is held */
/* GUP pins an anonymous page that fork shares: copy it (readable only,
 * without FAULT_WRITE), Linux's FAULT_FLAG_UNSHARE. */
#define FAULT_UNSHARE 0x4
/* The caller cannot drop its lock to wait for a userfaultfd handler
 * (populate): a registered fault fails instead (uffd.c). */
#define FAULT_NO_UFFD 0x8

/* One fault, as memory.c and the vm_ops see it. */
struct vm_fault {
	struct vm_area_struct *vma;
	uint64_t address;   /* page aligned */
	unsigned int flags; /* FAULT_* */
	pteval_t orig_pte;  /* the entry when the fault looked */
	pteval_t *pte;	    /* the entry, in the PTE table mapped in @pt */
	struct pt_walk pt;  /* the fault's installing walk (pte_alloc_map) */
};

/*
 * What faults on a VMA do, Linux's vm_operations_struct. Anonymous VMAs
 * have none (vma->vm_ops NULL): memory.c handles them.
 */
struct vm_operations_struct {
	const char *name;
	/*
	 * fault - vmf->orig_pte is none: map a page at vmf->address. The
	 * caller holds mmap_lock for read, or only the VMA's read lock
	 * (FAULT_VMA_LOCK), and has the PTE table mapped (vmf->pt, the
	 * entry at vmf->pte). Install under the ptl after rechecking the
	 * entry, and end with pte_unmap(&vmf->pt) whatever happens. Returns
	 * 0 (the access retries), -ENOMEM, -EFAULT, or -EAGAIN to be retried
	 * under mmap_lock.
	 */
	int (*fault)(struct vm_fault *vmf);
	/*
	 * The page before the table: fault is called with no table mapped
	 * (vmf->pt unused) when the entry is none or there is no PTE table
	 * at all, and installs what it needs itself (file VMAs: the page
	 * lock comes before the page tables, and a bus error installs no
	 * PTE table, as in Linux).
	 */
	bool page_first;
};

/* Handle a fault at @addr: 0 (retry the access), -EFAULT, -ENOMEM. Takes
 * a VMA lock, or mmap_lock for read, itself. */
int handle_mm_fault(struct smm_mm *mm, uint64_t addr, unsigned int flags);
/* The same with @vma found and locked by the caller (mmap_lock or, with
 * FAULT_VMA_LOCK, @vma's read lock); -EAGAIN: needs mmap_lock. */
int handle_mm_fault_locked(struct smm_mm *mm, struct vm_area_struct *vma,
			   uint64_t addr, unsigned int flags);
/* memory.c: an access checked, the VMA locked: make the entry allow it. */
int handle_pte_fault(struct vm_fault *vmf);
/* Read-lock the VMA covering @addr without mmap_lock, or NULL. */
struct vm_area_struct *lock_vma_under_rcu(struct smm_mm *mm, uint64_t addr);
/*
 * mm_populate - Linux's __mm_populate(): fault in [start, end) VMA by VMA
 * (write faults where the VMA is private and writable, else reads), for
 * MAP_POPULATE and MAP_LOCKED (@ignore_errors) and mlock (not). Takes
 * mmap_lock for read, and drops it while a userfaultfd handler resolves
 * a registered page (populate_wait()); then it looks the VMAs up again
 * from that page on, skipping holes. 0, or the first error: -EFAULT (a
 * PROT_NONE VMA, a bus error, a failed userfaultfd callback), -ENOMEM
 * (the pool ran out), -ESRCH (the mm was destroyed while populate waited
 * for its handler: it may be freed, and must not be touched again).
 */
int mm_populate(struct smm_mm *mm, uint64_t start, uint64_t end,
		bool ignore_errors);
/*
 * populate_vma_range - fault in [*@start, @end) of @vma as GUP would
 * (populate), mmap_lock held; *@start advances past each page done.
 * Returns 0, -ENOMEM or -EFAULT (a bus error beyond the end of a file; a
 * page registered with userfaultfd unless @may_wait), or, with
 * @may_wait, VM_FAULT_UFFD: the page at *@start waits for the handler,
 * and the caller must call populate_wait() before anything else.
 */
int populate_vma_range(struct smm_mm *mm, struct vm_area_struct *vma,
		       uint64_t *start, uint64_t end, bool write,
		       bool may_wait);
/*
 * populate_wait - after VM_FAULT_UFFD from populate_vma_range(), with
 * mmap_lock held for read: drop it, let the handler resolve the page
 * (uffd_wait()) and take it again. Returns 0 with the lock held: the
 * VMAs may have changed meanwhile, so look the address up again; -EFAULT
 * with the lock held: the callback failed (a bus error); -ESRCH with the
 * lock not held: the mm was destroyed, and may already be freed.
 */
int populate_wait(struct smm_mm *mm);
bool vma_access_ok(struct vm_area_struct *vma, bool write);

#endif
