/*
 * test_pool.c - the frame pool: creation and its bad arguments, sizes and
 * counters, -EBUSY while address spaces or CPUs use it, exhaustion of a tiny
 * pool (faults return -ENOMEM with the exact address, nothing crashes, the
 * memory comes back after munmap and destroy), recycled frames reading as
 * zeros, and failure injection with smm_pool_inject_failure.
 */
#include "common.h"

static void test_create_bad_args(void **state)
{
	errno = 0;
	assert_null(smm_pool_create(15 * PG, 0));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(smm_pool_create(16 * PG - 1, 0)); /* rounds down to 15 */
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(smm_pool_create(1, 0));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(smm_pool_create(64 * PG, 0x2));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(smm_pool_create(64 * PG, 0x80000000u));
	assert_int_equal(errno, EINVAL);
}

static void test_create_sizes(void **state)
{
	struct smm_pool *p = smm_pool_create(16 * PG, 0);
	assert_non_null(p);
	struct smm_pool_stats st = pool_stats(p);
	assert_int_equal(st.frames, 16);
	assert_int_equal(st.free, 15); /* the zero page is never free */
	assert_int_equal(st.anon_pages, 0);
	assert_int_equal(st.pt_pages, 0);
	assert_int_equal(smm_pool_destroy(p), 0);

	p = smm_pool_create(16 * PG + PG - 1, SMM_POOL_POISON);
	assert_non_null(p);
	st = pool_stats(p);
	assert_int_equal(st.frames, 16);
	assert_int_equal(st.free, 15);
	assert_int_equal(smm_pool_destroy(p), 0);

	p = smm_pool_create(0, 0);
	assert_non_null(p);
	st = pool_stats(p);
	assert_int_equal(st.frames, (1ULL << 30) / PG);
	assert_int_equal(st.free, (1ULL << 30) / PG - 1);
	assert_int_equal(smm_pool_destroy(p), 0);

	p = smm_pool_create(3 * MB + 5, 0);
	assert_non_null(p);
	st = pool_stats(p);
	assert_int_equal(st.frames, 3 * MB / PG);
	assert_int_equal(smm_pool_destroy(p), 0);
}

static void test_stats_track_usage(void **state)
{
	struct smm_pool *p = smm_pool_create(4 * MB, 0);
	assert_non_null(p);
	struct smm_pool_stats st0 = pool_stats(p);
	struct smm_mm *mm = new_mm(p, 0);
	struct smm_pool_stats st = pool_stats(p);
	/* the PGD is a page-table frame of the pool, not counted in VmPTE */
	assert_int_equal(st.pt_pages, 1);
	assert_int_equal(mm_stats(mm).pt_bytes, 0);
	assert_int_equal(st.anon_pages, 0);

	struct smm_cpu *cpu = smm_cpu_attach(p);
	assert_non_null(cpu);
	smm_cpu_switch_mm(cpu, mm);
	map_at(mm, TA, 1 * MB, RW);
	write_pat(cpu, TA, 10 * PG, 1);
	st = pool_stats(p);
	assert_int_equal(st.anon_pages, 10);
	assert_int_equal(st.pt_pages, 4); /* PGD, PUD, PMD, PTE */
	assert_int_equal(st.frames, 1 + st.free + st.anon_pages + st.pt_pages);
	/* a read of an untouched page maps the zero page: no frame */
	rd8(cpu, TA + 20 * PG);
	st = pool_stats(p);
	assert_int_equal(st.anon_pages, 10);
	assert_int_equal(st.frames, 1 + st.free + st.anon_pages + st.pt_pages);

	assert_int_equal(smm_munmap(mm, TA, 1 * MB), 0);
	st = pool_stats(p);
	assert_int_equal(st.anon_pages, 0);
	smm_cpu_switch_mm(cpu, NULL);
	smm_mm_destroy(mm);
	assert_pool_clean(p);
	st = pool_stats(p);
	assert_int_equal(st.free, st0.free);
	smm_cpu_detach(cpu);
	assert_int_equal(smm_pool_destroy(p), 0);
}

static void test_destroy_busy(void **state)
{
	struct smm_pool *p = smm_pool_create(4 * MB, 0);
	assert_non_null(p);
	struct smm_mm *mm = new_mm(p, 0);
	assert_int_equal(smm_pool_destroy(p), -EBUSY);
	/* still usable after the refusal */
	struct smm_cpu *cpu = smm_cpu_attach(p);
	assert_non_null(cpu);
	smm_cpu_switch_mm(cpu, mm);
	map_at(mm, TA, 4 * PG, RW);
	write_pat(cpu, TA, 4 * PG, 2);
	assert_int_equal(smm_pool_destroy(p), -EBUSY);
	check_pat(cpu, TA, 4 * PG, 2);
	smm_cpu_switch_mm(cpu, NULL);
	smm_mm_destroy(mm);
	/* a CPU still attached keeps the pool busy */
	assert_int_equal(smm_pool_destroy(p), -EBUSY);
	assert_pool_clean(p);
	smm_cpu_detach(cpu);
	assert_int_equal(smm_pool_destroy(p), 0);

	/* a second address space keeps it busy too */
	p = smm_pool_create(4 * MB, 0);
	assert_non_null(p);
	struct smm_mm *a = new_mm(p, 0), *b = new_mm(p, 0);
	smm_mm_destroy(a);
	assert_int_equal(smm_pool_destroy(p), -EBUSY);
	smm_mm_destroy(b);
	assert_pool_clean(p);
	assert_int_equal(smm_pool_destroy(p), 0);
}

/* Write page after page of a tiny pool until it runs out. */
static void test_exhaustion(void **state)
{
	struct smm_pool *p = smm_pool_create(16 * PG, SMM_POOL_POISON);
	assert_non_null(p);
	struct smm_pool_stats st0 = pool_stats(p);
	struct smm_mm *mm = new_mm(p, 0);
	struct smm_cpu *cpu = smm_cpu_attach(p);
	assert_non_null(cpu);
	smm_cpu_switch_mm(cpu, mm);
	map_at(mm, TA, 64 * PG, RW);

	uint64_t i, fa = 0;
	int r = 0;
	for (i = 0; i < 64; i++) {
		uint8_t b[16];
		memset(b, (int)i + 1, sizeof(b));
		/* straddle into the page from the previous one */
		uint64_t a = TA + i * PG;
		r = smm_write(cpu, a, b, sizeof(b), &fa);
		if (r)
			break;
	}
	/* 15 free frames: PGD, PUD, PMD and PTE take 4, leaving 11 pages */
	assert_int_equal(r, -ENOMEM);
	assert_int_equal(fa, TA + i * PG);
	assert_int_equal(i, 11);
	struct smm_mm_stats ms = mm_stats(mm);
	assert_int_equal(ms.rss_anon, 11);
	/* still -ENOMEM, not a crash, when retried, and for a straddling write */
	assert_int_equal(smm_fill(cpu, TA + i * PG, 1, 1, &fa), -ENOMEM);
	assert_int_equal(fa, TA + i * PG);
	assert_int_equal(smm_fill(cpu, TA + i * PG - 8, 0x44, 16, &fa),
			 -ENOMEM);
	assert_int_equal(fa, TA + i * PG);
	assert_int_equal(rd8(cpu, TA + i * PG - 1), 0x44);
	/* reads still work: written data, and zero pages need no frame */
	for (uint64_t j = 0; j < i; j++)
		assert_int_equal(rd8(cpu, TA + j * PG), j + 1);
	assert_int_equal(rd8(cpu, TA + 40 * PG), 0);
	/* MAP_POPULATE ignores the failure */
	int64_t m = smm_mmap(mm, TA + 1 * MB, 8 * PG, RW,
			     PRIV_ANON | SMM_MAP_FIXED | SMM_MAP_POPULATE);
	assert_int_equal(m, (int64_t)(TA + 1 * MB));
	/* a new address space cannot get its PGD */
	errno = 0;
	struct smm_mm_opts o = { .scheme = test_scheme() };
	assert_null(smm_mm_create(p, &o));
	assert_int_equal(errno, ENOMEM);
	/* MADV_POPULATE_WRITE reports it */
	assert_int_equal(smm_madvise(mm, TA + 1 * MB, 8 * PG,
				     SMM_MADV_POPULATE_WRITE),
			 -ENOMEM);

	/* memory returns after munmap */
	assert_int_equal(smm_munmap(mm, TA, 4 * PG), 0);
	assert_int_equal(mm_stats(mm).rss_anon, 7);
	write_pat(cpu, TA + i * PG, 4 * PG, 9);
	check_pat(cpu, TA + i * PG, 4 * PG, 9);
	assert_int_equal(smm_write(cpu, TA + (i + 4) * PG, "x", 1, &fa),
			 -ENOMEM);
	assert_int_equal(fa, TA + (i + 4) * PG);

	smm_cpu_switch_mm(cpu, NULL);
	smm_mm_destroy(mm);
	assert_pool_clean(p);
	assert_int_equal(pool_stats(p).free, st0.free);
	/* and a fresh address space works again */
	mm = new_mm(p, 0);
	smm_cpu_switch_mm(cpu, mm);
	map_at(mm, TA, 64 * PG, RW);
	write_pat(cpu, TA, 11 * PG, 3);
	check_pat(cpu, TA, 11 * PG, 3);
	smm_cpu_switch_mm(cpu, NULL);
	smm_mm_destroy(mm);
	assert_pool_clean(p);
	smm_cpu_detach(cpu);
	assert_int_equal(smm_pool_destroy(p), 0);
}

/* Frames freed by one address space and reused by another read as zeros,
 * with and without poisoning. */
static void test_recycled_frames_zeroed(void **state)
{
	for (int poison = 0; poison < 2; poison++) {
		struct smm_pool *p =
			smm_pool_create(64 * PG, poison ? SMM_POOL_POISON : 0);
		assert_non_null(p);
		struct smm_cpu *cpu = smm_cpu_attach(p);
		assert_non_null(cpu);
		for (int round = 0; round < 4; round++) {
			struct smm_mm *mm = new_mm(p, 0);
			smm_cpu_switch_mm(cpu, mm);
			map_at(mm, TA, 40 * PG, RW);
			check_zero(cpu, TA, 40 * PG);
			write_pat(cpu, TA, 40 * PG, round);
			assert_int_equal(smm_madvise(mm, TA, 40 * PG,
						     SMM_MADV_DONTNEED),
					 0);
			check_zero(cpu, TA, 40 * PG);
			write_pat(cpu, TA, 40 * PG, round + 7);
			assert_int_equal(smm_munmap(mm, TA, 40 * PG), 0);
			map_at(mm, TA, 40 * PG, RW);
			check_zero(cpu, TA, 40 * PG);
			write_pat(cpu, TA, 40 * PG, round + 9);
			smm_cpu_switch_mm(cpu, NULL);
			smm_mm_destroy(mm);
			assert_pool_clean(p);
		}
		smm_cpu_detach(cpu);
		assert_int_equal(smm_pool_destroy(p), 0);
	}
}

static void test_inject_fault(void **state)
{
	struct smm_pool *p = smm_pool_create(4 * MB, SMM_POOL_POISON);
	assert_non_null(p);
	struct smm_cpu *cpu = smm_cpu_attach(p);
	assert_non_null(cpu);

	/* the first allocation of smm_mm_create fails */
	smm_pool_inject_failure(p, 1);
	errno = 0;
	struct smm_mm_opts o = { .scheme = test_scheme() };
	assert_null(smm_mm_create(p, &o));
	assert_int_equal(errno, ENOMEM);
	assert_pool_clean(p);
	/* the ones after succeed again */
	struct smm_mm *mm = new_mm(p, 0);
	smm_cpu_switch_mm(cpu, mm);
	map_at(mm, TA, 2 * MB, RW);

	/* a write fault in an empty address space needs PUD, PMD,
	 * PTE table and the page: inject at n = 1, 2, ... until it works */
	unsigned long n;
	uint64_t fa;
	for (n = 1; n < 100; n++) {
		smm_pool_inject_failure(p, n);
		fa = 0;
		int r = smm_write(cpu, TA + 5 * PG + 100, "hello", 5, &fa);
		if (r == 0)
			break;
		assert_int_equal(r, -ENOMEM);
		assert_int_equal(fa, TA + 5 * PG + 100);
		assert_int_equal(mm_stats(mm).rss_anon, 0);
		assert_pool_consistent(p);
		expect_vmas(mm, 0, SMM_TASK_SIZE, { TA, TA + 2 * MB, RW });
	}
	smm_pool_inject_failure(p, 0);
	assert_true(n >= 4);
	assert_true(n < 100);
	char b[6] = { 0 };
	assert_int_equal(smm_read(cpu, TA + 5 * PG + 100, b, 5, NULL), 0);
	assert_string_equal(b, "hello");
	assert_int_equal(mm_stats(mm).rss_anon, 1);

	/* n-th allocation: n = 2 lets one page through, fails the second */
	smm_pool_inject_failure(p, 2);
	assert_int_equal(smm_fill(cpu, TA + 10 * PG, 0x33, 3 * PG, &fa),
			 -ENOMEM);
	assert_int_equal(fa, TA + 11 * PG);
	assert_int_equal(rd8(cpu, TA + 11 * PG - 1), 0x33);
	assert_int_equal(mm_stats(mm).rss_anon, 2);
	/* then allocations succeed again */
	assert_int_equal(smm_fill(cpu, TA + 10 * PG, 0x34, 3 * PG, &fa), 0);
	assert_int_equal(mm_stats(mm).rss_anon, 4);

	/* disabled: nothing fails */
	smm_pool_inject_failure(p, 3);
	smm_pool_inject_failure(p, 0);
	write_pat(cpu, TA + 20 * PG, 10 * PG, 5);
	check_pat(cpu, TA + 20 * PG, 10 * PG, 5);

	smm_cpu_switch_mm(cpu, NULL);
	smm_mm_destroy(mm);
	assert_pool_clean(p);
	smm_cpu_detach(cpu);
	assert_int_equal(smm_pool_destroy(p), 0);
}

/* Many address spaces on one pool, created and destroyed in turns. */
static void test_many_mms(void **state)
{
	struct smm_pool *p = smm_pool_create(16 * MB, 0);
	assert_non_null(p);
	struct smm_cpu *cpu = smm_cpu_attach(p);
	assert_non_null(cpu);
	struct smm_mm *mms[32];
	for (int i = 0; i < 32; i++) {
		mms[i] = new_mm(p, 0);
		smm_cpu_switch_mm(cpu, mms[i]);
		map_at(mms[i], TA, 8 * PG, RW);
		write_pat(cpu, TA, 8 * PG, i);
	}
	for (int i = 0; i < 32; i += 2) {
		smm_cpu_switch_mm(cpu, mms[i]);
		check_pat(cpu, TA, 8 * PG, i);
	}
	smm_cpu_switch_mm(cpu, NULL);
	for (int i = 0; i < 32; i++)
		smm_mm_destroy(mms[i]);
	assert_pool_clean(p);
	smm_cpu_detach(cpu);
	assert_int_equal(smm_pool_destroy(p), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_bad_args),
		cmocka_unit_test(test_create_sizes),
		cmocka_unit_test(test_stats_track_usage),
		cmocka_unit_test(test_destroy_busy),
		cmocka_unit_test(test_exhaustion),
		cmocka_unit_test(test_recycled_frames_zeroed),
		cmocka_unit_test(test_inject_fault),
		cmocka_unit_test(test_many_mms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
