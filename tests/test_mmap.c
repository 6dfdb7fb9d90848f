/*
 * test_mmap.c - smm_mmap and smm_munmap: placement (a free hint is used,
 * rounded down; otherwise top-down below mmap_base, into the highest gap),
 * MAP_FIXED replacing, MAP_FIXED_NOREPLACE refusing with -EEXIST,
 * MAP_POPULATE, VMA merging and splitting as Linux 6.18 does it (checked
 * against /proc/self/maps with small programs on this machine), every errno
 * path (values taken from the kernel), and a failure-injection loop: for
 * n = 1, 2, ... fail the n-th allocation, run the operation, and if it
 * failed require VMAs, data and counters to be exactly as before; with
 * thousands of VMAs, top-down placement against a slow reference over the
 * VMA list, and the max_map_count limit as Linux 6.18 enforces it.
 */
#include <pthread.h>
#include "common.h"

#define FLAGS PRIV_ANON

static void test_placement_topdown(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	uint64_t b = DEFAULT_MMAP_BASE;

	int64_t a = smm_mmap(mm, 0, 4 * PG, RW, FLAGS);
	assert_int_equal(a, (int64_t)(b - 4 * PG));
	int64_t c = smm_mmap(mm, 0, 4 * PG, RO, FLAGS);
	assert_int_equal(c, (int64_t)(b - 8 * PG));
	int64_t d = smm_mmap(mm, 0, 4 * PG, RW, FLAGS);
	assert_int_equal(d, (int64_t)(b - 12 * PG));
	expect_vmas(mm, 0, SMM_TASK_SIZE, { b - 12 * PG, b - 8 * PG, RW },
		    { b - 8 * PG, b - 4 * PG, RO }, { b - 4 * PG, b, RW });
	assert_int_equal(mm_stats(mm).nr_vmas, 3);

	/* a hole: the highest gap that fits, at its top */
	assert_int_equal(smm_munmap(mm, b - 8 * PG, 4 * PG), 0);
	int64_t h = smm_mmap(mm, 0, 2 * PG, RO, FLAGS);
	assert_int_equal(h, (int64_t)(b - 6 * PG));
	/* too big for the hole: below everything */
	int64_t g = smm_mmap(mm, 0, 3 * PG, RO, FLAGS);
	assert_int_equal(g, (int64_t)(b - 15 * PG));
	/* the rest of the hole fits two pages */
	int64_t i = smm_mmap(mm, 0, 2 * PG, RO, FLAGS);
	assert_int_equal(i, (int64_t)(b - 8 * PG));
	/* same protection, adjacent and untouched: merged */
	expect_vmas(mm, 0, SMM_TASK_SIZE, { b - 15 * PG, b - 12 * PG, RO },
		    { b - 12 * PG, b - 8 * PG, RW },
		    { b - 8 * PG, b - 4 * PG, RO }, { b - 4 * PG, b, RW });
}

static void test_placement_custom_base(void **state)
{
	struct env *e = *state;
	uint64_t base = TA + 1 * GB;
	struct smm_mm *mm = new_mm(e->pool, base);
	assert_int_equal(smm_mmap(mm, 0, 1 * MB, RW, FLAGS),
			 (int64_t)(base - MB));
	assert_int_equal(smm_mmap(mm, 0, 3 * PG, RW, FLAGS),
			 (int64_t)(base - MB - 3 * PG));
	expect_vmas(mm, 0, SMM_TASK_SIZE, { base - MB - 3 * PG, base, RW });
	smm_mm_destroy(mm);

	/* bad options */
	struct smm_mm_opts o = { .scheme = test_scheme(), .mmap_base = TA + 1 };
	errno = 0;
	assert_null(smm_mm_create(e->pool, &o));
	assert_int_equal(errno, EINVAL);
	o.mmap_base = SMM_TASK_SIZE + PG;
	errno = 0;
	assert_null(smm_mm_create(e->pool, &o));
	assert_int_equal(errno, EINVAL);
	o.mmap_base = 0;
	o.scheme = SMM_SCHEME_COUNT;
	errno = 0;
	assert_null(smm_mm_create(e->pool, &o));
	assert_int_equal(errno, EINVAL);
	o.scheme = -1;
	errno = 0;
	assert_null(smm_mm_create(e->pool, &o));
	assert_int_equal(errno, EINVAL);
	/* NULL opts: defaults */
	mm = smm_mm_create(e->pool, NULL);
	assert_non_null(mm);
	assert_int_equal(smm_mmap(mm, 0, PG, RW, FLAGS),
			 (int64_t)(DEFAULT_MMAP_BASE - PG));
	smm_mm_destroy(mm);
	assert_int_equal(smm_scheme_from_name("none"), SMM_SCHEME_NONE);
	assert_string_equal(smm_scheme_name(SMM_SCHEME_NONE), "none");
	assert_int_equal(smm_scheme_from_name("no-such-scheme"), -EINVAL);
	assert_null(smm_scheme_name(SMM_SCHEME_COUNT));
	assert_null(smm_scheme_name(-1));
}

static void test_hint(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	/* a free hint is used */
	assert_int_equal(smm_mmap(mm, TA, 4 * PG, RW, FLAGS), (int64_t)TA);
	/* an unaligned hint is rounded down (Linux: hint 0x...5001 -> 0x...5000) */
	assert_int_equal(smm_mmap(mm, TA + 5 * PG + 1, PG, RO, FLAGS),
			 (int64_t)(TA + 5 * PG));
	/* an occupied hint: top-down below mmap_base */
	assert_int_equal(smm_mmap(mm, TA + 2 * PG, 4 * PG, RW, FLAGS),
			 (int64_t)(DEFAULT_MMAP_BASE - 4 * PG));
	/* partly occupied too */
	assert_int_equal(smm_mmap(mm, TA + 4 * PG, 2 * PG, RO, FLAGS),
			 (int64_t)(DEFAULT_MMAP_BASE - 6 * PG));
	/* a hint whose range passes SMM_TASK_SIZE is not usable */
	assert_int_equal(smm_mmap(mm, SMM_TASK_SIZE - PG, 2 * PG, RO, FLAGS),
			 (int64_t)(DEFAULT_MMAP_BASE - 8 * PG));
	/* a hint above mmap_base but free is fine */
	assert_int_equal(smm_mmap(mm, SMM_TASK_SIZE - 2 * PG, 2 * PG, RW,
				  FLAGS),
			 (int64_t)(SMM_TASK_SIZE - 2 * PG));
	expect_vmas(mm, TA, TA + GB, { TA, TA + 4 * PG, RW },
		    { TA + 5 * PG, TA + 6 * PG, RO });
	check_zero(e->cpu, TA, 4 * PG);
}

static void test_fixed_replaces(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 16 * PG, RW);
	write_pat(e->cpu, TA, 16 * PG, 1);
	assert_int_equal(mm_stats(mm).rss_anon, 16);
	int64_t r =
		smm_mmap(mm, TA + 4 * PG, 4 * PG, RO, FLAGS | SMM_MAP_FIXED);
	assert_int_equal(r, (int64_t)(TA + 4 * PG));
	expect_vmas(mm, TA, TA + GB, { TA, TA + 4 * PG, RW },
		    { TA + 4 * PG, TA + 8 * PG, RO },
		    { TA + 8 * PG, TA + 16 * PG, RW });
	assert_int_equal(mm_stats(mm).rss_anon, 12);
	check_pat(e->cpu, TA, 4 * PG, 1);
	check_zero(e->cpu, TA + 4 * PG, 4 * PG);
	check_pat(e->cpu, TA + 8 * PG, 8 * PG, 1);
	expect_write_fault(e->cpu, TA + 4 * PG, 1, -EFAULT, TA + 4 * PG);

	/* fixed, same protection, spanning VMAs: one merged VMA (Linux) */
	r = smm_mmap(mm, TA + 2 * PG, 8 * PG, RW, FLAGS | SMM_MAP_FIXED);
	assert_int_equal(r, (int64_t)(TA + 2 * PG));
	expect_vmas(mm, TA, TA + GB, { TA, TA + 16 * PG, RW });
	check_pat(e->cpu, TA, 2 * PG, 1);
	check_zero(e->cpu, TA + 2 * PG, 8 * PG);
	check_pat(e->cpu, TA + 10 * PG, 6 * PG, 1);
	assert_int_equal(mm_stats(mm).rss_anon, 8);

	/* fixed over a hole and a mapping: fills both */
	r = smm_mmap(mm, TA + 12 * PG, 8 * PG, RO, FLAGS | SMM_MAP_FIXED);
	assert_int_equal(r, (int64_t)(TA + 12 * PG));
	expect_vmas(mm, TA, TA + GB, { TA, TA + 12 * PG, RW },
		    { TA + 12 * PG, TA + 20 * PG, RO });
	assert_int_equal(mm_stats(mm).nr_vmas, 2);
}

static void test_fixed_noreplace(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA + 4 * PG, 4 * PG, RW);
	write_pat(e->cpu, TA + 4 * PG, 4 * PG, 2);
	int f = FLAGS | SMM_MAP_FIXED_NOREPLACE;
	assert_int_equal(smm_mmap(mm, TA + 4 * PG, 4 * PG, RW, f), -EEXIST);
	assert_int_equal(smm_mmap(mm, TA, 5 * PG, RW, f), -EEXIST);
	assert_int_equal(smm_mmap(mm, TA + 7 * PG, 4 * PG, RW, f), -EEXIST);
	assert_int_equal(smm_mmap(mm, TA, 16 * PG, RW, f), -EEXIST);
	assert_int_equal(smm_mmap(mm, TA + 5 * PG, PG, RO, f), -EEXIST);
	/* with MAP_FIXED too: still -EEXIST (Linux) */
	assert_int_equal(smm_mmap(mm, TA + 5 * PG, PG, RO, f | SMM_MAP_FIXED),
			 -EEXIST);
	expect_vmas(mm, TA, TA + GB, { TA + 4 * PG, TA + 8 * PG, RW });
	check_pat(e->cpu, TA + 4 * PG, 4 * PG, 2);
	assert_int_equal(mm_stats(mm).rss_anon, 4);
	/* right next to it: fine, and merges */
	assert_int_equal(smm_mmap(mm, TA, 4 * PG, RW, f), (int64_t)TA);
	assert_int_equal(smm_mmap(mm, TA + 8 * PG, 4 * PG, RW, f),
			 (int64_t)(TA + 8 * PG));
	expect_vmas(mm, TA, TA + GB, { TA, TA + 12 * PG, RW });
	/* unaligned: -EINVAL (Linux), even where the range is free */
	assert_int_equal(smm_mmap(mm, TA + 16 * PG + 1, PG, RO, f), -EINVAL);
	assert_int_equal(smm_mmap(mm, TA + 1, PG, RO, f), -EINVAL);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 12 * PG, RW });
}

static void test_mmap_errors(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 4 * PG, RW);
	/* values from Linux 6.18 on this machine */
	assert_int_equal(smm_mmap(mm, 0, 0, RW, FLAGS), -EINVAL);
	assert_int_equal(smm_mmap(mm, TA + 1 * MB + 1, PG, RW,
				  FLAGS | SMM_MAP_FIXED),
			 -EINVAL);
	assert_int_equal(smm_mmap(mm, 0, PG, RW, SMM_MAP_ANONYMOUS), -EINVAL);
	assert_int_equal(smm_mmap(mm, 0, PG, RW,
				  SMM_MAP_ANONYMOUS | SMM_MAP_PRIVATE |
					  SMM_MAP_SHARED),
			 -EINVAL);
	/* shared memory cannot be a stack */
	assert_int_equal(smm_mmap(mm, 0, PG, RW,
				  SMM_MAP_ANONYMOUS | SMM_MAP_SHARED |
					  SMM_MAP_GROWSDOWN),
			 -EINVAL);
	/* lengths that overflow or cannot fit */
	assert_int_equal(smm_mmap(mm, 0, UINT64_MAX, RW, FLAGS), -ENOMEM);
	assert_int_equal(smm_mmap(mm, 0, -PG, RW, FLAGS), -ENOMEM);
	assert_int_equal(smm_mmap(mm, 0, 1ULL << 47, RW, FLAGS), -ENOMEM);
	assert_int_equal(smm_mmap(mm, SMM_TASK_SIZE, PG, RW,
				  FLAGS | SMM_MAP_FIXED),
			 -ENOMEM);
	assert_int_equal(smm_mmap(mm, SMM_TASK_SIZE - PG, 2 * PG, RW,
				  FLAGS | SMM_MAP_FIXED),
			 -ENOMEM);
	assert_int_equal(smm_mmap(mm, TA, UINT64_MAX - PG, RW,
				  FLAGS | SMM_MAP_FIXED),
			 -ENOMEM);
	/* none of it changed anything */
	expect_vmas(mm, 0, SMM_TASK_SIZE, { TA, TA + 4 * PG, RW });
	assert_int_equal(mm_stats(mm).nr_vmas, 1);
	/* unknown flags are ignored (MAP_NONBLOCK 0x10000, MAP_STACK 0x20000) */
	assert_int_equal(smm_mmap(mm, TA + 4 * PG, PG, RW,
				  FLAGS | 0x10000 | 0x20000),
			 (int64_t)(TA + 4 * PG));
	/* MAP_NORESERVE works */
	assert_int_equal(smm_mmap(mm, TA + 8 * PG, PG, RW,
				  FLAGS | SMM_MAP_NORESERVE | SMM_MAP_FIXED),
			 (int64_t)(TA + 8 * PG));
	/* an unaligned length is rounded up */
	assert_int_equal(smm_mmap(mm, TA + 16 * PG, PG + 1, RO,
				  FLAGS | SMM_MAP_FIXED),
			 (int64_t)(TA + 16 * PG));
	expect_vmas(mm, TA + 16 * PG, TA + GB,
		    { TA + 16 * PG, TA + 18 * PG, RO });
	/* PROT_NONE is a valid protection */
	assert_int_equal(smm_mmap(mm, TA + 32 * PG, PG, SMM_PROT_NONE,
				  FLAGS | SMM_MAP_FIXED),
			 (int64_t)(TA + 32 * PG));
	expect_vmas(mm, TA + 32 * PG, TA + GB,
		    { TA + 32 * PG, TA + 33 * PG, SMM_PROT_NONE });
	/* the contract: no MAP_ANONYMOUS is -EBADF (Linux, for fd -1) */
	assert_int_equal(smm_mmap(mm, 0, PG, RW, SMM_MAP_PRIVATE), -EBADF);
	assert_int_equal(smm_mmap(mm, TA + 64 * PG, PG, RW,
				  SMM_MAP_PRIVATE | SMM_MAP_FIXED),
			 -EBADF);
	expect_no_vmas(mm, TA + 64 * PG, TA + 65 * PG);
}

static void test_munmap(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 16 * PG, RW);
	write_pat(e->cpu, TA, 16 * PG, 3);
	/* split in the middle */
	assert_int_equal(smm_munmap(mm, TA + 4 * PG, 2 * PG), 0);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 4 * PG, RW },
		    { TA + 6 * PG, TA + 16 * PG, RW });
	assert_int_equal(mm_stats(mm).rss_anon, 14);
	assert_int_equal(mm_stats(mm).nr_vmas, 2);
	check_pat(e->cpu, TA, 4 * PG, 3);
	check_pat(e->cpu, TA + 6 * PG, 10 * PG, 3);
	expect_read_fault(e->cpu, TA + 4 * PG, 1, -EFAULT, TA + 4 * PG);
	expect_read_fault(e->cpu, TA + 4 * PG - 8, 16, -EFAULT, TA + 4 * PG);
	expect_write_fault(e->cpu, TA + 6 * PG - 1, 2, -EFAULT,
			   TA + 6 * PG - 1);
	/* the front and back */
	assert_int_equal(smm_munmap(mm, TA, PG), 0);
	assert_int_equal(smm_munmap(mm, TA + 15 * PG, PG), 0);
	expect_vmas(mm, TA, TA + GB, { TA + PG, TA + 4 * PG, RW },
		    { TA + 6 * PG, TA + 15 * PG, RW });
	/* an unaligned length is rounded up */
	assert_int_equal(smm_munmap(mm, TA + 14 * PG, 1), 0);
	expect_vmas(mm, TA, TA + GB, { TA + PG, TA + 4 * PG, RW },
		    { TA + 6 * PG, TA + 14 * PG, RW });
	/* unmapped parts are fine: across both VMAs and holes */
	assert_int_equal(smm_munmap(mm, TA + 3 * PG, 4 * PG), 0);
	expect_vmas(mm, TA, TA + GB, { TA + PG, TA + 3 * PG, RW },
		    { TA + 7 * PG, TA + 14 * PG, RW });
	check_pat(e->cpu, TA + PG, 2 * PG, 3);
	check_pat(e->cpu, TA + 7 * PG, 7 * PG, 3);
	assert_int_equal(mm_stats(mm).rss_anon, 9);
	assert_int_equal(smm_munmap(mm, TA + 1 * GB, 1 * GB), 0);
	/* everything */
	assert_int_equal(smm_munmap(mm, TA, 1 * MB), 0);
	expect_no_vmas(mm, 0, SMM_TASK_SIZE);
	struct smm_mm_stats st = mm_stats(mm);
	assert_int_equal(st.rss_anon, 0);
	assert_int_equal(st.nr_vmas, 0);
	assert_int_equal(st.pt_bytes, 0);
	assert_int_equal(pool_stats(e->pool).anon_pages, 0);
}

static void test_munmap_errors(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 4 * PG, RW);
	assert_int_equal(smm_munmap(mm, TA + 1, PG), -EINVAL);
	assert_int_equal(smm_munmap(mm, TA, 0), -EINVAL);
	assert_int_equal(smm_munmap(mm, SMM_TASK_SIZE, PG), -EINVAL);
	assert_int_equal(smm_munmap(mm, SMM_TASK_SIZE - PG, 2 * PG), -EINVAL);
	assert_int_equal(smm_munmap(mm, PG, -2 * PG), -EINVAL);
	assert_int_equal(smm_munmap(mm, TA, UINT64_MAX), -EINVAL);
	expect_vmas(mm, 0, SMM_TASK_SIZE, { TA, TA + 4 * PG, RW });
	/* the last page below SMM_TASK_SIZE is fine */
	assert_int_equal(smm_munmap(mm, SMM_TASK_SIZE - PG, PG), 0);
}

static void test_merge(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	/* touched + new adjacent, same protection: merged (Linux) */
	map_at(mm, TA, 2 * PG, RW);
	wr8(e->cpu, TA, 1);
	map_at(mm, TA + 2 * PG, 2 * PG, RW);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 4 * PG, RW });
	/* below it too */
	map_at(mm, TA - 2 * PG, 2 * PG, RW);
	expect_vmas(mm, TA - GB, TA + GB, { TA - 2 * PG, TA + 4 * PG, RW });
	/* different protection: not merged */
	map_at(mm, TA + 4 * PG, 2 * PG, RO);
	expect_vmas(mm, TA - GB, TA + GB, { TA - 2 * PG, TA + 4 * PG, RW },
		    { TA + 4 * PG, TA + 6 * PG, RO });
	assert_int_equal(smm_munmap(mm, TA - 2 * PG, 8 * PG), 0);

	/* filling the gap between two untouched VMAs: all three merge */
	map_at(mm, TA, 2 * PG, RW);
	map_at(mm, TA + 8 * PG, 2 * PG, RW);
	map_at(mm, TA + 2 * PG, 6 * PG, RW);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 10 * PG, RW });
	assert_int_equal(mm_stats(mm).nr_vmas, 1);
	assert_int_equal(smm_munmap(mm, TA, 10 * PG), 0);

	/* between two VMAs touched separately (different anon_vmas): Linux
	 * merges the new one with the previous VMA only */
	map_at(mm, TA, 2 * PG, RW);
	wr8(e->cpu, TA, 1);
	map_at(mm, TA + 8 * PG, 2 * PG, RW);
	wr8(e->cpu, TA + 8 * PG, 2);
	map_at(mm, TA + 2 * PG, 6 * PG, RW);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 8 * PG, RW },
		    { TA + 8 * PG, TA + 10 * PG, RW });
	assert_int_equal(rd8(e->cpu, TA), 1);
	assert_int_equal(rd8(e->cpu, TA + 8 * PG), 2);
	assert_int_equal(smm_munmap(mm, TA, 10 * PG), 0);

	/* re-filling a hole punched into a touched VMA: merged again */
	map_at(mm, TA, 4 * PG, RW);
	write_pat(e->cpu, TA, 4 * PG, 4);
	assert_int_equal(smm_munmap(mm, TA + PG, PG), 0);
	map_at(mm, TA + PG, PG, RW);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 4 * PG, RW });
	check_pat(e->cpu, TA, PG, 4);
	check_zero(e->cpu, TA + PG, PG);
	check_pat(e->cpu, TA + 2 * PG, 2 * PG, 4);
}

static void test_vmas_query(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	for (int i = 0; i < 10; i++)
		map_at(mm, TA + i * 2 * PG, PG, i % 2 ? RO : RW);
	struct smm_vma_info v[4];
	assert_int_equal(smm_mm_vmas(mm, 0, SMM_TASK_SIZE, v, 4), 10);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(v[i].start, TA + i * 2 * PG);
		assert_int_equal(v[i].end, TA + i * 2 * PG + PG);
		assert_int_equal(v[i].prot, i % 2 ? RO : RW);
	}
	assert_int_equal(smm_mm_vmas(mm, 0, SMM_TASK_SIZE, NULL, 0), 10);
	/* intersecting only: [TA + PG, TA + 6 * PG + 1) meets VMAs 1, 2, 3 */
	assert_int_equal(smm_mm_vmas(mm, TA + PG, TA + 6 * PG + 1, v, 4), 3);
	assert_int_equal(v[0].start, TA + 2 * PG);
	assert_int_equal(v[2].start, TA + 6 * PG);
	assert_int_equal(smm_mm_vmas(mm, TA + PG, TA + 2 * PG, v, 4), 0);
	assert_int_equal(smm_mm_vmas(mm, TA + PG - 1, TA + PG, v, 4), 1);
	assert_int_equal(mm_stats(mm).nr_vmas, 10);
}

static void test_populate(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	int64_t r = smm_mmap(mm, TA, 8 * PG, RW,
			     FLAGS | SMM_MAP_FIXED | SMM_MAP_POPULATE);
	assert_int_equal(r, (int64_t)TA);
	struct smm_mm_stats st = mm_stats(mm);
	assert_int_equal(st.rss_anon, 8);
	assert_int_equal(st.zero_ptes, 0);
	assert_int_equal(resident(mm, TA, 8 * PG), 8);
	/* read-only: the zero page */
	r = smm_mmap(mm, TA + 1 * MB, 8 * PG, RO,
		     FLAGS | SMM_MAP_FIXED | SMM_MAP_POPULATE);
	assert_int_equal(r, (int64_t)(TA + 1 * MB));
	st = mm_stats(mm);
	assert_int_equal(st.rss_anon, 8);
	assert_int_equal(st.zero_ptes, 8);
	assert_int_equal(resident(mm, TA + 1 * MB, 8 * PG), 8);
	/* PROT_NONE: nothing, and no error */
	r = smm_mmap(mm, TA + 2 * MB, 8 * PG, SMM_PROT_NONE,
		     FLAGS | SMM_MAP_FIXED | SMM_MAP_POPULATE);
	assert_int_equal(r, (int64_t)(TA + 2 * MB));
	assert_int_equal(resident(mm, TA + 2 * MB, 8 * PG), 0);
	st = mm_stats(mm);
	assert_int_equal(st.rss_anon, 8);
	assert_int_equal(st.zero_ptes, 8);
	/* populated pages do not fault again */
	uint64_t f0 = mm_stats(mm).faults;
	check_zero(e->cpu, TA, 8 * PG);
	check_zero(e->cpu, TA + 1 * MB, 8 * PG);
	write_pat(e->cpu, TA, 8 * PG, 5);
	assert_int_equal(mm_stats(mm).faults, f0);
}

/* ---- failure injection -------------------------------------------- */

struct snap {
	struct smm_vma_info v[32];
	size_t nv;
	struct smm_mm_stats ms;
	struct smm_pool_stats ps;
};

static void take_snap(struct env *e, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	s->nv = smm_mm_vmas(e->mm, 0, SMM_TASK_SIZE, s->v, 32);
	s->ms = mm_stats(e->mm);
	s->ps = pool_stats(e->pool);
}

static void assert_snap_equal(struct env *e, const struct snap *a)
{
	struct snap b;
	take_snap(e, &b);
	if (a->nv != b.nv || memcmp(a->v, b.v, sizeof(a->v))) {
		fprintf(stderr, "VMAs changed by a failed operation\n");
		dump_vmas(e->mm, 0, SMM_TASK_SIZE);
		fail();
	}
	assert_int_equal(a->ms.rss_anon, b.ms.rss_anon);
	assert_int_equal(a->ms.zero_ptes, b.ms.zero_ptes);
	assert_int_equal(a->ms.nr_vmas, b.ms.nr_vmas);
	assert_int_equal(a->ms.pt_bytes, b.ms.pt_bytes);
	assert_int_equal(a->ps.anon_pages, b.ps.anon_pages);
	assert_int_equal(a->ps.pt_pages, b.ps.pt_pages);
	assert_int_equal(a->ps.free, b.ps.free);
}

/* The layout every injected operation starts from: three VMAs
 * [TA, TA+16P) RW, [TA+16P, TA+24P) RO, [TA+32P, TA+40P) RW, the RW ones
 * written with a pattern, the RO one read (zero pages). */
static void inject_layout(struct env *e)
{
	map_at(e->mm, TA, 16 * PG, RW);
	map_at(e->mm, TA + 16 * PG, 8 * PG, RO);
	map_at(e->mm, TA + 32 * PG, 8 * PG, RW);
	write_pat(e->cpu, TA, 16 * PG, 7);
	write_pat(e->cpu, TA + 32 * PG, 8 * PG, 7);
	check_zero(e->cpu, TA + 16 * PG, 8 * PG);
}

static void check_layout_data(struct env *e)
{
	check_pat(e->cpu, TA, 16 * PG, 7);
	check_zero(e->cpu, TA + 16 * PG, 8 * PG);
	check_pat(e->cpu, TA + 32 * PG, 8 * PG, 7);
}

typedef int64_t (*inject_op)(struct smm_mm *mm);

static int64_t op_munmap_split(struct smm_mm *mm)
{
	return smm_munmap(mm, TA + 4 * PG, 2 * PG);
}
static int64_t op_munmap_span(struct smm_mm *mm)
{
	return smm_munmap(mm, TA + 8 * PG, 28 * PG);
}
static int64_t op_fixed_middle(struct smm_mm *mm)
{
	return smm_mmap(mm, TA + 4 * PG, 2 * PG, SMM_PROT_NONE,
			FLAGS | SMM_MAP_FIXED);
}
static int64_t op_fixed_span(struct smm_mm *mm)
{
	return smm_mmap(mm, TA + 12 * PG, 24 * PG, SMM_PROT_EXEC,
			FLAGS | SMM_MAP_FIXED);
}
static int64_t op_mmap_new(struct smm_mm *mm)
{
	return smm_mmap(mm, TA + 1 * GB, 4 * PG, RW, FLAGS);
}
static int64_t op_mmap_populate(struct smm_mm *mm)
{
	return smm_mmap(mm, TA + 48 * PG, 4 * PG, RW,
			FLAGS | SMM_MAP_FIXED | SMM_MAP_POPULATE);
}
static int64_t op_mprotect_split(struct smm_mm *mm)
{
	return smm_mprotect(mm, TA + 4 * PG, 2 * PG, RO);
}
static int64_t op_mprotect_span(struct smm_mm *mm)
{
	/* covers the end of VMA 1 and the start of VMA 2: two splits */
	return smm_mprotect(mm, TA + 12 * PG, 8 * PG, SMM_PROT_NONE);
}

static void run_inject(struct env *e, inject_op op, int must_fail_first)
{
	inject_layout(e);
	struct snap before;
	take_snap(e, &before);
	unsigned long n;
	int64_t r = -1;
	for (n = 1; n < 1000; n++) {
		smm_pool_inject_failure(e->pool, n);
		r = op(e->mm);
		smm_pool_inject_failure(e->pool, 0);
		if (r >= 0)
			break;
		if (r != -ENOMEM)
			fprintf(stderr, "n=%lu: %" PRId64 "\n", n, r);
		assert_int_equal(r, -ENOMEM);
		assert_snap_equal(e, &before);
		check_layout_data(e);
		/* reading may have mapped zero pages: compare again */
		take_snap(e, &before);
	}
	assert_true(r >= 0);
	if (must_fail_first)
		assert_true(n > 1);
	assert_pool_consistent(e->pool);
}

static void test_inject_munmap_split(void **state)
{
	struct env *e = *state;
	run_inject(e, op_munmap_split, 1);
	expect_vmas(e->mm, 0, SMM_TASK_SIZE, { TA, TA + 4 * PG, RW },
		    { TA + 6 * PG, TA + 16 * PG, RW },
		    { TA + 16 * PG, TA + 24 * PG, RO },
		    { TA + 32 * PG, TA + 40 * PG, RW });
	check_pat(e->cpu, TA, 4 * PG, 7);
	check_pat(e->cpu, TA + 6 * PG, 10 * PG, 7);
	assert_int_equal(mm_stats(e->mm).rss_anon, 22);
}

static void test_inject_munmap_span(void **state)
{
	struct env *e = *state;
	run_inject(e, op_munmap_span, 0);
	expect_vmas(e->mm, 0, SMM_TASK_SIZE, { TA, TA + 8 * PG, RW },
		    { TA + 36 * PG, TA + 40 * PG, RW });
	check_pat(e->cpu, TA, 8 * PG, 7);
	check_pat(e->cpu, TA + 36 * PG, 4 * PG, 7);
	assert_int_equal(mm_stats(e->mm).rss_anon, 12);
}

static void test_inject_fixed_middle(void **state)
{
	struct env *e = *state;
	run_inject(e, op_fixed_middle, 1);
	expect_vmas(e->mm, 0, SMM_TASK_SIZE, { TA, TA + 4 * PG, RW },
		    { TA + 4 * PG, TA + 6 * PG, SMM_PROT_NONE },
		    { TA + 6 * PG, TA + 16 * PG, RW },
		    { TA + 16 * PG, TA + 24 * PG, RO },
		    { TA + 32 * PG, TA + 40 * PG, RW });
	check_pat(e->cpu, TA + 6 * PG, 10 * PG, 7);
	expect_read_fault(e->cpu, TA + 4 * PG, 1, -EFAULT, TA + 4 * PG);
	assert_int_equal(mm_stats(e->mm).rss_anon, 22);
}

static void test_inject_fixed_span(void **state)
{
	struct env *e = *state;
	run_inject(e, op_fixed_span, 1);
	expect_vmas(e->mm, 0, SMM_TASK_SIZE, { TA, TA + 12 * PG, RW },
		    { TA + 12 * PG, TA + 36 * PG, SMM_PROT_EXEC },
		    { TA + 36 * PG, TA + 40 * PG, RW });
	check_pat(e->cpu, TA, 12 * PG, 7);
	check_pat(e->cpu, TA + 36 * PG, 4 * PG, 7);
	assert_int_equal(mm_stats(e->mm).rss_anon, 16);
	assert_int_equal(mm_stats(e->mm).zero_ptes, 0);
}

static void test_inject_mmap_new(void **state)
{
	struct env *e = *state;
	run_inject(e, op_mmap_new, 1);
	expect_vmas(e->mm, TA + 40 * PG, SMM_TASK_SIZE,
		    { TA + 1 * GB, TA + 1 * GB + 4 * PG, RW });
}

static void test_inject_mmap_populate(void **state)
{
	struct env *e = *state;
	run_inject(e, op_mmap_populate, 0);
	expect_vmas(e->mm, TA + 40 * PG, SMM_TASK_SIZE,
		    { TA + 48 * PG, TA + 52 * PG, RW });
	check_zero(e->cpu, TA + 48 * PG, 4 * PG);
}

static void test_inject_mprotect_split(void **state)
{
	struct env *e = *state;
	run_inject(e, op_mprotect_split, 1);
	expect_vmas(e->mm, 0, SMM_TASK_SIZE, { TA, TA + 4 * PG, RW },
		    { TA + 4 * PG, TA + 6 * PG, RO },
		    { TA + 6 * PG, TA + 16 * PG, RW },
		    { TA + 16 * PG, TA + 24 * PG, RO },
		    { TA + 32 * PG, TA + 40 * PG, RW });
	check_layout_data(e);
	expect_write_fault(e->cpu, TA + 4 * PG, 1, -EFAULT, TA + 4 * PG);
}

static void test_inject_mprotect_span(void **state)
{
	struct env *e = *state;
	run_inject(e, op_mprotect_span, 1);
	/* Linux 6.18 leaves the two PROT_NONE parts apart here: the RO VMA
	 * has no anon_vma (only zero pages), the RW one has one, and an
	 * existing VMA without anon_vma does not merge (checked on this
	 * machine with /proc/self/maps) */
	expect_vmas(e->mm, 0, SMM_TASK_SIZE, { TA, TA + 12 * PG, RW },
		    { TA + 12 * PG, TA + 16 * PG, SMM_PROT_NONE },
		    { TA + 16 * PG, TA + 20 * PG, SMM_PROT_NONE },
		    { TA + 20 * PG, TA + 24 * PG, RO },
		    { TA + 32 * PG, TA + 40 * PG, RW });
	expect_read_fault(e->cpu, TA + 12 * PG - 4, 8, -EFAULT, TA + 12 * PG);
	check_pat(e->cpu, TA, 12 * PG, 7);
}

/* ---- many VMAs: placement and max_map_count ---- */

/*
 * The slow reference for top-down placement: every VMA through the public
 * listing, then the highest gap below @high that holds @len, as the
 * kernel's unmapped_area_topdown() picks it (no VMA grows down here).
 */
static uint64_t ref_topdown(struct smm_mm *mm, uint64_t len, uint64_t low,
			    uint64_t high, struct smm_vma_info *v, size_t max)
{
	size_t n = smm_mm_vmas(mm, 0, SMM_TASK_SIZE, v, max);
	uint64_t gap_end = high;

	assert_true(n <= max);
	for (size_t i = n;; i--) {
		uint64_t gs = i ? v[i - 1].end : 0, ge = gap_end;

		if (i && v[i - 1].start >= high)
			continue;
		if (gs < low)
			gs = low;
		if (i < n && v[i].start < ge)
			ge = v[i].start;
		if (ge > gs && ge - gs >= len)
			return ge - len;
		if (!i)
			return 0;
	}
}

static void test_placement_many_holes(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	const size_t nr = 3000, max = 2 * nr + 16;
	struct smm_vma_info *v = calloc(max, sizeof(*v));
	uint64_t addr = DEFAULT_MMAP_BASE, seed = 12345;

	assert_non_null(v);
	/* Holes of 1-8 pages between mappings of 1-4, downwards from the
	 * base; protections alternate, so no two merge. */
	for (size_t i = 0; i < nr; i++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		uint64_t hole = 1 + (seed >> 33) % 8,
			 len = 1 + (seed >> 40) % 4;

		addr -= (hole + len) * PG;
		assert_int_equal(map_at(mm, addr, len * PG, i & 1 ? RW : RO),
				 addr);
	}
	/* Mappings of 1-10 pages, placed by softmm and by the reference;
	 * every other one stays, so the layout keeps changing. */
	for (int i = 0; i < 2000; i++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		uint64_t len = (1 + (seed >> 33) % 10) * PG;
		uint64_t want =
			ref_topdown(mm, len, PG, DEFAULT_MMAP_BASE, v, max);
		int64_t a = smm_mmap(mm, 0, len, i % 3 ? RW : RO, FLAGS);

		assert_int_equal(a, (int64_t)want);
		if (i & 1)
			assert_int_equal(smm_munmap(mm, (uint64_t)a, len), 0);
	}
	assert_int_equal(smm_mm_verify(mm), 0);
	free(v);
}

/*
 * vm.max_map_count as Linux 6.18 enforces it (measured with a small
 * program on this machine's kernel): mmap fails with ENOMEM while the
 * count is above 65530, merging or not, so 65531 VMAs can exist; a split
 * (mprotect, munmap or MAP_FIXED in the middle of one VMA) fails while it
 * is 65530 or more; the second split of an mprotect can fail after the
 * first, which stays.
 */
static void test_max_map_count(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	const uint64_t max = 65530, b3 = TA, top = TA + 8 * PG;
	uint64_t i, n;

	/* a 3-page VMA to split, then one-page VMAs of alternating
	 * protection (no merging) until mmap refuses */
	assert_int_equal(map_at(mm, b3, 3 * PG, RW), b3);
	for (i = 0;; i++) {
		int64_t r = smm_mmap(mm, top + i * PG, PG, i & 1 ? RO : RW,
				     FLAGS | SMM_MAP_FIXED_NOREPLACE);
		if (r < 0) {
			assert_int_equal(r, -ENOMEM);
			break;
		}
		assert_int_equal(r, (int64_t)(top + i * PG));
	}
	n = mm_stats(mm).nr_vmas;
	assert_int_equal(n, max + 1);
	/* at max + 1: every mmap fails, merging, fixed or placed */
	assert_int_equal(smm_mmap(mm, top + i * PG, PG, i & 1 ? RW : RO,
				  FLAGS | SMM_MAP_FIXED_NOREPLACE),
			 -ENOMEM);
	assert_int_equal(smm_mmap(mm, 0, PG, RW, FLAGS), -ENOMEM);
	assert_int_equal(smm_mmap(mm, b3 + PG, PG, RO, FLAGS | SMM_MAP_FIXED),
			 -ENOMEM);
	assert_int_equal(smm_munmap(mm, b3 + PG, PG), -ENOMEM);
	assert_int_equal(smm_mprotect(mm, b3, PG, RO), -ENOMEM);
	assert_int_equal(mm_stats(mm).nr_vmas, max + 1);
	assert_int_equal(smm_mm_verify(mm), 0);
	expect_vmas(mm, b3, b3 + 3 * PG, { b3, b3 + 3 * PG, RW });

	/* at max: a new VMA is fine, a split is not */
	i--;
	assert_int_equal(smm_munmap(mm, top + i * PG, PG), 0);
	assert_int_equal(mm_stats(mm).nr_vmas, max);
	int64_t a = smm_mmap(mm, 0, PG, RW, FLAGS);
	assert_true(a > 0);
	assert_int_equal(mm_stats(mm).nr_vmas, max + 1);
	assert_int_equal(smm_munmap(mm, (uint64_t)a, PG), 0);
	assert_int_equal(smm_munmap(mm, b3 + PG, PG), -ENOMEM);
	assert_int_equal(smm_mmap(mm, b3 + PG, PG, RO, FLAGS | SMM_MAP_FIXED),
			 -ENOMEM);
	assert_int_equal(smm_mprotect(mm, b3, PG, RO), -ENOMEM);
	assert_int_equal(smm_mprotect(mm, b3 + 2 * PG, PG, RO), -ENOMEM);
	assert_int_equal(smm_mprotect(mm, b3, 3 * PG, RW), 0); /* no split */
	/* splits that add nothing in the end are not refused */
	assert_int_equal(smm_mmap(mm, b3, PG, RO, FLAGS | SMM_MAP_FIXED),
			 (int64_t)b3);
	assert_int_equal(mm_stats(mm).nr_vmas, max + 1);
	assert_int_equal(smm_mmap(mm, b3, PG, RW, FLAGS | SMM_MAP_FIXED),
			 -ENOMEM);
	assert_int_equal(smm_munmap(mm, b3, PG), 0);
	assert_int_equal(smm_mmap(mm, b3, PG, RW, FLAGS | SMM_MAP_FIXED),
			 (int64_t)b3); /* merges back into one VMA */
	expect_vmas(mm, b3, b3 + 3 * PG, { b3, b3 + 3 * PG, RW });
	assert_int_equal(mm_stats(mm).nr_vmas, max);
	assert_int_equal(smm_mm_verify(mm), 0);

	/* at max - 1: mprotect of the middle splits once, then fails */
	i--;
	assert_int_equal(smm_munmap(mm, top + i * PG, PG), 0);
	assert_int_equal(mm_stats(mm).nr_vmas, max - 1);
	assert_int_equal(smm_mprotect(mm, b3 + PG, PG, RO), -ENOMEM);
	expect_vmas(mm, b3, b3 + 3 * PG, { b3, b3 + PG, RW },
		    { b3 + PG, b3 + 3 * PG, RW });
	assert_int_equal(mm_stats(mm).nr_vmas, max);
	assert_int_equal(smm_mm_verify(mm), 0);
	/* everything goes at destroy: frames and tables back to zero (the
	 * teardown checks the pool) */
}

/* A second CPU switched to the test's mm until told to go (below). */
struct other_cpu {
	struct env *e;
	pthread_mutex_t m;
	pthread_cond_t c;
	int state; /* 1 switched, 2 leave */
};

static void *other_cpu_thread(void *arg)
{
	struct other_cpu *o = arg;
	struct smm_cpu *cpu = smm_cpu_attach(o->e->pool);

	assert_non_null(cpu);
	smm_cpu_switch_mm(cpu, o->e->mm);
	pthread_mutex_lock(&o->m);
	o->state = 1;
	pthread_cond_broadcast(&o->c);
	while (o->state != 2)
		pthread_cond_wait(&o->c, &o->m);
	pthread_mutex_unlock(&o->m);
	smm_cpu_switch_mm(cpu, NULL);
	smm_cpu_detach(cpu);
	return NULL;
}

/* Populate @len at TA, unmap it, and return the shootdowns it took. */
static uint64_t munmap_flushes(struct env *e, uint64_t len)
{
	uint64_t before;

	assert_int_equal(smm_mmap(e->mm, TA, len, RW,
				  PRIV_ANON | SMM_MAP_FIXED | SMM_MAP_POPULATE),
			 (int64_t)TA);
	assert_int_equal(mm_stats(e->mm).rss_anon, len / PG);
	before = mm_stats(e->mm).tlb_flushes;
	assert_int_equal(smm_munmap(e->mm, TA, len), 0);
	assert_int_equal(mm_stats(e->mm).rss_anon, 0);
	assert_int_equal(pool_stats(e->pool).anon_pages, 0);
	return mm_stats(e->mm).tlb_flushes - before;
}

/*
 * While another CPU runs the mm, a large munmap shoots down once per
 * ~8,700 pages, not per 512: the zap queues its pages in the gather's own
 * batch and then in up to 16 more it allocates (mmu_gather.h). 16,384
 * pages: one shootdown when all 17 batches are full, one at the end; the
 * batches are reused after the first. With this CPU alone on the mm, the
 * flush is local and the zap flushes every 512 pages, and once more at
 * the end for the page tables it freed: 33. Every page
 * comes back to the pool (the teardown checks).
 */
static void test_munmap_batches(void **state)
{
	struct env *e = *state;
	struct other_cpu o = { .e = e };
	pthread_t t;

	pthread_mutex_init(&o.m, NULL);
	pthread_cond_init(&o.c, NULL);
	assert_int_equal(munmap_flushes(e, 64 * MB), 33);
	pthread_create(&t, NULL, other_cpu_thread, &o);
	pthread_mutex_lock(&o.m);
	while (o.state != 1)
		pthread_cond_wait(&o.c, &o.m);
	pthread_mutex_unlock(&o.m);
	assert_int_equal(munmap_flushes(e, 64 * MB), 2);
	assert_int_equal(munmap_flushes(e, 32 * MB), 1);
	pthread_mutex_lock(&o.m);
	o.state = 2;
	pthread_cond_broadcast(&o.c);
	pthread_mutex_unlock(&o.m);
	pthread_join(t, NULL);
	assert_int_equal(smm_mm_verify(e->mm), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_placement_topdown),
		T(test_placement_custom_base),
		T(test_hint),
		T(test_fixed_replaces),
		T(test_fixed_noreplace),
		T(test_mmap_errors),
		T(test_munmap),
		T(test_munmap_errors),
		T(test_munmap_batches),
		T(test_merge),
		T(test_vmas_query),
		T(test_populate),
		T(test_inject_munmap_split),
		T(test_inject_munmap_span),
		T(test_inject_fixed_middle),
		T(test_inject_fixed_span),
		T(test_inject_mmap_new),
		T(test_inject_mmap_populate),
		T(test_inject_mprotect_split),
		T(test_inject_mprotect_span),
		T(test_placement_many_holes),
		T(test_max_map_count),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
