/*
 * test_mprotect.c - smm_mprotect: VMA splits and merges as Linux 6.18 makes
 * them, protection enforced on the next access even when the translation
 * was cached (-EFAULT at the exact first byte, bytes before it copied),
 * x86 semantics (write-only and exec-only mappings are readable), the zero
 * page never written through after mprotect, pages and data kept, and the
 * errors: unaligned, unknown bits, overflow, a hole (-ENOMEM after the VMAs
 * before it were changed), unmapped start, len 0 (0 even when unmapped).
 */
#include "common.h"

#define NONE SMM_PROT_NONE

static void test_split_merge(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 16 * PG, RW);
	write_pat(e->cpu, TA, 16 * PG, 1);
	assert_int_equal(smm_mprotect(mm, TA + 4 * PG, 4 * PG, RO), 0);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 4 * PG, RW },
		    { TA + 4 * PG, TA + 8 * PG, RO },
		    { TA + 8 * PG, TA + 16 * PG, RW });
	assert_int_equal(mm_stats(mm).nr_vmas, 3);
	/* widen the RO part at its front: the RW VMA shrinks, no new VMA */
	assert_int_equal(smm_mprotect(mm, TA + 2 * PG, 2 * PG, RO), 0);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 2 * PG, RW },
		    { TA + 2 * PG, TA + 8 * PG, RO },
		    { TA + 8 * PG, TA + 16 * PG, RW });
	/* and at its back */
	assert_int_equal(smm_mprotect(mm, TA + 8 * PG, PG, RO), 0);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 2 * PG, RW },
		    { TA + 2 * PG, TA + 9 * PG, RO },
		    { TA + 9 * PG, TA + 16 * PG, RW });
	/* restoring merges everything back into one VMA */
	assert_int_equal(smm_mprotect(mm, TA + 2 * PG, 7 * PG, RW), 0);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 16 * PG, RW });
	assert_int_equal(mm_stats(mm).nr_vmas, 1);
	/* same protection: nothing changes */
	assert_int_equal(smm_mprotect(mm, TA + 3 * PG, 2 * PG, RW), 0);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 16 * PG, RW });
	/* the whole VMA */
	assert_int_equal(smm_mprotect(mm, TA, 16 * PG, NONE), 0);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 16 * PG, NONE });
	/* pages stay through PROT_NONE */
	assert_int_equal(mm_stats(mm).rss_anon, 16);
	assert_int_equal(resident(mm, TA, 16 * PG), 16);
	assert_int_equal(smm_mprotect(mm, TA, 16 * PG, RW), 0);
	check_pat(e->cpu, TA, 16 * PG, 1);
	/* an unaligned length is rounded up */
	assert_int_equal(smm_mprotect(mm, TA, PG + 1, RO), 0);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 2 * PG, RO },
		    { TA + 2 * PG, TA + 16 * PG, RW });
}

static void test_across_vmas(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 4 * PG, RW);
	map_at(mm, TA + 4 * PG, 4 * PG, RO);
	map_at(mm, TA + 8 * PG, 4 * PG, SMM_PROT_EXEC);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 4 * PG, RW },
		    { TA + 4 * PG, TA + 8 * PG, RO },
		    { TA + 8 * PG, TA + 12 * PG, SMM_PROT_EXEC });
	/* untouched VMAs: all three become one */
	assert_int_equal(smm_mprotect(mm, TA, 12 * PG, RW), 0);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 12 * PG, RW });
	write_pat(e->cpu, TA, 12 * PG, 2);
	/* a range inside, across old boundaries */
	assert_int_equal(smm_mprotect(mm, TA + 3 * PG, 6 * PG, NONE), 0);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 3 * PG, RW },
		    { TA + 3 * PG, TA + 9 * PG, NONE },
		    { TA + 9 * PG, TA + 12 * PG, RW });
	expect_read_fault(e->cpu, TA + 3 * PG - 2, 4, -EFAULT, TA + 3 * PG);
	expect_write_fault(e->cpu, TA + 9 * PG - 1, 1, -EFAULT,
			   TA + 9 * PG - 1);
	check_pat(e->cpu, TA, 3 * PG, 2);
	check_pat(e->cpu, TA + 9 * PG, 3 * PG, 2);
	assert_int_equal(smm_mprotect(mm, TA, 12 * PG, RW), 0);
	check_pat(e->cpu, TA, 12 * PG, 2);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 12 * PG, RW });
}

static void test_enforced(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	struct smm_cpu *cpu = e->cpu;
	map_at(mm, TA, 8 * PG, RW);
	write_pat(cpu, TA, 8 * PG, 3);
	/* the translations are cached now (TLB) */
	check_pat(cpu, TA, 8 * PG, 3);
	assert_int_equal(smm_mprotect(mm, TA + 2 * PG, 2 * PG, RO), 0);
	/* a write running into it stops at its first byte */
	uint8_t buf[64];
	memset(buf, 0xab, sizeof(buf));
	uint64_t fa = 0;
	assert_int_equal(smm_write(cpu, TA + 2 * PG - 32, buf, 64, &fa),
			 -EFAULT);
	assert_int_equal(fa, TA + 2 * PG);
	assert_int_equal(rd8(cpu, TA + 2 * PG - 1), 0xab);
	assert_int_equal(rd8(cpu, TA + 2 * PG - 32), 0xab);
	check_pat(cpu, TA + 2 * PG, 2 * PG, 3);
	expect_write_fault(cpu, TA + 3 * PG + 5, 1, -EFAULT, TA + 3 * PG + 5);
	assert_int_equal(smm_fill(cpu, TA + 4 * PG - 1, 0, 2, &fa), -EFAULT);
	assert_int_equal(fa, TA + 4 * PG - 1);
	/* past it, writes work */
	wr8(cpu, TA + 4 * PG, 0x11);
	assert_int_equal(rd8(cpu, TA + 4 * PG), 0x11);

	/* PROT_NONE: reads fault too, at the first byte */
	assert_int_equal(smm_mprotect(mm, TA + 6 * PG, PG, NONE), 0);
	expect_read_fault(cpu, TA + 5 * PG + 100, 2 * PG, -EFAULT, TA + 6 * PG);
	expect_read_fault(cpu, TA + 6 * PG + 4095, 1, -EFAULT,
			  TA + 6 * PG + 4095);
	/* and back: data intact, writable again */
	assert_int_equal(smm_mprotect(mm, TA + 2 * PG, 6 * PG, RW), 0);
	check_pat(cpu, TA + 2 * PG, 2 * PG, 3);
	check_pat(cpu, TA + 5 * PG, 3 * PG, 3);
	write_pat(cpu, TA, 8 * PG, 4);
	check_pat(cpu, TA, 8 * PG, 4);
	assert_int_equal(mm_stats(mm).rss_anon, 8);
}

/* x86-64: a write-only or exec-only mapping can be read; exec-only cannot
 * be written; PROT_NONE cannot be touched. */
static void test_x86_prot_semantics(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 2 * PG, SMM_PROT_WRITE);
	map_at(mm, TA + 4 * PG, 2 * PG, SMM_PROT_EXEC);
	map_at(mm, TA + 8 * PG, 2 * PG, NONE);
	wr8(e->cpu, TA, 9);
	assert_int_equal(rd8(e->cpu, TA), 9);
	assert_int_equal(rd8(e->cpu, TA + PG), 0);
	assert_int_equal(rd8(e->cpu, TA + 4 * PG), 0);
	expect_write_fault(e->cpu, TA + 4 * PG, 1, -EFAULT, TA + 4 * PG);
	expect_read_fault(e->cpu, TA + 8 * PG, 1, -EFAULT, TA + 8 * PG);
	expect_write_fault(e->cpu, TA + 8 * PG, 1, -EFAULT, TA + 8 * PG);
	/* exec-only -> RWX */
	assert_int_equal(
		smm_mprotect(mm, TA + 4 * PG, 2 * PG, RW | SMM_PROT_EXEC), 0);
	wr8(e->cpu, TA + 4 * PG, 7);
	assert_int_equal(rd8(e->cpu, TA + 4 * PG), 7);
}

/* A page mapped to the zero page by a read must never be written through
 * when mprotect makes it writable: the write gets its own page. */
static void test_zero_page_after_mprotect(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 4 * PG, RO);
	check_zero(e->cpu, TA, 4 * PG);
	assert_int_equal(mm_stats(mm).zero_ptes, 4);
	assert_int_equal(smm_mprotect(mm, TA, 4 * PG, RW), 0);
	write_pat(e->cpu, TA + PG, PG, 5);
	struct smm_mm_stats st = mm_stats(mm);
	assert_int_equal(st.zero_ptes, 3);
	assert_int_equal(st.rss_anon, 1);
	check_zero(e->cpu, TA, PG);
	check_zero(e->cpu, TA + 2 * PG, 2 * PG);
	check_pat(e->cpu, TA + PG, PG, 5);
	/* another address space still sees zeros */
	struct smm_mm *mm2 = new_mm(e->pool, 0);
	smm_cpu_switch_mm(e->cpu, mm2);
	map_at(mm2, TA, 4 * PG, RO);
	check_zero(e->cpu, TA, 4 * PG);
	smm_cpu_switch_mm(e->cpu, mm);
	smm_mm_destroy(mm2);
}

static void test_errors(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 4 * PG, RW);
	map_at(mm, TA + 6 * PG, 4 * PG, RW);
	/* values from Linux 6.18 on this machine */
	assert_int_equal(smm_mprotect(mm, TA + 1, PG, RO), -EINVAL);
	assert_int_equal(smm_mprotect(mm, TA, PG, 0x10), -EINVAL);
	assert_int_equal(smm_mprotect(mm, TA, PG, RW | 0x100), -EINVAL);
	assert_int_equal(smm_mprotect(mm, TA, -PG, RO), -ENOMEM);
	assert_int_equal(smm_mprotect(mm, TA, UINT64_MAX, RO), -ENOMEM);
	/* unmapped start: nothing changes */
	assert_int_equal(smm_mprotect(mm, TA + 4 * PG, 4 * PG, RO), -ENOMEM);
	assert_int_equal(smm_mprotect(mm, TA - PG, 2 * PG, RO), -ENOMEM);
	assert_int_equal(smm_mprotect(mm, TA + GB, PG, RO), -ENOMEM);
	expect_vmas(mm, TA - PG, TA + GB, { TA, TA + 4 * PG, RW },
		    { TA + 6 * PG, TA + 10 * PG, RW });
	/* len 0: 0, even unmapped or unaligned length zero */
	assert_int_equal(smm_mprotect(mm, TA, 0, RO), 0);
	assert_int_equal(smm_mprotect(mm, TA + GB, 0, RO), 0);
	expect_vmas(mm, TA - PG, TA + GB, { TA, TA + 4 * PG, RW },
		    { TA + 6 * PG, TA + 10 * PG, RW });
}

static void test_hole(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 4 * PG, RW);
	map_at(mm, TA + 6 * PG, 4 * PG, RW);
	write_pat(e->cpu, TA, 4 * PG, 6);
	/* Linux: the VMA before the hole is changed, the one after is not */
	assert_int_equal(smm_mprotect(mm, TA + 2 * PG, 6 * PG, RO), -ENOMEM);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 2 * PG, RW },
		    { TA + 2 * PG, TA + 4 * PG, RO },
		    { TA + 6 * PG, TA + 10 * PG, RW });
	/* and the change is in force */
	expect_write_fault(e->cpu, TA + 2 * PG, 1, -EFAULT, TA + 2 * PG);
	wr8(e->cpu, TA + 6 * PG, 1);
	check_pat(e->cpu, TA, 4 * PG, 6);
	/* several VMAs before the hole; as on Linux 6.18 (checked with
	 * /proc/self/maps), the part with an anon_vma and the untouched VMA
	 * after it stay apart */
	map_at(mm, TA + 10 * PG, 2 * PG, RO);
	assert_int_equal(smm_mprotect(mm, TA + 7 * PG, 8 * PG, NONE), -ENOMEM);
	expect_vmas(mm, TA, TA + GB, { TA, TA + 2 * PG, RW },
		    { TA + 2 * PG, TA + 4 * PG, RO },
		    { TA + 6 * PG, TA + 7 * PG, RW },
		    { TA + 7 * PG, TA + 10 * PG, NONE },
		    { TA + 10 * PG, TA + 12 * PG, NONE });
	expect_read_fault(e->cpu, TA + 11 * PG, 1, -EFAULT, TA + 11 * PG);
}

/* mprotect while data is cached in the TLB, repeated with many pages. */
static void test_tlb_many(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	map_at(mm, TA, 256 * PG, RW);
	for (int round = 0; round < 20; round++) {
		write_pat(e->cpu, TA, 256 * PG, round);
		uint64_t s = (uint64_t)(round * 7 % 200);
		assert_int_equal(smm_mprotect(mm, TA + s * PG, 50 * PG, RO), 0);
		for (uint64_t p = 0; p < 256; p += 5) {
			uint8_t v = 1;
			int r = smm_write(e->cpu, TA + p * PG + 7, &v, 1, NULL);
			bool ro = p >= s && p < s + 50;
			assert_int_equal(r, ro ? -EFAULT : 0);
		}
		assert_int_equal(smm_mprotect(mm, TA + s * PG, 50 * PG, RW), 0);
		expect_vmas(mm, TA, TA + GB, { TA, TA + 256 * PG, RW });
	}
	assert_true(mm_stats(mm).tlb_flushes > 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_split_merge),
		T(test_across_vmas),
		T(test_enforced),
		T(test_x86_prot_semantics),
		T(test_zero_page_after_mprotect),
		T(test_errors),
		T(test_hole),
		T(test_tlb_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
