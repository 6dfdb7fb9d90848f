/*
 * test_cpu.c - CPUs: attach/detach/switch_mm rules (EBUSY on a second
 * attach by the same thread, -EINVAL without an address space), data
 * written by one CPU (a real thread) read by others, and TLB shootdown with
 * real threads: reader CPUs access a page in a loop (so its translation is
 * cached in their TLBs) while the main thread munmaps it, mprotects it
 * (read-only, PROT_NONE) or MADV_DONTNEEDs it after a random delay; once
 * the call has returned (an atomic flag, read by the reader before its
 * access) every access must fault (or read zeros after DONTNEED). Many
 * rounds. Also: destroying an address space while a CPU is still switched
 * to it (-ESRCH on calls, -EFAULT on access, memory released by the last
 * switch away).
 */
#include "common.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

static void test_attach_rules(void **state)
{
	struct smm_pool *p = smm_pool_create(4 * MB, 0);
	struct smm_pool *q = smm_pool_create(4 * MB, 0);
	assert_non_null(p);
	assert_non_null(q);
	struct smm_cpu *c = smm_cpu_attach(p);
	assert_non_null(c);
	errno = 0;
	assert_null(smm_cpu_attach(p));
	assert_int_equal(errno, EBUSY);
	errno = 0;
	assert_null(smm_cpu_attach(q)); /* a thread is at most one CPU */
	assert_int_equal(errno, EBUSY);
	assert_int_equal(smm_pool_destroy(p), -EBUSY);
	smm_cpu_detach(c);
	/* again after detaching, on the other pool */
	c = smm_cpu_attach(q);
	assert_non_null(c);
	assert_int_equal(smm_pool_destroy(p), 0);
	/* no address space: -EINVAL */
	uint8_t b;
	assert_int_equal(smm_read(c, TA, &b, 1, NULL), -EINVAL);
	struct smm_mm *a = new_mm(q, 0), *m2 = new_mm(q, 0);
	map_at(a, TA, PG, RW);
	map_at(m2, TA, PG, RW);
	smm_cpu_switch_mm(c, a);
	wr8(c, TA, 1);
	smm_cpu_switch_mm(c, m2);
	assert_int_equal(rd8(c, TA), 0); /* the TLB was flushed */
	wr8(c, TA, 2);
	smm_cpu_switch_mm(c, a);
	assert_int_equal(rd8(c, TA), 1);
	smm_cpu_switch_mm(c, a); /* switching to the same mm is fine */
	assert_int_equal(rd8(c, TA), 1);
	smm_cpu_switch_mm(c, NULL);
	assert_int_equal(smm_read(c, TA, &b, 1, NULL), -EINVAL);
	smm_mm_destroy(a);
	smm_mm_destroy(m2);
	assert_pool_clean(q);
	/* detach while switched: switches away */
	a = new_mm(q, 0);
	smm_cpu_switch_mm(c, a);
	smm_cpu_detach(c);
	smm_mm_destroy(a);
	assert_pool_clean(q);
	assert_int_equal(smm_pool_destroy(q), 0);
}

/* ---- shared data across CPUs ----------------------------------------- */

#define NSHARE 4
struct share {
	struct smm_pool *pool;
	struct smm_mm *mm;
	pthread_barrier_t bar;
	int idx;
	atomic_int errors;
};
struct share_arg {
	struct share *s;
	int idx;
};

static void *share_thread(void *arg)
{
	struct share_arg *a = arg;
	struct share *s = a->s;
	struct smm_cpu *c = smm_cpu_attach(s->pool);
	if (!c) {
		atomic_fetch_add(&s->errors, 1000);
		pthread_barrier_wait(&s->bar);
		pthread_barrier_wait(&s->bar);
		return NULL;
	}
	smm_cpu_switch_mm(c, s->mm);
	uint64_t mine = TA + (uint64_t)a->idx * 64 * PG;
	uint8_t buf[256];
	for (uint64_t o = 0; o < 64 * PG; o += sizeof(buf)) {
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = pat(mine + o + i, 77);
		if (smm_write(c, mine + o, buf, sizeof(buf), NULL))
			atomic_fetch_add(&s->errors, 1);
	}
	pthread_barrier_wait(&s->bar);
	for (int t = 0; t < NSHARE; t++) {
		uint64_t other = TA + (uint64_t)t * 64 * PG;
		for (uint64_t o = 0; o < 64 * PG; o += sizeof(buf)) {
			if (smm_read(c, other + o, buf, sizeof(buf), NULL))
				atomic_fetch_add(&s->errors, 1);
			for (size_t i = 0; i < sizeof(buf); i++)
				if (buf[i] != pat(other + o + i, 77)) {
					atomic_fetch_add(&s->errors, 1);
					break;
				}
		}
	}
	pthread_barrier_wait(&s->bar);
	smm_cpu_detach(c);
	return NULL;
}

static void test_shared_data(void **state)
{
	struct env *e = *state;
	struct share s = { .pool = e->pool, .mm = e->mm };
	pthread_barrier_init(&s.bar, NULL, NSHARE);
	map_at(e->mm, TA, NSHARE * 64 * PG, RW);
	pthread_t th[NSHARE];
	struct share_arg args[NSHARE];
	for (int i = 0; i < NSHARE; i++) {
		args[i] = (struct share_arg){ &s, i };
		assert_int_equal(pthread_create(&th[i], NULL, share_thread,
						&args[i]),
				 0);
	}
	for (int i = 0; i < NSHARE; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&s.bar);
	assert_int_equal(atomic_load(&s.errors), 0);
	/* and this CPU sees it all too */
	for (int t = 0; t < NSHARE; t++)
		check_pat(e->cpu, TA + (uint64_t)t * 64 * PG, 64 * PG, 77);
	assert_int_equal(mm_stats(e->mm).rss_anon, NSHARE * 64);
}

/* ---- TLB shootdown ---------------------------------------------------- */

enum op {
	OP_MUNMAP,
	OP_MPROTECT_RO,
	OP_MPROTECT_NONE,
	OP_DONTNEED
};

#define NREADERS 2
#define SPAN	 (4 * PG)

struct shoot {
	struct smm_pool *pool;
	struct smm_mm *mm;
	enum op op;
	atomic_int round; /* main -> readers: a new round started */
	atomic_int done;  /* main -> readers: the call has returned */
	atomic_int stop;
	atomic_int ready[NREADERS]; /* reader -> main: accessed the page */
	atomic_int acked[NREADERS]; /* reader -> main: round finished */
	atomic_long violations, bad_data, accesses_after;
};
struct shoot_arg {
	struct shoot *s;
	int id;
};

static uint64_t xrand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void spin_ns(uint64_t ns)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((uint64_t)(t.tv_sec - t0.tv_sec) * 1000000000ULL +
			 (uint64_t)(t.tv_nsec - t0.tv_nsec) <
		 ns);
}

static void *shoot_reader(void *arg)
{
	struct shoot_arg *a = arg;
	struct shoot *s = a->s;
	uint64_t rnd = 0x1234567ULL + (uint64_t)a->id * 7919;
	struct smm_cpu *c = smm_cpu_attach(s->pool);
	if (!c) {
		atomic_fetch_add(&s->violations, 1000000);
		return NULL;
	}
	smm_cpu_switch_mm(c, s->mm);
	int seen = 0;
	for (;;) {
		int r;
		while ((r = atomic_load(&s->round)) == seen &&
		       !atomic_load(&s->stop))
			sched_yield();
		if (atomic_load(&s->stop))
			break;
		seen = r;
		int after = 0;
		uint8_t want = (uint8_t)(seen | 1);
		for (;;) {
			int d = atomic_load(&s->done);
			uint64_t off = (xrand(&rnd) % SPAN) & ~7ULL;
			uint8_t v[8];
			int rc;
			if (s->op == OP_MPROTECT_RO) {
				memset(v, want, sizeof(v));
				rc = smm_write(c, TA + off, v, sizeof(v), NULL);
			} else {
				rc = smm_read(c, TA + off, v, sizeof(v), NULL);
			}
			if (rc == 0 && !atomic_load(&s->ready[a->id]))
				atomic_store(&s->ready[a->id], seen);
			if (d) {
				atomic_fetch_add(&s->accesses_after, 1);
				if (s->op == OP_DONTNEED) {
					if (rc != 0 || v[0] != 0 || v[7] != 0)
						atomic_fetch_add(&s->violations,
								 1);
				} else if (rc != -EFAULT) {
					atomic_fetch_add(&s->violations, 1);
				}
				if (++after >= 4)
					break;
			} else if (rc == 0 && s->op != OP_MPROTECT_RO &&
				   !(v[0] == want ||
				     (s->op == OP_DONTNEED && v[0] == 0))) {
				atomic_fetch_add(&s->bad_data, 1);
			}
		}
		atomic_store(&s->acked[a->id], seen);
	}
	smm_cpu_switch_mm(c, NULL);
	smm_cpu_detach(c);
	return NULL;
}

static void run_shootdown(struct env *e, enum op op, int rounds)
{
	struct shoot *s = calloc(1, sizeof(*s));
	s->pool = e->pool;
	s->mm = e->mm;
	s->op = op;
	pthread_t th[NREADERS];
	struct shoot_arg args[NREADERS];
	for (int i = 0; i < NREADERS; i++) {
		args[i] = (struct shoot_arg){ s, i };
		assert_int_equal(pthread_create(&th[i], NULL, shoot_reader,
						&args[i]),
				 0);
	}
	uint64_t rnd = 88172645463325252ULL;
	for (int r = 1; r <= rounds; r++) {
		int64_t m = smm_mmap(e->mm, TA, SPAN, RW,
				     PRIV_ANON | SMM_MAP_FIXED);
		assert_int_equal(m, (int64_t)TA);
		assert_int_equal(smm_fill(e->cpu, TA, r | 1, SPAN, NULL), 0);
		atomic_store(&s->done, 0);
		for (int i = 0; i < NREADERS; i++)
			atomic_store(&s->ready[i], 0);
		atomic_store(&s->round, r);
		/* wait until every reader has the page in its TLB */
		for (int i = 0; i < NREADERS; i++)
			while (atomic_load(&s->ready[i]) != r)
				sched_yield();
		spin_ns(xrand(&rnd) % 50000);
		int rc = 0;
		switch (op) {
		case OP_MUNMAP:
			rc = smm_munmap(e->mm, TA, SPAN);
			break;
		case OP_MPROTECT_RO:
			rc = smm_mprotect(e->mm, TA, SPAN, RO);
			break;
		case OP_MPROTECT_NONE:
			rc = smm_mprotect(e->mm, TA, SPAN, SMM_PROT_NONE);
			break;
		case OP_DONTNEED:
			rc = smm_madvise(e->mm, TA, SPAN, SMM_MADV_DONTNEED);
			break;
		}
		assert_int_equal(rc, 0);
		atomic_store(&s->done, 1);
		for (int i = 0; i < NREADERS; i++)
			while (atomic_load(&s->acked[i]) != r)
				sched_yield();
	}
	atomic_store(&s->stop, 1);
	for (int i = 0; i < NREADERS; i++)
		pthread_join(th[i], NULL);
	if (atomic_load(&s->violations) || atomic_load(&s->bad_data))
		fprintf(stderr,
			"op %d: %ld stale accesses after the call returned "
			"(of %ld), %ld bad data\n",
			op, atomic_load(&s->violations),
			atomic_load(&s->accesses_after),
			atomic_load(&s->bad_data));
	assert_int_equal(atomic_load(&s->violations), 0);
	assert_int_equal(atomic_load(&s->bad_data), 0);
	assert_int_equal(atomic_load(&s->accesses_after),
			 4L * NREADERS * rounds);
	assert_true(mm_stats(e->mm).tlb_flushes > 0);
	free(s);
}

/* rounds per shootdown test: $SMM_TEST_ROUNDS, default 300 (about 2 s
 * each in a release build on 2 cores) */
static int rounds(void)
{
	const char *r = getenv("SMM_TEST_ROUNDS");
	return r && atoi(r) > 0 ? atoi(r) : 300;
}

static void test_shootdown_munmap(void **state)
{
	run_shootdown(*state, OP_MUNMAP, rounds());
}
static void test_shootdown_mprotect_ro(void **state)
{
	run_shootdown(*state, OP_MPROTECT_RO, rounds());
}
static void test_shootdown_mprotect_none(void **state)
{
	run_shootdown(*state, OP_MPROTECT_NONE, rounds());
}
static void test_shootdown_dontneed(void **state)
{
	run_shootdown(*state, OP_DONTNEED, rounds());
}

/* ---- destroy while a CPU is still switched ----------------------------- */

struct late {
	struct smm_pool *pool;
	struct smm_mm *mm;
	pthread_barrier_t bar;
	int rc_read, rc_write;
	uint64_t fa;
};

static void *late_thread(void *arg)
{
	struct late *l = arg;
	struct smm_cpu *c = smm_cpu_attach(l->pool);
	assert_non_null(c);
	smm_cpu_switch_mm(c, l->mm);
	uint8_t b = 0;
	smm_read(c, TA, &b, 1, NULL);
	pthread_barrier_wait(&l->bar); /* 1: switched, outside any access */
	pthread_barrier_wait(&l->bar); /* 2: the mm was destroyed */
	l->fa = 0;
	l->rc_read = smm_read(c, TA, &b, 1, &l->fa);
	l->rc_write = smm_write(c, TA + 5, &b, 1, NULL);
	pthread_barrier_wait(&l->bar); /* 3: checked */
	pthread_barrier_wait(&l->bar); /* 4: main checked -ESRCH */
	smm_cpu_switch_mm(c, NULL);
	smm_cpu_detach(c);
	return NULL;
}

static void test_destroy_while_switched(void **state)
{
	struct smm_pool *p = smm_pool_create(16 * MB, SMM_POOL_POISON);
	assert_non_null(p);
	struct late l = { .pool = p, .mm = new_mm(p, 0) };
	map_at(l.mm, TA, 16 * PG, RW);
	pthread_barrier_init(&l.bar, NULL, 2);
	/* the main thread is a CPU on it too */
	struct smm_cpu *c = smm_cpu_attach(p);
	assert_non_null(c);
	smm_cpu_switch_mm(c, l.mm);
	write_pat(c, TA, 16 * PG, 1);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, late_thread, &l), 0);
	pthread_barrier_wait(&l.bar); /* 1 */
	smm_mm_destroy(l.mm);
	pthread_barrier_wait(&l.bar); /* 2 */
	pthread_barrier_wait(&l.bar); /* 3 */
	assert_int_equal(l.rc_read, -EFAULT);
	assert_int_equal(l.fa, TA);
	assert_int_equal(l.rc_write, -EFAULT);
	/* this CPU, still switched, faults too */
	expect_read_fault(c, TA + 3, 1, -EFAULT, TA + 3);
	expect_write_fault(c, TA + PG, 4, -EFAULT, TA + PG);
	/* calls on it: -ESRCH */
	assert_int_equal(smm_mmap(l.mm, 0, PG, RW, PRIV_ANON), -ESRCH);
	assert_int_equal(smm_mmap(l.mm, TA, PG, RW, PRIV_ANON | SMM_MAP_FIXED),
			 -ESRCH);
	assert_int_equal(smm_munmap(l.mm, TA, PG), -ESRCH);
	assert_int_equal(smm_mprotect(l.mm, TA, PG, RO), -ESRCH);
	assert_int_equal(smm_madvise(l.mm, TA, PG, SMM_MADV_DONTNEED), -ESRCH);
	unsigned char v[4];
	assert_int_equal(smm_mincore(l.mm, TA, PG, v), -ESRCH);
	assert_int_equal(smm_pool_destroy(p), -EBUSY);
	smm_cpu_switch_mm(c, NULL);
	/* the other CPU still holds it */
	assert_int_equal(smm_munmap(l.mm, TA, PG), -ESRCH);
	pthread_barrier_wait(&l.bar); /* 4 */
	pthread_join(th, NULL);
	pthread_barrier_destroy(&l.bar);
	/* the last switch away released everything */
	assert_pool_clean(p);
	smm_cpu_detach(c);
	assert_int_equal(smm_pool_destroy(p), 0);
}

/* Many CPUs attaching and detaching concurrently, each faulting pages. */
#define NCHURN 8
struct churn {
	struct smm_pool *pool;
	struct smm_mm *mm;
	atomic_int errors;
	int idx[NCHURN];
};

static void *churn_thread(void *arg)
{
	int *idx = arg;
	struct churn *ch = (struct churn *)((char *)(idx - *idx) -
					    offsetof(struct churn, idx));
	for (int k = 0; k < 30; k++) {
		struct smm_cpu *c = smm_cpu_attach(ch->pool);
		if (!c) {
			atomic_fetch_add(&ch->errors, 1);
			continue;
		}
		smm_cpu_switch_mm(c, ch->mm);
		uint64_t a = TA + (uint64_t)(*idx * 30 + k) * PG;
		uint64_t v = a, back = 0;
		if (smm_write(c, a + 8, &v, 8, NULL) ||
		    smm_read(c, a + 8, &back, 8, NULL) || back != a)
			atomic_fetch_add(&ch->errors, 1);
		smm_cpu_detach(c);
	}
	return NULL;
}

static void test_attach_churn(void **state)
{
	struct env *e = *state;
	struct churn ch = { .pool = e->pool, .mm = e->mm };
	map_at(e->mm, TA, NCHURN * 30 * PG, RW);
	pthread_t th[NCHURN];
	for (int i = 0; i < NCHURN; i++) {
		ch.idx[i] = i;
		assert_int_equal(pthread_create(&th[i], NULL, churn_thread,
						&ch.idx[i]),
				 0);
	}
	for (int i = 0; i < NCHURN; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&ch.errors), 0);
	for (int i = 0; i < NCHURN * 30; i++) {
		uint64_t a = TA + (uint64_t)i * PG, v = 0;
		assert_int_equal(smm_read(e->cpu, a + 8, &v, 8, NULL), 0);
		assert_int_equal(v, a);
	}
	assert_int_equal(mm_stats(e->mm).rss_anon, NCHURN * 30);
}

#define T(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)
int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attach_rules),
		T(test_shared_data),
		T(test_shootdown_munmap),
		T(test_shootdown_mprotect_ro),
		T(test_shootdown_mprotect_none),
		T(test_shootdown_dontneed),
		cmocka_unit_test(test_destroy_while_switched),
		T(test_attach_churn),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
