/*
 * tools/torture.h - the torture command of the softmm tool: torture.c
 * parses the options and runs the address-space torture; with --files it
 * hands them to the file torture of torture_files.c, with --fork to the
 * fork torture of torture_fork.c, with --uffd to the userfaultfd torture
 * of torture_uffd.c.
 */
#ifndef SOFTMM_TOOLS_TORTURE_H
#define SOFTMM_TOOLS_TORTURE_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define TORTURE_MAX_THREADS    64
#define TORTURE_MAX_MMS	       8
#define TORTURE_MAX_GUP	       8
#define TORTURE_MAX_FILE_PAGES 4096

/* The options the tortures take (cmd_torture() checked their ranges;
 * --fork: @mms is the most address spaces live at once). */
struct torture_opts {
	int threads, mms, seconds, scheme, gup;
	int file_pages;	       /* --files: the host file's size in pages */
	unsigned int mm_flags; /* SMM_MM_* */
	uint64_t seed;
};

int cmd_torture(int argc, char **argv);

/* splitmix64: the next number of the generator whose state is @rng. */
static inline uint64_t torture_rnd(uint64_t *rng)
{
	uint64_t z = (*rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Seconds on the monotonic clock. */
static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The "device" reads and writes pinned memory with relaxed atomics: like
 * DMA it races with CPU accesses by design (guest memory, not softmm's
 * state; docs/THREADSANITIZER.md). */
static inline uint64_t dev_load(uint64_t *a)
{
	return __atomic_load_n(a, __ATOMIC_RELAXED);
}

static inline void dev_store(uint64_t *a, uint64_t v)
{
	__atomic_store_n(a, v, __ATOMIC_RELAXED);
}

/* Count a violation in *@count and print the first 20 to stderr, each
 * as "@who: VIOLATION: " and the message (torture.c). */
void torture_violation(atomic_long *count, const char *who, const char *fmt,
		       ...) __attribute__((format(printf, 3, 4)));

struct smm_pool;
struct smm_pool_stats;
/* The end of a torture: every pin released, every frame back in @pool
 * (none left as a file page, an anonymous page or a page table), then
 * the pool destroyed; a violation counted in *@count for each that fails.
 * The pool's stats before it went are left in *@out (if not NULL). */
void torture_pool_teardown(struct smm_pool *pool, atomic_long *count,
			   const char *who, struct smm_pool_stats *out);

/* `softmm torture --files`: returns 0, 1 after a violation, 2 if it could
 * not start. */
int torture_files(const struct torture_opts *o);

/* `softmm torture --fork`: returns 0, 1 after a violation, 2 if it could
 * not start. */
int torture_fork(const struct torture_opts *o);

/* `softmm torture --uffd`: returns 0, 1 after a violation, 2 if it could
 * not start. */
int torture_uffd(const struct torture_opts *o);

#endif
