/*
 * test_kernel64.c - a 64 MiB anonymous region through touch, MADV_DONTNEED,
 * mprotect and munmap, checked against numbers taken from the Linux kernel
 * on this machine: data, -EFAULT addresses, resident pages, anonymous RSS,
 * page faults and page-table bytes after each step.
 *
 * Provenance: tests/kernel64-probe.c runs the same sequence with real
 * syscalls (prctl(PR_SET_THP_DISABLE), mmap at 0x200000000000 with
 * MAP_FIXED_NOREPLACE, VmPTE and RssAnon growth from /proc/self/status,
 * ru_minflt growth, mincore(2) for residency, SIGSEGV si_addr for faults).
 * Measured on Linux 6.18.44 (x86-64, 4-level paging, PT_RECLAIM=y); three
 * runs gave identical output. To regenerate:
 *
 *   gcc -O1 -o /tmp/kernel64-probe tests/kernel64-probe.c && /tmp/kernel64-probe
 *
 * and copy the numbers below (K_* constants; offsets are from TA).
 *
 * Step 7 (MADV_DONTNEED of two whole, 2 MiB-aligned PTE tables) is where
 * Linux 6.14+ (PT_RECLAIM) frees the tables and Linux before 6.14 does not:
 * the "none" scheme models the latter, so it must keep them; a scheme that
 * reclaims on zap must match the kernel.
 */
#include "common.h"

/* kernel64-probe output, Linux 6.18.44 */
#define K1_PT	      0
#define K1_RES	      0
#define K2_PT	      139264 /* 32 PTE tables + 1 PMD + 1 PUD */
#define K2_RSS	      14336
#define K2_FLT	      16384
#define K2_RES	      16384
#define K3_PT	      139264
#define K3_RSS	      13824
#define K3_RES	      15360
#define K4_PT	      139264
#define K4_RSS	      13824
#define K4_FLT	      1024
#define K4_RES	      16384
#define K5_PT	      139264
#define K5_RSS	      13824
#define K5_SEGV	      (32 * MB) /* write 16 at 32M-8 */
#define K5_RES	      16384
#define K6_PT	      98304
#define K6_RSS	      7682
#define K6_RES_LO     4097
#define K6_RES_HI     6145
#define K6_SEGV1      16781312 /* read 8192 at 16M */
#define K6_SEGV2      41938940 /* read 8 at 40M-4K-4 */
#define K7_PT_RECLAIM 90112
#define K7_RSS	      6658
#define K7_RES_LO     4097
#define K7_RES_HI     5121
#define K8_PT	      0
#define K8_RSS	      0

static int setup(void **state)
{
	return env_setup_sized(state, 128 * MB);
}

static uint64_t rd64(struct smm_cpu *cpu, uint64_t a)
{
	uint64_t v = ~0ULL;
	assert_int_equal(smm_read(cpu, a, &v, 8, NULL), 0);
	return v;
}

/* pages of [lo, hi) written in step 2 (offsets): index at 0 and 4088 */
static void check_written(struct smm_cpu *cpu, uint64_t lo, uint64_t hi)
{
	for (uint64_t o = lo; o < hi; o += PG) {
		uint64_t a = rd64(cpu, TA + o), b = rd64(cpu, TA + o + 4088);
		if (a != o / PG || b != o / PG) {
			fprintf(stderr,
				"page at +%#" PRIx64 ": %" PRIu64 " %" PRIu64
				"\n",
				o, a, b);
			fail();
		}
	}
}

static void check_zero_pages(struct smm_cpu *cpu, uint64_t lo, uint64_t hi)
{
	for (uint64_t o = lo; o < hi; o += PG) {
		assert_int_equal(rd64(cpu, TA + o), 0);
		assert_int_equal(rd64(cpu, TA + o + 4088), 0);
	}
}

static void test_kernel64(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	struct smm_cpu *cpu = e->cpu;
	struct smm_mm_stats st;
	uint64_t flt;

	/* 1: map 64 MiB read/write */
	map_at(mm, TA, 64 * MB, RW);
	st = mm_stats(mm);
	assert_int_equal(st.pt_bytes, K1_PT);
	assert_int_equal(resident(mm, TA, 64 * MB), K1_RES);

	/* 2: read [0, 8M), write page indexes into [8M, 64M) */
	for (uint64_t o = 0; o < 8 * MB; o += PG)
		rd8(cpu, TA + o);
	for (uint64_t o = 8 * MB; o < 64 * MB; o += PG) {
		uint64_t v = o / PG;
		assert_int_equal(smm_write(cpu, TA + o, &v, 8, NULL), 0);
		assert_int_equal(smm_write(cpu, TA + o + 4088, &v, 8, NULL), 0);
	}
	st = mm_stats(mm);
	assert_int_equal(st.pt_bytes, K2_PT);
	assert_int_equal(st.pud_bytes, PG);
	assert_int_equal(st.pmd_bytes, PG);
	assert_int_equal(st.pte_bytes, 32 * PG);
	assert_int_equal(st.rss_anon, K2_RSS);
	assert_int_equal(st.zero_ptes, 8 * MB / PG);
	assert_int_equal(st.faults, K2_FLT);
	assert_int_equal(resident(mm, TA, 64 * MB), K2_RES);
	assert_int_equal(pool_stats(e->pool).anon_pages, K2_RSS);

	/* 3: MADV_DONTNEED [1M, 3M) and [12M+4K, 14M+4K): no whole table */
	assert_int_equal(
		smm_madvise(mm, TA + 1 * MB, 2 * MB, SMM_MADV_DONTNEED), 0);
	assert_int_equal(smm_madvise(mm, TA + 12 * MB + PG, 2 * MB,
				     SMM_MADV_DONTNEED),
			 0);
	st = mm_stats(mm);
	assert_int_equal(st.pt_bytes, K3_PT);
	assert_int_equal(st.rss_anon, K3_RSS);
	assert_int_equal(st.zero_ptes, 8 * MB / PG - 512);
	assert_int_equal(resident(mm, TA, 64 * MB), K3_RES);

	/* 4: read the first byte of every page again */
	flt = mm_stats(mm).faults;
	for (uint64_t o = 0; o < 64 * MB; o += PG)
		rd8(cpu, TA + o);
	st = mm_stats(mm);
	assert_int_equal(st.faults - flt, K4_FLT);
	assert_int_equal(st.pt_bytes, K4_PT);
	assert_int_equal(st.rss_anon, K4_RSS);
	assert_int_equal(st.zero_ptes, 8 * MB / PG + 512);
	assert_int_equal(resident(mm, TA, 64 * MB), K4_RES);
	check_zero_pages(cpu, 0, 8 * MB);
	check_written(cpu, 8 * MB, 12 * MB + PG);
	check_zero_pages(cpu, 12 * MB + PG, 14 * MB + PG);
	check_written(cpu, 14 * MB + PG, 64 * MB);

	/* 5: mprotect [32M, 48M) read-only; write 16 bytes from 32M - 8 */
	assert_int_equal(smm_mprotect(mm, TA + 32 * MB, 16 * MB, RO), 0);
	expect_write_fault(cpu, TA + 32 * MB - 8, 16, -EFAULT, TA + K5_SEGV);
	st = mm_stats(mm);
	assert_int_equal(st.pt_bytes, K5_PT);
	assert_int_equal(st.rss_anon, K5_RSS);
	assert_int_equal(resident(mm, TA, 64 * MB), K5_RES);
	expect_vmas(mm, 0, SMM_TASK_SIZE, { TA, TA + 32 * MB, RW },
		    { TA + 32 * MB, TA + 48 * MB, RO },
		    { TA + 48 * MB, TA + 64 * MB, RW });
	/* the 8 bytes before 32M were written; the RO part is intact */
	assert_int_equal(rd64(cpu, TA + 32 * MB - 8), 0x7777777777777777ULL);
	check_written(cpu, 32 * MB, 48 * MB);

	/* 6: munmap [16M + 4K, 40M - 4K) */
	assert_int_equal(smm_munmap(mm, TA + 16 * MB + PG, 24 * MB - 2 * PG),
			 0);
	st = mm_stats(mm);
	assert_int_equal(st.pt_bytes, K6_PT);
	assert_int_equal(st.pte_bytes, K6_PT - 2 * PG);
	assert_int_equal(st.rss_anon, K6_RSS);
	assert_int_equal(resident(mm, TA, 16 * MB + PG), K6_RES_LO);
	assert_int_equal(resident(mm, TA + 40 * MB - PG, 24 * MB + PG),
			 K6_RES_HI);
	expect_read_fault(cpu, TA + 16 * MB, 8192, -EFAULT, TA + K6_SEGV1);
	expect_read_fault(cpu, TA + 40 * MB - PG - 4, 8, -EFAULT,
			  TA + K6_SEGV2);
	expect_vmas(mm, 0, SMM_TASK_SIZE, { TA, TA + 16 * MB + PG, RW },
		    { TA + 40 * MB - PG, TA + 48 * MB, RO },
		    { TA + 48 * MB, TA + 64 * MB, RW });
	check_written(cpu, 14 * MB + PG, 16 * MB + PG);
	check_written(cpu, 40 * MB - PG, 64 * MB);

	/* 7: MADV_DONTNEED [48M, 52M): two whole PTE tables */
	uint64_t pt6 = mm_stats(mm).pt_bytes;
	assert_int_equal(
		smm_madvise(mm, TA + 48 * MB, 4 * MB, SMM_MADV_DONTNEED), 0);
	st = mm_stats(mm);
	assert_int_equal(st.rss_anon, K7_RSS);
	assert_int_equal(resident(mm, TA, 16 * MB + PG), K7_RES_LO);
	assert_int_equal(resident(mm, TA + 40 * MB - PG, 24 * MB + PG),
			 K7_RES_HI);
	if (test_scheme() == SMM_SCHEME_NONE)
		assert_int_equal(st.pt_bytes, pt6); /* Linux before 6.14 */
	else
		assert_int_equal(st.pt_bytes, K7_PT_RECLAIM);
	check_zero_pages(cpu, 48 * MB, 52 * MB);
	check_written(cpu, 52 * MB, 64 * MB);

	/* 8: munmap everything */
	assert_int_equal(smm_munmap(mm, TA, 64 * MB), 0);
	st = mm_stats(mm);
	assert_int_equal(st.pt_bytes, K8_PT);
	assert_int_equal(st.rss_anon, K8_RSS);
	assert_int_equal(st.zero_ptes, 0);
	assert_int_equal(st.nr_vmas, 0);
	expect_read_fault(cpu, TA, 1, -EFAULT, TA);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kernel64, setup,
						env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
