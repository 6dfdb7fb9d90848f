/*
 * vma.h - VMAs: allocation and freeing, lookup, the address-sorted list
 * (vma.c), the RCU-searchable tree (vma_tree.c), and the rules that decide
 * merging. Writers hold mmap_lock for write; lookups need mmap_lock or the
 * RCU read lock (lockless_vma_lookup).
 */
#ifndef SMM_VMA_H
#define SMM_VMA_H

#include "mmap_lock.h"

/* vma.c */
struct vm_area_struct *vma_alloc(struct smm_mm *mm);
void vma_free(struct vm_area_struct *vma);	/* never published */
void vma_cache_drain(struct smm_mm *mm);
void vma_free_rcu(struct vm_area_struct *vma);	/* after a grace period */
struct vm_area_struct *find_vma(struct smm_mm *mm, uint64_t addr);
struct vm_area_struct *find_vma_prev(struct smm_mm *mm, uint64_t addr,
				     struct vm_area_struct **prev);
struct vm_area_struct *vma_lookup(struct smm_mm *mm, uint64_t addr);
struct vm_area_struct *lockless_vma_lookup(struct smm_mm *mm, uint64_t addr);
void vma_link_after(struct smm_mm *mm, struct vm_area_struct *prev,
		    struct vm_area_struct *vma);
void vma_unlink(struct smm_mm *mm, struct vm_area_struct *vma);
bool anon_vma_compatible(uint64_t a, uint64_t b);
bool vma_flags_mergeable(unsigned long a, unsigned long b);

/* vma_tree.c */
int vma_tree_reserve(struct smm_mm *mm, size_t m, int updates);
void vma_tree_update(struct smm_mm *mm, uint64_t lo, uint64_t hi);
void vma_tree_clear(struct smm_mm *mm);
void vma_tree_destroy(struct smm_mm *mm);
void vma_tree_check(struct smm_mm *mm);	/* debug builds */

#endif
