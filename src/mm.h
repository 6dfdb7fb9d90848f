/*
 * mm.h - struct smm_mm (the mm_struct) and struct vm_area_struct, and the
 * internal interfaces between the mm files (vma.c, mmap.c, madvise.c,
 * fault.c, zap.c, mm.c).
 *
 * Locking: mmap_lock (a writer-preferring rwlock) protects the VMA list and
 * VMA fields; the VMA tree (vma_tree.c) is published with rcu_assign_pointer
 * for lockless lookup. page_table_lock protects PGD and PUD entries. Counters are atomics.
 */
#ifndef SMM_MM_H
#define SMM_MM_H

#include "pgtable.h"

/* vm_flags: Linux's bits, for the ones that decide merging. */
#define VM_READ		0x00000001UL
#define VM_WRITE	0x00000002UL
#define VM_EXEC		0x00000004UL
#define VM_SHARED	0x00000008UL
#define VM_MAYREAD	0x00000010UL
#define VM_MAYWRITE	0x00000020UL
#define VM_MAYEXEC	0x00000040UL
#define VM_ACCOUNT	0x00100000UL
#define VM_NORESERVE	0x00200000UL
#define VM_ACCESS_FLAGS	(VM_READ | VM_WRITE | VM_EXEC)

struct vm_area_struct {
	uint64_t vm_start, vm_end;	/* mmap_lock; READ_ONCE for RCU readers */
	unsigned long vm_flags;
	uint64_t vm_pgoff;
	/*
	 * Identity of the anon_vma: 0 until the first anonymous page is
	 * faulted in (anon_vma_prepare, under page_table_lock). It decides
	 * merging exactly as Linux's anon_vma pointer does.
	 */
	uint64_t anon_vma;
	struct smm_mm *vm_mm;
	struct vm_area_struct *vm_prev, *vm_next;	/* mmap_lock */
	/*
	 * The per-VMA lock (Linux 6.4+): vm_lock counts readers, -1 while a
	 * writer is marking the VMA. The VMA is write-locked while
	 * vm_lock_seq equals mm->mm_lock_seq; mmap_write_unlock() bumps
	 * mm_lock_seq and so releases every VMA write lock at once.
	 */
	atomic_int vm_lock;
	unsigned long vm_lock_seq;
	bool detached;		/* removed from the tree (write-locked) */
	struct rcu_head rcu;
};

struct vma_node;	/* vma_tree.c */

/* mm->ctr[] words */
enum { MC_RSS, MC_ZERO, MC_FAULTS, MC_FAULTS_VMA, MC_FAULTS_MMAP };

struct smm_mm {
	struct smm_pool *pool;
	pthread_rwlock_t mmap_lock;
	spinlock_t page_table_lock;
	pteval_t *pgd;
	pfn_t pgd_pfn;
	int scheme;
	uint64_t mmap_base;

	struct vm_area_struct *vma_head;	/* sorted list, mmap_lock */
	struct vma_node *vma_root;		/* RCU-published treap */
	struct vma_node *tree_reserve;		/* mmap_lock */
	size_t tree_reserve_nr;
	uint32_t tree_seed;
	uint64_t nr_vmas;
	struct vm_area_struct *vma_cache;	/* spares, mmap_lock */
	int vma_cache_nr;
	uint64_t anon_vma_seq;			/* page_table_lock */

	unsigned int flags;	/* SMM_MM_* */
	atomic_ulong mm_lock_seq;	/* see vm_area_struct.vm_lock */
	atomic_ulong tlb_gen;	/* bumped by every TLB shootdown */
	atomic_int nr_cpus;	/* CPUs switched to this mm */
	atomic_int refs;	/* the creator + each CPU switched to it */
	bool dead;		/* destroyed; mmap_lock */

	atomic_long tlb_flushes;
	/* MC_*: updated on every fault, so striped by CPU */
	struct stripe ctr[NR_STRIPES];
	atomic_long pins_acquired, pins_released;	/* gup.c */
	atomic_long pt_reclaimed;	/* tables freed by the scheme */
	atomic_long nr_puds, nr_pmds, nr_ptes;	/* page tables per level */
};

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
static inline void mmap_write_lock(struct smm_mm *mm)
{
	lockdep_acquire(&mm->mmap_lock, LC_MMAP, false);
	pthread_rwlock_wrlock(&mm->mmap_lock);
}
static inline void mmap_write_unlock(struct smm_mm *mm)
{
	/* Release every VMA write lock taken under this mmap_lock. */
	atomic_fetch_add_explicit(&mm->mm_lock_seq, 1, memory_order_release);
	pthread_rwlock_unlock(&mm->mmap_lock);
	lockdep_release(&mm->mmap_lock);
}
#define mmap_assert_locked(mm) lockdep_assert_held(&(mm)->mmap_lock)
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
	} while (!atomic_compare_exchange_weak_explicit(&vma->vm_lock, &c, c + 1,
							memory_order_acquire,
							memory_order_relaxed));
	/*
	 * A writer may have marked the VMA between the first check and our
	 * increment: its mark is ordered before its release of vm_lock,
	 * which our acquire saw, so this recheck catches it.
	 */
	if (unlikely(READ_ONCE(vma->vm_lock_seq) ==
		     atomic_load_explicit(&mm->mm_lock_seq, memory_order_acquire))) {
		atomic_fetch_sub_explicit(&vma->vm_lock, 1, memory_order_release);
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
#define assert_fault_locked(mm) \
	BUG_ON(!lockdep_is_held(&(mm)->mmap_lock, 0) && !lockdep_holds_class(LC_VMA))
#else
#define assert_fault_locked(mm) do { } while (0)
#endif

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
/* mmu_gather.c */
#define GATHER_BATCH 512
struct mmu_gather {
	struct smm_mm *mm;
	bool need_flush;	/* entries cleared or downgraded */
	bool freed_tables;
	int nr_pages;
	pfn_t pages[GATHER_BATCH];
	int nr_tables;
	pfn_t *tables;		/* grows; freed through RCU at the end */
	int tables_cap;
};
void tlb_gather_mmu(struct mmu_gather *tlb, struct smm_mm *mm);
/* Queue a page to put after the flush; true when the batch is full and
 * the caller must tlb_flush_mmu() before queueing more. */
bool tlb_remove_page(struct mmu_gather *tlb, pfn_t pfn);
void tlb_remove_table(struct mmu_gather *tlb, pfn_t pfn);
void tlb_flush_mmu(struct mmu_gather *tlb);
void tlb_finish_mmu(struct mmu_gather *tlb);
void free_table_now(struct smm_pool *pool, pfn_t pfn);

/* zap.c */
/* @why: enum zap_reason (pt_scheme.h) */
void zap_page_range(struct mmu_gather *tlb, struct vm_area_struct *vma,
		    uint64_t start, uint64_t end, int why);
void unmap_region(struct smm_mm *mm, struct vm_area_struct *first,
		  struct vm_area_struct *last, uint64_t floor, uint64_t ceiling,
		  int why);
void madvise_free_range(struct mmu_gather *tlb, struct vm_area_struct *vma,
			uint64_t start, uint64_t end);
void pageout_range(struct mmu_gather *tlb, struct vm_area_struct *vma,
		   uint64_t start, uint64_t end);
int change_protection(struct mmu_gather *tlb, struct vm_area_struct *vma,
		      uint64_t start, uint64_t end, unsigned long newflags);

/* fault.c */
#define FAULT_WRITE 0x1
#define FAULT_VMA_LOCK 0x2	/* only the VMA lock is held */
/* Handle a fault at @addr: 0 (retry the access), -EFAULT, -ENOMEM. */
int handle_mm_fault_locked(struct smm_mm *mm, struct vm_area_struct *vma,
			   uint64_t addr, unsigned int flags);
int handle_mm_fault(struct smm_mm *mm, uint64_t addr, unsigned int flags);
/* Read-lock the VMA covering @addr without mmap_lock, or NULL (gup.c). */
struct vm_area_struct *lock_vma_under_rcu(struct smm_mm *mm, uint64_t addr);
/* Fault in [start, end) of one VMA as GUP would (populate). */
int populate_vma_range(struct smm_mm *mm, struct vm_area_struct *vma,
		       uint64_t start, uint64_t end, bool write);
bool vma_access_ok(struct vm_area_struct *vma, bool write);

/* mm.c */
void mm_put(struct smm_mm *mm);
pteval_t vm_page_prot(unsigned long vm_flags);

#endif
