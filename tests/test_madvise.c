/*
 * test_madvise.c - smm_madvise and smm_mincore: MADV_DONTNEED (zeros after,
 * rss and residency drop, cached translations gone), MADV_FREE (contents
 * stay), MADV_POPULATE_READ (zero page), MADV_POPULATE_WRITE (anonymous
 * pages, replacing zero-page entries), MADV_WILLNEED (nothing), unknown
 * advice, holes (-ENOMEM, mapped parts still advised), and the errno values
 * of Linux 6.18 measured on this machine with small programs:
 *   POPULATE_WRITE on PROT_READ        -> EINVAL (not EFAULT)
 *   POPULATE_READ/WRITE on PROT_NONE   -> EINVAL
 *   DONTNEED/FREE/WILLNEED on PROT_NONE-> 0
 *   unknown advice (even len 0, hole) -> EINVAL
 *   unaligned -> EINVAL, overflow -> EINVAL, len 0 -> 0, unmapped -> ENOMEM
 *   mincore: unaligned EINVAL, hole/unmapped ENOMEM, len 0 -> 0
 * and the advice that sets VMA flags (NORMAL, RANDOM, SEQUENTIAL,
 * DONTFORK, DOFORK, DONTDUMP, DODUMP, HUGEPAGE, NOHUGEPAGE, WIPEONFORK,
 * KEEPONFORK): each sets or clears exactly its flag, splits the VMA at the
 * range's ends and merges it back, keeps the pages, skips holes with
 * -ENOMEM; COLD (0) and REMOVE (-EINVAL) on anonymous memory.
 */
#include "common.h"

#define MADV(a, l, adv) smm_madvise(e->mm, (a), (l), (adv))

static void test_dontneed(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 16 * PG, RW);
	write_pat(e->cpu, TA, 16 * PG, 1);
	check_pat(e->cpu, TA, 16 * PG, 1); /* cached in the TLB */
	assert_int_equal(resident(mm, TA, 16 * PG), 16);
	assert_int_equal(MADV(TA + 4 * PG, 8 * PG, SMM_MADV_DONTNEED), 0);
	check_pat(e->cpu, TA, 4 * PG, 1);
	check_pat(e->cpu, TA + 12 * PG, 4 * PG, 1);
	struct smm_mm_stats st = mm_stats(mm);
	assert_int_equal(st.rss_anon, 8);
	assert_int_equal(pool_stats(e->pool).anon_pages, 8);
	assert_int_equal(resident(mm, TA, 16 * PG), 8);
	assert_int_equal(resident(mm, TA + 4 * PG, 8 * PG), 0);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 16 * PG, RW });
	check_zero(e->cpu, TA + 4 * PG, 8 * PG);
	/* reading mapped zero pages */
	st = mm_stats(mm);
	assert_int_equal(st.zero_ptes, 8);
	assert_int_equal(st.rss_anon, 8);
	/* DONTNEED of zero-page entries drops them */
	assert_int_equal(MADV(TA + 4 * PG, 4 * PG, SMM_MADV_DONTNEED), 0);
	assert_int_equal(mm_stats(mm).zero_ptes, 4);
	/* an unaligned length is rounded up */
	assert_int_equal(MADV(TA, 1, SMM_MADV_DONTNEED), 0);
	assert_int_equal(mm_stats(mm).rss_anon, 7);
	assert_int_equal(rd8(e->cpu, TA), 0);
	assert_int_equal(rd8(e->cpu, TA + PG), pat(TA + PG, 1));
	/* writes after DONTNEED get fresh pages */
	write_pat(e->cpu, TA, 16 * PG, 2);
	check_pat(e->cpu, TA, 16 * PG, 2);
	assert_int_equal(mm_stats(mm).rss_anon, 16);
	assert_int_equal(mm_stats(mm).zero_ptes, 0);
	/* PROT_NONE and read-only VMAs: allowed, zapped */
	assert_int_equal(smm_mprotect(mm, TA, 2 * PG, SMM_PROT_NONE), 0);
	assert_int_equal(smm_mprotect(mm, TA + 2 * PG, 2 * PG, RO), 0);
	assert_int_equal(MADV(TA, 4 * PG, SMM_MADV_DONTNEED), 0);
	assert_int_equal(mm_stats(mm).rss_anon, 12);
	check_zero(e->cpu, TA + 2 * PG, 2 * PG);
}

static void test_madv_free(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 8 * PG, RW);
	write_pat(e->cpu, TA, 8 * PG, 3);
	assert_int_equal(MADV(TA, 8 * PG, SMM_MADV_FREE), 0);
	/* no memory pressure: the contents stay (Linux: they do) */
	check_pat(e->cpu, TA, 8 * PG, 3);
	assert_int_equal(resident(mm, TA, 8 * PG), 8);
	/* writing after FREE keeps the new data */
	write_pat(e->cpu, TA, 4 * PG, 4);
	check_pat(e->cpu, TA, 4 * PG, 4);
	check_pat(e->cpu, TA + 4 * PG, 4 * PG, 3);
	/* on untouched and zero-page memory: nothing to do, no error */
	map_at(mm, TA + 16 * PG, 8 * PG, RW);
	check_zero(e->cpu, TA + 16 * PG, 4 * PG);
	assert_int_equal(MADV(TA + 16 * PG, 8 * PG, SMM_MADV_FREE), 0);
	check_zero(e->cpu, TA + 16 * PG, 8 * PG);
	/* PROT_NONE: 0 */
	assert_int_equal(smm_mprotect(mm, TA + 16 * PG, 8 * PG, SMM_PROT_NONE),
			 0);
	assert_int_equal(MADV(TA + 16 * PG, 8 * PG, SMM_MADV_FREE), 0);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 8 * PG, RW },
		    { TA + 16 * PG, TA + 24 * PG, SMM_PROT_NONE });
}

static void test_populate_read(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 16 * PG, RW);
	write_pat(e->cpu, TA, 2 * PG, 5);
	assert_int_equal(MADV(TA, 16 * PG, SMM_MADV_POPULATE_READ), 0);
	struct smm_mm_stats st = mm_stats(mm);
	assert_int_equal(st.zero_ptes, 14);
	assert_int_equal(st.rss_anon, 2);
	assert_int_equal(resident(mm, TA, 16 * PG), 16);
	check_pat(e->cpu, TA, 2 * PG, 5);
	/* populated: reading does not fault */
	uint64_t f = mm_stats(mm).faults;
	check_zero(e->cpu, TA + 2 * PG, 14 * PG);
	assert_int_equal(mm_stats(mm).faults, f);
	/* again: nothing changes */
	assert_int_equal(MADV(TA, 16 * PG, SMM_MADV_POPULATE_READ), 0);
	assert_int_equal(mm_stats(mm).zero_ptes, 14);
	/* read-only VMA: fine */
	map_at(mm, TA + 32 * PG, 4 * PG, RO);
	assert_int_equal(MADV(TA + 32 * PG, 4 * PG, SMM_MADV_POPULATE_READ), 0);
	assert_int_equal(mm_stats(mm).zero_ptes, 18);
}

static void test_populate_write(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 16 * PG, RW);
	assert_int_equal(MADV(TA, 8 * PG, SMM_MADV_POPULATE_READ), 0);
	assert_int_equal(mm_stats(mm).zero_ptes, 8);
	write_pat(e->cpu, TA + 8 * PG, PG, 6);
	assert_int_equal(MADV(TA, 16 * PG, SMM_MADV_POPULATE_WRITE), 0);
	struct smm_mm_stats st = mm_stats(mm);
	assert_int_equal(st.zero_ptes, 0);
	assert_int_equal(st.rss_anon, 16);
	assert_int_equal(pool_stats(e->pool).anon_pages, 16);
	check_pat(e->cpu, TA + 8 * PG, PG, 6);
	check_zero(e->cpu, TA, 8 * PG);
	/* populated for writing: writes do not fault */
	uint64_t f = mm_stats(mm).faults;
	write_pat(e->cpu, TA, 16 * PG, 7);
	assert_int_equal(mm_stats(mm).faults, f);
	check_pat(e->cpu, TA, 16 * PG, 7);
}

static void test_populate_prot(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 4 * PG, RO);
	map_at(mm, TA + 8 * PG, 4 * PG, SMM_PROT_NONE);
	/* Linux 6.18: -EINVAL for a protection that forbids the access (the
	 * header says -EFAULT; the kernel on this machine says EINVAL) */
	assert_int_equal(MADV(TA + 8 * PG, 4 * PG, SMM_MADV_POPULATE_READ),
			 -EINVAL);
	assert_int_equal(MADV(TA + 8 * PG, 4 * PG, SMM_MADV_POPULATE_WRITE),
			 -EINVAL);
	assert_int_equal(resident(mm, TA + 8 * PG, 4 * PG), 0);
	/* WILLNEED, DONTNEED, FREE on PROT_NONE: 0 */
	assert_int_equal(MADV(TA + 8 * PG, 4 * PG, SMM_MADV_WILLNEED), 0);
	assert_int_equal(MADV(TA + 8 * PG, 4 * PG, SMM_MADV_DONTNEED), 0);
	assert_int_equal(MADV(TA + 8 * PG, 4 * PG, SMM_MADV_FREE), 0);
	/* POPULATE_WRITE on a read-only mapping */
	assert_int_equal(MADV(TA, 4 * PG, SMM_MADV_POPULATE_WRITE), -EINVAL);
	assert_int_equal(mm_stats(mm).rss_anon, 0);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 4 * PG, RO },
		    { TA + 8 * PG, TA + 12 * PG, SMM_PROT_NONE });
}

static void test_willneed(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 16 * PG, RW);
	assert_int_equal(MADV(TA, 16 * PG, SMM_MADV_WILLNEED), 0);
	struct smm_mm_stats st = mm_stats(mm);
	assert_int_equal(st.rss_anon, 0);
	assert_int_equal(st.zero_ptes, 0);
	assert_int_equal(resident(mm, TA, 16 * PG), 0);
	write_pat(e->cpu, TA, 16 * PG, 8);
	assert_int_equal(MADV(TA, 16 * PG, SMM_MADV_WILLNEED), 0);
	check_pat(e->cpu, TA, 16 * PG, 8);
}

static void test_errors(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 4 * PG, RW);
	write_pat(e->cpu, TA, 4 * PG, 9);
	static const int bad[] = { 0x7fff, 999, -1, 5, 6, 7 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(MADV(TA, PG, bad[i]), -EINVAL);
		assert_int_equal(MADV(TA, 0, bad[i]), -EINVAL);
		assert_int_equal(MADV(TA + GB, PG, bad[i]), -EINVAL);
	}
	static const int adv[] = { SMM_MADV_WILLNEED, SMM_MADV_DONTNEED,
				   SMM_MADV_FREE, SMM_MADV_POPULATE_READ,
				   SMM_MADV_POPULATE_WRITE };
	for (size_t i = 0; i < sizeof(adv) / sizeof(adv[0]); i++) {
		assert_int_equal(MADV(TA + 1, PG, adv[i]), -EINVAL);
		assert_int_equal(MADV(TA, -PG, adv[i]), -EINVAL);
		assert_int_equal(MADV(TA, UINT64_MAX, adv[i]), -EINVAL);
		assert_int_equal(MADV(TA, 0, adv[i]), 0);
		assert_int_equal(MADV(TA + GB, 0, adv[i]), 0);
		assert_int_equal(MADV(TA + GB, PG, adv[i]), -ENOMEM);
		assert_int_equal(MADV(TA + 4 * PG, PG, adv[i]), -ENOMEM);
	}
	check_pat(e->cpu, TA, 4 * PG, 9);
	expect_vmas(mm, 0, SMM_TASK_SIZE, { TA, TA + 4 * PG, RW });
}

static void test_holes(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 4 * PG, RW);
	assert_int_equal(smm_munmap(mm, TA + 2 * PG, PG), 0);
	/* POPULATE_WRITE: the part before the hole is populated (Linux) */
	assert_int_equal(MADV(TA, 4 * PG, SMM_MADV_POPULATE_WRITE), -ENOMEM);
	assert_int_equal(resident(mm, TA, 2 * PG), 2);
	write_pat(e->cpu, TA, 2 * PG, 10);
	write_pat(e->cpu, TA + 3 * PG, PG, 10);
	/* DONTNEED: both sides are zapped */
	assert_int_equal(MADV(TA, 4 * PG, SMM_MADV_DONTNEED), -ENOMEM);
	assert_int_equal(resident(mm, TA, 2 * PG), 0);
	assert_int_equal(resident(mm, TA + 3 * PG, PG), 0);
	assert_int_equal(mm_stats(mm).rss_anon, 0);
	check_zero(e->cpu, TA, 2 * PG);
	check_zero(e->cpu, TA + 3 * PG, PG);
	/* a range starting in the hole */
	write_pat(e->cpu, TA + 3 * PG, PG, 11);
	assert_int_equal(MADV(TA + 2 * PG, 2 * PG, SMM_MADV_DONTNEED), -ENOMEM);
	check_zero(e->cpu, TA + 3 * PG, PG);
	/* POPULATE_READ, WILLNEED, FREE */
	assert_int_equal(MADV(TA, 4 * PG, SMM_MADV_POPULATE_READ), -ENOMEM);
	assert_int_equal(MADV(TA, 4 * PG, SMM_MADV_WILLNEED), -ENOMEM);
	assert_int_equal(MADV(TA, 4 * PG, SMM_MADV_FREE), -ENOMEM);
	expect_vmas(mm, 0, SMM_TASK_SIZE, { TA, TA + 2 * PG, RW },
		    { TA + 3 * PG, TA + 4 * PG, RW });
}

static void test_mincore(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 8 * PG, RW);
	unsigned char v[16];
	memset(v, 0x55, sizeof(v));
	assert_int_equal(smm_mincore(mm, TA, 8 * PG, v), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(v[i], 0);
	assert_int_equal(v[8], 0x55);
	wr8(e->cpu, TA + PG, 1);
	rd8(e->cpu, TA + 3 * PG); /* zero page counts */
	wr8(e->cpu, TA + 7 * PG + 4095, 1);
	memset(v, 0x55, sizeof(v));
	assert_int_equal(smm_mincore(mm, TA, 8 * PG, v), 0);
	static const unsigned char want[8] = { 0, 1, 0, 1, 0, 0, 0, 1 };
	assert_memory_equal(v, want, 8);
	assert_int_equal(v[8], 0x55);
	/* unaligned length: rounded up, one entry per page */
	memset(v, 0x55, sizeof(v));
	assert_int_equal(smm_mincore(mm, TA + PG, PG + 1, v), 0);
	assert_int_equal(v[0], 1);
	assert_int_equal(v[1], 0);
	assert_int_equal(v[2], 0x55);
	/* len 0 writes nothing */
	memset(v, 0x55, sizeof(v));
	assert_int_equal(smm_mincore(mm, TA, 0, v), 0);
	assert_int_equal(v[0], 0x55);
	/* PROT_NONE pages are still present */
	assert_int_equal(smm_mprotect(mm, TA, 8 * PG, SMM_PROT_NONE), 0);
	assert_int_equal(resident(mm, TA, 8 * PG), 3);
	/* errors */
	assert_int_equal(smm_mincore(mm, TA + 1, PG, v), -EINVAL);
	assert_int_equal(smm_mincore(mm, TA + 8 * PG, PG, v), -ENOMEM);
	assert_int_equal(smm_mincore(mm, TA, 9 * PG, v), -ENOMEM);
	assert_int_equal(smm_mincore(mm, TA - PG, 2 * PG, v), -ENOMEM);
	assert_int_equal(smm_munmap(mm, TA + 4 * PG, PG), 0);
	assert_int_equal(smm_mincore(mm, TA, 8 * PG, v), -ENOMEM);
	/* MADV_DONTNEED clears it */
	assert_int_equal(MADV(TA, 4 * PG, SMM_MADV_DONTNEED), 0);
	assert_int_equal(resident(mm, TA, 4 * PG), 0);
	assert_int_equal(resident(mm, TA + 5 * PG, 3 * PG), 1);
}

/* Many DONTNEED/refill rounds over a region spanning two PTE tables. */
static void test_dontneed_rounds(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	uint64_t a = TA + 2 * MB - 32 * PG;
	map_at(mm, a, 64 * PG, RW);
	unsigned seed = 1;
	uint8_t shadow[64];
	memset(shadow, 0, sizeof(shadow));
	for (int round = 0; round < 200; round++) {
		seed = seed * 1103515245 + 12345;
		uint64_t s = (seed >> 8) % 64, n = 1 + (seed >> 16) % (64 - s);
		if (round % 2) {
			assert_int_equal(
				MADV(a + s * PG, n * PG, SMM_MADV_DONTNEED), 0);
			for (uint64_t i = s; i < s + n; i++)
				shadow[i] = 0;
		} else {
			for (uint64_t i = s; i < s + n; i++) {
				shadow[i] = (uint8_t)(round + 1);
				wr8(e->cpu, a + i * PG + (i % 4096), shadow[i]);
			}
		}
		uint64_t rss = 0;
		for (uint64_t i = 0; i < 64; i++) {
			assert_int_equal(rd8(e->cpu, a + i * PG + (i % 4096)),
					 shadow[i]);
			rss += shadow[i] != 0;
		}
		assert_int_equal(mm_stats(mm).rss_anon, rss);
	}
}

/* A zap of more pages than one gather batch holds: 4 MiB, two whole PTE
 * tables, and 3 MiB + 4 KiB unaligned, all pages written. */
static void test_dontneed_large(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 8 * MB, RW);
	write_pat(e->cpu, TA, 8 * MB, 12);
	assert_int_equal(MADV(TA, 4 * MB, SMM_MADV_DONTNEED), 0);
	assert_int_equal(mm_stats(mm).rss_anon, 4 * MB / PG);
	assert_int_equal(MADV(TA + 4 * MB + PG, 3 * MB + PG, SMM_MADV_DONTNEED),
			 0);
	/* the page at 4M, plus [7M+8K, 8M) */
	assert_int_equal(mm_stats(mm).rss_anon, 1 + (1 * MB / PG - 2));
	check_zero(e->cpu, TA, 4 * MB);
	check_pat(e->cpu, TA + 4 * MB, PG, 12);
	check_zero(e->cpu, TA + 4 * MB + PG, 3 * MB + PG);
	check_pat(e->cpu, TA + 7 * MB + 2 * PG, 1 * MB - 2 * PG, 12);
	assert_int_equal(pool_stats(e->pool).anon_pages, 1 + (1 * MB / PG - 2));
}

/* The flags of the VMA covering @a (smm_mm_vmas). */
static uint64_t vma_flags_at(struct smm_mm *mm, uint64_t a)
{
	struct smm_vma_info v;

	assert_int_equal(smm_mm_vmas(mm, a, a + 1, &v, 1), 1);
	return v.flags;
}

#define ALL_ADVICE_FLAGS                                         \
	(SMM_VM_SEQ_READ | SMM_VM_RAND_READ | SMM_VM_DONTCOPY |  \
	 SMM_VM_DONTDUMP | SMM_VM_HUGEPAGE | SMM_VM_NOHUGEPAGE | \
	 SMM_VM_WIPEONFORK | SMM_VM_MERGEABLE)

static void test_flag_advice(void **state)
{
	static const struct {
		int advice;
		uint64_t set, clear;
	} t[] = {
		{ SMM_MADV_SEQUENTIAL, SMM_VM_SEQ_READ, SMM_VM_RAND_READ },
		{ SMM_MADV_RANDOM, SMM_VM_RAND_READ, SMM_VM_SEQ_READ },
		{ SMM_MADV_NORMAL, 0, SMM_VM_SEQ_READ | SMM_VM_RAND_READ },
		{ SMM_MADV_DONTFORK, SMM_VM_DONTCOPY, 0 },
		{ SMM_MADV_DOFORK, 0, SMM_VM_DONTCOPY },
		{ SMM_MADV_DONTDUMP, SMM_VM_DONTDUMP, 0 },
		{ SMM_MADV_DODUMP, 0, SMM_VM_DONTDUMP },
		{ SMM_MADV_HUGEPAGE, SMM_VM_HUGEPAGE, SMM_VM_NOHUGEPAGE },
		{ SMM_MADV_NOHUGEPAGE, SMM_VM_NOHUGEPAGE, SMM_VM_HUGEPAGE },
		{ SMM_MADV_WIPEONFORK, SMM_VM_WIPEONFORK, 0 },
		{ SMM_MADV_KEEPONFORK, 0, SMM_VM_WIPEONFORK },
		{ SMM_MADV_MERGEABLE, SMM_VM_MERGEABLE, 0 },
		{ SMM_MADV_UNMERGEABLE, 0, SMM_VM_MERGEABLE },
	};
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	uint64_t base;

	map_at(mm, TA, 16 * PG, RW);
	write_pat(e->cpu, TA, 16 * PG, 21);
	base = vma_flags_at(mm, TA);
	assert_int_equal(base & ALL_ADVICE_FLAGS, 0);
	assert_true(base & SMM_VM_ACCOUNT);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint64_t before = vma_flags_at(mm, TA + 4 * PG), want;

		/* the middle of the VMA: split in three, then merged back
		 * by the opposite advice further down the table */
		assert_int_equal(MADV(TA + 4 * PG, 8 * PG, t[i].advice), 0);
		want = (before | t[i].set) & ~t[i].clear;
		assert_int_equal(vma_flags_at(mm, TA + 4 * PG), want);
		assert_int_equal(vma_flags_at(mm, TA + 11 * PG), want);
		assert_int_equal(vma_flags_at(mm, TA) & ALL_ADVICE_FLAGS, 0);
		assert_int_equal(
			vma_flags_at(mm, TA + 12 * PG) & ALL_ADVICE_FLAGS, 0);
		if (want != base)
			expect_vmas(mm, 0, SMM_TASK_SIZE,
				    { TA, TA + 4 * PG, RW },
				    { TA + 4 * PG, TA + 12 * PG, RW },
				    { TA + 12 * PG, TA + 16 * PG, RW });
		else
			expect_vmas(mm, 0, SMM_TASK_SIZE,
				    { TA, TA + 16 * PG, RW });
		check_pat(e->cpu, TA, 16 * PG, 21);
		assert_int_equal(smm_mm_verify(mm), 0);
	}
	/* nothing clears NOHUGEPAGE but HUGEPAGE, which sets its own flag:
	 * NOHUGEPAGE on the whole range makes the three alike again */
	assert_int_equal(MADV(TA, 16 * PG, SMM_MADV_NOHUGEPAGE), 0);
	expect_vmas(mm, 0, SMM_TASK_SIZE, { TA, TA + 16 * PG, RW });
	assert_int_equal(vma_flags_at(mm, TA), base | SMM_VM_NOHUGEPAGE);
	assert_int_equal(mm_stats(mm).rss_anon, 16);
	/* advice that changes nothing splits nothing */
	assert_int_equal(MADV(TA + PG, PG, SMM_MADV_NORMAL), 0);
	assert_int_equal(MADV(TA + PG, PG, SMM_MADV_DOFORK), 0);
	expect_vmas(mm, 0, SMM_TASK_SIZE, { TA, TA + 16 * PG, RW });
}

/* Two VMAs advised alike merge when they touch and agree otherwise. */
static void test_flag_advice_merge(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;

	map_at(mm, TA, 4 * PG, RW);
	assert_int_equal(MADV(TA, 4 * PG, SMM_MADV_DONTDUMP), 0);
	map_at(mm, TA + 4 * PG, 4 * PG, RW); /* differs: not merged */
	expect_vmas(mm, 0, SMM_TASK_SIZE, { TA, TA + 4 * PG, RW },
		    { TA + 4 * PG, TA + 8 * PG, RW });
	assert_int_equal(MADV(TA + 4 * PG, 4 * PG, SMM_MADV_DONTDUMP), 0);
	expect_vmas(mm, 0, SMM_TASK_SIZE, { TA, TA + 8 * PG, RW });
	assert_true(vma_flags_at(mm, TA + 5 * PG) & SMM_VM_DONTDUMP);
	/* MAP_STACK: VM_NOHUGEPAGE, so it does not merge with a plain
	 * neighbour, until NOHUGEPAGE makes the neighbour alike */
	assert_int_equal(smm_mmap(mm, TA + 8 * PG, 4 * PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED | SMM_MAP_STACK),
			 (int64_t)(TA + 8 * PG));
	assert_int_equal(vma_flags_at(mm, TA + 8 * PG) & ALL_ADVICE_FLAGS,
			 SMM_VM_NOHUGEPAGE);
	assert_int_equal(MADV(TA, 8 * PG, SMM_MADV_DODUMP), 0);
	expect_vmas(mm, 0, SMM_TASK_SIZE, { TA, TA + 8 * PG, RW },
		    { TA + 8 * PG, TA + 12 * PG, RW });
	assert_int_equal(MADV(TA, 8 * PG, SMM_MADV_NOHUGEPAGE), 0);
	expect_vmas(mm, 0, SMM_TASK_SIZE, { TA, TA + 12 * PG, RW });
}

/* A hole: the mapped parts on both sides are advised, -ENOMEM at the end;
 * COLD and REMOVE. */
static void test_flag_advice_holes(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;

	map_at(mm, TA, 2 * PG, RW);
	map_at(mm, TA + 3 * PG, 2 * PG, RO);
	assert_int_equal(MADV(TA + PG, 4 * PG, SMM_MADV_DONTFORK), -ENOMEM);
	assert_false(vma_flags_at(mm, TA) & SMM_VM_DONTCOPY);
	assert_true(vma_flags_at(mm, TA + PG) & SMM_VM_DONTCOPY);
	assert_true(vma_flags_at(mm, TA + 4 * PG) & SMM_VM_DONTCOPY);
	assert_int_equal(MADV(TA + 2 * PG, PG, SMM_MADV_DONTFORK), -ENOMEM);
	assert_int_equal(MADV(TA + GB, PG, SMM_MADV_DONTFORK), -ENOMEM);
	assert_int_equal(MADV(TA + 1, PG, SMM_MADV_DONTFORK), -EINVAL);
	assert_int_equal(MADV(TA, UINT64_MAX, SMM_MADV_DONTFORK), -EINVAL);
	assert_int_equal(MADV(TA, 0, SMM_MADV_DONTFORK), 0);
	expect_vmas(mm, 0, SMM_TASK_SIZE, { TA, TA + PG, RW },
		    { TA + PG, TA + 2 * PG, RW },
		    { TA + 3 * PG, TA + 5 * PG, RO });
	write_pat(e->cpu, TA, 2 * PG, 22);
	assert_int_equal(MADV(TA, 2 * PG, SMM_MADV_COLD), 0);
	check_pat(e->cpu, TA, 2 * PG, 22);
	assert_int_equal(MADV(TA, 2 * PG, SMM_MADV_REMOVE), -EINVAL);
	assert_int_equal(MADV(TA + GB, PG, SMM_MADV_REMOVE), -ENOMEM);
	check_pat(e->cpu, TA, 2 * PG, 22);
	assert_int_equal(smm_mm_verify(mm), 0);
}

/*
 * Fault injection at every allocation of a flag advice that splits twice:
 * each failure answers -EAGAIN and leaves VMAs, flags and pages as they
 * were.
 */
static void test_flag_advice_inject(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	struct smm_vma_info before[4], after[4];
	size_t nb, na;
	unsigned long n;
	int r = -1;

	map_at(mm, TA, 16 * PG, RW);
	write_pat(e->cpu, TA, 16 * PG, 23);
	memset(before, 0, sizeof(before));
	nb = smm_mm_vmas(mm, 0, SMM_TASK_SIZE, before, 4);
	for (n = 1; n < 100; n++) {
		smm_pool_inject_failure(e->pool, n);
		r = MADV(TA + 4 * PG, 4 * PG, SMM_MADV_WIPEONFORK);
		smm_pool_inject_failure(e->pool, 0);
		if (!r)
			break;
		assert_int_equal(r, -EAGAIN);
		memset(after, 0, sizeof(after));
		na = smm_mm_vmas(mm, 0, SMM_TASK_SIZE, after, 4);
		assert_int_equal(na, nb);
		assert_memory_equal(after, before, sizeof(before[0]) * nb);
		check_pat(e->cpu, TA, 16 * PG, 23);
	}
	assert_int_equal(r, 0);
	assert_true(n > 1);
	assert_true(vma_flags_at(mm, TA + 4 * PG) & SMM_VM_WIPEONFORK);
	assert_int_equal(smm_mm_verify(mm), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_dontneed),
		T(test_madv_free),
		T(test_populate_read),
		T(test_populate_write),
		T(test_populate_prot),
		T(test_willneed),
		T(test_errors),
		T(test_holes),
		T(test_mincore),
		T(test_dontneed_rounds),
		T(test_dontneed_large),
		T(test_flag_advice),
		T(test_flag_advice_merge),
		T(test_flag_advice_holes),
		T(test_flag_advice_inject),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
