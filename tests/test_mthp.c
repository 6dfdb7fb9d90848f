/*
 * test_mthp.c - multi-size THP for anonymous memory (smm_pool_set_mthp(),
 * memory.c's do_anonymous_block()): which block a write fault maps (the
 * VMA's edges, partly populated blocks, the PMD-table edge, NOHUGEPAGE),
 * that a block is independent pages afterwards (fork and copy-on-write,
 * partial munmap, DONTNEED, mprotect), allocation failures, and faults
 * racing on the same blocks. Each test's environment is common.h's: a
 * poisoned pool, the scheme of $SMM_TEST_SCHEME, a leak check at the end.
 */
#include <pthread.h>
#include "common.h"

#define K64 (64 * KB)
#define ALL (SMM_MTHP_16K | SMM_MTHP_32K | SMM_MTHP_64K)

/* Which pages of [a, a + npages pages) are resident, as a string of '#'
 * and '.', for messages and comparisons. */
static const char *residency(struct smm_mm *mm, uint64_t a, unsigned npages)
{
	static char s[257];
	unsigned char v[256];

	assert_true(npages < sizeof(s));
	assert_int_equal(smm_mincore(mm, a, npages * PG, v), 0);
	for (unsigned i = 0; i < npages; i++)
		s[i] = v[i] ? '#' : '.';
	s[npages] = 0;
	return s;
}

#define expect_resident(mm, a, want)                                        \
	do {                                                                \
		const char *got_ = residency(mm, a, strlen(want));          \
		if (strcmp(got_, want))                                     \
			fprintf(stderr, "resident at %#llx: %s, want %s\n", \
				(unsigned long long)(a), got_, want);       \
		assert_string_equal(got_, want);                            \
	} while (0)

static void verify(struct smm_mm *mm)
{
	assert_int_equal(smm_mm_verify(mm), 0);
}

static void test_api(void **state)
{
	struct env *e = *state;

	assert_int_equal(smm_pool_set_mthp(NULL, SMM_MTHP_64K), -EINVAL);
	assert_int_equal(smm_pool_set_mthp(e->pool, 1U << 0), -EINVAL);
	assert_int_equal(smm_pool_set_mthp(e->pool, 1U << 1), -EINVAL);
	assert_int_equal(smm_pool_set_mthp(e->pool, 1U << 5), -EINVAL);
	assert_int_equal(smm_pool_set_mthp(e->pool, 1U << 9), -EINVAL);
	assert_int_equal(smm_pool_set_mthp(e->pool, ALL), 0);
	assert_int_equal(smm_pool_set_mthp(e->pool, 0), 0);
	/* Off: one page per fault, as before. */
	map_at(e->mm, TA, 1 * MB, RW);
	wr8(e->cpu, TA + 0x5000, 1);
	assert_int_equal(mm_stats(e->mm).rss_anon, 1);
}

/* A write maps the aligned 64 KiB around it; its other pages fault no
 * more; a read still maps the zero page. */
static void test_first_touch(void **state)
{
	struct env *e = *state;
	struct smm_mm_stats st;

	assert_int_equal(smm_pool_set_mthp(e->pool, SMM_MTHP_64K), 0);
	map_at(e->mm, TA, 1 * MB, RW);
	wr8(e->cpu, TA + K64 + 0x5123, 0x5a);
	expect_resident(e->mm, TA,
			"................"
			"################"
			"................");
	st = mm_stats(e->mm);
	assert_int_equal(st.rss_anon, 16);
	assert_int_equal(pool_stats(e->pool).anon_pages, 16);
	assert_int_equal(rd8(e->cpu, TA + K64 + 0x5123), 0x5a);
	check_zero(e->cpu, TA + K64, 0x5123);
	check_zero(e->cpu, TA + K64 + 0x5124, K64 - 0x5124);
	write_pat(e->cpu, TA + K64, K64, 1);
	assert_int_equal(mm_stats(e->mm).faults, st.faults);
	check_pat(e->cpu, TA + K64, K64, 1);
	/* A read of untouched memory: the zero page, one entry. */
	assert_int_equal(rd8(e->cpu, TA + 3 * K64), 0);
	assert_int_equal(mm_stats(e->mm).zero_ptes, 1);
	assert_int_equal(mm_stats(e->mm).rss_anon, 16);
	verify(e->mm);
}

/* Blocks that would cross the VMA's start or end fall back to smaller
 * sizes, then to one page. */
static void test_vma_edges(void **state)
{
	struct env *e = *state;

	assert_int_equal(smm_pool_set_mthp(e->pool, ALL), 0);
	map_at(e->mm, TA + 0x3000, 0x20000, RW); /* [0x3000, 0x23000) */
	/* 64 KiB and 32 KiB would start below the VMA; 16 KiB fits. */
	wr8(e->cpu, TA + 0x5000, 1);
	expect_resident(e->mm, TA + 0x3000, ".####...");
	/* Wholly inside: 64 KiB. */
	wr8(e->cpu, TA + 0x12000, 2);
	expect_resident(e->mm, TA + 0x10000, "################");
	/* [0x20000, 0x23000): every block would pass the end. */
	wr8(e->cpu, TA + 0x21000, 3);
	expect_resident(e->mm, TA + 0x20000, ".#.");
	/* Below 0x4000: 0x3000 alone. */
	wr8(e->cpu, TA + 0x3000, 4);
	expect_resident(e->mm, TA + 0x3000, "#####...");
	assert_int_equal(mm_stats(e->mm).rss_anon, 4 + 1 + 16 + 1);
	assert_int_equal(rd8(e->cpu, TA + 0x5000), 1);
	assert_int_equal(rd8(e->cpu, TA + 0x12000), 2);
	assert_int_equal(rd8(e->cpu, TA + 0x21000), 3);
	assert_int_equal(rd8(e->cpu, TA + 0x3000), 4);
	verify(e->mm);

	/* Only 64 KiB enabled: no block fits at the edge, one page. */
	assert_int_equal(smm_pool_set_mthp(e->pool, SMM_MTHP_64K), 0);
	wr8(e->cpu, TA + 0xa000, 5);
	expect_resident(e->mm, TA + 0x8000, "..#.....");
	verify(e->mm);
}

/* A block with any entry present (a page, the zero page) is not mapped:
 * a smaller block with all entries none is, or one page. */
static void test_partly_populated(void **state)
{
	struct env *e = *state;

	map_at(e->mm, TA, 1 * MB, RW);
	/* Off: one page, and a zero-page entry, in the first block. */
	wr8(e->cpu, TA + 0x9000, 1);
	assert_int_equal(rd8(e->cpu, TA + 0xd000), 0);
	assert_int_equal(smm_pool_set_mthp(e->pool, SMM_MTHP_64K), 0);
	wr8(e->cpu, TA + 0x1000, 2);
	expect_resident(e->mm, TA, ".#.......#...#..");
	assert_int_equal(smm_pool_set_mthp(e->pool, ALL), 0);
	/* 64 and 32 KiB hold the page at 0x1000; 16 KiB at 0x4000 is free. */
	wr8(e->cpu, TA + 0x6000, 3);
	expect_resident(e->mm, TA, ".#..####.#...#..");
	/* 16 KiB at 0 holds 0x1000 too: one page. */
	wr8(e->cpu, TA + 0x2000, 4);
	expect_resident(e->mm, TA, ".##.####.#...#..");
	/* The zero page's entry: the write copies it, one page. */
	wr8(e->cpu, TA + 0xd000, 5);
	expect_resident(e->mm, TA, ".##.####.#...#..");
	assert_int_equal(mm_stats(e->mm).zero_ptes, 0);
	assert_int_equal(mm_stats(e->mm).rss_anon, 1 + 1 + 4 + 1 + 1);
	assert_int_equal(rd8(e->cpu, TA + 0x1000), 2);
	assert_int_equal(rd8(e->cpu, TA + 0x9000), 1);
	assert_int_equal(rd8(e->cpu, TA + 0x6000), 3);
	assert_int_equal(rd8(e->cpu, TA + 0x4000), 0);
	assert_int_equal(rd8(e->cpu, TA + 0x2000), 4);
	assert_int_equal(rd8(e->cpu, TA + 0xd000), 5);
	verify(e->mm);
}

/* Blocks end at a PMD-table (2 MiB) boundary and start after it, each in
 * its own PTE table. */
static void test_pmd_edge(void **state)
{
	struct env *e = *state;
	const uint64_t edge = TA + 2 * MB;

	assert_int_equal(smm_pool_set_mthp(e->pool, ALL), 0);
	map_at(e->mm, edge - 0x8000, 0x10000, RW);
	wr8(e->cpu, edge - 0x1000, 1);
	wr8(e->cpu, edge, 2);
	expect_resident(e->mm, edge - 0x8000, "################");
	assert_int_equal(mm_stats(e->mm).rss_anon, 16);
	assert_int_equal(mm_stats(e->mm).pte_bytes, 2 * PG);
	/* 64 KiB starting at the edge: fits. */
	map_at(e->mm, edge + 0x8000, 0x18000, RW);
	wr8(e->cpu, edge + 0x10000, 3);
	expect_resident(e->mm, edge + 0x10000, "################");
	verify(e->mm);
}

/* NOHUGEPAGE and MAP_STACK VMAs get one page per fault. */
static void test_nohugepage(void **state)
{
	struct env *e = *state;
	int64_t s;

	assert_int_equal(smm_pool_set_mthp(e->pool, ALL), 0);
	map_at(e->mm, TA, 1 * MB, RW);
	assert_int_equal(smm_madvise(e->mm, TA, 1 * MB, SMM_MADV_NOHUGEPAGE),
			 0);
	wr8(e->cpu, TA + 0x3000, 1);
	expect_resident(e->mm, TA, "...#............");
	s = smm_mmap(e->mm, TA + 4 * MB, 1 * MB, RW,
		     PRIV_ANON | SMM_MAP_FIXED | SMM_MAP_STACK);
	assert_int_equal(s, (int64_t)(TA + 4 * MB));
	wr8(e->cpu, TA + 4 * MB + 0x3000, 1);
	expect_resident(e->mm, TA + 4 * MB, "...#............");
	/* MADV_HUGEPAGE again: blocks. */
	assert_int_equal(smm_madvise(e->mm, TA, 1 * MB, SMM_MADV_HUGEPAGE), 0);
	wr8(e->cpu, TA + 0x13000, 1);
	expect_resident(e->mm, TA + 0x10000, "################");
	verify(e->mm);
}

/* Counters go back to zero and the pool gets every frame back. */
static void test_counts_after_destroy(void **state)
{
	struct env *e = *state;

	assert_int_equal(smm_pool_set_mthp(e->pool, ALL), 0);
	map_at(e->mm, TA + 0x3000, 3 * MB, RW);
	for (uint64_t a = TA + 0x3000; a < TA + 3 * MB; a += 0x7000)
		wr8(e->cpu, a, (uint8_t)a);
	assert_int_equal(mm_stats(e->mm).rss_anon,
			 pool_stats(e->pool).anon_pages);
	assert_true(mm_stats(e->mm).rss_anon > 3 * MB / PG / 2);
	verify(e->mm);
	assert_int_equal(smm_munmap(e->mm, TA, 4 * MB), 0);
	assert_int_equal(mm_stats(e->mm).rss_anon, 0);
	assert_int_equal(pool_stats(e->pool).anon_pages, 0);
	map_at(e->mm, TA, 1 * MB, RW);
	write_pat(e->cpu, TA, 1 * MB, 3);
	/* the teardown checks that the pool is clean after the destroy */
}

/* After fork each page of a block is shared and copied on its own. */
static void test_fork_cow(void **state)
{
	struct env *e = *state;
	struct smm_mm *child;

	assert_int_equal(smm_pool_set_mthp(e->pool, SMM_MTHP_64K), 0);
	map_at(e->mm, TA, 4 * K64, RW);
	write_pat(e->cpu, TA, 2 * K64, 1);
	assert_int_equal(mm_stats(e->mm).rss_anon, 32);
	child = smm_fork(e->mm);
	assert_non_null(child);
	assert_int_equal(pool_stats(e->pool).anon_pages, 32);
	/* The parent's store copies one page, not the block. */
	wr8(e->cpu, TA + 0x3000, 0xaa);
	assert_int_equal(pool_stats(e->pool).anon_pages, 33);
	/* A fresh block in the parent, none in the child. */
	wr8(e->cpu, TA + 3 * K64, 0xbb);
	assert_int_equal(mm_stats(e->mm).rss_anon, 48);
	assert_int_equal(smm_cpu_switch_mm(e->cpu, child), 0);
	check_pat(e->cpu, TA, 2 * K64, 1);
	assert_int_equal(rd8(e->cpu, TA + 3 * K64), 0);
	assert_int_equal(mm_stats(child).rss_anon, 32);
	/* The child's store to a shared page copies it: one page. */
	wr8(e->cpu, TA + K64 + 0x1000, 0xcc);
	/* A store where the child has nothing: a block of its own. */
	wr8(e->cpu, TA + 2 * K64 + 0x1000, 0xdd);
	assert_int_equal(mm_stats(child).rss_anon, 48);
	verify(child);
	assert_int_equal(smm_cpu_switch_mm(e->cpu, e->mm), 0);
	assert_int_equal(rd8(e->cpu, TA + 0x3000), 0xaa);
	assert_int_equal(rd8(e->cpu, TA + K64 + 0x1000),
			 pat(TA + K64 + 0x1000, 1));
	assert_int_equal(rd8(e->cpu, TA + 2 * K64 + 0x1000), 0);
	verify(e->mm);
	smm_mm_destroy(child);
	verify(e->mm);
	assert_int_equal(pool_stats(e->pool).anon_pages,
			 mm_stats(e->mm).rss_anon);
}

/* munmap, MADV_DONTNEED and mprotect of part of a block. */
static void test_part_of_block(void **state)
{
	struct env *e = *state;

	assert_int_equal(smm_pool_set_mthp(e->pool, ALL), 0);
	map_at(e->mm, TA, 4 * K64, RW);
	write_pat(e->cpu, TA, 4 * K64, 7);
	assert_int_equal(mm_stats(e->mm).rss_anon, 64);
	/* munmap of 4 pages in the middle of the first block */
	assert_int_equal(smm_munmap(e->mm, TA + 0x6000, 0x4000), 0);
	assert_int_equal(mm_stats(e->mm).rss_anon, 60);
	check_pat(e->cpu, TA, 0x6000, 7);
	check_pat(e->cpu, TA + 0xa000, 4 * K64 - 0xa000, 7);
	verify(e->mm);
	/* DONTNEED of two pages of the second block: refaults are single
	 * pages (the 16 KiB around them is not empty) */
	assert_int_equal(smm_madvise(e->mm, TA + K64 + 0x1000, 0x2000,
				     SMM_MADV_DONTNEED),
			 0);
	assert_int_equal(mm_stats(e->mm).rss_anon, 58);
	wr8(e->cpu, TA + K64 + 0x1000, 1);
	assert_int_equal(mm_stats(e->mm).rss_anon, 59);
	assert_int_equal(rd8(e->cpu, TA + K64 + 0x2000), 0); /* zero page */
	/* DONTNEED of an aligned 16 KiB: it refaults as a block */
	assert_int_equal(smm_madvise(e->mm, TA + K64 + 0x8000, 0x4000,
				     SMM_MADV_DONTNEED),
			 0);
	wr8(e->cpu, TA + K64 + 0x9000, 2);
	expect_resident(e->mm, TA + K64 + 0x8000, "####");
	assert_int_equal(rd8(e->cpu, TA + K64 + 0x8000), 0);
	assert_int_equal(mm_stats(e->mm).rss_anon, 59);
	verify(e->mm);
	/* mprotect of 3 pages of the third block: those refuse stores, the
	 * rest of the block does not */
	assert_int_equal(smm_mprotect(e->mm, TA + 2 * K64 + 0x2000, 0x3000, RO),
			 0);
	expect_write_fault(e->cpu, TA + 2 * K64 + 0x3000, 1, -EFAULT,
			   TA + 2 * K64 + 0x3000);
	wr8(e->cpu, TA + 2 * K64 + 0x1000, 3);
	wr8(e->cpu, TA + 2 * K64 + 0x5000, 4);
	check_pat(e->cpu, TA + 2 * K64 + 0x2000, 0x3000, 7);
	assert_int_equal(smm_mprotect(e->mm, TA + 2 * K64 + 0x2000, 0x3000, RW),
			 0);
	wr8(e->cpu, TA + 2 * K64 + 0x3000, 5);
	assert_int_equal(rd8(e->cpu, TA + 2 * K64 + 0x3000), 5);
	assert_int_equal(mm_stats(e->mm).rss_anon, 59);
	verify(e->mm);
}

/* A block's pages pinned through GUP are ordinary pages. */
static void test_gup(void **state)
{
	struct env *e = *state;
	struct smm_page *pages[16];

	assert_int_equal(smm_pool_set_mthp(e->pool, SMM_MTHP_64K), 0);
	map_at(e->mm, TA, 2 * K64, RW);
	/* slow GUP faults the block in */
	assert_int_equal(smm_pin_user_pages(e->mm, TA + K64 + 0x4000, 4,
					    SMM_FOLL_WRITE, pages),
			 4);
	assert_int_equal(mm_stats(e->mm).rss_anon, 16);
	memset(smm_page_address(pages[1]), 0x42, PG);
	assert_int_equal(smm_munmap(e->mm, TA + K64, K64), 0);
	assert_int_equal(mm_stats(e->mm).rss_anon, 0);
	/* the pinned pages stay until unpinned, the others are gone */
	assert_int_equal(pool_stats(e->pool).anon_pages, 4);
	assert_int_equal(((uint8_t *)smm_page_address(pages[1]))[7], 0x42);
	smm_unpin_user_pages(pages, 4);
	assert_int_equal(pool_stats(e->pool).anon_pages, 0);
}

/* When the block's pages cannot all be had, one page is mapped, with no
 * error; when not even one can, -ENOMEM and nothing changed. */
static void test_alloc_failure(void **state)
{
	struct env *e = *state;
	struct smm_pool_stats ps;
	uint64_t a;

	map_at(e->mm, TA, 1 * MB, RW);
	/* Tables and the anon_vma first: injected failures hit frames. */
	wr8(e->cpu, TA + 1 * MB - PG, 1);
	assert_int_equal(smm_pool_set_mthp(e->pool, SMM_MTHP_64K), 0);
	/* the block's first frame fails: one page */
	smm_pool_inject_failure(e->pool, 1);
	wr8(e->cpu, TA + 0x2000, 1);
	expect_resident(e->mm, TA, "..#.............");
	/* its sixth: the five taken go back, one page */
	smm_pool_inject_failure(e->pool, 6);
	wr8(e->cpu, TA + K64 + 0x2000, 2);
	expect_resident(e->mm, TA + K64, "..#.............");
	assert_int_equal(pool_stats(e->pool).anon_pages, 3);
	smm_pool_inject_failure(e->pool, 0);
	verify(e->mm);

	/* A pool of 128 frames, nearly used up, then used up. */
	smm_cpu_switch_mm(e->cpu, NULL);
	smm_mm_destroy(e->mm);
	smm_cpu_detach(e->cpu);
	assert_int_equal(smm_pool_destroy(e->pool), 0);
	e->pool = smm_pool_create(128 * PG, 0);
	assert_non_null(e->pool);
	e->mm = new_mm(e->pool, 0);
	e->cpu = smm_cpu_attach(e->pool);
	assert_non_null(e->cpu);
	assert_int_equal(smm_cpu_switch_mm(e->cpu, e->mm), 0);
	map_at(e->mm, TA, 2 * MB, RW);
	for (a = TA + 2 * MB - PG;; a -= PG) {
		smm_pool_stats(e->pool, &ps);
		if (ps.free < 10)
			break;
		wr8(e->cpu, a, 9);
	}
	assert_int_equal(smm_pool_set_mthp(e->pool, SMM_MTHP_64K), 0);
	wr8(e->cpu, TA + 0x3000, 3);
	expect_resident(e->mm, TA, "...#............");
	for (a = TA + K64;; a += PG) {
		uint64_t before = mm_stats(e->mm).rss_anon, fa = 0;
		uint8_t v = 4;
		int r = smm_write(e->cpu, a, &v, 1, &fa);

		if (r) {
			assert_int_equal(r, -ENOMEM);
			assert_int_equal(fa, a);
			assert_int_equal(mm_stats(e->mm).rss_anon, before);
			assert_int_equal(resident(e->mm, a, PG), 0);
			break;
		}
	}
	assert_int_equal(rd8(e->cpu, TA + 0x3000), 3);
	assert_int_equal(rd8(e->cpu, TA + 2 * MB - PG), 9);
	assert_int_equal(mm_stats(e->mm).rss_anon,
			 pool_stats(e->pool).anon_pages);
	verify(e->mm);
}

/* Threads store into the same blocks at once, in different orders: each
 * page must be mapped exactly once and hold every thread's bytes. */
#define RACE_THREADS 4
#define RACE_LEN     (2 * MB)
struct race {
	struct env *e;
	pthread_barrier_t *bar;
	int idx;
	uint64_t base;
};

static void *race_thread(void *arg)
{
	struct race *r = arg;
	struct smm_cpu *cpu = smm_cpu_attach(r->e->pool);
	const uint64_t npages = RACE_LEN / PG;

	assert_non_null(cpu);
	assert_int_equal(smm_cpu_switch_mm(cpu, r->e->mm), 0);
	pthread_barrier_wait(r->bar);
	for (uint64_t i = 0; i < npages; i++) {
		/* thread k walks the pages with its own stride */
		uint64_t p =
			(i * (2 * (uint64_t)r->idx + 1) + r->idx * 37) % npages;
		uint8_t v = (uint8_t)(0x10 + r->idx);

		assert_int_equal(smm_write(cpu, r->base + p * PG + r->idx * 8,
					   &v, 1, NULL),
				 0);
	}
	smm_cpu_switch_mm(cpu, NULL);
	smm_cpu_detach(cpu);
	return NULL;
}

static void test_race(void **state)
{
	struct env *e = *state;
	pthread_t tid[RACE_THREADS];
	struct race r[RACE_THREADS];
	pthread_barrier_t bar;

	assert_int_equal(smm_pool_set_mthp(e->pool, ALL), 0);
	for (int round = 0; round < 4; round++) {
		/* unaligned VMAs in odd rounds: edges fall back */
		uint64_t base = TA + (round & 1 ? 0x5000 : 0);

		map_at(e->mm, base, RACE_LEN, RW);
		pthread_barrier_init(&bar, NULL, RACE_THREADS);
		for (int i = 0; i < RACE_THREADS; i++) {
			r[i] = (struct race){ e, &bar, i, base };
			assert_int_equal(pthread_create(&tid[i], NULL,
							race_thread, &r[i]),
					 0);
		}
		for (int i = 0; i < RACE_THREADS; i++)
			pthread_join(tid[i], NULL);
		pthread_barrier_destroy(&bar);
		assert_int_equal(mm_stats(e->mm).rss_anon, RACE_LEN / PG);
		assert_int_equal(pool_stats(e->pool).anon_pages, RACE_LEN / PG);
		verify(e->mm);
		for (uint64_t p = 0; p < RACE_LEN / PG; p++) {
			uint8_t buf[RACE_THREADS * 8];

			assert_int_equal(smm_read(e->cpu, base + p * PG, buf,
						  sizeof(buf), NULL),
					 0);
			for (int i = 0; i < RACE_THREADS; i++)
				assert_int_equal(buf[i * 8], 0x10 + i);
		}
		assert_int_equal(smm_munmap(e->mm, base, RACE_LEN), 0);
	}
}

#define T(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_api),
		T(test_first_touch),
		T(test_vma_edges),
		T(test_partly_populated),
		T(test_pmd_edge),
		T(test_nohugepage),
		T(test_counts_after_destroy),
		T(test_fork_cow),
		T(test_part_of_block),
		T(test_gup),
		T(test_alloc_failure),
		T(test_race),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
