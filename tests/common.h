/*
 * common.h - helpers shared by the cmocka unit tests: a test environment
 * (pool + address space + the calling thread attached as a CPU and switched
 * to it), its teardown with a leak check, and small assertion helpers for
 * mappings, VMAs, data and counters.
 *
 * The scheme of the address spaces comes from $SMM_TEST_SCHEME (a scheme
 * name, default "none"), so the same tests run under every scheme.
 */
#ifndef SMM_TESTS_COMMON_H
#define SMM_TESTS_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "softmm.h"

#define PG SMM_PAGE_SIZE
#define KB 1024ULL
#define MB (1024ULL * 1024)
#define GB (1024ULL * MB)
/* A fixed test address: 512 GiB aligned, as in tests/kernel64-probe.c. */
#define TA		  0x200000000000ULL
#define RW		  (SMM_PROT_READ | SMM_PROT_WRITE)
#define RO		  SMM_PROT_READ
#define PRIV_ANON	  (SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS)
#define DEFAULT_MMAP_BASE 0x7ffff7fff000ULL

struct env {
	struct smm_pool *pool;
	struct smm_mm *mm;
	struct smm_cpu *cpu;
};

static inline int test_scheme(void)
{
	const char *s = getenv("SMM_TEST_SCHEME");
	int sc = smm_scheme_from_name(s && *s ? s : "none");
	if (sc < 0) {
		fprintf(stderr, "unknown SMM_TEST_SCHEME %s\n", s);
		abort();
	}
	return sc;
}

static inline struct smm_mm *new_mm(struct smm_pool *pool, uint64_t base)
{
	struct smm_mm_opts o = { .scheme = test_scheme(), .mmap_base = base };
	struct smm_mm *mm = smm_mm_create(pool, &o);
	assert_non_null(mm);
	return mm;
}

/* A pool's counters add up and nothing is in use: what every test must see
 * after its address spaces are destroyed. */
static inline void assert_pool_clean(struct smm_pool *pool)
{
	struct smm_pool_stats st;
	smm_pool_stats(pool, &st);
	if (st.frames != 1 + st.free || st.anon_pages || st.pt_pages)
		fprintf(stderr,
			"pool leak: frames %" PRIu64 " free %" PRIu64
			" anon %" PRIu64 " pt %" PRIu64 "\n",
			st.frames, st.free, st.anon_pages, st.pt_pages);
	assert_int_equal(st.anon_pages, 0);
	assert_int_equal(st.pt_pages, 0);
	assert_int_equal(st.file_pages, 0);
	assert_int_equal(st.frames, 1 + st.free);
}

/* frames == 1 + free + anon + pt (valid when nothing runs concurrently and
 * deferred frees may still be pending only as "not yet free": so <=) */
static inline void assert_pool_consistent(struct smm_pool *pool)
{
	struct smm_pool_stats st;
	smm_pool_stats(pool, &st);
	assert_true(st.frames >= 1 + st.free + st.anon_pages + st.pt_pages);
}

static inline int env_setup_sized(void **state, size_t pool_bytes)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	e->pool = smm_pool_create(pool_bytes, SMM_POOL_POISON);
	assert_non_null(e->pool);
	e->mm = new_mm(e->pool, 0);
	e->cpu = smm_cpu_attach(e->pool);
	assert_non_null(e->cpu);
	smm_cpu_switch_mm(e->cpu, e->mm);
	*state = e;
	return 0;
}

static inline int env_setup(void **state)
{
	return env_setup_sized(state, 256 * MB);
}

static inline int env_teardown(void **state)
{
	struct env *e = *state;
	if (!e)
		return 0;
	smm_cpu_switch_mm(e->cpu, NULL);
	if (e->mm)
		smm_mm_destroy(e->mm);
	e->mm = NULL;
	assert_pool_clean(e->pool);
	smm_cpu_detach(e->cpu);
	assert_int_equal(smm_pool_destroy(e->pool), 0);
	free(e);
	*state = NULL;
	return 0;
}

/* ---- mappings and VMAs -------------------------------------------- */

static inline uint64_t map_at(struct smm_mm *mm, uint64_t addr, uint64_t len,
			      int prot)
{
	int64_t r = smm_mmap(mm, addr, len, prot,
			     PRIV_ANON | SMM_MAP_FIXED_NOREPLACE);
	if (r != (int64_t)addr)
		fprintf(stderr,
			"map_at(%#" PRIx64 ", %#" PRIx64 ") = %" PRId64 "\n",
			addr, len, r);
	assert_int_equal(r, (int64_t)addr);
	return addr;
}

struct xvma {
	uint64_t start, end;
	int prot;
};

static inline void dump_vmas(struct smm_mm *mm, uint64_t s, uint64_t e)
{
	struct smm_vma_info v[64];
	size_t n = smm_mm_vmas(mm, s, e, v, 64);
	fprintf(stderr, "  %zu VMAs in [%#" PRIx64 ", %#" PRIx64 "):\n", n, s,
		e);
	for (size_t i = 0; i < n && i < 64; i++)
		fprintf(stderr, "    %#" PRIx64 "-%#" PRIx64 " prot %d\n",
			v[i].start, v[i].end, v[i].prot);
}

/* The VMAs intersecting [s, e) are exactly @want (@n of them). */
static inline void expect_vmas_(struct smm_mm *mm, uint64_t s, uint64_t e,
				const struct xvma *want, size_t n)
{
	struct smm_vma_info v[64];
	size_t got = smm_mm_vmas(mm, s, e, v, 64);
	bool ok = got == n;
	for (size_t i = 0; ok && i < n; i++)
		ok = v[i].start == want[i].start && v[i].end == want[i].end &&
		     v[i].prot == want[i].prot;
	if (!ok) {
		fprintf(stderr, "VMA mismatch; wanted %zu:\n", n);
		for (size_t i = 0; i < n; i++)
			fprintf(stderr,
				"    %#" PRIx64 "-%#" PRIx64 " prot %d\n",
				want[i].start, want[i].end, want[i].prot);
		dump_vmas(mm, s, e);
	}
	assert_true(ok);
}
#define expect_vmas(mm, s, e, ...)                                      \
	do {                                                            \
		const struct xvma w_[] = { __VA_ARGS__ };               \
		expect_vmas_(mm, s, e, w_, sizeof(w_) / sizeof(w_[0])); \
	} while (0)
#define expect_no_vmas(mm, s, e) \
	assert_int_equal(smm_mm_vmas(mm, s, e, NULL, 0), 0)

static inline struct smm_mm_stats mm_stats(struct smm_mm *mm)
{
	struct smm_mm_stats st;
	memset(&st, 0xff, sizeof(st));
	smm_mm_stats(mm, &st);
	return st;
}

static inline struct smm_pool_stats pool_stats(struct smm_pool *pool)
{
	struct smm_pool_stats st;
	memset(&st, 0xff, sizeof(st));
	smm_pool_stats(pool, &st);
	return st;
}

/* ---- data ----------------------------------------------------------- */

/* the byte a pattern @seed puts at address @a */
static inline uint8_t pat(uint64_t a, unsigned seed)
{
	uint64_t x = (a ^ (a >> 12)) * 0x9e3779b97f4a7c15ULL + seed;
	return (uint8_t)(x >> 56) | 1; /* never zero */
}

/* write the pattern over [a, a + len) in chunks; asserts success */
static inline void write_pat(struct smm_cpu *cpu, uint64_t a, uint64_t len,
			     unsigned seed)
{
	uint8_t buf[4096];
	while (len) {
		size_t n = len < sizeof(buf) ? len : sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = pat(a + i, seed);
		uint64_t fa = 0;
		int r = smm_write(cpu, a, buf, n, &fa);
		if (r)
			fprintf(stderr,
				"write_pat %#" PRIx64 ": %d at %#" PRIx64 "\n",
				a, r, fa);
		assert_int_equal(r, 0);
		a += n;
		len -= n;
	}
}

/* check the pattern over [a, a + len) */
static inline void check_pat(struct smm_cpu *cpu, uint64_t a, uint64_t len,
			     unsigned seed)
{
	uint8_t buf[4096];
	while (len) {
		size_t n = len < sizeof(buf) ? len : sizeof(buf);
		uint64_t fa = 0;
		int r = smm_read(cpu, a, buf, n, &fa);
		if (r)
			fprintf(stderr,
				"check_pat %#" PRIx64 ": %d at %#" PRIx64 "\n",
				a, r, fa);
		assert_int_equal(r, 0);
		for (size_t i = 0; i < n; i++) {
			if (buf[i] != pat(a + i, seed)) {
				fprintf(stderr,
					"at %#" PRIx64 ": %#x, want %#x\n",
					a + i, buf[i], pat(a + i, seed));
				fail();
			}
		}
		a += n;
		len -= n;
	}
}

/* [a, a + len) reads as zeros */
static inline void check_zero(struct smm_cpu *cpu, uint64_t a, uint64_t len)
{
	uint8_t buf[4096];
	while (len) {
		size_t n = len < sizeof(buf) ? len : sizeof(buf);
		assert_int_equal(smm_read(cpu, a, buf, n, NULL), 0);
		for (size_t i = 0; i < n; i++) {
			if (buf[i]) {
				fprintf(stderr,
					"at %#" PRIx64 ": %#x, want 0\n", a + i,
					buf[i]);
				fail();
			}
		}
		a += n;
		len -= n;
	}
}

static inline uint8_t rd8(struct smm_cpu *cpu, uint64_t a)
{
	uint8_t b = 0xee;
	assert_int_equal(smm_read(cpu, a, &b, 1, NULL), 0);
	return b;
}

static inline void wr8(struct smm_cpu *cpu, uint64_t a, uint8_t v)
{
	assert_int_equal(smm_write(cpu, a, &v, 1, NULL), 0);
}

/* a read of @len at @a fails with @err at exactly @fault */
static inline void expect_read_fault(struct smm_cpu *cpu, uint64_t a,
				     size_t len, int err, uint64_t fault)
{
	uint8_t *buf = malloc(len);
	uint64_t fa = 0xdeadbeef;
	int r = smm_read(cpu, a, buf, len, &fa);
	free(buf);
	if (r != err || fa != fault)
		fprintf(stderr,
			"read %#" PRIx64 "+%zu: %d at %#" PRIx64
			", want %d at %#" PRIx64 "\n",
			a, len, r, fa, err, fault);
	assert_int_equal(r, err);
	assert_int_equal(fa, fault);
}

static inline void expect_write_fault(struct smm_cpu *cpu, uint64_t a,
				      size_t len, int err, uint64_t fault)
{
	uint8_t *buf = malloc(len);
	memset(buf, 0x77, len);
	uint64_t fa = 0xdeadbeef;
	int r = smm_write(cpu, a, buf, len, &fa);
	free(buf);
	if (r != err || fa != fault)
		fprintf(stderr,
			"write %#" PRIx64 "+%zu: %d at %#" PRIx64
			", want %d at %#" PRIx64 "\n",
			a, len, r, fa, err, fault);
	assert_int_equal(r, err);
	assert_int_equal(fa, fault);
}

/* number of resident pages in [a, a + len) by smm_mincore */
static inline uint64_t resident(struct smm_mm *mm, uint64_t a, uint64_t len)
{
	uint64_t n = 0, npages = len / PG;
	unsigned char *v = malloc(npages ? npages : 1);
	assert_non_null(v);
	memset(v, 0xaa, npages);
	assert_int_equal(smm_mincore(mm, a, len, v), 0);
	for (uint64_t i = 0; i < npages; i++) {
		assert_true(v[i] == 0 || v[i] == 1);
		n += v[i];
	}
	free(v);
	return n;
}

#endif
