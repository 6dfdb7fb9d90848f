/*
 * vma.c - VMAs: allocation and RCU freeing, the per-VMA write lock, the
 * address-sorted list that writers walk, and splitting and merging (the
 * one API of mmap, munmap, mprotect and madvise, with the one rule that
 * decides whether two VMAs may merge). The tree that lookups search is in
 * vma_tree.c.
 *
 * Locking: the list and every VMA field change only under mmap_lock held
 * for write. Removed VMAs are freed after an RCU grace period, so a
 * lockless reader never sees freed memory. Readers of vm_start/vm_end
 * outside mmap_lock use READ_ONCE and must recheck.
 */
#include <errno.h>
#include <string.h>
#include "mm.h"
#include "rmap.h"
#include "filemap.h"

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

	if (vma->anon_vma) {
		anon_vma_put(vma->anon_vma);
		vma->anon_vma = NULL;
	}
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
		struct vm_area_struct *v = mm->vma_cache; /* no anon_vma */

		mm->vma_cache = v->vm_next;
		free(v);
	}
	mm->vma_cache_nr = 0;
}

static void vma_free_cb(struct rcu_head *head)
{
	struct vm_area_struct *vma =
		container_of(head, struct vm_area_struct, rcu);

	tsan_acquire(vma);
	if (vma->anon_vma)
		anon_vma_put(vma->anon_vma);
	free(vma);
}

void vma_free_rcu(struct vm_area_struct *vma)
{
	tsan_release(vma);
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
	else
		mm->vma_tail = vma;
	mm->nr_vmas++;
}

void vma_detach_range(struct smm_mm *mm, struct vm_area_struct *first,
		      struct vm_area_struct *last)
{
	struct vm_area_struct *prev = first->vm_prev, *next = last->vm_next;

	mmap_assert_write_locked(mm);
	for (struct vm_area_struct *v = first;; v = v->vm_next) {
		/* Waits out faults under this VMA's lock; later ones fail. */
		vma_start_write(v);
		v->detached = true;
		mm->nr_vmas--;
		if (v == last)
			break;
	}
	if (prev)
		prev->vm_next = next;
	else
		mm->vma_head = next;
	if (next)
		next->vm_prev = prev;
	else
		mm->vma_tail = prev;
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
	else
		mm->vma_tail = vma->vm_prev;
	mm->nr_vmas--;
}

/* ---- split, remove, merge: the one API of mmap, mprotect and madvise ---- */

void vma_prealloc_free(struct vma_prealloc *pa)
{
	while (pa->nr)
		vma_free(pa->v[--pa->nr]);
}

int vma_prealloc(struct smm_mm *mm, struct vma_prealloc *pa, int n, size_t m,
		 int updates)
{
	BUG_ON(n > (int)ARRAY_SIZE(pa->v));
	pa->nr = 0;
	for (int i = 0; i < n; i++) {
		pa->v[i] = vma_alloc(mm);
		if (!pa->v[i])
			goto fail;
		pa->nr++;
	}
	if (!vma_tree_reserve(mm, m, updates))
		return 0;
fail:
	vma_prealloc_free(pa);
	return -ENOMEM;
}

static struct vm_area_struct *prealloc_take(struct vma_prealloc *pa)
{
	BUG_ON(!pa->nr);
	return pa->v[--pa->nr];
}

struct vm_area_struct *vma_find_list(struct smm_mm *mm, uint64_t addr)
{
	struct vm_area_struct *v = find_vma(mm, addr);

	/*
	 * The tree may be stale mid-operation; step along the list. Only the
	 * VMAs the operation changed can be out of place, so the steps are
	 * few. No VMA in the tree ends above @addr: any that does is at the
	 * end of the list, so step back from its tail.
	 */
	if (!v)
		v = mm->vma_tail;
	while (v && v->vm_prev && v->vm_prev->vm_end > addr)
		v = v->vm_prev;
	while (v && v->vm_end <= addr)
		v = v->vm_next;
	return v;
}

void vma_split(struct smm_mm *mm, struct vm_area_struct *vma, uint64_t addr,
	       struct vma_prealloc *pa)
{
	struct vm_area_struct *new = prealloc_take(pa);
	struct smm_file *f = vma->vm_file;

	VM_BUG_ON(addr <= vma->vm_start || addr >= vma->vm_end);
	vma_start_write(vma);
	if (f) {
		i_mmap_lock_write(f);
		i_mmap_remove(vma);
		get_file(f);
	}
	new->vm_file = f;
	new->vm_start = addr;
	new->vm_end = vma->vm_end;
	new->vm_flags = vma->vm_flags;
	new->vm_pgoff = vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT);
	new->anon_vma = vma->anon_vma;
	if (new->anon_vma)
		anon_vma_get(new->anon_vma);
	new->vm_ops = vma->vm_ops;
	WRITE_ONCE(vma->vm_end, addr);
	vma_link_after(mm, vma, new);
	if (f) {
		i_mmap_insert(vma);
		i_mmap_insert(new);
		i_mmap_unlock_write(f);
	}
}

void vma_tree_update(struct smm_mm *mm, uint64_t lo, uint64_t hi)
{
	struct vm_area_struct *v;

	vma_tree_rebuild(mm, lo, hi);
	while (mm->vma_removed) {
		v = mm->vma_removed;
		mm->vma_removed = v->vm_removed_next;
		vma_free_rcu(v);
	}
}

/*
 * A lockless lookup may find @vma in the published tree until the
 * writer's vma_tree_update() publishes a version without it; only a grace
 * period that begins after that may free it. So it waits on
 * mm->vma_removed, and vma_tree_update() hands it to RCU.
 */
void vma_remove(struct smm_mm *mm, struct vm_area_struct *vma)
{
	vma_start_write(vma);
	/* Merged away: the VMA it merged into holds the file too, and the
	 * caller took it out of i_mmap. */
	if (vma->vm_file)
		fput(vma->vm_file);
	vma_unlink(mm, vma);
	vma->vm_removed_next = mm->vma_removed;
	mm->vma_removed = vma;
}

/*
 * Linux's is_mergeable_anon_vma(), 6.16+: can @tgt, a neighbour, merge
 * with a range whose anon_vma is @anon, from the VMA @src (NULL for a new
 * range)? The same anon_vma merges; one side without merges unless the
 * side that has one came through fork.
 */
static bool anon_vma_compatible(const struct vm_area_struct *tgt,
				struct anon_vma *anon,
				const struct vm_area_struct *src)
{
	if (!tgt->anon_vma && anon)
		return !vma_had_uncowed_parents(src);
	if (tgt->anon_vma && !anon)
		return !vma_had_uncowed_parents(tgt);
	return tgt->anon_vma == anon;
}

/* A VMA that merges takes on @av, the anon_vma of the merged range: it
 * had none, or the same one (the merge rule made sure). */
static void vma_set_anon_vma(struct vm_area_struct *vma, struct anon_vma *av)
{
	if (vma->anon_vma == av)
		return;
	VM_BUG_ON(vma->anon_vma);
	anon_vma_get(av);
	vma->anon_vma = av;
}

/*
 * The one merge rule, for a range [start, end) with @flags, @ops, file
 * @file from page offset @pgoff and anon_vma @anon (NULL for a new range)
 * of the VMA @src (NULL for a new range) between @prev and @next (either NULL when it cannot be a candidate): can
 * the range join @prev (*@left), @next (*@right)? A side must touch the
 * range, have the same flags, vm_ops and file, continue its page offsets
 * and have a compatible anon_vma; joining both also needs the two sides
 * compatible with each other (Linux's vma_merge_new_range() and
 * vma_merge_existing_range() share these checks).
 */
static void
vma_merge_decide(struct vm_area_struct *prev, struct vm_area_struct *next,
		 uint64_t start, uint64_t end, unsigned long flags,
		 const struct vm_operations_struct *ops, struct smm_file *file,
		 uint64_t pgoff, struct anon_vma *anon,
		 const struct vm_area_struct *src, bool *left, bool *right)
{
	*left = prev && prev->vm_end == start && prev->vm_flags == flags &&
		prev->vm_ops == ops && prev->vm_file == file &&
		prev->vm_pgoff + ((start - prev->vm_start) >> PAGE_SHIFT) ==
			pgoff &&
		anon_vma_compatible(prev, anon, src);
	*right = next && next->vm_start == end && next->vm_flags == flags &&
		 next->vm_ops == ops && next->vm_file == file &&
		 next->vm_pgoff == pgoff + ((end - start) >> PAGE_SHIFT) &&
		 anon_vma_compatible(next, anon, src) &&
		 (!*left || !prev->anon_vma || !next->anon_vma ||
		  prev->anon_vma == next->anon_vma);
	if (*left)
		vma_start_write(prev);
	if (*right)
		vma_start_write(next);
}

/* A file VMA's range is about to change: out of i_mmap meanwhile. */
static void i_mmap_out(struct vm_area_struct *vma)
{
	if (vma && vma->vm_file)
		i_mmap_remove(vma);
}

static void i_mmap_in(struct vm_area_struct *vma)
{
	if (vma && vma->vm_file)
		i_mmap_insert(vma);
}

struct vm_area_struct *
vma_merge_new_range(struct smm_mm *mm, uint64_t start, uint64_t end,
		    unsigned long flags, struct smm_file *file, uint64_t pgoff,
		    struct anon_vma *anon, const struct vm_area_struct *src,
		    struct vma_prealloc *pa)
{
	struct vm_area_struct *next = vma_find_list(mm, start);
	struct vm_area_struct *prev = next ? next->vm_prev : NULL;
	const struct vm_operations_struct *ops = file ? &file_vm_ops : NULL;
	struct vm_area_struct *vma;
	bool left, right;

	mmap_assert_write_locked(mm);
	if (!next)
		prev = mm->vma_tail;
	VM_BUG_ON(next && next->vm_start < end);
	vma_merge_decide(prev, next, start, end, flags, ops, file, pgoff, anon,
			 src, &left, &right);
	if (file)
		i_mmap_lock_write(file);
	if (left && right) {
		i_mmap_out(prev);
		i_mmap_out(next);
		WRITE_ONCE(prev->vm_end, next->vm_end);
		if (!prev->anon_vma && (next->anon_vma || anon))
			vma_set_anon_vma(prev, next->anon_vma ? next->anon_vma :
								anon);
		vma_remove(mm, next);
		vma = prev;
	} else if (left) {
		BUG_ON(!prev); /* for the compiler: left needs prev */
		i_mmap_out(prev);
		WRITE_ONCE(prev->vm_end, end);
		if (anon)
			vma_set_anon_vma(prev, anon);
		vma = prev;
	} else if (right) {
		BUG_ON(!next);
		i_mmap_out(next);
		WRITE_ONCE(next->vm_start, start);
		next->vm_pgoff = pgoff;
		if (anon)
			vma_set_anon_vma(next, anon);
		vma = next;
	} else {
		vma = prealloc_take(pa);
		vma->vm_start = start;
		vma->vm_end = end;
		vma->vm_flags = flags;
		vma->vm_pgoff = pgoff;
		vma->vm_ops = ops;
		vma->vm_file = file;
		if (file)
			get_file(file);
		if (anon) {
			anon_vma_get(anon);
			vma->anon_vma = anon;
		}
		vma_link_after(mm, prev, vma);
	}
	i_mmap_in(vma);
	if (file)
		i_mmap_unlock_write(file);
	return vma;
}

struct vm_area_struct *
vma_modify_flags(struct smm_mm *mm, struct vm_area_struct *prev,
		 struct vm_area_struct *vma, uint64_t start, uint64_t end,
		 unsigned long flags, struct vma_prealloc *pa)
{
	struct vm_area_struct *next = vma->vm_next, *tgt;
	struct anon_vma *anon;
	bool left, right;

	mmap_assert_write_locked(mm);
	VM_BUG_ON(start < vma->vm_start || end > vma->vm_end || start >= end);
	vma_start_write(vma);
	vma_merge_decide(start == vma->vm_start && prev != vma ? prev : NULL,
			 end == vma->vm_end ? next : NULL, start, end, flags,
			 vma->vm_ops, vma->vm_file,
			 vma->vm_pgoff +
				 ((start - vma->vm_start) >> PAGE_SHIFT),
			 vma->anon_vma, vma, &left, &right);
	if (left || right) {
		struct smm_file *f = vma->vm_file;
		bool vma_gone = (left && right) ||
				(left && end == vma->vm_end) ||
				(right && start == vma->vm_start);

		if (f) {
			i_mmap_lock_write(f);
			i_mmap_out(left ? prev : NULL);
			i_mmap_out(vma);
			i_mmap_out(right ? next : NULL);
		}
		/* Merged pages keep their entries; only the ranges change. */
		anon = left && prev->anon_vma ? prev->anon_vma :
		       vma->anon_vma	      ? vma->anon_vma :
		       right		      ? next->anon_vma :
						NULL;
		tgt = left ? prev : next;
		/* Before @vma may go: its reference may be the only one. */
		if (anon)
			vma_set_anon_vma(tgt, anon);
		if (left && right) {
			WRITE_ONCE(prev->vm_end, next->vm_end);
			vma_remove(mm, vma);
			vma_remove(mm, next);
		} else if (left) {
			WRITE_ONCE(prev->vm_end, end);
			if (end == vma->vm_end) {
				vma_remove(mm, vma);
			} else {
				WRITE_ONCE(vma->vm_start, end);
				vma->vm_pgoff += (end - start) >> PAGE_SHIFT;
			}
		} else {
			WRITE_ONCE(next->vm_start, start);
			next->vm_pgoff =
				vma->vm_pgoff +
				((start - vma->vm_start) >> PAGE_SHIFT);
			if (start == vma->vm_start)
				vma_remove(mm, vma);
			else
				WRITE_ONCE(vma->vm_end, start);
		}
		if (f) {
			/* The survivors back in, with their new ranges. */
			i_mmap_in(left ? prev : NULL);
			i_mmap_in(vma_gone ? NULL : vma);
			i_mmap_in(right && !left ? next : NULL);
			i_mmap_unlock_write(f);
		}
		return tgt;
	}
	/* Linux's split_vma() checks the count at each split: the second
	 * can fail after the first is done, which then stays. */
	if (start > vma->vm_start) {
		if (mm->nr_vmas >= DEFAULT_MAX_MAP_COUNT)
			return NULL;
		vma_split(mm, vma, start, pa);
		vma = vma->vm_next;
	}
	if (end < vma->vm_end) {
		if (mm->nr_vmas >= DEFAULT_MAX_MAP_COUNT)
			return NULL;
		vma_split(mm, vma, end, pa);
	}
	vma->vm_flags = flags;
	return vma;
}

int vma_modify_range(struct smm_mm *mm, uint64_t start, uint64_t end,
		     bool holes_ok, const struct vma_range_ops *ops, void *arg)
{
	struct vm_area_struct *vma, *prev, *v;
	struct vma_prealloc pa;
	uint64_t nstart, tmp;
	size_t m = 0;
	int err = 0;

	mmap_assert_write_locked(mm);
	vma = vma_find_list(mm, start);
	if (!vma || (!holes_ok && vma->vm_start > start))
		return -ENOMEM;
	for (v = vma; v && v->vm_start < end; v = v->vm_next)
		m++;
	if (vma_prealloc(mm, &pa, 2, m + 2, 1))
		return ops->split_errno;
	prev = start > vma->vm_start ? vma : vma->vm_prev;
	nstart = start;
	while (nstart < end) {
		unsigned long oldflags, newflags;

		if (!vma) {
			err = -ENOMEM;
			break;
		}
		if (vma->vm_start > nstart) {
			/* A hole: mlock stops, madvise skips it. */
			err = -ENOMEM;
			if (!holes_ok)
				break;
			nstart = vma->vm_start;
			if (nstart >= end)
				break;
			prev = vma->vm_prev;
		}
		if (ops->check) {
			int e = ops->check(vma, arg);

			if (e) {
				err = e;
				break;
			}
		}
		tmp = MIN(vma->vm_end, end);
		oldflags = vma->vm_flags;
		newflags = ops->new_flags(vma, arg);
		if (newflags != oldflags) {
			struct vm_area_struct *nv = vma_modify_flags(
				mm, prev, vma, nstart, tmp, newflags, &pa);

			if (!nv) {
				err = ops->split_errno;
				break;
			}
			if (ops->changed)
				ops->changed(nv, nstart, tmp, oldflags, arg);
			vma = nv;
		}
		/* A merge with the next VMA covers more: it has the flags. */
		prev = vma;
		nstart = MIN(vma->vm_end, end);
		vma = vma->vm_next;
	}
	vma_tree_update(mm, start, end + 1);
	vma_prealloc_free(&pa);
	return err;
}
