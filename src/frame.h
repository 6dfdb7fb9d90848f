/*
 * frame.h - the frame pool ("physical memory") and its page metadata.
 * The pool's free stack, free lists and bump pointer are protected by
 * pool->lock; each CPU's frame cache belongs to that CPU's thread alone.
 * Page metadata fields are atomics or protected as noted at each field.
 */
#ifndef SMM_FRAME_H
#define SMM_FRAME_H

#include <string.h>
#include "rcu.h"
#include "lock.h"
#include "softmm.h"

typedef uint64_t pfn_t;

/* page->flags */
#define PG_FREE	    0x01 /* in the pool's free stack or lists, or a CPU cache */
#define PG_ANON	    0x02 /* an anonymous page */
#define PG_TABLE    0x04 /* a page table; pt_level says which */
#define PG_ZERO	    0x08 /* the shared zero page */
#define PG_LAZYFREE 0x10 /* MADV_FREE'd: may be dropped while clean */
#define PG_DIRTY    0x20 /* contents differ from what a drop would give */
#define PG_PT_DEAD  0x40 /* page table unlinked, waiting to be freed */
/*
 * An anonymous page mapped by exactly one address space, which may
 * therefore be written in place on a write fault and pinned (Linux's
 * PageAnonExclusive). Set when the page is faulted in; fork will clear it.
 */
#define PG_ANON_EXCLUSIVE 0x80
#define PG_TAIL		  0x100 /* a frame of a block other than its first */
/* Page-cache pages (filemap.h): page->mapping is the struct smm_file and
 * page->index the page's offset in it, while the page is in the cache. */
#define PG_FILE	     0x200
#define PG_LOCKED    0x400  /* the page lock (lock_page()) */
#define PG_WAITERS   0x800  /* someone sleeps on PG_LOCKED or PG_WRITEBACK */
#define PG_UPTODATE  0x1000 /* contents valid (read in, or zeroed) */
#define PG_WRITEBACK 0x2000 /* being written to the host file */
/* A page of an anonymous file (shared anonymous memory): no writeback,
 * so GUP-fast may pin it for long like an anonymous page. */
#define PG_SWAPBACKED 0x4000
/* A free frame known to hold zeroes: zeroed ahead, with the others of a
 * batch a CPU's frame cache took (frame.c); allocating it skips zeroing. */
#define PG_ZEROED 0x8000

/* Largest block alloc_frames() hands out: 2^9 frames, 2 MiB. */
#define MAX_ORDER 9
/* The orders multi-size THP may map (16 KiB to 64 KiB), and the largest. */
#define MTHP_ORDERS    ((1U << 2) | (1U << 3) | (1U << 4))
#define MTHP_MAX_ORDER 4

/*
 * The metadata of one frame, Linux's struct page. The first words serve
 * every kind of page; the union holds what only data pages, only page
 * tables or only free blocks need, as Linux overlays struct ptdesc and
 * struct folio on struct page. 48 bytes.
 */
struct page {
	atomic_uint flags;
	atomic_int refcount; /* references: one per mapping, plus gets/pins */
	union {
		/* data pages: entries mapping it (under their ptl) */
		atomic_int mapcount;
		/*
		 * PTE tables under scheme "refcount": non-none entries plus
		 * the walkers mapping the table (pt_scheme_refcount.c). Zero
		 * is final: the table is being freed.
		 */
		atomic_int pte_refcount;
		/* PMD tables under scheme "pmd-rwsem": the read-write lock
		 * guarding the level (pt_scheme_pmd_rwsem.c). */
		atomic_uint pmd_rwsem;
	};
	/* Page tables: the split page-table lock of this table. Data pages:
	 * the page lock (unpin_user_pages_dirty_lock). */
	spinlock_t ptl;
	/*
	 * Page tables: entries in use. A PTE table counts its non-none
	 * entries (changed under its ptl); an upper table its present
	 * entries (atomically, under the lock that protects those entries).
	 * Knowing a table is empty costs O(1).
	 */
	atomic_int pt_count;
	short pt_level;	     /* page tables: 1 PTE, 2 PMD, 3 PUD, 4 PGD */
	unsigned char order; /* first frame of a block: the block is 2^order */
	union {
		struct { /* data pages (PG_ANON) */
			/*
			 * Anonymous: the struct anon_vma of the VMA it was
			 * faulted into; meaningful while the page is mapped.
			 * Set before the entry is published.
			 */
			void *mapping;
			uint64_t index; /* linear page index in @mapping */
			/* The mm whose pins hold the page (gup.c): a pinned
			 * anonymous page is exclusive to one mm. */
			struct smm_mm *pin_owner;
		};
		struct {			 /* page tables (PG_TABLE) */
			struct smm_mm *pt_owner; /* the mm whose table it is */
			union {
				/* queued on an mmu_gather, until ... */
				pfn_t gather_next;
				/* ... handed to RCU for freeing */
				struct rcu_head rcu;
			};
		};
		pfn_t free_next; /* free block of order >= 1: next on its list */
	};
};

struct smm_cpu;

/*
 * Counters striped by CPU: an update touches only its own CPU's cache
 * line, a read adds the stripes up (exact when nothing runs meanwhile).
 * Two CPUs faulting side by side must not bounce one line per fault.
 *
 * Stripes 0..NR_SHARED_STRIPES-1 are shared: threads that are not CPUs
 * use stripe 0, CPUs that found no private stripe 1 + id % 7; they update
 * with an atomic read-modify-write. The others are private: a CPU's
 * thread claims one at attach (process-wide, whatever the pool) and gives
 * it back at detach, and it alone ever writes that stripe of any mm or
 * pool, so it updates with a plain load and store, as Linux's
 * this_cpu_add() does: no locked instruction, which after zeroing a page
 * would also wait for its stores to drain. The release that gives a
 * stripe back and the acquire that claims it order the last owner's
 * stores before the next owner's loads.
 */
#define NR_SHARED_STRIPES  8
#define NR_PRIVATE_STRIPES 8
#define NR_STRIPES	   (NR_SHARED_STRIPES + NR_PRIVATE_STRIPES)
#define STRIPE_WORDS	   7
struct stripe {
	atomic_long v[STRIPE_WORDS];
} __attribute__((aligned(64)));
/* The calling thread's stripe: its CPU's, 0 for other threads. */
extern __hidden __thread unsigned int smm_stripe
	__attribute__((tls_model("initial-exec")));

static inline void stripe_add(struct stripe *s, int i, long d)
{
	unsigned int k = smm_stripe;
	atomic_long *v = &s[k].v[i];

	if (likely(k >= NR_SHARED_STRIPES))
		atomic_store_explicit(
			v, atomic_load_explicit(v, memory_order_relaxed) + d,
			memory_order_relaxed);
	else
		atomic_fetch_add_explicit(v, d, memory_order_relaxed);
}

/* A stripe for the calling thread, which becomes CPU @cpu_id: a private
 * one if any is free; give it back with stripe_put(). */
unsigned int stripe_get(int cpu_id);
void stripe_put(unsigned int stripe);

static inline long stripe_sum(struct stripe *s, int i)
{
	long t = 0;

	for (int k = 0; k < NR_STRIPES; k++)
		t += atomic_load_explicit(&s[k].v[i], memory_order_relaxed);
	return t;
}

/* pool->ctr[] words */
enum {
	PC_FREE,
	PC_ANON,
	PC_TABLE,
	PC_FILE
};

struct smm_pool {
	uint8_t *base;	    /* host mapping: frame n at base + n*4096 */
	struct page *pages; /* metadata, indexed by frame number */
	pfn_t nr_frames;
	unsigned int flags; /* SMM_POOL_* */
	pfn_t zero_pfn;

	/*
	 * On a line of its own: every fault reads the fields above (base,
	 * pages, nr_frames), and a CPU refilling its frame cache must not
	 * take that line away from the others.
	 */
	spinlock_t lock __attribute__((aligned(64))); /* free stack, free
							* lists, bump */
	pfn_t *free_stack; /* single frames freed, ready for reuse */
	pfn_t nr_free_stack;
	/* Free blocks of order 1..MAX_ORDER, linked through free_next. */
	pfn_t free_area[MAX_ORDER + 1];
	pfn_t bump; /* frames at and above never handed out */

	/* PC_FREE (free stack + bump + CPU caches), PC_ANON, PC_TABLE */
	struct stripe ctr[NR_STRIPES];
	atomic_long pins_acquired, pins_released; /* gup.c */

	/* Fault injection (smm_pool_inject_failure). */
	atomic_long fail_countdown;
	/* Orders anonymous faults may map at once (smm_pool_set_mthp()):
	 * bit n for 2^n pages, within MTHP_ORDERS; read at each fault. */
	atomic_uint mthp_orders;

	/* CPUs attached, for TLB shootdown and per-CPU caches. */
	struct smm_cpu *_Atomic cpus[SMM_MAX_CPUS];
	atomic_int nr_cpus;
	atomic_int nr_mms;
	atomic_int nr_files; /* smm_file objects alive (filemap.c) */
};

#define POISON_BYTE 0x6b
#define POISON_WORD 0x6b6b6b6b6b6b6b6bULL

static inline struct page *pfn_to_page(struct smm_pool *pool, pfn_t pfn)
{
	VM_BUG_ON(pfn >= pool->nr_frames);
	return &pool->pages[pfn];
}

static inline pfn_t page_to_pfn(struct smm_pool *pool, struct page *page)
{
	return (pfn_t)(page - pool->pages);
}

static inline void *pfn_to_virt(struct smm_pool *pool, pfn_t pfn)
{
	return pool->base + (pfn << SMM_PAGE_SHIFT);
}

/* The page (frame) that holds the byte at @p, which lies in the pool. */
static inline struct page *virt_to_page(struct smm_pool *pool, const void *p)
{
	return pfn_to_page(pool, (pfn_t)((const uint8_t *)p - pool->base) >>
					 SMM_PAGE_SHIFT);
}

static inline bool is_zero_pfn(struct smm_pool *pool, pfn_t pfn)
{
	return pfn == pool->zero_pfn;
}

/*
 * frame_copy - memcpy() for a frame that guest CPUs (or a device through a
 * pin) may be storing to meanwhile: a page-cache page being written back,
 * copied on write, read by pread. What the hardware gives, some mix of old
 * and new bytes, each aligned 8-byte word whole. In ThreadSanitizer builds
 * it uses relaxed atomics, as guest accesses do (uaccess.c), so that TSan
 * reports races between softmm's own uses of a frame only, never this
 * copy against a guest's store.
 */
static inline void frame_copy(void *dst, const void *src, size_t n)
{
#ifdef SMM_TSAN
	uint8_t *d = dst;
	const uint8_t *s = src;
	size_t i = 0;

	for (; i + 8 <= n && !((uintptr_t)(d + i) & 7) &&
	       !((uintptr_t)(s + i) & 7);
	     i += 8)
		__atomic_store_n((uint64_t *)(d + i),
				 __atomic_load_n((const uint64_t *)(s + i),
						 __ATOMIC_RELAXED),
				 __ATOMIC_RELAXED);
	for (; i < n; i++)
		__atomic_store_n(d + i,
				 __atomic_load_n(s + i, __ATOMIC_RELAXED),
				 __ATOMIC_RELAXED);
#else
	memcpy(dst, src, n);
#endif
}

/* Allocate one zeroed frame for @use (PG_ANON, PG_TABLE or PG_FILE),
 * refcount 1; with ALLOC_NOZERO or'ed into @use, a frame the caller
 * overwrites whole before anyone can see it (a copy), not zeroed unless
 * it happened to be zeroed ahead.
 * Returns the frame number, or (pfn_t)-1 when the pool is exhausted or a
 * failure was injected. */
#define NO_PFN	     ((pfn_t)-1)
#define ALLOC_NOZERO 0x80000000U /* alloc_frame() only: not a page flag */
pfn_t alloc_frame(struct smm_pool *pool, unsigned int use);
/*
 * alloc_frames - allocate 2^@order contiguous zeroed frames, the first
 * aligned to 2^@order frames, for @use; @order at most MAX_ORDER (a 2 MiB
 * huge page or a large folio). The first frame carries the refcount (1)
 * and the order; the others are PG_TAIL with refcount 0. Returns the first
 * frame, or NO_PFN when no free block or untouched range is large enough
 * (freed single frames are never merged back into blocks) or a failure
 * was injected. Free with put_page() on the first frame, or free_frames().
 */
pfn_t alloc_frames(struct smm_pool *pool, unsigned int order, unsigned int use);
/* Return a frame whose last reference is gone. */
void free_frame(struct smm_pool *pool, pfn_t pfn);
/* Return the block of 2^@order frames at @pfn (from alloc_frames). */
void free_frames(struct smm_pool *pool, pfn_t pfn, unsigned int order);
/* Drop a reference; free the frame (or block) with the last one. */
void put_page(struct smm_pool *pool, pfn_t pfn);
/* The pool whose metadata array holds @page (a registry of live pools:
 * GUP's page handles carry no pool). */
struct smm_pool *page_pool(const struct page *page);
/* Whether @pool was created and not yet destroyed; never dereferences it. */
bool pool_is_live(const struct smm_pool *pool);
/* Consult fault injection for a metadata allocation; true: fail it. */
bool should_fail_alloc(struct smm_pool *pool);
/* malloc/calloc that honour fault injection. */
void *pool_zalloc(struct smm_pool *pool, size_t size);
/* The same, cache-line aligned and padded (objects other CPUs write). */
void *pool_zalloc_aligned(struct smm_pool *pool, size_t size);

/* Per-CPU frame cache (cpu.c owns the CPU, frame.c the cache logic). */
#define PCP_HIGH  64
#define PCP_BATCH 32
struct pcp_cache {
	int count;
	pfn_t frames[PCP_HIGH];
};
void pcp_drain(struct smm_pool *pool, struct pcp_cache *pcp);
/*
 * pcp_prefetch_next - bring into the calling thread's cache, for writing,
 * the frame its CPU's next alloc_frame() on @pool returns (nothing if the
 * thread has no CPU there, or its cache is empty): for a thread that is
 * about to wait, and will then copy into a fresh frame (a userfaultfd
 * handler reading its next event).
 */
void pcp_prefetch_next(struct smm_pool *pool);

#endif
