/*
 * test_mlock.c - mlock, mlock2(MLOCK_ONFAULT), munlock, MAP_LOCKED and
 * stacks (MAP_GROWSDOWN, MAP_STACK), with the errno values and limits of
 * Linux 6.18 measured on this machine (tests/oracle/mlock.smm and
 * stack.smm hold the kernel's own answers):
 *   mlock: rounds the range out to pages; locks (VM_LOCKED), splitting and
 *     merging VMAs, then faults the range in; a range starting in a hole
 *     -ENOMEM with nothing changed, a hole later -ENOMEM with the VMAs
 *     before it locked; a PROT_NONE VMA is locked but cannot be faulted
 *     in: -ENOMEM; past RLIMIT_MEMLOCK (8 MiB, what is locked already not
 *     counted twice) -ENOMEM; out of memory while faulting in: -EAGAIN;
 *   mlock2: MLOCK_ONFAULT (VM_LOCKONFAULT) faults nothing in; other flags
 *     -EINVAL; munlock of a range that wraps -EINVAL;
 *   MAP_LOCKED: locked and faulted in; past the limit -EAGAIN;
 *   locked VMAs refuse DONTNEED, FREE, PAGEOUT, COLD (-EINVAL), not
 *     DONTNEED_LOCKED; a locked private VMA made writable is faulted in;
 *   stacks: a fault below a growsdown VMA grows it, unless within 256
 *     pages of an accessible VMA below or past 8 MiB; MAP_STACK sets
 *     VM_NOHUGEPAGE.
 * Plus threads growing one stack while another splits and merges it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include "common.h"

#define LOCKED	SMM_VM_LOCKED
#define ONFAULT SMM_VM_LOCKONFAULT

static uint64_t flags_at(struct smm_mm *mm, uint64_t a)
{
	struct smm_vma_info v;

	assert_int_equal(smm_mm_vmas(mm, a, a + 1, &v, 1), 1);
	return v.flags;
}

static void test_mlock_basic(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;

	map_at(mm, TA, 16 * PG, RW);
	/* an unaligned start and length round out to [4, 12) */
	assert_int_equal(smm_mlock(mm, TA + 4 * PG + 100, 8 * PG - 100), 0);
	expect_vmas(mm, 0, SMM_TASK_SIZE, { TA, TA + 4 * PG, RW },
		    { TA + 4 * PG, TA + 12 * PG, RW },
		    { TA + 12 * PG, TA + 16 * PG, RW });
	assert_int_equal(flags_at(mm, TA + 4 * PG) & (LOCKED | ONFAULT),
			 LOCKED);
	assert_false(flags_at(mm, TA) & LOCKED);
	assert_int_equal(resident(mm, TA + 4 * PG, 8 * PG), 8);
	assert_int_equal(resident(mm, TA, 4 * PG), 0);
	/* writable: faulted in for writing, so anonymous pages, no zero
	 * page */
	assert_int_equal(mm_stats(mm).rss_anon, 8);
	assert_int_equal(mm_stats(mm).zero_ptes, 0);
	write_pat(e->cpu, TA, 16 * PG, 31);
	/* locked twice: no change, no split */
	assert_int_equal(smm_mlock(mm, TA + 4 * PG, 8 * PG), 0);
	assert_int_equal(smm_mm_vmas(mm, 0, SMM_TASK_SIZE, NULL, 0), 3);
	assert_int_equal(smm_munlock(mm, TA, 16 * PG), 0);
	/* The stores gave the outer VMAs anon_vmas of their own (a
	 * neighbour differing in VM_LOCKED lends none), so the three stay
	 * apart, as they do in Linux. */
	expect_vmas(mm, 0, SMM_TASK_SIZE, { TA, TA + 4 * PG, RW },
		    { TA + 4 * PG, TA + 12 * PG, RW },
		    { TA + 12 * PG, TA + 16 * PG, RW });
	assert_false(flags_at(mm, TA + 4 * PG) & LOCKED);
	check_pat(e->cpu, TA, 16 * PG, 31);
	/* read-only: faulted in for reading, zero pages */
	map_at(mm, TA + GB, 4 * PG, RO);
	assert_int_equal(smm_mlock(mm, TA + GB, 4 * PG), 0);
	assert_int_equal(mm_stats(mm).zero_ptes, 4);
	assert_int_equal(smm_mm_verify(mm), 0);
}

static void test_mlock_onfault(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;

	map_at(mm, TA, 8 * PG, RW);
	assert_int_equal(smm_mlock2(mm, TA, 8 * PG, SMM_MLOCK_ONFAULT), 0);
	assert_int_equal(flags_at(mm, TA) & (LOCKED | ONFAULT),
			 LOCKED | ONFAULT);
	assert_int_equal(resident(mm, TA, 8 * PG), 0);
	wr8(e->cpu, TA + 3 * PG, 7);
	assert_int_equal(resident(mm, TA, 8 * PG), 1);
	/* mlock without the flag: VM_LOCKONFAULT goes, everything in */
	assert_int_equal(smm_mlock(mm, TA, 8 * PG), 0);
	assert_int_equal(flags_at(mm, TA) & (LOCKED | ONFAULT), LOCKED);
	assert_int_equal(resident(mm, TA, 8 * PG), 8);
	assert_int_equal(rd8(e->cpu, TA + 3 * PG), 7);
	assert_int_equal(smm_mlock2(mm, TA, PG, 2), -EINVAL);
	assert_int_equal(smm_mlock2(mm, TA, PG, ~0u), -EINVAL);
	assert_int_equal(flags_at(mm, TA) & (LOCKED | ONFAULT), LOCKED);
}

static void test_mlock_errors(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;

	map_at(mm, TA, 4 * PG, RW);
	map_at(mm, TA + 6 * PG, 4 * PG, RW);
	/* a range starting in a hole: nothing changes */
	assert_int_equal(smm_mlock(mm, TA + 4 * PG, 4 * PG), -ENOMEM);
	assert_false(flags_at(mm, TA + 6 * PG) & LOCKED);
	/* a hole later: the VMA before it is locked (and split), not
	 * faulted in (mlock stops before populating) */
	assert_int_equal(smm_mlock(mm, TA + 2 * PG, 8 * PG), -ENOMEM);
	assert_true(flags_at(mm, TA + 2 * PG) & LOCKED);
	assert_false(flags_at(mm, TA) & LOCKED);
	assert_false(flags_at(mm, TA + 6 * PG) & LOCKED);
	assert_int_equal(resident(mm, TA, 4 * PG), 0);
	assert_int_equal(smm_munlock(mm, TA, 10 * PG), -ENOMEM);
	assert_false(flags_at(mm, TA + 2 * PG) & LOCKED);
	expect_vmas(mm, 0, SMM_TASK_SIZE, { TA, TA + 4 * PG, RW },
		    { TA + 6 * PG, TA + 10 * PG, RW });
	/* wrapping lengths */
	assert_int_equal(smm_munlock(mm, TA, -PG), -EINVAL);
	assert_int_equal(smm_mlock(mm, TA, -PG), -ENOMEM); /* limit first */
	assert_int_equal(smm_mlock(mm, TA + PG, UINT64_MAX), 0); /* len 0 */
	assert_int_equal(smm_mlock(mm, TA, 0), 0);
	assert_int_equal(smm_mlock(NULL, TA, PG), -EINVAL);
	assert_int_equal(smm_munlock(NULL, TA, PG), -EINVAL);
	/* PROT_NONE: locked, but it cannot be faulted in */
	map_at(mm, TA + GB, 4 * PG, SMM_PROT_NONE);
	assert_int_equal(smm_mlock(mm, TA + GB, 4 * PG), -ENOMEM);
	assert_true(flags_at(mm, TA + GB) & LOCKED);
	assert_int_equal(resident(mm, TA + GB, 4 * PG), 0);
	/* ... until it becomes writable: then it is faulted in */
	assert_int_equal(smm_mprotect(mm, TA + GB, 2 * PG, RW), 0);
	assert_int_equal(resident(mm, TA + GB, 4 * PG), 2);
	assert_int_equal(mm_stats(mm).rss_anon, 2);
	assert_int_equal(smm_mm_verify(mm), 0);
}

static void test_mlock_limit(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	const uint64_t lim = SMM_MLOCK_LIMIT;

	map_at(mm, TA, 2 * lim, RW);
	assert_int_equal(smm_mlock(mm, TA, lim + PG), -ENOMEM);
	assert_false(flags_at(mm, TA) & LOCKED);
	assert_int_equal(resident(mm, TA, 2 * lim), 0);
	assert_int_equal(smm_mlock2(mm, TA, lim, SMM_MLOCK_ONFAULT), 0);
	assert_int_equal(smm_mlock(mm, TA + lim, PG), -ENOMEM);
	/* what is locked already does not count twice */
	assert_int_equal(smm_mlock(mm, TA, lim), 0);
	assert_int_equal(resident(mm, TA, lim), lim / PG);
	assert_int_equal(smm_mmap(mm, TA + 4 * lim, PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED | SMM_MAP_LOCKED),
			 -EAGAIN);
	/* munmap gives back what it unmaps */
	assert_int_equal(smm_munmap(mm, TA + lim - PG, PG), 0);
	assert_int_equal(smm_mmap(mm, TA + 4 * lim, PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED | SMM_MAP_LOCKED),
			 (int64_t)(TA + 4 * lim));
	assert_true(flags_at(mm, TA + 4 * lim) & LOCKED);
	assert_int_equal(resident(mm, TA + 4 * lim, PG), 1);
	/* so does munlock (up to the hole munmap left: -ENOMEM there) */
	assert_int_equal(smm_munlock(mm, TA, lim), -ENOMEM);
	assert_false(flags_at(mm, TA) & LOCKED);
	assert_int_equal(smm_mlock(mm, TA + lim, lim - PG), 0);
	assert_int_equal(smm_mm_verify(mm), 0);
}

/* Locked VMAs keep their pages: DONTNEED, FREE, PAGEOUT, COLD refuse. */
static void test_mlock_madvise(void **state)
{
	static const int refused[] = { SMM_MADV_DONTNEED, SMM_MADV_FREE,
				       SMM_MADV_PAGEOUT, SMM_MADV_COLD };
	struct env *e = *state;
	struct smm_mm *mm = e->mm;

	map_at(mm, TA, 8 * PG, RW);
	write_pat(e->cpu, TA, 8 * PG, 32);
	assert_int_equal(smm_mlock(mm, TA + 4 * PG, 4 * PG), 0);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		assert_int_equal(smm_madvise(mm, TA + 4 * PG, 4 * PG,
					     refused[i]),
				 -EINVAL);
		check_pat(e->cpu, TA, 8 * PG, 32);
	}
	/* the walk stops at the locked VMA: the part before it is zapped */
	assert_int_equal(smm_madvise(mm, TA, 8 * PG, SMM_MADV_DONTNEED),
			 -EINVAL);
	check_zero(e->cpu, TA, 4 * PG);
	check_pat(e->cpu, TA + 4 * PG, 4 * PG, 32);
	assert_int_equal(smm_madvise(mm, TA, 8 * PG, SMM_MADV_DONTNEED_LOCKED),
			 0);
	check_zero(e->cpu, TA, 8 * PG);
	assert_int_equal(smm_madvise(mm, TA, 8 * PG, SMM_MADV_WILLNEED), 0);
}

/* Fault injection at every allocation of an mlock that splits twice
 * (onfault, so nothing is faulted in): -ENOMEM, nothing changed. */
static void test_mlock_inject(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	struct smm_vma_info before[4], after[4];
	size_t nb;
	unsigned long n;
	int r = -1;

	map_at(mm, TA, 16 * PG, RW);
	write_pat(e->cpu, TA, 16 * PG, 33);
	memset(before, 0, sizeof(before));
	nb = smm_mm_vmas(mm, 0, SMM_TASK_SIZE, before, 4);
	for (n = 1; n < 100; n++) {
		smm_pool_inject_failure(e->pool, n);
		r = smm_mlock2(mm, TA + 4 * PG, 4 * PG, SMM_MLOCK_ONFAULT);
		smm_pool_inject_failure(e->pool, 0);
		if (!r)
			break;
		assert_int_equal(r, -ENOMEM);
		memset(after, 0, sizeof(after));
		assert_int_equal(smm_mm_vmas(mm, 0, SMM_TASK_SIZE, after, 4),
				 nb);
		assert_memory_equal(after, before, sizeof(before[0]) * nb);
		check_pat(e->cpu, TA, 16 * PG, 33);
	}
	assert_int_equal(r, 0);
	assert_true(n > 1);
	assert_true(flags_at(mm, TA + 4 * PG) & LOCKED);
	/* the lock was counted exactly once, failures included: the rest of
	 * the limit is still there */
	map_at(mm, TA + GB, SMM_MLOCK_LIMIT, RW);
	assert_int_equal(smm_mlock2(mm, TA + GB, SMM_MLOCK_LIMIT - 4 * PG,
				    SMM_MLOCK_ONFAULT),
			 0);
	assert_int_equal(smm_mlock2(mm, TA + GB + SMM_MLOCK_LIMIT - 4 * PG, PG,
				    SMM_MLOCK_ONFAULT),
			 -ENOMEM);
}

/* The pool runs out while mlock faults in: -EAGAIN, the flags stay. */
static int small_setup(void **state)
{
	return env_setup_sized(state, 1 * MB);
}

static void test_mlock_pool_exhausted(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;

	map_at(mm, TA, 2 * MB, RW);
	assert_int_equal(smm_mlock(mm, TA, 2 * MB), -EAGAIN);
	assert_true(flags_at(mm, TA) & LOCKED);
	assert_true(resident(mm, TA, 2 * MB) > 0);
	assert_true(resident(mm, TA, 2 * MB) < 512);
	assert_int_equal(smm_mm_verify(mm), 0);
}

/* ---- stacks ---------------------------------------------------------- */

static int64_t map_stack(struct smm_mm *mm, uint64_t a, uint64_t len, int prot)
{
	return smm_mmap(mm, a, len, prot,
			PRIV_ANON | SMM_MAP_FIXED | SMM_MAP_GROWSDOWN);
}

static void test_stack_grows(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	const uint64_t top = TA + 64 * MB;

	assert_int_equal(map_stack(mm, top - 4 * PG, 4 * PG, RW),
			 (int64_t)(top - 4 * PG));
	assert_true(flags_at(mm, top - PG) & SMM_VM_GROWSDOWN);
	wr8(e->cpu, top - 5 * PG + 17, 0x42);
	expect_vmas(mm, 0, SMM_TASK_SIZE, { top - 5 * PG, top, RW });
	/* a multi-page access below grows it to the first page touched */
	write_pat(e->cpu, top - 40 * PG, 2 * PG, 34);
	expect_vmas(mm, 0, SMM_TASK_SIZE, { top - 40 * PG, top, RW });
	assert_int_equal(rd8(e->cpu, top - 5 * PG + 17), 0x42);
	check_pat(e->cpu, top - 40 * PG, 2 * PG, 34);
	/* the stack limit: the whole stack at most SMM_STACK_LIMIT */
	expect_write_fault(e->cpu, top - SMM_STACK_LIMIT - PG, 1, -EFAULT,
			   top - SMM_STACK_LIMIT - PG);
	wr8(e->cpu, top - SMM_STACK_LIMIT, 1);
	expect_vmas(mm, 0, SMM_TASK_SIZE, { top - SMM_STACK_LIMIT, top, RW });
	/* slow GUP and populate do not grow stacks, as in Linux 6.5+ */
	map_stack(mm, TA + 128 * MB, PG, RW);
	assert_int_equal(smm_madvise(mm, TA + 128 * MB - PG, PG,
				     SMM_MADV_POPULATE_WRITE),
			 -ENOMEM);
	assert_int_equal(smm_mm_verify(mm), 0);
}

static void test_stack_guard_gap(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	const uint64_t top = TA + 64 * MB, gap = 256 * PG;

	map_stack(mm, top - PG, PG, RW);
	/* an accessible VMA below: the stack stops a guard gap above it */
	map_at(mm, top - 300 * PG, PG, RO);
	expect_write_fault(e->cpu, top - 300 * PG + PG, 1, -EFAULT,
			   top - 300 * PG + PG);
	expect_write_fault(e->cpu, top - 300 * PG + gap - PG, 1, -EFAULT,
			   top - 300 * PG + gap - PG);
	wr8(e->cpu, top - 300 * PG + PG + gap, 1);
	expect_vmas(mm, 0, SMM_TASK_SIZE,
		    { top - 300 * PG, top - 299 * PG, RO },
		    { top - 299 * PG + gap, top, RW });
	/* a PROT_NONE VMA below is no obstacle (it is a guard itself) */
	assert_int_equal(smm_mprotect(mm, top - 300 * PG, PG, SMM_PROT_NONE),
			 0);
	wr8(e->cpu, top - 299 * PG, 2);
	expect_vmas(mm, 0, SMM_TASK_SIZE,
		    { top - 300 * PG, top - 299 * PG, SMM_PROT_NONE },
		    { top - 299 * PG, top, RW });
	/* placement keeps the guard gap free below a stack */
	assert_int_equal(smm_munmap(mm, top - 300 * PG, PG), 0);
	int64_t a = smm_mmap(mm, top - 200 * PG, PG, RW, PRIV_ANON);
	assert_true(a > 0 && (uint64_t)a != top - 200 * PG);
	assert_int_equal(smm_munmap(mm, (uint64_t)a, PG), 0);
	assert_int_equal(smm_mm_verify(mm), 0);
}

static void test_stack_readonly(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	const uint64_t top = TA + 64 * MB;

	map_stack(mm, top - PG, PG, RO);
	/* a store below grows the stack, then faults on its protection */
	expect_write_fault(e->cpu, top - 2 * PG, 1, -EFAULT, top - 2 * PG);
	expect_vmas(mm, 0, SMM_TASK_SIZE, { top - 2 * PG, top, RO });
	assert_int_equal(rd8(e->cpu, top - 3 * PG), 0);
	/* PROT_GROWSDOWN extends mprotect down to the stack's start */
	assert_int_equal(smm_mprotect(mm, top - PG, PG, RW | 0x01000000), 0);
	expect_vmas(mm, 0, SMM_TASK_SIZE, { top - 3 * PG, top, RW });
	map_at(mm, TA, PG, RW);
	assert_int_equal(smm_mprotect(mm, TA, PG, RO | 0x01000000), -EINVAL);
	assert_int_equal(smm_mprotect(mm, TA, PG, RO | 0x02000000), -EINVAL);
}

/* MAP_STACK: VM_NOHUGEPAGE; a locked stack grows within the lock limit. */
static void test_stack_flags(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	const uint64_t top = TA + 64 * MB;

	assert_int_equal(smm_mmap(mm, TA, 4 * PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED | SMM_MAP_STACK),
			 (int64_t)TA);
	assert_true(flags_at(mm, TA) & SMM_VM_NOHUGEPAGE);
	assert_false(flags_at(mm, TA) & SMM_VM_GROWSDOWN);
	map_at(mm, TA + 4 * PG, 4 * PG, RW);
	assert_int_equal(smm_mm_vmas(mm, 0, SMM_TASK_SIZE, NULL, 0), 2);
	assert_int_equal(smm_mmap(mm, top - PG, PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED |
					  SMM_MAP_GROWSDOWN | SMM_MAP_LOCKED),
			 (int64_t)(top - PG));
	assert_int_equal(flags_at(mm, top - PG) & (LOCKED | SMM_VM_GROWSDOWN),
			 LOCKED | SMM_VM_GROWSDOWN);
	wr8(e->cpu, top - 2 * PG, 1);
	expect_vmas(mm, top - MB, top, { top - 2 * PG, top, RW });
	/* the rest of the lock limit, minus a page: then growing fails */
	map_at(mm, TA + GB, SMM_MLOCK_LIMIT, RW);
	assert_int_equal(smm_mlock2(mm, TA + GB, SMM_MLOCK_LIMIT - 3 * PG,
				    SMM_MLOCK_ONFAULT),
			 0);
	wr8(e->cpu, top - 3 * PG, 1);
	expect_write_fault(e->cpu, top - 4 * PG, 1, -EFAULT, top - 4 * PG);
}

/*
 * Threads grow one stack concurrently, each storing to its own pages
 * from the top down, while another thread splits and merges the stack's
 * upper part with flag advice. Every value must be there at the end, the
 * stack one VMA again, and smm_mm_verify() content.
 */
#define GROW_THREADS 3
#define GROW_PAGES   300

struct grow_arg {
	struct env *e;
	uint64_t top;
	int id;
	pthread_barrier_t *bar;
	atomic_int *done;
	int err;
};

static void *grow_thread(void *p)
{
	struct grow_arg *a = p;
	struct smm_cpu *cpu = smm_cpu_attach(a->e->pool);

	if (!cpu || smm_cpu_switch_mm(cpu, a->e->mm)) {
		a->err = -1;
		return NULL;
	}
	pthread_barrier_wait(a->bar);
	for (int k = 0; k < GROW_PAGES; k++) {
		uint64_t addr =
			a->top - (uint64_t)(2 + k * GROW_THREADS + a->id) * PG;
		uint64_t v = addr ^ 0x5a5a5a5aULL;

		if (smm_write(cpu, addr, &v, 8, NULL))
			a->err = -2;
	}
	atomic_fetch_add(a->done, 1);
	smm_cpu_switch_mm(cpu, NULL);
	smm_cpu_detach(cpu);
	return NULL;
}

static void test_stack_threads(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = e->mm;
	const uint64_t top = TA + 64 * MB;
	pthread_barrier_t bar;
	pthread_t tid[GROW_THREADS];
	struct grow_arg args[GROW_THREADS];
	atomic_int done = 0;
	unsigned int splits = 0;
	const uint64_t bottom =
		top - (uint64_t)(2 + GROW_PAGES * GROW_THREADS - 1) * PG;

	for (int round = 0; round < 20; round++) {
		assert_int_equal(map_stack(mm, top - PG, PG, RW),
				 (int64_t)(top - PG));
		atomic_store(&done, 0);
		pthread_barrier_init(&bar, NULL, GROW_THREADS + 1);
		for (int i = 0; i < GROW_THREADS; i++) {
			args[i] = (struct grow_arg){ .e = e,
						     .top = top,
						     .id = i,
						     .bar = &bar,
						     .done = &done };
			assert_int_equal(pthread_create(&tid[i], NULL,
							grow_thread, &args[i]),
					 0);
		}
		pthread_barrier_wait(&bar);
		while (atomic_load(&done) < GROW_THREADS) {
			/* split the stack's top page off and merge it back */
			int r = smm_madvise(mm, top - PG, PG,
					    SMM_MADV_DONTDUMP);

			assert_int_equal(r, 0);
			assert_int_equal(smm_madvise(mm, top - PG, PG,
						     SMM_MADV_DODUMP),
					 0);
			splits++;
		}
		for (int i = 0; i < GROW_THREADS; i++) {
			pthread_join(tid[i], NULL);
			assert_int_equal(args[i].err, 0);
		}
		pthread_barrier_destroy(&bar);
		for (int i = 0; i < GROW_THREADS; i++)
			for (int k = 0; k < GROW_PAGES; k++) {
				uint64_t addr =
					top -
					(uint64_t)(2 + k * GROW_THREADS + i) *
						PG;
				uint64_t v = 0;

				assert_int_equal(
					smm_read(e->cpu, addr, &v, 8, NULL), 0);
				assert_int_equal(v, addr ^ 0x5a5a5a5aULL);
			}
		/*
		 * A DONTDUMP that found the stack one page long covered all
		 * of it, and the stack then grew with the flag: the last
		 * DODUMP may have split it. DODUMP on all of it merges it.
		 */
		assert_int_equal(smm_madvise(mm, bottom, top - bottom,
					     SMM_MADV_DODUMP),
				 0);
		expect_vmas(mm, 0, SMM_TASK_SIZE, { bottom, top, RW });
		assert_int_equal(smm_mm_verify(mm), 0);
		assert_int_equal(smm_munmap(mm, top - 8 * MB, 8 * MB), 0);
	}
	assert_true(splits > 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_mlock_basic),
		T(test_mlock_onfault),
		T(test_mlock_errors),
		T(test_mlock_limit),
		T(test_mlock_madvise),
		T(test_mlock_inject),
		cmocka_unit_test_setup_teardown(test_mlock_pool_exhausted,
						small_setup, env_teardown),
		T(test_stack_grows),
		T(test_stack_guard_gap),
		T(test_stack_readonly),
		T(test_stack_flags),
		T(test_stack_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
