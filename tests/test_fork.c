/*
 * test_fork.c - smm_fork(): copy-on-write of private anonymous memory
 * (each side sees its own values), reuse of a page that became exclusive,
 * shared mappings staying shared, MADV_DONTFORK and MADV_WIPEONFORK, a
 * page pinned before the fork copied for the child (the pin and the
 * parent keep seeing each other), GUP-fast racing fork, made
 * deterministic with the GUP-fast debug hook (write_protect_seq), and
 * fault injection at every allocation of a fork.
 */
#include <pthread.h>
#include <semaphore.h>
#include <time.h>
#include "common.h"

static uint64_t rd64(struct env *e, uint64_t a)
{
	uint64_t v = 0;

	assert_int_equal(smm_read(e->cpu, a, &v, 8, NULL), 0);
	return v;
}

static void wr64(struct env *e, uint64_t a, uint64_t v)
{
	assert_int_equal(smm_write(e->cpu, a, &v, 8, NULL), 0);
}

static void test_cow(void **state)
{
	struct env *e = *state;
	struct smm_mm *child;

	assert_int_equal(smm_mmap(e->mm, TA, 16 * PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)TA);
	for (int i = 0; i < 16; i++)
		wr64(e, TA + i * PG, 100 + i);
	child = smm_fork(e->mm);
	assert_non_null(child);
	assert_int_equal(smm_mm_verify(e->mm), 0);
	assert_int_equal(smm_mm_verify(child), 0);
	wr64(e, TA, 1); /* parent copies */
	smm_cpu_switch_mm(e->cpu, child);
	assert_int_equal(rd64(e, TA), 100); /* child: old value */
	wr64(e, TA + PG, 2);		    /* child copies */
	assert_int_equal(rd64(e, TA + 2 * PG), 102);
	smm_cpu_switch_mm(e->cpu, e->mm);
	assert_int_equal(rd64(e, TA), 1);
	assert_int_equal(rd64(e, TA + PG), 101);
	assert_int_equal(smm_mm_verify(e->mm), 0);
	assert_int_equal(smm_mm_verify(child), 0);
	/* child gone: the parent's shared pages are its alone again and a
	 * write reuses them (no copy: the pool does not grow) */
	smm_mm_destroy(child);
	struct smm_pool_stats a, b;
	smm_pool_stats(e->pool, &a);
	wr64(e, TA + 3 * PG, 3);
	smm_pool_stats(e->pool, &b);
	assert_int_equal(a.anon_pages, b.anon_pages);
	assert_int_equal(smm_mm_verify(e->mm), 0);
}

static void test_flags(void **state)
{
	struct env *e = *state;
	struct smm_mm *child;
	uint64_t v;

	assert_int_equal(smm_mmap(e->mm, TA, 4 * PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)TA);
	assert_int_equal(smm_mmap(e->mm, TA + 8 * PG, 4 * PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)(TA + 8 * PG));
	assert_int_equal(smm_mmap(e->mm, TA + 16 * PG, 4 * PG, RW,
				  SMM_MAP_SHARED | SMM_MAP_ANONYMOUS |
					  SMM_MAP_FIXED),
			 (int64_t)(TA + 16 * PG));
	wr64(e, TA, 5);
	wr64(e, TA + 8 * PG, 6);
	wr64(e, TA + 16 * PG, 7);
	assert_int_equal(smm_madvise(e->mm, TA, 4 * PG, SMM_MADV_DONTFORK), 0);
	assert_int_equal(smm_madvise(e->mm, TA + 8 * PG, 4 * PG,
				     SMM_MADV_WIPEONFORK),
			 0);
	child = smm_fork(e->mm);
	assert_non_null(child);
	smm_cpu_switch_mm(e->cpu, child);
	assert_int_equal(smm_read(e->cpu, TA, &v, 8, NULL), -EFAULT);
	assert_int_equal(rd64(e, TA + 8 * PG), 0);  /* wiped */
	assert_int_equal(rd64(e, TA + 16 * PG), 7); /* shared */
	wr64(e, TA + 16 * PG, 8);
	smm_cpu_switch_mm(e->cpu, e->mm);
	assert_int_equal(rd64(e, TA + 16 * PG), 8);
	assert_int_equal(rd64(e, TA + 8 * PG), 6);
	assert_int_equal(smm_mm_verify(child), 0);
	smm_mm_destroy(child);
}

/* A page pinned before fork: the child gets a copy, the pin keeps
 * reaching the parent's page ("COW fixes part 2"). */
static void test_pinned(void **state)
{
	struct env *e = *state;
	struct smm_page *p;
	struct smm_mm *child;

	assert_int_equal(smm_mmap(e->mm, TA, PG, RW, PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)TA);
	wr64(e, TA, 9);
	assert_int_equal(smm_pin_user_pages(e->mm, TA, 1, SMM_FOLL_WRITE, &p),
			 1);
	child = smm_fork(e->mm);
	assert_non_null(child);
	*(volatile uint64_t *)smm_page_address(p) = 10; /* the device */
	assert_int_equal(rd64(e, TA), 10);
	smm_cpu_switch_mm(e->cpu, child);
	assert_int_equal(rd64(e, TA), 9);
	smm_cpu_switch_mm(e->cpu, e->mm);
	wr64(e, TA, 11); /* no copy: still the pinned page */
	assert_int_equal(*(volatile uint64_t *)smm_page_address(p), 11);
	smm_unpin_user_pages(&p, 1);
	assert_int_equal(smm_mm_verify(e->mm), 0);
	assert_int_equal(smm_mm_verify(child), 0);
	smm_mm_destroy(child);
}

/*
 * GUP-fast racing fork, deterministic (Linux's write_protect_seq, 2020):
 * fork decides to share the page (it is not pinned yet) and, before it
 * write-protects the parent's entry, a second CPU pins the page through
 * GUP-fast (the fork debug hook lets it run, for up to 200 ms). Without
 * the sequence check the pin lands on the page fork then shares with the
 * child: the device's writes reach the child. With it, GUP-fast gives up
 * and the slow path, once fork is done, unshares the page first.
 */
#ifdef SMM_DEBUG /* the fork hook exists in debug builds only */
extern void (*smm_debug_fork_hook)(struct smm_mm *mm, uint64_t addr);
static sem_t go, done;
static struct smm_page *race_pin;
static long race_n;

static void fork_hook(struct smm_mm *mm, uint64_t addr)
{
	struct timespec ts;

	if (addr != TA)
		return;
	smm_debug_fork_hook = NULL;
	sem_post(&go);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 200 * 1000 * 1000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	(void)sem_timedwait(&done, &ts);
}

struct pinner {
	struct smm_pool *pool;
	struct smm_mm *mm;
};

static void *pinner_fn(void *arg)
{
	struct pinner *p = arg;
	struct smm_cpu *cpu = smm_cpu_attach(p->pool);

	smm_cpu_switch_mm(cpu, p->mm);
	sem_wait(&go);
	race_n = smm_pin_user_pages_fast(cpu, TA, 1, SMM_FOLL_WRITE, &race_pin);
	sem_post(&done);
	smm_cpu_switch_mm(cpu, NULL);
	smm_cpu_detach(cpu);
	return NULL;
}

static void test_gup_fast_vs_fork(void **state)
{
	struct env *e = *state;
	struct pinner pn = { e->pool, e->mm };
	struct smm_mm *child;
	pthread_t t;

	assert_int_equal(smm_mmap(e->mm, TA, PG, RW, PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)TA);
	wr64(e, TA, 12);
	sem_init(&go, 0, 0);
	sem_init(&done, 0, 0);
	pthread_create(&t, NULL, pinner_fn, &pn);
	smm_debug_fork_hook = fork_hook;
	child = smm_fork(e->mm);
	smm_debug_fork_hook = NULL;
	pthread_join(t, NULL);
	assert_non_null(child);
	assert_int_equal(race_n, 1);
	/* the device writes: the parent sees it, the child must not */
	*(volatile uint64_t *)smm_page_address(race_pin) = 13;
	assert_int_equal(rd64(e, TA), 13);
	smm_cpu_switch_mm(e->cpu, child);
	assert_int_equal(rd64(e, TA), 12);
	smm_cpu_switch_mm(e->cpu, e->mm);
	smm_unpin_user_pages(&race_pin, 1);
	assert_int_equal(smm_mm_verify(e->mm), 0);
	assert_int_equal(smm_mm_verify(child), 0);
	smm_mm_destroy(child);
}
#endif

/*
 * Each allocation of a fork fails in turn (n = 1, 2, ... until a fork
 * succeeds): smm_fork() returns NULL with ENOMEM, and the parent is as it
 * was: its VMAs, every value, a shared mapping's link to its file, and
 * the pool, which has every frame of the half-built child back. Private
 * anonymous memory over two 1 GiB slots (tables at every level to copy),
 * a never-written VMA, shared anonymous memory and a pin.
 */
static void test_fault_injection(void **state)
{
	struct env *e = *state;
	const uint64_t sh = TA + 4 * GB;
	struct smm_pool_stats p0, p1;
	struct smm_mm_stats m0, m1;
	struct smm_page *pin;
	struct smm_vma_info v0[8], v1[8];
	size_t nv;
	unsigned long n;

	assert_int_equal(smm_mmap(e->mm, TA + GB - 8 * PG, 16 * PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)(TA + GB - 8 * PG));
	assert_int_equal(smm_mmap(e->mm, TA + 2 * GB, 64 * PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)(TA + 2 * GB));
	assert_int_equal(smm_mmap(e->mm, TA + 3 * GB, 8 * PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)(TA + 3 * GB));
	assert_int_equal(smm_mmap(e->mm, sh, 4 * PG, RW,
				  SMM_MAP_SHARED | SMM_MAP_ANONYMOUS |
					  SMM_MAP_FIXED),
			 (int64_t)sh);
	for (int i = 0; i < 16; i++)
		wr64(e, TA + GB - 8 * PG + i * PG, 1000 + i);
	for (int i = 0; i < 64; i++)
		wr64(e, TA + 2 * GB + i * PG, 2000 + i);
	wr64(e, sh, 77);
	assert_int_equal(smm_pin_user_pages(e->mm, TA + 2 * GB + 5 * PG, 1,
					    SMM_FOLL_WRITE, &pin),
			 1);
	smm_mm_stats(e->mm, &m0);
	smm_pool_stats(e->pool, &p0);
	nv = smm_mm_vmas(e->mm, 0, UINT64_MAX, v0, 8);
	assert_int_equal(nv, 4);
	for (n = 1; n < 200; n++) {
		struct smm_mm *child;

		smm_pool_inject_failure(e->pool, n);
		errno = 0;
		child = smm_fork(e->mm);
		smm_pool_inject_failure(e->pool, 0);
		if (child) {
			smm_mm_destroy(child);
			break;
		}
		assert_int_equal(errno, ENOMEM);
		assert_int_equal(smm_mm_verify(e->mm), 0);
		smm_mm_stats(e->mm, &m1);
		assert_int_equal(m1.rss_anon, m0.rss_anon);
		assert_int_equal(m1.pt_bytes, m0.pt_bytes);
		assert_int_equal(m1.nr_vmas, m0.nr_vmas);
		assert_int_equal(smm_mm_vmas(e->mm, 0, UINT64_MAX, v1, 8), nv);
		for (size_t k = 0; k < nv; k++) {
			assert_int_equal(v1[k].start, v0[k].start);
			assert_int_equal(v1[k].end, v0[k].end);
			assert_int_equal(v1[k].prot, v0[k].prot);
			assert_int_equal(v1[k].flags, v0[k].flags);
			assert_int_equal(v1[k].pgoff, v0[k].pgoff);
			assert_ptr_equal(v1[k].file, v0[k].file);
		}
		smm_pool_stats(e->pool, &p1);
		assert_int_equal(p1.free, p0.free);
		for (int i = 0; i < 16; i++)
			assert_int_equal(rd64(e, TA + GB - 8 * PG + i * PG),
					 1000 + i);
		for (int i = 0; i < 64; i++)
			assert_int_equal(rd64(e, TA + 2 * GB + i * PG),
					 2000 + i);
		assert_int_equal(rd64(e, sh), 77);
	}
	print_message("fork failed at allocations 1..%lu, then succeeded\n",
		      n - 1);
	assert_true(n > 4 && n < 200);
	/* the pin still reaches the parent's page; its writes still work */
	*(uint64_t *)smm_page_address(pin) = 55;
	assert_int_equal(rd64(e, TA + 2 * GB + 5 * PG), 55);
	wr64(e, TA + GB - 8 * PG, 9);
	assert_int_equal(rd64(e, TA + GB - 8 * PG), 9);
	smm_unpin_user_pages(&pin, 1);
	assert_int_equal(smm_mm_verify(e->mm), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cow, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_flags, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_pinned, env_setup,
						env_teardown),
#ifdef SMM_DEBUG
		cmocka_unit_test_setup_teardown(test_gup_fast_vs_fork,
						env_setup, env_teardown),
#endif
		cmocka_unit_test_setup_teardown(test_fault_injection, env_setup,
						env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
