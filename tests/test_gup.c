/*
 * test_gup.c - get_user_pages / pin_user_pages, fast and slow:
 *  - pins add GUP_PIN_COUNTING_BIAS (1024) to the refcount, gets add 1;
 *    page_maybe_dma_pinned; the pin counters of the mm and the pool;
 *  - direct access through a pin (smm_page_address) is the same memory the
 *    address space reads and writes;
 *  - the slow path faults in (zero page on read, a private page for a
 *    write pin of a zero-page mapping), the fast path leaves non-present,
 *    read-only and zero-page entries to it;
 *  - holes and forbidding protections: pages pinned so far, or -EFAULT;
 *    flag and range errors;
 *  - a pinned frame is never reused while pinned, after munmap, DONTNEED or
 *    smm_mm_destroy (poison pool), and returns at the last unpin;
 *  - unpin_user_pages_dirty_lock marks pages dirty;
 *  - the recheck (debug builds): a hook changes the PTE or the PMD entry
 *    between the lockless read and the grab; the fast path backs off with
 *    the refcount unchanged;
 *  - real threads: GUP-fast and remote slow GUP against munmap, DONTNEED and
 *    mprotect of the same pages.
 */
#include "common.h"

#include <pthread.h>
#include <stdatomic.h>

#include "gup.h"
#include "pagewalk.h"

#define PIN_FAST(a, n, f, p) smm_pin_user_pages_fast(e->cpu, (a), (n), (f), (p))
#define PIN(a, n, f, p)	     smm_pin_user_pages(e->mm, (a), (n), (f), (p))
#define W		     SMM_FOLL_WRITE

static struct page *pg(struct smm_page *p)
{
	return (struct page *)p;
}

static int refcount(struct smm_page *p)
{
	return atomic_load(&pg(p)->refcount);
}

static void expect_pins(struct env *e, uint64_t acq, uint64_t rel)
{
	struct smm_mm_stats st = mm_stats(e->mm);
	struct smm_pool_stats ps = pool_stats(e->pool);

	assert_int_equal(st.pins_acquired, acq);
	assert_int_equal(st.pins_released, rel);
	assert_int_equal(ps.pins_acquired, acq);
	assert_int_equal(ps.pins_released, rel);
}

static void test_pin_fast_basic(void **state)
{
	struct env *e = *state;
	struct smm_page *p[8];

	map_at(e->mm, TA, 8 * PG, RW);
	write_pat(e->cpu, TA, 8 * PG, 1);
	assert_int_equal(PIN_FAST(TA + 5, 8, W, p), 8); /* start rounded down */
	for (int i = 0; i < 8; i++) {
		uint8_t *a = smm_page_address(p[i]);

		assert_int_equal(refcount(p[i]), 1 + 1024);
		assert_true(smm_page_maybe_dma_pinned(p[i]));
		for (int j = 0; j < 4096; j += 511)
			assert_int_equal(a[j],
					 pat(TA + (uint64_t)i * PG + j, 1));
		a[7] = 0x5a; /* the device writes */
	}
	for (int i = 0; i < 8; i++)
		assert_int_equal(rd8(e->cpu, TA + (uint64_t)i * PG + 7), 0x5a);
	wr8(e->cpu, TA + 9, 0x33); /* the CPU writes, the device sees it */
	assert_int_equal(((uint8_t *)smm_page_address(p[0]))[9], 0x33);
	expect_pins(e, 8, 0);
	/* pinned twice */
	assert_int_equal(PIN_FAST(TA, 1, 0, p + 0), 1);
	assert_int_equal(refcount(p[0]), 1 + 2048);
	expect_pins(e, 9, 0);
	assert_int_equal(smm_mm_verify(e->mm), 0);
	smm_unpin_user_pages(p, 1);
	smm_unpin_user_pages(p, 8);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(refcount(p[i]), 1);
		assert_false(smm_page_maybe_dma_pinned(p[i]));
	}
	expect_pins(e, 9, 9);
	/* no fault was needed: everything was mapped writable */
	assert_int_equal(mm_stats(e->mm).rss_anon, 8);
}

static void test_get_put(void **state)
{
	struct env *e = *state;
	struct smm_page *p[4];

	map_at(e->mm, TA, 4 * PG, RW);
	write_pat(e->cpu, TA, 4 * PG, 2);
	assert_int_equal(smm_get_user_pages_fast(e->cpu, TA, 4, 0, p), 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(refcount(p[i]), 2);
		assert_false(smm_page_maybe_dma_pinned(p[i]));
	}
	expect_pins(e, 0, 0); /* gets are not pins */
	struct smm_page *q[4];
	assert_int_equal(smm_get_user_pages(e->mm, TA, 4, W | SMM_FOLL_GET, q),
			 4);
	for (int i = 0; i < 4; i++) {
		assert_ptr_equal(p[i], q[i]);
		assert_int_equal(refcount(p[i]), 3);
		smm_put_page(p[i]);
		smm_put_page(q[i]);
		assert_int_equal(refcount(p[i]), 1);
	}
	/* a get survives munmap too; the last put frees the frame */
	assert_int_equal(smm_get_user_pages(e->mm, TA, 1, 0, p), 1);
	uint64_t anon = pool_stats(e->pool).anon_pages;
	assert_int_equal(smm_munmap(e->mm, TA, 4 * PG), 0);
	assert_int_equal(pool_stats(e->pool).anon_pages, 1);
	assert_int_equal(((uint8_t *)smm_page_address(p[0]))[3],
			 pat(TA + 3, 2));
	smm_put_page(p[0]);
	assert_int_equal(pool_stats(e->pool).anon_pages, 0);
	(void)anon;
}

static void test_slow_faults_in(void **state)
{
	struct env *e = *state;
	struct smm_page *p[8], *z[8];

	map_at(e->mm, TA, 8 * PG, RW);
	/* read pins of untouched memory: the zero page, nothing counted */
	assert_int_equal(PIN(TA, 8, 0, z), 8);
	struct smm_mm_stats st = mm_stats(e->mm);
	assert_int_equal(st.zero_ptes, 8);
	assert_int_equal(st.rss_anon, 0);
	for (int i = 0; i < 8; i++) {
		assert_ptr_equal(z[i], z[0]);
		assert_true(smm_page_maybe_dma_pinned(z[i]));
		assert_int_equal(((uint8_t *)smm_page_address(z[i]))[100], 0);
	}
	expect_pins(e, 0, 0);
	/* write pins of zero-page mappings: private pages first */
	assert_int_equal(PIN(TA, 8, W, p), 8);
	st = mm_stats(e->mm);
	assert_int_equal(st.zero_ptes, 0);
	assert_int_equal(st.rss_anon, 8);
	expect_pins(e, 8, 0);
	for (int i = 0; i < 8; i++) {
		assert_ptr_not_equal(p[i], z[0]);
		assert_int_equal(refcount(p[i]), 1025);
		/* FOLL_WRITE marks the page dirty (FOLL_TOUCH) */
		assert_true(atomic_load(&pg(p[i])->flags) & PG_DIRTY);
		memset(smm_page_address(p[i]), 0x40 + i, PG);
	}
	for (int i = 0; i < 8; i++)
		assert_int_equal(rd8(e->cpu, TA + (uint64_t)i * PG + 123),
				 0x40 + i);
	/* the zero page was never written */
	assert_int_equal(((uint8_t *)smm_page_address(z[0]))[123], 0);
	smm_unpin_user_pages(z, 8); /* nothing to release */
	expect_pins(e, 8, 0);
	smm_unpin_user_pages(p, 8);
	expect_pins(e, 8, 8);
	assert_int_equal(smm_mm_verify(e->mm), 0);
}

static void test_fast_falls_back(void **state)
{
	struct env *e = *state;
	struct smm_page *p[4];

	map_at(e->mm, TA, 4 * PG, RW);
	/* nothing mapped: the whole range goes to the slow path */
	assert_int_equal(gup_fast_only(e->cpu, TA, 4, SMM_FOLL_PIN, p), 0);
	assert_int_equal(PIN_FAST(TA, 4, 0, p), 4); /* zero pages */
	smm_unpin_user_pages(p, 4);
	/* zero-page entries: fine to read-pin locklessly, not to write */
	assert_int_equal(gup_fast_only(e->cpu, TA, 4, SMM_FOLL_PIN, p), 4);
	smm_unpin_user_pages(p, 4);
	assert_int_equal(gup_fast_only(e->cpu, TA, 4, SMM_FOLL_PIN | W, p), 0);
	uint64_t faults = mm_stats(e->mm).faults;
	assert_int_equal(PIN_FAST(TA, 4, W, p), 4);
	assert_true(mm_stats(e->mm).faults >= faults + 4);
	assert_int_equal(mm_stats(e->mm).rss_anon, 4);
	smm_unpin_user_pages(p, 4);
	/* first two pages now writable: the fast walk takes them, the rest
	 * goes slow (read-only after mprotect) */
	assert_int_equal(smm_mprotect(e->mm, TA + 2 * PG, 2 * PG, RO), 0);
	assert_int_equal(smm_mprotect(e->mm, TA + 2 * PG, 2 * PG, RW), 0);
	assert_int_equal(gup_fast_only(e->cpu, TA, 4, SMM_FOLL_PIN | W, p), 4);
	smm_unpin_user_pages(p, 4);
	assert_int_equal(smm_mprotect(e->mm, TA + 2 * PG, 2 * PG, RO), 0);
	assert_int_equal(gup_fast_only(e->cpu, TA, 4, SMM_FOLL_PIN | W, p), 2);
	smm_unpin_user_pages(p, 2);
	assert_int_equal(PIN_FAST(TA, 4, W, p), 2); /* RO VMA stops it */
	smm_unpin_user_pages(p, 2);
	assert_int_equal(PIN_FAST(TA, 4, 0, p), 4);
	smm_unpin_user_pages(p, 4);
	expect_pins(e, 16, 16); /* zero-page pins are not counted */
}

static void test_holes_and_errors(void **state)
{
	struct env *e = *state;
	struct smm_page *p[16];

	map_at(e->mm, TA, 2 * PG, RW);
	map_at(e->mm, TA + 3 * PG, 2 * PG, RW);
	map_at(e->mm, TA + 8 * PG, 2 * PG, SMM_PROT_NONE);
	map_at(e->mm, TA + 10 * PG, 2 * PG, RO);
	map_at(e->mm, TA + 12 * PG, 2 * PG, SMM_PROT_WRITE);
	for (int fast = 0; fast < 2; fast++) {
#define P(a, n, f) (fast ? PIN_FAST((a), (n), (f), p) : PIN((a), (n), (f), p))
		/* a hole stops the range: the pages before it */
		assert_int_equal(P(TA, 5, W), 2);
		smm_unpin_user_pages(p, 2);
		assert_int_equal(P(TA + 2 * PG, 1, 0), -EFAULT);
		assert_int_equal(P(TA + 6 * PG, 4, 0), -EFAULT);
		/* PROT_NONE */
		assert_int_equal(P(TA + 8 * PG, 1, 0), -EFAULT);
		assert_int_equal(P(TA + 3 * PG, 1, 0), 1);
		smm_unpin_user_pages(p, 1);
		/* read-only: reads fine, writes -EFAULT */
		assert_int_equal(P(TA + 10 * PG, 2, 0), 2);
		smm_unpin_user_pages(p, 2);
		assert_int_equal(P(TA + 10 * PG, 2, W), -EFAULT);
		/*
		 * PROT_WRITE only: the slow path's reads need VM_READ
		 * (check_vma_flags). GUP-fast checks only the PTE, which on
		 * x86 is readable for a write-only mapping: once the page is
		 * present it takes it, as Linux's does.
		 */
		if (!fast) {
			assert_int_equal(P(TA + 12 * PG, 1, 0), -EFAULT);
		} else {
			assert_int_equal(P(TA + 12 * PG, 1, 0), 1);
			smm_unpin_user_pages(p, 1);
		}
		assert_int_equal(P(TA + 12 * PG, 2, W), 2);
		smm_unpin_user_pages(p, 2);
		/* errors */
		assert_int_equal(P(TA, 0, 0), 0);
		assert_int_equal(P(TA, 1, SMM_FOLL_GET), -EINVAL);
		assert_int_equal(P(TA, 1, 0x8), -EINVAL);
		assert_int_equal(P(TA, 1, SMM_FOLL_PIN | SMM_FOLL_LONGTERM), 1);
		smm_unpin_user_pages(p, 1);
		assert_int_equal(P(TA, ~0UL, 0), -EOVERFLOW);
		assert_int_equal(P(0xfffffffffffff000ULL, 2, 0), -EOVERFLOW);
#undef P
	}
	assert_int_equal(smm_pin_user_pages_fast(e->cpu, TA, 1, 0, NULL),
			 -EINVAL);
	assert_int_equal(smm_pin_user_pages(e->mm, TA, 1, 0, NULL), -EINVAL);
	assert_int_equal(smm_get_user_pages(e->mm, TA, 1, SMM_FOLL_PIN, p),
			 -EINVAL);
	assert_int_equal(smm_get_user_pages_fast(e->cpu, TA, 1,
						 SMM_FOLL_LONGTERM, p),
			 -EINVAL);
	/* the fast path refuses a range past the top, the slow one pins up to it */
	map_at(e->mm, SMM_TASK_SIZE - PG, PG, RW);
	assert_int_equal(PIN_FAST(SMM_TASK_SIZE - PG, 2, 0, p), -EFAULT);
	assert_int_equal(PIN(SMM_TASK_SIZE - PG, 2, 0, p), 1);
	smm_unpin_user_pages(p, 1);
	assert_int_equal(PIN(SMM_TASK_SIZE, 1, 0, p), -EFAULT);
	/* no address space on the CPU */
	smm_cpu_switch_mm(e->cpu, NULL);
	assert_int_equal(PIN_FAST(TA, 1, 0, p), -EINVAL);
	smm_cpu_switch_mm(e->cpu, e->mm);
	struct smm_mm_stats st = mm_stats(e->mm);
	assert_int_equal(st.pins_acquired, st.pins_released);
}

/* Fill the pool's free frames with other data: a freed pinned frame would
 * be reused (and poisoned first) by now. */
static void churn(struct env *e, uint64_t at, uint64_t len)
{
	map_at(e->mm, at, len, RW);
	write_pat(e->cpu, at, len, 77);
	assert_int_equal(smm_munmap(e->mm, at, len), 0);
}

static void test_pinned_survives_unmap(void **state)
{
	struct env *e = *state;
	struct smm_page *p[4];

	map_at(e->mm, TA, 4 * PG, RW);
	write_pat(e->cpu, TA, 4 * PG, 3);
	assert_int_equal(PIN_FAST(TA, 2, W, p), 2);
	assert_int_equal(PIN(TA + 2 * PG, 2, W, p + 2), 2);
	assert_int_equal(smm_munmap(e->mm, TA, 2 * PG), 0);
	assert_int_equal(
		smm_madvise(e->mm, TA + 2 * PG, 2 * PG, SMM_MADV_DONTNEED), 0);
	check_zero(e->cpu, TA + 2 * PG, 2 * PG); /* the mapping is gone... */
	assert_int_equal(mm_stats(e->mm).rss_anon, 0); /* (zero pages now) */
	struct smm_pool_stats ps = pool_stats(e->pool);
	assert_int_equal(ps.anon_pages, 4); /* ...the frames stay */
	for (int i = 0; i < 4; i++) {
		uint8_t *a = smm_page_address(p[i]);

		assert_int_equal(refcount(p[i]), 1024);
		assert_int_equal(a[1000], pat(TA + (uint64_t)i * PG + 1000, 3));
		memset(a, 0xc0 + i, PG); /* still writable */
	}
	churn(e, TA + 64 * MB, 32 * MB);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4096; j++)
			assert_int_equal(((uint8_t *)smm_page_address(p[i]))[j],
					 0xc0 + i);
	uint64_t free0 = pool_stats(e->pool).free;
	smm_unpin_user_pages_dirty_lock(p, 4, true);
	ps = pool_stats(e->pool);
	assert_int_equal(ps.free, free0 + 4);
	assert_int_equal(ps.anon_pages, 0);
	expect_pins(e, 4, 4);
	assert_int_equal(smm_mm_verify(e->mm), 0);
}

static void test_pinned_survives_destroy(void **state)
{
	struct smm_pool *pool = smm_pool_create(64 * MB, SMM_POOL_POISON);
	struct smm_mm *mm = new_mm(pool, 0);
	struct smm_page *p[3];

	assert_non_null(pool);
	assert_int_equal(
		smm_mmap(mm, TA, 3 * PG, RW, PRIV_ANON | SMM_MAP_POPULATE), TA);
	/* remote GUP from a thread that is not a CPU */
	assert_int_equal(
		smm_pin_user_pages(mm, TA, 3, W | SMM_FOLL_LONGTERM, p), 3);
	for (int i = 0; i < 3; i++)
		memset(smm_page_address(p[i]), 0x11 * (i + 1), PG);
	smm_mm_destroy(mm);
	struct smm_pool_stats ps = pool_stats(pool);
	assert_int_equal(ps.anon_pages, 3);
	assert_int_equal(ps.pt_pages, 1); /* the PGD of the kept mm */
	assert_int_equal(smm_pool_destroy(pool), -EBUSY);
	for (int i = 0; i < 3; i++)
		assert_int_equal(((uint8_t *)smm_page_address(p[i]))[4095],
				 0x11 * (i + 1));
	smm_unpin_user_pages(p, 2);
	assert_int_equal(pool_stats(pool).anon_pages, 1);
	assert_int_equal(smm_pool_destroy(pool), -EBUSY);
	smm_unpin_user_pages(p + 2, 1);
	ps = pool_stats(pool);
	assert_int_equal(ps.pins_acquired, 3);
	assert_int_equal(ps.pins_released, 3);
	assert_pool_clean(pool);
	assert_int_equal(smm_pool_destroy(pool), 0);
}

static void test_unpin_dirty(void **state)
{
	struct env *e = *state;
	struct smm_page *p[2];

	map_at(e->mm, TA, 2 * PG, RW);
	write_pat(e->cpu, TA, 2 * PG, 4);
	assert_int_equal(smm_madvise(e->mm, TA, 2 * PG, SMM_MADV_FREE), 0);
	assert_int_equal(PIN_FAST(TA, 2, 0, p), 2);
	for (int i = 0; i < 2; i++) {
		assert_false(atomic_load(&pg(p[i])->flags) & PG_DIRTY);
		((uint8_t *)smm_page_address(p[i]))[0] = 9; /* DMA write */
	}
	smm_unpin_user_pages_dirty_lock(p, 1, false);
	assert_false(atomic_load(&pg(p[0])->flags) & PG_DIRTY);
	smm_unpin_user_pages_dirty_lock(p + 1, 1, true);
	assert_true(atomic_load(&pg(p[1])->flags) & PG_DIRTY);
	expect_pins(e, 2, 2);
}

#ifdef SMM_DEBUG
/* ---- the recheck: entries changed between the read and the grab ---- */

enum {
	H_PTE_ACCESSED,
	H_PTE_CLEAR,
	H_PMD,
	H_PTE_OTHER
};
static int hook_mode, hook_calls, hook_at;
static pteval_t hook_saved, hook_other;
static pteval_t *hook_ptep, *hook_pmdp;
static int hook_ref_seen;

static void gup_hook(struct smm_mm *mm, uint64_t addr, pteval_t *pmdp,
		     pteval_t *ptep)
{
	if (hook_calls++ != hook_at)
		return;
	hook_ptep = ptep;
	hook_pmdp = pmdp;
	hook_ref_seen = atomic_load(
		&pfn_to_page(mm->pool, pte_pfn(pte_read(ptep)))->refcount);
	switch (hook_mode) {
	case H_PTE_ACCESSED: /* same page, another value */
		hook_saved = pte_read(ptep);
		__pte_write(ptep, hook_saved & ~_PAGE_ACCESSED);
		break;
	case H_PTE_CLEAR: /* as a zap would, before its flush */
		hook_saved = __pte_xchg(ptep, 0);
		break;
	case H_PTE_OTHER: /* another page mapped there */
		hook_saved = __pte_xchg(ptep, hook_other);
		break;
	case H_PMD:
		hook_saved = table_read(pmdp);
		__pte_write(pmdp, hook_saved & ~_PAGE_ACCESSED);
		break;
	}
}

static void test_recheck(void **state)
{
	struct env *e = *state;
	struct smm_page *p[4], *q[1];

	map_at(e->mm, TA, 4 * PG, RW);
	write_pat(e->cpu, TA, 4 * PG, 5);
	/* the frames, for the refcounts */
	assert_int_equal(smm_get_user_pages(e->mm, TA, 1, 0, q), 1);
	struct smm_page *first = q[0];
	smm_put_page(first);
	smm_debug_gup_fast_hook = gup_hook;
	for (int mode = H_PTE_ACCESSED; mode <= H_PMD; mode++) {
		hook_mode = mode;
		hook_calls = 0;
		hook_at = 0;
		assert_int_equal(
			gup_fast_only(e->cpu, TA, 4, SMM_FOLL_PIN | W, p), 0);
		assert_int_equal(hook_calls, 1);
		assert_int_equal(hook_ref_seen, 1);
		/* backed off: the reference it took is gone again */
		assert_int_equal(refcount(first), 1);
		expect_pins(e, 0, 0);
		/* repair what the hook did */
		if (mode == H_PMD)
			__pte_write(hook_pmdp, hook_saved);
		else
			__pte_write(hook_ptep, hook_saved);
	}
	/* a change at the third page: the first two are pinned */
	hook_mode = H_PTE_ACCESSED;
	hook_calls = 0;
	hook_at = 2;
	assert_int_equal(gup_fast_only(e->cpu, TA, 4, SMM_FOLL_PIN | W, p), 2);
	assert_int_equal(hook_calls, 3);
	assert_ptr_equal(p[0], first);
	assert_int_equal(refcount(first), 1025);
	expect_pins(e, 2, 0);
	smm_unpin_user_pages(p, 2);
	__pte_write(hook_ptep, hook_saved);
	/* with the fallback: the slow path takes what the fast one left, the
	 * page mapped there now */
	hook_mode = H_PTE_ACCESSED;
	hook_calls = 0;
	hook_at = 0;
	assert_int_equal(PIN_FAST(TA, 4, W, p), 4);
	assert_ptr_equal(p[0], first);
	assert_int_equal(refcount(first), 1025);
	smm_unpin_user_pages(p, 4);
	__pte_write(hook_ptep, hook_saved);
	/* a plain get backs off the same way */
	hook_calls = 0;
	assert_int_equal(gup_fast_only(e->cpu, TA, 1, SMM_FOLL_GET, p), 0);
	assert_int_equal(refcount(first), 1);
	__pte_write(hook_ptep, hook_saved);
	/* the PTE replaced by one of another page: never the old page */
	hook_mode = H_PTE_OTHER;
	hook_calls = 0;
	hook_at = 0;
	{
		struct pt_walk w;
		pteval_t *ptep;

		mmap_read_lock(e->mm);
		ptep = pte_offset_map_lock(e->mm, TA + 3 * PG, &w);
		assert_non_null(ptep);
		hook_other = pte_read(ptep);
		pte_unmap_unlock(&w);
		mmap_read_unlock(e->mm);
	}
	assert_int_equal(gup_fast_only(e->cpu, TA, 1, SMM_FOLL_PIN, p), 0);
	assert_int_equal(refcount(first), 1);
	smm_debug_gup_fast_hook = NULL;
	__pte_write(hook_ptep, hook_saved);
	expect_pins(e, 6, 6);
	check_pat(e->cpu, TA, 4 * PG, 5);
	assert_int_equal(smm_mm_verify(e->mm), 0);
}
#endif

/* ---- real threads ---- */

struct race {
	struct env *e;
	atomic_bool stop;
	atomic_long pins, bad;
	uint64_t base;
	int npages;
};

struct pinner_arg {
	struct race *r;
	int id;
};

static void *pinner(void *arg)
{
	struct race *r = ((struct pinner_arg *)arg)->r;
	int id = ((struct pinner_arg *)arg)->id; /* its own word of each page */
	struct smm_cpu *cpu = smm_cpu_attach(r->e->pool);
	uint64_t x = (uint64_t)id * 7919;
	struct smm_page *p[8];
	int self = 0;

	assert_non_null(cpu);
	smm_cpu_switch_mm(cpu, r->e->mm);
	while (!atomic_load(&r->stop)) {
		bool fast = (x++ & 1) == 0;
		int n = 1 + (int)(x % 8);
		long got = fast ? smm_pin_user_pages_fast(cpu, r->base,
							  (unsigned long)n,
							  SMM_FOLL_WRITE, p) :
				  smm_pin_user_pages(r->e->mm, r->base,
						     (unsigned long)n,
						     SMM_FOLL_WRITE, p);

		if (got < 0) {
			if (got != -EFAULT)
				atomic_fetch_add(&r->bad, 1);
			continue;
		}
		for (long i = 0; i < got; i++) {
			uint64_t *a = smm_page_address(p[i]);
			uint64_t v = ((uint64_t)++self << 8) | (uint64_t)i;

			if (!smm_page_maybe_dma_pinned(p[i]))
				atomic_fetch_add(&r->bad, 1);
			/* the device's accesses: relaxed atomics, like DMA */
			__atomic_store_n(&a[1 + id], v, __ATOMIC_RELAXED);
			sched_yield();
			if (__atomic_load_n(&a[1 + id], __ATOMIC_RELAXED) != v)
				atomic_fetch_add(&r->bad, 1);
		}
		atomic_fetch_add(&r->pins, got);
		smm_unpin_user_pages_dirty_lock(p, (unsigned long)got, x & 2);
	}
	smm_cpu_switch_mm(cpu, NULL);
	smm_cpu_detach(cpu);
	return NULL;
}

static void test_race_threads(void **state)
{
	struct env *e = *state;
	struct race r = { .e = e, .base = TA, .npages = 8 };
	pthread_t th[3];
	struct pinner_arg pa[3];

	map_at(e->mm, TA, 8 * PG, RW);
	for (int i = 0; i < 3; i++) {
		pa[i] = (struct pinner_arg){ &r, i };
		assert_int_equal(pthread_create(&th[i], NULL, pinner, &pa[i]),
				 0);
	}
	for (int round = 0; round < 3000; round++) {
		switch (round % 4) {
		case 0:
			assert_int_equal(smm_madvise(e->mm, TA, 8 * PG,
						     SMM_MADV_DONTNEED),
					 0);
			break;
		case 1:
			assert_int_equal(smm_mprotect(e->mm, TA, 8 * PG, RO),
					 0);
			assert_int_equal(smm_mprotect(e->mm, TA, 8 * PG, RW),
					 0);
			break;
		case 2:
			assert_int_equal(smm_munmap(e->mm, TA, 8 * PG), 0);
			map_at(e->mm, TA, 8 * PG, RW);
			break;
		default:
			wr8(e->cpu, TA + (uint64_t)(round % 8) * PG, 1);
			break;
		}
	}
	atomic_store(&r.stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&r.bad), 0);
	assert_true(atomic_load(&r.pins) > 0);
	struct smm_mm_stats st = mm_stats(e->mm);
	assert_int_equal(st.pins_acquired, st.pins_released);
	assert_int_equal(smm_mm_verify(e->mm), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_pin_fast_basic),
		T(test_get_put),
		T(test_slow_faults_in),
		T(test_fast_falls_back),
		T(test_holes_and_errors),
		T(test_pinned_survives_unmap),
		cmocka_unit_test(test_pinned_survives_destroy),
		T(test_unpin_dirty),
#ifdef SMM_DEBUG
		T(test_recheck),
#endif
		T(test_race_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
