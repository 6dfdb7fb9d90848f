/*
 * test_reclaim.c - empty page-table reclaim under each scheme: what "none",
 * "pt-reclaim" (Linux 6.14+) and "eager" free after MADV_DONTNEED and
 * munmap, aligned and not; eager freeing PMD and PUD tables up the tree;
 * the 2025 Linux bug (a table refilled while no lock was held must not be
 * freed), reproduced deterministically through a debug-build hook;
 * munmap's zap and free_pgtables() under the read lock beside faults and
 * beside a DONTNEED that frees the upper tables they walk (hooks too);
 * and faults racing DONTNEED and munmap on the same tables from several
 * threads.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#include "common.h"
#include "pt_scheme.h" /* the debug hook (internal) */

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

static struct smm_pool *pool;

static struct smm_mm *mm_with(int scheme)
{
	struct smm_mm_opts o = { .scheme = scheme };
	struct smm_mm *mm = smm_mm_create(pool, &o);

	assert_non_null(mm);
	return mm;
}

static struct smm_mm_stats stats(struct smm_mm *mm)
{
	struct smm_mm_stats st;

	smm_mm_stats(mm, &st);
	return st;
}

static void done(struct smm_cpu *cpu, struct smm_mm *mm)
{
	assert_int_equal(smm_mm_verify(mm), 0);
	smm_cpu_switch_mm(cpu, NULL);
	smm_mm_destroy(mm);
}

/*
 * The Qi Zheng test, small: 64 chunks of 2 MiB in a 1 GiB NORESERVE
 * region, each touched and MADV_DONTNEED'd. Returns the page-table bytes
 * left.
 */
static uint64_t qizheng(struct smm_cpu *cpu, int scheme, bool aligned)
{
	struct smm_mm *mm = mm_with(scheme);
	uint64_t base = TA + (aligned ? 0 : PG), pt;

	smm_cpu_switch_mm(cpu, mm);
	assert_int_equal(smm_mmap(mm, TA, GB, RW,
				  PRIV_ANON | SMM_MAP_FIXED |
					  SMM_MAP_NORESERVE),
			 (int64_t)TA);
	for (int c = 0; c < 64; c++) {
		uint64_t q = base + (uint64_t)c * 2 * MB;

		for (uint64_t o = 0; o < 2 * MB; o += PG)
			assert_int_equal(smm_fill(cpu, q + o, 1, 1, NULL), 0);
		assert_int_equal(smm_madvise(mm, q, 2 * MB, SMM_MADV_DONTNEED),
				 0);
	}
	assert_int_equal(stats(mm).rss_anon, 0);
	pt = stats(mm).pt_bytes;
	done(cpu, mm);
	return pt;
}

static void test_qizheng(void **state)
{
	struct smm_cpu *cpu = smm_cpu_attach(pool);

	assert_non_null(cpu);
	/* none: every table stays: 64 (aligned) or 65 PTE tables + PMD + PUD */
	assert_int_equal(qizheng(cpu, SMM_SCHEME_NONE, true), (64 + 2) * PG);
	assert_int_equal(qizheng(cpu, SMM_SCHEME_NONE, false), (65 + 2) * PG);
	/* pt-reclaim: aligned whole-table zaps free them; unaligned never */
	assert_int_equal(qizheng(cpu, SMM_SCHEME_PT_RECLAIM, true), 2 * PG);
	assert_int_equal(qizheng(cpu, SMM_SCHEME_PT_RECLAIM, false),
			 (65 + 2) * PG);
	/* eager and pmd-rwsem: everything, up the tree */
	assert_int_equal(qizheng(cpu, SMM_SCHEME_EAGER, true), 0);
	assert_int_equal(qizheng(cpu, SMM_SCHEME_EAGER, false), 0);
	assert_int_equal(qizheng(cpu, SMM_SCHEME_PMD_RWSEM, true), 0);
	assert_int_equal(qizheng(cpu, SMM_SCHEME_PMD_RWSEM, false), 0);
	/* refcount: every PTE table; the PMD and PUD tables stay */
	assert_int_equal(qizheng(cpu, SMM_SCHEME_REFCOUNT, true), 2 * PG);
	assert_int_equal(qizheng(cpu, SMM_SCHEME_REFCOUNT, false), 2 * PG);
	smm_cpu_detach(cpu);
	assert_pool_clean(pool);
}

/* The schemes that free every table a zap empties: eager, refcount and
 * pmd-rwsem; all but refcount free the PMD and PUD tables above too. */
static const int emptying[] = { SMM_SCHEME_EAGER, SMM_SCHEME_REFCOUNT,
				SMM_SCHEME_PMD_RWSEM };

/* munmap of part of a table other VMAs share frees it once empty; a small
 * DONTNEED that empties a table frees it; data elsewhere stays. */
static void eager_partial(int scheme)
{
	struct smm_cpu *cpu = smm_cpu_attach(pool);
	struct smm_mm *mm = mm_with(scheme);
	uint64_t v = 0, upper = scheme == SMM_SCHEME_REFCOUNT ? 2 * PG : 0;

	smm_cpu_switch_mm(cpu, mm);
	/* two VMAs in one PTE table, and one page in the next table */
	assert_int_equal(smm_mmap(mm, TA, 64 * PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)TA);
	assert_int_equal(smm_mmap(mm, TA + 64 * PG, 64 * PG, RO,
				  PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)(TA + 64 * PG));
	assert_int_equal(smm_mmap(mm, TA + 2 * MB, PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)(TA + 2 * MB));
	assert_int_equal(smm_fill(cpu, TA + 5 * PG, 7, 1, NULL), 0);
	assert_int_equal(smm_read(cpu, TA + 70 * PG, &v, 8, NULL),
			 0); /* zero page */
	assert_int_equal(smm_fill(cpu, TA + 2 * MB, 9, 1, NULL), 0);
	assert_int_equal(stats(mm).pte_bytes, 2 * PG);

	/* munmap the RW VMA: the RO one still maps the zero page there */
	assert_int_equal(smm_munmap(mm, TA, 64 * PG), 0);
	assert_int_equal(stats(mm).pte_bytes, 2 * PG);
	/* DONTNEED one page of the RO VMA: the first table is now empty */
	assert_int_equal(smm_madvise(mm, TA + 70 * PG, PG, SMM_MADV_DONTNEED),
			 0);
	assert_int_equal(stats(mm).pte_bytes, 1 * PG);
	assert_int_equal(stats(mm).pt_reclaimed, 1);
	/* the other table and its data are intact */
	assert_int_equal(smm_read(cpu, TA + 2 * MB, &v, 1, NULL), 0);
	assert_int_equal(v & 0xff, 9);
	/* and the last page: PTE, PMD and PUD tables all go */
	assert_int_equal(smm_madvise(mm, TA + 2 * MB, PG, SMM_MADV_DONTNEED),
			 0);
	assert_int_equal(stats(mm).pt_bytes, upper);
	/* a fault afterwards builds the levels again */
	assert_int_equal(smm_fill(cpu, TA + 2 * MB, 3, 1, NULL), 0);
	assert_int_equal(stats(mm).pt_bytes, 3 * PG);
	done(cpu, mm);
	smm_cpu_detach(cpu);
	assert_pool_clean(pool);
}

static void test_eager_partial(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(emptying); i++)
		eager_partial(emptying[i]);
}

/* Eager: pages dropped after MADV_FREE (by MADV_PAGEOUT) empty a table,
 * which goes; a page written after MADV_FREE is kept, and so its table. */
static void eager_pageout(int scheme)
{
	struct smm_cpu *cpu = smm_cpu_attach(pool);
	struct smm_mm *mm = mm_with(scheme);
	uint64_t v = 0;

	smm_cpu_switch_mm(cpu, mm);
	assert_int_equal(smm_mmap(mm, TA, 4 * MB, RW,
				  PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)TA);
	for (uint64_t o = 0; o < 4 * MB; o += PG)
		assert_int_equal(smm_fill(cpu, TA + o, 3, 1, NULL), 0);
	assert_int_equal(smm_madvise(mm, TA, 4 * MB, SMM_MADV_FREE), 0);
	/* written again after MADV_FREE: dirty, must survive PAGEOUT */
	assert_int_equal(smm_fill(cpu, TA + 5 * PG, 4, 1, NULL), 0);
	assert_int_equal(smm_madvise(mm, TA, 4 * MB, SMM_MADV_PAGEOUT), 0);
	assert_int_equal(stats(mm).rss_anon, 1);
	assert_int_equal(stats(mm).pte_bytes, PG); /* the second table went */
	assert_int_equal(smm_read(cpu, TA + 5 * PG, &v, 1, NULL), 0);
	assert_int_equal(v & 0xff, 4);
	assert_int_equal(smm_read(cpu, TA + 3 * MB, &v, 1, NULL), 0);
	assert_int_equal(v & 0xff, 0); /* dropped: reads zero */
	done(cpu, mm);
	smm_cpu_detach(cpu);
	assert_pool_clean(pool);
}

static void test_eager_pageout(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(emptying); i++)
		eager_pageout(emptying[i]);
}

/* pt-reclaim is Linux's: MADV_FREE, munmap and partial zaps free nothing. */
static void test_pt_reclaim_limits(void **state)
{
	struct smm_cpu *cpu = smm_cpu_attach(pool);
	struct smm_mm *mm = mm_with(SMM_SCHEME_PT_RECLAIM);

	smm_cpu_switch_mm(cpu, mm);
	assert_int_equal(smm_mmap(mm, TA, 8 * MB, RW,
				  PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)TA);
	for (uint64_t o = 0; o < 8 * MB; o += PG)
		assert_int_equal(smm_fill(cpu, TA + o, 1, 1, NULL), 0);
	assert_int_equal(stats(mm).pte_bytes, 4 * PG);
	/* a table emptied by two zaps, neither covering it whole: stays */
	assert_int_equal(smm_madvise(mm, TA, MB, SMM_MADV_DONTNEED), 0);
	assert_int_equal(smm_madvise(mm, TA + MB, MB, SMM_MADV_DONTNEED), 0);
	assert_int_equal(stats(mm).pte_bytes, 4 * PG);
	/* MADV_FREE: stays */
	assert_int_equal(smm_madvise(mm, TA + 2 * MB, 2 * MB, SMM_MADV_FREE),
			 0);
	assert_int_equal(stats(mm).pte_bytes, 4 * PG);
	/* a whole-table DONTNEED: goes */
	assert_int_equal(
		smm_madvise(mm, TA + 4 * MB, 2 * MB, SMM_MADV_DONTNEED), 0);
	assert_int_equal(stats(mm).pte_bytes, 3 * PG);
	assert_int_equal(stats(mm).pt_reclaimed, 1);
	/* a whole table across two VMAs (split by mprotect): stays */
	assert_int_equal(smm_mprotect(mm, TA + 7 * MB, MB, RO), 0);
	assert_int_equal(
		smm_madvise(mm, TA + 6 * MB, 2 * MB, SMM_MADV_DONTNEED), 0);
	assert_int_equal(stats(mm).pte_bytes, 3 * PG);
	done(cpu, mm);
	smm_cpu_detach(cpu);
	assert_pool_clean(pool);
}

#ifdef SMM_DEBUG
/*
 * The races below hand over between a test hook, which the library calls
 * at the point of the race, and a thread beside it: a state word under a
 * mutex (0 idle, 1 go, 2 done), and what each test records.
 */
struct side {
	struct smm_mm *mm;
	uint64_t addr;
	pthread_mutex_t m;
	pthread_cond_t c;
	int state; /* 0 idle, 1 go, 2 done */
	int hooked;
	bool blocked;	 /* refill: the fault had not completed */
	bool progressed; /* munmap, free_pgd: the other thread got through */
	unsigned char vec[16];
};

static struct side sd;

/* A fresh address space under @scheme, and no hook run yet. */
static void side_reset(int scheme)
{
	memset(&sd, 0, sizeof(sd));
	pthread_mutex_init(&sd.m, NULL);
	pthread_cond_init(&sd.c, NULL);
	sd.mm = mm_with(scheme);
}

/* Wait up to @ms for sd.state to become @state; whether it did. */
static bool side_wait(int state, long ms)
{
	struct timespec until;
	bool reached;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&sd.m);
	while (sd.state != state &&
	       !pthread_cond_timedwait(&sd.c, &sd.m, &until))
		;
	reached = sd.state == state;
	pthread_mutex_unlock(&sd.m);
	return reached;
}

static void side_set(int state)
{
	pthread_mutex_lock(&sd.m);
	sd.state = state;
	pthread_cond_broadcast(&sd.c);
	pthread_mutex_unlock(&sd.m);
}

/*
 * The refill race. The zap saw the table empty; before it takes the locks
 * to free it, another CPU faults a page into that table (the hook makes
 * this happen at exactly that point). The recheck under the locks must
 * see the new entry and keep the table: the page and its data survive.
 */
static void *refiller(void *arg)
{
	struct smm_cpu *cpu = smm_cpu_attach(pool);

	smm_cpu_switch_mm(cpu, sd.mm);
	side_wait(1, 30000);
	/* A write fault: under the VMA lock, while madvise holds mmap_lock
	 * for read. */
	assert_int_equal(smm_fill(cpu, sd.addr, 0x5a, 1, NULL), 0);
	side_set(2);
	smm_cpu_switch_mm(cpu, NULL);
	smm_cpu_detach(cpu);
	return NULL;
}

static void refill_hook(struct smm_mm *mm, uint64_t addr)
{
	if (mm != sd.mm || sd.hooked++)
		return;
	side_set(1);
	/*
	 * pt-reclaim and eager: the fault completes while the freer waits
	 * here, and the freer's recheck must then keep the table. refcount
	 * and pmd-rwsem: the fault cannot complete (the table's count is at
	 * zero for good; the PMD table is write-locked): it waits or walks
	 * again until the free is done, and then installs a new table. We
	 * let it reach that point, and go on.
	 */
	sd.blocked = !side_wait(2, 50);
}

/*
 * Seed 003's race: while a zap frees the PTE table covering @addr's 2 MiB
 * (the hook runs where the freer has decided to), a fault at @off into
 * that table, or at @off beyond it into an empty slot of the same PMD table
 * (which eager and pmd-rwsem may free too), installs a page.
 */
static void refill_race(int scheme, uint64_t off)
{
	struct smm_cpu *cpu = smm_cpu_attach(pool);
	pthread_t t;
	uint64_t v = 0;

	side_reset(scheme);
	sd.addr = TA + off;
	smm_cpu_switch_mm(cpu, sd.mm);
	assert_int_equal(smm_mmap(sd.mm, TA, 4 * MB, RW,
				  PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)TA);
	for (uint64_t o = 0; o < 2 * MB; o += PG)
		assert_int_equal(smm_fill(cpu, TA + o, 1, 1, NULL), 0);
	pthread_create(&t, NULL, refiller, NULL);
	smm_debug_pt_free_hook = refill_hook;
	assert_int_equal(smm_madvise(sd.mm, TA, 2 * MB, SMM_MADV_DONTNEED), 0);
	smm_debug_pt_free_hook = NULL;
	pthread_join(t, NULL);
	assert_int_equal(sd.hooked, 1);
	/* Whatever table holds it now, the page and its data survived, in
	 * one PTE table, with the tree sound (done() verifies). */
	assert_int_equal(stats(sd.mm).pte_bytes, PG);
	assert_int_equal(stats(sd.mm).rss_anon, 1);
	/*
	 * A fault into the table itself: pt-reclaim's and eager's freer
	 * rechecks and keeps the refilled table; under refcount and
	 * pmd-rwsem the fault waits for the free, then installs a new one.
	 * A fault into the next slot installs its own table at once,
	 * except under pmd-rwsem, where it waits for the write side before
	 * it uses it; the emptied table goes in every case.
	 */
	assert_int_equal(sd.blocked, scheme == SMM_SCHEME_PMD_RWSEM ||
					     (scheme == SMM_SCHEME_REFCOUNT &&
					      off < 2 * MB));
	if (off >= 2 * MB || scheme == SMM_SCHEME_REFCOUNT)
		assert_int_equal(stats(sd.mm).pt_reclaimed, 1);
	else if (scheme == SMM_SCHEME_PMD_RWSEM)
		/* the PMD and PUD tables went too, before the fault */
		assert_int_equal(stats(sd.mm).pt_reclaimed, 3);
	else
		assert_int_equal(stats(sd.mm).pt_reclaimed, 0);
	assert_int_equal(smm_read(cpu, sd.addr, &v, 1, NULL), 0);
	assert_int_equal(v & 0xff, 0x5a);
	done(cpu, sd.mm);
	smm_cpu_detach(cpu);
	assert_pool_clean(pool);
}

static void test_refill_race(void **state)
{
	static const int schemes[] = { SMM_SCHEME_PT_RECLAIM, SMM_SCHEME_EAGER,
				       SMM_SCHEME_REFCOUNT,
				       SMM_SCHEME_PMD_RWSEM };

	for (size_t i = 0; i < ARRAY_SIZE(schemes); i++) {
		/* into the table being freed */
		refill_race(schemes[i], 100 * PG);
		/* into the PMD table above it (pt-reclaim frees none) */
		if (schemes[i] != SMM_SCHEME_PT_RECLAIM)
			refill_race(schemes[i], 2 * MB + 100 * PG);
	}
}

/*
 * munmap under the read lock. munmap downgrades mmap_lock once its VMAs
 * are unpublished; the hook then holds it before its zap until another
 * thread has faulted in the half of the VMA that munmap split off (under
 * that VMA's lock, which the downgrade released) and read it with
 * mincore (under mmap_lock for read). Without the downgrade both would
 * wait for the whole munmap, and the hook gives up after 5 s.
 */
static void *side_faulter(void *arg)
{
	struct smm_cpu *cpu = smm_cpu_attach(pool);

	smm_cpu_switch_mm(cpu, sd.mm);
	side_wait(1, 30000);
	for (int i = 0; i < 16; i++)
		assert_int_equal(smm_fill(cpu, sd.addr + (uint64_t)i * PG,
					  (unsigned char)(0x10 + i), PG, NULL),
				 0);
	assert_int_equal(smm_mincore(sd.mm, sd.addr, 16 * PG, sd.vec), 0);
	side_set(2);
	smm_cpu_switch_mm(cpu, NULL);
	smm_cpu_detach(cpu);
	return NULL;
}

static void side_hook(struct smm_mm *mm, uint64_t start, uint64_t end)
{
	if (mm != sd.mm || sd.hooked++)
		return;
	side_set(1);
	sd.progressed = side_wait(2, 5000);
}

static void test_munmap_downgrade(void **state)
{
	for (int scheme = 0; scheme < SMM_SCHEME_COUNT; scheme++) {
		struct smm_cpu *cpu = smm_cpu_attach(pool);
		pthread_t t;
		uint64_t v = 0;

		side_reset(scheme);
		sd.addr = TA + 4 * MB - 16 * PG;
		smm_cpu_switch_mm(cpu, sd.mm);
		assert_int_equal(smm_mmap(sd.mm, TA, 8 * MB, RW,
					  PRIV_ANON | SMM_MAP_FIXED),
				 (int64_t)TA);
		for (uint64_t o = 4 * MB; o < 8 * MB; o += PG)
			assert_int_equal(smm_fill(cpu, TA + o, 1, 1, NULL), 0);
		pthread_create(&t, NULL, side_faulter, NULL);
		smm_debug_munmap_hook = side_hook;
		assert_int_equal(smm_munmap(sd.mm, TA + 4 * MB, 4 * MB), 0);
		smm_debug_munmap_hook = NULL;
		side_set(
			1); /* if the hook never ran: do not leave it waiting */
		pthread_join(t, NULL);
		assert_int_equal(sd.hooked, 1);
		assert_true(sd.progressed);
		for (int i = 0; i < 16; i++)
			assert_int_equal(sd.vec[i], 1);
		assert_int_equal(stats(sd.mm).rss_anon, 16);
		assert_int_equal(smm_read(cpu, sd.addr + 15 * PG, &v, 1, NULL),
				 0);
		assert_int_equal(v & 0xff, 0x1f);
		done(cpu, sd.mm);
		smm_cpu_detach(cpu);
		assert_pool_clean(pool);
	}
}

/*
 * free_pgtables() under the read lock meets a zap beside it. munmap frees
 * the tables of [TA + 2 MiB, TA + 4 MiB); the PMD and PUD tables above are
 * shared with [TA, TA + 2 MiB), which stays. The hook stops munmap's
 * free_pgd_range() after it found the PMD table and before it locks it;
 * another thread then MADV_DONTNEEDs the one page left below: eager and
 * pmd-rwsem free its PTE table and then the PMD and PUD tables, now
 * empty, from under munmap. The hook waits 50 ms more, time for grace
 * periods to end: munmap's RCU read section must keep the PMD table out of
 * the pool (free_pmd_range() asserts it), and its dead mark must keep
 * munmap from unlinking it again. The build with the RCU section removed
 * (build/bug10, -DSMM_BUG_FREE_PGD_NO_RCU) must fail here.
 */
static void *side_dontneed(void *arg)
{
	side_wait(1, 30000);
	assert_int_equal(smm_madvise(sd.mm, TA, PG, SMM_MADV_DONTNEED), 0);
	side_set(2);
	return NULL;
}

static void free_pgd_hook(struct smm_mm *mm, uint64_t addr)
{
	if (mm != sd.mm || sd.hooked++)
		return;
	side_set(1);
	sd.progressed = side_wait(2, 5000);
	usleep(50000);
}

static void test_free_pgd_race(void **state)
{
	for (int scheme = 0; scheme < SMM_SCHEME_COUNT; scheme++) {
		for (int round = 0; round < 4; round++) {
			struct smm_cpu *cpu = smm_cpu_attach(pool);
			pthread_t t;
			bool frees_upper = scheme == SMM_SCHEME_EAGER ||
					   scheme == SMM_SCHEME_PMD_RWSEM;

			side_reset(scheme);
			smm_cpu_switch_mm(cpu, sd.mm);
			assert_int_equal(smm_mmap(sd.mm, TA, 4 * MB, RW,
						  PRIV_ANON | SMM_MAP_FIXED),
					 (int64_t)TA);
			assert_int_equal(smm_fill(cpu, TA, 7, 1, NULL), 0);
			for (uint64_t o = 2 * MB; o < 4 * MB; o += 64 * PG)
				assert_int_equal(
					smm_fill(cpu, TA + o, 1, 1, NULL), 0);
			pthread_create(&t, NULL, side_dontneed, NULL);
			smm_debug_free_pgd_hook = free_pgd_hook;
			assert_int_equal(smm_munmap(sd.mm, TA + 2 * MB, 2 * MB),
					 0);
			smm_debug_free_pgd_hook = NULL;
			side_set(1);
			pthread_join(t, NULL);
			assert_int_equal(sd.hooked, 1);
			assert_true(sd.progressed);
			assert_int_equal(stats(sd.mm).rss_anon, 0);
			/* eager and pmd-rwsem freed every level; none,
			 * pt-reclaim and refcount keep the PMD and PUD tables
			 * (and none and pt-reclaim the PTE table too). */
			if (frees_upper)
				assert_int_equal(stats(sd.mm).pt_bytes, 0);
			else
				assert_true(stats(sd.mm).pt_bytes >= 2 * PG);
			done(cpu, sd.mm);
			smm_cpu_detach(cpu);
			assert_pool_clean(pool);
		}
	}
}
#else
static void test_refill_race(void **state)
{
	skip(); /* the hook exists in debug builds only */
}
static void test_munmap_downgrade(void **state)
{
	skip(); /* the hook exists in debug builds only */
}
static void test_free_pgd_race(void **state)
{
	skip(); /* the hook exists in debug builds only */
}
#endif

/* Faults and whole-table DONTNEEDs on the same tables from two threads,
 * and a third mapping and unmapping the range above: data is never lost
 * except to a DONTNEED, and the tables stay sound. */
struct racer {
	struct smm_mm *mm;
	int id;
	atomic_int *stop;
	long bad;
};

static void *race_thread(void *arg)
{
	struct racer *r = arg;
	struct smm_cpu *cpu = smm_cpu_attach(pool);
	unsigned int x = 12345u + (unsigned)r->id;

	smm_cpu_switch_mm(cpu, r->mm);
	while (!atomic_load(r->stop)) {
		x = x * 1103515245u + 12345u;
		uint64_t tbl = TA + (uint64_t)((x >> 8) % 4) * 2 * MB;

		if (r->id == 0) {
			smm_madvise(r->mm, tbl, 2 * MB, SMM_MADV_DONTNEED);
		} else if (r->id == 3) {
			/*
			 * Map the 4 MiB above (merged into the VMA below),
			 * touch some, unmap: a split, then the zap and
			 * free_pgtables() under the read lock, beside the
			 * others' faults and DONTNEEDs in the tables below.
			 */
			uint64_t hi = TA + 8 * MB;

			if (smm_mmap(r->mm, hi, 4 * MB, RW,
				     PRIV_ANON | SMM_MAP_FIXED) != (int64_t)hi)
				r->bad++;
			for (uint64_t o = 0; o < 4 * MB; o += 97 * PG)
				if (smm_fill(cpu, hi + o, 3, 1, NULL))
					r->bad++;
			if (smm_munmap(r->mm, hi, 4 * MB))
				r->bad++;
		} else {
			/* each writer owns its half of every table */
			uint64_t a = tbl + (uint64_t)(r->id - 1) * MB +
				     (uint64_t)((x >> 4) % 256) * PG;
			uint64_t v = a, got = 0;

			if (smm_write(cpu, a, &v, 8, NULL) ||
			    smm_read(cpu, a, &got, 8, NULL) ||
			    (got != v && got != 0))
				r->bad++;
		}
	}
	smm_cpu_switch_mm(cpu, NULL);
	smm_cpu_detach(cpu);
	return NULL;
}

static void test_fault_vs_reclaim(void **state)
{
	for (int scheme = 0; scheme < SMM_SCHEME_COUNT; scheme++) {
		struct smm_cpu *cpu = smm_cpu_attach(pool);
		struct smm_mm *mm = mm_with(scheme);
		struct racer r[4];
		pthread_t t[4];
		atomic_int stop = 0;

		smm_cpu_switch_mm(cpu, mm);
		assert_int_equal(smm_mmap(mm, TA, 8 * MB, RW,
					  PRIV_ANON | SMM_MAP_FIXED),
				 (int64_t)TA);
		for (int i = 0; i < 4; i++) {
			r[i] = (struct racer){ mm, i, &stop, 0 };
			pthread_create(&t[i], NULL, race_thread, &r[i]);
		}
		for (int i = 0; i < 30; i++) {
			usleep(20000);
			assert_int_equal(smm_mm_verify(mm), 0);
		}
		atomic_store(&stop, 1);
		for (int i = 0; i < 4; i++) {
			pthread_join(t[i], NULL);
			assert_int_equal(r[i].bad, 0);
		}
		done(cpu, mm);
		smm_cpu_detach(cpu);
		assert_pool_clean(pool);
	}
}

static int setup(void **state)
{
	pool = smm_pool_create(256 * MB, SMM_POOL_POISON);
	return pool ? 0 : -1;
}

static int teardown(void **state)
{
	return smm_pool_destroy(pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qizheng),
		cmocka_unit_test(test_eager_partial),
		cmocka_unit_test(test_eager_pageout),
		cmocka_unit_test(test_pt_reclaim_limits),
		cmocka_unit_test(test_refill_race),
		cmocka_unit_test(test_munmap_downgrade),
		cmocka_unit_test(test_free_pgd_race),
		cmocka_unit_test(test_fault_vs_reclaim),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
