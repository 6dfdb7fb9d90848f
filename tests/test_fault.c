/*
 * test_fault.c - page faults through smm_read/smm_write/smm_fill: a read
 * fault maps the shared zero page, a write after it replaces it (never
 * writing through the zero page, even with the read translation cached),
 * data crossing page and table boundaries, fault counting, -EFAULT outside
 * VMAs with the exact first byte not copied, -EINVAL without an address
 * space, and page-table bytes per level (PUD/PMD/PTE tables) for touches in
 * one 2 MiB table, two tables, across a 1 GiB and a 512 GiB boundary
 * (numbers measured with tests/kernel64-probe.c: 12, 12, 16, 20 and 24 KiB
 * of VmPTE on Linux 6.18), and what munmap frees (free_pgtables with its
 * floor and ceiling: a table still covered by a neighbouring VMA stays),
 * and small fills on the store fast path.
 */
#include "common.h"

static void test_read_then_write(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 8 * PG, RW);
	struct smm_mm_stats st = mm_stats(mm);
	assert_int_equal(st.faults, 0);
	assert_int_equal(st.rss_anon, 0);
	assert_int_equal(rd8(e->cpu, TA + 100), 0);
	st = mm_stats(mm);
	assert_int_equal(st.zero_ptes, 1);
	assert_int_equal(st.rss_anon, 0);
	assert_int_equal(st.faults, 1);
	assert_int_equal(pool_stats(e->pool).anon_pages, 0);
	/* the translation is cached; reading again does not fault */
	assert_int_equal(rd8(e->cpu, TA + 200), 0);
	assert_int_equal(mm_stats(mm).faults, 1);
	/* a write replaces the zero page */
	wr8(e->cpu, TA + 300, 0x42);
	st = mm_stats(mm);
	assert_int_equal(st.zero_ptes, 0);
	assert_int_equal(st.rss_anon, 1);
	assert_int_equal(st.faults, 2);
	assert_int_equal(pool_stats(e->pool).anon_pages, 1);
	assert_int_equal(rd8(e->cpu, TA + 300), 0x42);
	assert_int_equal(rd8(e->cpu, TA + 299), 0);
	/* the zero page itself is untouched: other pages still read zeros */
	check_zero(e->cpu, TA + PG, 7 * PG);
	assert_int_equal(mm_stats(mm).zero_ptes, 7);
	/* a write first: one fault, no zero page */
	map_at(mm, TA + 1 * MB, PG, RW);
	uint64_t f = mm_stats(mm).faults;
	wr8(e->cpu, TA + 1 * MB, 1);
	st = mm_stats(mm);
	assert_int_equal(st.faults, f + 1);
	assert_int_equal(st.rss_anon, 2);
	assert_int_equal(st.zero_ptes, 7);
	/* further writes and reads do not fault */
	write_pat(e->cpu, TA, 8 * PG, 1);
	f = mm_stats(mm).faults;
	write_pat(e->cpu, TA, 8 * PG, 2);
	check_pat(e->cpu, TA, 8 * PG, 2);
	assert_int_equal(mm_stats(mm).faults, f);
	assert_int_equal(mm_stats(mm).zero_ptes, 0);
	assert_int_equal(mm_stats(mm).rss_anon, 9);
}

/* Zero pages must stay zero in every address space of the pool. */
static void test_zero_page_shared(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm2 = new_mm(e->pool, 0);
	map_at(e->mm, TA, 4 * PG, RW);
	check_zero(e->cpu, TA, 4 * PG);
	smm_cpu_switch_mm(e->cpu, mm2);
	map_at(mm2, TA, 4 * PG, RO);
	check_zero(e->cpu, TA, 4 * PG);
	smm_cpu_switch_mm(e->cpu, e->mm);
	for (int i = 0; i < 4; i++)
		assert_int_equal(smm_fill(e->cpu, TA + i * PG, 0xff, PG, NULL),
				 0);
	smm_cpu_switch_mm(e->cpu, mm2);
	check_zero(e->cpu, TA, 4 * PG);
	assert_int_equal(mm_stats(mm2).zero_ptes, 4);
	smm_cpu_switch_mm(e->cpu, e->mm);
	smm_mm_destroy(mm2);
	assert_int_equal(mm_stats(e->mm).rss_anon, 4);
}

static void test_cross_boundaries(void **state)
{
	struct env *e = *state;
	/* 6 MiB around a 2 MiB boundary and a 1 GiB boundary */
	uint64_t a = TA + 1 * GB - 3 * MB;
	map_at(e->mm, a, 6 * MB, RW);
	write_pat(e->cpu, a + 123, 6 * MB - 500, 3);
	check_pat(e->cpu, a + 123, 6 * MB - 500, 3);
	assert_int_equal(rd8(e->cpu, a + 122), 0);
	/* one big copy straight across the boundaries */
	size_t n = 3 * PG + 77;
	uint8_t *buf = malloc(n), *back = malloc(n);
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	uint64_t at = TA + 1 * GB - PG - 33;
	assert_int_equal(smm_write(e->cpu, at, buf, n, NULL), 0);
	assert_int_equal(smm_read(e->cpu, at, back, n, NULL), 0);
	assert_memory_equal(buf, back, n);
	free(buf);
	free(back);
	assert_int_equal(smm_fill(e->cpu, TA + 1 * GB - 5, 0x3c, 10, NULL), 0);
	for (int i = -5; i < 5; i++)
		assert_int_equal(rd8(e->cpu, TA + 1 * GB + i), 0x3c);
	assert_int_equal(mm_stats(e->mm).rss_anon, 6 * MB / PG);
}

static void test_fault_count(void **state)
{
	struct env *e = *state;
	map_at(e->mm, TA, 300 * PG, RW);
	for (int i = 0; i < 100; i++)
		rd8(e->cpu, TA + i * PG);
	for (int i = 100; i < 300; i++)
		wr8(e->cpu, TA + i * PG + 5, 1);
	struct smm_mm_stats st = mm_stats(e->mm);
	assert_int_equal(st.faults, 300);
	assert_int_equal(st.zero_ptes, 100);
	assert_int_equal(st.rss_anon, 200);
	/* upgrading the zero pages: one fault each */
	for (int i = 0; i < 100; i++)
		wr8(e->cpu, TA + i * PG, 1);
	st = mm_stats(e->mm);
	assert_int_equal(st.faults, 400);
	assert_int_equal(st.zero_ptes, 0);
	assert_int_equal(st.rss_anon, 300);
	/* all cached or walkable now */
	check_zero(e->cpu, TA + 1, PG - 1);
	for (int i = 0; i < 300; i++)
		rd8(e->cpu, TA + i * PG + 5);
	assert_int_equal(mm_stats(e->mm).faults, 400);
	/* failed accesses are not page faults handled... but must not count
	 * pages: rss unchanged */
	expect_read_fault(e->cpu, TA + 300 * PG, 1, -EFAULT, TA + 300 * PG);
	assert_int_equal(mm_stats(e->mm).rss_anon, 300);
}

static void test_efault(void **state)
{
	struct env *e = *state;
	struct smm_cpu *cpu = e->cpu;
	map_at(e->mm, TA, 4 * PG, RW);
	map_at(e->mm, TA + 8 * PG, 4 * PG, RW);
	expect_read_fault(cpu, TA - 1, 2, -EFAULT, TA - 1);
	expect_read_fault(cpu, TA - PG, PG, -EFAULT, TA - PG);
	expect_write_fault(cpu, TA + 4 * PG - 3, 10, -EFAULT, TA + 4 * PG);
	assert_int_equal(rd8(cpu, TA + 4 * PG - 1), 0x77);
	expect_read_fault(cpu, TA + 2 * PG, 8 * PG, -EFAULT, TA + 4 * PG);
	expect_write_fault(cpu, TA + 5 * PG + 17, 1, -EFAULT, TA + 5 * PG + 17);
	expect_read_fault(cpu, 0, 1, -EFAULT, 0);
	expect_read_fault(cpu, SMM_TASK_SIZE, 1, -EFAULT, SMM_TASK_SIZE);
	expect_write_fault(cpu, 0xffff800000000000ULL, 1, -EFAULT,
			   0xffff800000000000ULL);
	expect_read_fault(cpu, UINT64_MAX - 3, 2, -EFAULT, UINT64_MAX - 3);
	uint64_t fa = 0;
	assert_int_equal(smm_fill(cpu, TA + 12 * PG - 1, 1, 2, &fa), -EFAULT);
	assert_int_equal(fa, TA + 12 * PG);
	/* fault_addr may be NULL */
	uint8_t b[4];
	assert_int_equal(smm_read(cpu, TA + 6 * PG, b, 4, NULL), -EFAULT);
	/* after munmap */
	write_pat(cpu, TA + 8 * PG, 4 * PG, 4);
	assert_int_equal(smm_munmap(e->mm, TA + 9 * PG, PG), 0);
	expect_read_fault(cpu, TA + 8 * PG, 2 * PG, -EFAULT, TA + 9 * PG);
	expect_write_fault(cpu, TA + 9 * PG, 1, -EFAULT, TA + 9 * PG);
	check_pat(cpu, TA + 10 * PG, 2 * PG, 4);
	/* no address space: -EINVAL */
	smm_cpu_switch_mm(cpu, NULL);
	assert_int_equal(smm_read(cpu, TA, b, 1, NULL), -EINVAL);
	assert_int_equal(smm_write(cpu, TA, b, 1, NULL), -EINVAL);
	assert_int_equal(smm_fill(cpu, TA, 0, 1, NULL), -EINVAL);
	smm_cpu_switch_mm(cpu, e->mm);
	assert_int_equal(rd8(cpu, TA + 4 * PG - 1), 0x77);
}

/*
 * Fills of 0 to 8 bytes whose page is in the TLB take the store fast path:
 * they write their bytes and no other, at every offset; one that crosses
 * a page, or meets a read-only translation (the zero page, a page made
 * read-only after its writable translation was cached), goes the slow way
 * and faults or fails as a longer fill does.
 */
static void test_small_fill(void **state)
{
	struct env *e = *state;
	struct smm_cpu *cpu = e->cpu;
	uint8_t page[PG], back[PG];
	uint64_t fa;

	map_at(e->mm, TA, 4 * PG, RW);
	assert_int_equal(smm_fill(cpu, TA, 0x11, PG, NULL), 0);
	memset(page, 0x11, PG);
	for (size_t len = 0; len <= 8; len++) {
		for (uint64_t off = PG - 16; off <= PG - len; off++) {
			int byte = (int)(0x20 + len * 16 + (off & 15));

			assert_int_equal(
				smm_fill(cpu, TA + off, byte, len, NULL), 0);
			memset(page + off, byte, len);
		}
		assert_int_equal(smm_read(cpu, TA, back, PG, NULL), 0);
		assert_memory_equal(page, back, PG);
	}
	/* across the page boundary: both pages, the second one faulted */
	uint64_t f = mm_stats(e->mm).faults;
	assert_int_equal(smm_fill(cpu, TA + PG - 3, 0x5a, 7, NULL), 0);
	assert_int_equal(mm_stats(e->mm).faults, f + 1);
	for (int i = -3; i < 4; i++)
		assert_int_equal(rd8(cpu, TA + PG + i), 0x5a);
	assert_int_equal(rd8(cpu, TA + PG - 4), page[PG - 4]);
	/* a read left the zero page in the TLB: the fill replaces it */
	assert_int_equal(rd8(cpu, TA + 2 * PG), 0);
	assert_int_equal(smm_fill(cpu, TA + 2 * PG + 9, 0x66, 1, NULL), 0);
	assert_int_equal(rd8(cpu, TA + 2 * PG + 9), 0x66);
	assert_int_equal(mm_stats(e->mm).zero_ptes, 0);
	check_zero(cpu, TA + 3 * PG, PG);
	/* read-only after the writable translation was cached */
	assert_int_equal(smm_fill(cpu, TA + 2 * PG, 0x67, 8, NULL), 0);
	assert_int_equal(smm_mprotect(e->mm, TA + 2 * PG, PG, RO), 0);
	fa = 0;
	assert_int_equal(smm_fill(cpu, TA + 2 * PG + 1, 0x68, 4, &fa), -EFAULT);
	assert_int_equal(fa, TA + 2 * PG + 1);
	assert_int_equal(rd8(cpu, TA + 2 * PG + 1), 0x67);
	/* outside any VMA, and past the end of the address space */
	fa = 0;
	assert_int_equal(smm_fill(cpu, TA + 4 * PG, 1, 1, &fa), -EFAULT);
	assert_int_equal(fa, TA + 4 * PG);
	assert_int_equal(smm_fill(cpu, SMM_TASK_SIZE, 1, 8, &fa), -EFAULT);
	assert_int_equal(fa, SMM_TASK_SIZE);
	/* nothing to fill: nothing to fault */
	assert_int_equal(smm_fill(cpu, TA + 4 * PG, 1, 0, NULL), 0);
}

static void expect_pt(struct smm_mm *mm, uint64_t pud, uint64_t pmd,
		      uint64_t pte)
{
	struct smm_mm_stats st = mm_stats(mm);
	if (st.pud_bytes != pud || st.pmd_bytes != pmd || st.pte_bytes != pte)
		fprintf(stderr,
			"pt bytes pud %" PRIu64 " pmd %" PRIu64 " pte %" PRIu64
			", want %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
			st.pud_bytes, st.pmd_bytes, st.pte_bytes, pud, pmd,
			pte);
	assert_int_equal(st.pud_bytes, pud);
	assert_int_equal(st.pmd_bytes, pmd);
	assert_int_equal(st.pte_bytes, pte);
	assert_int_equal(st.pt_bytes, pud + pmd + pte);
}

/* kernel64-probe.c "page-table bytes for tests/test_fault.c" */
static void pt_case(struct env *e, uint64_t moff, uint64_t mlen,
		    const uint64_t *offs, int n, uint64_t pud, uint64_t pmd,
		    uint64_t pte, uint64_t kernel_total)
{
	assert_int_equal(pud + pmd + pte, kernel_total);
	map_at(e->mm, TA + moff, mlen, RW);
	expect_pt(e->mm, 0, 0, 0);
	for (int i = 0; i < n; i++)
		wr8(e->cpu, TA + offs[i], 1);
	expect_pt(e->mm, pud, pmd, pte);
	/* the pool counts them plus the PGD (and tables freed earlier whose
	 * RCU-deferred free has not run yet) */
	assert_true(pool_stats(e->pool).pt_pages >= 1 + (pud + pmd + pte) / PG);
	assert_int_equal(smm_munmap(e->mm, TA + moff, mlen), 0);
	expect_pt(e->mm, 0, 0, 0);
}

static void test_pt_levels(void **state)
{
	struct env *e = *state;
	const uint64_t K4 = 4096;
	uint64_t one[] = { 0 }, two_in_one[] = { 0, 2 * MB - PG },
		 two_tables[] = { 0, 2 * MB }, gb[] = { GB - PG, GB },
		 tb[] = { 512 * GB - PG, 512 * GB };
	pt_case(e, 0, 4 * MB, one, 1, K4, K4, K4, 12288);
	pt_case(e, 0, 4 * MB, two_in_one, 2, K4, K4, K4, 12288);
	pt_case(e, 0, 4 * MB, two_tables, 2, K4, K4, 2 * K4, 16384);
	pt_case(e, GB - 2 * MB, 4 * MB, gb, 2, K4, 2 * K4, 2 * K4, 20480);
	pt_case(e, 512 * GB - 2 * MB, 4 * MB, tb, 2, 2 * K4, 2 * K4, 2 * K4,
		24576);
	/* reads build the same tables as writes */
	map_at(e->mm, TA, 4 * MB, RW);
	rd8(e->cpu, TA);
	rd8(e->cpu, TA + 3 * MB);
	expect_pt(e->mm, K4, K4, 2 * K4);
}

static void test_free_pgtables(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	const uint64_t K4 = 4096;
	/*
	 * Linux's free_pgtables() floor/ceiling rule, as the schemes that
	 * model Linux keep it. "eager", "refcount" and "pmd-rwsem"
	 * deliberately free more (an emptied table goes even if a
	 * neighbouring VMA still covers it): test_reclaim.c checks that.
	 */
	if (test_scheme() != SMM_SCHEME_NONE &&
	    test_scheme() != SMM_SCHEME_PT_RECLAIM)
		skip();
	/* two VMAs in one PTE table: unmapping one keeps the table */
	map_at(mm, TA, 8 * PG, RW);
	map_at(mm, TA + 16 * PG, 8 * PG, RO);
	wr8(e->cpu, TA, 1);
	expect_pt(mm, K4, K4, K4);
	assert_int_equal(smm_munmap(mm, TA, 8 * PG), 0);
	expect_pt(mm, K4, K4, K4); /* the untouched neighbour still covers it */
	rd8(e->cpu, TA + 16 * PG);
	assert_int_equal(smm_munmap(mm, TA + 16 * PG, 8 * PG), 0);
	expect_pt(mm, 0, 0, 0);

	/* A = [TA, TA + 2M + 4K), B = [TA + 2M + 8K, TA + 4M): unmapping A
	 * frees the first PTE table, keeps the second (B covers it) */
	map_at(mm, TA, 2 * MB + PG, RW);
	map_at(mm, TA + 2 * MB + 2 * PG, 2 * MB - 2 * PG, RO);
	wr8(e->cpu, TA, 1);
	wr8(e->cpu, TA + 2 * MB, 1);
	rd8(e->cpu, TA + 3 * MB);
	expect_pt(mm, K4, K4, 2 * K4);
	assert_int_equal(smm_munmap(mm, TA, 2 * MB + PG), 0);
	expect_pt(mm, K4, K4, K4);
	assert_int_equal(mm_stats(mm).zero_ptes, 1);
	assert_int_equal(rd8(e->cpu, TA + 3 * MB), 0);
	assert_int_equal(smm_munmap(mm, TA + 2 * MB, 2 * MB), 0);
	expect_pt(mm, 0, 0, 0);

	/* a VMA in the next GiB keeps the PUD table, not the PMD table */
	map_at(mm, TA, PG, RW);
	map_at(mm, TA + 1 * GB, PG, RW);
	wr8(e->cpu, TA, 1);
	wr8(e->cpu, TA + 1 * GB, 1);
	expect_pt(mm, K4, 2 * K4, 2 * K4);
	assert_int_equal(smm_munmap(mm, TA, PG), 0);
	expect_pt(mm, K4, K4, K4);
	/* a VMA just below the 1 GiB boundary (merged with the one above):
	 * unmapping its upper 2 MiB frees that PTE table only */
	map_at(mm, TA + 1 * GB - 4 * MB, 4 * MB, RW);
	wr8(e->cpu, TA + 1 * GB - PG, 1);
	expect_pt(mm, K4, 2 * K4, 2 * K4);
	assert_int_equal(smm_munmap(mm, TA + 1 * GB - 2 * MB, 2 * MB), 0);
	/* the PTE table [1G-2M, 1G) is gone; the PMD table below 1G stays
	 * since [1G-4M, 1G-2M) still needs it */
	expect_pt(mm, K4, 2 * K4, K4);
	assert_int_equal(smm_munmap(mm, TA, 2 * GB), 0);
	expect_pt(mm, 0, 0, 0);
	/* munmap of an untouched region frees nothing it does not have */
	map_at(mm, TA, 8 * MB, RW);
	assert_int_equal(smm_munmap(mm, TA + 2 * MB, 2 * MB), 0);
	expect_pt(mm, 0, 0, 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_read_then_write),  T(test_zero_page_shared),
		T(test_cross_boundaries), T(test_fault_count),
		T(test_efault),		  T(test_pt_levels),
		T(test_free_pgtables),	  T(test_small_fill),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
