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
	struct rcu_head rcu;
};

struct vma_node;	/* vma_tree.c */

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
	uint64_t anon_vma_seq;			/* page_table_lock */

	atomic_ulong tlb_gen;	/* bumped by every TLB shootdown */
	atomic_int nr_cpus;	/* CPUs switched to this mm */
	atomic_int refs;	/* the creator + each CPU switched to it */
	bool dead;		/* destroyed; mmap_lock */

	atomic_long rss_anon, zero_ptes, faults, tlb_flushes;
	atomic_long nr_puds, nr_pmds, nr_ptes;	/* page tables per level */
};

/* mmap_lock, with the lockdep checks of debug builds. */
static inline void mmap_read_lock(struct smm_mm *mm)
{
	lockdep_acquire(&mm->mmap_lock, LC_MMAP, true);
	pthread_rwlock_rdlock(&mm->mmap_lock);
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
	pthread_rwlock_unlock(&mm->mmap_lock);
	lockdep_release(&mm->mmap_lock);
}
#define mmap_assert_locked(mm) lockdep_assert_held(&(mm)->mmap_lock)
#define mmap_assert_write_locked(mm) lockdep_assert_held_write(&(mm)->mmap_lock)

/* vma.c */
struct vm_area_struct *vma_alloc(struct smm_mm *mm);
void vma_free(struct vm_area_struct *vma);	/* never published */
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
void zap_page_range(struct mmu_gather *tlb, struct vm_area_struct *vma,
		    uint64_t start, uint64_t end);
void unmap_region(struct smm_mm *mm, struct vm_area_struct *first,
		  struct vm_area_struct *last, uint64_t floor, uint64_t ceiling);
void madvise_free_range(struct mmu_gather *tlb, struct vm_area_struct *vma,
			uint64_t start, uint64_t end);
int change_protection(struct mmu_gather *tlb, struct vm_area_struct *vma,
		      uint64_t start, uint64_t end, unsigned long newflags);

/* fault.c */
#define FAULT_WRITE 0x1
/* Handle a fault at @addr: 0 (retry the access), -EFAULT, -ENOMEM. */
int handle_mm_fault_locked(struct smm_mm *mm, struct vm_area_struct *vma,
			   uint64_t addr, unsigned int flags);
int handle_mm_fault(struct smm_mm *mm, uint64_t addr, unsigned int flags);
/* Fault in [start, end) of one VMA as GUP would (populate). */
int populate_vma_range(struct smm_mm *mm, struct vm_area_struct *vma,
		       uint64_t start, uint64_t end, bool write);
bool vma_access_ok(struct vm_area_struct *vma, bool write);

/* mm.c */
void mm_put(struct smm_mm *mm);
pteval_t vm_page_prot(unsigned long vm_flags);

#endif
