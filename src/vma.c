/*
 * vma.c - VMAs: allocation, the address-sorted list writers use, and the
 * RCU-published sorted array that lookups binary-search (O(log n)).
 * Also the rules that decide whether two VMAs may merge.
 *
 * Locking: the list and every VMA field change only under mmap_lock held
 * for write. The array is rebuilt by the writer and published with one
 * pointer store; the old array and removed VMAs are freed after an RCU
 * grace period, so a lockless reader never sees freed memory. Readers of
 * vm_start/vm_end outside mmap_lock use READ_ONCE and must recheck.
 */
#include <errno.h>
#include <string.h>
#include "mm.h"
#include "cpu.h"

struct vm_area_struct *vma_alloc(struct smm_mm *mm)
{
	struct vm_area_struct *vma = pool_zalloc(mm->pool, sizeof(*vma));

	if (vma)
		vma->vm_mm = mm;
	return vma;
}

void vma_free(struct vm_area_struct *vma)
{
	free(vma);
}

static void vma_free_cb(struct rcu_head *head)
{
	free(container_of(head, struct vm_area_struct, rcu));
}

void vma_free_rcu(struct vm_area_struct *vma)
{
	urcu_memb_call_rcu(&vma->rcu, vma_free_cb);
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
	if (vma->vm_prev)
		vma->vm_prev->vm_next = vma->vm_next;
	else
		mm->vma_head = vma->vm_next;
	if (vma->vm_next)
		vma->vm_next->vm_prev = vma->vm_prev;
	mm->nr_vmas--;
}

/* ---- the published array ---- */

/*
 * Allocate an array for the list as it will be after the caller's change,
 * which may add up to @extra VMAs. Done before any change, so that a
 * failed allocation leaves everything as it was.
 */
struct vma_array *vma_tree_prepare(struct smm_mm *mm, size_t extra)
{
	size_t n = mm->nr_vmas + extra;
	struct vma_array *arr;

	if (should_fail_alloc(mm->pool))
		return NULL;
	arr = malloc(sizeof(*arr) + n * sizeof(arr->v[0]));
	if (arr)
		arr->nr = n;
	return arr;
}

static void vma_array_free_cb(struct rcu_head *head)
{
	free(container_of(head, struct vma_array, rcu));
}

/* Fill @arr from the list and publish it; the old array goes after a
 * grace period. */
void vma_tree_publish(struct smm_mm *mm, struct vma_array *arr)
{
	struct vma_array *old = mm->vma_tree;
	size_t i = 0;

	mmap_assert_write_locked(mm);
	for (struct vm_area_struct *v = mm->vma_head; v; v = v->vm_next) {
		BUG_ON(i >= arr->nr);
		arr->v[i++] = v;
	}
	arr->nr = i;
	rcu_assign_pointer(mm->vma_tree, arr);
	if (old)
		urcu_memb_call_rcu(&old->rcu, vma_array_free_cb);
}

void vma_tree_free_now(struct smm_mm *mm)
{
	free(mm->vma_tree);
	mm->vma_tree = NULL;
}

/* First VMA in @arr with vm_end > addr, or its index == nr. */
static size_t array_search(struct vma_array *arr, uint64_t addr)
{
	size_t lo = 0, hi = arr->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (READ_ONCE(arr->v[mid]->vm_end) <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Linux's find_vma(): the first VMA ending above @addr, or NULL. */
struct vm_area_struct *find_vma(struct smm_mm *mm, uint64_t addr)
{
	struct vma_array *arr = mm->vma_tree;
	size_t i;

	mmap_assert_locked(mm);
	if (!arr)
		return NULL;
	i = array_search(arr, addr);
	return i < arr->nr ? arr->v[i] : NULL;
}

struct vm_area_struct *find_vma_prev(struct smm_mm *mm, uint64_t addr,
				     struct vm_area_struct **prev)
{
	struct vma_array *arr = mm->vma_tree;
	size_t i;

	mmap_assert_locked(mm);
	*prev = NULL;
	if (!arr)
		return NULL;
	i = array_search(arr, addr);
	if (i > 0)
		*prev = arr->v[i - 1];
	return i < arr->nr ? arr->v[i] : NULL;
}

/* The VMA containing @addr, or NULL. */
struct vm_area_struct *vma_lookup(struct smm_mm *mm, uint64_t addr)
{
	struct vm_area_struct *vma = find_vma(mm, addr);

	return vma && vma->vm_start <= addr ? vma : NULL;
}

/*
 * Lookup under the RCU read lock, without mmap_lock: the VMA returned was
 * in the tree at some point during the search and is not freed before the
 * caller's rcu_read_unlock(); its bounds may change under the caller, who
 * must lock and recheck them.
 */
struct vm_area_struct *lockless_vma_lookup(struct smm_mm *mm, uint64_t addr)
{
	struct vma_array *arr = rcu_dereference(mm->vma_tree);
	struct vm_area_struct *vma;
	size_t i;

	if (!arr)
		return NULL;
	i = array_search(arr, addr);
	if (i == arr->nr)
		return NULL;
	vma = arr->v[i];
	return READ_ONCE(vma->vm_start) <= addr ? vma : NULL;
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
