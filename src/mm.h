/*
 * mm.h - what the mm files share beyond the types (mm_types.h) and the
 * locks (mmap_lock.h): zapping and unmapping (zap.c), protection changes
 * (mprotect.c), the address space's lifetime (mm.c). Each function says
 * what its caller must hold.
 */
#ifndef SMM_MM_H
#define SMM_MM_H

#include "mm_types.h"
#include "mmap_lock.h"
#include "pgtable.h"
#include "vma.h"
#include "mmu_gather.h"
#include "rcu.h"

/* zap.c */
/* Zap [start, end) of @vma (mmap_lock held); @why: enum zap_reason
 * (pt_scheme.h), which the scheme may free tables for. */
void zap_page_range(struct mmu_gather *tlb, struct vm_area_struct *vma,
		    uint64_t start, uint64_t end, int why);
/* munmap's second half (mmap_lock held for write): zap the detached chain
 * [first, last] and free the tables only it needed (free_pgtables). */
void unmap_region(struct smm_mm *mm, struct vm_area_struct *first,
		  struct vm_area_struct *last, uint64_t floor, uint64_t ceiling,
		  int why);
void madvise_free_range(struct mmu_gather *tlb, struct vm_area_struct *vma,
			uint64_t start, uint64_t end);
void pageout_range(struct mmu_gather *tlb, struct vm_area_struct *vma,
		   uint64_t start, uint64_t end);
int change_protection(struct mmu_gather *tlb, struct vm_area_struct *vma,
		      uint64_t start, uint64_t end, unsigned long newflags);

/* mm.c */
void mm_put(struct smm_mm *mm);
pteval_t vm_page_prot(unsigned long vm_flags);

#endif
