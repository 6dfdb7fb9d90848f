/*
 * softmm.h - the public API of libsoftmm: Linux-style virtual memory
 * management in user space.
 *
 * A frame pool is the "physical memory". Address spaces (mm) built on a pool
 * have VMAs and x86-64 four-level page tables whose pages come from the same
 * pool. A thread becomes a CPU by attaching to the pool; a CPU switches to an
 * address space and reads and writes it through its software TLB, a lockless
 * page-table walk and, when that fails, a page fault.
 *
 * Conventions, for every function below unless it says otherwise:
 *  - errors are negative errno values, the ones Linux returns for the same
 *    arguments; a call that fails leaves the address space as it was;
 *  - addresses are user virtual addresses below SMM_TASK_SIZE;
 *  - functions may be called from any thread; the first call from a thread
 *    registers it with liburcu (memb flavour) for as long as it lives.
 *
 * What softmm checks, and what is the caller's duty:
 *  - checked, with an errno: NULL pools, address spaces, CPUs and buffers
 *    (-EINVAL for an object, -EFAULT for a data buffer; functions returning
 *    a pointer set errno and return NULL); a CPU used from a thread that is
 *    not its own (-EINVAL); a CPU switched to an address space of another
 *    pool (-EXDEV); a CPU detached twice (-EINVAL); a pool destroyed twice
 *    (-EINVAL); calls on an address space that smm_mm_destroy() tore down
 *    while CPUs or pins still hold it (-ESRCH);
 *  - checked, with one line on stderr naming the rule, then abort():
 *    smm_mm_destroy() of an address space not live (destroyed twice);
 *    a page handle that is not a page of any live pool; unpinning a page
 *    that holds no pin;
 *  - the caller's duty, not checked: any other use of an object after it
 *    was destroyed or freed (an address space after its destroy returned
 *    and its CPUs switched away, a page after its last reference or pin was
 *    dropped); accesses from a CPU while another thread destroys its
 *    address space (smm_mm_destroy() says what may run meanwhile).
 * A thread that exits while attached as a CPU is detached at its exit.
 */
#ifndef SOFTMM_H
#define SOFTMM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SMM_API __attribute__((visibility("default")))
#else
#define SMM_API
#endif

#define SMM_PAGE_SHIFT 12
#define SMM_PAGE_SIZE  (1UL << SMM_PAGE_SHIFT)
/* Top of the user address space, as on x86-64 with 4-level paging. */
#define SMM_TASK_SIZE 0x7ffffffff000ULL

/* Protection bits for smm_mmap() and smm_mprotect(): Linux's values. */
#define SMM_PROT_NONE  0x0
#define SMM_PROT_READ  0x1
#define SMM_PROT_WRITE 0x2
#define SMM_PROT_EXEC  0x4

/* Flags for smm_mmap(): Linux's values. Unknown flags are ignored, as Linux
 * ignores them without MAP_SHARED_VALIDATE. */
#define SMM_MAP_SHARED		0x01
#define SMM_MAP_PRIVATE		0x02
#define SMM_MAP_FIXED		0x10
#define SMM_MAP_ANONYMOUS	0x20
#define SMM_MAP_GROWSDOWN	0x0100 /* a stack: faults below it grow it */
#define SMM_MAP_LOCKED		0x2000 /* mlock() the new mapping */
#define SMM_MAP_NORESERVE	0x4000
#define SMM_MAP_POPULATE	0x8000
#define SMM_MAP_STACK		0x20000 /* a thread stack: VM_NOHUGEPAGE */
#define SMM_MAP_FIXED_NOREPLACE 0x100000

/* Advice for smm_madvise(): Linux's values. */
#define SMM_MADV_NORMAL		 0
#define SMM_MADV_RANDOM		 1
#define SMM_MADV_SEQUENTIAL	 2
#define SMM_MADV_WILLNEED	 3
#define SMM_MADV_DONTNEED	 4
#define SMM_MADV_FREE		 8
#define SMM_MADV_REMOVE		 9
#define SMM_MADV_DONTFORK	 10
#define SMM_MADV_DOFORK		 11
#define SMM_MADV_MERGEABLE	 12
#define SMM_MADV_UNMERGEABLE	 13
#define SMM_MADV_HUGEPAGE	 14
#define SMM_MADV_NOHUGEPAGE	 15
#define SMM_MADV_DONTDUMP	 16
#define SMM_MADV_DODUMP		 17
#define SMM_MADV_WIPEONFORK	 18
#define SMM_MADV_KEEPONFORK	 19
#define SMM_MADV_COLD		 20
#define SMM_MADV_PAGEOUT	 21
#define SMM_MADV_POPULATE_READ	 22
#define SMM_MADV_POPULATE_WRITE	 23
#define SMM_MADV_DONTNEED_LOCKED 24

/* Flags for smm_msync(): Linux's values. */
#define SMM_MS_ASYNC	  1
#define SMM_MS_INVALIDATE 2
#define SMM_MS_SYNC	  4

/* Flags for smm_mlock2(): Linux's value. */
#define SMM_MLOCK_ONFAULT 0x01

/* RLIMIT_MEMLOCK of every address space: Linux's default, 8 MiB. */
#define SMM_MLOCK_LIMIT (8ULL << 20)
/* RLIMIT_STACK of every address space, Linux's default: a VM_GROWSDOWN
 * mapping does not grow past 8 MiB. */
#define SMM_STACK_LIMIT (8ULL << 20)

/* ------------------------------------------------------------------ */
/* Frame pool                                                          */
/* ------------------------------------------------------------------ */

struct smm_pool;

/* Pool flags. */
#define SMM_POOL_POISON \
	0x1 /* fill freed frames with a poison pattern and
			     * check it when they are handed out again */

/*
 * smm_pool_create - reserve @bytes of host memory (MAP_NORESERVE, rounded
 * down to whole 4 KiB frames; 0 means 1 GiB) as the frame pool. One frame is
 * the shared zero page and is never handed out. Returns NULL with errno set
 * (EINVAL for a size under 16 frames or an unknown flag, ENOMEM if the host
 * refuses the mapping).
 */
SMM_API struct smm_pool *smm_pool_create(size_t bytes, unsigned int flags);

/*
 * smm_pool_destroy - release the pool's host memory. Every address space
 * built on it must have been destroyed and every CPU detached; otherwise it
 * returns -EBUSY and does nothing. -EINVAL: @pool is NULL or not a live
 * pool (destroyed already).
 */
SMM_API int smm_pool_destroy(struct smm_pool *pool);

struct smm_pool_stats {
	uint64_t frames;     /* frames in the pool, the zero page included */
	uint64_t free;	     /* frames free, per-CPU caches included */
	uint64_t anon_pages; /* frames holding anonymous pages */
	uint64_t pt_pages;   /* frames holding page tables (all four levels) */
	uint64_t pins_acquired; /* GUP pins taken (zero page excluded) ... */
	uint64_t pins_released; /* ... and released: equal when none is held */
	uint64_t file_pages;	/* frames in page caches (files and shared
				 * anonymous memory) */
};

/*
 * smm_pool_stats - a snapshot of the pool's counters. Exact when no
 * operation runs concurrently; always frames == 1 + free + anon_pages +
 * pt_pages + file_pages once every deferred (RCU) free has run (smm_mm_destroy() waits
 * for them). Returns 0, or -EINVAL for a NULL argument.
 */
SMM_API int smm_pool_stats(struct smm_pool *pool, struct smm_pool_stats *st);

/*
 * smm_pool_inject_failure - testing hook: make the @nth allocation from now
 * on (frames, and the metadata of address spaces on this pool) fail, as if
 * memory had run out; the ones after it succeed again. 0 disables. Used by
 * tests to prove that every failed operation leaves the state intact.
 */
SMM_API void smm_pool_inject_failure(struct smm_pool *pool, unsigned long nth);

/* Orders for smm_pool_set_mthp(): blocks of 2^order pages. */
#define SMM_MTHP_16K (1U << 2)
#define SMM_MTHP_32K (1U << 3)
#define SMM_MTHP_64K (1U << 4)

/*
 * smm_pool_set_mthp - multi-size THP for anonymous memory (Linux 6.8's
 * mTHP with hugepages-<size>kB/enabled = always) in every address space
 * of @pool, from the next fault on. @orders is an OR of SMM_MTHP_16K,
 * SMM_MTHP_32K and SMM_MTHP_64K; 0, the default, turns it off. The
 * guarantee: a write fault in private anonymous memory maps at once the
 * largest enabled block of pages, naturally aligned, around the faulting
 * address whose whole range lies inside the VMA and whose page-table
 * entries are all none; failing that (or when the pool cannot supply
 * the pages of the block) the next smaller enabled size, and at last the
 * one page, as Linux falls back; only a failure of that last page is an
 * error (-ENOMEM), and then nothing is mapped. A VMA advised
 * MADV_NOHUGEPAGE (or mapped MAP_STACK) or registered with userfaultfd
 * gets one page per fault, and read faults still map the zero page. Once
 * mapped, a block is that many independent 4 KiB pages, as Linux treats
 * a split folio: the RSS counts each, and munmap, mprotect, madvise,
 * mremap, fork, copy-on-write and GUP handle each on its own. Returns 0,
 * or -EINVAL (a NULL or destroyed @pool, or a bit other than those
 * three).
 */
SMM_API int smm_pool_set_mthp(struct smm_pool *pool, unsigned int orders);

/*
 * smm_debug_race_yield - testing hook: in debug builds (SMM_DEBUG), make
 * every race window that the library marks (between a lockless lookup and
 * its lock, between dropping and retaking a page-table lock, inside a
 * shootdown...) yield the host CPU with probability @permille / 1000, so
 * that torture tests explore more interleavings. Returns 0, or -ENOSYS in
 * release builds, where the windows are not marked.
 */
SMM_API int smm_debug_race_yield(unsigned int permille);

/* ------------------------------------------------------------------ */
/* Address spaces                                                      */
/* ------------------------------------------------------------------ */

struct smm_mm;
struct smm_file;

/* How a PTE table is kept alive while walked and when an empty one is
 * freed (docs/LOCKING.md). */
enum smm_scheme {
	SMM_SCHEME_EAGER = 0,  /* "eager", the default: any zap that empties a
				* PTE table frees it, and empty PMD/PUD tables
				* above it */
	SMM_SCHEME_NONE,       /* "none": Linux before 6.14, only munmap and
				* exit free page tables */
	SMM_SCHEME_PT_RECLAIM, /* "pt-reclaim": Linux 6.14+ (CONFIG_PT_RECLAIM),
				* what the kernel oracle compares against:
				* MADV_DONTNEED of a whole 2 MiB table frees it */
	SMM_SCHEME_REFCOUNT,   /* "refcount": Qi Zheng's 2021 design: each PTE
				* table counts its entries and walkers, and is
				* freed when the count reaches zero */
	SMM_SCHEME_PMD_RWSEM,  /* "pmd-rwsem": Jason Gunthorpe's: a read-write
				* lock per PMD table, read once per walk; empty
				* PTE, PMD and PUD tables freed under its write
				* side */
	SMM_SCHEME_COUNT
};

/* Returns the scheme named @name ("eager", "none", "pt-reclaim",
 * "refcount", "pmd-rwsem"), or -EINVAL. */
SMM_API int smm_scheme_from_name(const char *name);
/* Returns the name of @scheme, or NULL if there is no such scheme. */
SMM_API const char *smm_scheme_name(int scheme);

/* smm_mm_opts.flags */
#define SMM_MM_NO_VMA_LOCK \
	0x1 /* faults take mmap_lock only, as before
				* Linux 6.4 (for comparison) */

struct smm_mm_opts {
	int scheme;	    /* enum smm_scheme */
	uint64_t mmap_base; /* top of top-down placement; 0: 0x7ffff7fff000,
			     * where Linux puts it without randomization */
	unsigned int flags; /* SMM_MM_* */
};

/*
 * smm_mm_create - a new, empty address space on @pool. @opts may be NULL for
 * the defaults. Returns NULL with errno set: EINVAL for an unknown scheme or
 * a mmap_base that is unaligned or above SMM_TASK_SIZE or an unknown flag,
 * or a NULL or destroyed @pool; ENOMEM if memory is short. NULL @opts and a
 * zeroed struct give the same defaults: scheme "eager", mmap_base
 * 0x7ffff7fff000, no flags.
 */
SMM_API struct smm_mm *smm_mm_create(struct smm_pool *pool,
				     const struct smm_mm_opts *opts);

/*
 * smm_mm_destroy - unmap everything, free every page and page table, and
 * wait until deferred frees have run, so that the pool's counters show the
 * memory back. No CPU may be inside an access to @mm. CPUs still switched to
 * @mm keep the structure alive: their accesses fault (-EFAULT) and calls on
 * it return -ESRCH until they switch away; the memory is released by the last
 * of them. Faults waiting for a userfaultfd handler (smm_uffd_register())
 * and readers blocked in smm_uffd_read() are woken and answer -ESRCH.
 * NULL does nothing; destroying an address space twice aborts with a
 * message naming the rule.
 */
SMM_API void smm_mm_destroy(struct smm_mm *mm);

/*
 * smm_fork - Linux's fork(2) for an address space: a new address space on
 * the same pool and scheme with a copy of @mm's VMAs (not those advised
 * MADV_DONTFORK; those advised MADV_WIPEONFORK empty) and its page tables:
 * private anonymous pages are shared read-only and copied on the first
 * write of either side; a page that may be DMA-pinned is copied for the
 * child at once; shared and file mappings stay shared. Returns the child,
 * or NULL with errno set (EINVAL: NULL or destroyed @mm; ENOMEM, and then
 * @mm is untouched).
 */
SMM_API struct smm_mm *smm_fork(struct smm_mm *mm);

/* Flags for smm_mremap(): Linux's values. */
#define SMM_MREMAP_MAYMOVE   1
#define SMM_MREMAP_FIXED     2
#define SMM_MREMAP_DONTUNMAP 4

/*
 * smm_mremap - Linux's mremap(2): shrink [old, old + old_len), grow it in
 * place, or move it (MAYMOVE; FIXED to @new_addr; DONTUNMAP keeps the old
 * range mapped and empty). A move moves page-table entries, not pages: a
 * whole aligned PTE or PMD table moves as one entry. Returns the new
 * address, or -EINVAL, -ENOMEM, -EFAULT, -EAGAIN as Linux gives them; a
 * failed call leaves the source as it was.
 */
SMM_API int64_t smm_mremap(struct smm_mm *mm, uint64_t old_addr,
			   uint64_t old_len, uint64_t new_len, int flags,
			   uint64_t new_addr);

/*
 * smm_mmap - map anonymous memory, Linux's mmap(2) for MAP_PRIVATE |
 * MAP_ANONYMOUS. @addr is a hint unless MAP_FIXED (replace whatever is
 * there) or MAP_FIXED_NOREPLACE (-EEXIST if anything is there) is given;
 * without a usable hint the range is placed top-down below mmap_base.
 * MAP_POPULATE faults the range in (write faults if PROT_WRITE), ignoring
 * failures as Linux does. MAP_GROWSDOWN makes a stack: a fault in the
 * page below grows it (smm_read()/smm_write(): down to the page touched,
 * keeping a guard gap of 256 pages above the next accessible mapping
 * below, the whole stack at most SMM_STACK_LIMIT); GUP and populate do
 * not grow it, as in Linux 6.5+. MAP_STACK marks the mapping
 * VM_NOHUGEPAGE, as Linux 6.18 does, so that it does not merge with an
 * ordinary neighbour. MAP_LOCKED locks it (smm_mlock()) and faults it in,
 * -EAGAIN if that would pass SMM_MLOCK_LIMIT. Unknown protection bits are
 * ignored, as Linux's
 * mmap ignores them. MAP_SHARED | MAP_ANONYMOUS creates a file of its own
 * (smm_file_create() of the length, as Linux's shmem_zero_setup()) and
 * maps it shared at offset 0; a mapping without MAP_ANONYMOUS returns
 * -EBADF (what Linux answers for fd -1: files are mapped with
 * smm_mmap_file()).
 * Returns the start address or a negative errno (-EINVAL: zero length,
 * unaligned fixed address, neither PRIVATE nor SHARED; -ENOMEM: length
 * overflows or no room, or the address space already holds more than
 * max_map_count VMAs, or MAP_FIXED would punch a hole in the middle of a
 * VMA while it holds max_map_count or more; -EEXIST: MAP_FIXED_NOREPLACE
 * over a mapping).
 *
 * max_map_count is Linux's default vm.max_map_count, 65530
 * (DEFAULT_MAX_MAP_COUNT, src/vma.h), checked as Linux 6.18 checks it:
 * mmap fails while the count is above it (merging or not), so 65531 VMAs
 * can exist; a split, by smm_mprotect() or by smm_munmap() of the middle
 * of one VMA, fails while the count is at it or above, with -ENOMEM.
 */
SMM_API int64_t smm_mmap(struct smm_mm *mm, uint64_t addr, uint64_t len,
			 int prot, int flags);

/*
 * smm_munmap - remove mappings in [addr, addr + len), splitting VMAs at the
 * edges, and free the pages and the page tables that no remaining VMA
 * needs (Linux's free_pgtables() floor/ceiling rule). Unmapped parts of the
 * range are fine. When it returns, no CPU can use a removed translation.
 * Returns 0, -EINVAL (unaligned address, zero length, range past
 * SMM_TASK_SIZE), or -ENOMEM (a hole in the middle of one VMA with
 * max_map_count VMAs or more, see smm_mmap()).
 */
SMM_API int smm_munmap(struct smm_mm *mm, uint64_t addr, uint64_t len);

/*
 * smm_mprotect - change the protection of [addr, addr + PAGE_ALIGN(len)),
 * splitting and merging VMAs as Linux does. Page-table entries are updated
 * at once; when it returns, no CPU can use a translation that allowed more
 * than the new protection. As in Linux, a hole in the range stops the walk
 * with -ENOMEM after the VMAs before it were changed. Returns 0 (also for
 * len 0), -EINVAL (unaligned address, unknown protection bits), -ENOMEM
 * (overflow, range not fully mapped, out of memory, or a split with
 * max_map_count VMAs or more: see smm_mmap(); as in Linux, a first split
 * of the range may stay done when the second fails).
 */
SMM_API int smm_mprotect(struct smm_mm *mm, uint64_t addr, uint64_t len,
			 int prot);

/*
 * smm_madvise - Linux's madvise(2) for SMM_MADV_*. DONTNEED zaps the pages
 * (they read back as zeros); FREE lets clean pages be dropped later (their
 * contents stay until then); PAGEOUT reclaims now what can be reclaimed
 * without swap, as Linux does: pages freed with FREE and not written since
 * are dropped (they read back as zeros), other pages stay (pinned pages
 * too); POPULATE_READ/WRITE fault the range in; WILLNEED and COLD do
 * nothing for anonymous memory (WILLNEED reads a file's pages into its
 * page cache); REMOVE punches a hole in the file of a shared writable
 * mapping (the range reads back as zeros; -EINVAL without a file,
 * -EACCES for a private or read-only one); FREE is for anonymous memory
 * only (-EINVAL on a file mapping); PAGEOUT drops no page-cache page (Linux
 * drops clean ones; softmm has no reclaim of files). DONTNEED,
 * FREE, PAGEOUT and COLD refuse a VM_LOCKED VMA (-EINVAL, after the VMAs
 * before it were advised); DONTNEED_LOCKED zaps it too. NORMAL, RANDOM,
 * SEQUENTIAL, DONTFORK, DOFORK, DONTDUMP, DODUMP, HUGEPAGE, NOHUGEPAGE,
 * WIPEONFORK, KEEPONFORK, MERGEABLE and UNMERGEABLE (as with CONFIG_KSM:
 * the flag only, no page is ever merged) set or clear their VM_* flag
 * (smm_vma_info
 * .flags), splitting and merging VMAs as Linux does; -EAGAIN if a split
 * would pass max_map_count or memory is short (what was advised before
 * stays advised, as in Linux). Returns 0, -EINVAL (unaligned
 * address, overflow, unknown advice; and populate on a VMA whose protection
 * forbids the access, as Linux answers), -ENOMEM (part of the range
 * unmapped; the mapped parts were still advised; or out of memory while
 * populating), -EAGAIN.
 */
SMM_API int smm_madvise(struct smm_mm *mm, uint64_t addr, uint64_t len,
			int advice);

/*
 * smm_mlock / smm_mlock2 / smm_munlock - Linux's mlock(2), mlock2(2) and
 * munlock(2): set (clear) VM_LOCKED on the VMAs of [addr & PAGE_MASK,
 * PAGE_ALIGN(addr + len)), splitting and merging them as Linux does, then
 * (mlock without SMM_MLOCK_ONFAULT) fault every page in: write faults where
 * the VMA is writable, reads elsewhere. Locked pages are not dropped by
 * DONTNEED, FREE, PAGEOUT or COLD, which answer -EINVAL on a locked VMA
 * (DONTNEED_LOCKED works). At most SMM_MLOCK_LIMIT bytes may be locked per
 * address space (mmap with SMM_MAP_LOCKED counts too). Returns 0, or
 * -EINVAL (unknown mlock2 flag, a range that wraps), -ENOMEM (range not
 * fully mapped: the VMAs before the hole were changed; the limit would be
 * passed; a page could not be faulted in, as on a PROT_NONE VMA),
 * -EAGAIN (out of memory while populating).
 */
SMM_API int smm_mlock(struct smm_mm *mm, uint64_t addr, uint64_t len);
SMM_API int smm_mlock2(struct smm_mm *mm, uint64_t addr, uint64_t len,
		       unsigned int flags);
SMM_API int smm_munlock(struct smm_mm *mm, uint64_t addr, uint64_t len);

/*
 * smm_mincore - for each page of [addr, addr + len) store 1 in @vec if its
 * page-table entry is present (a zero-page mapping counts), or, in a file
 * mapping, if the file's page is in its page cache, mapped here or not;
 * else 0: what Linux's mincore(2) reports. Returns 0, -EINVAL
 * (unaligned address), -ENOMEM (part of the range unmapped, or the range
 * runs past SMM_TASK_SIZE: a length is checked before it is rounded up, so
 * that it cannot wrap), -EFAULT (@vec NULL for a non-empty range).
 */
SMM_API int smm_mincore(struct smm_mm *mm, uint64_t addr, uint64_t len,
			unsigned char *vec);

/* smm_vma_info.flags: Linux's VM_* bits that softmm models. */
#define SMM_VM_SHARED	    0x00000008UL /* MAP_SHARED: `s` in maps */
#define SMM_VM_MAYSHARE	    0x00000080UL
#define SMM_VM_GROWSDOWN    0x00000100UL
#define SMM_VM_LOCKED	    0x00002000UL
#define SMM_VM_SEQ_READ	    0x00008000UL
#define SMM_VM_RAND_READ    0x00010000UL
#define SMM_VM_DONTCOPY	    0x00020000UL /* MADV_DONTFORK */
#define SMM_VM_LOCKONFAULT  0x00080000UL
#define SMM_VM_ACCOUNT	    0x00100000UL
#define SMM_VM_NORESERVE    0x00200000UL
#define SMM_VM_WIPEONFORK   0x02000000UL
#define SMM_VM_DONTDUMP	    0x04000000UL
#define SMM_VM_HUGEPAGE	    0x20000000UL
#define SMM_VM_NOHUGEPAGE   0x40000000UL
#define SMM_VM_MERGEABLE    0x80000000UL /* MADV_MERGEABLE (KSM) */
#define SMM_VM_UFFD_MISSING 0x00000200UL /* smm_uffd_register() MISSING: um */
#define SMM_VM_UFFD_WP	    0x00001000UL /* smm_uffd_register() WP: uw */

/* One VMA, for smm_mm_vmas(). */
struct smm_vma_info {
	uint64_t start, end;
	int prot;	/* SMM_PROT_* */
	uint64_t flags; /* SMM_VM_* (what /proc/PID/smaps calls VmFlags) */
	uint64_t pgoff; /* file offset of start, in pages (anonymous
			 * private memory: start >> SMM_PAGE_SHIFT) */
	struct smm_file *file; /* the file mapped, NULL for private
				* anonymous memory; shared anonymous memory
				* has a file of its own */
};

/*
 * smm_mm_vmas - copy up to @max VMAs that intersect [start, end), in address
 * order, into @out. Returns how many intersect (which may exceed @max);
 * 0 for a NULL @mm. A NULL @out stores nothing.
 */
SMM_API size_t smm_mm_vmas(struct smm_mm *mm, uint64_t start, uint64_t end,
			   struct smm_vma_info *out, size_t max);

struct smm_mm_stats {
	uint64_t rss_anon;  /* anonymous pages mapped */
	uint64_t zero_ptes; /* entries mapping the shared zero page */
	uint64_t pt_bytes;  /* pud_bytes + pmd_bytes + pte_bytes (VmPTE) */
	uint64_t pud_bytes, pmd_bytes, pte_bytes;
	uint64_t faults;	   /* page faults handled (spurious ones too) */
	uint64_t faults_vma_lock;  /* faults handled under a per-VMA lock */
	uint64_t faults_mmap_lock; /* faults that fell back to mmap_lock */
	uint64_t tlb_flushes;	   /* TLB shootdowns started */
	uint64_t nr_vmas;
	uint64_t pt_reclaimed;	/* page tables the scheme freed on zaps (not
				* by munmap's free_pgtables or teardown) */
	uint64_t pins_acquired; /* GUP pins taken on this mm's pages ... */
	uint64_t pins_released; /* ... and released (also after destroy) */
	/* page-cache pages mapped (files and shared anonymous memory:
	 * Linux's RssFile + RssShmem) */
	uint64_t rss_file;
};

/* smm_mm_stats - a snapshot of @mm's counters. Returns 0, or -EINVAL for a
 * NULL argument. */
SMM_API int smm_mm_stats(struct smm_mm *mm, struct smm_mm_stats *st);

/*
 * smm_mm_verify - check @mm's internal consistency, under its mmap_lock
 * held for write: VMAs sorted, disjoint and equal to the lookup tree; no
 * page-table entry outside a VMA; every mapped page's metadata (an
 * anonymous page: in use, mapcount 1, exclusive, its VMA's anon_vma and
 * index; a page-cache page: its VMA's file and index, mapped, writable
 * only in a shared mapping and, where writeback tracks it, only while
 * dirty); the counters (rss_anon, zero_ptes, rss_file, tables per level)
 * equal to what the tables hold. Truncation and writeback, which change
 * entries without mmap_lock, wait while it walks. Returns 0, or -EUCLEAN after printing the first
 * problems to stderr; -ESRCH on a destroyed mm.
 */
SMM_API int smm_mm_verify(struct smm_mm *mm);

/* ------------------------------------------------------------------ */
/* Files, shared memory and the page cache                             */
/* ------------------------------------------------------------------ */

/*
 * A file of a pool: a page cache (its pages are frames of the pool,
 * smm_pool_stats().file_pages) in front of either a host file or nothing
 * at all (shared anonymous memory, like memfd and shmem). Any number of
 * address spaces of the pool may map it; a store through one mapping is
 * seen at once by loads through the others and by smm_file_pread(). A
 * file lives while the caller's reference (dropped by smm_file_close())
 * or any mapping of it remains.
 */

/*
 * smm_file_open - a file of @pool in front of the host file @fd, which
 * must be a regular file (-ENODEV otherwise, as mmap(2) answers). softmm
 * keeps a duplicate of @fd: the caller may close its own. What mappings
 * may do follows @fd's access mode, as mmap(2)'s checks do: a shared
 * writable mapping needs it open for reading and writing. Pages are read
 * with pread(2) when first needed and written with pwrite(2) by writeback
 * (smm_file_writeback(), smm_msync()); the size is the host file's at
 * open, and changes with smm_file_truncate() and smm_file_pwrite() only.
 * Returns NULL with errno set: EINVAL (NULL or destroyed pool), EBADF
 * (@fd not open), EACCES (@fd open for writing only), ENODEV, ENOMEM.
 */
SMM_API struct smm_file *smm_file_open(struct smm_pool *pool, int fd);

/*
 * smm_file_create - an anonymous file of @size bytes (Linux's memfd or
 * shmem): its pages read as zeros until written and live only in the page
 * cache, never written anywhere. Returns NULL with errno set: EINVAL (NULL
 * or destroyed pool), EFBIG (@size above 2^52), ENOMEM.
 */
SMM_API struct smm_file *smm_file_create(struct smm_pool *pool, uint64_t size);

/*
 * smm_file_close - drop the caller's reference. When no mapping holds the
 * file either, its dirty pages are written back, its page cache returns to
 * the pool (a pinned page is returned at its last unpin) and the duplicate
 * descriptor is closed. Returns 0, -EINVAL (NULL), or the first error
 * writeback met (-EIO and the like; the file is released anyway). Closing
 * a file twice is a use after free, the caller's duty.
 */
SMM_API int smm_file_close(struct smm_file *file);

/* smm_file_size - the file's size in bytes, or -EINVAL for NULL. */
SMM_API int64_t smm_file_size(struct smm_file *file);

/*
 * smm_file_truncate - Linux's ftruncate(2): set the size to @size. Shrinking
 * unmaps every page beyond the new end from every address space that maps
 * the file (private copies too, as Linux's truncate_pagecache() does),
 * frees those pages, zeroes the tail of the new last page, and truncates
 * the host file; accesses beyond the end are then bus errors. Growing maps
 * nothing; the new range reads as zeros. Returns 0, -EINVAL (NULL), -EFBIG
 * (above 2^52), -ENOMEM (the host refused), or the host's errno.
 */
SMM_API int smm_file_truncate(struct smm_file *file, uint64_t size);

/*
 * smm_file_pread / smm_file_pwrite - pread(2) and pwrite(2) through the
 * page cache: coherent with every mapping of the file. pread stops at the
 * end of the file (0 at or past it); pwrite extends the file when it
 * writes past the end, and its pages become dirty (written back later).
 * Return the number of bytes copied, or -EINVAL (NULL file), -EFAULT (NULL
 * buffer with a nonzero length), -EFBIG (an offset past 2^52), -ENOMEM (the
 * pool ran out before anything was copied), -EIO (the host read failed).
 */
SMM_API int64_t smm_file_pread(struct smm_file *file, void *buf, size_t len,
			       uint64_t off);
SMM_API int64_t smm_file_pwrite(struct smm_file *file, const void *buf,
				size_t len, uint64_t off);

/* smm_file_writeback() flags. SMM_WB_SYNC: also wait for writeback that
 * others started, and fdatasync(2) the host file (data integrity). */
#define SMM_WB_SYNC 0x1

/*
 * smm_file_writeback - write the file's dirty pages back to the host file
 * in index order, each as Linux does: write-protect and clean every
 * page-table entry that maps it (page_mkclean, with TLB shootdowns), mark
 * it under writeback, pwrite(2) it, end the writeback. Safe from any
 * thread, concurrently with faults, stores and other writebacks: a page
 * stored to during its writeback is dirty again and written next time.
 * With SMM_WB_SYNC, every byte stored before the call is in the host file
 * when it returns. Anonymous files have nothing to write: 0. Returns 0,
 * -EINVAL (NULL, unknown flag), or the first I/O error (-EIO, -ENOSPC...).
 */
SMM_API int smm_file_writeback(struct smm_file *file, unsigned int flags);

/*
 * smm_mmap_file - Linux's mmap(2) of a file: map @len bytes of @file from
 * byte @offset, MAP_SHARED (stores reach the file, and other mappings) or
 * MAP_PRIVATE (a store copies the page into an anonymous page of this
 * address space; until then the mapping sees the file's changes). Placement
 * and the other flags as smm_mmap(). A read fault maps the page-cache
 * page; a shared writable mapping maps clean pages read-only, so that the
 * first store dirties the page (Linux's writenotify). An access to a page
 * wholly beyond the end of the file is a bus error (smm_read() and
 * smm_write() answer -ENXIO). Returns the address, or -EINVAL (as
 * smm_mmap(), and @offset not page-aligned, MAP_GROWSDOWN), -EBADF (NULL
 * @file), -EACCES (a shared mapping with PROT_WRITE of a file not open for
 * writing), -EOVERFLOW (@offset + @len beyond what a page offset holds),
 * -ENOMEM, -EEXIST, -EAGAIN as smm_mmap(). MAP_ANONYMOUS with a file is
 * -EINVAL (Linux would ignore the descriptor; passing both is a mistake).
 */
SMM_API int64_t smm_mmap_file(struct smm_mm *mm, uint64_t addr, uint64_t len,
			      int prot, int flags, struct smm_file *file,
			      uint64_t offset);

/*
 * smm_msync - Linux's msync(2) on [addr, addr + len): with SMM_MS_SYNC,
 * write back the dirty pages that shared file mappings of the range map
 * (smm_file_writeback(SMM_WB_SYNC) of each file's part), so that the host
 * file holds every byte stored before the call; SMM_MS_ASYNC and
 * SMM_MS_INVALIDATE do nothing more, as in Linux since 2.6.19. Returns 0,
 * -EINVAL (unaligned @addr, unknown flags, ASYNC with SYNC), -ENOMEM (the
 * range wraps, or part of it is not mapped: the mapped parts are still
 * synced; with SMM_MS_ASYNC alone the walk stops at the hole), -EBUSY
 * (INVALIDATE on a VM_LOCKED mapping), or an I/O error.
 */
SMM_API int smm_msync(struct smm_mm *mm, uint64_t addr, uint64_t len,
		      int flags);

/* ------------------------------------------------------------------ */
/* CPUs and user access                                                */
/* ------------------------------------------------------------------ */

struct smm_cpu;

/*
 * smm_cpu_attach - make the calling thread a CPU of @pool, with its own
 * software TLB and frame cache. A thread is at most one CPU. Returns NULL
 * with errno EBUSY if the thread already is one or all SMM_MAX_CPUS are in
 * use, ENOMEM if memory is short.
 */
#define SMM_MAX_CPUS 256
SMM_API struct smm_cpu *smm_cpu_attach(struct smm_pool *pool);

/*
 * smm_cpu_detach - switch away from any address space and stop being a
 * CPU. Returns 0, or -EINVAL (and does nothing) if @cpu is not the calling
 * thread's CPU: NULL, detached already, or another thread's; -EBUSY inside
 * an access section (smm_access_begin()). A thread that exits while
 * attached is detached then, leaving its access section if it was in one.
 */
SMM_API int smm_cpu_detach(struct smm_cpu *cpu);

/*
 * smm_cpu_switch_mm - make @mm (or nothing, if NULL) the address space that
 * @cpu's loads and stores use, flushing its TLB. The CPU holds a reference
 * on @mm until it switches away. Returns 0; -EINVAL if @cpu is not the
 * calling thread's CPU; -EXDEV if @mm is built on another pool than the
 * one @cpu is attached to (a CPU's TLB is flushed by its own pool's
 * shootdowns only); -EBUSY inside an access section.
 */
SMM_API int smm_cpu_switch_mm(struct smm_cpu *cpu, struct smm_mm *mm);

/*
 * smm_read / smm_write - copy @len bytes between @buf and the current
 * address space at @addr, in address order, as user-mode loads and stores:
 * software TLB, then a lockless page-table walk, then a page fault. Returns
 * 0; or -EFAULT (no VMA, or its protection forbids the access: SIGSEGV),
 * -ENXIO (a file mapping's page wholly beyond the end of the file, or its
 * host read failed: SIGBUS) or -ENOMEM (the pool ran out while faulting),
 * or, in a range registered with smm_uffd_register(), -ESRCH (the fault
 * was waiting for its handler when the address space was destroyed) or
 * -ENXIO (the handler callback failed), with *@fault_addr (if not NULL)
 * set to the first byte not copied; bytes before it were copied. -EINVAL if
 * the CPU has no address space or is not the calling thread's; -EFAULT if
 * @buf is NULL and @len is not 0.
 */
SMM_API int smm_read(struct smm_cpu *cpu, uint64_t addr, void *buf, size_t len,
		     uint64_t *fault_addr);
SMM_API int smm_write(struct smm_cpu *cpu, uint64_t addr, const void *buf,
		      size_t len, uint64_t *fault_addr);

/* smm_fill - like smm_write() of @len bytes all equal to @byte. */
SMM_API int smm_fill(struct smm_cpu *cpu, uint64_t addr, int byte, size_t len,
		     uint64_t *fault_addr);

/* ------------------------------------------------------------------ */
/* Access sections: loads and stores through host pointers             */
/* ------------------------------------------------------------------ */

/*
 * An emulator or VMM that executes many guest loads and stores uses host
 * pointers directly, as QEMU's softmmu fast path does with its TLB:
 *
 *	smm_access_begin(cpu);
 *	for (...) {
 *		uint64_t *p = smm_translate(cpu, addr, true);
 *		if (!p) {
 *			int err = smm_access_fault(cpu, addr, true);
 *			if (err)
 *				... -EFAULT: SIGSEGV, -ENXIO: SIGBUS ...
 *			continue;	(pointers taken before are stale)
 *		}
 *		*p = value;
 *	}
 *	smm_access_end(cpu);
 *
 * The section is what keeps the pointers valid: a TLB shootdown of the
 * address space (munmap, mprotect, MADV_DONTNEED, reclaim, a copy on
 * write by another CPU...) waits until every CPU inside a section has
 * left it, and no page or page table the section reached is freed before.
 * So, inside a section:
 *  - a pointer from smm_translate() may be used, for up to the end of its
 *    4 KiB page, until smm_access_end() or smm_access_fault(); a write
 *    pointer only for stores the guest makes (the page is marked dirty);
 *  - the caller must not block: no sleeping lock another thread of the
 *    process may hold while it waits for this CPU, no waiting on another
 *    CPU, no long computation (every munmap of the address space waits);
 *  - the caller must not call softmm, except smm_translate(),
 *    smm_access_fault() and smm_access_end(): everything else may take
 *    mmap_lock or a VMA lock, or wait for a shootdown, and the flusher
 *    holding mmap_lock would wait for this section forever. Debug builds
 *    of the library (SMM_DEBUG) abort on any lock taken, any shootdown
 *    started, any smm_read()/smm_write()/GUP-fast run inside a section.
 * Sections do not nest and belong to the CPU's thread.
 */

/*
 * The layout of a CPU's software TLB, which the inline smm_translate()
 * reads: version SMM_TLB_LAYOUT. A struct smm_cpu starts with a struct
 * smm_tlb_view. Slot i caches the page whose virtual page number
 * (address >> SMM_PAGE_SHIFT) is vpn, i == vpn % SMM_TLB_ENTRIES: loads
 * may use it when vpn_read[i] == vpn, stores when vpn_write[i] == vpn (an
 * empty slot holds SMM_TLB_INVALID, which no page number equals); the
 * byte at address addr of that page is at host address addr + addend[i],
 * as in QEMU's CPUTLBEntry. The three are separate arrays so that a slot
 * is found by scaling its number by 8, which x86-64 and arm64 addressing
 * does for free. A program compiled against another layout is refused by
 * smm_access_begin() (-EPROTO) rather than misread.
 */
#define SMM_TLB_LAYOUT	2
#define SMM_TLB_ENTRIES 256
#define SMM_TLB_INVALID (~(uint64_t)0)
struct smm_tlb_view {
	uint32_t layout; /* SMM_TLB_LAYOUT of the library */
	uint32_t unused;
	uint64_t vpn_read[SMM_TLB_ENTRIES];
	uint64_t vpn_write[SMM_TLB_ENTRIES];
	uintptr_t addend[SMM_TLB_ENTRIES];
};

SMM_API int smm_access_begin_layout(struct smm_cpu *cpu, unsigned int layout);
SMM_API void *smm_translate_slow(struct smm_cpu *cpu, uint64_t addr, int write);

/*
 * smm_access_begin - enter an access section of @cpu on the address space
 * it is switched to (see above). Returns 0; -EINVAL if @cpu is not the
 * calling thread's CPU, has no address space, or is inside a section
 * already; -EPROTO if this header's SMM_TLB_LAYOUT is not the
 * library's. On error no section is entered. (An address space destroyed
 * under a switched CPU has no VMAs left: its accesses fail with -EFAULT,
 * as smm_read()'s do.)
 */
static inline int smm_access_begin(struct smm_cpu *cpu)
{
	return smm_access_begin_layout(cpu, SMM_TLB_LAYOUT);
}

/*
 * smm_access_end - leave @cpu's access section: every pointer it gave is
 * invalid from now on, and shootdowns waiting for it proceed. Returns 0,
 * or -EINVAL (doing nothing) if @cpu is not the calling thread's CPU or
 * not inside a section.
 */
SMM_API int smm_access_end(struct smm_cpu *cpu);

/*
 * smm_translate - inside an access section of @cpu, the host address of
 * the byte at @addr, for a load, or for a store if @write; NULL if the
 * access cannot be made without a page fault (not mapped yet, a copy on
 * write, a write to a clean or read-only page, no VMA, a protection that
 * forbids it, an address past SMM_TASK_SIZE). A TLB hit is the few
 * instructions inlined here; a miss walks the page tables without locks
 * (smm_translate_slow()) and fills the TLB. After NULL, call
 * smm_access_fault(): it faults the page in (or says why it cannot) and
 * the next smm_translate() of @addr succeeds unless the page was taken
 * away again meanwhile. The pointer is valid to the end of its page and
 * of the section; it never spans pages, so an access that crosses a page
 * needs one translation per page.
 */
static inline void *smm_translate(struct smm_cpu *cpu, uint64_t addr, int write)
{
	const struct smm_tlb_view *v = (const struct smm_tlb_view *)cpu;
	uint64_t vpn = addr >> SMM_PAGE_SHIFT;
	unsigned int i = (unsigned int)(vpn % SMM_TLB_ENTRIES);

	if (__builtin_expect((write ? v->vpn_write[i] : v->vpn_read[i]) == vpn,
			     1))
		return (void *)(uintptr_t)(addr + v->addend[i]);
	return smm_translate_slow(cpu, addr, write);
}

/*
 * smm_access_fault - inside an access section, after smm_translate(@addr,
 * @write) returned NULL: leave the section, handle the page fault as a
 * load or store of @addr would (it may sleep: mmap_lock, a VMA lock, the
 * pool, a userfaultfd handler), and enter the section again. Every
 * pointer taken before the call is stale afterwards. Returns 0 (translate
 * again); or the errors of smm_read(): -EFAULT (no VMA, or its protection
 * forbids the access: SIGSEGV), -ENXIO (a file page past the end of the
 * file, a failed host read, a failed userfaultfd callback: SIGBUS),
 * -ENOMEM (the pool ran out), -ESRCH (the address space was destroyed
 * while the fault waited for its userfaultfd handler). In every case the
 * CPU is inside a section again on return;
 * -EINVAL (doing nothing) if @cpu is not the calling thread's CPU or not
 * inside a section.
 */
SMM_API int smm_access_fault(struct smm_cpu *cpu, uint64_t addr, int write);

/* ------------------------------------------------------------------ */
/* GUP: getting and pinning user pages                                 */
/* ------------------------------------------------------------------ */

#include <stdbool.h>

/*
 * A page reached through GUP: an opaque handle on one frame of the pool,
 * valid while the reference or pin taken on it is held. A device doing
 * DMA, or a VMM handing guest memory to a host driver, uses the frame
 * through smm_page_address().
 */
struct smm_page;

/* gup_flags: Linux's FOLL_* values. The pin_* functions imply
 * SMM_FOLL_PIN and the get_* functions SMM_FOLL_GET: passing the implied
 * one is allowed, the other one (or an unknown bit) is -EINVAL. */
#define SMM_FOLL_WRITE \
	0x01		  /* the pages will be written: fault them in
				 * writable (a private copy of the zero page)
				 * and require PROT_WRITE */
#define SMM_FOLL_GET 0x04 /* take a plain reference (get_*) */
#define SMM_FOLL_LONGTERM \
	0x100		     /* a pin held indefinitely (RDMA, VFIO);
				 * pin_* only. Pool memory is never migrated,
				 * so it changes nothing else yet */
#define SMM_FOLL_PIN 0x40000 /* take a pin (pin_*) */

/* What a pin adds to a page's reference count (Linux's
 * GUP_PIN_COUNTING_BIAS). */
#define SMM_GUP_PIN_COUNTING_BIAS 1024

/*
 * smm_get_user_pages_fast / smm_pin_user_pages_fast - take a reference
 * (get) or a pin on each of the @nr_pages pages from @start (rounded down
 * to a page) of the address space @cpu is switched to, storing them in
 * @pages in order. Must run on @cpu's own thread, as Linux's GUP-fast runs
 * on current->mm. First a page-table walk with no lock at all, inside an
 * access section (the analogue of interrupts off: no TLB shootdown and no
 * freeing of a table it can reach completes meanwhile); it takes a
 * reference only on a page whose count is not zero and drops it again if
 * the PMD entry or the PTE changed under it. What it cannot do (an entry
 * not present, a write to a read-only or zero-page entry, an entry that
 * changed) the slow path does for the rest of the range. Returns the
 * number of pages taken: fewer than @nr_pages if the range runs into a
 * hole, a protection that forbids the access (PROT_NONE; without
 * PROT_WRITE for SMM_FOLL_WRITE) or a full pool. If not even the first
 * page could be taken: -EFAULT (hole, protection, range past
 * SMM_TASK_SIZE), -ENOMEM (pool exhausted), -EOVERFLOW (the range wraps
 * around), -EINVAL (bad flags, @pages NULL, @cpu has no address space or
 * is not the calling thread's),
 * -ESRCH (the address space was destroyed). @nr_pages 0 returns 0. Release
 * what get_* took with smm_put_page(), what pin_* took with
 * smm_unpin_user_pages*().
 */
SMM_API long smm_get_user_pages_fast(struct smm_cpu *cpu, uint64_t start,
				     unsigned long nr_pages,
				     unsigned int gup_flags,
				     struct smm_page **pages);
SMM_API long smm_pin_user_pages_fast(struct smm_cpu *cpu, uint64_t start,
				     unsigned long nr_pages,
				     unsigned int gup_flags,
				     struct smm_page **pages);

/*
 * smm_get_user_pages / smm_pin_user_pages - the slow path, on any address
 * space from any thread (remote GUP, Linux's get_user_pages_remote(); the
 * thread need not be a CPU). Under a per-VMA read lock, or mmap_lock for
 * read when that cannot be had, each page is faulted in as a user access
 * would fault it (a write of a zero-page mapping gets a private page
 * first; a write marks the page dirty) and its reference is taken under
 * its PTE table's lock. A read needs PROT_READ on the VMA and a write
 * PROT_WRITE, as Linux's check_vma_flags() demands. A page of a range
 * registered with smm_uffd_register() waits for its handler as a user
 * access does (-ESRCH if the address space is destroyed meanwhile, -ENXIO
 * if the callback fails). Returns as the fast
 * variants do, except that a range past SMM_TASK_SIZE is a hole there.
 */
SMM_API long smm_get_user_pages(struct smm_mm *mm, uint64_t start,
				unsigned long nr_pages, unsigned int gup_flags,
				struct smm_page **pages);
SMM_API long smm_pin_user_pages(struct smm_mm *mm, uint64_t start,
				unsigned long nr_pages, unsigned int gup_flags,
				struct smm_page **pages);

/*
 * smm_unpin_user_pages - release one pin on each of @pages[0..@npages),
 * from any thread. A pinned page's frame is never reused while pinned,
 * even after munmap, MADV_DONTNEED or smm_mm_destroy() removed its
 * mapping: its contents stay readable and writable through
 * smm_page_address(), and the frame returns to the pool at the last
 * unpin. An address space destroyed with pins outstanding keeps its
 * structure (not its mappings) until they are released, so
 * smm_pool_destroy() answers -EBUSY until then. Pins of the shared zero
 * page (read pins of untouched memory) hold nothing and are not counted,
 * as in Linux. Unpinning a page that holds no pin aborts.
 */
SMM_API void smm_unpin_user_pages(struct smm_page **pages,
				  unsigned long npages);

/*
 * smm_unpin_user_pages_dirty_lock - smm_unpin_user_pages(), but if
 * @make_dirty each page is first marked dirty under its page lock, as a
 * driver does after its device wrote the page (Linux's
 * set_page_dirty_lock()), so that the data is not dropped as clean later
 * (MADV_FREE). The zero page is never marked.
 */
SMM_API void smm_unpin_user_pages_dirty_lock(struct smm_page **pages,
					     unsigned long npages,
					     bool make_dirty);

/* smm_put_page - drop a reference taken by smm_get_user_pages*(); the frame
 * returns to the pool with its last reference. */
SMM_API void smm_put_page(struct smm_page *page);

/*
 * smm_page_address - the host address of @page's 4 KiB frame: direct
 * access, the way a device doing DMA sees the memory (no TLB, no
 * protection check, no fault). Valid while a reference or pin is held. The
 * shared zero page must not be written. NULL for a NULL @page.
 */
SMM_API void *smm_page_address(struct smm_page *page);

/*
 * smm_page_maybe_dma_pinned - whether @page may be pinned: its reference
 * count is at least SMM_GUP_PIN_COUNTING_BIAS (Linux's
 * folio_maybe_dma_pinned()). False positives are possible (1024 plain
 * references look like a pin; the zero page always answers true), false
 * negatives never.
 */
SMM_API bool smm_page_maybe_dma_pinned(struct smm_page *page);

/* ------------------------------------------------------------------ */
/* Demand paging: userfaultfd in process                               */
/* ------------------------------------------------------------------ */

/*
 * Linux's userfaultfd(2), for one address space, without a file
 * descriptor: each address space is its own userfaultfd, with the features
 * of a uffd opened with no UFFD_FEATURE_* (so fork and mremap drop
 * registration, below, and a fault's address is rounded down to its page).
 * A registered range raises an event where Linux's would: a fault on a
 * missing page of a MISSING range, a write to a page write-protected by
 * smm_uffd_wp() in a WP range. The faulting thread (an access by
 * smm_read(), smm_write(), smm_fill(), or GUP's slow path) then drops
 * every lock, hands the event to the handler and waits, asleep (unless
 * smm_uffd_set_poll() asked for a bounded poll first), until
 * smm_uffd_copy(), smm_uffd_zeropage(), smm_uffd_wp() or
 * smm_uffd_wake() covers its page, the range is unregistered (the fault is
 * then an ordinary one), or the address space is destroyed (the access
 * fails with -ESRCH); then it faults again. Only private anonymous memory
 * can be registered: Linux also registers shared memory (shmem) and
 * hugetlb, which softmm does not model. Populating a registered page
 * (MADV_POPULATE_*, mlock, the growth of a locked mapping by mremap)
 * raises the same events and waits the same way, with mmap_lock dropped,
 * as Linux's GUP does: the call returns once every page is in. After a
 * wait it looks the range up again: MADV_POPULATE_* answers -ENOMEM if it
 * was unmapped meanwhile and -EINVAL if its protection no longer allows
 * the access; mlock skips what was unmapped, as any hole, and faults by
 * the protection it finds (-ENOMEM at PROT_NONE). -EFAULT (mlock:
 * -ENOMEM) if a callback handler failed, and -ESRCH if the address space
 * was destroyed while it waited. Only
 * mprotect, which populates a locked VMA it makes writable, cannot wait:
 * its registered pages stay missing, as in Linux.
 */

/* smm_uffd_register() modes: Linux's UFFDIO_REGISTER_MODE_* values. */
#define SMM_UFFD_REGISTER_MODE_MISSING 0x1
#define SMM_UFFD_REGISTER_MODE_WP      0x2
/* smm_uffd_copy() modes: UFFDIO_COPY_MODE_*. */
#define SMM_UFFD_COPY_MODE_DONTWAKE 0x1
#define SMM_UFFD_COPY_MODE_WP	    0x2
/* smm_uffd_zeropage() mode: UFFDIO_ZEROPAGE_MODE_DONTWAKE. */
#define SMM_UFFD_ZEROPAGE_MODE_DONTWAKE 0x1
/* smm_uffd_wp() modes: UFFDIO_WRITEPROTECT_MODE_*. */
#define SMM_UFFD_WP_MODE_WP	  0x1
#define SMM_UFFD_WP_MODE_DONTWAKE 0x2

/* struct smm_uffd_msg.event: UFFD_EVENT_PAGEFAULT. */
#define SMM_UFFD_EVENT_PAGEFAULT 0x12
/* struct smm_uffd_msg.flags: UFFD_PAGEFAULT_FLAG_*. */
#define SMM_UFFD_PAGEFAULT_FLAG_WRITE 0x1 /* the access was a store */
#define SMM_UFFD_PAGEFAULT_FLAG_WP    0x2 /* a store to a WP page */

/* One event, as Linux's struct uffd_msg for a page fault. */
struct smm_uffd_msg {
	uint8_t event;	  /* SMM_UFFD_EVENT_PAGEFAULT */
	uint64_t flags;	  /* SMM_UFFD_PAGEFAULT_FLAG_* */
	uint64_t address; /* the faulting page (rounded down to it) */
};

/*
 * smm_uffd_register - Linux's UFFDIO_REGISTER: mark every VMA in [addr,
 * addr + len) registered for @mode (SMM_UFFD_REGISTER_MODE_MISSING and/or
 * _WP), splitting VMAs at the ends of the range and merging as mprotect
 * does (smm_vma_info.flags shows SMM_VM_UFFD_*); holes in the range are
 * fine. A VMA that already has every bit of @mode keeps what it has;
 * another gets exactly @mode. Returns 0, -EINVAL (@mode 0 or unknown,
 * @addr or @len unaligned, @len 0, the range wraps, starts below 4096
 * (vm.mmap_min_addr here) or passes SMM_TASK_SIZE; no VMA in the range; a
 * VMA that is not private anonymous memory, checked before anything
 * changes), -ENOMEM (a split would pass max_map_count, or memory is
 * short: then nothing changed), -ESRCH (destroyed address space).
 */
SMM_API int smm_uffd_register(struct smm_mm *mm, uint64_t addr, uint64_t len,
			      uint64_t mode);

/*
 * smm_uffd_unregister - Linux's UFFDIO_UNREGISTER: clear the registration
 * of every VMA in the range (split and merged again as Linux does), clear
 * the write protection smm_uffd_wp() set there, and wake the faults
 * waiting in the range, which then fault as ordinary ones. Returns 0 (also
 * when nothing was registered), -EINVAL (as smm_uffd_register(), without
 * the @mode checks), -ENOMEM, -ESRCH.
 */
SMM_API int smm_uffd_unregister(struct smm_mm *mm, uint64_t addr, uint64_t len);

/*
 * The handler: called in the faulting thread, with no lock held and
 * outside any access section, for each event; it resolves the fault (with
 * smm_uffd_copy() or another call above; -EEXIST means another thread
 * did) and returns 0, after which the access faults again (and calls the
 * handler again if the page is still missing); a negative return makes
 * the access fail with -ENXIO (a bus error, what Linux gives a fault its
 * userfaultfd cannot serve). It must not access, nor populate (mlock,
 * MADV_POPULATE_*), a registered, missing page of @mm itself: it would
 * wait for itself (debug builds abort).
 */
typedef int (*smm_uffd_handler_t)(struct smm_mm *mm,
				  const struct smm_uffd_msg *msg, void *arg);

/*
 * smm_uffd_set_handler - deliver @mm's events by calling @fn(mm, msg,
 * @arg) in the faulting thread; NULL @fn: queue them for smm_uffd_read()
 * (the default). Faults already waiting stay queued. Returns 0, -EINVAL
 * (NULL @mm), -ESRCH.
 */
SMM_API int smm_uffd_set_handler(struct smm_mm *mm, smm_uffd_handler_t fn,
				 void *arg);

/* The longest poll smm_uffd_set_poll() takes: 1 ms. */
#define SMM_UFFD_POLL_MAX_NS 1000000ULL

/*
 * smm_uffd_set_poll - let a fault whose event went to the queue (no
 * handler set) poll for its wake for up to @ns nanoseconds before it
 * sleeps, as KVM's halt_poll_ns does for a halted vCPU; 0 (the default)
 * sleeps at once, as Linux's faults do. Worth it when a handler thread
 * answers within microseconds and the faulting thread's CPU has nothing
 * else to run: the sleep and wake-up of the faulting thread are then most
 * of a fault's cost on an idle machine (softmm bench's uffd-missing-poll
 * against uffd-missing). Polling burns the CPU for up to @ns per fault
 * that is not answered in time, and a fault that polls still sleeps
 * afterwards and is woken as before. Takes effect for faults queued from
 * then on. Returns 0, -EINVAL (NULL @mm, @ns above SMM_UFFD_POLL_MAX_NS),
 * -ESRCH.
 */
SMM_API int smm_uffd_set_poll(struct smm_mm *mm, uint64_t ns);

/* smm_uffd_read() flags. */
#define SMM_UFFD_NONBLOCK 0x1

/*
 * smm_uffd_read - read(2) on a userfaultfd: take the oldest event not yet
 * read into *@msg (each waiting fault gives one; a fault woken before its
 * event was read gives none). Blocks until there is one, unless
 * SMM_UFFD_NONBLOCK: first polling for up to 50 microseconds (a handler
 * thread serving a burst of faults stays awake), then asleep. The fault
 * stays waiting after its event is read, until a call covers its page. Returns 0, -EAGAIN (nothing to read,
 * NONBLOCK), -EINVAL (NULL argument, unknown flag), -ESRCH (the address
 * space is destroyed: also wakes a blocked reader). As for every call on
 * an address space, the caller keeps @mm alive while it calls: a reader
 * blocked here holds it until it returns, but a call that starts while
 * smm_mm_destroy() drops the last reference uses freed memory. A handler
 * thread is made safe by a CPU switched to @mm until the thread is joined,
 * or by joining it before the destroy. Such a CPU also makes its copies
 * cheaper: smm_uffd_copy() then takes frames from the CPU's own cache
 * instead of the pool's lock, and a reader about to poll first brings
 * the frame its next copy will take into its cache.
 */
SMM_API int smm_uffd_read(struct smm_mm *mm, struct smm_uffd_msg *msg,
			  int flags);

/*
 * smm_uffd_copy - Linux's UFFDIO_COPY: for each page of [dst, dst + len),
 * in order, map a new anonymous page holding the 4 KiB at @src (host
 * memory), as a write fault would map it (writable if the VMA is, dirty);
 * with SMM_UFFD_COPY_MODE_WP read-only and write-protected, as
 * smm_uffd_wp() leaves it. Then, unless SMM_UFFD_COPY_MODE_DONTWAKE, wake
 * the faults waiting on the pages copied. The range must lie in one VMA
 * registered in any mode. *@copied (if not NULL) gets what Linux writes to
 * uffdio_copy.copy: the bytes copied, or the negative errno when not even
 * the first page was; it is left alone for the argument errors (-EINVAL
 * for an unaligned, empty, wrapping range or one outside [4096,
 * SMM_TASK_SIZE), unknown @mode bits). Returns 0 when all was copied;
 * -EAGAIN when a later page failed (the pages before it stay, and are
 * woken); -EEXIST (the first page is mapped already), -ENOENT (no VMA at
 * @dst, or the range is not within one registered VMA), -EINVAL (MODE_WP
 * without WP registration; @src NULL), -ENOMEM (no memory for the first
 * page: nothing changed), -ESRCH.
 */
SMM_API int smm_uffd_copy(struct smm_mm *mm, uint64_t dst, const void *src,
			  uint64_t len, uint64_t mode, int64_t *copied);

/*
 * smm_uffd_zeropage - Linux's UFFDIO_ZEROPAGE: as smm_uffd_copy(), but
 * each page is mapped to the shared zero page (read-only: a store copies
 * it). @mode: SMM_UFFD_ZEROPAGE_MODE_DONTWAKE. Same returns, with
 * *@zeroed for *@copied.
 */
SMM_API int smm_uffd_zeropage(struct smm_mm *mm, uint64_t dst, uint64_t len,
			      uint64_t mode, int64_t *zeroed);

/*
 * smm_uffd_wp - Linux's UFFDIO_WRITEPROTECT: with SMM_UFFD_WP_MODE_WP,
 * write-protect every mapped page of the range (a store raises a WP event;
 * TLBs are shot down before it returns); without it, remove the
 * protection (the pages become writable where the VMA and the page allow
 * it) and, unless SMM_UFFD_WP_MODE_DONTWAKE, wake the faults waiting in
 * the range. Pages not mapped are left alone (Linux without
 * UFFD_FEATURE_WP_UNPOPULATED). Holes are skipped. Returns 0, -EINVAL
 * (range as smm_uffd_copy(); unknown mode; WP with DONTWAKE), -ENOENT (no
 * VMA in the range, or one not registered for WP), -ESRCH.
 */
SMM_API int smm_uffd_wp(struct smm_mm *mm, uint64_t addr, uint64_t len,
			uint64_t mode);

/*
 * smm_uffd_wake - Linux's UFFDIO_WAKE: wake the faults waiting on pages of
 * [addr, addr + len), whatever is mapped there (they fault again, and wait
 * again if the page is still missing). Returns 0, -EINVAL (range as
 * smm_uffd_copy()), -ESRCH.
 */
SMM_API int smm_uffd_wake(struct smm_mm *mm, uint64_t addr, uint64_t len);

#ifdef __cplusplus
}
#endif
#endif /* SOFTMM_H */
