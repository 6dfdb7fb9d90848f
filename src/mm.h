/*
 * mm.h - what the mm files share beyond the types (mm_types.h) and the
 * locks (mmap_lock.h): zapping and unmapping (zap.c), the address space's
 * lifetime (mm.c). Each function says what its caller must hold.
 */
#ifndef SMM_MM_H
#define SMM_MM_H

#include "mm_types.h"
#include "mmap_lock.h"
#include "pgtable.h"
#include "vma.h"
#include "mmu_gather.h"
#include "rcu.h"

#define MLOCK_LIMIT_PAGES (SMM_MLOCK_LIMIT >> PAGE_SHIFT)

/*
 * Whether locking @bytes more stays within SMM_MLOCK_LIMIT (nothing to
 * check unless @flags has VM_LOCKED): mmap, mlock and stack growth ask.
 * mmap_lock held. Here rather than in mlock.c, which calls down into the
 * fault path that asks it too.
 */
static inline bool mlock_future_ok(struct smm_mm *mm, unsigned long flags,
				   uint64_t bytes)
{
	if (!(flags & VM_LOCKED))
		return true;
	return mm->locked_vm + (bytes >> PAGE_SHIFT) <= MLOCK_LIMIT_PAGES;
}

/* PROT_* to VM_* access flags (mmap, mprotect). */
static inline unsigned long calc_vm_prot_bits(int prot)
{
	return (prot & SMM_PROT_READ ? VM_READ : 0) |
	       (prot & SMM_PROT_WRITE ? VM_WRITE : 0) |
	       (prot & SMM_PROT_EXEC ? VM_EXEC : 0);
}

struct mm_walk;

/* zap.c */
/* Zap [start, end) of @vma (mmap_lock held); @why: enum zap_reason
 * (pt_scheme.h), which the scheme may free tables for. */
void zap_page_range(struct mmu_gather *tlb, struct vm_area_struct *vma,
		    uint64_t start, uint64_t end, int why);
/* The reverse map's zap of [start, end) of @vma, under the file's
 * i_mmap_lock instead of mmap_lock, with its own gather (filemap.h). */
void zap_vma_rmap(struct vm_area_struct *vma, uint64_t start, uint64_t end,
		  bool skip_anon);
/* munmap's second half (mmap_lock held, for read after munmap's downgrade):
 * zap the detached chain [first, last] and free the tables only it needed
 * (free_pgtables). */
void unmap_region(struct smm_mm *mm, struct vm_area_struct *first,
		  struct vm_area_struct *last, uint64_t floor, uint64_t ceiling,
		  int why);
/* pte_table_done for walks that zap (MADV_PAGEOUT too): tells the scheme
 * (zap_leave, with walk->zap) that the walk left a table. */
void zap_table_done(struct mm_walk *walk, uint64_t start, uint64_t end);

/* mmap.c, for mremap and MAP_FIXED: munmap's core, with no downgrade
 * (mmap_lock held for write, and still on return; takes up
 * to two VMAs from @pa and one tree update), and placement. */
struct vma_prealloc;
int do_munmap(struct smm_mm *mm, uint64_t start, uint64_t end,
	      struct vma_prealloc *pa);
int64_t get_unmapped_area(struct smm_mm *mm, uint64_t addr, uint64_t len,
			  int flags);

/* mm.c */
void mm_put(struct smm_mm *mm);
/* memory.c: the entry bits a VMA's flags give a page. */
pteval_t vm_page_prot(unsigned long vm_flags);

#endif
