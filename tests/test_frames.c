/*
 * test_frames.c - the frame allocator below the public API (frame.c):
 * blocks of 2^order frames (alignment, zeroing, tail frames, counters),
 * splitting a freed block, single frames taken from split blocks when
 * nothing else is left, exhaustion and injected failures that change
 * nothing, poisoning, a random mix of orders whose frames never overlap
 * and all come back, frames taken for a copy (ALLOC_NOZERO) beside
 * zeroed ones, and batches zeroed in runs that spare the frames between.
 */
#include "common.h"
#include "frame.h"

static struct smm_pool_stats pstats(struct smm_pool *pool)
{
	struct smm_pool_stats st;

	smm_pool_stats(pool, &st);
	return st;
}

static bool frame_is(struct smm_pool *pool, pfn_t pfn, int byte)
{
	const uint8_t *p = pfn_to_virt(pool, pfn);

	for (size_t i = 0; i < PG; i++)
		if (p[i] != (uint8_t)byte)
			return false;
	return true;
}

static void test_orders(void **state)
{
	struct smm_pool *pool = smm_pool_create(64 * MB, SMM_POOL_POISON);

	assert_non_null(pool);
	for (unsigned int order = 0; order <= MAX_ORDER; order++) {
		pfn_t n = (pfn_t)1 << order, pfn;
		uint64_t free0 = pstats(pool).free;

		pfn = alloc_frames(pool, order, PG_ANON);
		assert_true(pfn != NO_PFN);
		assert_int_equal(pfn & (n - 1), 0); /* aligned */
		assert_int_equal(pstats(pool).free, free0 - n);
		assert_int_equal(pstats(pool).anon_pages, n);
		assert_int_equal(pfn_to_page(pool, pfn)->order, order);
		assert_int_equal(atomic_load(&pfn_to_page(pool, pfn)->refcount),
				 1);
		for (pfn_t i = 0; i < n; i++) {
			struct page *pg = pfn_to_page(pool, pfn + i);

			assert_true(frame_is(pool, pfn + i, 0));
			assert_int_equal(atomic_load(&pg->flags),
					 PG_ANON | (i ? PG_TAIL : 0));
			if (i)
				assert_int_equal(atomic_load(&pg->refcount), 0);
			memset(pfn_to_virt(pool, pfn + i), 0x5a, PG);
		}
		put_page(pool, pfn); /* the last reference frees the block */
		assert_int_equal(pstats(pool).free, free0);
		assert_int_equal(pstats(pool).anon_pages, 0);
		for (pfn_t i = 0; i < n; i++)
			assert_true(frame_is(pool, pfn + i, POISON_BYTE));
	}
	assert_int_equal(smm_pool_destroy(pool), 0);
}

/* A 4 MiB pool has two 2 MiB slots; frame 0 is the zero page, so only the
 * second slot can hold an order-9 block. */
static void test_split_and_exhaust(void **state)
{
	struct smm_pool *pool = smm_pool_create(4 * MB, SMM_POOL_POISON);
	pfn_t big, big2, small, q[6];
	uint64_t nr;

	assert_non_null(pool);
	nr = pstats(pool).free;
	big = alloc_frames(pool, MAX_ORDER, PG_ANON);
	assert_int_equal(big, 512);
	/* no second aligned 2 MiB: nothing changes */
	assert_true(alloc_frames(pool, MAX_ORDER, PG_ANON) == NO_PFN);
	assert_int_equal(pstats(pool).free, nr - 512);
	free_frames(pool, big, MAX_ORDER);
	assert_int_equal(pstats(pool).free, nr);
	/* the freed block comes back whole ... */
	big2 = alloc_frames(pool, MAX_ORDER, PG_TABLE);
	assert_int_equal(big2, big);
	assert_int_equal(pstats(pool).pt_pages, 512);
	free_frames(pool, big2, MAX_ORDER);
	/* ... or split: an order-3 block is its low end, and the rest of it
	 * stays free as blocks of orders 3..8 */
	small = alloc_frames(pool, 3, PG_ANON);
	assert_int_equal(small, big);
	for (int i = 0; i < 6; i++) {
		q[i] = alloc_frames(pool, 3 + (unsigned)i, PG_ANON);
		assert_int_equal(q[i], big + (8ULL << i));
	}
	/* the block is used up, and the single frames below it (the
	 * alignment gap, on the free stack) make no block */
	assert_true(alloc_frames(pool, 3, PG_ANON) == NO_PFN);
	for (int i = 0; i < 6; i++)
		free_frames(pool, q[i], 3 + (unsigned)i);
	free_frames(pool, small, 3);
	assert_int_equal(pstats(pool).free, nr);
	/* single frames use up the stack, the untouched frames and then the
	 * free blocks: every free frame can be had one by one */
	pfn_t *all = calloc(nr + 1, sizeof(*all));
	uint64_t got = 0;

	assert_non_null(all);
	while ((all[got] = alloc_frame(pool, PG_ANON)) != NO_PFN)
		got++;
	assert_int_equal(got, nr);
	assert_int_equal(pstats(pool).free, 0);
	assert_true(alloc_frames(pool, 1, PG_ANON) == NO_PFN);
	for (uint64_t i = 0; i < got; i++)
		free_frame(pool, all[i]);
	free(all);
	assert_int_equal(pstats(pool).free, nr);
	/* single frames freed are not merged back into blocks (documented) */
	assert_true(alloc_frames(pool, MAX_ORDER, PG_ANON) == NO_PFN);
	assert_int_equal(smm_pool_destroy(pool), 0);
}

static void test_inject(void **state)
{
	struct smm_pool *pool = smm_pool_create(16 * MB, 0);
	uint64_t nr;
	pfn_t pfn;

	assert_non_null(pool);
	nr = pstats(pool).free;
	smm_pool_inject_failure(pool, 1);
	assert_true(alloc_frames(pool, 4, PG_ANON) == NO_PFN);
	assert_int_equal(pstats(pool).free, nr);
	pfn = alloc_frames(pool, 4, PG_ANON);
	assert_true(pfn != NO_PFN);
	put_page(pool, pfn);
	assert_int_equal(pstats(pool).free, nr);
	assert_int_equal(smm_pool_destroy(pool), 0);
}

/* Random orders, random frees: blocks never overlap, and every frame
 * returns. A bitmap of frames in use checks the first. */
static void test_random_mix(void **state)
{
	enum {
		SLOTS = 64
	};
	struct smm_pool *pool = smm_pool_create(32 * MB, SMM_POOL_POISON);
	pfn_t held[SLOTS];
	unsigned int ord[SLOTS];
	uint8_t *used;
	uint64_t nr, frames;
	unsigned int x = 7;

	assert_non_null(pool);
	frames = pstats(pool).frames;
	nr = pstats(pool).free;
	used = calloc(frames, 1);
	assert_non_null(used);
	for (int i = 0; i < SLOTS; i++)
		held[i] = NO_PFN;
	for (int it = 0; it < 20000; it++) {
		int s;

		x = x * 1103515245u + 12345u;
		s = (int)((x >> 8) % SLOTS);
		if (held[s] == NO_PFN) {
			unsigned int o = (x >> 20) % (MAX_ORDER + 1);
			pfn_t p = alloc_frames(pool, o, PG_ANON);

			if (p == NO_PFN)
				continue;
			for (pfn_t i = 0; i < ((pfn_t)1 << o); i++) {
				assert_false(used[p + i]);
				used[p + i] = 1;
			}
			held[s] = p;
			ord[s] = o;
		} else {
			for (pfn_t i = 0; i < ((pfn_t)1 << ord[s]); i++)
				used[held[s] + i] = 0;
			free_frames(pool, held[s], ord[s]);
			held[s] = NO_PFN;
		}
	}
	for (int s = 0; s < SLOTS; s++)
		if (held[s] != NO_PFN)
			free_frames(pool, held[s], ord[s]);
	assert_int_equal(pstats(pool).free, nr);
	assert_int_equal(pstats(pool).anon_pages, 0);
	free(used);
	assert_int_equal(smm_pool_destroy(pool), 0);
}

/*
 * ALLOC_NOZERO (a frame for a copy): its flags hold no trace of it, and a
 * CPU's cache batch refilled for one is not zeroed ahead, so the zeroing
 * allocations that take the rest of that batch must still zero. Every
 * frame is dirtied first, and the pool has no poison (which turns the
 * batch zeroing off).
 */
static void test_nozero(void **state)
{
	struct smm_pool *pool = smm_pool_create(8 * MB, 0);
	struct smm_cpu *cpu;
	pfn_t *held;
	int n = 0;

	assert_non_null(pool);
	held = calloc(pstats(pool).free + 1, sizeof(*held));
	cpu = smm_cpu_attach(pool);
	assert_non_null(cpu);
	while ((held[n] = alloc_frame(pool, PG_ANON)) != NO_PFN)
		memset(pfn_to_virt(pool, held[n++]), 0x77, PG);
	assert_true(n > 1000);
	while (n)
		put_page(pool, held[--n]);
	for (int i = 0; i < 600; i++) {
		bool copy = i % 7 == 0;
		pfn_t pfn =
			alloc_frame(pool, PG_ANON | (copy ? ALLOC_NOZERO : 0));

		assert_true(pfn != NO_PFN);
		assert_int_equal(atomic_load(&pfn_to_page(pool, pfn)->flags),
				 PG_ANON);
		if (!copy)
			assert_true(frame_is(pool, pfn, 0));
		memset(pfn_to_virt(pool, pfn), 0x33, PG);
		held[n++] = pfn;
	}
	assert_int_equal(pstats(pool).anon_pages, 600);
	while (n)
		put_page(pool, held[--n]);
	assert_int_equal(pstats(pool).anon_pages, 0);
	assert_int_equal(smm_cpu_detach(cpu), 0);
	free(held);
	assert_int_equal(smm_pool_destroy(pool), 0);
}

/* What test_zero_runs writes in frame @pfn while it is in use. */
static int frame_mark(pfn_t pfn)
{
	return (int)((pfn * 37 + 1) & 0xff) | 1;
}

/*
 * A CPU's cache takes frames from the pool in batches with gaps between
 * runs of consecutive frames: each run is zeroed as one extent
 * (clear_pages()), and the frames in the gaps, still in use, keep every
 * byte. Frames are freed without a CPU (straight to the pool's stack),
 * in runs of 1 to 4 between gaps of 1 or 2, then taken back by a CPU.
 */
static void test_zero_runs(void **state)
{
	struct smm_pool *pool = smm_pool_create(8 * MB, 0);
	struct smm_cpu *cpu;
	pfn_t *held, *back;
	bool *freed;
	int n = 0, nfree = 0;

	assert_non_null(pool);
	held = calloc(pstats(pool).free + 1, sizeof(*held));
	back = calloc(pstats(pool).free + 1, sizeof(*back));
	freed = calloc(pstats(pool).free + 1, sizeof(*freed));
	while ((held[n] = alloc_frame(pool, PG_ANON)) != NO_PFN) {
		memset(pfn_to_virt(pool, held[n]), frame_mark(held[n]), PG);
		n++;
	}
	assert_true(n > 1000);
	for (int i = 0, k = 0; nfree < 300; k++) {
		int run = 1 + k % 4, gap = 1 + k % 2;

		assert_true(i + run + gap < n);
		for (int j = i; j < i + run; j++) {
			put_page(pool, held[j]);
			freed[j] = true;
			nfree++;
		}
		i += run + gap;
	}
	cpu = smm_cpu_attach(pool);
	assert_non_null(cpu);
	for (int i = 0; i < nfree; i++) {
		back[i] = alloc_frame(pool, PG_ANON);
		assert_true(back[i] != NO_PFN);
		assert_true(frame_is(pool, back[i], 0));
	}
	for (int i = 0; i < n; i++)
		if (!freed[i])
			assert_true(
				frame_is(pool, held[i], frame_mark(held[i])));
	for (int i = 0; i < nfree; i++)
		put_page(pool, back[i]);
	for (int i = 0; i < n; i++)
		if (!freed[i])
			put_page(pool, held[i]);
	assert_int_equal(pstats(pool).anon_pages, 0);
	assert_int_equal(smm_cpu_detach(cpu), 0);
	free(held);
	free(back);
	free(freed);
	assert_int_equal(smm_pool_destroy(pool), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_orders),
		cmocka_unit_test(test_split_and_exhaust),
		cmocka_unit_test(test_inject),
		cmocka_unit_test(test_random_mix),
		cmocka_unit_test(test_nozero),
		cmocka_unit_test(test_zero_runs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
