/*
 * tools/torture.c - `softmm torture`: threads attached as CPUs hammer
 * several address spaces with random mmap/munmap/mprotect/madvise, reads
 * and writes, and check invariants all the time.
 *
 * The address space window of each mm is cut into regions of REGION_PAGES
 * pages, laid out across a 1 GiB boundary so that PTE and PMD tables are
 * shared between regions.
 *
 * - An *owned* region belongs to one thread, the only one that maps,
 *   unmaps, protects, advises and writes it. The owner keeps an exact model
 *   of each page (mapped, protection, the 8-byte value at offset 0) and
 *   checks every result against it: return codes, faults, values.
 * - A *shared* region is changed by every thread, each change done whole
 *   region under the region's mutex; any thread writes stamps into it.
 * - Every page's value is 0 or a stamp (region, page, seq) whose seq is not
 *   above the page's seq counter: a freed frame reused elsewhere, a poison
 *   pattern or a page mapped at the wrong address fails this.
 * - Each page (owned) or region (shared) has a state word, version << 2 |
 *   kind, that the thread changing it makes odd before the operation and
 *   even, with the new kind, after it returned. An access that starts and
 *   ends with the same even state must behave as that state says: no load
 *   from an unmapped or PROT_NONE page, no store to a read-only one may
 *   succeed, and no access to a mapped page may fault. This is the check
 *   that TLB shootdown and the VMA lock's recheck are correct.
 * - Owners also give their pages VMA flags (the flag advice: DONTFORK,
 *   DONTDUMP, WIPEONFORK, SEQUENTIAL, RANDOM, HUGEPAGE, ...; mlock,
 *   mlock2 onfault, munlock) and keep them in the model too: after each
 *   such change every page of the range must sit in a VMA with exactly
 *   the flags the model says, whatever splits and merges happened beside
 *   it, and locked pages must survive DONTNEED, FREE and PAGEOUT
 *   (-EINVAL). Each thread locks at most its share of the mm's 8 MiB
 *   limit, so that the results are exact.
 * - GUP threads (--gup N, default 2) pin pages of shared regions (for
 *   writing or reading) and of owned regions (reading only), through
 *   GUP-fast or slow (remote) GUP, while the other threads munmap, DONTNEED
 *   and mprotect the same ranges. A pin that starts and ends under the
 *   same even states must behave as they say (the leading pages they
 *   allow, or -EFAULT if the first is forbidden). Through the pinned
 *   pointer a GUP thread reads the page's value (it must be valid), writes
 *   a valid stamp of the page (shared regions) and a token in its own word
 *   of the page, then reads both back: a pinned frame must never be reused
 *   (freed frames are poisoned) while pinned, whatever happened to its
 *   mapping. Unpins are sometimes dirty. At the end the pins acquired and
 *   released are equal, per mm and for the pool.
 * - smm_mm_verify() runs now and then and at the end (no entry outside a
 *   VMA, counters equal to the tables), and after teardown every frame must
 *   be back in the pool.
 *
 * With --files, cmd_torture() parses the same options and runs the file
 * torture of torture_files.c instead (files, page cache, writeback, msync);
 * with --fork, the fork torture of torture_fork.c (copy-on-write after
 * smm_fork() racing stores and pins).
 *
 * Owns no library state; all of its own state is in this file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli.h"
#include "softmm.h"
#include "torture.h"

#define PAGE		 4096ULL
#define REGION_PAGES	 256 /* 1 MiB */
#define OWNED_PER_THREAD 2
#define SHARED_REGIONS	 8
#define MAX_THREADS	 TORTURE_MAX_THREADS
#define MAX_MMS		 TORTURE_MAX_MMS
#define WINDOW_BASE \
	(0x200000000000ULL + (1ULL << 30) - 8 * (REGION_PAGES * PAGE))

enum kind {
	K_UNMAPPED = 0,
	K_RO = 1,
	K_RW = 2,
	K_NONE = 3
};

struct region {
	uint64_t base;
	int id;
	int owner;	      /* owning thread; -1: shared */
	pthread_mutex_t lock; /* shared: serializes whole-region ops */
	atomic_ulong state;   /* shared: version << 2 | kind */
	atomic_ulong pstate[REGION_PAGES]; /* owned: per page */
	atomic_ulong seq[REGION_PAGES];	   /* stamps handed out per page */
	/* owner's exact model (owned regions only) */
	uint8_t kind[REGION_PAGES];
	uint64_t val[REGION_PAGES];
	bool lazy[REGION_PAGES];     /* MADV_FREE'd, not written since */
	uint64_t vmfl[REGION_PAGES]; /* the VMA flags of TRACKED_FLAGS */
	int nlocked;		     /* pages with SMM_VM_LOCKED */
};

/* The VMA flags owners set and the model tracks. */
#define TRACKED_FLAGS                                             \
	(SMM_VM_LOCKED | SMM_VM_LOCKONFAULT | SMM_VM_SEQ_READ |   \
	 SMM_VM_RAND_READ | SMM_VM_DONTCOPY | SMM_VM_WIPEONFORK | \
	 SMM_VM_DONTDUMP | SMM_VM_HUGEPAGE | SMM_VM_NOHUGEPAGE |  \
	 SMM_VM_MERGEABLE)

struct tmm {
	struct smm_mm *mm;
	struct region *regions;
	int nr_regions;
};

enum opk {
	O_MMAP,
	O_MUNMAP,
	O_MPROTECT,
	O_MADVISE,
	O_FLAGS,
	O_MLOCK,
	O_READ,
	O_WRITE,
	O_VERIFY,
	O_PIN_FAST,
	O_PIN_SLOW,
	O_NR
};
static const char *const op_names[O_NR] = {
	"mmap", "munmap", "mprotect", "madvise",  "flag-advice", "mlock",
	"read", "write",  "verify",   "pin-fast", "pin-slow"
};

static struct {
	int threads, mms, seconds, race, scheme, gup, file_pages;
	unsigned int mm_flags;
	uint64_t seed;
	bool quiet, files, fork, uffd;
} cfg;

static struct smm_pool *pool;
static struct tmm mms[MAX_MMS];
static atomic_bool stop;
static atomic_long violations, nomem;
static atomic_long op_count[O_NR];

struct tstate {
	int id;
	uint64_t rng;
	long ops[O_NR];
};

static uint64_t rnd(struct tstate *t)
{
	return torture_rnd(&t->rng);
}

static unsigned int rndn(struct tstate *t, unsigned int n)
{
	return (unsigned int)(rnd(t) % n);
}

#define violation(...) torture_violation(&violations, "torture", __VA_ARGS__)

void torture_violation(atomic_long *count, const char *who, const char *fmt,
		       ...)
{
	va_list ap;

	if (atomic_fetch_add(count, 1) < 20) {
		va_start(ap, fmt);
		fprintf(stderr, "%s: VIOLATION: ", who);
		vfprintf(stderr, fmt, ap);
		fprintf(stderr, "\n");
		va_end(ap);
	}
}

void torture_pool_teardown(struct smm_pool *pool, atomic_long *count,
			   const char *who, struct smm_pool_stats *out)
{
	struct smm_pool_stats ps;

	smm_pool_stats(pool, &ps);
	if (out)
		*out = ps;
	if (ps.pins_acquired != ps.pins_released)
		torture_violation(count, who,
				  "pool: %llu pins acquired, %llu released",
				  (unsigned long long)ps.pins_acquired,
				  (unsigned long long)ps.pins_released);
	if (ps.free + 1 != ps.frames || ps.file_pages || ps.anon_pages ||
	    ps.pt_pages)
		torture_violation(
			count, who,
			"after teardown the pool has %llu of %llu frames free "
			"(%llu file, %llu anon, %llu page tables): a leak",
			(unsigned long long)ps.free,
			(unsigned long long)ps.frames - 1,
			(unsigned long long)ps.file_pages,
			(unsigned long long)ps.anon_pages,
			(unsigned long long)ps.pt_pages);
	if (smm_pool_destroy(pool))
		torture_violation(count, who, "pool still busy at the end");
}

static uint64_t stamp(struct region *r, int page, uint64_t seq)
{
	return ((uint64_t)(r->id + 1) << 48) | ((uint64_t)page << 32) |
	       (seq & 0xffffffffULL);
}

/* 0, or a stamp of this very page that was handed out already. */
static bool value_valid(struct region *r, int page, uint64_t v)
{
	if (v == 0)
		return true;
	if ((v >> 48) != (uint64_t)(r->id + 1) ||
	    ((v >> 32) & 0xffff) != (uint64_t)page)
		return false;
	return (v & 0xffffffffULL) <=
	       (atomic_load(&r->seq[page]) & 0xffffffffULL);
}

static int kind_prot(int k)
{
	return k == K_RW ? SMM_PROT_READ | SMM_PROT_WRITE :
	       k == K_RO ? SMM_PROT_READ :
			   SMM_PROT_NONE;
}

/* ---- state words ---- */

static void state_begin(atomic_ulong *s)
{
	unsigned long v = atomic_load(s);

	atomic_store(s, ((v >> 2) + 1) << 2 | (v & 3)); /* odd version: busy */
}

static void state_end(atomic_ulong *s, int kind)
{
	unsigned long v = atomic_load(s);

	atomic_store_explicit(s, ((v >> 2) + 1) << 2 | (unsigned long)kind,
			      memory_order_release);
}

static bool stable(unsigned long s1, unsigned long s2)
{
	return s1 == s2 && !((s1 >> 2) & 1);
}

/*
 * Check one access against the state it ran under. @ret is what the
 * access returned; @write says whether it was a store.
 */
static void check_access(struct region *r, int page, unsigned long s1,
			 unsigned long s2, int ret, bool write, const char *who)
{
	int k = (int)(s1 & 3);
	bool allowed;

	if (ret == -ENOMEM) {
		atomic_fetch_add(&nomem, 1);
		return;
	}
	if (!stable(s1, s2))
		return;
	allowed = write ? k == K_RW : (k == K_RW || k == K_RO);
	if (ret == 0 && !allowed)
		violation(
			"%s %s of region %d page %d succeeded, but the page was %s "
			"before the access began",
			who, write ? "store" : "load", r->id, page,
			k == K_UNMAPPED ? "unmapped" :
			k == K_NONE	? "PROT_NONE" :
					  "read-only");
	else if (ret != 0 && allowed)
		violation(
			"%s %s of region %d page %d faulted (%d), but the page was "
			"mapped %s throughout",
			who, write ? "store" : "load", r->id, page, ret,
			k == K_RW ? "rw" : "r");
}

/* ---- accesses ---- */

/*
 * An 8-byte load or store as an embedder makes it: smm_translate() inside
 * an access section, smm_access_fault() on a miss. Answers as smm_read()
 * and smm_write() do. Half of the accesses take this path, so that
 * sections held across a translation and its use meet every munmap,
 * mprotect, DONTNEED, reclaim and shootdown of the torture.
 */
static int xlate_rw(struct smm_cpu *cpu, uint64_t a, uint64_t *v, bool write,
		    uint64_t *fa)
{
	int err = smm_access_begin(cpu);

	if (err)
		return err;
	for (;;) {
		uint64_t *p = smm_translate(cpu, a, write);

		if (p) {
			/* Relaxed atomics: what the hardware gives an
			 * aligned 8-byte access (and what TSan builds of
			 * smm_read() use). */
			if (write)
				__atomic_store_n(p, *v, __ATOMIC_RELAXED);
			else
				*v = __atomic_load_n(p, __ATOMIC_RELAXED);
			break;
		}
		err = smm_access_fault(cpu, a, write);
		if (err) {
			*fa = a;
			break;
		}
	}
	smm_access_end(cpu);
	return err;
}

static void do_read(struct tstate *t, struct smm_cpu *cpu, struct region *r,
		    int page, atomic_ulong *st)
{
	unsigned long s1 = atomic_load_explicit(st, memory_order_acquire), s2;
	uint64_t v = 0, fa = 0, a = r->base + (uint64_t)page * PAGE;
	int ret = rndn(t, 2) ? xlate_rw(cpu, a, &v, false, &fa) :
			       smm_read(cpu, a, &v, 8, &fa);

	s2 = atomic_load_explicit(st, memory_order_acquire);
	t->ops[O_READ]++;
	if (ret == 0 && !value_valid(r, page, v))
		violation(
			"load of region %d page %d read %#llx: not a value ever "
			"stored there (use after free or wrong mapping?)",
			r->id, page, (unsigned long long)v);
	if (ret == -EFAULT && fa != r->base + (uint64_t)page * PAGE)
		violation(
			"fault address %#llx, expected %#llx",
			(unsigned long long)fa,
			(unsigned long long)(r->base + (uint64_t)page * PAGE));
	check_access(r, page, s1, s2, ret, false, "cross-thread");

	/* The owner knows exactly what the page holds. */
	if (r->owner == t->id && ret == 0 && v != r->val[page] &&
	    !(r->lazy[page] && v == 0))
		violation(
			"owner load of region %d page %d: %#llx, expected %#llx",
			r->id, page, (unsigned long long)v,
			(unsigned long long)r->val[page]);
}

static void do_write(struct tstate *t, struct smm_cpu *cpu, struct region *r,
		     int page, atomic_ulong *st)
{
	uint64_t seq = atomic_fetch_add(&r->seq[page], 1) + 1;
	uint64_t v = stamp(r, page, seq), fa = 0;
	unsigned long s1 = atomic_load_explicit(st, memory_order_acquire), s2;
	uint64_t a = r->base + (uint64_t)page * PAGE;
	int ret = rndn(t, 2) ? xlate_rw(cpu, a, &v, true, &fa) :
			       smm_write(cpu, a, &v, 8, &fa);

	s2 = atomic_load_explicit(st, memory_order_acquire);
	t->ops[O_WRITE]++;
	check_access(r, page, s1, s2, ret, true,
		     r->owner == t->id ? "owner" : "shared");
	if (r->owner == t->id && ret == 0) {
		r->val[page] = v;
		r->lazy[page] = false;
	}
}

/* ---- owned regions: exact model ---- */

/* Pages locked in @tm by thread @id: what it may add is its share of the
 * lock limit, minus these. */
static int thread_locked(struct tmm *tm, int id)
{
	int n = 0;

	for (int i = 0; i < tm->nr_regions; i++)
		if (tm->regions[i].owner == id)
			n += tm->regions[i].nlocked;
	return n;
}

static void set_locked(struct region *r, int p, uint64_t lockfl)
{
	bool was = r->vmfl[p] & SMM_VM_LOCKED;

	r->vmfl[p] = (r->vmfl[p] & ~(SMM_VM_LOCKED | SMM_VM_LOCKONFAULT)) |
		     lockfl;
	r->nlocked += (lockfl != 0) - was;
}

/*
 * After a change of VMA flags on [p0, p1) of @r: every mapped page of it
 * lies in a VMA whose tracked flags are the model's.
 */
static void check_vma_flags(struct smm_mm *mm, struct region *r, int p0, int p1,
			    const char *what)
{
	struct smm_vma_info v[REGION_PAGES + 2];
	size_t n = smm_mm_vmas(mm, r->base + (uint64_t)p0 * PAGE,
			       r->base + (uint64_t)p1 * PAGE, v,
			       REGION_PAGES + 2);
	size_t k = 0;

	for (int p = p0; p < p1; p++) {
		uint64_t a = r->base + (uint64_t)p * PAGE;

		if (r->kind[p] == K_UNMAPPED)
			continue;
		while (k < n && v[k].end <= a)
			k++;
		if (k == n || v[k].start > a) {
			violation("%s: region %d page %d is mapped in the "
				  "model but in no VMA",
				  what, r->id, p);
			return;
		}
		if ((v[k].flags & TRACKED_FLAGS) != r->vmfl[p]) {
			violation("%s of region %d pages %d-%d: page %d's VMA "
				  "%#llx-%#llx has flags %#llx, the model "
				  "%#llx",
				  what, r->id, p0, p1, p,
				  (unsigned long long)v[k].start,
				  (unsigned long long)v[k].end,
				  (unsigned long long)(v[k].flags &
						       TRACKED_FLAGS),
				  (unsigned long long)r->vmfl[p]);
			return;
		}
	}
}

/* The flag advice: flags change, pages stay; a hole gives -ENOMEM. */
static void flag_advice_op(struct tstate *t, struct smm_mm *mm,
			   struct region *r, int p0, int p1)
{
	static const struct {
		int advice;
		uint64_t set, clear;
	} adv[] = {
		{ SMM_MADV_NORMAL, 0, SMM_VM_SEQ_READ | SMM_VM_RAND_READ },
		{ SMM_MADV_SEQUENTIAL, SMM_VM_SEQ_READ, SMM_VM_RAND_READ },
		{ SMM_MADV_RANDOM, SMM_VM_RAND_READ, SMM_VM_SEQ_READ },
		{ SMM_MADV_DONTFORK, SMM_VM_DONTCOPY, 0 },
		{ SMM_MADV_DOFORK, 0, SMM_VM_DONTCOPY },
		{ SMM_MADV_DONTDUMP, SMM_VM_DONTDUMP, 0 },
		{ SMM_MADV_DODUMP, 0, SMM_VM_DONTDUMP },
		{ SMM_MADV_WIPEONFORK, SMM_VM_WIPEONFORK, 0 },
		{ SMM_MADV_KEEPONFORK, 0, SMM_VM_WIPEONFORK },
		{ SMM_MADV_HUGEPAGE, SMM_VM_HUGEPAGE, SMM_VM_NOHUGEPAGE },
		{ SMM_MADV_NOHUGEPAGE, SMM_VM_NOHUGEPAGE, SMM_VM_HUGEPAGE },
		{ SMM_MADV_MERGEABLE, SMM_VM_MERGEABLE, 0 },
		{ SMM_MADV_UNMERGEABLE, 0, SMM_VM_MERGEABLE },
	};
	int i = (int)rndn(t, sizeof(adv) / sizeof(adv[0])), ret, expect = 0;

	ret = smm_madvise(mm, r->base + (uint64_t)p0 * PAGE,
			  (uint64_t)(p1 - p0) * PAGE, adv[i].advice);
	for (int p = p0; p < p1; p++) {
		if (r->kind[p] == K_UNMAPPED) {
			expect = -ENOMEM; /* skipped, the rest advised */
			continue;
		}
		r->vmfl[p] = (r->vmfl[p] | adv[i].set) & ~adv[i].clear;
	}
	if (ret == -EAGAIN) /* out of memory for a split: nothing changed */
		atomic_fetch_add(&nomem, 1);
	else if (ret != expect)
		violation(
			"madvise(%d) of region %d pages %d-%d: %d, expected %d",
			adv[i].advice, r->id, p0, p1, ret, expect);
	if (ret != -EAGAIN)
		check_vma_flags(mm, r, p0, p1, "flag advice");
	t->ops[O_FLAGS]++;
}

/*
 * mlock, mlock2 onfault or munlock of [p0, p1): pages up to the first
 * hole change (-ENOMEM at a hole); mlock then faults the range in, which
 * a PROT_NONE page stops with -ENOMEM, and running out of memory with
 * -EAGAIN. A thread locks at most its share of the limit.
 */
static void mlock_op(struct tstate *t, struct tmm *tm, struct region *r, int p0,
		     int p1)
{
	int share = (int)(SMM_MLOCK_LIMIT / PAGE) / cfg.threads;
	bool unlock = rndn(t, 3) == 0, onfault = rndn(t, 2);
	uint64_t a = r->base + (uint64_t)p0 * PAGE,
		 len = (uint64_t)(p1 - p0) * PAGE;
	uint64_t lockfl = SMM_VM_LOCKED | (onfault ? SMM_VM_LOCKONFAULT : 0);
	bool none = false;
	int ret, expect = 0;

	if (!unlock && thread_locked(tm, r->owner) + (p1 - p0) > share)
		unlock = true;
	ret = unlock  ? smm_munlock(tm->mm, a, len) :
	      onfault ? smm_mlock2(tm->mm, a, len, SMM_MLOCK_ONFAULT) :
			smm_mlock(tm->mm, a, len);
	for (int p = p0; p < p1; p++) {
		if (r->kind[p] == K_UNMAPPED) {
			expect = -ENOMEM; /* stops here */
			break;
		}
		none |= r->kind[p] == K_NONE;
		set_locked(r, p, unlock ? 0 : lockfl);
	}
	if (!unlock && !onfault && !expect && none)
		expect = -ENOMEM; /* cannot fault a PROT_NONE page in */
	if (ret == -EAGAIN && !unlock && !onfault && !expect)
		atomic_fetch_add(&nomem, 1);
	else if (ret != expect)
		violation("%s of region %d pages %d-%d: %d, expected %d",
			  unlock  ? "munlock" :
			  onfault ? "mlock2" :
				    "mlock",
			  r->id, p0, p1, ret, expect);
	check_vma_flags(tm->mm, r, p0, p1, unlock ? "munlock" : "mlock");
	t->ops[O_MLOCK]++;
}

static void owned_op(struct tstate *t, struct tmm *tm, struct region *r)
{
	struct smm_mm *mm = tm->mm;
	int p0 = (int)rndn(t, REGION_PAGES),
	    n = 1 + (int)rndn(t, rndn(t, 4) ? 16 : REGION_PAGES);
	int p1 = p0 + n > REGION_PAGES ? REGION_PAGES : p0 + n;
	uint64_t a = r->base + (uint64_t)p0 * PAGE,
		 len = (uint64_t)(p1 - p0) * PAGE;
	int op = (int)rndn(t, 6), ret, expect = 0, k;

	for (int p = p0; p < p1; p++)
		state_begin(&r->pstate[p]);
	switch (op) {
	case 0: /* mmap fixed */
		k = 1 + (int)rndn(t, 3);
		ret = (int)(smm_mmap(mm, a, len, kind_prot(k),
				     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS |
					     SMM_MAP_FIXED |
					     (rndn(t, 2) ? SMM_MAP_NORESERVE :
							   0)) < 0 ?
				    -1 :
				    0);
		if (ret)
			violation("mmap fixed of region %d failed", r->id);
		for (int p = p0; p < p1; p++) {
			r->kind[p] = (uint8_t)k;
			r->val[p] = 0;
			r->lazy[p] = false;
			set_locked(r, p, 0);
			r->vmfl[p] = 0;
		}
		t->ops[O_MMAP]++;
		break;
	case 1: /* munmap */
		ret = smm_munmap(mm, a, len);
		if (ret)
			violation("munmap of region %d: %d", r->id, ret);
		for (int p = p0; p < p1; p++) {
			r->kind[p] = K_UNMAPPED;
			set_locked(r, p, 0);
			r->vmfl[p] = 0;
		}
		t->ops[O_MUNMAP]++;
		break;
	case 2: /* mprotect: Linux stops at the first hole with -ENOMEM */
		k = 1 + (int)rndn(t, 3);
		ret = smm_mprotect(mm, a, len, kind_prot(k));
		/* A hole anywhere before the range in the same VMA walk... the
		 * model: pages up to the first unmapped one change. */
		for (int p = p0; p < p1; p++) {
			if (r->kind[p] == K_UNMAPPED) {
				expect = -ENOMEM;
				break;
			}
			r->kind[p] = (uint8_t)k;
		}
		if (ret != expect)
			violation(
				"mprotect of region %d pages %d-%d: %d, expected %d",
				r->id, p0, p1, ret, expect);
		t->ops[O_MPROTECT]++;
		break;
	case 4:
		flag_advice_op(t, mm, r, p0, p1);
		break;
	case 5:
		mlock_op(t, tm, r, p0, p1);
		break;
	default: { /* madvise */
		static const int adv[] = {
			SMM_MADV_DONTNEED,	SMM_MADV_FREE,
			SMM_MADV_POPULATE_READ, SMM_MADV_POPULATE_WRITE,
			SMM_MADV_WILLNEED,	SMM_MADV_PAGEOUT
		};
		int advice = adv[rndn(t, 6)];
		bool hole = false, bad = false;

		ret = smm_madvise(mm, a, len, advice);
		for (int p = p0; p < p1; p++) {
			if (r->kind[p] == K_UNMAPPED) {
				hole = true;
				if (advice == SMM_MADV_POPULATE_READ ||
				    advice == SMM_MADV_POPULATE_WRITE)
					break;
				continue;
			}
			/* locked pages stay: the walk stops at their VMA */
			if ((r->vmfl[p] & SMM_VM_LOCKED) &&
			    (advice == SMM_MADV_DONTNEED ||
			     advice == SMM_MADV_FREE ||
			     advice == SMM_MADV_PAGEOUT)) {
				bad = true;
				break;
			}
			if ((advice == SMM_MADV_POPULATE_READ &&
			     r->kind[p] == K_NONE) ||
			    (advice == SMM_MADV_POPULATE_WRITE &&
			     r->kind[p] != K_RW)) {
				bad = true;
				break;
			}
			if (advice == SMM_MADV_DONTNEED) {
				r->val[p] = 0;
				r->lazy[p] = false;
			} else if (advice == SMM_MADV_FREE && r->val[p]) {
				r->lazy[p] = true;
			}
		}
		expect = bad ? -EINVAL : hole ? -ENOMEM : 0;
		if (ret == -ENOMEM && expect == 0)
			atomic_fetch_add(&nomem, 1); /* pool exhausted */
		else if (ret != expect)
			violation(
				"madvise(%d) of region %d pages %d-%d: %d, expected %d",
				advice, r->id, p0, p1, ret, expect);
		t->ops[O_MADVISE]++;
		break;
	}
	}
	for (int p = p0; p < p1; p++) {
		state_end(&r->pstate[p], r->kind[p]);
	}
}

/* ---- shared regions: whole-region changes under the region mutex ---- */

static void shared_op(struct tstate *t, struct smm_mm *mm, struct region *r)
{
	uint64_t len = REGION_PAGES * PAGE;
	int op = (int)rndn(t, 5), k, ret;

	if (op == 4 && rndn(t, 4) == 0) {
		/*
		 * DONTNEED a whole 2 MiB PTE table: shared regions come in
		 * 2 MiB-aligned pairs, so this is the zap that pt-reclaim
		 * frees tables for (when one VMA spans the pair).
		 */
		uint64_t pair = r->base & ~(2 * REGION_PAGES * PAGE - 1);

		ret = smm_madvise(mm, pair, 2 * REGION_PAGES * PAGE,
				  SMM_MADV_DONTNEED);
		t->ops[O_MADVISE]++;
		(void)ret;
		return;
	}
	if (op == 4) { /* DONTNEED a part: the kind does not change */
		int p0 = (int)rndn(t, REGION_PAGES);

		ret = smm_madvise(mm, r->base + (uint64_t)p0 * PAGE,
				  (uint64_t)(1 + rndn(t, 32)) * PAGE,
				  SMM_MADV_DONTNEED);
		t->ops[O_MADVISE]++;
		(void)ret;
		return;
	}
	pthread_mutex_lock(&r->lock);
	k = (int)(atomic_load(&r->state) & 3);
	state_begin(&r->state);
	switch (op) {
	case 0:
		k = rndn(t, 2) ? K_RW : K_RO;
		if (smm_mmap(mm, r->base, len, kind_prot(k),
			     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS |
				     SMM_MAP_FIXED) < 0)
			violation("mmap of shared region %d failed", r->id);
		t->ops[O_MMAP]++;
		break;
	case 1:
		if (smm_munmap(mm, r->base, len))
			violation("munmap of shared region %d failed", r->id);
		k = K_UNMAPPED;
		t->ops[O_MUNMAP]++;
		break;
	default:
		if (k == K_UNMAPPED)
			break;
		k = 1 + (int)rndn(t, 3);
		ret = smm_mprotect(mm, r->base, len, kind_prot(k));
		if (ret)
			violation("mprotect of shared region %d: %d", r->id,
				  ret);
		t->ops[O_MPROTECT]++;
		break;
	}
	state_end(&r->state, k);
	pthread_mutex_unlock(&r->lock);
}

/* ---- GUP threads ---- */

#define GUP_MAX	    TORTURE_MAX_GUP
#define GUP_WORD(g) (64 + (g)) /* a GUP thread's own word in each page */

/*
 * Pin up to 8 pages of @r (fast on @cpu, switched to @mm, or slow and
 * remote), check the result against the states the pages were in, use the
 * pages through the pin as a device would, and unpin.
 */
static void gup_op(struct tstate *t, int g, struct smm_cpu *cpu,
		   struct smm_mm *mm, struct region *r, bool fast)
{
	bool shared = r->owner < 0;
	bool write = shared && rndn(t, 4) != 0; /* owned: read pins only */
	int p0 = (int)rndn(t, REGION_PAGES);
	int n = 1 + (int)rndn(t, 8), expect = 0;
	unsigned long s1[8], s2[8];
	struct smm_page *pages[8];
	bool stable_all = true, stop = false;
	long got;

	if (p0 + n > REGION_PAGES)
		n = REGION_PAGES - p0;
	for (int i = 0; i < n; i++)
		s1[i] = atomic_load_explicit(shared ? &r->state :
						      &r->pstate[p0 + i],
					     memory_order_acquire);
	if (fast)
		got = smm_pin_user_pages_fast(
			cpu, r->base + (uint64_t)p0 * PAGE, (unsigned long)n,
			write ? SMM_FOLL_WRITE : 0, pages);
	else
		got = smm_pin_user_pages(
			mm, r->base + (uint64_t)p0 * PAGE, (unsigned long)n,
			(write ? SMM_FOLL_WRITE : 0) |
				(rndn(t, 2) ? SMM_FOLL_LONGTERM : 0),
			pages);
	t->ops[fast ? O_PIN_FAST : O_PIN_SLOW]++;
	for (int i = 0; i < n; i++) {
		s2[i] = atomic_load_explicit(shared ? &r->state :
						      &r->pstate[p0 + i],
					     memory_order_acquire);
		stable_all &= stable(s1[i], s2[i]);
	}
	/* What the states allow: the leading pages whose kind permits it. */
	for (int i = 0; i < n && !stop; i++) {
		int k = (int)(s1[i] & 3);

		if (write ? k == K_RW : (k == K_RW || k == K_RO))
			expect++;
		else
			stop = true;
	}
	if (got == -ENOMEM) {
		atomic_fetch_add(&nomem, 1);
		return;
	}
	if (stable_all && got != (expect ? expect : -EFAULT))
		violation(
			"%s %s pin of region %d pages %d+%d returned %ld, but the "
			"pages' states allowed %d",
			fast ? "fast" : "slow", write ? "write" : "read", r->id,
			p0, n, got, expect);
	if (got < 0)
		return;
	if (got > n) {
		violation("pin of %d pages returned %ld", n, got);
		return;
	}
	for (long i = 0; i < got; i++) {
		uint64_t *a = smm_page_address(pages[i]);
		int page = p0 + (int)i;
		uint64_t v;

		if (!smm_page_maybe_dma_pinned(pages[i]))
			violation("pinned page of region %d page %d is not "
				  "maybe_dma_pinned",
				  r->id, page);
		v = dev_load(&a[0]);
		if (!value_valid(r, page, v))
			violation(
				"through a pin, region %d page %d holds %#llx: not a "
				"value ever stored there (frame reused?)",
				r->id, page, (unsigned long long)v);
		if (!write)
			continue;
		/* the device writes: a valid stamp of the page, and our token */
		dev_store(&a[0], stamp(r, page,
				       atomic_fetch_add(&r->seq[page], 1) + 1));
		dev_store(&a[GUP_WORD(g)],
			  ((uint64_t)(g + 1) << 56) | (rnd(t) >> 8));
	}
	if (rndn(t, 4) == 0)
		sched_yield(); /* let munmap/DONTNEED/mprotect run meanwhile */
	for (long i = 0; i < got && write; i++) {
		uint64_t *a = smm_page_address(pages[i]);
		uint64_t token = dev_load(&a[GUP_WORD(g)]);

		if ((token >> 56) != (uint64_t)(g + 1))
			violation(
				"pinned frame of region %d page %ld was reused: our "
				"word holds %#llx",
				r->id, p0 + i, (unsigned long long)token);
		uint64_t v = dev_load(&a[0]);

		if (!value_valid(r, p0 + (int)i, v))
			violation(
				"pinned frame of region %d page %ld holds %#llx",
				r->id, p0 + i, (unsigned long long)v);
	}
	smm_unpin_user_pages_dirty_lock(pages, (unsigned long)got,
					write && rndn(t, 2));
}

static void *gup_worker(void *arg)
{
	struct tstate *t = arg;
	int g = t->id - MAX_THREADS;
	struct smm_cpu *cpu = smm_cpu_attach(pool);
	int cur = -1;

	if (!cpu) {
		violation("GUP thread %d cannot attach: %s", g,
			  strerror(errno));
		return NULL;
	}
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		int m = (int)rndn(t, (unsigned)cfg.mms);
		struct tmm *tm = &mms[m];
		struct region *r =
			&tm->regions[rndn(t, (unsigned)tm->nr_regions)];
		bool fast = rndn(t, 2);

		if (fast && m != cur) {
			smm_cpu_switch_mm(cpu, tm->mm);
			cur = m;
		}
		gup_op(t, g, cpu, tm->mm, r, fast);
	}
	smm_cpu_switch_mm(cpu, NULL);
	smm_cpu_detach(cpu);
	for (int i = 0; i < O_NR; i++)
		atomic_fetch_add(&op_count[i], t->ops[i]);
	return NULL;
}

static void *worker(void *arg)
{
	struct tstate *t = arg;
	struct smm_cpu *cpu = smm_cpu_attach(pool);
	int cur = -1;

	if (!cpu) {
		violation("thread %d cannot attach: %s", t->id,
			  strerror(errno));
		return NULL;
	}
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		int m = (int)rndn(t, (unsigned)cfg.mms);
		struct tmm *tm = &mms[m];
		struct region *r =
			&tm->regions[rndn(t, (unsigned)tm->nr_regions)];
		int page = (int)rndn(t, REGION_PAGES);
		unsigned int dice = rndn(t, 100);

		if (m != cur) {
			smm_cpu_switch_mm(cpu, tm->mm);
			cur = m;
		}
		if (dice == 0 && rndn(t, 20) == 0) {
			if (smm_mm_verify(tm->mm))
				violation("smm_mm_verify failed on mm %d", m);
			t->ops[O_VERIFY]++;
		} else if (r->owner == t->id) {
			if (dice < 15)
				owned_op(t, tm, r);
			else if (dice < 60)
				do_write(t, cpu, r, page, &r->pstate[page]);
			else
				do_read(t, cpu, r, page, &r->pstate[page]);
		} else if (r->owner < 0) {
			if (dice < 8)
				shared_op(t, tm->mm, r);
			else if (dice < 50)
				do_write(t, cpu, r, page, &r->state);
			else
				do_read(t, cpu, r, page, &r->state);
		} else {
			do_read(t, cpu, r, page, &r->pstate[page]);
		}
	}
	smm_cpu_switch_mm(cpu, NULL);
	smm_cpu_detach(cpu);
	for (int i = 0; i < O_NR; i++)
		atomic_fetch_add(&op_count[i], t->ops[i]);
	return NULL;
}

#define MAX_SECONDS (24 * 3600)
#define MAX_RACE    1000

const char torture_synopsis[] =
	"[--threads N (4)] [--seconds S (10)] [--seed N (1)]\n"
	"[--scheme NAME (eager)] [--mms N (2)] [--gup N (2)]\n"
	"[--race PERMILLE (20)] [--no-vma-lock] [--quiet]\n"
	"[--files [--file-pages N (64)] | --fork | --uffd]";
const char torture_summary[] =
	"concurrent torture of the library, with invariant checks";

static int usage(FILE *f)
{
	cli_usage(f, "torture", torture_synopsis, torture_summary);
	fprintf(f,
		"  --threads N     worker threads, 1..%d\n"
		"  --seconds S     run time, 0..%d\n"
		"  --seed N        0..2^64-1 (decimal or 0x hex)\n"
		"  --scheme NAME   " CLI_SCHEMES "\n"
		"  --mms N         address spaces, 1..%d (--fork: the most live\n"
		"                  at once, default 6, at least 2)\n"
		"  --gup N         threads that pin pages, 0..%d\n"
		"  --race PERMILLE yield in marked race windows, 0..%d per mille\n"
		"                  (debug builds only, e.g. build/asan/softmm)\n"
		"  --no-vma-lock   faults take mmap_lock only\n"
		"  --quiet         no effect (the torture prints one line)\n"
		"  --files         the file torture instead: a host file mapped\n"
		"                  shared in every mm, stores, msync, writeback,\n"
		"                  pins; no stored byte may be lost\n"
		"  --file-pages N  the host file's size in pages, 1..%d\n"
		"  --fork          the fork torture instead: threads fork\n"
		"                  address spaces while others store and pin;\n"
		"                  parent and child must each see their own\n"
		"                  values, a pin must reach the parent only\n"
		"  --uffd          the userfaultfd torture instead: handler\n"
		"                  threads supply missing pages while workers\n"
		"                  store and load, ranges are unregistered,\n"
		"                  registered and DONTNEEDed\n",
		MAX_THREADS, MAX_SECONDS, MAX_MMS, GUP_MAX, MAX_RACE,
		TORTURE_MAX_FILE_PAGES);
	return f == stdout ? 0 : 2;
}

int cmd_torture(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "threads", required_argument, NULL, 't' },
		{ "seconds", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'S' },
		{ "scheme", required_argument, NULL, 'c' },
		{ "mms", required_argument, NULL, 'm' },
		{ "no-vma-lock", no_argument, NULL, 'n' },
		{ "race", required_argument, NULL, 'r' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "gup", required_argument, NULL, 'g' },
		{ "files", no_argument, NULL, 'f' },
		{ "file-pages", required_argument, NULL, 'p' },
		{ "fork", no_argument, NULL, 'F' },
		{ "uffd", no_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char q[CLI_QUOTE_SIZE];
	bool race_set = false, pages_set = false, mms_set = false;
	struct tstate ts[MAX_THREADS + GUP_MAX];
	pthread_t tid[MAX_THREADS + GUP_MAX];
	struct smm_pool_stats ps;
	long faults_vma = 0, faults_mmap = 0, pt_reclaimed = 0;
	double t0;
	int c;

	cfg.threads = 4;
	cfg.mms = 2;
	cfg.seconds = 10;
	cfg.seed = 1;
	cfg.race = 20;
	cfg.gup = 2;
	cfg.file_pages = 64;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 't':
			if (cli_int("torture", "--threads", optarg, 1,
				    MAX_THREADS, &cfg.threads))
				return 2;
			break;
		case 's':
			if (cli_int("torture", "--seconds", optarg, 0,
				    MAX_SECONDS, &cfg.seconds))
				return 2;
			break;
		case 'S': {
			unsigned long long v;

			if (cli_ull("torture", "--seed", optarg, 0, ULLONG_MAX,
				    &v))
				return 2;
			cfg.seed = v;
			break;
		}
		case 'c':
			cfg.scheme = smm_scheme_from_name(optarg);
			if (cfg.scheme < 0) {
				char l[128];

				fprintf(stderr,
					"softmm torture: unknown scheme '%s' "
					"(%s)\n",
					cli_quote_str(optarg, q, sizeof(q)),
					cli_scheme_list(l, sizeof(l)));
				return 2;
			}
			break;
		case 'm':
			if (cli_int("torture", "--mms", optarg, 1, MAX_MMS,
				    &cfg.mms))
				return 2;
			mms_set = true;
			break;
		case 'n':
			cfg.mm_flags |= SMM_MM_NO_VMA_LOCK;
			break;
		case 'r':
			if (cli_int("torture", "--race", optarg, 0, MAX_RACE,
				    &cfg.race))
				return 2;
			race_set = true;
			break;
		case 'q':
			cfg.quiet = true;
			break;
		case 'g':
			if (cli_int("torture", "--gup", optarg, 0, GUP_MAX,
				    &cfg.gup))
				return 2;
			break;
		case 'f':
			cfg.files = true;
			break;
		case 'F':
			cfg.fork = true;
			break;
		case 'U':
			cfg.uffd = true;
			break;
		case 'p':
			if (cli_int("torture", "--file-pages", optarg, 1,
				    TORTURE_MAX_FILE_PAGES, &cfg.file_pages))
				return 2;
			pages_set = true;
			break;
		case 'h':
			return usage(stdout);
		default:
			return usage(stderr);
		}
	}
	if (cli_no_args("torture", argc, argv, optind))
		return 2;
	if (smm_debug_race_yield((unsigned)cfg.race) == -ENOSYS && race_set)
		fprintf(stderr,
			"softmm torture: --race does nothing in a release "
			"build, whose race windows are not marked; use a "
			"debug build (build/asan/softmm)\n");
	if (pages_set && !cfg.files) {
		fprintf(stderr, "softmm torture: --file-pages needs --files\n");
		return 2;
	}
	if (cfg.files + cfg.fork + cfg.uffd > 1) {
		fprintf(stderr,
			"softmm torture: --files, --fork and --uffd are "
			"three tortures: give one\n");
		return 2;
	}
	if (cfg.fork || cfg.files || cfg.uffd) {
		struct torture_opts o = {
			.threads = cfg.threads,
			/* the fork torture's default: most mms live at once */
			.mms = cfg.fork && !mms_set ? 6 : cfg.mms,
			.seconds = cfg.seconds,
			.scheme = cfg.scheme,
			.gup = cfg.gup,
			.file_pages = cfg.file_pages,
			.mm_flags = cfg.mm_flags,
			.seed = cfg.seed,
		};

		return cfg.fork ? torture_fork(&o) :
		       cfg.uffd ? torture_uffd(&o) :
				  torture_files(&o);
	}

	pool = smm_pool_create(512ULL << 20, SMM_POOL_POISON);
	if (!pool) {
		perror("torture: pool");
		return 2;
	}
	for (int m = 0; m < cfg.mms; m++) {
		struct smm_mm_opts o = { .scheme = cfg.scheme,
					 .flags = cfg.mm_flags };
		struct tmm *tm = &mms[m];

		tm->mm = smm_mm_create(pool, &o);
		tm->nr_regions =
			cfg.threads * OWNED_PER_THREAD + SHARED_REGIONS;
		tm->regions =
			calloc((size_t)tm->nr_regions, sizeof(struct region));
		if (!tm->mm || !tm->regions) {
			perror("torture: setup");
			return 2;
		}
		for (int i = 0; i < tm->nr_regions; i++) {
			struct region *r = &tm->regions[i];

			r->id = i;
			r->base =
				WINDOW_BASE + (uint64_t)i * REGION_PAGES * PAGE;
			r->owner = i < cfg.threads * OWNED_PER_THREAD ?
					   i % cfg.threads :
					   -1;
			pthread_mutex_init(&r->lock, NULL);
		}
	}
	t0 = now_s();
	for (int i = 0; i < cfg.threads; i++) {
		ts[i] = (struct tstate){
			.id = i, .rng = cfg.seed * 1000003 + (uint64_t)i
		};
		pthread_create(&tid[i], NULL, worker, &ts[i]);
	}
	for (int g = 0; g < cfg.gup; g++) {
		int i = MAX_THREADS + g;

		ts[i] = (struct tstate){
			.id = i, .rng = cfg.seed * 7000003 + (uint64_t)i
		};
		pthread_create(&tid[i], NULL, gup_worker, &ts[i]);
	}
	while (now_s() - t0 < cfg.seconds && atomic_load(&violations) == 0) {
		struct timespec d = { 0, 50 * 1000 * 1000 };

		nanosleep(&d, NULL);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < cfg.threads; i++)
		pthread_join(tid[i], NULL);
	for (int g = 0; g < cfg.gup; g++)
		pthread_join(tid[MAX_THREADS + g], NULL);

	for (int m = 0; m < cfg.mms; m++) {
		struct smm_mm_stats st;

		if (smm_mm_verify(mms[m].mm))
			violation("final smm_mm_verify failed on mm %d", m);
		smm_mm_stats(mms[m].mm, &st);
		if (st.pins_acquired != st.pins_released)
			violation("mm %d: %llu pins acquired, %llu released", m,
				  (unsigned long long)st.pins_acquired,
				  (unsigned long long)st.pins_released);
		faults_vma += (long)st.faults_vma_lock;
		faults_mmap += (long)st.faults_mmap_lock;
		pt_reclaimed += (long)st.pt_reclaimed;
		smm_mm_destroy(mms[m].mm);
		for (int i = 0; i < mms[m].nr_regions; i++)
			pthread_mutex_destroy(&mms[m].regions[i].lock);
		free(mms[m].regions);
	}
	torture_pool_teardown(pool, &violations, "torture", &ps);

	printf("torture: seed %llu, %d threads + %d GUP, %d mms, scheme %s%s, %.1f s: ",
	       (unsigned long long)cfg.seed, cfg.threads, cfg.gup, cfg.mms,
	       smm_scheme_name(cfg.scheme),
	       (cfg.mm_flags & SMM_MM_NO_VMA_LOCK) ? " (no VMA locks)" : "",
	       now_s() - t0);
	for (int i = 0; i < O_NR; i++)
		printf("%s %ld%s", op_names[i], atomic_load(&op_count[i]),
		       i + 1 < O_NR ? ", " : "; ");
	printf("faults: vma-lock %ld, mmap-lock %ld; tables reclaimed %ld; pins %llu; "
	       "enomem %ld; violations %ld\n",
	       faults_vma, faults_mmap, pt_reclaimed,
	       (unsigned long long)ps.pins_acquired, atomic_load(&nomem),
	       atomic_load(&violations));
	return atomic_load(&violations) ? 1 : 0;
}
