/*
 * tools/torture_fork.c - `softmm torture --fork`: threads fork address
 * spaces while others fault, store and pin in them, and check that
 * copy-on-write is exact: after a fork the parent and the child each see
 * their own values, and a page pinned for DMA keeps reaching the parent,
 * never the child.
 *
 * A root mm has three private anonymous regions (56 pages, laid across a
 * 2 MiB and a 1 GiB boundary, so that forks copy several PTE tables) and
 * one MAP_SHARED | MAP_ANONYMOUS region of 8 pages. Fork threads call
 * smm_fork() on live mms (the root, children, grandchildren...); at most
 * --mms are live (the root always), and a new child evicts a random other
 * one, which is destroyed when its last user lets go of it.
 *
 * - Ownership: word w of page p belongs to owner (w + p) % owners; the
 *   owners are the worker threads and then the GUP threads. Only the owner
 *   of a word ever stores to it, in any mm. Values are tagged: owner, word
 *   index, and a sequence number that only grows (per owner).
 * - The model: every live mm has, for each private word, lo (the value
 *   last stored in this mm) and hi (the value about to be stored; equal to
 *   lo when no store is in flight), and a "fuzzy" bit (below). The shared
 *   region has one lo/hi per word for all mms. An owner must read back
 *   exactly lo of its own word (unless fuzzy); anyone else must read a
 *   value with the owner's tag (or 0 while lo is 0) and a sequence number
 *   between lo before its load and hi after it. A child that sees a store
 *   the parent made after the fork (or the device's write through a pin
 *   taken on the parent) reads a sequence number above its own hi: caught.
 * - The snapshot: a store to private memory takes its mm's rwlock shared
 *   (hi, smm_write, lo); a fork thread usually takes the parent's rwlock
 *   exclusively around smm_fork() and gives the child a copy of the
 *   parent's lo/hi, which then is exactly what the child's memory holds.
 *   GUP pins (fast and slow) and loads are not quiesced: GUP-fast racing
 *   fork is the race under test. One fork in four is not quiesced at all
 *   ("racy"): stores run during the fork, and the child's words are known
 *   only between lo read before smm_fork() and hi read after it returned
 *   (a store that returned before the fork began must be in the child,
 *   one begun after it returned must not); such words are fuzzy until
 *   their owner stores to them in the child again.
 * - Workers (--threads) take a random live mm, switch their CPU to it and
 *   do a batch of stores and loads of their own words, loads of others'
 *   words, stores and loads in the shared region, and now and then
 *   smm_mm_verify(); then the next mm.
 * - GUP threads (--gup) pin 1-4 pages of a live mm P (write pins, fast or
 *   slow, sometimes FOLL_LONGTERM), check through the pin that the page is
 *   P's (their word there is P's lo), then act as a device: a few times,
 *   under P's rwlock shared, store a new value into their word of each
 *   pinned page through smm_page_address() (P's model follows: the pinned
 *   page is P's page), and load it through P's mapping on the CPU: it must
 *   be there (a parent whose entry was moved off the pinned page by a
 *   copy-on-write no longer sees the device). Then every child forked from
 *   P while the pin was held must still hold its snapshot of the word, not
 *   the device's later values. The fork threads fork the most recently
 *   pinned mm half of the time, so that forks meet pins often.
 * - At the end: every live mm is checked word for word against its model
 *   and verified, the pins acquired and released must balance per mm and
 *   in the pool, and after teardown the pool must be empty (free + 1 ==
 *   frames, no anonymous, file or page-table page).
 *
 * Entered from cmd_torture() (torture.c), which parses the options.
 * Owns no library state; all of its own state is in this file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "softmm.h"
#include "torture.h"

#define PAGE	       4096ULL
#define WORDS_PER_PAGE 512
#define NPRIV	       56 /* private pages: the three regions below */
#define NSHM	       8  /* pages of the MAP_SHARED | MAP_ANONYMOUS region */
#define SHM_BASE       0x300000000000ULL
#define NWORDS	       (NPRIV * WORDS_PER_PAGE)
#define NSHWORDS       (NSHM * WORDS_PER_PAGE)
#define SHM_TAG	       0x800000 /* word index tag of the shared words */
#define FORKERS	       2
#define MAX_LIVE       TORTURE_MAX_MMS
#define BATCH	       64 /* worker operations per mm taken */

static const struct {
	uint64_t base;
	int pages;
} regs[] = {
	{ 0x200000000000ULL - 8 * PAGE, 16 }, /* across a 2 MiB boundary */
	{ 0x200000400000ULL + 3 * PAGE, 32 }, /* two PTE tables' worth */
	{ 0x200040000000ULL - 4 * PAGE, 8 },  /* across a 1 GiB boundary */
};
#define NREGS ((int)(sizeof(regs) / sizeof(regs[0])))

enum counter {
	C_FORK,
	C_FORK_RACY,
	C_DESTROY,
	C_STORE,
	C_SHSTORE,
	C_LOAD, /* words checked */
	C_DEV,	/* device stores through a pin */
	C_PIN_FAST,
	C_PIN_SLOW,
	C_PIN_FORKED, /* pins during which the pinned mm was forked */
	C_CHILD_CHECK,
	C_VERIFY,
	C_NR
};

/* One live address space and its model. */
struct fmm {
	struct smm_mm *mm;
	int id;	    /* 0: the root; then in order of birth */
	int parent; /* -1: the root */
	long born;  /* the value of forks_done when it was forked */
	atomic_int refs;
	pthread_rwlock_t rw; /* stores: shared; a quiesced fork: exclusive */
	_Atomic uint64_t lo[NWORDS], hi[NWORDS];
	atomic_uchar fuzzy[NWORDS];
};

static struct torture_opts o;
static int max_live, nowners;
static struct smm_pool *pool;
static uint64_t page_addr[NPRIV];
static pthread_mutex_t tab_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fmm *slots[MAX_LIVE]; /* slot 0: the root, always */
static int next_id = 1;
static atomic_long forks_done; /* a generation number */
static atomic_int hot_id = 0;  /* the mm pinned last: fork it often */
static _Atomic uint64_t sh_lo[NSHWORDS], sh_hi[NSHWORDS];
static atomic_bool stop;
static atomic_long violations, nomem;
static atomic_long counts[C_NR];

struct fthread {
	int id; /* owner id: workers 0..threads-1, GUP threads after them */
	uint64_t rng, seq;
	struct smm_cpu *cpu;
	/* what the CPU is switched to: the mm, not our struct fmm, which may
	 * be freed and its memory reused while the CPU keeps the old mm */
	struct smm_mm *cur;
	long cnt[C_NR];
};

static uint64_t rnd(struct fthread *t)
{
	return torture_rnd(&t->rng);
}

static unsigned int rndn(struct fthread *t, unsigned int n)
{
	return (unsigned int)(rnd(t) % n);
}

#define violation(...) \
	torture_violation(&violations, "torture --fork", __VA_ARGS__)

/* ---- the model ---- */

static int owner_of(int w)
{
	return (w % WORDS_PER_PAGE + w / WORDS_PER_PAGE) % nowners;
}

/* A random word of page @p owned by @id. */
static int own_word(struct fthread *t, int p)
{
	int first = ((t->id - p) % nowners + nowners) % nowners;
	int cnt = (WORDS_PER_PAGE - first + nowners - 1) / nowners;

	return p * WORDS_PER_PAGE + first +
	       (int)rndn(t, (unsigned)cnt) * nowners;
}

static uint64_t make_val(int owner, int widx, uint64_t seq)
{
	return ((uint64_t)(owner + 1) << 56) | ((uint64_t)widx << 32) |
	       (seq & 0xffffffffULL);
}

static uint32_t seq_of(uint64_t v)
{
	return (uint32_t)v;
}

static uint64_t word_addr(int w)
{
	return page_addr[w / WORDS_PER_PAGE] +
	       (uint64_t)(w % WORDS_PER_PAGE) * 8;
}

/*
 * Check @v, read from word @w (@widx its tag index) of mm @id (-1: the
 * shared region) by owner @self, against the model: @lo0 was lo before the
 * load began, @hi1 hi after it ended; @exact: @self owns the word and
 * nothing makes it uncertain, so @v must be @lo0.
 */
static void check_val(int id, int w, int widx, uint64_t v, uint64_t lo0,
		      uint64_t hi1, bool exact, int self, const char *how)
{
	int own = owner_of(w);
	char where[64];

	if (id < 0)
		snprintf(where, sizeof(where), "shared word %d (%#llx)", w,
			 (unsigned long long)(SHM_BASE + (uint64_t)w * 8));
	else
		snprintf(where, sizeof(where), "mm %d word %d (%#llx)", id, w,
			 (unsigned long long)word_addr(w));
	if (exact) {
		if (v != lo0)
			violation(
				"%s: owner %d reads %s as %#016llx, the model "
				"says %#016llx (seq %u, found seq %u)",
				how, self, where, (unsigned long long)v,
				(unsigned long long)lo0, seq_of(lo0),
				seq_of(v));
		return;
	}
	if (v == 0) {
		if (lo0 != 0)
			violation("%s: %s (owner %d) reads 0, but %#016llx had "
				  "been stored before the load began",
				  how, where, own, (unsigned long long)lo0);
		return;
	}
	if ((v >> 56) != (uint64_t)(own + 1) ||
	    ((v >> 32) & 0xffffff) != (uint64_t)widx)
		violation("%s: %s (owner %d) holds %#016llx: not a value its "
			  "owner ever stored there",
			  how, where, own, (unsigned long long)v);
	else if (seq_of(v) < seq_of(lo0))
		violation("%s: %s (owner %d) holds %#016llx, older than "
			  "%#016llx, stored before the load began",
			  how, where, own, (unsigned long long)v,
			  (unsigned long long)lo0);
	else if (seq_of(v) > seq_of(hi1))
		violation("%s: %s (owner %d) holds %#016llx, newer than any "
			  "store begun in this mm (%#016llx): a store of "
			  "another mm (parent or child) leaked in",
			  how, where, own, (unsigned long long)v,
			  (unsigned long long)hi1);
}

/* Check word @w of @f as read (@v) by @t; @lo0/@hi1 as above. */
static void check_priv(struct fthread *t, struct fmm *f, int w, uint64_t v,
		       uint64_t lo0, uint64_t hi1, const char *how)
{
	bool exact = owner_of(w) == t->id && !atomic_load(&f->fuzzy[w]);

	t->cnt[C_LOAD]++;
	check_val(f->id, w, w, v, lo0, hi1, exact, t->id, how);
}

/* ---- the live mms ---- */

static void fmm_put(struct fmm *f)
{
	if (atomic_fetch_sub(&f->refs, 1) != 1)
		return;
	if (f->mm) {
		smm_mm_destroy(f->mm);
		atomic_fetch_add(&counts[C_DESTROY], 1);
	}
	pthread_rwlock_destroy(&f->rw);
	free(f);
}

/* A live mm with a reference: the one of @id if live (>= 0), else any. */
static struct fmm *fmm_get(struct fthread *t, int id)
{
	struct fmm *f = NULL;

	pthread_mutex_lock(&tab_lock);
	for (int i = 0; id >= 0 && i < max_live; i++)
		if (slots[i] && slots[i]->id == id)
			f = slots[i];
	while (!f)
		f = slots[rndn(t, (unsigned)max_live)];
	atomic_fetch_add(&f->refs, 1);
	pthread_mutex_unlock(&tab_lock);
	return f;
}

static struct fmm *fmm_alloc(struct smm_mm *mm, int parent)
{
	struct fmm *f = calloc(1, sizeof(*f));
	pthread_rwlockattr_t a;

	if (!f)
		return NULL;
	f->mm = mm;
	f->parent = parent;
	atomic_store(&f->refs, 1); /* the table's */
	pthread_rwlockattr_init(&a);
	/* a fork must not starve behind a stream of stores */
	pthread_rwlockattr_setkind_np(
		&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&f->rw, &a);
	pthread_rwlockattr_destroy(&a);
	return f;
}

static void switch_to(struct fthread *t, struct fmm *f)
{
	if (t->cur != f->mm) {
		smm_cpu_switch_mm(t->cpu, f->mm);
		t->cur = f->mm;
	}
}

/* ---- CPU accesses ---- */

static void store_priv(struct fthread *t, struct fmm *f, int w)
{
	uint64_t v = make_val(t->id, w, ++t->seq), fa = 0, hi0;
	int ret;

	pthread_rwlock_rdlock(&f->rw);
	hi0 = atomic_load(&f->hi[w]);
	atomic_store(&f->hi[w], v);
	ret = smm_write(t->cpu, word_addr(w), &v, 8, &fa);
	if (ret == 0) {
		atomic_store(&f->lo[w], v);
		atomic_store(&f->fuzzy[w], 0);
	} else {
		atomic_store(&f->hi[w], hi0);
	}
	pthread_rwlock_unlock(&f->rw);
	t->cnt[C_STORE]++;
	if (ret == -ENOMEM)
		atomic_fetch_add(&nomem, 1);
	else if (ret)
		violation("store to mm %d word %d (%#llx): %d", f->id, w,
			  (unsigned long long)word_addr(w), ret);
}

/* Load and check @n words from @w0 (one page) of @f. */
static void load_priv(struct fthread *t, struct fmm *f, int w0, int n,
		      const char *how)
{
	uint64_t lo0[WORDS_PER_PAGE], v[WORDS_PER_PAGE], fa = 0;
	int ret;

	for (int i = 0; i < n; i++)
		lo0[i] = atomic_load(&f->lo[w0 + i]);
	ret = smm_read(t->cpu, word_addr(w0), v, (size_t)n * 8, &fa);
	if (ret == -ENOMEM) {
		atomic_fetch_add(&nomem, 1);
		return;
	}
	if (ret) {
		violation("load of %d words of mm %d at %#llx: %d", n, f->id,
			  (unsigned long long)word_addr(w0), ret);
		return;
	}
	for (int i = 0; i < n; i++)
		check_priv(t, f, w0 + i, v[i], lo0[i],
			   atomic_load(&f->hi[w0 + i]), how);
}

static void store_shared(struct fthread *t, struct fmm *f)
{
	int p = (int)rndn(t, NSHM), w, ret;
	int first = ((t->id - p) % nowners + nowners) % nowners;
	int cnt = (WORDS_PER_PAGE - first + nowners - 1) / nowners;
	uint64_t v, fa = 0, hi0;

	w = p * WORDS_PER_PAGE + first + (int)rndn(t, (unsigned)cnt) * nowners;
	v = make_val(t->id, SHM_TAG | w, ++t->seq);
	hi0 = atomic_load(&sh_hi[w]);
	atomic_store(&sh_hi[w], v);
	ret = smm_write(t->cpu, SHM_BASE + (uint64_t)w * 8, &v, 8, &fa);
	if (ret == 0)
		atomic_store(&sh_lo[w], v);
	else
		atomic_store(&sh_hi[w], hi0);
	t->cnt[C_SHSTORE]++;
	if (ret == -ENOMEM)
		atomic_fetch_add(&nomem, 1);
	else if (ret)
		violation("store to shared word %d through mm %d: %d", w, f->id,
			  ret);
}

static void load_shared(struct fthread *t, struct fmm *f, int w0, int n)
{
	uint64_t lo0[WORDS_PER_PAGE], v[WORDS_PER_PAGE], fa = 0;
	char how[48];
	int ret;

	for (int i = 0; i < n; i++)
		lo0[i] = atomic_load(&sh_lo[w0 + i]);
	ret = smm_read(t->cpu, SHM_BASE + (uint64_t)w0 * 8, v, (size_t)n * 8,
		       &fa);
	if (ret == -ENOMEM) {
		atomic_fetch_add(&nomem, 1);
		return;
	}
	if (ret) {
		violation("load of %d shared words through mm %d: %d", n, f->id,
			  ret);
		return;
	}
	snprintf(how, sizeof(how), "shared load through mm %d", f->id);
	for (int i = 0; i < n; i++) {
		int w = w0 + i;

		t->cnt[C_LOAD]++;
		check_val(-1, w, SHM_TAG | w, v[i], lo0[i],
			  atomic_load(&sh_hi[w]), owner_of(w) == t->id, t->id,
			  how);
	}
}

/* ---- workers ---- */

static void worker_op(struct fthread *t, struct fmm *f)
{
	unsigned int dice = rndn(t, 1000);
	int p = (int)rndn(t, NPRIV);

	if (dice < 450) {
		int w = own_word(t, p);

		store_priv(t, f, w);
		if (rndn(t, 2))
			load_priv(t, f, w, 1, "read back");
	} else if (dice < 650) {
		load_priv(t, f, own_word(t, p), 1, "own load");
	} else if (dice < 800) {
		int n = 1 << rndn(t, 7); /* 1..64 words */
		int w0 = p * WORDS_PER_PAGE +
			 (int)rndn(t, (unsigned)(WORDS_PER_PAGE / n)) * n;

		load_priv(t, f, w0, n, "load");
	} else if (dice < 880) {
		store_shared(t, f);
	} else if (dice < 998) {
		int n = 1 << rndn(t, 7);
		int sp = (int)rndn(t, NSHM);

		load_shared(t, f,
			    sp * WORDS_PER_PAGE +
				    (int)rndn(t,
					      (unsigned)(WORDS_PER_PAGE / n)) *
					    n,
			    n);
	} else {
		t->cnt[C_VERIFY]++;
		if (smm_mm_verify(f->mm))
			violation("smm_mm_verify failed on mm %d", f->id);
	}
}

static void *worker(void *arg)
{
	struct fthread *t = arg;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		struct fmm *f = fmm_get(t, -1);

		switch_to(t, f);
		for (int i = 0; i < BATCH; i++)
			worker_op(t, f);
		fmm_put(f);
	}
	return NULL;
}

/* ---- fork threads ---- */

/*
 * The library's testing hook in fork (debug builds, src/fork.c): called
 * with the parent's ptl held once fork has decided to share an anonymous
 * page (it was not pinned), before it write-protects the entry. Yielding
 * there now and then lets a GUP-fast that read the entry before the fork
 * began (and yields in its own race window, --race) pin the page while
 * fork shares it: what write_protect_seq must catch. Weak: a release
 * library has no such hook, and then the address is NULL.
 */
extern void (*smm_debug_fork_hook)(struct smm_mm *mm, uint64_t addr)
	__attribute__((weak));
static _Thread_local uint64_t hook_rng;

static void fork_hook(struct smm_mm *mm, uint64_t addr)
{
	if (torture_rnd(&hook_rng) % 8 == 0)
		sched_yield();
}

/* Put @c in the table, evicting a random mm other than the root if it is
 * full. */
static void install(struct fthread *t, struct fmm *c)
{
	struct fmm *victim = NULL;
	int i;

	pthread_mutex_lock(&tab_lock);
	c->id = next_id++;
	for (i = 1; i < max_live && slots[i]; i++)
		;
	if (i == max_live) {
		i = 1 + (int)rndn(t, (unsigned)max_live - 1);
		victim = slots[i];
	}
	slots[i] = c;
	pthread_mutex_unlock(&tab_lock);
	if (victim)
		fmm_put(victim); /* the table's reference */
}

static void fork_op(struct fthread *t)
{
	struct fmm *p = fmm_get(t, rndn(t, 2) ? atomic_load(&hot_id) : -1);
	bool racy = rndn(t, 4) == 0;
	struct fmm *c = fmm_alloc(NULL, p->id);
	struct smm_mm *mm;

	if (!c) {
		violation("out of host memory");
		fmm_put(p);
		return;
	}
	if (racy) {
		/* stores run on: the child's words lie between lo before and
		 * hi after */
		for (int w = 0; w < NWORDS; w++) {
			atomic_store(&c->lo[w], atomic_load(&p->lo[w]));
			atomic_store(&c->fuzzy[w], atomic_load(&p->fuzzy[w]));
		}
		mm = smm_fork(p->mm);
		c->born = atomic_fetch_add(&forks_done, 1) + 1;
		for (int w = 0; w < NWORDS; w++) {
			uint64_t h = atomic_load(&p->hi[w]);

			atomic_store(&c->hi[w], h);
			if (h != atomic_load(&c->lo[w]))
				atomic_store(&c->fuzzy[w], 1);
		}
	} else {
		pthread_rwlock_wrlock(&p->rw);
		mm = smm_fork(p->mm);
		c->born = atomic_fetch_add(&forks_done, 1) + 1;
		for (int w = 0; w < NWORDS; w++) {
			atomic_store(&c->lo[w], atomic_load(&p->lo[w]));
			atomic_store(&c->hi[w], atomic_load(&p->hi[w]));
			atomic_store(&c->fuzzy[w], atomic_load(&p->fuzzy[w]));
		}
		pthread_rwlock_unlock(&p->rw);
	}
	if (!mm) {
		if (errno == ENOMEM)
			atomic_fetch_add(&nomem, 1);
		else
			violation("smm_fork of mm %d: %s", p->id,
				  strerror(errno));
		fmm_put(c);
		fmm_put(p);
		return;
	}
	c->mm = mm;
	t->cnt[racy ? C_FORK_RACY : C_FORK]++;
	if (rndn(t, 16) == 0) {
		t->cnt[C_VERIFY]++;
		if (smm_mm_verify(mm))
			violation("smm_mm_verify failed on the child of mm %d",
				  p->id);
	}
	fmm_put(p);
	install(t, c);
}

static void *forker(void *arg)
{
	struct fthread *t = arg;

	hook_rng = t->rng ^ 0x5bd1e995;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		fork_op(t);
		sched_yield(); /* let the stores and pins run */
	}
	return NULL;
}

/* ---- GUP threads ---- */

/* Load @t's word @w of @f through a CPU switched to it and check it. */
static void check_own(struct fthread *t, struct fmm *f, int w, const char *how)
{
	switch_to(t, f);
	load_priv(t, f, w, 1, how);
}

static void gup_op(struct fthread *t)
{
	struct fmm *p = fmm_get(t, -1), *kids[MAX_LIVE];
	int p0 = (int)rndn(t, NPRIV), n = 1 + (int)rndn(t, 4), nk = 0;
	bool fast = rndn(t, 2), longterm = !fast && rndn(t, 2);
	int w[4], r = 0;
	struct smm_page *pages[4];
	long got, gen0 = atomic_load(&forks_done);
	char how[96];

	/* within one region: a pin of a contiguous range */
	while (r + 1 < NREGS && page_addr[p0] >= regs[r + 1].base)
		r++;
	if (page_addr[p0] + (uint64_t)n * PAGE >
	    regs[r].base + (uint64_t)regs[r].pages * PAGE)
		n = (int)((regs[r].base + (uint64_t)regs[r].pages * PAGE -
			   page_addr[p0]) /
			  PAGE);
	atomic_store(&hot_id, p->id);
	switch_to(t, p);
	if (fast)
		got = smm_pin_user_pages_fast(t->cpu, page_addr[p0],
					      (unsigned long)n, SMM_FOLL_WRITE,
					      pages);
	else
		got = smm_pin_user_pages(
			p->mm, page_addr[p0], (unsigned long)n,
			SMM_FOLL_WRITE | (longterm ? SMM_FOLL_LONGTERM : 0),
			pages);
	t->cnt[fast ? C_PIN_FAST : C_PIN_SLOW]++;
	if (got == -ENOMEM) {
		atomic_fetch_add(&nomem, 1);
		goto out;
	}
	if (got != n) {
		violation("%s write pin of mm %d pages %d+%d (private, "
			  "read-write, mapped): %ld",
			  fast ? "fast" : "slow", p->id, p0, n, got);
		if (got > 0 && got <= n)
			smm_unpin_user_pages(pages, (unsigned long)got);
		goto out;
	}
	/* The pinned pages are the parent's: our words there are its. */
	for (int i = 0; i < n; i++) {
		uint64_t *a = smm_page_address(pages[i]);

		w[i] = own_word(t, p0 + i);
		if (!smm_page_maybe_dma_pinned(pages[i]))
			violation("pinned page %d of mm %d is not "
				  "maybe_dma_pinned",
				  p0 + i, p->id);
		snprintf(how, sizeof(how), "through a %s pin of mm %d",
			 fast ? "fast" : "slow", p->id);
		check_priv(t, p, w[i], dev_load(&a[w[i] % WORDS_PER_PAGE]),
			   atomic_load(&p->lo[w[i]]), atomic_load(&p->hi[w[i]]),
			   how);
	}
	/* The device writes, forks may come between; the parent sees it. */
	for (int round = 0, rounds = 1 + (int)rndn(t, 4); round < rounds;
	     round++) {
		pthread_rwlock_rdlock(&p->rw);
		for (int i = 0; i < n; i++) {
			uint64_t *a = smm_page_address(pages[i]);
			uint64_t v = make_val(t->id, w[i], ++t->seq);

			atomic_store(&p->hi[w[i]], v);
			dev_store(&a[w[i] % WORDS_PER_PAGE], v);
			atomic_store(&p->lo[w[i]], v);
			atomic_store(&p->fuzzy[w[i]], 0);
			t->cnt[C_DEV]++;
		}
		pthread_rwlock_unlock(&p->rw);
		for (int i = 0; i < n; i++) {
			snprintf(how, sizeof(how),
				 "mm %d, after the device wrote through a "
				 "%s pin (forks since: %ld)",
				 p->id, fast ? "fast" : "slow",
				 atomic_load(&forks_done) - gen0);
			check_own(t, p, w[i], how);
		}
		if (rndn(t, 2))
			sched_yield(); /* let forks of the pinned mm run */
	}
	/* Children forked while the pin was held: their snapshot only. */
	pthread_mutex_lock(&tab_lock);
	for (int i = 0; i < max_live; i++)
		if (slots[i] && slots[i]->parent == p->id &&
		    slots[i]->born > gen0) {
			kids[nk++] = slots[i];
			atomic_fetch_add(&slots[i]->refs, 1);
		}
	pthread_mutex_unlock(&tab_lock);
	if (nk || atomic_load(&forks_done) != gen0)
		t->cnt[C_PIN_FORKED]++;
	for (int k = 0; k < nk; k++) {
		for (int i = 0; i < n; i++) {
			snprintf(how, sizeof(how),
				 "child mm %d, forked from mm %d while a %s "
				 "pin was held",
				 kids[k]->id, p->id, fast ? "fast" : "slow");
			check_own(t, kids[k], w[i], how);
		}
		t->cnt[C_CHILD_CHECK]++;
		fmm_put(kids[k]);
	}
	/* The device reads back what it wrote: the frame stayed ours. */
	for (int i = 0; i < n; i++) {
		uint64_t *a = smm_page_address(pages[i]);
		uint64_t v = dev_load(&a[w[i] % WORDS_PER_PAGE]);

		if (v != atomic_load(&p->lo[w[i]]))
			violation(
				"through the pin of mm %d page %d the device "
				"reads %#016llx, it wrote %#016llx",
				p->id, p0 + i, (unsigned long long)v,
				(unsigned long long)atomic_load(&p->lo[w[i]]));
	}
	smm_unpin_user_pages_dirty_lock(pages, (unsigned long)n, rndn(t, 2));
out:
	fmm_put(p);
}

static void *gup_thread(void *arg)
{
	struct fthread *t = arg;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		if (rndn(t, 8) == 0) {
			/* our words of some page of some mm: exact */
			struct fmm *f = fmm_get(t, -1);
			int p = (int)rndn(t, NPRIV);

			check_own(t, f, own_word(t, p),
				  "GUP thread's own load");
			fmm_put(f);
		} else {
			gup_op(t);
		}
	}
	return NULL;
}

static void *thread_main(void *arg)
{
	struct fthread *t = arg;
	void *(*fn)(void *) = t->id < o.threads		? worker :
			      t->id < o.threads + o.gup ? gup_thread :
							  forker;

	t->cpu = smm_cpu_attach(pool);
	if (!t->cpu) {
		violation("thread %d cannot attach: %s", t->id,
			  strerror(errno));
		return NULL;
	}
	fn(t);
	smm_cpu_switch_mm(t->cpu, NULL);
	smm_cpu_detach(t->cpu);
	for (int i = 0; i < C_NR; i++)
		atomic_fetch_add(&counts[i], t->cnt[i]);
	return NULL;
}

/* ---- setup and the final checks ---- */

static int setup_root(void)
{
	struct smm_mm_opts mo = { .scheme = o.scheme, .flags = o.mm_flags };
	struct fmm *f;
	int64_t a;
	int p = 0;

	f = fmm_alloc(smm_mm_create(pool, &mo), -1);
	if (!f || !f->mm) {
		perror("torture --fork: smm_mm_create");
		return -1;
	}
	slots[0] = f;
	for (int r = 0; r < NREGS; r++) {
		a = smm_mmap(
			f->mm, regs[r].base, (uint64_t)regs[r].pages * PAGE,
			SMM_PROT_READ | SMM_PROT_WRITE,
			SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS | SMM_MAP_FIXED);
		if (a != (int64_t)regs[r].base) {
			fprintf(stderr,
				"torture --fork: mmap of region %d: %lld\n", r,
				(long long)a);
			return -1;
		}
		for (int i = 0; i < regs[r].pages; i++)
			page_addr[p++] = regs[r].base + (uint64_t)i * PAGE;
	}
	a = smm_mmap(f->mm, SHM_BASE, NSHM * PAGE,
		     SMM_PROT_READ | SMM_PROT_WRITE,
		     SMM_MAP_SHARED | SMM_MAP_ANONYMOUS | SMM_MAP_FIXED);
	if (a != (int64_t)SHM_BASE) {
		fprintf(stderr, "torture --fork: shared mmap: %lld\n",
			(long long)a);
		return -1;
	}
	return 0;
}

/* Every word of every live mm against its model, exactly (threads have
 * stopped: lo is what each mm holds, but for fuzzy words). */
static void final_checks(void)
{
	struct fthread t = { .id = -1 };
	static uint64_t buf[NSHWORDS > WORDS_PER_PAGE ? NSHWORDS : 1];
	uint64_t fa;

	t.cpu = smm_cpu_attach(pool);
	if (!t.cpu) {
		violation("final checks: %s", strerror(errno));
		return;
	}
	for (int s = 0; s < max_live; s++) {
		struct fmm *f = slots[s];
		struct smm_mm_stats st;

		if (!f)
			continue;
		switch_to(&t, f);
		for (int p = 0; p < NPRIV; p++) {
			if (smm_read(t.cpu, page_addr[p], buf, PAGE, &fa)) {
				violation("final read of mm %d page %d failed",
					  f->id, p);
				continue;
			}
			for (int i = 0; i < WORDS_PER_PAGE; i++) {
				int w = p * WORDS_PER_PAGE + i;
				uint64_t lo = atomic_load(&f->lo[w]);

				atomic_fetch_add(&counts[C_LOAD], 1);
				check_val(f->id, w, w, buf[i], lo,
					  atomic_load(&f->hi[w]),
					  !atomic_load(&f->fuzzy[w]),
					  owner_of(w), "at the end");
			}
		}
		if (smm_read(t.cpu, SHM_BASE, buf, NSHM * PAGE, &fa)) {
			violation("final read of mm %d's shared region failed",
				  f->id);
		} else {
			for (int w = 0; w < NSHWORDS; w++)
				check_val(-1, w, SHM_TAG | w, buf[w],
					  atomic_load(&sh_lo[w]),
					  atomic_load(&sh_hi[w]), true,
					  owner_of(w), "at the end, shared");
		}
		if (smm_mm_verify(f->mm))
			violation("final smm_mm_verify failed on mm %d", f->id);
		smm_mm_stats(f->mm, &st);
		if (st.pins_acquired != st.pins_released)
			violation("mm %d: %llu pins acquired, %llu released",
				  f->id, (unsigned long long)st.pins_acquired,
				  (unsigned long long)st.pins_released);
	}
	smm_cpu_switch_mm(t.cpu, NULL);
	smm_cpu_detach(t.cpu);
}

int torture_fork(const struct torture_opts *opts)
{
	int nthreads, rc = 2;
	struct fthread *ts = NULL;
	pthread_t *tid = NULL;
	struct smm_pool_stats ps;
	double t0;

	o = *opts;
	max_live = o.mms < 2 ? 2 : o.mms;
	nowners = o.threads + o.gup;
	nthreads = o.threads + o.gup + FORKERS;
	ts = calloc((size_t)nthreads, sizeof(*ts));
	tid = calloc((size_t)nthreads, sizeof(*tid));
	pool = smm_pool_create(128ULL << 20, SMM_POOL_POISON);
	if (!ts || !tid || !pool) {
		perror("torture --fork: setup");
		goto out;
	}
	if (setup_root())
		goto out;
	if (&smm_debug_fork_hook)
		smm_debug_fork_hook = fork_hook;

	t0 = now_s();
	for (int i = 0; i < nthreads; i++) {
		ts[i].id = i;
		ts[i].rng = o.seed * 1000003 + (uint64_t)i;
		pthread_create(&tid[i], NULL, thread_main, &ts[i]);
	}
	while (now_s() - t0 < o.seconds && atomic_load(&violations) == 0) {
		struct timespec d = { 0, 20 * 1000 * 1000 };

		nanosleep(&d, NULL);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < nthreads; i++)
		pthread_join(tid[i], NULL);
	if (&smm_debug_fork_hook)
		smm_debug_fork_hook = NULL;

	final_checks();
	for (int s = 0; s < max_live; s++)
		if (slots[s]) {
			fmm_put(slots[s]); /* the last reference */
			slots[s] = NULL;
		}
	torture_pool_teardown(pool, &violations, "torture --fork", &ps);
	pool = NULL;

	printf("torture --fork: seed %llu, %d threads + %d GUP + %d fork, "
	       "max %d mms, scheme %s%s, %.1f s: forks %ld (racy %ld), mms "
	       "destroyed %ld, stores %ld private + %ld shared, loads checked "
	       "%ld, device stores %ld, pins %ld fast + %ld slow (%ld with "
	       "forks meanwhile, %ld children checked), verify %ld; pins "
	       "%llu/%llu; enomem %ld; violations %ld\n",
	       (unsigned long long)o.seed, o.threads, o.gup, FORKERS, max_live,
	       smm_scheme_name(o.scheme),
	       (o.mm_flags & SMM_MM_NO_VMA_LOCK) ? " (no VMA locks)" : "",
	       now_s() - t0,
	       atomic_load(&counts[C_FORK]) + atomic_load(&counts[C_FORK_RACY]),
	       atomic_load(&counts[C_FORK_RACY]),
	       atomic_load(&counts[C_DESTROY]), atomic_load(&counts[C_STORE]),
	       atomic_load(&counts[C_SHSTORE]), atomic_load(&counts[C_LOAD]),
	       atomic_load(&counts[C_DEV]), atomic_load(&counts[C_PIN_FAST]),
	       atomic_load(&counts[C_PIN_SLOW]),
	       atomic_load(&counts[C_PIN_FORKED]),
	       atomic_load(&counts[C_CHILD_CHECK]),
	       atomic_load(&counts[C_VERIFY]),
	       (unsigned long long)ps.pins_acquired,
	       (unsigned long long)ps.pins_released, atomic_load(&nomem),
	       atomic_load(&violations));
	rc = atomic_load(&violations) ? 1 : 0;
out:
	for (int s = 0; s < max_live; s++)
		if (slots[s]) {
			fmm_put(slots[s]);
			slots[s] = NULL;
		}
	if (pool)
		smm_pool_destroy(pool);
	free(ts);
	free(tid);
	return rc;
}
