/*
 * tools/torture_files.c - `softmm torture --files`: threads attached as
 * CPUs store into one host file through MAP_SHARED mappings of it in
 * several address spaces while it is written back all the time, and check
 * that no stored byte is ever lost or misplaced.
 *
 * The host file (--file-pages pages, a temporary file under /var/tmp,
 * unlinked as soon as it is open) is opened with smm_file_open(). Each mm
 * maps all of it MAP_SHARED read-write at an address of its own, plus one
 * page past the end of the file (a bus error: -ENXIO), and 8 pages of it
 * (after the 4 hot ones) MAP_PRIVATE somewhere else.
 *
 * - Every 32-byte slot of the file has one owner (the slots of a page go
 *   round the owners, so every thread owns bytes of every page and the
 *   stores of all mms meet in each page): a worker thread or a GUP thread,
 *   the only one that ever stores there. Each 8-byte word holds a tagged
 *   value: owner, word index, and a sequence number that only grows. The
 *   owner publishes hi[w] (the value it is about to store) before its
 *   store and lo[w] after it, so the model of each word is exact: the
 *   owner must read back lo[w], anyone else a value with the owner's tag
 *   and a sequence number between the lo[w] it saw before its load and
 *   the hi[w] it saw after.
 * - Workers (--threads, spread over the mms, each switched to its home mm)
 *   store through their home mm's mapping, sometimes through another mm's
 *   or with smm_file_pwrite(); read their own words and others' through
 *   any mm or smm_file_pread(); MADV_DONTNEED or munmap and remap
 *   (MAP_FIXED) a 4-page chunk of their home mapping (a chunk's state word
 *   is odd while it is being remapped; an access that faulted although
 *   the chunk was mapped throughout is a violation, and nothing may be
 *   lost: the page cache keeps the data); and call smm_msync(MS_SYNC) on
 *   a range, after which they pread(2) the host file through their own
 *   descriptor: each of their own words there must be exactly lo[w]. A
 *   mismatch is a lost store, reported with its offset, address, expected
 *   and found values. Half of the stores, msyncs and pins go to the first
 *   4 pages, so that writeback, stores through every mm and msyncs meet
 *   on the same pages many times a second; and some stores are followed
 *   at once by an msync of their page, before another store can dirty it
 *   again: a store that left its page clean (a writable entry that
 *   page_mkclean() missed) is then found stale in the host file.
 * - The first worker of each mm also stores private values (a tag no
 *   owner has) through the MAP_PRIVATE mapping, with an exact model of
 *   them and of which pages were copied; they must never reach the file
 *   (any other check would see the foreign tag).
 * - A writeback thread calls smm_file_writeback(file, 0) in a loop (every
 *   8th call with SMM_WB_SYNC).
 * - GUP threads (--gup) pin 1-4 pages of a shared mapping for writing,
 *   short-term, fast or slow; write new values into their own slots
 *   through smm_page_address() (the "device"), check the old ones; unpin
 *   dirty; then msync and check the host file as the workers do. A
 *   FOLL_LONGTERM write pin of the shared mapping must be refused
 *   (-EFAULT: the file needs dirty tracking).
 * - smm_mm_verify() runs now and then. At the end every thread stops, each
 *   mm msyncs its whole mapping, and the host file, smm_file_pread() and
 *   every mapping must equal the model word for word; then the mappings
 *   go, the mms are destroyed, the file is closed, and the pool must be
 *   empty (free + 1 == frames, no file, anonymous or page-table page).
 *
 * Entered from cmd_torture() (torture.c), which parses the options.
 * Owns no library state; all of its own state is in this file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "softmm.h"
#include "torture.h"

#define PAGE	       4096ULL
#define WORDS_PER_PAGE 512
#define SLOT_WORDS     4 /* 32 bytes */
#define SLOTS_PER_PAGE (WORDS_PER_PAGE / SLOT_WORDS)
#define CHUNK_PAGES    4 /* what DONTNEED and remap work on */
#define HOT_PAGES      4 /* where half of the stores go */
#define PRIV_PAGES     8 /* the MAP_PRIVATE mapping: 8 pages after the hot ones */
#define MAX_OWNERS     (TORTURE_MAX_THREADS + TORTURE_MAX_GUP)
/* Each mm maps the file at its own address, not 2 MiB-aligned. */
#define SHARED_BASE(m) \
	(0x300000000000ULL + (uint64_t)(m) * ((1ULL << 30) + 5 * PAGE))
#define PRIV_BASE(m) (SHARED_BASE(m) + (512ULL << 20))

enum counter {
	C_STORE,
	C_PWRITE,
	C_LOAD_OWN,
	C_LOAD_CROSS,
	C_PREAD,
	C_CROSS_MM,
	C_PRIVATE,
	C_DONTNEED,
	C_REMAP,
	C_EOF,
	C_VERIFY,
	C_PIN,
	C_LONGTERM,
	C_MSYNC,
	C_WRITEBACK,
	C_BYTES, /* bytes compared with the model */
	C_NR
};

static struct torture_opts o;
static struct smm_pool *pool;
static struct smm_file *file;
static int hostfd = -1;
static uint64_t npages, nwords, fsize, nchunks, priv_pages, priv_first;
static int nowners;
static struct smm_mm *mms[TORTURE_MAX_MMS];
static atomic_ulong *cstate;	  /* [m * nchunks + c]: version, odd = busy */
static pthread_mutex_t *clocks;	  /* [m * nchunks + c]: DONTNEED, remap */
static _Atomic uint64_t *lo, *hi; /* [w]: last stored, about to be stored */
static atomic_bool stop;
static atomic_long violations, lost_bytes, nomem;
static atomic_long counts[C_NR];

struct fthread {
	int id; /* owner id: workers 0..threads-1, GUP threads after them */
	int home;
	uint64_t rng, seq;
	struct smm_cpu *cpu;
	int cur; /* the mm the CPU is switched to, -1: none */
	uint64_t last_page;
	long cnt[C_NR];
	uint64_t *buf; /* fsize bytes */
	/* private owner of mm @home: its private values and copied pages */
	bool priv_owner;
	uint64_t *priv;
	bool *cow;
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
	torture_violation(&violations, "torture --files", __VA_ARGS__)

/* ---- the model ---- */

static int owner_of(uint64_t w)
{
	uint64_t p = w / WORDS_PER_PAGE, s = (w % WORDS_PER_PAGE) / SLOT_WORDS;

	return (int)((s + p) % (uint64_t)nowners);
}

static uint64_t make_val(int owner, uint64_t w, uint64_t seq)
{
	return ((uint64_t)(owner + 1) << 56) | ((w & 0xffffff) << 32) |
	       (seq & 0xffffffffULL);
}

/* A private store: a tag no owner has (0xf0 | mm). */
static uint64_t make_priv(int m, uint64_t w, uint64_t seq)
{
	return ((uint64_t)(0xf0 | m) << 56) | ((w & 0xffffff) << 32) |
	       (seq & 0xffffffffULL);
}

static uint32_t seq_of(uint64_t v)
{
	return (uint32_t)v;
}

/* The first slot of page @p that @id owns, and how many it owns there. */
static int first_slot(int id, uint64_t p, int *count)
{
	int s0 = (int)((((long)id - (long)(p % (uint64_t)nowners)) % nowners +
			nowners) %
		       nowners);

	*count = (SLOTS_PER_PAGE - s0 + nowners - 1) / nowners;
	return s0;
}

/* The first word of a random slot of page @p owned by @t. */
static uint64_t own_slot(struct fthread *t, uint64_t p)
{
	int cnt, s0 = first_slot(t->id, p, &cnt);

	return p * WORDS_PER_PAGE +
	       (uint64_t)(s0 + (int)rndn(t, (unsigned)cnt) * nowners) *
		       SLOT_WORDS;
}

static uint64_t pick_page(struct fthread *t)
{
	uint64_t hot = npages < HOT_PAGES ? npages : HOT_PAGES;

	return rndn(t, 2) ? rndn(t, (unsigned)hot) : rndn(t, (unsigned)npages);
}

static const char *mm_name(int m, char *b, size_t n)
{
	if (m < 0)
		snprintf(b, n, "smm_file_pread");
	else
		snprintf(b, n, "mm %d", m);
	return b;
}

/*
 * Check word @w, read as @v by @t (through @how), against the model: @lo0
 * was lo[w] before the load began, @hi1 hi[w] after it ended. A
 * @snapshot (a private copy of the page) may be older than @lo0, and
 * @t's own words in it too.
 */
static void check_word(struct fthread *t, const char *how, uint64_t w,
		       uint64_t v, uint64_t lo0, uint64_t hi1, bool snapshot)
{
	int own = owner_of(w);

	t->cnt[C_BYTES] += 8;
	if (own == t->id && !snapshot) {
		if (v != lo0)
			violation("%s: thread %d reads its own word at file "
				  "offset %#llx as %#016llx, it stored "
				  "%#016llx",
				  how, t->id, (unsigned long long)(w * 8),
				  (unsigned long long)v,
				  (unsigned long long)lo0);
		return;
	}
	if ((v >> 56) != (uint64_t)(own + 1) ||
	    ((v >> 32) & 0xffffff) != (w & 0xffffff))
		violation("%s: file offset %#llx (owner %d) holds %#016llx: "
			  "not a value its owner ever stored there",
			  how, (unsigned long long)(w * 8), own,
			  (unsigned long long)v);
	else if (!snapshot && seq_of(v) < seq_of(lo0))
		violation("%s: file offset %#llx (owner %d) holds %#016llx, "
			  "older than %#016llx, whose store had returned "
			  "before the load began (a lost store)",
			  how, (unsigned long long)(w * 8), own,
			  (unsigned long long)v, (unsigned long long)lo0);
	else if (seq_of(v) > seq_of(hi1))
		violation("%s: file offset %#llx (owner %d) holds %#016llx, "
			  "newer than any store begun (%#016llx)",
			  how, (unsigned long long)(w * 8), own,
			  (unsigned long long)v, (unsigned long long)hi1);
}

/* ---- chunk states ---- */

static atomic_ulong *chunk_state(int m, uint64_t c)
{
	return &cstate[(uint64_t)m * nchunks + c];
}

/* Whether every chunk of pages [p0, p0 + n) in mm @m was mapped from @s1
 * to now (@s1 the states read before, CHUNKS_MAX of them at most). */
#define CHUNKS_MAX (TORTURE_MAX_FILE_PAGES / CHUNK_PAGES)
static void states_read(int m, uint64_t p0, uint64_t n, unsigned long *s)
{
	uint64_t c0 = p0 / CHUNK_PAGES, c1 = (p0 + n - 1) / CHUNK_PAGES;

	for (uint64_t c = c0; c <= c1 && c - c0 < CHUNKS_MAX; c++)
		s[c - c0] = atomic_load_explicit(chunk_state(m, c),
						 memory_order_acquire);
}

static bool chunk_stable(int m, uint64_t c, unsigned long s1)
{
	return !(s1 & 1) && atomic_load_explicit(chunk_state(m, c),
						 memory_order_acquire) == s1;
}

static bool states_stable(int m, uint64_t p0, uint64_t n,
			  const unsigned long *s1)
{
	uint64_t c0 = p0 / CHUNK_PAGES, c1 = (p0 + n - 1) / CHUNK_PAGES;

	for (uint64_t c = c0; c <= c1; c++)
		if (c - c0 >= CHUNKS_MAX || !chunk_stable(m, c, s1[c - c0]))
			return false;
	return true;
}

/* ---- CPU accesses ---- */

static void switch_to(struct fthread *t, int m)
{
	if (t->cur != m) {
		smm_cpu_switch_mm(t->cpu, mms[m]);
		t->cur = m;
	}
}

static int other_mm(struct fthread *t)
{
	if (o.mms == 1)
		return t->home;
	return (t->home + 1 + (int)rndn(t, (unsigned)o.mms - 1)) % o.mms;
}

/*
 * Load @n words from word @w0 (one page) through mm @m, or through
 * smm_file_pread() if @m < 0, into @out. Returns 0, or the error of an
 * access that may fail (a chunk being remapped); any other failure is a
 * violation.
 */
static int load_words(struct fthread *t, int m, uint64_t w0, int n,
		      uint64_t *out)
{
	uint64_t p = w0 / WORDS_PER_PAGE, fa = 0;
	unsigned long s1[1];
	int ret;

	if (m < 0) {
		int64_t r = smm_file_pread(file, out, (size_t)n * 8, w0 * 8);

		t->cnt[C_PREAD]++;
		if (r == -ENOMEM) {
			atomic_fetch_add(&nomem, 1);
			return -ENOMEM;
		}
		if (r != n * 8) {
			violation("smm_file_pread of %d bytes at %#llx: %lld",
				  n * 8, (unsigned long long)(w0 * 8),
				  (long long)r);
			return -EIO;
		}
		return 0;
	}
	switch_to(t, m);
	if (m != t->home)
		t->cnt[C_CROSS_MM]++;
	states_read(m, p, 1, s1);
	ret = smm_read(t->cpu, SHARED_BASE(m) + w0 * 8, out, (size_t)n * 8,
		       &fa);
	if (ret == -ENOMEM) {
		atomic_fetch_add(&nomem, 1);
		return ret;
	}
	if (ret && states_stable(m, p, 1, s1))
		violation("load of %d bytes at %#llx (mm %d, file offset "
			  "%#llx) failed (%d), but its chunk was mapped "
			  "throughout",
			  n * 8, (unsigned long long)(SHARED_BASE(m) + w0 * 8),
			  m, (unsigned long long)(w0 * 8), ret);
	return ret;
}

/* Load and check @n words from @w0 (one page) through @m (-1: pread). */
static void load_check(struct fthread *t, int m, uint64_t w0, int n)
{
	uint64_t lo0[WORDS_PER_PAGE], hi1[WORDS_PER_PAGE], v[WORDS_PER_PAGE];
	char how[64], mb[24];

	for (int i = 0; i < n; i++)
		lo0[i] = atomic_load(&lo[w0 + i]);
	if (load_words(t, m, w0, n, v))
		return;
	for (int i = 0; i < n; i++)
		hi1[i] = atomic_load(&hi[w0 + i]);
	snprintf(how, sizeof(how), "load through %s",
		 mm_name(m, mb, sizeof(mb)));
	for (int i = 0; i < n; i++)
		check_word(t, how, w0 + (uint64_t)i, v[i], lo0[i], hi1[i],
			   false);
}

/* Store new values into @n of @t's words from @w0 (one slot). */
static void store_words(struct fthread *t, uint64_t w0, int n)
{
	uint64_t v[SLOT_WORDS], p = w0 / WORDS_PER_PAGE, fa = 0, seq;
	unsigned long s1[1];
	int ret, m = -1, done = 0;

	seq = ++t->seq;
	for (int i = 0; i < n; i++) {
		v[i] = make_val(t->id, w0 + (uint64_t)i, seq);
		atomic_store(&hi[w0 + i], v[i]);
	}
	if (rndn(t, 10) == 0) {
		int64_t r = smm_file_pwrite(file, v, (size_t)n * 8, w0 * 8);

		t->cnt[C_PWRITE]++;
		if (r == n * 8)
			done = n;
		else if (r == -ENOMEM)
			atomic_fetch_add(&nomem, 1);
		else
			violation("smm_file_pwrite of %d bytes at %#llx: %lld",
				  n * 8, (unsigned long long)(w0 * 8),
				  (long long)r);
	} else {
		m = rndn(t, 4) == 0 ? other_mm(t) : t->home;
		switch_to(t, m);
		if (m != t->home)
			t->cnt[C_CROSS_MM]++;
		states_read(m, p, 1, s1);
		ret = smm_write(t->cpu, SHARED_BASE(m) + w0 * 8, v,
				(size_t)n * 8, &fa);
		t->cnt[C_STORE]++;
		if (ret == 0)
			done = n;
		else if (ret == -ENOMEM)
			atomic_fetch_add(&nomem, 1);
		else if (states_stable(m, p, 1, s1))
			violation("store of %d bytes at %#llx (mm %d, file "
				  "offset %#llx) failed (%d), but its chunk "
				  "was mapped throughout",
				  n * 8,
				  (unsigned long long)(SHARED_BASE(m) + w0 * 8),
				  m, (unsigned long long)(w0 * 8), ret);
		if (ret && fa > SHARED_BASE(m) + w0 * 8)
			done = (int)((fa - (SHARED_BASE(m) + w0 * 8)) / 8);
	}
	for (int i = 0; i < done; i++)
		atomic_store(&lo[w0 + i], v[i]);
	for (int i = done; i < n; i++) /* not stored: no store begun */
		atomic_store(&hi[w0 + i], atomic_load(&lo[w0 + i]));
	t->last_page = p;
}

/* ---- msync and the host file ---- */

static int host_read(void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = pread(hostfd, (char *)buf + done, len - done,
				  (off_t)(off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		done += (size_t)r;
	}
	return 0;
}

static int diff_bytes(uint64_t a, uint64_t b)
{
	int n = 0;

	for (int i = 0; i < 8; i++)
		n += ((a >> (8 * i)) & 0xff) != ((b >> (8 * i)) & 0xff);
	return n;
}

/*
 * After an msync through mm @m of pages [p0, p0 + n): the host file must
 * hold exactly @t's last value of each of its words there (all of them if
 * @all, else those of the chunks that stayed mapped since @s1).
 */
static void check_host(struct fthread *t, int m, uint64_t p0, uint64_t n,
		       bool all, const unsigned long *s1, const char *who)
{
	int ret = host_read(t->buf, n * PAGE, p0 * PAGE);

	if (ret) {
		violation("pread of the host file: %s", strerror(-ret));
		return;
	}
	for (uint64_t p = p0; p < p0 + n; p++) {
		uint64_t c = p / CHUNK_PAGES, c0 = p0 / CHUNK_PAGES;
		int cnt, s0 = first_slot(t->id, p, &cnt);

		if (!all &&
		    (c - c0 >= CHUNKS_MAX || !chunk_stable(m, c, s1[c - c0])))
			continue;
		for (int s = s0; s < SLOTS_PER_PAGE; s += nowners)
			for (int j = 0; j < SLOT_WORDS; j++) {
				uint64_t w = p * WORDS_PER_PAGE +
					     (uint64_t)s * SLOT_WORDS +
					     (uint64_t)j;
				uint64_t want = atomic_load(&lo[w]);
				uint64_t got = t->buf[w - p0 * WORDS_PER_PAGE];

				t->cnt[C_BYTES] += 8;
				if (got == want)
					continue;
				atomic_fetch_add(&lost_bytes,
						 diff_bytes(got, want));
				violation(
					"lost store: after %s's msync(MS_SYNC) "
					"of file pages %llu-%llu through mm "
					"%d, the host file at offset %#llx "
					"(mm %d address %#llx) holds "
					"%#016llx (seq %u), expected "
					"%#016llx (seq %u)",
					who, (unsigned long long)p0,
					(unsigned long long)(p0 + n - 1), m,
					(unsigned long long)(w * 8), m,
					(unsigned long long)(SHARED_BASE(m) +
							     w * 8),
					(unsigned long long)got, seq_of(got),
					(unsigned long long)want, seq_of(want));
			}
	}
}

/* msync(MS_SYNC) pages [p0, p0 + n) through mm @m, then check the host
 * file for @t's words. */
static void msync_check(struct fthread *t, int m, uint64_t p0, uint64_t n,
			const char *who)
{
	unsigned long s1[CHUNKS_MAX];
	int ret;

	states_read(m, p0, n, s1);
	ret = smm_msync(mms[m], SHARED_BASE(m) + p0 * PAGE, n * PAGE,
			SMM_MS_SYNC);
	t->cnt[C_MSYNC]++;
	if (ret == -ENOMEM && !states_stable(m, p0, n, s1)) {
		/* part of it was being remapped: check the stable parts */
	} else if (ret) {
		violation("msync(MS_SYNC) of file pages %llu-%llu through mm "
			  "%d: %d",
			  (unsigned long long)p0,
			  (unsigned long long)(p0 + n - 1), m, ret);
		return;
	}
	check_host(t, m, p0, n, ret == 0, s1, who);
}

static void msync_op(struct fthread *t)
{
	uint64_t p0, n;
	int m = rndn(t, 4) == 0 ? other_mm(t) : t->home;

	if (rndn(t, 8) == 0) {
		p0 = 0;
		n = npages;
	} else {
		p0 = t->last_page - (t->last_page > 0 ? rndn(t, 2) : 0);
		n = 1 + rndn(t, 4);
		if (p0 + n > npages)
			n = npages - p0;
	}
	msync_check(t, m, p0, n,
		    t->id < o.threads ? "a worker" : "a GUP thread");
}

/* ---- DONTNEED, munmap and remap ---- */

/* Read back @t's words of chunk @c through its home mm: exact. */
static void check_own_chunk(struct fthread *t, uint64_t c)
{
	for (uint64_t p = c * CHUNK_PAGES;
	     p < (c + 1) * CHUNK_PAGES && p < npages; p++)
		load_check(t, t->home, own_slot(t, p), SLOT_WORDS);
}

static int64_t map_chunk(int m, uint64_t c, uint64_t len)
{
	return smm_mmap_file(mms[m], SHARED_BASE(m) + c * CHUNK_PAGES * PAGE,
			     len, SMM_PROT_READ | SMM_PROT_WRITE,
			     SMM_MAP_SHARED | SMM_MAP_FIXED, file,
			     c * CHUNK_PAGES * PAGE);
}

static void chunk_op(struct fthread *t, bool remap)
{
	int m = t->home;
	uint64_t c = rndn(t, 2) ? t->last_page / CHUNK_PAGES :
				  rndn(t, (unsigned)nchunks);
	uint64_t addr = SHARED_BASE(m) + c * CHUNK_PAGES * PAGE;
	uint64_t len = (c + 1) * CHUNK_PAGES > npages ?
			       (npages - c * CHUNK_PAGES) * PAGE :
			       CHUNK_PAGES * PAGE;
	atomic_ulong *st = chunk_state(m, c);
	pthread_mutex_t *lk = &clocks[(uint64_t)m * nchunks + c];
	int ret;

	pthread_mutex_lock(lk);
	if (!remap) {
		ret = smm_madvise(mms[m], addr, len, SMM_MADV_DONTNEED);
		if (ret)
			violation("MADV_DONTNEED of chunk %llu of mm %d: %d",
				  (unsigned long long)c, m, ret);
		t->cnt[C_DONTNEED]++;
		pthread_mutex_unlock(lk);
		check_own_chunk(t, c);
		return;
	}
	atomic_store(st, atomic_load(st) + 1); /* odd: being remapped */
	if (rndn(t, 2)) {
		uint64_t v, fa = 0;

		ret = smm_munmap(mms[m], addr, len);
		if (ret)
			violation("munmap of chunk %llu of mm %d: %d",
				  (unsigned long long)c, m, ret);
		/* Nothing is mapped there now: a load must fault. */
		switch_to(t, m);
		ret = smm_read(t->cpu, addr, &v, 8, &fa);
		if (ret != -EFAULT && ret != -ENOMEM)
			violation("load from chunk %llu of mm %d after its "
				  "munmap returned: %d, not -EFAULT",
				  (unsigned long long)c, m, ret);
	}
	int64_t a = map_chunk(m, c, len);

	if (a != (int64_t)addr)
		violation("mmap(MAP_SHARED | MAP_FIXED) of chunk %llu of mm "
			  "%d at %#llx: %lld",
			  (unsigned long long)c, m, (unsigned long long)addr,
			  (long long)a);
	atomic_store_explicit(st, atomic_load(st) + 1, memory_order_release);
	t->cnt[C_REMAP]++;
	pthread_mutex_unlock(lk);
	check_own_chunk(t, c);
}

/* ---- the MAP_PRIVATE mapping ---- */

static void private_op(struct fthread *t)
{
	int m = t->home;
	uint64_t pw = priv_pages * WORDS_PER_PAGE, fa = 0;
	unsigned int dice = rndn(t, 100);
	int ret;

	switch_to(t, m);
	t->cnt[C_PRIVATE]++;
	if (dice < 2) {
		ret = smm_madvise(mms[m], PRIV_BASE(m), priv_pages * PAGE,
				  SMM_MADV_DONTNEED);
		if (ret)
			violation("MADV_DONTNEED of the private mapping of "
				  "mm %d: %d",
				  m, ret);
		memset(t->priv, 0, pw * sizeof(uint64_t));
		memset(t->cow, 0, priv_pages * sizeof(bool));
	} else if (dice < 50) {
		uint64_t w = rndn(t, (unsigned)pw);
		uint64_t v = make_priv(m, w, ++t->seq);

		ret = smm_write(t->cpu, PRIV_BASE(m) + w * 8, &v, 8, &fa);
		if (ret == -ENOMEM) {
			atomic_fetch_add(&nomem, 1);
			return;
		}
		if (ret) {
			violation("private store at %#llx (mm %d): %d",
				  (unsigned long long)(PRIV_BASE(m) + w * 8), m,
				  ret);
			return;
		}
		t->priv[w] = v;
		t->cow[w / WORDS_PER_PAGE] = true;
	} else {
		uint64_t p = rndn(t, (unsigned)priv_pages);
		uint64_t w0 =
			p * WORDS_PER_PAGE + rndn(t, WORDS_PER_PAGE / 64) * 64;
		uint64_t fw0 = priv_first * WORDS_PER_PAGE + w0; /* file's */
		uint64_t lo0[64], hi1[64], v[64];

		for (int i = 0; i < 64; i++)
			lo0[i] = atomic_load(&lo[fw0 + i]);
		ret = smm_read(t->cpu, PRIV_BASE(m) + w0 * 8, v, sizeof(v),
			       &fa);
		if (ret == -ENOMEM) {
			atomic_fetch_add(&nomem, 1);
			return;
		}
		if (ret) {
			violation("private load at %#llx (mm %d): %d",
				  (unsigned long long)(PRIV_BASE(m) + w0 * 8),
				  m, ret);
			return;
		}
		for (int i = 0; i < 64; i++)
			hi1[i] = atomic_load(&hi[fw0 + i]);
		for (int i = 0; i < 64; i++) {
			uint64_t w = w0 + (uint64_t)i;

			if (t->priv[w]) {
				t->cnt[C_BYTES] += 8;
				if (v[i] != t->priv[w])
					violation(
						"private load at %#llx (mm "
						"%d): %#016llx, stored "
						"%#016llx",
						(unsigned long long)(PRIV_BASE(
									     m) +
								     w * 8),
						m, (unsigned long long)v[i],
						(unsigned long long)t->priv[w]);
			} else if (t->cow[p]) {
				/* a copy of some earlier file contents */
				check_word(t, "private load (copied page)",
					   fw0 + (uint64_t)i, v[i], 0, hi1[i],
					   true);
			} else {
				/* not copied: the file's page itself */
				check_word(t, "private load (file page)",
					   fw0 + (uint64_t)i, v[i], lo0[i],
					   hi1[i], false);
			}
		}
	}
}

/* ---- workers ---- */

static void eof_op(struct fthread *t)
{
	int m = rndn(t, 2) ? t->home : other_mm(t);
	uint64_t a = SHARED_BASE(m) + fsize + rndn(t, WORDS_PER_PAGE) * 8;
	uint64_t v = 0, fa = 0;
	bool wr = rndn(t, 2);
	int ret;

	switch_to(t, m);
	ret = wr ? smm_write(t->cpu, a, &v, 8, &fa) :
		   smm_read(t->cpu, a, &v, 8, &fa);
	t->cnt[C_EOF]++;
	if (ret != -ENXIO || fa != a)
		violation("%s past the end of the file at %#llx (mm %d): %d "
			  "(fault address %#llx), not a bus error (-ENXIO)",
			  wr ? "store" : "load", (unsigned long long)a, m, ret,
			  (unsigned long long)fa);
}

static void worker_op(struct fthread *t)
{
	unsigned int dice = rndn(t, 1000);

	if (dice < 350) {
		uint64_t w0 = own_slot(t, pick_page(t));
		int n = 1 + (int)rndn(t, SLOT_WORDS);

		store_words(t, w0 + rndn(t, (unsigned)(SLOT_WORDS - n + 1)), n);
	} else if (dice < 450) {
		int m = rndn(t, 5) == 0 ? -1 :
			rndn(t, 3)	? t->home :
					  other_mm(t);

		t->cnt[C_LOAD_OWN]++;
		load_check(t, m, own_slot(t, pick_page(t)), SLOT_WORDS);
	} else if (dice < 600) {
		uint64_t p = pick_page(t);
		int n = 4 << rndn(t, 5); /* 4..64 words */
		uint64_t w0 =
			p * WORDS_PER_PAGE +
			rndn(t, (unsigned)(WORDS_PER_PAGE / n)) * (uint64_t)n;
		int m = rndn(t, 5) == 0 ? -1 :
			rndn(t, 2)	? t->home :
					  other_mm(t);

		t->cnt[C_LOAD_CROSS]++;
		load_check(t, m, w0, n);
	} else if (dice < 630) {
		msync_op(t);
	} else if (dice < 650) {
		/*
		 * Store, then msync that page at once: little time for
		 * another store to dirty the page again, so a store that
		 * left it clean (a writable entry page_mkclean missed) is
		 * found stale in the host file.
		 */
		uint64_t p = pick_page(t);
		int m = rndn(t, 2) ? t->home : other_mm(t);

		store_words(t, own_slot(t, p), SLOT_WORDS);
		msync_check(t, m, p, 1, "a worker");
	} else if (dice < 665) {
		chunk_op(t, false);
	} else if (dice < 675) {
		chunk_op(t, true);
	} else if (dice < 725) {
		if (t->priv_owner)
			private_op(t);
		else
			store_words(t, own_slot(t, pick_page(t)), SLOT_WORDS);
	} else if (dice < 728) {
		eof_op(t);
	} else if (dice < 729) {
		t->cnt[C_VERIFY]++;
		if (smm_mm_verify(mms[t->home]))
			violation("smm_mm_verify failed on mm %d", t->home);
	} else {
		uint64_t w0 = own_slot(t, pick_page(t));

		store_words(t, w0, SLOT_WORDS);
	}
}

/* ---- GUP threads ---- */

/* A FOLL_LONGTERM write pin of a shared mapping of a file that needs
 * dirty tracking must be refused. */
static void longterm_op(struct fthread *t, int m, uint64_t p)
{
	struct smm_page *pg[1];
	bool fast = rndn(t, 2);
	long got;

	if (fast) {
		switch_to(t, m);
		got = smm_pin_user_pages_fast(
			t->cpu, SHARED_BASE(m) + p * PAGE, 1,
			SMM_FOLL_WRITE | SMM_FOLL_LONGTERM, pg);
	} else {
		got = smm_pin_user_pages(mms[m], SHARED_BASE(m) + p * PAGE, 1,
					 SMM_FOLL_WRITE | SMM_FOLL_LONGTERM,
					 pg);
	}
	t->cnt[C_LONGTERM]++;
	if (got == -EFAULT)
		return;
	violation("%s FOLL_LONGTERM write pin of the shared file mapping at "
		  "%#llx (mm %d): %ld, not -EFAULT",
		  fast ? "fast" : "slow",
		  (unsigned long long)(SHARED_BASE(m) + p * PAGE), m, got);
	if (got > 0)
		smm_unpin_user_pages(pg, (unsigned long)got);
}

static void gup_op(struct fthread *t)
{
	int m = (int)rndn(t, (unsigned)o.mms);
	uint64_t p0 = pick_page(t), n = 1 + rndn(t, 4);
	struct smm_page *pages[4];
	unsigned long s1[CHUNKS_MAX];
	bool fast = rndn(t, 2);
	long got;

	if (rndn(t, 8) == 0) {
		longterm_op(t, m, p0);
		return;
	}
	if (p0 + n > npages)
		n = npages - p0;
	states_read(m, p0, n, s1);
	if (fast) {
		switch_to(t, m);
		got = smm_pin_user_pages_fast(t->cpu,
					      SHARED_BASE(m) + p0 * PAGE, n,
					      SMM_FOLL_WRITE, pages);
	} else {
		got = smm_pin_user_pages(mms[m], SHARED_BASE(m) + p0 * PAGE, n,
					 SMM_FOLL_WRITE, pages);
	}
	t->cnt[C_PIN]++;
	if (got == -ENOMEM) {
		atomic_fetch_add(&nomem, 1);
		return;
	}
	if (states_stable(m, p0, n, s1) && got != (long)n)
		violation("%s write pin of file pages %llu+%llu (mm %d): %ld, "
			  "but they were mapped throughout",
			  fast ? "fast" : "slow", (unsigned long long)p0,
			  (unsigned long long)n, m, got);
	if (got <= 0)
		return;
	if (got > (long)n) {
		violation("pin of %llu pages returned %ld",
			  (unsigned long long)n, got);
		return;
	}
	for (long i = 0; i < got; i++) {
		uint64_t *a = smm_page_address(pages[i]);
		uint64_t p = p0 + (uint64_t)i, w0 = own_slot(t, p);
		uint64_t seq = ++t->seq;
		uint64_t x = p * WORDS_PER_PAGE + rndn(t, WORDS_PER_PAGE);
		uint64_t lo0 = atomic_load(&lo[x]), v, hi1;

		/* some word through the pin: the page is the file's */
		v = dev_load(&a[x % WORDS_PER_PAGE]);
		hi1 = atomic_load(&hi[x]);
		check_word(t, "load through a pin", x, v, lo0, hi1, false);
		/* the device writes our slot */
		for (int j = 0; j < SLOT_WORDS; j++) {
			uint64_t w = w0 + (uint64_t)j;
			uint64_t nv = make_val(t->id, w, seq);

			check_word(t, "load through a pin", w,
				   dev_load(&a[w % WORDS_PER_PAGE]),
				   atomic_load(&lo[w]), atomic_load(&hi[w]),
				   false);
			atomic_store(&hi[w], nv);
			dev_store(&a[w % WORDS_PER_PAGE], nv);
			atomic_store(&lo[w], nv);
		}
		t->last_page = p;
	}
	if (rndn(t, 4) == 0)
		sched_yield(); /* let writeback, DONTNEED, remaps run */
	smm_unpin_user_pages_dirty_lock(pages, (unsigned long)got, true);
	/* The device's data must reach the file at the next MS_SYNC. */
	if (rndn(t, 2))
		msync_check(t, m, p0, (uint64_t)got, "a GUP thread");
}

/* ---- threads ---- */

static void *worker(void *arg)
{
	struct fthread *t = arg;
	bool gup = t->id >= o.threads;

	t->cpu = smm_cpu_attach(pool);
	if (!t->cpu) {
		violation("thread %d cannot attach: %s", t->id,
			  strerror(errno));
		return NULL;
	}
	t->cur = -1;
	switch_to(t, t->home);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		if (gup)
			gup_op(t);
		else
			worker_op(t);
	}
	smm_cpu_switch_mm(t->cpu, NULL);
	smm_cpu_detach(t->cpu);
	for (int i = 0; i < C_NR; i++)
		atomic_fetch_add(&counts[i], t->cnt[i]);
	return NULL;
}

static void *writeback_thread(void *arg)
{
	struct fthread *t = arg;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		bool sync = rndn(t, 8) == 0;
		int ret = smm_file_writeback(file, sync ? SMM_WB_SYNC : 0);

		if (ret)
			violation("smm_file_writeback(%s): %d",
				  sync ? "SMM_WB_SYNC" : "0", ret);
		t->cnt[C_WRITEBACK]++;
		sched_yield(); /* mostly nothing to write: let stores run */
	}
	atomic_fetch_add(&counts[C_WRITEBACK], t->cnt[C_WRITEBACK]);
	return NULL;
}

/* ---- setup and the final checks ---- */

static int make_host_file(void)
{
	char path[] = "/var/tmp/softmm-torture-files-XXXXXX";
	uint64_t *init = malloc(fsize);

	hostfd = mkstemp(path);
	if (hostfd < 0 || !init) {
		fprintf(stderr,
			"torture --files: host file under /var/tmp: %s\n",
			strerror(errno));
		free(init);
		return -1;
	}
	/* Gone from the directory at once: nothing is left behind, whatever
	 * way the run ends; softmm and we use descriptors only. */
	unlink(path);
	for (uint64_t w = 0; w < nwords; w++) {
		init[w] = make_val(owner_of(w), w, 0);
		atomic_store(&lo[w], init[w]);
		atomic_store(&hi[w], init[w]);
	}
	if (pwrite(hostfd, init, fsize, 0) != (ssize_t)fsize || fsync(hostfd)) {
		fprintf(stderr, "torture --files: writing the host file: %s\n",
			strerror(errno));
		free(init);
		return -1;
	}
	free(init);
	return 0;
}

/* Compare @buf (the whole file, from @what) with the model; returns the
 * bytes that differ. */
static long compare_all(const uint64_t *buf, const char *what)
{
	long bad = 0;
	int shown = 0;

	for (uint64_t w = 0; w < nwords; w++) {
		uint64_t want = atomic_load(&lo[w]);

		if (buf[w] == want)
			continue;
		bad += diff_bytes(buf[w], want);
		if (shown++ < 10)
			violation("%s: offset %#llx (owner %d, mm 0 address "
				  "%#llx) holds %#016llx, expected %#016llx",
				  what, (unsigned long long)(w * 8),
				  owner_of(w),
				  (unsigned long long)(SHARED_BASE(0) + w * 8),
				  (unsigned long long)buf[w],
				  (unsigned long long)want);
	}
	atomic_fetch_add(&counts[C_BYTES], (long)fsize);
	return bad;
}

static long check_host_all(uint64_t *buf, const char *what)
{
	int ret = host_read(buf, fsize, 0);

	if (ret) {
		violation("pread of the host file: %s", strerror(-ret));
		return 0;
	}
	return compare_all(buf, what);
}

static void final_checks(struct fthread *ts)
{
	uint64_t *buf = malloc(fsize);
	struct smm_cpu *cpu = smm_cpu_attach(pool);
	long bad;

	if (!buf || !cpu) {
		violation("final checks: %s", strerror(errno));
		free(buf);
		return;
	}
	for (int m = 0; m < o.mms; m++) {
		int ret = smm_msync(mms[m], SHARED_BASE(m), fsize + PAGE,
				    SMM_MS_SYNC);

		atomic_fetch_add(&counts[C_MSYNC], 1);
		if (ret)
			violation("final msync(MS_SYNC) of mm %d: %d", m, ret);
	}
	bad = check_host_all(buf, "after the final msync, the host file");
	atomic_fetch_add(&lost_bytes, bad);
	if (smm_file_pread(file, buf, fsize, 0) != (int64_t)fsize)
		violation("final smm_file_pread failed");
	else
		compare_all(buf, "smm_file_pread at the end");
	for (int m = 0; m < o.mms; m++) {
		uint64_t fa = 0, pw = priv_pages * WORDS_PER_PAGE;
		char what[64];

		smm_cpu_switch_mm(cpu, mms[m]);
		snprintf(what, sizeof(what), "mm %d's shared mapping", m);
		if (smm_read(cpu, SHARED_BASE(m), buf, fsize, &fa))
			violation("final read of %s failed at %#llx", what,
				  (unsigned long long)fa);
		else
			compare_all(buf, what);
		if (smm_read(cpu, PRIV_BASE(m), buf, pw * 8, &fa)) {
			violation("final read of mm %d's private mapping "
				  "failed at %#llx",
				  m, (unsigned long long)fa);
		} else if (m < o.threads) {
			struct fthread *t = &ts[m]; /* its private owner */

			for (uint64_t w = 0; w < pw; w++)
				if (t->priv[w] && buf[w] != t->priv[w])
					violation(
						"mm %d's private word at "
						"%#llx: %#016llx, stored "
						"%#016llx",
						m,
						(unsigned long long)(PRIV_BASE(
									     m) +
								     w * 8),
						(unsigned long long)buf[w],
						(unsigned long long)t->priv[w]);
		}
		if (smm_mm_verify(mms[m]))
			violation("final smm_mm_verify failed on mm %d", m);
	}
	smm_cpu_switch_mm(cpu, NULL);
	smm_cpu_detach(cpu);
	for (int m = 0; m < o.mms; m++) {
		if (smm_munmap(mms[m], SHARED_BASE(m), fsize + PAGE) ||
		    smm_munmap(mms[m], PRIV_BASE(m), priv_pages * PAGE))
			violation("final munmap of mm %d failed", m);
		smm_mm_destroy(mms[m]);
		mms[m] = NULL;
	}
	int ret = smm_file_close(file);

	file = NULL;
	if (ret)
		violation("smm_file_close: %d", ret);
	bad = check_host_all(buf, "after smm_file_close, the host file");
	atomic_fetch_add(&lost_bytes, bad);
	free(buf);
}

int torture_files(const struct torture_opts *opts)
{
	struct fthread *ts;
	pthread_t *tid, wbt;
	struct fthread wb = { 0 };
	int nthreads, rc = 2;
	double t0;

	o = *opts;
	npages = (uint64_t)o.file_pages;
	fsize = npages * PAGE;
	nwords = npages * WORDS_PER_PAGE;
	nchunks = (npages + CHUNK_PAGES - 1) / CHUNK_PAGES;
	priv_pages = npages < PRIV_PAGES ? npages : PRIV_PAGES;
	/*
	 * Beside the hot pages if there is room: the bug build of
	 * page_mkclean() skips the first mapping of a page in the file's
	 * interval tree, and if that were a private one (never cleaned
	 * anyway) the hot pages would hide the bug.
	 */
	priv_first = npages >= HOT_PAGES + priv_pages ? HOT_PAGES : 0;
	nthreads = o.threads + o.gup;
	nowners = nthreads;
	ts = calloc((size_t)nthreads, sizeof(*ts));
	tid = calloc((size_t)nthreads, sizeof(*tid));
	lo = calloc(nwords, sizeof(*lo));
	hi = calloc(nwords, sizeof(*hi));
	cstate = calloc(nchunks * (uint64_t)o.mms, sizeof(*cstate));
	clocks = calloc(nchunks * (uint64_t)o.mms, sizeof(*clocks));
	if (!ts || !tid || !lo || !hi || !cstate || !clocks) {
		perror("torture --files: setup");
		goto out;
	}
	for (uint64_t i = 0; i < nchunks * (uint64_t)o.mms; i++)
		pthread_mutex_init(&clocks[i], NULL);
	for (int i = 0; i < nthreads; i++) {
		struct fthread *t = &ts[i];

		t->id = i;
		t->home = i % o.mms;
		t->rng = o.seed * 1000003 + (uint64_t)i;
		t->buf = malloc(fsize);
		t->priv_owner = i < o.threads && i < o.mms;
		if (t->priv_owner) {
			t->priv = calloc(priv_pages * WORDS_PER_PAGE,
					 sizeof(uint64_t));
			t->cow = calloc(priv_pages, sizeof(bool));
		}
		if (!t->buf || (t->priv_owner && (!t->priv || !t->cow))) {
			perror("torture --files: setup");
			goto out;
		}
	}
	if (make_host_file())
		goto out;

	pool = smm_pool_create(256ULL << 20, SMM_POOL_POISON);
	if (!pool) {
		perror("torture --files: pool");
		goto out;
	}
	file = smm_file_open(pool, hostfd);
	if (!file) {
		fprintf(stderr, "torture --files: smm_file_open: %s\n",
			strerror(errno));
		goto out;
	}
	for (int m = 0; m < o.mms; m++) {
		struct smm_mm_opts mo = { .scheme = o.scheme,
					  .flags = o.mm_flags };
		int64_t a, b;

		mms[m] = smm_mm_create(pool, &mo);
		if (!mms[m]) {
			perror("torture --files: smm_mm_create");
			goto out;
		}
		/* the file and one page past its end (a bus error) */
		a = smm_mmap_file(mms[m], SHARED_BASE(m), fsize + PAGE,
				  SMM_PROT_READ | SMM_PROT_WRITE,
				  SMM_MAP_SHARED | SMM_MAP_FIXED, file, 0);
		b = smm_mmap_file(mms[m], PRIV_BASE(m), priv_pages * PAGE,
				  SMM_PROT_READ | SMM_PROT_WRITE,
				  SMM_MAP_PRIVATE | SMM_MAP_FIXED, file,
				  priv_first * PAGE);
		if (a != (int64_t)SHARED_BASE(m) ||
		    b != (int64_t)PRIV_BASE(m)) {
			fprintf(stderr,
				"torture --files: mapping the file in mm %d: "
				"%lld, %lld\n",
				m, (long long)a, (long long)b);
			goto out;
		}
	}

	t0 = now_s();
	for (int i = 0; i < nthreads; i++)
		pthread_create(&tid[i], NULL, worker, &ts[i]);
	wb.rng = o.seed * 7000003;
	pthread_create(&wbt, NULL, writeback_thread, &wb);
	while (now_s() - t0 < o.seconds && atomic_load(&violations) == 0) {
		struct timespec d = { 0, 20 * 1000 * 1000 };

		nanosleep(&d, NULL);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < nthreads; i++)
		pthread_join(tid[i], NULL);
	pthread_join(wbt, NULL);

	final_checks(ts);
	torture_pool_teardown(pool, &violations, "torture --files", NULL);
	pool = NULL;

	printf("torture --files: seed %llu, %d threads + %d GUP + writeback, "
	       "%d mms, scheme %s%s, file %llu KiB, %.1f s: stores %ld "
	       "(pwrite %ld), loads %ld own + %ld others (pread %ld), "
	       "through another mm %ld, private %ld, dontneed %ld, remap %ld, "
	       "past eof %ld, pins %ld, longterm refused %ld, verify %ld; "
	       "msyncs %ld, writebacks %ld; bytes checked %ld, lost bytes "
	       "%ld; enomem %ld; violations %ld\n",
	       (unsigned long long)o.seed, o.threads, o.gup, o.mms,
	       smm_scheme_name(o.scheme),
	       (o.mm_flags & SMM_MM_NO_VMA_LOCK) ? " (no VMA locks)" : "",
	       (unsigned long long)(fsize >> 10), now_s() - t0,
	       atomic_load(&counts[C_STORE]) + atomic_load(&counts[C_PWRITE]),
	       atomic_load(&counts[C_PWRITE]), atomic_load(&counts[C_LOAD_OWN]),
	       atomic_load(&counts[C_LOAD_CROSS]),
	       atomic_load(&counts[C_PREAD]), atomic_load(&counts[C_CROSS_MM]),
	       atomic_load(&counts[C_PRIVATE]),
	       atomic_load(&counts[C_DONTNEED]), atomic_load(&counts[C_REMAP]),
	       atomic_load(&counts[C_EOF]), atomic_load(&counts[C_PIN]),
	       atomic_load(&counts[C_LONGTERM]), atomic_load(&counts[C_VERIFY]),
	       atomic_load(&counts[C_MSYNC]), atomic_load(&counts[C_WRITEBACK]),
	       atomic_load(&counts[C_BYTES]), atomic_load(&lost_bytes),
	       atomic_load(&nomem), atomic_load(&violations));
	rc = atomic_load(&violations) ? 1 : 0;
out:
	/* after a failed setup: what was made */
	for (int m = 0; m < o.mms; m++)
		if (mms[m]) {
			smm_mm_destroy(mms[m]);
			mms[m] = NULL;
		}
	if (file)
		smm_file_close(file);
	if (pool)
		smm_pool_destroy(pool);
	if (hostfd >= 0)
		close(hostfd);
	for (int i = 0; ts && i < nthreads; i++) {
		free(ts[i].buf);
		free(ts[i].priv);
		free(ts[i].cow);
	}
	for (uint64_t i = 0; clocks && i < nchunks * (uint64_t)o.mms; i++)
		pthread_mutex_destroy(&clocks[i]);
	free(ts);
	free(tid);
	free((void *)lo);
	free((void *)hi);
	free((void *)cstate);
	free(clocks);
	return rc;
}
