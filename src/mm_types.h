/*
 * mm_types.h - the types of the mm: the address space (struct smm_mm, the
 * mm_struct), the VMA (struct vm_area_struct) and its flags, and the
 * page-table entry type. Declarations only; which lock protects each field
 * is said at the field and in docs/LOCKING.md.
 */
#ifndef SMM_MM_TYPES_H
#define SMM_MM_TYPES_H

#include "frame.h"
#include "interval_tree.h"
#include "uffd.h"

/* A page-table entry of any level, x86-64 format (pgtable.h). */
typedef uint64_t pteval_t;

/* vm_flags: Linux's bits, for the ones that decide merging. */
#define VM_READ	       0x00000001UL
#define VM_WRITE       0x00000002UL
#define VM_EXEC	       0x00000004UL
#define VM_SHARED      0x00000008UL
#define VM_MAYREAD     0x00000010UL
#define VM_MAYWRITE    0x00000020UL
#define VM_MAYEXEC     0x00000040UL
#define VM_MAYSHARE    0x00000080UL
#define VM_GROWSDOWN   0x00000100UL
#define VM_LOCKED      0x00002000UL
#define VM_SEQ_READ    0x00008000UL
#define VM_RAND_READ   0x00010000UL
#define VM_DONTCOPY    0x00020000UL
#define VM_LOCKONFAULT 0x00080000UL
#define VM_ACCOUNT     0x00100000UL
#define VM_NORESERVE   0x00200000UL
#define VM_WIPEONFORK  0x02000000UL
#define VM_DONTDUMP    0x04000000UL
#define VM_HUGEPAGE    0x20000000UL
#define VM_NOHUGEPAGE  0x40000000UL
#define VM_MERGEABLE   0x80000000UL
#define VM_LOCKED_MASK (VM_LOCKED | VM_LOCKONFAULT)
/* What smm_mm_vmas() reports (the SMM_VM_* bits of softmm.h). */
#define VM_INFO_FLAGS                                                       \
	(VM_SHARED | VM_MAYSHARE | VM_GROWSDOWN | VM_LOCKED | VM_SEQ_READ | \
	 VM_RAND_READ | VM_DONTCOPY | VM_LOCKONFAULT | VM_ACCOUNT |         \
	 VM_NORESERVE | VM_WIPEONFORK | VM_DONTDUMP | VM_HUGEPAGE |         \
	 VM_NOHUGEPAGE | VM_MERGEABLE | VM_UFFD_FLAGS)
#define VM_ACCESS_FLAGS (VM_READ | VM_WRITE | VM_EXEC)

struct vm_area_struct {
	uint64_t vm_start, vm_end; /* mmap_lock; READ_ONCE for RCU readers */
	unsigned long vm_flags;	   /* mmap_lock */
	uint64_t vm_pgoff;	   /* mmap_lock */
	/*
	 * The anon_vma (rmap.h): NULL until the first anonymous page is
	 * faulted in (anon_vma_prepare, under page_table_lock); the VMA
	 * holds a reference. It decides merging exactly as Linux's does.
	 */
	struct anon_vma *anon_vma;
	/* What faults on it do (fault.h); NULL: anonymous memory. */
	const struct vm_operations_struct *vm_ops;
	/*
	 * The file mapped (filemap.h), with a reference; NULL for private
	 * anonymous memory. Set when the VMA is made, never changed. A file
	 * VMA is in the file's i_mmap tree through @shared, keyed by the page
	 * offsets it maps: its vm_start, vm_end and vm_pgoff change only
	 * under mmap_lock held for write AND the file's i_mmap_lock held
	 * for write (vma.c), so that the reverse map sees them stable.
	 */
	struct smm_file *vm_file;
	struct itree_node shared;
	struct smm_mm *vm_mm;
	struct vm_area_struct *vm_prev, *vm_next; /* mmap_lock */
	/*
	 * The per-VMA lock (Linux 6.4+, mmap_lock.h): vm_lock counts
	 * readers, -1 while a writer is marking the VMA. The VMA is
	 * write-locked while vm_lock_seq equals mm->mm_lock_seq;
	 * mmap_write_unlock() bumps mm_lock_seq and so releases every VMA
	 * write lock at once.
	 */
	atomic_int vm_lock;
	unsigned long vm_lock_seq;
	bool detached; /* removed from the tree (write-locked) */
	/* On mm->vma_removed until the tree no longer publishes it. */
	struct vm_area_struct *vm_removed_next;
	struct rcu_head rcu;
};

struct vma_node;	     /* vma_tree.c */
struct anon_vma;	     /* rmap.h */
struct vm_operations_struct; /* fault.h */
struct pt_scheme_ops;	     /* pt_scheme.h */

/* mm->ctr[] words */
enum {
	MC_RSS,
	MC_ZERO,
	MC_FAULTS,
	MC_FAULTS_VMA,
	MC_FAULTS_MMAP,
	MC_FILE /* page-cache pages mapped */
};

/*
 * mm->pt_flags: what the walkers must do for the mm's scheme, read off its
 * ops once at creation (pt_scheme_flags(), pagewalk.h), so that a walk
 * tests one word of the mm it already has in cache instead of loading the
 * ops.
 */
#define PTF_WALK_RCU	 0x01 /* ops->walk_rcu */
#define PTF_LOCKLESS	 0x02 /* ops->lockless_begin or lockless_end */
#define PTF_PTE_MAP	 0x04 /* ops->pte_map or pte_unmap */
#define PTF_MAP_RCU	 0x08 /* ops->map_rcu */
#define PTF_REFCOUNT	 0x10 /* ops->pte_refcount */
#define PTF_INSTALL_MAPS 0x20 /* ops->install_maps */
#define PTF_KEEPS_LINKED 0x40 /* ops->keeps_linked */

struct smm_mm {
	struct smm_pool *pool;
	pthread_rwlock_t mmap_lock;
	/* Held by the writer with mmap_lock: mmap_write_downgrade(). */
	pthread_mutex_t mmap_write_gate;
	spinlock_t page_table_lock; /* PGD and PUD entries; vma->anon_vma */
	pteval_t *pgd;
	pfn_t pgd_pfn;
	int scheme; /* enum smm_scheme, fixed at creation */
	const struct pt_scheme_ops *pt_ops; /* that scheme's ops ... */
	unsigned int pt_flags; /* ... and their shape, PTF_* below */
	uint64_t mmap_base;

	/* The sorted list, mmap_lock: its first and last VMA (the list
	 * functions of vma.c keep both), so that neither end is a walk. */
	struct vm_area_struct *vma_head, *vma_tail;
	struct vma_node *vma_root;     /* RCU-published treap */
	struct vma_node *tree_reserve; /* mmap_lock */
	size_t tree_reserve_nr;
	uint32_t tree_seed;
	uint64_t tree_check_skipped; /* debug: updates since a full check */
	uint64_t nr_vmas;
	struct vm_area_struct *vma_cache; /* spares, mmap_lock */
	/* Unlinked from the list, maybe still in the published tree: handed
	 * to RCU by the next vma_tree_update() (mmap_lock for write). */
	struct vm_area_struct *vma_removed;
	int vma_cache_nr;

	unsigned int flags;	  /* SMM_MM_* */
	atomic_ulong mm_lock_seq; /* see vm_area_struct.vm_lock */
	atomic_ulong tlb_gen;	  /* bumped by every TLB shootdown */
	atomic_int nr_cpus;	  /* CPUs switched to this mm */
	bool dead;		  /* destroyed; mmap_lock */
	uint64_t locked_vm;	  /* pages in VM_LOCKED VMAs; mmap_lock */
	struct smm_mm *live_next; /* mm.c's registry of live address spaces */

	/*
	 * Reverse-map walkers (rmap.c) change entries without mmap_lock:
	 * rmap_active counts those at work on this mm; while
	 * rmap_verifying is set, smm_mm_verify() walks and new ones wait.
	 */
	atomic_int rmap_active;
	atomic_int rmap_verifying;
	/*
	 * Gathers that cleared a writable entry of a page-cache page and have
	 * not flushed yet: a CPU may still store through the old translation,
	 * so page_mkclean() must flush this mm even where it finds no entry
	 * (Linux flushes such zaps before it drops the ptl; here a flush may
	 * not run under a ptl). Raised under the ptl, before the entry goes.
	 */
	atomic_int zap_file_pending;

	/*
	 * Odd while fork copies this mm's page tables (Linux's
	 * write_protect_seq): GUP-fast may not pin then, and a pin taken
	 * across a change of it is dropped again (gup.c).
	 */
	atomic_ulong write_protect_seq;

	atomic_long tlb_flushes;
	/* MC_*: updated on every fault, so striped by CPU */
	struct stripe ctr[NR_STRIPES];
	atomic_long pins_acquired, pins_released; /* gup.c */
	atomic_long pt_reclaimed;	       /* tables freed by the scheme */
	atomic_long nr_puds, nr_pmds, nr_ptes; /* page tables per level */
	struct uffd_ctx uffd; /* userfaultfd (uffd.h): its own lock */
	/*
	 * The creator + each CPU switched to it + pins + each blocked
	 * smm_uffd_read(): on a line of its own, away from the fields every
	 * fault reads (flags, mm_lock_seq, dead), which a userfaultfd
	 * handler thread taking a reference per event would otherwise
	 * take from the faulting CPU each time.
	 */
	atomic_int refs __attribute__((aligned(64)));
};

#endif
