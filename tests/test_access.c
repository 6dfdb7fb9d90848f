/*
 * test_access.c - the public access sections (softmm.h): smm_access_begin(),
 * smm_translate(), smm_access_fault(), smm_access_end(). What a pointer
 * may be used for, the errors, the CPU's own TLB flushes, and that a
 * shootdown waits for every section: one deterministic test (munmap blocks
 * while a section holds a pointer) and one race (stores through pointers
 * against mprotect(PROT_READ) snapshots) that build/bug7, whose flushes do
 * not wait, must fail.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#include "common.h"

static void *xlate(struct smm_cpu *c, uint64_t a, int write)
{
	return smm_translate(c, a, write);
}

static void test_translate_basic(void **state)
{
	struct env *e = *state;
	struct smm_cpu *c = e->cpu;
	map_at(e->mm, TA, 4 * PG, RW);

	assert_int_equal(smm_access_begin(c), 0);
	/* Not present yet: a fault is needed. */
	assert_null(xlate(c, TA, 0));
	assert_int_equal(smm_access_fault(c, TA, 0), 0);
	uint64_t *r = xlate(c, TA, 0);
	assert_non_null(r);
	assert_int_equal(*r, 0);
	/* A read fault mapped the zero page: a store needs a fault. */
	assert_null(xlate(c, TA, 1));
	assert_int_equal(smm_access_fault(c, TA, 1), 0);
	uint64_t *w = xlate(c, TA, 1);
	assert_non_null(w);
	*w = 0x1234;
	/* The same page: the same frame, at the byte asked for. */
	assert_ptr_equal(xlate(c, TA + 8, 0), (char *)w + 8);
	assert_ptr_equal(xlate(c, TA + PG - 1, 1), (char *)w + PG - 1);
	*(uint8_t *)xlate(c, TA + PG - 1, 1) = 0x5a;
	/* A write fault on an untouched page maps it writable at once. */
	assert_null(xlate(c, TA + PG, 1));
	assert_int_equal(smm_access_fault(c, TA + PG, 1), 0);
	uint32_t *w2 = xlate(c, TA + PG + 4, 1);
	assert_non_null(w2);
	*w2 = 77;
	assert_int_equal(smm_access_end(c), 0);

	uint64_t v = 0;
	uint8_t b = 0;
	uint32_t v2 = 0;
	assert_int_equal(smm_read(c, TA, &v, 8, NULL), 0);
	assert_int_equal(v, 0x1234);
	assert_int_equal(smm_read(c, TA + PG - 1, &b, 1, NULL), 0);
	assert_int_equal(b, 0x5a);
	assert_int_equal(smm_read(c, TA + PG + 4, &v2, 4, NULL), 0);
	assert_int_equal(v2, 77);
	/* And what smm_write() stores, a translation reads. */
	v = 99;
	assert_int_equal(smm_write(c, TA + 2 * PG + 16, &v, 8, NULL), 0);
	assert_int_equal(smm_access_begin(c), 0);
	uint64_t *p = xlate(c, TA + 2 * PG + 16, 0);
	if (!p) {
		assert_int_equal(smm_access_fault(c, TA + 2 * PG + 16, 0), 0);
		p = xlate(c, TA + 2 * PG + 16, 0);
	}
	assert_non_null(p);
	assert_int_equal(*p, 99);
	assert_int_equal(smm_access_end(c), 0);
}

struct other {
	struct smm_cpu *c;
	int begin, end, fault;
};

static void *other_thread(void *arg)
{
	struct other *o = arg;
	o->begin = smm_access_begin(o->c);
	o->end = smm_access_end(o->c);
	o->fault = smm_access_fault(o->c, TA, 0);
	return NULL;
}

static void test_section_errors(void **state)
{
	struct env *e = *state;
	struct smm_cpu *c = e->cpu;
	map_at(e->mm, TA, PG, RW);

	assert_int_equal(smm_access_end(c), -EINVAL);
	assert_int_equal(smm_access_fault(c, TA, 0), -EINVAL);
	assert_int_equal(smm_access_begin(NULL), -EINVAL);
	assert_int_equal(smm_access_end(NULL), -EINVAL);
	/* Another layout of the TLB than the library's. */
	assert_int_equal(smm_access_begin_layout(c, SMM_TLB_LAYOUT + 1),
			 -EPROTO);
	assert_int_equal(smm_access_end(c), -EINVAL);

	assert_int_equal(smm_access_begin(c), 0);
	assert_int_equal(smm_access_begin(c), -EINVAL); /* no nesting */
	assert_int_equal(smm_cpu_switch_mm(c, NULL), -EBUSY);
	assert_int_equal(smm_cpu_detach(c), -EBUSY);
	/* Another thread may not use this CPU's section. */
	struct other o = { .c = c };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, other_thread, &o), 0);
	pthread_join(th, NULL);
	assert_int_equal(o.begin, -EINVAL);
	assert_int_equal(o.end, -EINVAL);
	assert_int_equal(o.fault, -EINVAL);
	assert_int_equal(smm_access_end(c), 0);
	assert_int_equal(smm_access_end(c), -EINVAL);

	/* No address space: nothing to enter. */
	assert_int_equal(smm_cpu_switch_mm(c, NULL), 0);
	assert_int_equal(smm_access_begin(c), -EINVAL);
	assert_int_equal(smm_cpu_switch_mm(c, e->mm), 0);
	assert_int_equal(smm_access_begin(c), 0);
	assert_int_equal(smm_access_end(c), 0);
}

static void test_fault_errors(void **state)
{
	struct env *e = *state;
	struct smm_cpu *c = e->cpu;
	map_at(e->mm, TA, PG, RW);
	map_at(e->mm, TA + 2 * PG, PG, RO);
	map_at(e->mm, TA + 4 * PG, PG, SMM_PROT_NONE);
	uint64_t v = 5;
	assert_int_equal(smm_write(c, TA, &v, 8, NULL), 0);

	assert_int_equal(smm_access_begin(c), 0);
	/* A hole: SIGSEGV, and the section is entered again. */
	assert_null(xlate(c, TA + PG, 0));
	assert_int_equal(smm_access_fault(c, TA + PG, 0), -EFAULT);
	/* Read-only: loads fault in, stores never. */
	assert_null(xlate(c, TA + 2 * PG, 1));
	assert_int_equal(smm_access_fault(c, TA + 2 * PG, 1), -EFAULT);
	assert_int_equal(smm_access_fault(c, TA + 2 * PG, 0), 0);
	assert_non_null(xlate(c, TA + 2 * PG, 0));
	assert_null(xlate(c, TA + 2 * PG, 1));
	/* PROT_NONE: neither. */
	assert_null(xlate(c, TA + 4 * PG, 0));
	assert_int_equal(smm_access_fault(c, TA + 4 * PG, 0), -EFAULT);
	/* Past the user address space. */
	assert_null(xlate(c, SMM_TASK_SIZE, 0));
	assert_int_equal(smm_access_fault(c, SMM_TASK_SIZE, 0), -EFAULT);
	assert_null(xlate(c, ~0ULL, 1));
	/*
	 * TA's page is in the TLB. An address that differs from it only in
	 * bits above the user address space must not hit its entry (TLB
	 * tags of the first layout dropped bits 60..63).
	 */
	uint64_t *p = xlate(c, TA, 1);
	assert_non_null(p);
	assert_int_equal(*p, 5);
	assert_null(xlate(c, TA | 1ULL << 63, 0));
	assert_null(xlate(c, TA | 1ULL << 60, 1));
	assert_int_equal(smm_access_fault(c, TA | 1ULL << 63, 0), -EFAULT);
	assert_int_equal(smm_access_end(c), 0);
	uint64_t fa = 0;
	assert_int_equal(smm_read(c, TA | 1ULL << 63, &v, 8, &fa), -EFAULT);
	assert_int_equal(fa, TA | 1ULL << 63);
	assert_int_equal(smm_write(c, TA | 1ULL << 60, &v, 8, NULL), -EFAULT);
	assert_int_equal(smm_read(c, TA, &v, 8, NULL), 0);
	assert_int_equal(v, 5);
}

/*
 * The CPU's own TLB forgets what a flush removed: the few-slot path and
 * the whole-table path of tlb_flush_local().
 */
static void test_own_flush(void **state)
{
	struct env *e = *state;
	struct smm_cpu *c = e->cpu;
	const int n[] = { 3, 200 };

	for (int k = 0; k < 2; k++) {
		map_at(e->mm, TA, (uint64_t)n[k] * PG, RW);
		assert_int_equal(smm_access_begin(c), 0);
		for (int i = 0; i < n[k]; i++) {
			uint64_t a = TA + (uint64_t)i * PG;
			if (!xlate(c, a, 1))
				assert_int_equal(smm_access_fault(c, a, 1), 0);
			uint64_t *p = xlate(c, a, 1);
			assert_non_null(p);
			*p = a;
		}
		assert_int_equal(smm_access_end(c), 0);
		assert_int_equal(
			smm_mprotect(e->mm, TA, (uint64_t)n[k] * PG, RO), 0);
		assert_int_equal(smm_access_begin(c), 0);
		for (int i = 0; i < n[k]; i++) {
			uint64_t a = TA + (uint64_t)i * PG;
			assert_null(xlate(c, a, 1));
			uint64_t *p = xlate(c, a, 0);
			if (!p) {
				assert_int_equal(smm_access_fault(c, a, 0), 0);
				p = xlate(c, a, 0);
			}
			assert_non_null(p);
			assert_int_equal(*p, a);
		}
		assert_int_equal(smm_access_end(c), 0);
		assert_int_equal(smm_munmap(e->mm, TA, (uint64_t)n[k] * PG), 0);
		assert_int_equal(smm_access_begin(c), 0);
		for (int i = 0; i < n[k]; i++)
			assert_null(xlate(c, TA + (uint64_t)i * PG, 0));
		assert_int_equal(smm_access_end(c), 0);
	}
}

/*
 * Pages SMM_TLB_ENTRIES pages apart share a TLB slot: each translation
 * replaces the other's, and the inline hit must never hand out the other
 * page's frame or a store where the slot allows only loads. The second
 * page of each pair is read-only and holds what smm_write() could not
 * put there: nothing (the zero page).
 */
static void test_translate_alias(void **state)
{
	struct env *e = *state;
	struct smm_cpu *c = e->cpu;
	const uint64_t far = (uint64_t)SMM_TLB_ENTRIES * PG;

	map_at(e->mm, TA, far, RW);
	map_at(e->mm, TA + far, far, RO);
	for (uint64_t i = 0; i < SMM_TLB_ENTRIES; i++) {
		uint64_t v = TA + i * PG;
		assert_int_equal(smm_write(c, v, &v, 8, NULL), 0);
	}
	assert_int_equal(smm_access_begin(c), 0);
	for (int round = 0; round < 3; round++) {
		for (uint64_t i = 0; i < SMM_TLB_ENTRIES; i += 7) {
			uint64_t a = TA + i * PG, b = a + far;
			uint64_t *p = xlate(c, a, 1), *q;

			if (!p) {
				assert_int_equal(smm_access_fault(c, a, 1), 0);
				p = xlate(c, a, 1);
			}
			assert_non_null(p);
			assert_int_equal(*p, a);
			q = xlate(c, b, 0);
			if (!q) {
				assert_int_equal(smm_access_fault(c, b, 0), 0);
				q = xlate(c, b, 0);
			}
			assert_non_null(q);
			assert_int_equal(*q, 0);
			/* The slot is b's now, for loads only. */
			assert_null(xlate(c, b, 1));
			assert_int_equal(smm_access_fault(c, b, 1), -EFAULT);
			/* a misses, and the walk gives its own frame back. */
			p = xlate(c, a + 8, 0);
			assert_non_null(p);
			assert_int_equal(p[-1], a);
			assert_ptr_equal(xlate(c, b + 8, 0), q + 1);
		}
	}
	assert_int_equal(smm_access_end(c), 0);
}

/*
 * In a range registered for missing pages, smm_access_fault() leaves the
 * section, waits for the userfaultfd handler (here a callback, which runs
 * outside any section and may call softmm) and enters a new section.
 */
static int fill_handler(struct smm_mm *mm, const struct smm_uffd_msg *msg,
			void *arg)
{
	static uint64_t src[PG / 8];
	int *calls = arg;
	int64_t done;

	for (size_t i = 0; i < PG / 8; i++)
		src[i] = msg->address + i * 8;
	(*calls)++;
	int err = smm_uffd_copy(mm, msg->address, src, PG, 0, &done);
	return err == -EEXIST ? 0 : err;
}

static void test_fault_to_uffd(void **state)
{
	struct env *e = *state;
	struct smm_cpu *c = e->cpu;
	int calls = 0;

	map_at(e->mm, TA, 4 * PG, RW);
	assert_int_equal(smm_uffd_register(e->mm, TA, 4 * PG,
					   SMM_UFFD_REGISTER_MODE_MISSING),
			 0);
	assert_int_equal(smm_uffd_set_handler(e->mm, fill_handler, &calls), 0);
	assert_int_equal(smm_access_begin(c), 0);
	for (int i = 0; i < 4; i++) {
		uint64_t a = TA + (uint64_t)i * PG + 24;
		uint64_t *p = xlate(c, a, i & 1);

		assert_null(p);
		assert_int_equal(smm_access_fault(c, a, i & 1), 0);
		p = xlate(c, a, i & 1);
		assert_non_null(p);
		assert_int_equal(*p, a);
	}
	assert_int_equal(smm_access_end(c), 0);
	assert_int_equal(calls, 4);
	assert_int_equal(smm_uffd_unregister(e->mm, TA, 4 * PG), 0);
}

/* ---- shootdowns wait for sections ---- */

struct waiter {
	struct smm_mm *mm;
	atomic_int started, done;
	int rc;
};

static void *munmap_thread(void *arg)
{
	struct waiter *w = arg;

	atomic_store(&w->started, 1);
	w->rc = smm_munmap(w->mm, TA, PG);
	atomic_store(&w->done, 1);
	return NULL;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void test_shootdown_waits(void **state)
{
	struct env *e = *state;
	struct smm_cpu *c = e->cpu;
	struct waiter w = { .mm = e->mm };
	pthread_t th;

	map_at(e->mm, TA, PG, RW);
	assert_int_equal(smm_access_begin(c), 0);
	assert_null(xlate(c, TA, 1));
	assert_int_equal(smm_access_fault(c, TA, 1), 0);
	uint64_t *p = xlate(c, TA, 1);
	assert_non_null(p);
	assert_int_equal(pthread_create(&th, NULL, munmap_thread, &w), 0);
	while (!atomic_load(&w.started))
		sched_yield();
	/*
	 * The munmap cleared the entry, or is about to; it cannot return
	 * while this section holds a translation, and the page it will free
	 * is still ours to store to.
	 */
	sleep_ms(100);
	int done_early = atomic_load(&w.done);
	*p = 42;
	assert_int_equal(smm_access_end(c), 0);
	pthread_join(th, NULL);
	assert_int_equal(done_early, 0);
	assert_int_equal(w.rc, 0);
	assert_int_equal(smm_access_begin(c), 0);
	assert_null(xlate(c, TA, 0));
	assert_int_equal(smm_access_fault(c, TA, 0), -EFAULT);
	assert_int_equal(smm_access_end(c), 0);
}

/* A thread that exits inside a section does not block shootdowns. */
static void *exit_in_section(void *arg)
{
	struct env *e = arg;
	struct smm_cpu *c = smm_cpu_attach(e->pool);

	if (!c || smm_cpu_switch_mm(c, e->mm) || smm_access_begin(c))
		return (void *)1;
	if (!xlate(c, TA, 0) && smm_access_fault(c, TA, 0))
		return (void *)2;
	return NULL; /* no smm_access_end() */
}

static void test_exit_in_section(void **state)
{
	struct env *e = *state;
	pthread_t th;
	void *ret;

	map_at(e->mm, TA, PG, RW);
	assert_int_equal(pthread_create(&th, NULL, exit_in_section, e), 0);
	pthread_join(th, &ret);
	assert_null(ret);
	assert_int_equal(smm_munmap(e->mm, TA, PG), 0);
}

/*
 * The race: writer CPUs store counters through translated pointers, many
 * stores per section; the main thread makes the region read-only, takes a
 * snapshot, lets the writers run, and checks that nothing changed. A store
 * that lands after mprotect() returned came through a translation the
 * shootdown did not wait for.
 */
#define RACE_PAGES   64
#define RACE_WRITERS 2

struct race {
	struct smm_pool *pool;
	struct smm_mm *mm;
	atomic_int stop, ready;
	atomic_long stores, faults;
	int errors;
};

struct writer_arg {
	struct race *r;
	int idx;
};

static void *race_writer(void *arg)
{
	struct writer_arg *wa = arg;
	struct race *r = wa->r;
	struct smm_cpu *c = smm_cpu_attach(r->pool);
	uint32_t x = 0x9e3779b9u * (uint32_t)(wa->idx + 1);
	uint64_t seq = 0;
	long stores = 0, faults = 0;

	if (!c || smm_cpu_switch_mm(c, r->mm))
		return (void *)1;
	atomic_fetch_add(&r->ready, 1);
	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		if (smm_access_begin(c))
			return (void *)2;
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		int n = 1 + (int)(x % 4096);
		for (int i = 0; i < n; i++) {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			/* Each writer its own word of every page. */
			uint64_t a = TA + (uint64_t)(x % RACE_PAGES) * PG +
				     (uint64_t)wa->idx * 8;
			uint64_t *p = smm_translate(c, a, 1);

			if (!p) {
				faults++;
				/* -EFAULT while read-only: try later. */
				if (smm_access_fault(c, a, 1)) {
					smm_access_end(c);
					sched_yield();
					smm_access_begin(c);
					break;
				}
				continue;
			}
			__atomic_store_n(p, ++seq, __ATOMIC_RELAXED);
			stores++;
		}
		smm_access_end(c);
	}
	atomic_fetch_add(&r->stores, stores);
	atomic_fetch_add(&r->faults, faults);
	smm_cpu_detach(c);
	return NULL;
}

static void spin_us(unsigned int us)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000000000L + t.tv_nsec - t0.tv_nsec <
	       (long)us * 1000);
}

static void test_section_race(void **state)
{
	struct env *e = *state;
	struct race r = { .pool = e->pool, .mm = e->mm };
	struct writer_arg wa[RACE_WRITERS];
	pthread_t th[RACE_WRITERS];
	static uint64_t snap[RACE_PAGES][RACE_WRITERS],
		again[RACE_PAGES][RACE_WRITERS];
	uint32_t x = 12345;
	int rounds = 400, violations = 0;
	const char *env_rounds = getenv("SMM_ACCESS_ROUNDS");

	if (env_rounds && atoi(env_rounds) > 0)
		rounds = atoi(env_rounds);

	map_at(e->mm, TA, RACE_PAGES * PG, RW);
	for (int i = 0; i < RACE_WRITERS; i++) {
		wa[i] = (struct writer_arg){ &r, i };
		assert_int_equal(
			pthread_create(&th[i], NULL, race_writer, &wa[i]), 0);
	}
	while (atomic_load(&r.ready) < RACE_WRITERS)
		sched_yield();
	for (int k = 0; k < rounds; k++) {
		assert_int_equal(smm_mprotect(e->mm, TA, RACE_PAGES * PG, RO),
				 0);
		for (int p = 0; p < RACE_PAGES; p++)
			assert_int_equal(smm_read(e->cpu, TA + (uint64_t)p * PG,
						  snap[p], sizeof(snap[p]),
						  NULL),
					 0);
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		spin_us(x % 50);
		for (int p = 0; p < RACE_PAGES; p++)
			assert_int_equal(smm_read(e->cpu, TA + (uint64_t)p * PG,
						  again[p], sizeof(again[p]),
						  NULL),
					 0);
		if (memcmp(snap, again, sizeof(snap)))
			violations++;
		assert_int_equal(smm_mprotect(e->mm, TA, RACE_PAGES * PG, RW),
				 0);
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		spin_us(x % 50);
	}
	atomic_store(&r.stop, 1);
	for (int i = 0; i < RACE_WRITERS; i++) {
		void *ret;
		pthread_join(th[i], &ret);
		assert_null(ret);
	}
	fprintf(stderr,
		"section race: %d rounds, %ld stores, %ld faults, %d "
		"rounds with a store after mprotect(PROT_READ)\n",
		rounds, atomic_load(&r.stores), atomic_load(&r.faults),
		violations);
	assert_true(atomic_load(&r.stores) > 0);
	assert_int_equal(violations, 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_translate_basic), T(test_section_errors),
		T(test_fault_errors),	 T(test_own_flush),
		T(test_fault_to_uffd),	 T(test_shootdown_waits),
		T(test_exit_in_section), T(test_section_race),
		T(test_translate_alias),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
