/*
 * frame.c - the frame pool: one host mapping cut into 4 KiB frames, page
 * metadata, the shared zero page, allocation of single frames (with per-CPU
 * caches) and of aligned blocks of 2^order frames, poisoning of freed
 * frames, and fault injection.
 *
 * Where free frames are: frames at and above the bump pointer were never
 * handed out (so a large pool costs nothing until used); single frames
 * freed are on the free stack or in a CPU's cache; blocks of order 1..9
 * freed are on the free list of their order. A block request takes a free
 * block of its order, or splits a larger one, or carves an aligned block
 * from the bump pointer; a single frame comes from the stack, the bump
 * pointer, or a split block. Freed single frames are not merged back into
 * blocks (no buddy coalescing yet): once the untouched part is used up,
 * blocks come only from blocks freed as such. A CPU's cache zeroes each
 * batch it takes from the pool at once (PG_ZEROED frames, handed out
 * without zeroing again).
 *
 * Locking: pool->lock (class LC_LEAF) protects the free stack, the free
 * lists and the bump pointer. A CPU's pcp_cache is touched only by its own
 * thread. Counters are atomics.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include "frame.h"
#include "cpu.h"

#define DEFAULT_POOL_BYTES (1UL << 30)

bool should_fail_alloc(struct smm_pool *pool)
{
	long n = atomic_load_explicit(&pool->fail_countdown,
				      memory_order_relaxed);

	if (likely(n == 0))
		return false;
	return atomic_fetch_sub(&pool->fail_countdown, 1) == 1;
}

__thread unsigned int smm_stripe __attribute__((tls_model("initial-exec")));

/* The private stripes in use, process-wide: bit k is stripe
 * NR_SHARED_STRIPES + k (frame.h). */
static atomic_uint private_stripes;

unsigned int stripe_get(int cpu_id)
{
	unsigned int used =
		atomic_load_explicit(&private_stripes, memory_order_relaxed);

	for (;;) {
		unsigned int free = ~used & ((1U << NR_PRIVATE_STRIPES) - 1);
		unsigned int k;

		if (!free)
			return 1 +
			       (unsigned int)cpu_id % (NR_SHARED_STRIPES - 1);
		k = (unsigned int)__builtin_ctz(free);
		if (atomic_compare_exchange_weak_explicit(
			    &private_stripes, &used, used | 1U << k,
			    memory_order_acquire, memory_order_relaxed))
			return NR_SHARED_STRIPES + k;
	}
}

void stripe_put(unsigned int stripe)
{
	if (stripe >= NR_SHARED_STRIPES)
		atomic_fetch_and_explicit(&private_stripes,
					  ~(1U << (stripe - NR_SHARED_STRIPES)),
					  memory_order_release);
}

void *pool_zalloc(struct smm_pool *pool, size_t size)
{
	if (should_fail_alloc(pool))
		return NULL;
	return calloc(1, size);
}

void *pool_zalloc_aligned(struct smm_pool *pool, size_t size)
{
	void *p;

	if (should_fail_alloc(pool))
		return NULL;
	size = (size + 63) & ~(size_t)63;
	p = aligned_alloc(64, size);
	if (p)
		memset(p, 0, size);
	return p;
}

/*
 * Live pools, so that a GUP page handle (a struct page) finds its pool.
 * Slots are claimed with cmpxchg at create and cleared at destroy;
 * lookups scan up to the high-water mark without locks.
 */
#define MAX_POOLS 1024
static struct smm_pool *_Atomic pool_registry[MAX_POOLS];
static atomic_int pool_registry_hi;

static bool pool_register(struct smm_pool *pool)
{
	for (int i = 0; i < MAX_POOLS; i++) {
		struct smm_pool *none = NULL;

		if (atomic_compare_exchange_strong(&pool_registry[i], &none,
						   pool)) {
			int hi = atomic_load(&pool_registry_hi);

			while (hi < i + 1 &&
			       !atomic_compare_exchange_weak(&pool_registry_hi,
							     &hi, i + 1))
				;
			return true;
		}
	}
	return false;
}

static void pool_unregister(struct smm_pool *pool)
{
	for (int i = 0; i < MAX_POOLS; i++) {
		struct smm_pool *p = pool;

		if (atomic_compare_exchange_strong(&pool_registry[i], &p, NULL))
			return;
	}
}

bool pool_is_live(const struct smm_pool *pool)
{
	int hi = atomic_load_explicit(&pool_registry_hi, memory_order_acquire);

	for (int i = 0; i < hi; i++)
		if (atomic_load_explicit(&pool_registry[i],
					 memory_order_relaxed) == pool)
			return true;
	return false;
}

struct smm_pool *page_pool(const struct page *page)
{
	int hi = atomic_load_explicit(&pool_registry_hi, memory_order_acquire);

	for (int i = 0; i < hi; i++) {
		struct smm_pool *p = atomic_load_explicit(&pool_registry[i],
							  memory_order_acquire);

		if (p && page >= p->pages && page < p->pages + p->nr_frames)
			return p;
	}
	smm_misuse("page", "%p is not a page of any live pool", (void *)page);
}

SMM_API void smm_pool_inject_failure(struct smm_pool *pool, unsigned long nth)
{
	if (!pool)
		return;
	atomic_store(&pool->fail_countdown, (long)nth);
}

_Static_assert((SMM_MTHP_16K | SMM_MTHP_32K | SMM_MTHP_64K) == MTHP_ORDERS,
	       "softmm.h's mTHP sizes are frame.h's orders");

SMM_API int smm_pool_set_mthp(struct smm_pool *pool, unsigned int orders)
{
	if (!pool || !pool_is_live(pool) || (orders & ~MTHP_ORDERS))
		return -EINVAL;
	atomic_store_explicit(&pool->mthp_orders, orders, memory_order_relaxed);
	return 0;
}

SMM_API struct smm_pool *smm_pool_create(size_t bytes, unsigned int flags)
{
	struct smm_pool *pool;
	pfn_t n;

	if (flags & ~(unsigned int)SMM_POOL_POISON) {
		errno = EINVAL;
		return NULL;
	}
	if (bytes == 0)
		bytes = DEFAULT_POOL_BYTES;
	n = bytes >> SMM_PAGE_SHIFT;
	if (n < 16 || n > (1ULL << 32)) {
		errno = EINVAL;
		return NULL;
	}
	pool = aligned_alloc(64, (sizeof(*pool) + 63) & ~(size_t)63);
	if (pool)
		memset(pool, 0, sizeof(*pool));
	if (!pool) {
		errno = ENOMEM;
		return NULL;
	}
	pool->nr_frames = n;
	pool->flags = flags;
	pool->base = mmap(NULL, n << SMM_PAGE_SHIFT, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	pool->pages = mmap(NULL, n * sizeof(struct page),
			   PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	pool->free_stack = mmap(NULL, n * sizeof(pfn_t), PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
				0);
	if (pool->base == MAP_FAILED || pool->pages == MAP_FAILED ||
	    pool->free_stack == MAP_FAILED) {
		if (pool->base != MAP_FAILED)
			munmap(pool->base, n << SMM_PAGE_SHIFT);
		if (pool->pages != MAP_FAILED)
			munmap(pool->pages, n * sizeof(struct page));
		if (pool->free_stack != MAP_FAILED)
			munmap(pool->free_stack, n * sizeof(pfn_t));
		free(pool);
		errno = ENOMEM;
		return NULL;
	}
	spin_lock_init(&pool->lock);
	for (int o = 0; o <= MAX_ORDER; o++)
		pool->free_area[o] = NO_PFN;
	/*
	 * Metadata pages come zeroed from the host: a zero struct page with
	 * PG_FREE clear is "never handed out"; frames at and above the bump
	 * pointer are free without being on the stack, so creating a large
	 * pool touches none of its memory.
	 */
	pool->zero_pfn = 0;
	pool->bump = 1;
	atomic_store(&pool->pages[0].flags, PG_ZERO);
	atomic_store(&pool->pages[0].refcount, 1);
	atomic_store(&pool->ctr[0].v[PC_FREE], (long)(n - 1));
	if (!pool_register(pool)) {
		munmap(pool->base, n << SMM_PAGE_SHIFT);
		munmap(pool->pages, n * sizeof(struct page));
		munmap(pool->free_stack, n * sizeof(pfn_t));
		free(pool);
		errno = ENOMEM;
		return NULL;
	}
	return pool;
}

SMM_API int smm_pool_destroy(struct smm_pool *pool)
{
	/* Checked before any dereference: a destroyed pool is freed. */
	if (!pool || !pool_is_live(pool))
		return -EINVAL;
	if (atomic_load(&pool->nr_mms) || atomic_load(&pool->nr_cpus) ||
	    atomic_load(&pool->nr_files))
		return -EBUSY;
	urcu_memb_barrier(); /* no deferred free may touch the pool now */
	pool_unregister(pool);
	munmap(pool->base, pool->nr_frames << SMM_PAGE_SHIFT);
	munmap(pool->pages, pool->nr_frames * sizeof(struct page));
	munmap(pool->free_stack, pool->nr_frames * sizeof(pfn_t));
	free(pool);
	return 0;
}

SMM_API int smm_pool_stats(struct smm_pool *pool, struct smm_pool_stats *st)
{
	if (!pool || !st)
		return -EINVAL;
	st->frames = pool->nr_frames;
	st->free = (uint64_t)stripe_sum(pool->ctr, PC_FREE);
	st->anon_pages = (uint64_t)stripe_sum(pool->ctr, PC_ANON);
	st->file_pages = (uint64_t)stripe_sum(pool->ctr, PC_FILE);
	st->pt_pages = (uint64_t)stripe_sum(pool->ctr, PC_TABLE);
	st->pins_acquired = (uint64_t)atomic_load(&pool->pins_acquired);
	st->pins_released = (uint64_t)atomic_load(&pool->pins_released);
	return 0;
}

static void push_block(struct smm_pool *pool, pfn_t pfn, unsigned int order)
{
	if (order == 0) {
		pool->free_stack[pool->nr_free_stack++] = pfn;
		return;
	}
	pfn_to_page(pool, pfn)->free_next = pool->free_area[order];
	pool->free_area[order] = pfn;
}

/*
 * A block of 2^@order frames from the free lists: one of that order, or the
 * low end of the smallest larger one, whose other halves go back on the
 * lists (single frames on the stack). pool->lock held. NO_PFN if none.
 */
static pfn_t take_free_block(struct smm_pool *pool, unsigned int order)
{
	unsigned int o = order ? order : 1;
	pfn_t pfn;

	while (o <= MAX_ORDER && pool->free_area[o] == NO_PFN)
		o++;
	if (o > MAX_ORDER)
		return NO_PFN;
	pfn = pool->free_area[o];
	pool->free_area[o] = pfn_to_page(pool, pfn)->free_next;
	while (o > order) {
		o--;
		push_block(pool, pfn + ((pfn_t)1 << o), o);
	}
	return pfn;
}

/* An aligned block of 2^@order never-used frames from the bump pointer;
 * the frames skipped to align it go on the free stack. pool->lock held. */
static pfn_t take_bump_block(struct smm_pool *pool, unsigned int order)
{
	pfn_t size = (pfn_t)1 << order;
	pfn_t a = (pool->bump + size - 1) & ~(size - 1);

	if (a > pool->nr_frames || pool->nr_frames - a < size)
		return NO_PFN;
	while (pool->bump < a)
		pool->free_stack[pool->nr_free_stack++] = pool->bump++;
	pool->bump = a + size;
	return a;
}

/* Take up to @want single frames from the global pool into @out. */
static int global_take(struct smm_pool *pool, pfn_t *out, int want)
{
	int got = 0;

	spin_lock_class(&pool->lock, LC_LEAF);
	while (got < want) {
		pfn_t pfn;

		if (pool->nr_free_stack)
			pfn = pool->free_stack[--pool->nr_free_stack];
		else if (pool->bump < pool->nr_frames)
			pfn = pool->bump++;
		else if ((pfn = take_free_block(pool, 0)) == NO_PFN)
			break;
		out[got++] = pfn;
	}
	spin_unlock(&pool->lock);
	return got;
}

/* Out of line: inlined, it costs free_frame()'s common path registers. */
static __attribute__((noinline)) void global_give(struct smm_pool *pool,
						  const pfn_t *in, int n)
{
	spin_lock_class(&pool->lock, LC_LEAF);
	for (int i = 0; i < n; i++)
		pool->free_stack[pool->nr_free_stack++] = in[i];
	spin_unlock(&pool->lock);
}

void pcp_drain(struct smm_pool *pool, struct pcp_cache *pcp)
{
	global_give(pool, pcp->frames, pcp->count);
	pcp->count = 0;
}

static void check_poison(struct smm_pool *pool, pfn_t pfn)
{
	const uint64_t *w = pfn_to_virt(pool, pfn);

	for (int i = 0; i < 512; i++) {
		if (unlikely(w[i] != POISON_WORD)) {
			fprintf(stderr,
				"softmm: use after free: frame %llu "
				"word %d is %#llx, not poison\n",
				(unsigned long long)pfn, i,
				(unsigned long long)w[i]);
			BUG_ON(1);
		}
	}
}

/*
 * Zero @npages frames from @pfn, which are consecutive: one string store
 * over the whole extent, as Linux's clear_pages() (2026) does for a
 * folio. Given the extent, the CPU streams it; zeroed a page at a time,
 * each 4 KiB store restarts the ramp. Measured here: 30% less time per
 * frame for the runs a frame cache batch holds (7 to 11 frames on
 * average in fault-anon's steady state).
 */
static void clear_pages(struct smm_pool *pool, pfn_t pfn, pfn_t npages)
{
	memset(pfn_to_virt(pool, pfn), 0, (size_t)npages << SMM_PAGE_SHIFT);
}

/*
 * Zero the @n frames at @pfns, just taken into a CPU's frame cache, and
 * mark them PG_ZEROED, so that allocating them skips the zeroing. One
 * zeroing after the other lets the stores of each overlap with the next,
 * as a memset of a large buffer does: zeroed one per fault, each page's
 * stores had to drain at the fault's first locked instruction (the ptl)
 * with nothing to overlap them, which made zeroing ~1.3x dearer than a
 * memset of the same cold memory. The frames to zero are sorted first,
 * so that each run of consecutive ones is zeroed as one extent
 * (clear_pages()): frames come and go in runs (the bump pointer hands
 * them out so, zaps free them in address order). 128 KiB stays in the
 * CPU's L2 until the faults use it. Not with SMM_POOL_POISON, which
 * checks a frame's poison when it is handed out, not before.
 */
static void zero_batch(struct smm_pool *pool, const pfn_t *pfns, int n)
{
	pfn_t sorted[PCP_BATCH];
	int m = 0, i, j;

	BUG_ON(n > PCP_BATCH);
	if (pool->flags & SMM_POOL_POISON)
		return;
	for (i = 0; i < n; i++) {
		struct page *page = pfn_to_page(pool, pfns[i]);

		if (atomic_load_explicit(&page->flags, memory_order_relaxed) &
		    PG_ZEROED)
			continue;
		/* Marked ahead of the zeroing below: only this CPU sees the
		 * frames of its cache. */
		atomic_store_explicit(&page->flags, PG_FREE | PG_ZEROED,
				      memory_order_relaxed);
		for (j = m++; j > 0 && sorted[j - 1] > pfns[i]; j--)
			sorted[j] = sorted[j - 1];
		sorted[j] = pfns[i];
	}
	for (i = 0; i < m; i = j) {
		for (j = i + 1; j < m && sorted[j] == sorted[j - 1] + 1; j++)
			;
		clear_pages(pool, sorted[i], (pfn_t)(j - i));
	}
}

/* Make the frame @pfn, just taken from the free frames, a frame for @use
 * with @refs references, heading a block of 2^@order; zeroed if @zero. */
static void prep_frame(struct smm_pool *pool, pfn_t pfn, unsigned int use,
		       int refs, unsigned int order, bool zero)
{
	struct page *page = pfn_to_page(pool, pfn);
	unsigned int old =
		atomic_load_explicit(&page->flags, memory_order_relaxed);

	/* A frame that was handed out before was poisoned when freed. */
	if ((pool->flags & SMM_POOL_POISON) && (old & PG_FREE))
		check_poison(pool, pfn);
	atomic_store_explicit(&page->flags, use, memory_order_relaxed);
	atomic_store_explicit(&page->refcount, refs, memory_order_relaxed);
	atomic_store_explicit(&page->mapcount, 0, memory_order_relaxed);
	atomic_store_explicit(&page->pt_count, 0, memory_order_relaxed);
	spin_lock_init(&page->ptl);
	page->pt_level = 0;
	page->order = (unsigned char)order;
	page->mapping = NULL; /* and pt_owner, the union's first word */
	page->index = 0;
	page->pin_owner = NULL;
	if (zero && !(old & PG_ZEROED))
		memset(pfn_to_virt(pool, pfn), 0, SMM_PAGE_SIZE);
}

/* The pool counter (PC_*) of a frame in use as @use (its PG_* flags). */
static inline int use_counter(unsigned int use)
{
	return use & PG_TABLE ? PC_TABLE : use & PG_FILE ? PC_FILE : PC_ANON;
}

pfn_t alloc_frame(struct smm_pool *pool, unsigned int use)
{
	struct smm_cpu *cpu = this_cpu_on(pool);
	bool zero = !(use & ALLOC_NOZERO);
	pfn_t pfn;

	use &= ~ALLOC_NOZERO;
	if (should_fail_alloc(pool))
		return NO_PFN;
	if (cpu) {
		struct pcp_cache *pcp = &cpu->pcp;

		if (!pcp->count) {
			pcp->count = global_take(pool, pcp->frames, PCP_BATCH);
			if (!pcp->count)
				return NO_PFN;
			/* A batch taken for a copy is not zeroed ahead: a CPU
			 * that copies (userfaultfd, copy on write of a pinned
			 * page) would zero 32 frames to overwrite them, and
			 * the zeroing allocations that take the rest zero
			 * them one by one. */
			if (zero)
				zero_batch(pool, pcp->frames, pcp->count);
		}
		pfn = pcp->frames[--pcp->count];
	} else if (!global_take(pool, &pfn, 1)) {
		return NO_PFN;
	}
	prep_frame(pool, pfn, use, 1, 0, zero);
	stripe_add(pool->ctr, PC_FREE, -1);
	stripe_add(pool->ctr, use_counter(use), 1);
	return pfn;
}

void pcp_prefetch_next(struct smm_pool *pool)
{
	struct smm_cpu *cpu = this_cpu_on(pool);
	const char *p;

	if (!cpu || !cpu->pcp.count)
		return;
	p = pfn_to_virt(pool, cpu->pcp.frames[cpu->pcp.count - 1]);
	for (unsigned int off = 0; off < SMM_PAGE_SIZE; off += 64)
		__builtin_prefetch(p + off, 1, 3);
}

pfn_t alloc_frames(struct smm_pool *pool, unsigned int order, unsigned int use)
{
	pfn_t pfn, n = (pfn_t)1 << order;

	BUG_ON(order > MAX_ORDER);
	if (order == 0)
		return alloc_frame(pool, use);
	if (should_fail_alloc(pool))
		return NO_PFN;
	spin_lock_class(&pool->lock, LC_LEAF);
	pfn = take_free_block(pool, order);
	if (pfn == NO_PFN)
		pfn = take_bump_block(pool, order);
	spin_unlock(&pool->lock);
	if (pfn == NO_PFN)
		return NO_PFN;
	prep_frame(pool, pfn, use, 1, order, true);
	for (pfn_t i = 1; i < n; i++)
		prep_frame(pool, pfn + i, use | PG_TAIL, 0, 0, true);
	stripe_add(pool->ctr, PC_FREE, -(long)n);
	stripe_add(pool->ctr, use_counter(use), (long)n);
	return pfn;
}

/*
 * Mark the frame @pfn free (and poison it); returns its counter. A frame
 * must be in use, and a block's first frame (@tail 0) or not (PG_TAIL).
 *
 * A load and a store, not an exchange: whoever frees a frame holds its
 * last reference (put_page()), or the only one (free_frames() of a block
 * just allocated), and every read-modify-write of a page's flags (the page
 * lock, dirty, writeback, exclusive) is made by a holder of a reference,
 * so nothing can change the flags between the two. A lookup that tries
 * for a reference now (GUP-fast, the page cache) fails on the zero
 * refcount before it looks at the flags. One locked instruction less for
 * every page a zap frees.
 */
static inline __attribute__((always_inline)) int
release_frame(struct smm_pool *pool, pfn_t pfn, unsigned int tail)
{
	struct page *page = pfn_to_page(pool, pfn);
	unsigned int old =
		atomic_load_explicit(&page->flags, memory_order_relaxed);

	VM_BUG_ON(atomic_load_explicit(&page->refcount, memory_order_relaxed) >
		  1);
	atomic_store_explicit(&page->flags, PG_FREE, memory_order_relaxed);

	BUG_ON((old & (PG_FREE | PG_ZERO | PG_TAIL)) != tail);
	VM_BUG_ON((old & (PG_ANON | PG_FILE)) &&
		  atomic_load(&page->mapcount) != 0);
	VM_BUG_ON(old & (PG_LOCKED | PG_WRITEBACK));
	if (pool->flags & SMM_POOL_POISON)
		memset(pfn_to_virt(pool, pfn), POISON_BYTE, SMM_PAGE_SIZE);
	return use_counter(old);
}

void free_frame(struct smm_pool *pool, pfn_t pfn)
{
	int ctr = release_frame(pool, pfn, 0);
	struct smm_cpu *cpu;

	VM_BUG_ON(pfn_to_page(pool, pfn)->order);
	stripe_add(pool->ctr, ctr, -1);
	stripe_add(pool->ctr, PC_FREE, 1);
	cpu = this_cpu_on(pool);
	if (cpu) {
		struct pcp_cache *pcp = &cpu->pcp;

		if (pcp->count == PCP_HIGH) {
			global_give(pool, pcp->frames + PCP_HIGH - PCP_BATCH,
				    PCP_BATCH);
			pcp->count -= PCP_BATCH;
		}
		pcp->frames[pcp->count++] = pfn;
		return;
	}
	global_give(pool, &pfn, 1);
}

void free_frames(struct smm_pool *pool, pfn_t pfn, unsigned int order)
{
	pfn_t n = (pfn_t)1 << order;
	int ctr;

	if (order == 0) {
		free_frame(pool, pfn);
		return;
	}
	BUG_ON(order > MAX_ORDER || (pfn & (n - 1)) ||
	       pfn_to_page(pool, pfn)->order != order);
	ctr = release_frame(pool, pfn, 0);
	for (pfn_t i = 1; i < n; i++)
		release_frame(pool, pfn + i, PG_TAIL);
	stripe_add(pool->ctr, ctr, -(long)n);
	stripe_add(pool->ctr, PC_FREE, (long)n);
	spin_lock_class(&pool->lock, LC_LEAF);
	push_block(pool, pfn, order);
	spin_unlock(&pool->lock);
}

void put_page(struct smm_pool *pool, pfn_t pfn)
{
	struct page *page = pfn_to_page(pool, pfn);
	int old = atomic_fetch_sub_explicit(&page->refcount, 1,
					    memory_order_acq_rel);

	BUG_ON(old <= 0);
	if (old != 1)
		return;
	if (likely(!page->order))
		free_frame(pool, pfn);
	else
		free_frames(pool, pfn, page->order);
}
