/*
 * mmap_lock.h - the locks of an address space's VMAs: mmap_lock (a
 * writer-preferring rwlock around the VMA list and every VMA field, which
 * a writer may downgrade to a read hold) and the
 * per-VMA locks of Linux 6.4 (readers trylock, writers mark under mmap_lock
 * held for write), with the assertions debug builds run. The rules are in
 * docs/LOCKING.md, "Per-VMA locks".
 */
#ifndef SMM_MMAP_LOCK_H
#define SMM_MMAP_LOCK_H

#include "mm_types.h"

/* mmap_lock, with the lockdep checks of debug builds. */
static inline void mmap_read_lock(struct smm_mm *mm)
{
	lockdep_acquire(&mm->mmap_lock, LC_MMAP, true);
	pthread_rwlock_rdlock(&mm->mmap_lock);
}
/* A trylock may be taken out of order: it cannot deadlock. */
static inline bool mmap_read_trylock(struct smm_mm *mm)
{
	if (pthread_rwlock_tryrdlock(&mm->mmap_lock))
		return false;
	lockdep_acquire_trylock(&mm->mmap_lock, LC_MMAP, true);
	return true;
}
static inline void mmap_read_unlock(struct smm_mm *mm)
{
	pthread_rwlock_unlock(&mm->mmap_lock);
	lockdep_release(&mm->mmap_lock);
}
/*
 * The write side is the gate mutex, then the rwlock: pthread_rwlock cannot
 * turn a write hold into a read hold, so mmap_write_downgrade() unlocks
 * the rwlock and read-locks it again while it still holds the gate, which
 * keeps every other writer out of that window (only the gate's holder
 * ever waits on the rwlock for write). Readers never touch the gate.
 */
static inline void mmap_write_lock(struct smm_mm *mm)
{
	lockdep_acquire(&mm->mmap_lock, LC_MMAP, false);
	pthread_mutex_lock(&mm->mmap_write_gate);
	pthread_rwlock_wrlock(&mm->mmap_lock);
}
/* A new address space's lock, taken while another mm's is held (fork):
 * nobody else knows the new one, so the trylock cannot fail. */
static inline void mmap_write_lock_new(struct smm_mm *mm)
{
	BUG_ON(pthread_mutex_trylock(&mm->mmap_write_gate));
	BUG_ON(pthread_rwlock_trywrlock(&mm->mmap_lock));
	lockdep_acquire_trylock(&mm->mmap_lock, LC_MMAP, false);
}
/* Release every VMA write lock taken under this mmap_lock. */
static inline void vma_end_write_all(struct smm_mm *mm)
{
	/* Every VMA removed was unpublished by a tree update (vma.c). */
	VM_BUG_ON(mm->vma_removed);
	atomic_fetch_add_explicit(&mm->mm_lock_seq, 1, memory_order_release);
}
static inline void mmap_write_unlock(struct smm_mm *mm)
{
	vma_end_write_all(mm);
	pthread_rwlock_unlock(&mm->mmap_lock);
	pthread_mutex_unlock(&mm->mmap_write_gate);
	lockdep_release(&mm->mmap_lock);
}
/*
 * mmap_write_downgrade - turn the caller's write hold of mmap_lock into a
 * read hold, with no writer in between, and release every VMA write lock
 * (as Linux's, which munmap calls before its zap). Readers (faults that
 * fell back to mmap_lock, GUP, mincore) get in at once; VMA readers too,
 * so everything the caller changed must be published by then (the tree
 * updated, removed VMAs detached). Ends with mmap_read_unlock().
 */
static inline void mmap_write_downgrade(struct smm_mm *mm)
{
	lockdep_assert_held_write(&mm->mmap_lock);
	vma_end_write_all(mm);
	pthread_rwlock_unlock(&mm->mmap_lock);
	pthread_rwlock_rdlock(&mm->mmap_lock);
	pthread_mutex_unlock(&mm->mmap_write_gate);
	lockdep_downgrade(&mm->mmap_lock);
}
#define mmap_assert_locked(mm)	     lockdep_assert_held(&(mm)->mmap_lock)
#define mmap_assert_write_locked(mm) lockdep_assert_held_write(&(mm)->mmap_lock)

/*
 * vma_start_read - try to read-lock @vma without waiting: fails if a
 * writer has it marked, or is marking it. Pairs with vma_start_write().
 */
static inline bool vma_start_read(struct vm_area_struct *vma)
{
	struct smm_mm *mm = vma->vm_mm;
	int c;

	if (READ_ONCE(vma->vm_lock_seq) ==
	    atomic_load_explicit(&mm->mm_lock_seq, memory_order_acquire))
		return false;
	c = atomic_load_explicit(&vma->vm_lock, memory_order_relaxed);
	do {
		if (c < 0)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(
		&vma->vm_lock, &c, c + 1, memory_order_acquire,
		memory_order_relaxed));
	/*
	 * A writer may have marked the VMA between the first check and our
	 * increment: its mark is ordered before its release of vm_lock,
	 * which our acquire saw, so this recheck catches it.
	 */
	if (unlikely(READ_ONCE(vma->vm_lock_seq) ==
		     atomic_load_explicit(&mm->mm_lock_seq,
					  memory_order_acquire))) {
		atomic_fetch_sub_explicit(&vma->vm_lock, 1,
					  memory_order_release);
		return false;
	}
	lockdep_acquire(vma, LC_VMA, true);
	return true;
}

static inline void vma_end_read(struct vm_area_struct *vma)
{
	lockdep_release(vma);
	atomic_fetch_sub_explicit(&vma->vm_lock, 1, memory_order_release);
}

/*
 * vma_start_write - mark @vma write-locked until mmap_write_unlock():
 * waits for its readers to drain; new readers fail their trylock and fall
 * back to mmap_lock, which they cannot get while we hold it.
 */
void vma_start_write(struct vm_area_struct *vma);
/* A VMA born write-locked (not yet visible to lockless lookup). */
static inline void vma_init_locked(struct vm_area_struct *vma)
{
	vma->vm_lock_seq = atomic_load(&vma->vm_mm->mm_lock_seq);
}
#define vma_assert_write_locked(vma) \
	VM_BUG_ON((vma)->vm_lock_seq != atomic_load(&(vma)->vm_mm->mm_lock_seq))

/* Walkers that install entries need mmap_lock or a VMA lock. */
#ifdef SMM_DEBUG
bool lockdep_holds_class(int cls);
#define assert_fault_locked(mm)                         \
	BUG_ON(!lockdep_is_held(&(mm)->mmap_lock, 0) && \
	       !lockdep_holds_class(LC_VMA) &&          \
	       !lockdep_holds_class(LC_I_MMAP))
#else
#define assert_fault_locked(mm) \
	do {                    \
	} while (0)
#endif

#endif
