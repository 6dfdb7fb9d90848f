/*
 * vma.c - VMAs: allocation and RCU freeing, the address-sorted list that
 * writers walk, and the rules that decide whether two VMAs may merge. The
 * tree that lookups search is in vma_tree.c.
 *
 * Locking: the list and every VMA field change only under mmap_lock held
 * for write. Removed VMAs are freed after an RCU grace period, so a
 * lockless reader never sees freed memory. Readers of vm_start/vm_end
 * outside mmap_lock use READ_ONCE and must recheck.
 */
#include <errno.h>
#include <string.h>
#include "mm.h"

struct vm_area_struct *vma_alloc(struct smm_mm *mm)
{
	struct vm_area_struct *vma = mm->vma_cache;

	/*
	 * Writers preallocate the VMAs they may need and give back the ones
	 * they did not use: keep those (never published, so reusable at once)
	 * instead of a malloc and free per mmap. A VMA is larger than a cache
	 * line, so two VMAs' vm_lock never share one.
	 */
	mmap_assert_write_locked(mm);
	/* A spare counts as an allocation for fault injection, so tests
	 * reach every failure path whether or not spares exist. */
	if (vma && should_fail_alloc(mm->pool))
		return NULL;
	if (vma) {
		mm->vma_cache = vma->vm_next;
		mm->vma_cache_nr--;
		memset(vma, 0, sizeof(*vma));
	} else {
		vma = pool_zalloc(mm->pool, sizeof(*vma));
	}
	if (vma) {
		vma->vm_mm = mm;
		vma_init_locked(vma);
	}
	return vma;
}

void vma_free(struct vm_area_struct *vma)
{
	struct smm_mm *mm = vma->vm_mm;

	if (mm->vma_cache_nr < 8) {
		vma->vm_next = mm->vma_cache;
		mm->vma_cache = vma;
		mm->vma_cache_nr++;
		return;
	}
	free(vma);
}

void vma_cache_drain(struct smm_mm *mm)
{
	while (mm->vma_cache) {
		struct vm_area_struct *v = mm->vma_cache;

		mm->vma_cache = v->vm_next;
		free(v);
	}
	mm->vma_cache_nr = 0;
}

static void vma_free_cb(struct rcu_head *head)
{
	free(container_of(head, struct vm_area_struct, rcu));
}

void vma_free_rcu(struct vm_area_struct *vma)
{
	urcu_memb_call_rcu(&vma->rcu, vma_free_cb);
}

void vma_start_write(struct vm_area_struct *vma)
{
	struct smm_mm *mm = vma->vm_mm;
	unsigned long seq = atomic_load(&mm->mm_lock_seq);
	unsigned int spins = 0;
	int zero = 0;

	mmap_assert_write_locked(mm);
	if (vma->vm_lock_seq == seq)
		return;
	while (!atomic_compare_exchange_weak_explicit(&vma->vm_lock, &zero, -1,
						      memory_order_acquire,
						      memory_order_relaxed)) {
		zero = 0;
		if (++spins < 64)
			cpu_relax();
		else
			sched_yield();
	}
	WRITE_ONCE(vma->vm_lock_seq, seq);
	atomic_store_explicit(&vma->vm_lock, 0, memory_order_release);
	race_point();
}

/* ---- the list (mmap_lock) ---- */

void vma_link_after(struct smm_mm *mm, struct vm_area_struct *prev,
		    struct vm_area_struct *vma)
{
	struct vm_area_struct *next = prev ? prev->vm_next : mm->vma_head;

	mmap_assert_write_locked(mm);
	vma->vm_prev = prev;
	vma->vm_next = next;
	if (prev)
		prev->vm_next = vma;
	else
		mm->vma_head = vma;
	if (next)
		next->vm_prev = vma;
	mm->nr_vmas++;
}

void vma_unlink(struct smm_mm *mm, struct vm_area_struct *vma)
{
	mmap_assert_write_locked(mm);
	vma_assert_write_locked(vma);
	vma->detached = true;
	if (vma->vm_prev)
		vma->vm_prev->vm_next = vma->vm_next;
	else
		mm->vma_head = vma->vm_next;
	if (vma->vm_next)
		vma->vm_next->vm_prev = vma->vm_prev;
	mm->nr_vmas--;
}

/* ---- merging ---- */

/*
 * Linux merges anonymous VMAs whose anon_vmas are the same, or when one
 * side has none yet (it will take the other's). Without fork, that is the
 * whole rule (is_mergeable_anon_vma()).
 */
bool anon_vma_compatible(uint64_t a, uint64_t b)
{
	return !a || !b || a == b;
}

bool vma_flags_mergeable(unsigned long a, unsigned long b)
{
	return a == b;
}
