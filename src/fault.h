/*
 * fault.h - page faults (fault.c): the entry from a user access, the
 * locked entry that slow GUP and populate use, and the per-VMA lock
 * lookup they share.
 */
#ifndef SMM_FAULT_H
#define SMM_FAULT_H

#include "mm.h"

#define FAULT_WRITE 0x1
#define FAULT_VMA_LOCK 0x2	/* only the VMA lock is held */

/* Handle a fault at @addr: 0 (retry the access), -EFAULT, -ENOMEM. Takes
 * a VMA lock, or mmap_lock for read, itself. */
int handle_mm_fault(struct smm_mm *mm, uint64_t addr, unsigned int flags);
/* The same with @vma found and locked by the caller (mmap_lock or, with
 * FAULT_VMA_LOCK, @vma's read lock); -EAGAIN: needs mmap_lock. */
int handle_mm_fault_locked(struct smm_mm *mm, struct vm_area_struct *vma,
			   uint64_t addr, unsigned int flags);
/* Read-lock the VMA covering @addr without mmap_lock, or NULL. */
struct vm_area_struct *lock_vma_under_rcu(struct smm_mm *mm, uint64_t addr);
/* Fault in [start, end) of one VMA as GUP would (populate). */
int populate_vma_range(struct smm_mm *mm, struct vm_area_struct *vma,
		       uint64_t start, uint64_t end, bool write);
bool vma_access_ok(struct vm_area_struct *vma, bool write);

#endif
