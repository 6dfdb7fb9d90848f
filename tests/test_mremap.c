/*
 * test_mremap.c - smm_mremap(): shrink, grow in place, move (data, page
 * tables, pins kept valid), MREMAP_FIXED and MREMAP_DONTUNMAP, Linux's
 * errno values, and fault injection (a failed move leaves the source as
 * it was).
 */
#include <pthread.h>
#include <stdatomic.h>
#include "common.h"

#define MAYMOVE	  SMM_MREMAP_MAYMOVE
#define FIXED	  SMM_MREMAP_FIXED
#define DONTUNMAP SMM_MREMAP_DONTUNMAP

static void fill(struct env *e, uint64_t a, size_t pages, int seed)
{
	for (size_t i = 0; i < pages; i++) {
		uint64_t v = (uint64_t)seed << 32 | i;

		assert_int_equal(smm_write(e->cpu, a + i * PG, &v, 8, NULL), 0);
	}
}

static void check(struct env *e, uint64_t a, size_t pages, int seed)
{
	for (size_t i = 0; i < pages; i++) {
		uint64_t v = 0;

		assert_int_equal(smm_read(e->cpu, a + i * PG, &v, 8, NULL), 0);
		assert_int_equal(v, (uint64_t)seed << 32 | i);
	}
}

static void test_shrink_grow(void **state)
{
	struct env *e = *state;
	struct smm_mm_stats st;

	assert_int_equal(smm_mmap(e->mm, TA, 8 * PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)TA);
	fill(e, TA, 8, 1);
	assert_int_equal(smm_mremap(e->mm, TA, 8 * PG, 4 * PG, 0, 0),
			 (int64_t)TA);
	smm_mm_stats(e->mm, &st);
	assert_int_equal(st.rss_anon, 4);
	assert_int_equal(smm_mremap(e->mm, TA, 4 * PG, 16 * PG, 0, 0),
			 (int64_t)TA); /* in place: nothing after */
	check(e, TA, 4, 1);
	uint64_t z = 1;
	assert_int_equal(smm_read(e->cpu, TA + 10 * PG, &z, 8, NULL), 0);
	assert_int_equal(z, 0);
	/* something in the way: -ENOMEM without MAYMOVE */
	assert_int_equal(smm_mmap(e->mm, TA + 16 * PG, PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)(TA + 16 * PG));
	assert_int_equal(smm_mremap(e->mm, TA, 16 * PG, 32 * PG, 0, 0),
			 -ENOMEM);
	assert_int_equal(smm_mm_verify(e->mm), 0);
}

static void test_move(void **state)
{
	struct env *e = *state;
	struct smm_page *pin;
	struct smm_mm_stats st;
	int64_t r;

	assert_int_equal(smm_mmap(e->mm, TA + 3 * PG, 600 * PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)(TA + 3 * PG));
	assert_int_equal(smm_mmap(e->mm, TA + 603 * PG, PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)(TA + 603 * PG));
	fill(e, TA + 3 * PG, 600, 2);
	assert_int_equal(smm_pin_user_pages(e->mm, TA + 5 * PG, 1,
					    SMM_FOLL_WRITE, &pin),
			 1);
	/* grow: cannot in place, moves */
	r = smm_mremap(e->mm, TA + 3 * PG, 600 * PG, 700 * PG, MAYMOVE, 0);
	assert_true(r > 0 && (uint64_t)r != TA + 3 * PG);
	check(e, (uint64_t)r, 600, 2);
	uint64_t v;
	assert_int_equal(smm_read(e->cpu, TA + 3 * PG, &v, 8, NULL), -EFAULT);
	/* the pin still reaches the page the new address maps */
	*(uint64_t *)smm_page_address(pin) = 0x77;
	assert_int_equal(smm_read(e->cpu, (uint64_t)r + 2 * PG, &v, 8, NULL),
			 0);
	assert_int_equal(v, 0x77);
	smm_unpin_user_pages(&pin, 1);
	smm_mm_stats(e->mm, &st);
	assert_int_equal(st.rss_anon, 600);
	assert_int_equal(smm_mm_verify(e->mm), 0);
	/* FIXED, aligned to 2 MiB: entries move, tables follow */
	assert_int_equal(smm_mremap(e->mm, (uint64_t)r, 700 * PG, 700 * PG,
				    MAYMOVE | FIXED, TA + 64 * MB),
			 (int64_t)(TA + 64 * MB));
	v = 0x77;
	assert_int_equal(smm_read(e->cpu, TA + 64 * MB + 2 * PG, &v, 8, NULL),
			 0);
	assert_int_equal(v, 0x77);
	assert_int_equal(smm_mm_verify(e->mm), 0);
	/* DONTUNMAP: the old range stays mapped, empty */
	r = smm_mremap(e->mm, TA + 64 * MB, 4 * PG, 4 * PG, MAYMOVE | DONTUNMAP,
		       0);
	assert_true(r > 0);
	check(e, (uint64_t)r, 1, 2);
	v = 1;
	assert_int_equal(smm_read(e->cpu, TA + 64 * MB, &v, 8, NULL), 0);
	assert_int_equal(v, 0);
	assert_int_equal(smm_mm_verify(e->mm), 0);
}

static void test_errors(void **state)
{
	struct env *e = *state;

	assert_int_equal(smm_mmap(e->mm, TA, 4 * PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)TA);
	assert_int_equal(smm_mremap(e->mm, TA, PG, PG, 8, 0), -EINVAL);
	assert_int_equal(smm_mremap(e->mm, TA + 1, PG, PG, 0, 0), -EINVAL);
	assert_int_equal(smm_mremap(e->mm, TA, PG, 0, 0, 0), -EINVAL);
	assert_int_equal(smm_mremap(e->mm, TA, PG, PG, FIXED, TA + GB),
			 -EINVAL);
	assert_int_equal(smm_mremap(e->mm, TA, PG, PG, MAYMOVE | FIXED,
				    TA + GB + 1),
			 -EINVAL);
	assert_int_equal(smm_mremap(e->mm, TA, PG, 2 * PG, MAYMOVE | DONTUNMAP,
				    0),
			 -EINVAL);
	assert_int_equal(smm_mremap(e->mm, TA, 2 * PG, 2 * PG, MAYMOVE | FIXED,
				    TA + PG),
			 -EINVAL); /* overlap */
	assert_int_equal(smm_mremap(e->mm, TA + GB, PG, PG, 0, 0), -EFAULT);
	/* Linux 6.17+: growing past the VMA's end is EFAULT, but a call
	 * that neither grows nor moves checks no span (measured). */
	assert_int_equal(smm_mremap(e->mm, TA, 8 * PG, 9 * PG, 0, 0), -EFAULT);
	assert_int_equal(smm_mremap(e->mm, TA, 8 * PG, 8 * PG, 0, 0),
			 (int64_t)TA);
	assert_int_equal(smm_mremap(e->mm, TA, 0, PG, MAYMOVE, 0), -EINVAL);
}

/*
 * mremap racing accesses from other CPUs. A mover ping-pongs a 4 MiB
 * range between A and B (2 MiB-aligned: its PTE tables move whole by
 * their PMD entries) and B' (one page off: entries move one by one), half
 * the time with DONTUNMAP (the old range stays, empty: no munmap, and its
 * flush, follows the move), with a seqcount around each call (odd while
 * it runs). Readers read random pages at the address the range left
 * last. A read there that returns a page's value while the count stayed
 * even and unchanged used a translation the move should have shot down
 * (the old range was unmapped, or empty, the whole time). A writer stores
 * counters into its pages at the range's address, and a pinner writes
 * through pins (GUP-fast and slow) and reads back (race_writer(),
 * race_pinner()). Every
 * successful read at either address must return the page's own value. A
 * page pinned before the race still reaches the range's page at the end.
 * An anchor page in the same 1 GiB keeps the PMD table, so no table is
 * freed at the source and nothing else flushes the TLBs for the move.
 */
#define RACE_PAGES 1024
struct race {
	struct smm_pool *pool;
	struct smm_mm *mm;
	_Atomic unsigned long seq;
	_Atomic uint64_t gone; /* where the range was before the last move */
	_Atomic uint64_t at;   /* where it is */
	_Atomic bool stop;
	_Atomic unsigned long stale, reads, hits;
	_Atomic unsigned long stores_certain, pins, pins_checked;
	unsigned int seed;
	/* the writer's pages (WPAGE(0..WPAGES-1)): the last counter stored
	 * with no move in flight, and the last one stored at all */
	uint64_t certain[64], attempted[64];
};

/*
 * The writer's pages: every other page from 130. A store the writer made
 * at an address the range has since left can land in the range one page
 * off (its base was B, the range moved on to B + PG, or the reverse): on
 * an odd page, never on the readers' 0..127 nor on another writer page.
 */
#define WPAGES	   63
#define WPAGE(k)   (130 + 2 * (uint64_t)(k))
#define TAG(i)	   (0x5eedULL << 32 | (i))
#define WTAG(j, n) (0xbeefULL << 48 | (uint64_t)(j) << 32 | (n))

static void *race_reader(void *arg)
{
	struct race *r = arg;
	struct smm_cpu *cpu = smm_cpu_attach(r->pool);
	unsigned int seed =
		__atomic_add_fetch(&r->seed, 7919, __ATOMIC_RELAXED);

	smm_cpu_switch_mm(cpu, r->mm);
	while (!atomic_load(&r->stop)) {
		unsigned long s1 = atomic_load(&r->seq), s2;
		/* a few pages, so that their TLB entries stay for the next
		 * move to leave behind; three reads in four where it left */
		uint64_t i = rand_r(&seed) % 128, v = ~0ULL;
		bool old = rand_r(&seed) % 4;
		uint64_t base = old ? atomic_load(&r->gone) :
				      atomic_load(&r->at);
		int err;

		if (s1 & 1)
			continue;
		err = smm_read(cpu, base + i * PG, &v, 8, NULL);
		s2 = atomic_load(&r->seq);
		atomic_fetch_add(&r->reads, 1);
		if (err)
			continue;
		atomic_fetch_add(&r->hits, 1);
		if (s1 != s2)
			continue; /* a move ran meanwhile: any page may be here */
		if (old) {
			/* only a DONTUNMAP's empty range, reading zeros */
			if (v)
				atomic_fetch_add(&r->stale, 1);
		} else if (v != TAG(i))
			fail_msg("page %lu at %#lx read %#lx", (unsigned long)i,
				 (unsigned long)base, (unsigned long)v);
	}
	smm_cpu_switch_mm(cpu, NULL);
	smm_cpu_detach(cpu);
	return NULL;
}

/*
 * The writer stores a counter into its pages (WPAGE()) at the range's
 * current address. A store made while no move was in flight went into the
 * range: the page must hold that counter or a later one at the end. One
 * made during a move may have gone to the range, to the range one page off
 * (WPAGE() says why that is harmless) or (DONTUNMAP) to the old, emptied
 * place, or faulted.
 */
static void *race_writer(void *arg)
{
	struct race *r = arg;
	struct smm_cpu *cpu = smm_cpu_attach(r->pool);
	uint64_t n = 0;

	smm_cpu_switch_mm(cpu, r->mm);
	while (!atomic_load(&r->stop)) {
		unsigned long s1 = atomic_load(&r->seq), s2;
		uint64_t k = n % WPAGES, j = WPAGE(k);
		uint64_t v = WTAG(j, n / WPAGES + 1);
		uint64_t base = atomic_load(&r->at);
		int err;

		if (s1 & 1)
			continue;
		r->attempted[k] = n / WPAGES + 1;
		err = smm_write(cpu, base + j * PG, &v, 8, NULL);
		s2 = atomic_load(&r->seq);
		if (!err && s1 == s2) {
			r->certain[k] = n / WPAGES + 1;
			atomic_fetch_add(&r->stores_certain, 1);
		}
		n++;
	}
	smm_cpu_switch_mm(cpu, NULL);
	smm_cpu_detach(cpu);
	return NULL;
}

/*
 * The pinner pins page 300 at the range's current address (GUP-fast, or
 * the slow path), writes through the pin as a device would, unpins, and
 * reads the page back at the current address: with no move in flight
 * from before the pin to after the read, the value must be there (a pin
 * of the wrong page, or one that a move left behind, would not show).
 */
static void *race_pinner(void *arg)
{
	struct race *r = arg;
	struct smm_cpu *cpu = smm_cpu_attach(r->pool);
	uint64_t n = 0;

	smm_cpu_switch_mm(cpu, r->mm);
	while (!atomic_load(&r->stop)) {
		unsigned long s1 = atomic_load(&r->seq), s2;
		uint64_t base = atomic_load(&r->at), v = 0;
		struct smm_page *pg;
		long got;

		if (s1 & 1)
			continue;
		n++;
		got = (n & 1) ? smm_pin_user_pages_fast(cpu, base + 300 * PG, 1,
							SMM_FOLL_WRITE, &pg) :
				smm_pin_user_pages(r->mm, base + 300 * PG, 1,
						   SMM_FOLL_WRITE, &pg);
		if (got != 1)
			continue;
		atomic_fetch_add(&r->pins, 1);
		*(volatile uint64_t *)smm_page_address(pg) = WTAG(300, n);
		smm_unpin_user_pages(&pg, 1);
		if (smm_read(cpu, base + 300 * PG, &v, 8, NULL))
			continue;
		s2 = atomic_load(&r->seq);
		if (s1 != s2)
			continue;
		atomic_fetch_add(&r->pins_checked, 1);
		if (v != WTAG(300, n))
			fail_msg("pinned write %#lx, read %#lx",
				 (unsigned long)n, (unsigned long)v);
	}
	smm_cpu_switch_mm(cpu, NULL);
	smm_cpu_detach(cpu);
	return NULL;
}

static void test_move_race(void **state)
{
	struct env *e = *state;
	const uint64_t len = RACE_PAGES * PG, A = TA + 2 * MB, B = TA + 64 * MB;
	struct race r = {
		.pool = e->pool, .mm = e->mm, .gone = TA + 256 * MB, .at = A
	};
	struct smm_page *pin;
	pthread_t t[4];
	uint64_t v, cur = A;

	assert_int_equal(smm_mmap(e->mm, A, len, RW, PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)A);
	for (uint64_t i = 0; i < RACE_PAGES; i++) {
		v = TAG(i);
		assert_int_equal(smm_write(e->cpu, A + i * PG, &v, 8, NULL), 0);
	}
	assert_int_equal(smm_mmap(e->mm, TA + 512 * MB, PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED | SMM_MAP_POPULATE),
			 (int64_t)(TA + 512 * MB));
	assert_int_equal(smm_pin_user_pages(e->mm, A + 7 * PG, 1,
					    SMM_FOLL_WRITE, &pin),
			 1);
	for (int k = 0; k < 2; k++)
		pthread_create(&t[k], NULL, race_reader, &r);
	pthread_create(&t[2], NULL, race_writer, &r);
	pthread_create(&t[3], NULL, race_pinner, &r);
	for (int it = 0; it < 3000; it++) {
		uint64_t to = cur == A ? ((it & 2) ? B + PG : B) : A;
		int flags = MAYMOVE | FIXED | ((it & 4) ? DONTUNMAP : 0);

		atomic_fetch_add(&r.seq, 1); /* odd: moving */
		assert_int_equal(smm_mremap(e->mm, cur, len, len, flags, to),
				 (int64_t)to);
		atomic_store(&r.gone, cur);
		atomic_store(&r.at, to);
		atomic_fetch_add(&r.seq, 1); /* even: the old range is gone */
		cur = to;
		for (volatile int spin = 0; spin < 20000; spin++)
			;
	}
	atomic_store(&r.stop, true);
	for (int k = 0; k < 4; k++)
		pthread_join(t[k], NULL);
	struct smm_mm_stats st;
	smm_mm_stats(e->mm, &st);
	print_message("move race: 3000 moves, %lu TLB flushes, %lu reads, "
		      "%lu hits, %lu stale\n",
		      (unsigned long)st.tlb_flushes, (unsigned long)r.reads,
		      (unsigned long)r.hits, (unsigned long)r.stale);
	print_message("move race: %lu certain stores, %lu pins (%lu checked)\n",
		      (unsigned long)r.stores_certain, (unsigned long)r.pins,
		      (unsigned long)r.pins_checked);
	assert_int_equal(r.stale, 0);
	assert_true(r.hits > 0 && r.stores_certain > 0 && r.pins_checked > 0);
	/* every store made with no move in flight is there, or a later one */
	for (uint64_t k = 0; k < WPAGES; k++) {
		uint64_t j = WPAGE(k), c = r.certain[k], a = r.attempted[k];

		assert_int_equal(smm_read(e->cpu, cur + j * PG, &v, 8, NULL),
				 0);
		if (!c)
			continue;
		if (v >> 32 != WTAG(j, 0) >> 32 || (v & 0xffffffff) < c ||
		    (v & 0xffffffff) > a)
			fail_msg("page %lu: %#lx, stored %lu..%lu",
				 (unsigned long)j, (unsigned long)v,
				 (unsigned long)c, (unsigned long)a);
	}
	/* the pin reaches the page now at cur + 7 pages */
	*(uint64_t *)smm_page_address(pin) = 0x77;
	assert_int_equal(smm_read(e->cpu, cur + 7 * PG, &v, 8, NULL), 0);
	assert_int_equal(v, 0x77);
	smm_unpin_user_pages(&pin, 1);
	assert_int_equal(smm_mm_verify(e->mm), 0);
}

/* Each allocation of a move fails in turn: -ENOMEM, source intact. */
static void test_fault_injection(void **state)
{
	struct env *e = *state;

	assert_int_equal(smm_mmap(e->mm, TA, 64 * PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)TA);
	fill(e, TA, 64, 3);
	for (unsigned long n = 1; n < 30; n++) {
		int64_t r;

		smm_pool_inject_failure(e->pool, n);
		r = smm_mremap(e->mm, TA, 64 * PG, 64 * PG, MAYMOVE | FIXED,
			       TA + 8 * GB);
		smm_pool_inject_failure(e->pool, 0);
		assert_int_equal(smm_mm_verify(e->mm), 0);
		if (r < 0) {
			assert_int_equal(r, -ENOMEM);
			check(e, TA, 64, 3);
			continue;
		}
		check(e, TA + 8 * GB, 64, 3);
		assert_int_equal(smm_mremap(e->mm, TA + 8 * GB, 64 * PG,
					    64 * PG, MAYMOVE | FIXED, TA),
				 (int64_t)TA);
	}
}

/*
 * The same for moves of whole tables: 4 MiB at a 2 MiB boundary, moved by
 * PMD entries into a new 1 GiB slot (its PUD and PMD tables allocated),
 * then back with one page of skew, entry by entry into new tables. Each
 * allocation fails in turn; a failure leaves the source as it was.
 */
static void test_fault_injection_tables(void **state)
{
	struct env *e = *state;
	const uint64_t n = 1024, src = TA + 2 * MB, dst = TA + 8 * GB + 2 * MB;
	const uint64_t skewed = TA + 16 * GB + 2 * MB + PG;
	uint64_t cur = src;
	int fails = 0, moves = 0;

	assert_int_equal(smm_mmap(e->mm, src, n * PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)src);
	fill(e, src, n, 4);
	for (unsigned long k = 1; k < 48; k++) {
		uint64_t to = cur != dst ? dst : (k & 2) ? skewed : src;
		int64_t r;

		smm_pool_inject_failure(e->pool, (k + 1) / 2);
		r = smm_mremap(e->mm, cur, n * PG, n * PG, MAYMOVE | FIXED, to);
		smm_pool_inject_failure(e->pool, 0);
		assert_int_equal(smm_mm_verify(e->mm), 0);
		if (r < 0) {
			assert_int_equal(r, -ENOMEM);
			check(e, cur, n, 4);
			fails++;
			continue;
		}
		assert_int_equal(r, (int64_t)to);
		check(e, to, n, 4);
		cur = to;
		moves++;
	}
	print_message("table moves under injection: %d failed, %d done\n",
		      fails, moves);
	assert_true(fails > 0 && moves > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_shrink_grow, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_move, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_errors, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_fault_injection, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_move_race, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_fault_injection_tables,
						env_setup, env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
