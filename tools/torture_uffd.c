/*
 * tools/torture_uffd.c - `softmm torture --uffd`: demand paging under
 * fire. One address space, a region registered for missing faults;
 * workers (--threads, attached as CPUs) store to and load their own word
 * of every page; two handler threads read the event queue and resolve
 * each fault with smm_uffd_copy() (a page whose header names it) or
 * smm_uffd_zeropage(); a control thread meanwhile unregisters and
 * registers ranges again, DONTNEEDs them (the next touch faults to the
 * handler again), switches between the queue and a callback that
 * resolves in the faulting thread, sets how long a queued fault polls
 * before it sleeps (smm_uffd_set_poll(): 0, or up to 100 us), and runs
 * smm_mm_verify(); a populater thread populates ranges (MADV_POPULATE_*,
 * which waits for the handlers too).
 *
 * Invariants, checked on every load: a page's header is what a handler
 * supplied for that page or zero (zeropage, or an ordinary fault after
 * unregister); a worker's word is exactly the last value it stored,
 * unless a DONTNEED of the page began since that store (each page counts
 * its DONTNEEDs, raised before the zap), and then zero. A copy that
 * replaces a page a worker already stored to (the planted bug
 * SMM_BUG_UFFD_NO_RECHECK) breaks the second. A lost wake (the planted
 * bug SMM_BUG_UFFD_LOST_WAKE) leaves a worker waiting for good: once the
 * whole region is unregistered at the end, every worker must return
 * within 5 s, or the run reports it and exits. At the end every fault
 * must have returned and the pool must be empty.
 *
 * Owns its state only; the library's locks are its own business.
 */
#define _GNU_SOURCE /* pthread_timedjoin_np() */
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "softmm.h"
#include "torture.h"

#define U_PAGES	 96 /* across a 2 MiB boundary below */
#define U_BASE	 (0x300000000000ULL - 48 * 4096ULL)
#define U_MAGIC	 0x75666664ULL /* "uffd" */
#define U_HDR(p) ((U_MAGIC << 32) | (uint64_t)(p))

static struct smm_pool *upool;
static struct smm_mm *umm;
static atomic_bool ustop, uhandlers_stop;
static atomic_long uviol, ustores, uloads, ucopies, uzeros, uevents, ucallbacks,
	uunreg, udontneed, upopulates;
/* Per page, raised before and after each DONTNEED (odd while one runs):
 * a store may be lost if it changed since, or was odd at the store. */
static atomic_ulong zaps[U_PAGES];

/* What a handler maps: a page whose first word names it, the rest 0. */
static int resolve(struct smm_mm *mm, uint64_t addr, uint64_t *rng)
{
	uint64_t page[4096 / 8] = { 0 };
	int err;

	if (addr < U_BASE || addr >= U_BASE + U_PAGES * 4096ULL)
		return -EINVAL;
	if (torture_rnd(rng) % 4 == 0) {
		err = smm_uffd_zeropage(mm, addr, 4096, 0, NULL);
		atomic_fetch_add(&uzeros, !err);
	} else {
		page[0] = U_HDR((addr - U_BASE) / 4096);
		err = smm_uffd_copy(mm, addr, page, 4096, 0, NULL);
		atomic_fetch_add(&ucopies, !err);
	}
	/* -EEXIST: resolved by another; -ENOENT: unregistered meanwhile,
	 * the unregister woke it */
	if (err == -ENOENT)
		smm_uffd_wake(mm, addr, 4096);
	if (err && err != -EEXIST && err != -ENOENT) {
		torture_violation(&uviol, "uffd", "resolve %#llx: %d",
				  (unsigned long long)addr, err);
		return err;
	}
	return 0;
}

static __thread uint64_t cb_rng;

static int callback(struct smm_mm *mm, const struct smm_uffd_msg *msg,
		    void *arg)
{
	atomic_fetch_add(&ucallbacks, 1);
	if (!cb_rng)
		cb_rng = (uint64_t)(uintptr_t)&cb_rng;
	return resolve(mm, msg->address, &cb_rng) == 0 ? 0 : -1;
}

static void *handler(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg;

	for (;;) {
		struct smm_uffd_msg msg;
		int err = smm_uffd_read(umm, &msg, SMM_UFFD_NONBLOCK);

		if (err == -EAGAIN) {
			if (atomic_load(&uhandlers_stop))
				break;
			err = smm_uffd_read(umm, &msg, 0);
		}
		if (err == -ESRCH)
			break;
		if (err) {
			torture_violation(&uviol, "handler", "read: %d", err);
			break;
		}
		atomic_fetch_add(&uevents, 1);
		resolve(umm, msg.address, &rng);
	}
	return NULL;
}

struct uworker {
	int id;
	uint64_t rng;
	uint64_t last[U_PAGES];	  /* the value last stored, 0: none */
	uint64_t zap_at[U_PAGES]; /* zaps[] before that store */
};

static void *worker(void *arg)
{
	struct uworker *w = arg;
	struct smm_cpu *cpu = smm_cpu_attach(upool);
	uint64_t seq = 0;

	if (!cpu || smm_cpu_switch_mm(cpu, umm)) {
		torture_violation(&uviol, "worker", "cannot attach");
		return NULL;
	}
	while (!atomic_load(&ustop)) {
		int p = (int)(torture_rnd(&w->rng) % U_PAGES);
		uint64_t a = U_BASE + (uint64_t)p * 4096;
		uint64_t slot = a + 64 + 8 * (uint64_t)w->id, v, hdr;
		int err;

		if (torture_rnd(&w->rng) % 2) {
			v = ((uint64_t)w->id << 48) | ++seq;
			w->zap_at[p] = atomic_load(&zaps[p]);
			err = smm_write(cpu, slot, &v, 8, NULL);
			if (err) {
				torture_violation(&uviol, "worker",
						  "store %#llx: %d",
						  (unsigned long long)slot,
						  err);
				continue;
			}
			w->last[p] = v;
			atomic_fetch_add(&ustores, 1);
			continue;
		}
		err = smm_read(cpu, slot, &v, 8, NULL) ||
		      smm_read(cpu, a, &hdr, 8, NULL);
		if (err) {
			torture_violation(&uviol, "worker", "load %#llx",
					  (unsigned long long)a);
			continue;
		}
		atomic_fetch_add(&uloads, 1);
		if (hdr != 0 && hdr != U_HDR(p))
			torture_violation(&uviol, "worker",
					  "page %d header %#llx", p,
					  (unsigned long long)hdr);
		if (v != w->last[p] &&
		    !(v == 0 && (atomic_load(&zaps[p]) != w->zap_at[p] ||
				 (w->zap_at[p] & 1))))
			torture_violation(
				&uviol, "worker",
				"page %d word of %d: %#llx, stored %#llx and "
				"no DONTNEED since (a copy replaced it?)",
				p, w->id, (unsigned long long)v,
				(unsigned long long)w->last[p]);
		if (v == 0)
			w->last[p] = 0; /* lost to a DONTNEED */
	}
	smm_cpu_switch_mm(cpu, NULL);
	smm_cpu_detach(cpu);
	return NULL;
}

/*
 * The populater: MADV_POPULATE_READ/_WRITE of random ranges, whose
 * missing pages wait for the handlers with mmap_lock dropped, beside the
 * workers' faults and the control thread's unregisters and DONTNEEDs. A
 * thread of its own, joined with the workers: a populate whose wake is
 * lost waits for good, as a worker's fault would.
 */
static void *populater(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg;

	while (!atomic_load(&ustop)) {
		uint64_t p = torture_rnd(&rng) % U_PAGES;
		uint64_t n = 1 + torture_rnd(&rng) % (U_PAGES - p);
		int err = smm_madvise(umm, U_BASE + p * 4096, n * 4096,
				      torture_rnd(&rng) % 2 ?
					      SMM_MADV_POPULATE_READ :
					      SMM_MADV_POPULATE_WRITE);

		if (err)
			torture_violation(&uviol, "populater",
					  "MADV_POPULATE failed: %d", err);
		atomic_fetch_add(&upopulates, 1);
		usleep((useconds_t)(torture_rnd(&rng) % 200));
	}
	return NULL;
}

static void control(uint64_t *rng, double end)
{
	while (now_s() < end) {
		uint64_t p = torture_rnd(rng) % U_PAGES;
		uint64_t n = 1 + torture_rnd(rng) % (U_PAGES - p);
		uint64_t a = U_BASE + p * 4096, len = n * 4096;
		int err = 0;

		switch (torture_rnd(rng) % 9) {
		case 0:
			err = smm_uffd_unregister(umm, a, len);
			atomic_fetch_add(&uunreg, 1);
			break;
		case 1:
		case 2:
			err = smm_uffd_register(umm, a, len,
						SMM_UFFD_REGISTER_MODE_MISSING);
			break;
		case 3:
		case 4:
			for (uint64_t i = p; i < p + n; i++)
				atomic_fetch_add(&zaps[i], 1);
			err = smm_madvise(umm, a, len, SMM_MADV_DONTNEED);
			for (uint64_t i = p; i < p + n; i++)
				atomic_fetch_add(&zaps[i], 1);
			atomic_fetch_add(&udontneed, 1);
			break;
		case 5:
			err = smm_uffd_set_handler(
				umm, torture_rnd(rng) % 2 ? callback : NULL,
				NULL);
			break;
		case 6:
			err = smm_mm_verify(umm);
			break;
		case 7:
			err = smm_uffd_set_poll(umm, torture_rnd(rng) % 2 ?
							     0 :
							     torture_rnd(rng) %
								     100000);
			break;
		default:
			usleep((useconds_t)(torture_rnd(rng) % 500));
		}
		if (err)
			torture_violation(&uviol, "control", "op failed: %d",
					  err);
	}
}

int torture_uffd(const struct torture_opts *o)
{
	struct smm_mm_opts mo = { .scheme = o->scheme, .flags = o->mm_flags };
	struct uworker w[TORTURE_MAX_THREADS];
	pthread_t wt[TORTURE_MAX_THREADS + 1], ht[2];
	struct smm_pool_stats ps;
	uint64_t rng = o->seed ^ 0x75666664;
	int nw = o->threads;
	double t0 = now_s();

	upool = smm_pool_create(256ULL << 20, SMM_POOL_POISON);
	umm = upool ? smm_mm_create(upool, &mo) : NULL;
	if (!umm) {
		perror("torture --uffd: pool or mm");
		return 2;
	}
	if (smm_mmap(umm, U_BASE, U_PAGES * 4096ULL,
		     SMM_PROT_READ | SMM_PROT_WRITE,
		     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS | SMM_MAP_FIXED) !=
		    (int64_t)U_BASE ||
	    smm_uffd_register(umm, U_BASE, U_PAGES * 4096ULL,
			      SMM_UFFD_REGISTER_MODE_MISSING)) {
		fprintf(stderr, "torture --uffd: cannot map the region\n");
		return 2;
	}
	for (int i = 0; i < 2; i++)
		pthread_create(&ht[i], NULL, handler,
			       (void *)(uintptr_t)(torture_rnd(&rng) | 1));
	for (int i = 0; i < nw; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].id = i;
		w[i].rng = torture_rnd(&rng);
		pthread_create(&wt[i], NULL, worker, &w[i]);
	}
	pthread_create(&wt[nw], NULL, populater,
		       (void *)(uintptr_t)torture_rnd(&rng));
	control(&rng, t0 + o->seconds);
	/* Every fault must end: nothing registered, nothing waits. */
	if (smm_uffd_unregister(umm, U_BASE, U_PAGES * 4096ULL))
		torture_violation(&uviol, "control", "final unregister");
	atomic_store(&ustop, true);
	for (int i = 0; i <= nw; i++) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 5;
		if (pthread_timedjoin_np(wt[i], NULL, &ts)) {
			torture_violation(&uviol, "control",
					  "worker %d (%d: the populater) still "
					  "waits in a fault "
					  "5 s after the whole region was "
					  "unregistered: a lost wake",
					  i, nw);
			fflush(NULL);
			_exit(1); /* it cannot be joined, nor the mm freed */
		}
	}
	if (smm_mm_verify(umm))
		torture_violation(&uviol, "control", "smm_mm_verify");
	/*
	 * A CPU switched to the mm keeps the structure alive after destroy,
	 * so that a handler between two reads may still call one: it
	 * answers -ESRCH, as a blocked one does.
	 */
	struct smm_cpu *cpu = smm_cpu_attach(upool);
	smm_cpu_switch_mm(cpu, umm);
	atomic_store(&uhandlers_stop, true);
	smm_mm_destroy(umm);
	for (int i = 0; i < 2; i++)
		pthread_join(ht[i], NULL);
	smm_cpu_switch_mm(cpu, NULL);
	smm_cpu_detach(cpu);
	torture_pool_teardown(upool, &uviol, "torture --uffd", &ps);
	printf("torture --uffd: scheme %s, %d workers, %.1f s: %ld stores, "
	       "%ld loads checked, %ld events read, %ld callbacks, %ld "
	       "copies, %ld zeropages, %ld unregisters, %ld dontneeds, "
	       "%ld populates, violations %ld\n",
	       smm_scheme_name(o->scheme), nw, now_s() - t0,
	       atomic_load(&ustores), atomic_load(&uloads),
	       atomic_load(&uevents), atomic_load(&ucallbacks),
	       atomic_load(&ucopies), atomic_load(&uzeros),
	       atomic_load(&uunreg), atomic_load(&udontneed),
	       atomic_load(&upopulates), atomic_load(&uviol));
	return atomic_load(&uviol) ? 1 : 0;
}
