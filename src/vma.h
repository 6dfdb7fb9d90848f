/*
 * vma.h - VMAs: allocation and freeing, lookup, the address-sorted list
 * (vma.c), the RCU-searchable tree (vma_tree.c), and the rules that decide
 * merging. Writers hold mmap_lock for write; lookups need mmap_lock or the
 * RCU read lock (lockless_vma_lookup).
 */
#ifndef SMM_VMA_H
#define SMM_VMA_H

#include "mmap_lock.h"

/*
 * DEFAULT_MAX_MAP_COUNT - Linux's vm.max_map_count default, checked where
 * and as Linux 6.18 checks it (found by experiment, include/softmm.h):
 * mmap fails with -ENOMEM while nr_vmas > max (so nr_vmas can reach
 * max + 1); a split (mprotect, or munmap of the middle of one VMA) while
 * nr_vmas >= max.
 */
#define DEFAULT_MAX_MAP_COUNT 65530

/* vma.c */
struct vm_area_struct *vma_alloc(struct smm_mm *mm);
void vma_free(struct vm_area_struct *vma); /* never published */
void vma_cache_drain(struct smm_mm *mm);
void vma_free_rcu(struct vm_area_struct *vma); /* after a grace period */
struct vm_area_struct *find_vma(struct smm_mm *mm, uint64_t addr);
struct vm_area_struct *find_vma_prev(struct smm_mm *mm, uint64_t addr,
				     struct vm_area_struct **prev);
struct vm_area_struct *vma_lookup(struct smm_mm *mm, uint64_t addr);
struct vm_area_struct *lockless_vma_lookup(struct smm_mm *mm, uint64_t addr);
void vma_link_after(struct smm_mm *mm, struct vm_area_struct *prev,
		    struct vm_area_struct *vma);
void vma_unlink(struct smm_mm *mm, struct vm_area_struct *vma);
/* munmap: take [first, last] off the list as one chain, each VMA
 * write-locked and marked detached; the chain keeps its vm_next links. */
void vma_detach_range(struct smm_mm *mm, struct vm_area_struct *first,
		      struct vm_area_struct *last);
/* The first VMA ending above @addr, by the list: valid in the middle of an
 * operation, while the tree is stale. mmap_lock held for write. */
/*
 * vma_tree_update - publish the list's VMAs in [lo, hi) to lockless
 * lookups (vma_tree_rebuild()), then hand the VMAs vma_remove() took off
 * the list to RCU: only now can no new lookup find them.
 */
void vma_tree_update(struct smm_mm *mm, uint64_t lo, uint64_t hi);
struct vm_area_struct *vma_find_list(struct smm_mm *mm, uint64_t addr);

/*
 * Splitting and merging VMAs: the one API that mmap, munmap, mprotect and
 * madvise use. Every function here needs mmap_lock held for write and
 * write-locks each VMA it changes (vma_start_write). What they may need is
 * allocated before anything changes (vma_prealloc()), so that they cannot
 * fail halfway.
 */
struct vma_prealloc {
	struct vm_area_struct *v[3];
	int nr;
};
/* Take @n spare VMAs, and tree nodes for @updates tree updates rebuilding
 * up to @m VMAs each. 0 or -ENOMEM (nothing taken then). */
int vma_prealloc(struct smm_mm *mm, struct vma_prealloc *pa, int n, size_t m,
		 int updates);
/* Give back what was not used. */
void vma_prealloc_free(struct vma_prealloc *pa);
/* Split @vma at @addr: @vma keeps [vm_start, addr), a VMA from @pa gets
 * [addr, vm_end), linked after it, with the same flags and anon_vma. */
void vma_split(struct smm_mm *mm, struct vm_area_struct *vma, uint64_t addr,
	       struct vma_prealloc *pa);
/* Unlink @vma; it is freed after a grace period that begins when the next
 * vma_tree_update() has unpublished it. */
void vma_remove(struct smm_mm *mm, struct vm_area_struct *vma);
/*
 * vma_merge_new_range - map the hole [start, end) with @flags, of @file
 * (NULL: anonymous) from page offset @pgoff: extend the VMA before or after
 * it, or both into one, where Linux would merge (same flags and file,
 * continuing page offsets, compatible anon_vma; a new range has none
 * yet; mremap's destination brings the source's, @anon, and its VMA,
 * @src, whose anon_vma chain the merge rule asks about), else link a new
 * VMA from @pa, which takes a reference on @file (and @anon).
 * Returns the VMA that covers the range.
 */
struct vm_area_struct *
vma_merge_new_range(struct smm_mm *mm, uint64_t start, uint64_t end,
		    unsigned long flags, struct smm_file *file, uint64_t pgoff,
		    struct anon_vma *anon, const struct vm_area_struct *src,
		    struct vma_prealloc *pa);
/*
 * vma_modify_flags - give [start, end), which lies in @vma, the flags
 * @flags: merge it into @prev (the VMA before @vma, or @vma itself when
 * @start is inside it) or the next VMA where Linux would, else split @vma
 * at the ends of the range (up to two VMAs from @pa). Page-table entries
 * are the caller's business. Returns the VMA that now covers exactly the
 * range's part of it, or NULL when a split would pass max_map_count
 * (-ENOMEM; a first split may stay done, as in Linux).
 */
struct vm_area_struct *
vma_modify_flags(struct smm_mm *mm, struct vm_area_struct *prev,
		 struct vm_area_struct *vma, uint64_t start, uint64_t end,
		 unsigned long flags, struct vma_prealloc *pa);

/*
 * vma_modify_range - give each VMA part in [start, end) the flags
 * ops->new_flags() computes from it, through vma_modify_flags() (so
 * splitting at the ends and merging as Linux does), then call
 * ops->changed() for the part if the flags changed. A hole: -ENOMEM at
 * once if !@holes_ok (mprotect, mlock, munlock), else skipped and -ENOMEM
 * at the end (madvise). A split past max_map_count stops it with ops->split_errno.
 * Parts before a failure stay changed, as in Linux. Preallocates what it
 * needs first (ops->split_errno, nothing changed) and publishes the tree
 * itself.
 * mmap_lock held for write.
 */
struct vma_range_ops {
	/* May be NULL; an error stops the walk before @vma (mprotect's
	 * -EACCES), the VMAs before it staying changed. */
	int (*check)(struct vm_area_struct *vma, void *arg);
	unsigned long (*new_flags)(struct vm_area_struct *vma, void *arg);
	/* @vma covers [start, end) now, with its new flags */
	void (*changed)(struct vm_area_struct *vma, uint64_t start,
			uint64_t end, unsigned long oldflags, void *arg);
	int split_errno;
};
int vma_modify_range(struct smm_mm *mm, uint64_t start, uint64_t end,
		     bool holes_ok, const struct vma_range_ops *ops, void *arg);

/*
 * stack_guard_gap: placement keeps 256 pages free below a VM_GROWSDOWN
 * VMA (Linux's default), and the stack does not grow to within that
 * distance of the VMA below it. vm_start_gap() is where a VMA begins for
 * the purpose of placing another below it.
 */
#define STACK_GUARD_GAP (256ULL << PAGE_SHIFT)
static inline uint64_t vm_start_gap(const struct vm_area_struct *vma)
{
	uint64_t start = vma->vm_start;

	if (!(vma->vm_flags & VM_GROWSDOWN))
		return start;
	return start > STACK_GUARD_GAP ? start - STACK_GUARD_GAP : 0;
}

/* vma_tree.c */
int vma_tree_reserve(struct smm_mm *mm, size_t m, int updates);
/* Rebuild the tree's keys in [lo, hi) from the list and publish it. */
void vma_tree_rebuild(struct smm_mm *mm, uint64_t lo, uint64_t hi);
void vma_tree_clear(struct smm_mm *mm);
void vma_tree_destroy(struct smm_mm *mm);
void vma_tree_check(struct smm_mm *mm); /* debug builds */
/*
 * vma_tree_find_gap - placement: the highest (@topdown) or lowest address
 * a with low <= a, a + @len <= high and [a, a + len) free, where a VMA
 * begins at vm_start_gap() (its stack guard gap counts as taken). O(log n)
 * through the gaps each node records. Needs mmap_lock held for write (the
 * gaps are the writer's; lockless lookups do not see them). False if no
 * gap fits.
 */
bool vma_tree_find_gap(struct smm_mm *mm, uint64_t len, uint64_t low,
		       uint64_t high, bool topdown, uint64_t *addr);

#endif
