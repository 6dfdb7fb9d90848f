/*
 * tools/oracle.c - `softmm oracle`: generates random scripts, runs each on
 * the softmm backend and on the kernel backend, compares the outputs line by
 * line, and shrinks a diverging script to a minimal one.
 *
 * What the generator keeps to, so that the kernel and softmm stay
 * comparable (anything else is a real divergence):
 *  - every range stays inside the window [0x200000000000, 0x300000000000),
 *    except deliberate overflow lengths (which every call rejects first);
 *  - mappings without MAP_NORESERVE stay small (<= 32 MiB): the kernel's
 *    overcommit heuristic refuses huge accountable mappings (and mprotect
 *    making them writable), and softmm does not model commit accounting;
 *    larger mappings (up to 2 TiB) always carry noreserve;
 *  - bytes actually written, touched or populated stay under ~64 MiB per
 *    script (a budget), reads and peeks are bounded too;
 *  - a non-fixed mmap is only emitted with a hint whose whole range is free
 *    (tracked in a shadow interval set), otherwise the kernel would place it
 *    outside the window at a random address; else it becomes MAP_FIXED;
 *  - resident covers at most 4096 pages;
 *  - for schemes that do not model CONFIG_PT_RECLAIM (`none`: Linux before
 *    6.14) MADV_DONTNEED ranges stay under 2 MiB, since the kernel frees a
 *    PTE table that one DONTNEED covers entirely and `pt` would then differ;
 *    with --mask-pt, which compares every line but `pt`, they need not;
 *  - invalid arguments (unaligned, zero length, overflow, unknown prot, flag
 *    and advice bits, unmapped ranges) make up ~10% of the operations;
 *  - every advice softmm knows is generated except MADV_PAGEOUT (what it
 *    drops depends on the kernel's LRU batches: a regression script covers
 *    it), with the flag advice (DONTFORK, HUGEPAGE, ...) about as often as
 *    the rest; mmap takes stack, growsdown and locked now and then; mlock,
 *    mlock2(MLOCK_ONFAULT) and munlock run on ranges around the VMAs
 *    (the kernel backend runs with softmm's RLIMIT_MEMLOCK and without
 *    CAP_IPC_LOCK, so the 8 MiB limit holds on both sides); loads and
 *    stores go now and then just below a growsdown mapping, so that the
 *    stack grows, or runs into the guard gap or the 8 MiB stack limit;
 *  - about a fifth of the operations work on files (gen_file_op()): `file`
 *    creating and resizing up to 8 files of 0 to 64 pages (often not page
 *    multiples), shared and private file mappings and shared anonymous
 *    ones, loads and stores into them (beyond the end of the file too: bus
 *    errors), msync, ftruncate, pread, pwrite, madvise WILLNEED, DONTNEED,
 *    REMOVE and POPULATE_* on them, and their errors. What the page cache
 *    holds (`resident` of a file mapping) must not depend on kernel
 *    heuristics softmm does not model, hence:
 *     - every file mapping is advised MADV_RANDOM (the next operation):
 *       without VM_RAND_READ a fault reads around the page, the read-ahead
 *       window of the device (fadvise RANDOM on the file does not stop
 *       it); no populate or locked on file mmaps (that faults before the
 *       advice), and no NORMAL, SEQUENTIAL or HUGEPAGE advice on ranges
 *       that may hold file mappings (they bring reading around back; for
 *       HUGEPAGE, 2 MiB of it even with VM_RAND_READ and THP disabled);
 *       no PROT_EXEC on file mappings, by mmap or mprotect: a fault in an
 *       executable file mapping reads ahead the read-ahead window from
 *       the page (for large folios of code, Linux 6.16+), VM_RAND_READ
 *       or not;
 *     - pwrite writes less than two pages: ext4 caches larger writes in
 *       large folios, and a truncate through a dirty large folio cannot
 *       split it, so its pages beyond the new end stay cached until
 *       writeback has run (timing);
 *     - no MADV_COLD or MADV_PAGEOUT on ranges that may hold file or shared
 *       mappings: which clean file pages the kernel then evicts depends on
 *       writeback timing, which softmm does not model;
 *     - no MADV_WILLNEED on ranges that may hold file mappings: ext4's
 *       read-ahead leaves out the page that held the end of the file
 *       when a truncate grew it from a size not a multiple of the page
 *       size (seen on this kernel, deterministic, not modelled); the
 *       regression scripts cover WILLNEED on files that did not grow;
 *     - sizes and offsets stay far below ext4's 16 TiB limit;
 *     - shared anonymous mappings stay small (<= 4 MiB): a load there
 *       allocates a page (shmem has no zero page), outside the budget.
 *  - `fork` now and then (at most MAX_FORKS in a script), then `mm N`
 *    switches between the address spaces (and to ones that do not exist);
 *    the generator keeps a shadow per address space (a fork copies it);
 *  - mremap of the ranges it knows: shrink, grow in place (with or
 *    without maymove), moves with maymove,fixed (to anywhere in the
 *    window, over mappings too, resizing or not, with dontunmap), moves
 *    with dontunmap to a free hint, and invalid ones for the errors. A
 *    move without fixed or a hint goes where the kernel finds room,
 *    outside the window at a random address: maymove without fixed is
 *    only emitted where the range can grow in place (by the shadow), and
 *    a script whose kernel run moved one outside the window anyway is not
 *    compared (as for a non-fixed mmap). Growth stays under 32 MiB
 *    (commit accounting);
 * Addresses cluster around a few anchors per script, placed just below and
 * above 2 MiB, 1 GiB and 512 GiB boundaries, so PTE, PMD and PUD tables get
 * allocated, shared by neighbours and freed.
 */
#define _GNU_SOURCE
#include "script.h"

#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "softmm.h"

#define PG	      4096ULL
#define MiB	      (1ULL << 20)
#define GiB	      (1ULL << 30)
#define TiB	      (1ULL << 40)
#define PMD_SZ	      (2 * MiB)
#define PUD_SZ	      GiB
#define PGD_SZ	      (512 * GiB)
#define NORESERVE_MIN (32 * MiB) /* larger mappings always use noreserve */
#define TOUCH_BUDGET  (64 * MiB)

/* ------------------------------------------------------------------ */
/* PRNG: xoshiro256** seeded with splitmix64                            */
/* ------------------------------------------------------------------ */

struct rng {
	uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rnd(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t res = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

static uint64_t below(struct rng *r, uint64_t n)
{
	return n ? rnd(r) % n : 0;
}

static bool chance(struct rng *r, unsigned pct)
{
	return below(r, 100) < pct;
}

/* ------------------------------------------------------------------ */
/* shadow: which ranges of the window are mapped                        */
/* ------------------------------------------------------------------ */

struct iv {
	uint64_t s, e;
};

struct shadow {
	struct iv *v;
	size_t n, cap;
};

static void sh_unmap(struct shadow *sh, uint64_t s, uint64_t e)
{
	struct iv *nv = malloc((sh->n + 2) * sizeof(*nv));
	size_t k = 0;
	for (size_t i = 0; i < sh->n; i++) {
		struct iv x = sh->v[i];
		if (x.e <= s || x.s >= e) {
			nv[k++] = x;
			continue;
		}
		if (x.s < s)
			nv[k++] = (struct iv){ x.s, s };
		if (x.e > e)
			nv[k++] = (struct iv){ e, x.e };
	}
	free(sh->v);
	sh->v = nv;
	sh->n = k;
	sh->cap = k + 2;
}

static void sh_map(struct shadow *sh, uint64_t s, uint64_t e)
{
	sh_unmap(sh, s, e);
	size_t i = 0;
	while (i < sh->n && sh->v[i].s < s)
		i++;
	memmove(&sh->v[i + 1], &sh->v[i], (sh->n - i) * sizeof(*sh->v));
	sh->v[i] = (struct iv){ s, e };
	sh->n++;
}

static bool sh_free(const struct shadow *sh, uint64_t s, uint64_t e)
{
	for (size_t i = 0; i < sh->n; i++)
		if (sh->v[i].s < e && sh->v[i].e > s)
			return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* generator                                                           */
/* ------------------------------------------------------------------ */

/* What the generator knows of one address space (`fork`, `mm N`). */
struct mmshadow {
	struct shadow sh, fsh, ush;
	uint64_t stacks[8];
	int nstacks;
};

#define MAX_FORKS 3 /* forks in a generated script */

struct gen {
	struct rng r;
	struct shadow sh;
	uint64_t stacks[8]; /* starts of growsdown mappings made */
	int nstacks;
	/* the address spaces; the current one's state is in sh, fsh,
	 * stacks (mms[cur] is stale while it is current) */
	struct mmshadow mms[1 + MAX_FORKS];
	int nmm, cur;
	uint64_t anchors[6];
	int nanchors;
	uint64_t budget; /* bytes that may still be touched */
	bool reclaim_ok; /* scheme models PT_RECLAIM: big DONTNEEDs are fine */
	unsigned avoid;	 /* AVOID_* classes not to generate */
	struct shadow fsh; /* ranges that may hold file or shared mappings */
	bool fexists[SCRIPT_FILES];
	uint64_t fsize[SCRIPT_FILES]; /* as far as the generator knows */
	struct shadow ush; /* ranges that may be registered (uffd-register) */
	struct op pending; /* emitted next (MADV_RANDOM after a file mmap) */
	bool has_pending;
};

/* --avoid: classes of operations to leave out, to look past a known
 * divergence until it is fixed. */
#define AVOID_INVALID	     0x1  /* all deliberately invalid operations */
#define AVOID_UNALIGNED_MMAP 0x2  /* mmap fixed/noreplace at unaligned ADDR */
#define AVOID_BAD_BITS	     0x4  /* unknown prot/flag/advice bits */
#define AVOID_POPULATE	     0x8  /* MAP_POPULATE and MADV_POPULATE_* */
#define AVOID_FILES	     0x10 /* every file operation, MAP_SHARED */
#define AVOID_FORK	     0x20 /* fork and mm N */
#define AVOID_MREMAP	     0x40 /* mremap */
#define AVOID_UFFD	     0x80 /* the uffd-* operations */
static const struct {
	const char *name;
	unsigned bit;
} avoid_names[] = {
	{ "invalid", AVOID_INVALID },
	{ "unaligned-mmap", AVOID_UNALIGNED_MMAP },
	{ "bad-bits", AVOID_BAD_BITS },
	{ "populate", AVOID_POPULATE },
	{ "files", AVOID_FILES },
	{ "fork", AVOID_FORK },
	{ "mremap", AVOID_MREMAP },
	{ "uffd", AVOID_UFFD },
};

static uint64_t clamp_addr(uint64_t a)
{
	if (a < SCRIPT_WIN_START)
		a = SCRIPT_WIN_START;
	if (a >= SCRIPT_WIN_END - PG)
		a = SCRIPT_WIN_END - 16 * PG;
	return a & ~(PG - 1);
}

/* A boundary of PTE/PMD/PUD tables, somewhere in the window. */
static uint64_t random_boundary(struct gen *g)
{
	uint64_t span = SCRIPT_WIN_END - SCRIPT_WIN_START;
	uint64_t unit;
	switch (below(&g->r, 3)) {
	case 0:
		unit = PMD_SZ;
		break;
	case 1:
		unit = PUD_SZ;
		break;
	default:
		unit = PGD_SZ;
		break;
	}
	uint64_t a = SCRIPT_WIN_START + below(&g->r, span / unit) * unit;
	if (a == SCRIPT_WIN_START)
		a += unit;
	return a;
}

static uint64_t small_off(struct gen *g)
{
	/* a few pages either side */
	int64_t p = (int64_t)below(&g->r, 9) - 4;
	return (uint64_t)(p * (int64_t)PG);
}

static uint64_t pick_addr(struct gen *g)
{
	unsigned c = (unsigned)below(&g->r, 100);
	if (c < 35 && g->sh.n) {
		struct iv x = g->sh.v[below(&g->r, g->sh.n)];
		switch (below(&g->r, 4)) {
		case 0:
			return clamp_addr(x.s + small_off(g));
		case 1:
			return clamp_addr(x.e + small_off(g));
		case 2:
			return clamp_addr(x.s +
					  below(&g->r, (x.e - x.s) / PG) * PG);
		default:
			return clamp_addr(x.e);
		}
	}
	if (c < 85) {
		uint64_t a = g->anchors[below(&g->r, (uint64_t)g->nanchors)];
		switch (below(&g->r, 4)) {
		case 0:
			return clamp_addr(a + small_off(g));
		case 1:
			return clamp_addr(a + below(&g->r, 1024) * PG);
		case 2:
			return clamp_addr(a - below(&g->r, 1024) * PG);
		default:
			return clamp_addr(a + (below(&g->r, 9) - 4) * PMD_SZ +
					  small_off(g));
		}
	}
	return clamp_addr(random_boundary(g) + small_off(g));
}

static uint64_t pick_len(struct gen *g, bool allow_huge)
{
	unsigned c = (unsigned)below(&g->r, 100);
	uint64_t len;
	if (c < 45)
		len = (1 + below(&g->r, 16)) * PG;
	else if (c < 70)
		len = (1 + below(&g->r, 1024)) * PG;
	else if (c < 82)
		len = PMD_SZ + small_off(g);
	else if (c < 92 || !allow_huge)
		len = (1 + below(&g->r, 8 * 1024)) * PG;
	else if (c < 96)
		len = PUD_SZ + small_off(g);
	else
		len = (1 + below(&g->r, 2048)) * GiB;
	if (chance(&g->r, 5))
		len -= below(&g->r, PG - 1) + 1; /* unaligned length */
	if (!len)
		len = PG;
	return len;
}

static uint64_t fit(uint64_t addr, uint64_t len)
{
	if (addr + len > SCRIPT_WIN_END)
		len = SCRIPT_WIN_END - addr;
	return len;
}

static uint64_t page_up(uint64_t x)
{
	return (x + PG - 1) & ~(PG - 1);
}

/* The part of a shadow interval inside the window: a mapping grown in
 * place by mremap may reach beyond it (the kernel has room there). */
static struct iv window_part(struct iv x)
{
	if (x.e > SCRIPT_WIN_END)
		x.e = SCRIPT_WIN_END;
	if (x.s >= x.e)
		x.s = x.e = 0;
	return x;
}

/* A range for munmap/mprotect/madvise/resident: around existing VMAs. */
static void pick_range(struct gen *g, uint64_t *addr, uint64_t *len,
		       bool allow_huge)
{
	struct iv x = { 0, 0 };

	if (g->sh.n && chance(&g->r, 65))
		x = window_part(g->sh.v[below(&g->r, g->sh.n)]);
	if (x.e > x.s) {
		uint64_t vl = x.e - x.s;
		switch (below(&g->r, 5)) {
		case 0: /* whole VMA */
			*addr = x.s;
			*len = vl;
			break;
		case 1: /* head */
			*addr = x.s;
			*len = (1 + below(&g->r, vl / PG)) * PG;
			break;
		case 2: /* tail */
			*len = (1 + below(&g->r, vl / PG)) * PG;
			*addr = x.e - *len;
			break;
		case 3: /* middle */
			*addr = x.s + below(&g->r, vl / PG) * PG;
			*len = (1 + below(&g->r, (x.e - *addr) / PG)) * PG;
			break;
		default: /* across the VMA's edges */
			*addr = clamp_addr(x.s - below(&g->r, 64) * PG);
			*len = vl + below(&g->r, 128) * PG + PG;
			break;
		}
		if (!allow_huge && *len > 64 * MiB)
			*len = 64 * MiB;
	} else {
		*addr = pick_addr(g);
		*len = pick_len(g, allow_huge);
	}
	*len = fit(*addr, *len);
	if (!*len)
		*len = PG;
}

static const uint64_t overflow_lens[] = {
	0xfffffffffffff000ULL, 0xffffffffffffffffULL, 0xfffffffffffff001ULL,
	0xffffe00000000000ULL, 0xfffff00000000000ULL,
};

static uint64_t random_prot(struct gen *g)
{
	static const uint64_t p[] = {
		SMM_PROT_READ | SMM_PROT_WRITE,
		SMM_PROT_READ | SMM_PROT_WRITE,
		SMM_PROT_READ | SMM_PROT_WRITE,
		SMM_PROT_READ,
		SMM_PROT_READ,
		SMM_PROT_NONE,
		SMM_PROT_READ | SMM_PROT_EXEC,
		SMM_PROT_WRITE,
		SMM_PROT_EXEC,
		7,
		SMM_PROT_WRITE | SMM_PROT_EXEC,
	};
	return p[below(&g->r, sizeof(p) / sizeof(p[0]))];
}

static void gen_mmap(struct gen *g, struct op *op)
{
	op->kind = OP_MMAP;
	uint64_t addr, len;
	if (g->sh.n && chance(&g->r, 30)) {
		/* exactly adjacent to an existing VMA, so it can merge */
		struct iv x = g->sh.v[below(&g->r, g->sh.n)];
		len = pick_len(g, true);
		if (chance(&g->r, 50)) {
			addr = x.e;
		} else {
			addr = x.s - page_up(len);
			if (addr < SCRIPT_WIN_START || addr > x.s)
				addr = x.e;
		}
		addr = clamp_addr(addr);
	} else {
		addr = pick_addr(g);
		len = pick_len(g, true);
	}
	len = fit(addr, len);
	if (!len)
		len = PG;
	uint64_t end = addr + page_up(len);
	uint64_t flags = SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS;
	op->arg = random_prot(g);
	if (page_up(len) > NORESERVE_MIN || chance(&g->r, 15))
		flags |= SMM_MAP_NORESERVE;
	unsigned mode = (unsigned)below(&g->r, 100);
	bool fixed_like = true;
	if (mode < 55) {
		flags |= SMM_MAP_FIXED;
	} else if (mode < 75) {
		flags |= SMM_MAP_FIXED_NOREPLACE;
		if (chance(&g->r, 10))
			flags |= SMM_MAP_FIXED;
	} else if (sh_free(&g->sh, addr, end)) {
		fixed_like = false; /* a hint, placed exactly there */
	} else {
		flags |= SMM_MAP_FIXED;
	}
	if (page_up(len) <= 4 * MiB && g->budget >= page_up(len) &&
	    !(g->avoid & AVOID_POPULATE) && chance(&g->r, 15)) {
		flags |= SMM_MAP_POPULATE;
		g->budget -= page_up(len);
	}
	if (chance(&g->r, 5))
		flags |= SMM_MAP_STACK;
	if (chance(&g->r, 5)) {
		flags |= SMM_MAP_GROWSDOWN;
		g->stacks[g->nstacks++ % 8] = addr;
	} else if (!(g->avoid & AVOID_FILES) && page_up(len) <= 4 * MiB &&
		   chance(&g->r, 8)) {
		/* shared anonymous memory (shmem), small: a load allocates
		 * a page there, not the zero page */
		flags = (flags & ~(uint64_t)SMM_MAP_PRIVATE) | SMM_MAP_SHARED;
		sh_map(&g->fsh, addr, end);
	}
	/* MAP_LOCKED populates: within the budget; past 8 MiB locked the
	 * mapping fails with EAGAIN on both sides. */
	if (page_up(len) <= 4 * MiB && g->budget >= page_up(len) &&
	    chance(&g->r, 4)) {
		flags |= SMM_MAP_LOCKED;
		g->budget -= page_up(len);
	}
	op->addr = addr;
	op->len = len;
	op->flags = flags;
	if ((flags & SMM_MAP_FIXED) || !fixed_like ||
	    sh_free(&g->sh, addr, end))
		sh_map(&g->sh, addr, end);
}

/*
 * A range for loads and stores: usually around the VMAs; now and then just
 * below a growsdown mapping (a few pages, or past its guard gap and
 * toward the 8 MiB stack limit), so that the stack grows or refuses to.
 */
static void pick_access_range(struct gen *g, uint64_t *addr, uint64_t *len)
{
	if (g->nstacks && chance(&g->r, 12)) {
		int n = g->nstacks < 8 ? g->nstacks : 8;
		uint64_t top = g->stacks[below(&g->r, (uint64_t)n)];
		uint64_t down = chance(&g->r, 70) ?
					(1 + below(&g->r, 8)) * PG :
					(1 + below(&g->r, 3 * 1024)) * PG;

		*addr = clamp_addr(top - down);
		*len = (1 + below(&g->r, 4)) * PG;
		*len = fit(*addr, *len);
		return;
	}
	pick_range(g, addr, len, false);
}

/* madvise: the advice that zaps or populates, and the flag advice. */
static void gen_madvise(struct gen *g, struct op *op)
{
	static const uint64_t flag_adv[] = {
		SMM_MADV_NORMAL,      SMM_MADV_RANDOM,	   SMM_MADV_SEQUENTIAL,
		SMM_MADV_DONTFORK,    SMM_MADV_DOFORK,	   SMM_MADV_DONTDUMP,
		SMM_MADV_DODUMP,      SMM_MADV_HUGEPAGE,   SMM_MADV_NOHUGEPAGE,
		SMM_MADV_WIPEONFORK,  SMM_MADV_KEEPONFORK, SMM_MADV_MERGEABLE,
		SMM_MADV_UNMERGEABLE,
	};
	static const uint64_t adv[] = {
		SMM_MADV_DONTNEED,
		SMM_MADV_DONTNEED,
		SMM_MADV_FREE,
		SMM_MADV_WILLNEED,
		SMM_MADV_POPULATE_READ,
		SMM_MADV_POPULATE_WRITE,
		SMM_MADV_COLD,
		SMM_MADV_REMOVE,
		SMM_MADV_DONTNEED_LOCKED,
	};
	uint64_t addr, len;
	bool zap;

	op->kind = OP_MADVISE;
	pick_range(g, &addr, &len, true);
	if (chance(&g->r, 45))
		op->arg = flag_adv[below(&g->r, sizeof(flag_adv) /
							sizeof(flag_adv[0]))];
	else
		op->arg = adv[below(&g->r, sizeof(adv) / sizeof(adv[0]))];
	/* ranges that may hold file mappings: no advice that brings the
	 * kernel's reading around back, nor eviction (see the top) */
	if (!sh_free(&g->fsh, addr, addr + page_up(len))) {
		if (op->arg == SMM_MADV_NORMAL ||
		    op->arg == SMM_MADV_SEQUENTIAL ||
		    op->arg == SMM_MADV_HUGEPAGE)
			op->arg = SMM_MADV_DONTDUMP;
		/* WILLNEED: ext4's read-ahead skips the page of an old,
		 * unaligned end once the file grew (see the top) */
		if (op->arg == SMM_MADV_COLD || op->arg == SMM_MADV_WILLNEED)
			op->arg = SMM_MADV_DONTDUMP;
	}
	zap = op->arg == SMM_MADV_DONTNEED ||
	      op->arg == SMM_MADV_DONTNEED_LOCKED;
	if (zap && g->reclaim_ok && chance(&g->r, 40)) {
		/* whole, aligned PTE tables */
		addr = (addr + PMD_SZ - 1) & ~(PMD_SZ - 1);
		len = (1 + below(&g->r, 4)) * PMD_SZ;
		if (addr + len > SCRIPT_WIN_END)
			addr = SCRIPT_WIN_END - len;
	}
	if (zap && !g->reclaim_ok && len >= PMD_SZ)
		len = (1 + below(&g->r, 511)) * PG;
	if (op->arg == SMM_MADV_POPULATE_READ ||
	    op->arg == SMM_MADV_POPULATE_WRITE) {
		if (len > 4 * MiB)
			len = (1 + below(&g->r, 1024)) * PG;
		if (g->budget < page_up(len) || (g->avoid & AVOID_POPULATE))
			op->arg = SMM_MADV_FREE;
		else
			g->budget -= page_up(len);
	}
	op->addr = addr;
	op->len = fit(addr, len);
}

/*
 * mlock / mlock2(MLOCK_ONFAULT) / munlock on a range around the VMAs,
 * sometimes from an unaligned address (mlock rounds it down). mlock
 * populates what it locks: within the budget, else onfault.
 */
static void gen_mlock(struct gen *g, struct op *op)
{
	uint64_t addr, len;

	pick_range(g, &addr, &len, false);
	if (len > 16 * MiB)
		len = (1 + below(&g->r, 4096)) * PG;
	if (chance(&g->r, 35)) {
		op->kind = OP_MUNLOCK;
	} else {
		op->kind = OP_MLOCK;
		op->arg = chance(&g->r, 30);
		if (!op->arg && g->budget < page_up(len))
			op->arg = 1;
		else if (!op->arg)
			g->budget -= page_up(len);
	}
	if (chance(&g->r, 15)) {
		addr += 1 + below(&g->r, PG - 1);
		len = len > PG ? len - PG : len;
	}
	op->addr = addr;
	op->len = fit(addr, len);
}

/* ~10% of operations: something a syscall must reject (or a quirk). */
static void gen_invalid(struct gen *g, struct op *op)
{
	uint64_t addr, len;
	pick_range(g, &addr, &len, true);
	op->addr = addr;
	op->len = len;
	static const int kinds[] = { OP_MMAP,	 OP_MUNMAP,   OP_MPROTECT,
				     OP_MADVISE, OP_RESIDENT, OP_MLOCK,
				     OP_MUNLOCK };
	op->kind = kinds[below(&g->r, sizeof(kinds) / sizeof(kinds[0]))];
	op->arg = random_prot(g);
	if (op->kind == OP_MLOCK || op->kind == OP_MUNLOCK)
		op->arg = op->kind == OP_MLOCK &&
			  chance(&g->r, 50); /* onfault */
	op->flags = SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS |
		    SMM_MAP_FIXED_NOREPLACE;
	if (op->kind == OP_MADVISE)
		op->arg = SMM_MADV_WILLNEED;
	unsigned what = (unsigned)below(&g->r, 6);
	if (what == 0 && op->kind == OP_MMAP &&
	    (g->avoid & AVOID_UNALIGNED_MMAP))
		what = 1;
	if (what == 3 && (g->avoid & AVOID_BAD_BITS))
		what = 4;
	switch (what) {
	case 0: /* unaligned address */
		op->addr += 1 + below(&g->r, PG - 1);
		break;
	case 1: /* zero length */
		op->len = 0;
		break;
	case 2: /* overflow */
		if (op->kind == OP_RESIDENT)
			op->kind = OP_MUNMAP;
		op->len = overflow_lens[below(
			&g->r,
			sizeof(overflow_lens) / sizeof(overflow_lens[0]))];
		break;
	case 3: /* unknown bits */
		if (op->kind == OP_MMAP || op->kind == OP_MPROTECT ||
		    op->kind == OP_RESIDENT || op->kind == OP_MLOCK ||
		    op->kind == OP_MUNLOCK) {
			if (op->kind != OP_MMAP)
				op->kind = OP_MPROTECT;
			static const uint64_t bad[] = { 0x8,	   0x10,
							0x20,	   0x80,
							0x1000000, 0x2000000 };
			op->arg |= bad[below(&g->r, 6)];
			if (op->kind == OP_MMAP && chance(&g->r, 50)) {
				op->arg = random_prot(g);
				/* unknown flag bits, or no/both private|shared */
				/* bits Linux ignores (0x200000, MAP_DENYWRITE),
				 * no type (0x30), an unknown type (4) */
				static const uint64_t fl[] = {
					0x22 | 0x200000 | 0x100000,
					0x22 | 0x800 | 0x100000,
					0x30 | 0x100000,
					0x24 | 0x100000,
				};
				op->flags = fl[below(&g->r, 4)];
			}
		} else {
			op->kind = OP_MADVISE;
			static const uint64_t adv[] = { 5,  6,	  7,	     30,
							99, 1000, 0x7fffffff };
			op->arg = adv[below(&g->r, 7)];
		}
		break;
	default: { /* an unmapped range */
		uint64_t a =
			clamp_addr(pick_addr(g) + below(&g->r, 8) * PMD_SZ);
		uint64_t l = (1 + below(&g->r, 64)) * PG;
		if (!sh_free(&g->sh, a, a + l))
			break; /* then just an ordinary op on a mapped range */
		op->addr = a;
		op->len = l;
		if (op->kind == OP_MMAP)
			op->kind = OP_MPROTECT;
		if (op->kind == OP_MADVISE)
			op->arg = (uint64_t[]){
				SMM_MADV_DONTNEED,	 SMM_MADV_FREE,
				SMM_MADV_WILLNEED,	 SMM_MADV_POPULATE_READ,
				SMM_MADV_POPULATE_WRITE, SMM_MADV_DONTFORK,
				SMM_MADV_NORMAL,	 SMM_MADV_COLD,
				SMM_MADV_DONTNEED_LOCKED
			}[below(&g->r, 9)];
		break;
	}
	}
	if (op->kind == OP_RESIDENT && op->len > 4096 * PG)
		op->len = 4096 * PG;
	if (!script_op_allowed(op)) /* unaligned near the window's end */
		op->len = SCRIPT_WIN_END - (op->addr & ~(PG - 1)) - PG;
	/* a valid-looking fixed_noreplace mmap that may succeed: track it */
	if (op->kind == OP_MMAP && op->len && op->len < (1ULL << 47) &&
	    !(op->addr & (PG - 1)) && (op->flags & 0xf) == SMM_MAP_PRIVATE) {
		if (page_up(op->len) > NORESERVE_MIN)
			op->flags |= SMM_MAP_NORESERVE;
		if (sh_free(&g->sh, op->addr, op->addr + page_up(op->len)))
			sh_map(&g->sh, op->addr, op->addr + page_up(op->len));
	}
}

/* A file number: usually one of the first four, the ones made first. */
static int pick_file(struct gen *g)
{
	return (int)below(&g->r, chance(&g->r, 80) ? 4 : SCRIPT_FILES);
}

/* A file size: 0 to 64 pages, often not a page multiple. */
static uint64_t file_size(struct gen *g)
{
	uint64_t sz = below(&g->r, 65) * PG;

	if (chance(&g->r, 60))
		sz += below(&g->r, PG);
	return sz;
}

/* A range that may hold a file or shared mapping (else any range). */
static void pick_file_range(struct gen *g, uint64_t *addr, uint64_t *len)
{
	struct iv x = { 0, 0 };

	if (g->fsh.n && chance(&g->r, 85))
		x = window_part(g->fsh.v[below(&g->r, g->fsh.n)]);
	if (x.e > x.s) {
		uint64_t vl = x.e - x.s;

		*addr = x.s + below(&g->r, vl / PG) * PG;
		if (chance(&g->r, 25))
			*addr = x.s;
		*len = (1 + below(&g->r, (x.e - *addr) / PG + 2)) * PG;
		*len = fit(*addr, *len);
		return;
	}
	pick_range(g, addr, len, false);
	if (*len > 128 * PG)
		*len = (1 + below(&g->r, 128)) * PG;
}

/*
 * mmap of file N (or shared anonymous memory) at a page-aligned offset,
 * sometimes an invalid one; a successful one is then advised MADV_RANDOM
 * (g->pending; why: the top of this file).
 */
static void gen_file_mmap(struct gen *g, struct op *op)
{
	int n = pick_file(g);
	uint64_t addr, len, end, pages = g->fsize[n] / PG + 1;
	uint64_t flags;
	unsigned mode = (unsigned)below(&g->r, 100);

	op->kind = OP_MMAP;
	if (g->sh.n && chance(&g->r, 30)) {
		/* next to a VMA: file mappings merge when the offsets follow */
		struct iv x = g->sh.v[below(&g->r, g->sh.n)];

		addr = clamp_addr(x.e);
	} else {
		addr = pick_addr(g);
	}
	len = (1 + below(&g->r, pages + 8)) * PG;
	if (chance(&g->r, 5))
		len = (1 + below(&g->r, 512)) * PG; /* up to 2 MiB */
	if (chance(&g->r, 8))
		len -= below(&g->r, PG - 1) + 1;
	len = fit(addr, len);
	if (!len)
		len = PG;
	end = addr + page_up(len);
	flags = chance(&g->r, 55) ? SMM_MAP_SHARED : SMM_MAP_PRIVATE;
	if (mode < 70)
		flags |= SMM_MAP_FIXED;
	else if (mode < 85)
		flags |= SMM_MAP_FIXED_NOREPLACE;
	else if (!sh_free(&g->sh, addr, end))
		flags |= SMM_MAP_FIXED;
	if (chance(&g->r, 10))
		flags |= SMM_MAP_NORESERVE;
	op->addr = addr;
	op->len = len;
	op->arg = random_prot(g);
	op->flags = flags;
	op->file = n + 1;
	op->off = below(&g->r, pages + 2) * PG;
	if (chance(&g->r, 15)) {
		/* shared anonymous memory, the 4-argument form */
		op->file = 0;
		op->off = 0;
		op->flags |= SMM_MAP_SHARED | SMM_MAP_ANONYMOUS;
		op->flags &= ~(uint64_t)SMM_MAP_PRIVATE;
	} else if (!(g->avoid & AVOID_INVALID) && chance(&g->r, 12)) {
		switch (below(&g->r, 4)) {
		case 0: /* unaligned offset: EINVAL */
			op->off += 1 + below(&g->r, PG - 1);
			break;
		case 1: /* offset + length overflows the page offset */
			op->off = (uint64_t[]){
				0xfffffffffffff000ULL, 0x7ffffffffffff000ULL,
				0xfffffffffff00000ULL
			}[below(&g->r, 3)];
			break;
		case 2: /* a file stack: EINVAL */
			op->flags |= SMM_MAP_GROWSDOWN;
			break;
		default: /* far beyond the end: maps, then bus errors */
			op->off = (1 + below(&g->r, 1 << 20)) * PG;
			break;
		}
	}
	if ((flags & SMM_MAP_FIXED) || sh_free(&g->sh, addr, end)) {
		sh_map(&g->sh, addr, end);
		sh_map(&g->fsh, addr, end);
	} else if (!sh_free(&g->fsh, addr, end)) {
		sh_map(&g->fsh, addr, end); /* conservative */
	}
	if (op->file) {
		g->pending = (struct op){ .kind = OP_MADVISE,
					  .addr = addr,
					  .len = page_up(len),
					  .arg = SMM_MADV_RANDOM };
		g->has_pending = true;
	}
}

/* One operation on files or shared mappings (about 18% of them). */
static void gen_file_op(struct gen *g, struct op *op)
{
	unsigned c = (unsigned)below(&g->r, 100);
	uint64_t addr, len;
	int n;

	if (c < 12 || (c < 40 && !g->fexists[0])) {
		/* create or resize */
		n = pick_file(g);
		op->kind = OP_FILE;
		op->file = n + 1;
		op->len = file_size(g);
		g->fexists[n] = true;
		g->fsize[n] = op->len;
		return;
	}
	if (c < 38) {
		gen_file_mmap(g, op);
		return;
	}
	if (c < 62) {
		/* loads and stores, past the end of the file too */
		static const int kinds[] = { OP_READ, OP_PEEK, OP_WRITE,
					     OP_TOUCH };

		op->kind = kinds[below(&g->r, 4)];
		pick_file_range(g, &addr, &len);
		if (op->kind == OP_READ || op->kind == OP_WRITE) {
			if (chance(&g->r, 50))
				addr += below(&g->r, PG);
			len = 1 + below(&g->r, chance(&g->r, 70) ? PG : 8 * PG);
		}
		len = fit(addr, len);
		if ((op->kind == OP_WRITE || op->kind == OP_TOUCH) &&
		    g->budget < page_up(len) + PG)
			op->kind = OP_PEEK;
		else if (op->kind == OP_WRITE || op->kind == OP_TOUCH)
			g->budget -= page_up(len) + PG;
		op->addr = addr;
		op->len = len;
		op->arg = below(&g->r, 256);
		if (op->kind != OP_WRITE)
			op->arg = 0;
		return;
	}
	if (c < 70) {
		static const uint64_t fl[] = {
			SCRIPT_MS_SYNC,
			SCRIPT_MS_SYNC,
			SCRIPT_MS_ASYNC,
			SCRIPT_MS_INVALIDATE,
			SCRIPT_MS_SYNC | SCRIPT_MS_INVALIDATE,
			SCRIPT_MS_ASYNC | SCRIPT_MS_INVALIDATE,
			0,
		};
		static const uint64_t bad[] = {
			SCRIPT_MS_SYNC | SCRIPT_MS_ASYNC,
			8,
			0x10,
			0x7fffffff,
		};

		op->kind = OP_MSYNC;
		pick_file_range(g, &addr, &len);
		op->arg = fl[below(&g->r, sizeof(fl) / sizeof(fl[0]))];
		if (chance(&g->r, 10)) /* across holes: ENOMEM */
			len += below(&g->r, 64) * PG;
		op->addr = addr;
		op->len = fit(addr, len);
		if (!(g->avoid & AVOID_INVALID) && chance(&g->r, 20)) {
			if (chance(&g->r, 50)) {
				op->arg = bad[below(&g->r, 4)];
			} else {
				/* unaligned: EINVAL; within the window */
				op->addr += 1 + below(&g->r, PG - 1);
				op->len = op->len > PG ? op->len - PG : 0;
			}
		}
		return;
	}
	if (c < 78) {
		n = pick_file(g);
		op->kind = OP_FTRUNCATE;
		op->file = n + 1;
		op->len = file_size(g);
		if (g->fexists[n])
			g->fsize[n] = op->len;
		return;
	}
	if (c < 90) {
		/* pread/pwrite around the file: pwrite less than two pages
		 * (large folios, the top of this file) */
		n = pick_file(g);
		op->kind = chance(&g->r, 50) ? OP_PREAD : OP_PWRITE;
		op->file = n + 1;
		op->off = below(&g->r, g->fsize[n] + 4 * PG);
		if (chance(&g->r, 40))
			op->off &= ~(PG - 1);
		if (op->kind == OP_PREAD && chance(&g->r, 5))
			op->off = (1 + below(&g->r, 64)) * GiB;
		op->len = 1 + below(&g->r, 2 * PG - 1);
		if (op->kind == OP_PREAD && chance(&g->r, 30))
			op->len = below(&g->r, 16 * PG + 1);
		if (op->kind == OP_PWRITE) {
			op->arg = below(&g->r, 256);
			if (g->fexists[n] && op->off + op->len > g->fsize[n])
				g->fsize[n] = op->off + op->len;
		}
		return;
	}
	/* madvise on file ranges */
	{
		/* no WILLNEED: see the top (regression scripts cover it) */
		static const uint64_t adv[] = {
			SMM_MADV_DONTNEED,	  SMM_MADV_DONTNEED,
			SMM_MADV_REMOVE,	  SMM_MADV_REMOVE,
			SMM_MADV_POPULATE_READ,	  SMM_MADV_POPULATE_WRITE,
			SMM_MADV_DONTNEED_LOCKED, SMM_MADV_FREE,
		};

		op->kind = OP_MADVISE;
		pick_file_range(g, &addr, &len);
		op->arg = adv[below(&g->r, sizeof(adv) / sizeof(adv[0]))];
		if ((op->arg == SMM_MADV_POPULATE_READ ||
		     op->arg == SMM_MADV_POPULATE_WRITE) &&
		    (g->budget < page_up(len) || (g->avoid & AVOID_POPULATE)))
			op->arg = SMM_MADV_DONTNEED;
		else if (op->arg == SMM_MADV_POPULATE_READ ||
			 op->arg == SMM_MADV_POPULATE_WRITE)
			g->budget -= page_up(len);
		op->addr = addr;
		op->len = len;
	}
}

static void sh_copy(struct shadow *dst, const struct shadow *src)
{
	dst->n = src->n;
	dst->cap = src->n + 2;
	dst->v = malloc(dst->cap * sizeof(*dst->v));
	if (src->n)
		memcpy(dst->v, src->v, src->n * sizeof(*dst->v));
}

static void mm_save(struct gen *g)
{
	struct mmshadow *m = &g->mms[g->cur];

	m->sh = g->sh;
	m->fsh = g->fsh;
	m->ush = g->ush;
	memcpy(m->stacks, g->stacks, sizeof(m->stacks));
	m->nstacks = g->nstacks;
}

static void mm_load(struct gen *g, int n)
{
	struct mmshadow *m = &g->mms[n];

	g->cur = n;
	g->sh = m->sh;
	g->fsh = m->fsh;
	g->ush = m->ush;
	memcpy(g->stacks, m->stacks, sizeof(m->stacks));
	g->nstacks = m->nstacks;
}

/* fork (a child with a copy of the current shadow) or mm N. Returns false
 * if neither fits now. */
static bool gen_fork_mm(struct gen *g, struct op *op)
{
	if (g->nmm < 1 + MAX_FORKS && chance(&g->r, 25)) {
		struct mmshadow *c = &g->mms[g->nmm++];

		op->kind = OP_FORK;
		sh_copy(&c->sh, &g->sh);
		sh_copy(&c->fsh, &g->fsh);
		/* fork drops registration in the child */
		memset(&c->ush, 0, sizeof(c->ush));
		memcpy(c->stacks, g->stacks, sizeof(c->stacks));
		c->nstacks = g->nstacks;
		return true;
	}
	if (g->nmm < 2)
		return false;
	op->kind = OP_MM;
	if (!(g->avoid & AVOID_INVALID) && chance(&g->r, 8)) {
		op->arg = chance(&g->r, 50) ? (uint64_t)g->nmm :
					      1000 + below(&g->r, 1000);
		return true;
	}
	op->arg = below(&g->r, (uint64_t)g->nmm);
	mm_save(g);
	mm_load(g, (int)op->arg);
	return true;
}

/* The intervals of @sh inside [old, old + olen) also at @naddr, as far as
 * nlen goes: where a move puts what may be file or shared mappings (only
 * those, not the whole range: the file generators take ranges from it). */
static void sh_translate(struct shadow *sh, uint64_t old, uint64_t olen,
			 uint64_t naddr, uint64_t nlen)
{
	struct iv add[64];
	size_t n = 0;

	for (size_t i = 0; i < sh->n && n < 64; i++) {
		uint64_t s = sh->v[i].s > old ? sh->v[i].s : old;
		uint64_t e = sh->v[i].e < old + olen ? sh->v[i].e : old + olen;

		if (s >= e || s - old >= nlen)
			continue;
		if (e - old > nlen)
			e = old + nlen;
		add[n++] = (struct iv){ naddr + (s - old), naddr + (e - old) };
	}
	for (size_t i = 0; i < n; i++)
		sh_map(sh, add[i].s, add[i].e);
}

/*
 * mremap of a range the shadow knows: shrink, grow in place, move to a
 * fixed address, dontunmap to a free hint, or an invalid call.
 */
static void gen_mremap(struct gen *g, struct op *op)
{
	struct iv x = { 0, 0 };
	uint64_t old, olen, nlen, naddr = 0, flags = 0;
	unsigned c = (unsigned)below(&g->r, 100);

	op->kind = OP_MREMAP;
	if (g->sh.n && chance(&g->r, 90)) {
		x = g->sh.v[below(&g->r, g->sh.n)];
	} else {
		pick_range(g, &x.s, &olen, false);
		x.e = x.s + page_up(olen);
	}
	/* a tail of the interval, or all of it */
	olen = chance(&g->r, 50) ? x.e - x.s :
				   (1 + below(&g->r, (x.e - x.s) / PG)) * PG;
	old = x.e - olen;
	nlen = olen;
	if (c < 20) { /* shrink */
		if (olen > PG)
			nlen = (1 + below(&g->r, olen / PG - 1)) * PG;
		flags = chance(&g->r, 30) ? SMM_MREMAP_MAYMOVE : 0;
		sh_unmap(&g->sh, old + nlen, old + olen);
		sh_unmap(&g->fsh, old + nlen, old + olen);
	} else if (c < 40) { /* grow in place */
		uint64_t grow =
			(1 + below(&g->r, chance(&g->r, 70) ? 16 : 1024)) * PG;

		nlen = olen + grow;
		if (nlen > 32 * MiB)
			nlen = olen > 32 * MiB ? olen : 32 * MiB;
		if (old + nlen > SCRIPT_WIN_END)
			nlen = SCRIPT_WIN_END - old;
		if (g->budget < nlen - olen) /* a locked one is populated */
			nlen = olen;
		else
			g->budget -= nlen - olen;
		/* maymove only where it can grow in place (else the kernel
		 * moves it outside the window) */
		if (sh_free(&g->sh, x.e, old + nlen)) {
			if (chance(&g->r, 40))
				flags = SMM_MREMAP_MAYMOVE;
			sh_map(&g->sh, old, old + nlen);
			/* a file mapping at the end grows as one */
			if (!sh_free(&g->fsh, x.e - PG, x.e))
				sh_map(&g->fsh, x.e, old + nlen);
		}
	} else if (c < 70 || (c < 80 && (g->avoid & AVOID_INVALID))) {
		/* move to a fixed address, maybe resizing or keeping the old
		 * range (dontunmap: no resize) */
		flags = SMM_MREMAP_MAYMOVE | SMM_MREMAP_FIXED;
		naddr = pick_addr(g);
		if (chance(&g->r, 20)) {
			flags |= SMM_MREMAP_DONTUNMAP;
		} else if (chance(&g->r, 40)) {
			nlen = (1 + below(&g->r, 2 * olen / PG + 1)) * PG;
			if (nlen > olen && nlen > 32 * MiB)
				nlen = olen;
		}
		if (naddr + nlen > SCRIPT_WIN_END)
			naddr = (SCRIPT_WIN_END - nlen) & ~(PMD_SZ - 1);
		if (chance(&g->r, 30) && olen % PMD_SZ == 0)
			naddr &= ~(PMD_SZ - 1); /* whole tables may move */
	} else if (c < 80) {			/* dontunmap to a free hint */
		flags = SMM_MREMAP_MAYMOVE | SMM_MREMAP_DONTUNMAP;
		naddr = pick_addr(g);
		if (naddr + nlen > SCRIPT_WIN_END)
			naddr = (SCRIPT_WIN_END - nlen) & ~(PMD_SZ - 1);
		if (!sh_free(&g->sh, naddr, naddr + nlen))
			flags |= SMM_MREMAP_FIXED;
	} else { /* invalid */
		static const uint64_t bad[] = { 8, 0x10, 0x80, 0x80000000 };

		switch (below(&g->r, 8)) {
		case 0: /* unaligned */
			old += 1 + below(&g->r, PG - 1);
			break;
		case 1: /* unknown flag bits */
			flags = bad[below(&g->r, 4)] |
				(chance(&g->r, 50) ? SMM_MREMAP_MAYMOVE : 0);
			break;
		case 2: /* dontunmap or fixed without maymove */
			flags = chance(&g->r, 50) ? SMM_MREMAP_DONTUNMAP :
						    SMM_MREMAP_FIXED;
			naddr = pick_addr(g);
			break;
		case 3: /* overlapping */
			flags = SMM_MREMAP_MAYMOVE | SMM_MREMAP_FIXED;
			naddr = old + below(&g->r, olen / PG + 1) * PG -
				below(&g->r, 2) * PG;
			break;
		case 4: /* zero new length; zero old length (private) */
			if (chance(&g->r, 50))
				nlen = 0;
			else if (sh_free(&g->fsh, old, old + olen))
				olen = 0, flags = SMM_MREMAP_MAYMOVE;
			break;
		case 5: /* resize across the interval's end */
			olen += (1 + below(&g->r, 4)) * PG;
			nlen = olen + PG;
			break;
		case 6: /* dontunmap resizing */
			flags = SMM_MREMAP_MAYMOVE | SMM_MREMAP_DONTUNMAP;
			naddr = pick_addr(g);
			nlen = olen + PG;
			break;
		default: /* an unmapped range */
			old = clamp_addr(pick_addr(g) +
					 below(&g->r, 8) * PMD_SZ);
			olen = (1 + below(&g->r, 16)) * PG;
			nlen = olen + (chance(&g->r, 50) ? PG : 0);
			if (!sh_free(&g->sh, old, old + olen))
				nlen = olen; /* nothing happens */
			break;
		}
		op->addr = old;
		op->len = olen;
		op->arg = nlen;
		op->flags = flags;
		op->off = naddr;
		if (!script_op_allowed(op)) { /* near the window's end */
			op->kind = OP_MAPS;
			op->addr = op->len = op->arg = op->flags = op->off = 0;
		}
		return;
	}
	op->addr = old;
	op->len = olen;
	op->arg = nlen;
	op->flags = flags;
	op->off = naddr;
	if (!script_op_allowed(op) || naddr + nlen > SCRIPT_WIN_END) {
		/* near the window's end: none (before the shadow changes) */
		op->kind = OP_MAPS;
		op->addr = op->len = op->arg = op->flags = op->off = 0;
		return;
	}
	if (naddr && (flags & SMM_MREMAP_MAYMOVE) &&
	    ((flags & SMM_MREMAP_FIXED) ||
	     sh_free(&g->sh, naddr, naddr + nlen))) {
		/* The old range is kept in the shadow: the move may fail
		 * (a hole at its start, a resize across VMAs), and what the
		 * shadow calls free must be free. A file mapping at the end
		 * of the old range may grow with the move: all of the growth
		 * may be file then. */
		sh_map(&g->sh, naddr, naddr + nlen);
		sh_translate(&g->fsh, old, olen, naddr, nlen);
		if (nlen > olen &&
		    !sh_free(&g->fsh, old + olen - PG, old + olen))
			sh_map(&g->fsh, naddr + olen, naddr + nlen);
	}
}

/*
 * The uffd-* operations: register and unregister ranges around the VMAs,
 * copy, zeropage, write-protect and wake pages of registered ranges,
 * switch the handler's policy, leave it a munmap or mprotect to make at
 * its next event (uffd-next), and their errors; and mlock and
 * MADV_POPULATE_* of registered pages, which wait for the handler. No
 * registration of ranges that may hold file or shared mappings (softmm
 * registers only private anonymous memory): gen_script() checks them.
 */
static void gen_uffd(struct gen *g, struct op *op)
{
	unsigned c = (unsigned)below(&g->r, 100);
	uint64_t addr, len;

	pick_range(g, &addr, &len, false);
	if (len > 16 * MiB)
		len = (1 + below(&g->r, 4096)) * PG;
	/* most of the ioctls on pages of a registered range */
	if (c >= 30 && g->ush.n && chance(&g->r, 85)) {
		struct iv x = window_part(g->ush.v[below(&g->r, g->ush.n)]);

		if (x.e > x.s) {
			addr = x.s + below(&g->r, (x.e - x.s) / PG) * PG;
			len = (1 + below(&g->r, 4)) * PG;
			if (chance(&g->r, 10))
				len = x.e - addr; /* to the end, and on */
		}
	}
	op->addr = addr;
	op->len = fit(addr, len);
	if (c < 22) {
		static const uint64_t modes[] = {
			SMM_UFFD_REGISTER_MODE_MISSING,
			SMM_UFFD_REGISTER_MODE_MISSING,
			SMM_UFFD_REGISTER_MODE_WP,
			SMM_UFFD_REGISTER_MODE_MISSING |
				SMM_UFFD_REGISTER_MODE_WP,
		};

		op->kind = OP_UFFD_REGISTER;
		op->arg = modes[below(&g->r, 4)];
	} else if (c < 30) {
		op->kind = OP_UFFD_UNREGISTER;
	} else if (c < 50) {
		op->kind = OP_UFFD_COPY;
		op->arg = below(&g->r, 256);
		if (chance(&g->r, 25))
			op->flags = chance(&g->r, 50) ?
					    SMM_UFFD_COPY_MODE_DONTWAKE :
					    SMM_UFFD_COPY_MODE_WP;
		if (op->len > 64 * PG)
			op->len = 64 * PG;
	} else if (c < 62) {
		op->kind = OP_UFFD_ZEROPAGE;
		op->flags =
			chance(&g->r, 20) ? SMM_UFFD_ZEROPAGE_MODE_DONTWAKE : 0;
		if (op->len > 64 * PG)
			op->len = 64 * PG;
	} else if (c < 82) {
		op->kind = OP_UFFD_WP;
		op->flags = chance(&g->r, 55) ? SMM_UFFD_WP_MODE_WP : 0;
		if (chance(&g->r, 15))
			op->flags |= SMM_UFFD_WP_MODE_DONTWAKE;
	} else if (c < 88) {
		op->kind = OP_UFFD_WAKE;
	} else if (c < 91) {
		/* the handler unmaps or mprotects at its next event, while
		 * the fault or the populate that raised it waits */
		static const uint64_t prots[] = {
			SMM_PROT_READ,
			SMM_PROT_READ | SMM_PROT_WRITE,
			SMM_PROT_NONE,
			SMM_PROT_READ | SMM_PROT_EXEC,
		};

		op->kind = OP_UFFD_NEXT;
		op->flags = chance(&g->r, 30) ? UFFD_NEXT_MUNMAP :
						UFFD_NEXT_MPROTECT;
		op->arg = prots[below(&g->r, 4)];
	} else if (c < 97 && !(g->avoid & AVOID_POPULATE)) {
		/* populate registered pages: each missing one waits for the
		 * handler (write-protected ones too, for a write) */
		if (chance(&g->r, 40)) {
			op->kind = OP_MLOCK;
		} else {
			op->kind = OP_MADVISE;
			op->arg = chance(&g->r, 50) ? SMM_MADV_POPULATE_READ :
						      SMM_MADV_POPULATE_WRITE;
		}
	} else {
		op->kind = OP_UFFD_POLICY;
		op->flags = chance(&g->r, 50) ? UFFD_POLICY_COPY :
						UFFD_POLICY_ZERO;
		op->arg = op->flags == UFFD_POLICY_COPY ? below(&g->r, 256) : 0;
		op->addr = op->len = 0;
		return;
	}
	if (op->kind == OP_UFFD_COPY || op->kind == OP_UFFD_ZEROPAGE ||
	    op->kind == OP_MLOCK || op->kind == OP_MADVISE) {
		if (g->budget < page_up(op->len))
			op->len = PG;
		if (g->budget >= page_up(op->len))
			g->budget -= page_up(op->len);
	}
	if (op->kind == OP_MLOCK || op->kind == OP_MADVISE)
		return; /* their errors come with the others' (gen_op()) */
	if (!(g->avoid & AVOID_INVALID) && chance(&g->r, 8)) {
		switch (below(&g->r, 4)) {
		case 0:
			op->addr += 1 + below(&g->r, PG - 1);
			break;
		case 1:
			op->len = chance(&g->r, 50) ? 0 : op->len - 1;
			break;
		case 2:
			op->len = overflow_lens[below(
				&g->r, sizeof(overflow_lens) /
					       sizeof(overflow_lens[0]))];
			break;
		default: /* unknown mode bits */
			if (op->kind == OP_UFFD_REGISTER)
				op->arg |= chance(&g->r, 50) ? 4 : 0x10;
			else if (op->kind == OP_UFFD_NEXT) /* a bad PROT */
				op->arg |= chance(&g->r, 50) ? 8 : 0x100;
			else if (op->kind != OP_UFFD_UNREGISTER &&
				 op->kind != OP_UFFD_WAKE)
				op->flags |= chance(&g->r, 50) ? 4 : 0x100;
			break;
		}
		if (!script_op_allowed(op)) /* unaligned near the end */
			op->len = SCRIPT_WIN_END - (op->addr & ~(PG - 1)) - PG;
	}
}

/*
 * What gen_script() keeps uffd scripts to (the top of this file): no
 * registration of ranges that may hold file or shared mappings; accesses
 * and populating (mlock, MADV_POPULATE_*) of ranges that may be
 * registered stay short. Tracks the shadow of registered ranges.
 */
static void uffd_filter(struct gen *g, struct op *op)
{
	uint64_t end = op->addr + page_up(op->len);
	bool sane = op->len && end > op->addr && !(op->addr & (PG - 1));
	/*
	 * An access or a populate over a registered range raises an event
	 * per missing page, which the kernel's handler thread serves in
	 * tens of microseconds: 256 pages at most there.
	 */
	bool cap = end > op->addr &&
		   !sh_free(&g->ush, op->addr & ~(PG - 1), end) &&
		   op->len > 256 * PG;

	switch (op->kind) {
	case OP_UFFD_REGISTER:
		if (!sane)
			break;
		if (!sh_free(&g->fsh, op->addr, end))
			op->kind = OP_UFFD_UNREGISTER;
		else
			sh_map(&g->ush, op->addr, end);
		break;
	case OP_MLOCK:
	case OP_WRITE:
	case OP_TOUCH:
	case OP_READ:
	case OP_PEEK:
		if (cap)
			op->len = 256 * PG;
		break;
	case OP_MADVISE:
		if (cap && (op->arg == SMM_MADV_POPULATE_READ ||
			    op->arg == SMM_MADV_POPULATE_WRITE))
			op->len = 256 * PG;
		break;
	case OP_MUNMAP:
		if (sane)
			sh_unmap(&g->ush, op->addr, end);
		break;
	case OP_MREMAP: {
		uint64_t ol = page_up(op->len), nl = page_up(op->arg);

		/*
		 * A file or shared range stays one (a shared anonymous
		 * mapping grown in place was registered: seed 1501); a
		 * registered one grown in place stays registered (and a
		 * locked one populates its growth: seed 1503). Moved ones
		 * lose their registration, but the shadows may say too
		 * much, never too little.
		 */
		struct shadow *sw[] = { &g->fsh, &g->ush };

		for (int i = 0; i < 2; i++) {
			if (op->addr + ol > op->addr &&
			    op->addr + nl > op->addr &&
			    !sh_free(sw[i], op->addr, op->addr + ol)) {
				sh_map(sw[i], op->addr, op->addr + nl);
				if (op->off && op->off + nl > op->off)
					sh_map(sw[i], op->off, op->off + nl);
			}
		}
		break;
	}
	}
}

static void gen_op(struct gen *g, struct op *op)
{
	memset(op, 0, sizeof(*op));
	if (g->has_pending) {
		*op = g->pending;
		g->has_pending = false;
		return;
	}
	if (!(g->avoid & AVOID_FILES) && chance(&g->r, 18)) {
		gen_file_op(g, op);
		return;
	}
	if (chance(&g->r, 10) && !(g->avoid & AVOID_INVALID)) {
		gen_invalid(g, op);
		return;
	}
	if (!(g->avoid & AVOID_FORK) && chance(&g->r, 3) && gen_fork_mm(g, op))
		return;
	if (!(g->avoid & AVOID_MREMAP) && chance(&g->r, 6)) {
		gen_mremap(g, op);
		return;
	}
	if (!(g->avoid & AVOID_UFFD) && chance(&g->r, 7)) {
		gen_uffd(g, op);
		return;
	}
	unsigned c = (unsigned)below(&g->r, 100);
	uint64_t addr, len;
	if (c < 22) {
		gen_mmap(g, op);
	} else if (c < 31) {
		op->kind = OP_MUNMAP;
		pick_range(g, &addr, &len, true);
		op->addr = addr;
		op->len = len;
		sh_unmap(&g->sh, addr, addr + page_up(len));
		sh_unmap(&g->fsh, addr, addr + page_up(len));
	} else if (c < 41) {
		op->kind = OP_MPROTECT;
		pick_range(g, &addr, &len, true);
		op->addr = addr;
		op->len = len;
		op->arg = random_prot(g);
	} else if (c < 54) {
		gen_madvise(g, op);
	} else if (c < 58) {
		gen_mlock(g, op);
	} else if (c < 66) {
		op->kind = OP_WRITE;
		pick_access_range(g, &addr, &len);
		if (chance(&g->r, 60))
			addr += below(&g->r, PG);
		len = 1 + below(&g->r, chance(&g->r, 80) ? 3 * PG : 64 * PG);
		if (g->budget < len + PG) {
			op->kind = OP_READ;
		} else {
			g->budget -= len + PG;
			op->arg = below(&g->r, 256);
		}
		op->addr = addr;
		op->len = fit(addr, len);
	} else if (c < 74) {
		op->kind = OP_TOUCH;
		pick_access_range(g, &addr, &len);
		if (len > 8 * MiB)
			len = 8 * MiB;
		if (g->budget < page_up(len))
			op->kind = OP_PEEK;
		else
			g->budget -= page_up(len);
		op->addr = addr;
		op->len = len;
	} else if (c < 79) {
		op->kind = OP_READ;
		pick_access_range(g, &addr, &len);
		if (chance(&g->r, 50))
			addr += below(&g->r, PG);
		op->addr = addr;
		op->len = fit(addr,
			      1 + below(&g->r,
					chance(&g->r, 80) ? 3 * PG : 32 * PG));
	} else if (c < 84) {
		op->kind = OP_PEEK;
		pick_access_range(g, &addr, &len);
		op->addr = addr;
		op->len = len;
	} else if (c < 89) {
		op->kind = OP_RESIDENT;
		pick_range(g, &addr, &len, false);
		if (len > 4096 * PG)
			len = (1 + below(&g->r, 4096)) * PG;
		op->addr = addr;
		op->len = fit(addr, len);
	} else if (c < 93) {
		op->kind = OP_PT;
	} else if (c < 97) {
		op->kind = OP_MAPS;
	} else {
		op->kind = OP_VMFLAGS;
	}
}

static void gen_script(uint64_t seed, size_t nops, bool reclaim_ok,
		       unsigned avoid, struct script *s)
{
	struct gen g;
	memset(&g, 0, sizeof(g));
	rng_seed(&g.r, seed);
	g.budget = TOUCH_BUDGET;
	g.reclaim_ok = reclaim_ok;
	g.avoid = avoid;
	g.nmm = 1;
	g.nanchors = 2 + (int)below(&g.r, 4);
	for (int i = 0; i < g.nanchors; i++)
		g.anchors[i] = random_boundary(&g);
	for (size_t i = 0; i < nops; i++) {
		struct op op;
		gen_op(&g, &op);
		/* no PROT_EXEC on file mappings (the top of this file) */
		if ((op.kind == OP_MMAP && op.file) ||
		    (op.kind == OP_MPROTECT &&
		     !sh_free(&g.fsh, op.addr, op.addr + page_up(op.len))))
			op.arg &= ~(uint64_t)SMM_PROT_EXEC;
		/* nor read-ahead or eviction advice where files may be
		 * mapped, whichever generator made it (the top) */
		if (op.kind == OP_MADVISE &&
		    op.addr + page_up(op.len) > op.addr &&
		    !sh_free(&g.fsh, op.addr, op.addr + page_up(op.len)) &&
		    (op.arg == SMM_MADV_WILLNEED || op.arg == SMM_MADV_NORMAL ||
		     op.arg == SMM_MADV_SEQUENTIAL ||
		     op.arg == SMM_MADV_HUGEPAGE || op.arg == SMM_MADV_COLD ||
		     op.arg == SMM_MADV_PAGEOUT))
			op.arg = SMM_MADV_DONTDUMP;
		if (op.kind == OP_MMAP && op.file &&
		    (op.flags & SMM_MAP_ANONYMOUS))
			abort(); /* the parser refuses it: a generator bug */
		/* A peek maps every page it reads: over a 1.5 TiB mapping
		 * the kernel needed minutes, past its backend's 60 s alarm
		 * (seed 1501). 1 GiB at most, whichever generator made it. */
		if (op.kind == OP_PEEK && op.len > 1024 * MiB)
			op.len = 1024 * MiB;
		uffd_filter(&g, &op);
		if (!script_op_allowed(&op)) {
			/* never hand the kernel backend a range outside the
			 * window: that would hit the process itself */
			struct strbuf sb;
			sb_init(&sb);
			script_format_op(&op, &sb);
			fprintf(stderr,
				"oracle: generator bug, op outside the "
				"window: %s",
				sb.buf);
			abort();
		}
		script_push(s, &op);
	}
	mm_save(&g);
	for (int i = 0; i < g.nmm; i++) {
		free(g.mms[i].sh.v);
		free(g.mms[i].fsh.v);
		free(g.mms[i].ush.v);
	}
}

/* ------------------------------------------------------------------ */
/* comparison and shrinking                                            */
/* ------------------------------------------------------------------ */

struct verdict {
	struct strbuf soft, kern;
	int soft_rc, kern_rc;
};

static const char *line_at(const struct strbuf *sb, size_t idx, size_t *len);

/* --mask-pt: the results of `pt` are printed but never a divergence (the
 * schemes other than pt-reclaim free page tables as the kernel does not). */
static bool mask_pt;

static bool outside_window(const char *l, size_t n)
{
	if (n < 3 || l[0] != '0' || l[1] != 'x')
		return false;
	uint64_t a = strtoull(l, NULL, 16);
	return a < SCRIPT_WIN_START || a >= SCRIPT_WIN_END;
}

/* @op may put a mapping where the kernel finds room: a non-fixed mmap, an
 * mremap without MREMAP_FIXED (a move, or dontunmap whose hint is taken). */
static bool floating(const struct op *op)
{
	return (op->kind == OP_MMAP &&
		!(op->flags & (SMM_MAP_FIXED | SMM_MAP_FIXED_NOREPLACE))) ||
	       (op->kind == OP_MREMAP && !(op->flags & SMM_MREMAP_FIXED));
}

/*
 * Two output lines of op @op agree. A non-fixed mmap (or mremap) that both
 * place outside the window agrees whatever the addresses: the kernel
 * randomizes them (the generator never emits one, but shrinking may remove
 * the mapping that made the hint unusable). With --mask-pt, any two
 * results of `pt` agree.
 */
static bool lines_agree(const struct op *op, const char *a, size_t la,
			const char *b, size_t lb)
{
	if (!a || !b)
		return false;
	if (la == lb && !memcmp(a, b, la))
		return true;
	if (mask_pt && op->kind == OP_PT)
		return true;
	return floating(op) && outside_window(a, la) && outside_window(b, lb);
}

/* --self-test: the "softmm" side runs on the kernel too (checks that the
 * generator only produces scripts with deterministic kernel results). */
static bool self_test;

static bool diverges(const struct script *s, int scheme, struct verdict *v)
{
	sb_reset(&v->soft);
	sb_reset(&v->kern);
	v->kern_rc = script_run_forked(s, BACKEND_KERNEL, scheme, &v->kern);
	v->soft_rc = script_run_forked(
		s, self_test ? BACKEND_KERNEL : BACKEND_SOFTMM, scheme,
		&v->soft);
	/*
	 * A non-fixed mmap that the kernel placed outside the window makes the
	 * script incomparable (random placement, page tables shared with the
	 * process's own mappings). The generator never emits one; shrinking
	 * may (by removing the mapping that made the hint unusable), and such
	 * a candidate must not count as still diverging.
	 */
	for (size_t i = 0; i < s->n; i++) {
		const struct op *op = &s->ops[i];
		if (!floating(op))
			continue;
		size_t lb;
		const char *b = line_at(&v->kern, i, &lb);
		if (b && outside_window(b, lb))
			return false;
	}
	if (v->soft_rc || v->kern_rc)
		return true;
	if (v->soft.len == v->kern.len &&
	    (!v->soft.len || !memcmp(v->soft.buf, v->kern.buf, v->soft.len)))
		return false;
	for (size_t i = 0; i < s->n; i++) {
		size_t la, lb;
		const char *a = line_at(&v->soft, i, &la);
		const char *b = line_at(&v->kern, i, &lb);
		if (!lines_agree(&s->ops[i], a, la, b, lb))
			return true;
	}
	return false;
}

/*
 * Op @k of @s is the MADV_RANDOM that the generator put right after a file
 * mmap (gen_file_mmap()): it goes with its mmap when shrinking, since
 * without it the kernel reads around faults and the shrunk script would
 * diverge for that reason, not the one it was shrunk for.
 */
static bool glued(const struct script *s, size_t k)
{
	const struct op *a, *b;

	if (!k)
		return false;
	a = &s->ops[k - 1];
	b = &s->ops[k];
	return b->kind == OP_MADVISE && b->arg == SMM_MADV_RANDOM &&
	       a->kind == OP_MMAP && a->file && a->addr == b->addr;
}

/* @src without its ops [from, from + n) (glued ones go with their mmap). */
static void script_remove(const struct script *src, size_t from, size_t n,
			  struct script *dst)
{
	bool gone = false;

	dst->n = 0;
	for (size_t i = 0; i < src->n; i++) {
		if (!glued(src, i))
			gone = i >= from && i < from + n;
		if (!gone)
			script_push(dst, &src->ops[i]);
	}
}

/* Delta debugging down to a 1-minimal script (no single op removable). */
static void shrink(struct script *s, int scheme, struct verdict *v,
		   bool verbose)
{
	struct script t;
	script_init(&t);
	size_t chunk = s->n / 2 ? s->n / 2 : 1;
	int runs = 0;
	for (;;) {
		bool removed = false;
		for (size_t i = 0; i < s->n && s->n > 1;) {
			size_t n = chunk;
			if (i + n > s->n)
				n = s->n - i;
			script_remove(s, i, n, &t);
			if (t.n == s->n) { /* only glued ops: nothing removed */
				i += n;
				continue;
			}
			runs++;
			if (diverges(&t, scheme, v)) {
				struct script tmp = *s;
				*s = t;
				t = tmp;
				removed = true;
			} else {
				i += n;
			}
		}
		if (verbose)
			fprintf(stderr,
				"  shrink: chunk %zu -> %zu ops (%d runs)\n",
				chunk, s->n, runs);
		if (chunk == 1 && !removed)
			break;
		if (chunk > 1)
			chunk /= 2;
	}
	script_free(&t);
	diverges(s, scheme, v); /* leave v describing the final script */
}

static const char *line_at(const struct strbuf *sb, size_t idx, size_t *len)
{
	const char *p = sb->buf ? sb->buf : "";
	const char *end = p + sb->len;
	for (size_t i = 0; i < idx && p < end; i++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		p = nl ? nl + 1 : end;
	}
	if (p >= end) {
		*len = 0;
		return NULL;
	}
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	*len = nl ? (size_t)(nl - p) : (size_t)(end - p);
	return p;
}

static void print_side_by_side(FILE *f, const struct script *s,
			       const struct verdict *v)
{
	fprintf(f, "  %-58s | %-24s | %s\n", "op", "softmm", "kernel");
	struct strbuf opl;
	sb_init(&opl);
	for (size_t i = 0; i < s->n; i++) {
		sb_reset(&opl);
		script_format_op(&s->ops[i], &opl);
		opl.buf[--opl.len] = 0;
		size_t la, lb;
		const char *a = line_at(&v->soft, i, &la);
		const char *b = line_at(&v->kern, i, &lb);
		bool diff = !lines_agree(&s->ops[i], a, la, b, lb);
		fprintf(f, "%c %-58s | %-24.*s | %.*s\n", diff ? '!' : ' ',
			opl.buf, a ? (int)(la > 60 ? 60 : la) : 9,
			a ? a : "(missing)", b ? (int)(lb > 60 ? 60 : lb) : 9,
			b ? b : "(missing)");
	}
	for (size_t i = 0; i < s->n; i++) {
		size_t la, lb;
		const char *a = line_at(&v->soft, i, &la);
		const char *b = line_at(&v->kern, i, &lb);
		if (lines_agree(&s->ops[i], a, la, b, lb) ||
		    ((!a || la <= 60) && (!b || lb <= 60)))
			continue;
		fprintf(f,
			"  line %zu in full:\n    softmm: %.*s\n    kernel: %.*s\n",
			i + 1, a ? (int)la : 9, a ? a : "(missing)",
			b ? (int)lb : 9, b ? b : "(missing)");
	}
	if (v->soft_rc)
		fprintf(f, "  softmm backend exit status %d%s\n", v->soft_rc,
			v->soft_rc == SCRIPT_ERR_LEAK ? " (leak)" : "");
	if (v->kern_rc)
		fprintf(f, "  kernel backend exit status %d\n", v->kern_rc);
	sb_free(&opl);
}

static int write_script(const char *path, const struct script *s,
			const char *scheme, uint64_t seed, size_t idx,
			const struct verdict *v)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		return -1;
	}
	fprintf(f, "# softmm oracle divergence: seed %llu, sequence %zu\n",
		(unsigned long long)seed, idx);
	fprintf(f, "# scheme: %s%s\n", scheme,
		mask_pt ? " (--mask-pt: pt lines not compared)" : "");
	fprintf(f,
		"# reproduce: softmm script --scheme %s FILE; "
		"softmm script --backend kernel FILE\n",
		scheme);
	fprintf(f, "#\n");
	struct strbuf sb;
	sb_init(&sb);
	for (size_t i = 0; i < s->n; i++)
		script_format_op(&s->ops[i], &sb);
	fputs(sb.buf ? sb.buf : "", f);
	fprintf(f, "# side by side (! marks a difference):\n");
	sb_free(&sb);
	/* the comparison, as comments */
	char *buf = NULL;
	size_t blen = 0;
	FILE *m = open_memstream(&buf, &blen);
	print_side_by_side(m, s, v);
	fclose(m);
	for (char *p = buf, *nl; p && *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (!nl)
			break;
		fprintf(f, "#%.*s\n", (int)(nl - p), p);
	}
	free(buf);
	fclose(f);
	return 0;
}

static double now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Schemes whose `pt` follows CONFIG_PT_RECLAIM (free on full-table DONTNEED). */
static bool scheme_reclaims_on_dontneed(const char *name)
{
	return !strcmp(name, "pt-reclaim");
}

/* Limits of the number options. */
#define ORACLE_MAX_SEQUENCES 1000000
#define ORACLE_MAX_OPS	     100000

const char oracle_synopsis[] =
	"[--sequences N (200)] [--ops N (200)] [--seed N (1)]\n"
	"[--scheme NAME (pt-reclaim)] [--out FILE (oracle-fail-SEED-N.smm)]\n"
	"[--avoid CLASS,... (none)] [--mask-pt] [--mthp SIZE,... (none)]\n"
	"[--verbose] [--keep-going] [--self-test] [--dump]";
const char oracle_summary[] =
	"compare random scripts on softmm against the kernel";

static int oracle_usage(FILE *f)
{
	cli_usage(f, "oracle", oracle_synopsis, oracle_summary);
	fprintf(f,
		"  --sequences N  random scripts to run, 1..%d\n"
		"  --ops N        operations per script, 1..%d\n"
		"  --seed N       0..2^64-1 (decimal or 0x hex)\n"
		"  --scheme NAME  " CLI_SCHEMES "\n"
		"  --out FILE     where the minimal diverging script goes\n"
		"  --avoid CLASS  leave out: invalid, unaligned-mmap, bad-bits, "
		"populate,\n"
		"                 files, fork (and mm N), mremap, uffd\n"
		"  --mask-pt      compare every line but the results of `pt`\n"
		"                 (for the schemes other than pt-reclaim, which\n"
		"                 free other page tables than the kernel)\n"
		"  --mthp SIZES   multi-size THP on both sides: 16k, 32k, 64k\n"
		"                 (the kernel's sysfs knobs: root; restored at "
		"exit)\n"
		"  --keep-going   go on after a divergence\n"
		"  --self-test    run both sides on the kernel\n"
		"  --dump         print the scripts, run nothing\n",
		ORACLE_MAX_SEQUENCES, ORACLE_MAX_OPS);
	return f == stdout ? 0 : 2;
}

int cmd_oracle(int argc, char **argv)
{
	char q[CLI_QUOTE_SIZE];
	unsigned long long nseq = 200, nops = 200, seed = 1;
	/* The scheme that models the kernel on this machine (6.18). */
	const char *scheme_name = "pt-reclaim";
	const char *outpath = NULL;
	bool verbose = false, keep_going = false, dump = false;
	unsigned avoid = 0;
	static const struct option lopts[] = {
		{ "sequences", required_argument, NULL, 'n' },
		{ "ops", required_argument, NULL, 'm' },
		{ "seed", required_argument, NULL, 's' },
		{ "scheme", required_argument, NULL, 'S' },
		{ "out", required_argument, NULL, 'o' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "keep-going", no_argument, NULL, 'k' },
		{ "self-test", no_argument, NULL, 'T' },
		{ "dump", no_argument, NULL, 'D' },
		{ "avoid", required_argument, NULL, 'A' },
		{ "mask-pt", no_argument, NULL, 'P' },
		{ "mthp", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "n:m:s:S:o:vkTDA:M:h", lopts,
				NULL)) != -1) {
		switch (c) {
		case 'n':
			if (cli_ull("oracle", "--sequences", optarg, 1,
				    ORACLE_MAX_SEQUENCES, &nseq))
				return 2;
			break;
		case 'm':
			if (cli_ull("oracle", "--ops", optarg, 1,
				    ORACLE_MAX_OPS, &nops))
				return 2;
			break;
		case 's':
			if (cli_ull("oracle", "--seed", optarg, 0, ULLONG_MAX,
				    &seed))
				return 2;
			break;
		case 'S':
			scheme_name = optarg;
			break;
		case 'o':
			outpath = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		case 'k':
			keep_going = true;
			break;
		case 'T':
			self_test = true;
			break;
		case 'D':
			dump = true;
			break;
		case 'P':
			mask_pt = true;
			break;
		case 'M':
			if (script_set_mthp("oracle", optarg))
				return 2;
			break;
		case 'A': {
			char *save = NULL, *list = strdup(optarg);
			for (char *t = strtok_r(list, ",", &save); t;
			     t = strtok_r(NULL, ",", &save)) {
				size_t k, nk = sizeof(avoid_names) /
					       sizeof(avoid_names[0]);
				for (k = 0; k < nk; k++)
					if (!strcmp(t, avoid_names[k].name))
						break;
				if (k == nk) {
					fprintf(stderr,
						"softmm oracle: unknown "
						"--avoid class '%s' "
						"(invalid, unaligned-mmap, "
						"bad-bits, populate, files, "
						"fork, mremap)\n",
						cli_quote_str(t, q, sizeof(q)));
					free(list);
					return 2;
				}
				avoid |= avoid_names[k].bit;
			}
			free(list);
			break;
		}
		case 'h':
			return oracle_usage(stdout);
		default:
			return oracle_usage(stderr);
		}
	}
	if (cli_no_args("oracle", argc, argv, optind))
		return 2;
	int scheme = smm_scheme_from_name(scheme_name);
	if (scheme < 0) {
		char l[128];

		fprintf(stderr, "softmm oracle: unknown scheme '%s' (%s)\n",
			cli_quote_str(scheme_name, q, sizeof(q)),
			cli_scheme_list(l, sizeof(l)));
		return 2;
	}
	if (script_mthp && !dump) {
		int err = script_kernel_mthp();

		if (err) {
			fprintf(stderr,
				"softmm oracle: --mthp: cannot set the "
				"kernel's THP sizes under "
				"/sys/kernel/mm/transparent_hugepage: %s\n",
				strerror(-err));
			return 2;
		}
	}
	/* With pt masked, DONTNEEDs of whole tables cannot diverge: generate
	 * them under every scheme. */
	bool reclaim_ok = scheme_reclaims_on_dontneed(scheme_name) || mask_pt;
	double t0 = now_sec();
	struct verdict v;
	sb_init(&v.soft);
	sb_init(&v.kern);
	int divergences = 0;
	unsigned long long done = 0;
	for (unsigned long long i = 0; i < nseq; i++) {
		uint64_t sx = seed * 0x9e3779b97f4a7c15ULL + i;
		uint64_t sseed = splitmix64(&sx);
		struct script s;
		script_init(&s);
		gen_script(sseed, nops, reclaim_ok, avoid, &s);
		done++;
		if (dump) {
			struct strbuf sb;
			sb_init(&sb);
			printf("# sequence %llu\n", i);
			for (size_t k = 0; k < s.n; k++)
				script_format_op(&s.ops[k], &sb);
			fputs(sb.buf ? sb.buf : "", stdout);
			sb_free(&sb);
			script_free(&s);
			continue;
		}
		if (!diverges(&s, scheme, &v)) {
			if (verbose)
				fprintf(stderr, "sequence %llu: ok\n", i);
			script_free(&s);
			continue;
		}
		divergences++;
		fprintf(stderr,
			"sequence %llu (seed %llu): divergence; shrinking %zu "
			"ops...\n",
			i, seed, s.n);
		shrink(&s, scheme, &v, verbose);
		char defpath[128];
		snprintf(defpath, sizeof(defpath), "oracle-fail-%llu-%llu.smm",
			 seed, i);
		const char *path = outpath && !keep_going ? outpath : defpath;
		printf("divergence in sequence %llu (seed %llu, scheme %s%s), "
		       "minimal script (%zu ops) written to %s:\n",
		       i, seed, scheme_name, mask_pt ? ", pt masked" : "", s.n,
		       path);
		print_side_by_side(stdout, &s, &v);
		write_script(path, &s, scheme_name, seed, (size_t)i, &v);
		fflush(stdout);
		script_free(&s);
		if (!keep_going)
			break;
	}
	if (!dump)
		printf("oracle: %llu sequences x %llu ops, scheme %s%s, seed "
		       "%llu: %d divergence%s, %.1f s\n",
		       done, nops, scheme_name, mask_pt ? " (pt masked)" : "",
		       seed, divergences, divergences == 1 ? "" : "s",
		       now_sec() - t0);
	sb_free(&v.soft);
	sb_free(&v.kern);
	return divergences ? 1 : 0;
}
