/*
 * tools/bench.c - `softmm bench` and `softmm compare`: the same workloads on
 * softmm (under each scheme asked for) and on the Linux kernel through real
 * syscalls, in one run, alternating, several repetitions; medians and
 * spread, ratios softmm/linux, JSON lines, and (compare) an SVG chart.
 * Owns no library state: each softmm repetition builds its own address
 * space on one warm frame pool.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "bench.h"
#include "cli.h"
#include "softmm.h"

#define MiB	    (1ULL << 20)
#define GiB	    (1ULL << 30)
#define PAGE	    4096ULL
#define MAX_REPS    64
#define MAX_THREADS 8

struct bench_opts {
	int reps;
	int schemes[CLI_MAX_SCHEMES];
	int nr_schemes;
	bool json;
	bool atomics;	  /* bench --atomics: count RMWs, time nothing */
	bool full;	  /* the full-size Qi Zheng test */
	bool compare;	  /* compare: the default selection only */
	bool reps_set;	  /* --reps given: it holds for every workload */
	const char *only; /* comma list of workloads, or NULL */
	const char *out;  /* compare: where the chart goes */
};

static struct smm_pool *pool;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static long vmpte_bytes(void)
{
	char buf[4096];
	FILE *f = fopen("/proc/self/status", "r");
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "VmPTE: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

/* ---- one measurement ---- */

struct result {
	double ns;     /* wall time of the measured part */
	uint64_t ops;  /* operations of all threads together */
	long pt_bytes; /* page-table bytes at the end, -1: n/a */
	double faults; /* page faults taken in the timed part, -1: n/a */
};

struct env {
	bool kernel;
	int scheme;
	int threads;
	bool aligned;
	bool full;
	unsigned int mm_flags;
	int nr_vmas; /* mmap-many: VMAs present */
	/* softmm */
	struct smm_mm *mm;
	struct smm_cpu *cpu;
};

/* A softmm address space with the calling thread attached as its CPU. */
static void smm_setup(struct env *e)
{
	struct smm_mm_opts o = { .scheme = e->scheme };

	e->mm = smm_mm_create(pool, &o);
	e->cpu = smm_cpu_attach(pool);
	if (!e->mm || !e->cpu) {
		fprintf(stderr, "bench: cannot set up softmm: %s\n",
			strerror(errno));
		exit(1);
	}
	smm_cpu_switch_mm(e->cpu, e->mm);
}

static void smm_teardown(struct env *e)
{
	smm_cpu_switch_mm(e->cpu, NULL);
	smm_mm_destroy(e->mm);
	smm_cpu_detach(e->cpu);
}

static void die_if(bool cond, const char *what)
{
	if (cond) {
		fprintf(stderr, "bench: %s failed\n", what);
		exit(1);
	}
}

/* Store one byte in each page of [a, a + len): through softmm, or for real. */
static void smm_touch(struct smm_cpu *cpu, uint64_t a, uint64_t len)
{
	for (uint64_t o = 0; o < len; o += PAGE)
		die_if(smm_fill(cpu, a + o, 1, 1, NULL), "store");
}

static void k_touch(char *p, uint64_t len)
{
	for (uint64_t o = 0; o < len; o += PAGE)
		p[o] = 1;
}

/* fault-anon: map 128 MiB, write one byte per page, unmap (page_fault1). */
static struct result w_fault_anon(struct env *e)
{
	const uint64_t len = 128 * MiB;
	struct result r = { 0, len / PAGE, -1, -1 };
	double t0;

	if (e->kernel) {
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		die_if(p == MAP_FAILED, "mmap");
		t0 = now_ns();
		k_touch(p, len);
		munmap(p, len);
		r.ns = now_ns() - t0;
		return r;
	}
	smm_setup(e);
	int64_t a = smm_mmap(e->mm, 0, len, SMM_PROT_READ | SMM_PROT_WRITE,
			     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS);
	die_if(a < 0, "smm_mmap");
	t0 = now_ns();
	smm_touch(e->cpu, (uint64_t)a, len);
	smm_munmap(e->mm, (uint64_t)a, len);
	r.ns = now_ns() - t0;
	smm_teardown(e);
	return r;
}

/* fault-zero: read one byte per page of fresh memory (zero-page faults). */
static struct result w_fault_zero(struct env *e)
{
	const uint64_t len = 128 * MiB;
	struct result r = { 0, len / PAGE, -1, -1 };
	volatile char sink;
	double t0;

	if (e->kernel) {
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		die_if(p == MAP_FAILED, "mmap");
		t0 = now_ns();
		for (uint64_t o = 0; o < len; o += PAGE)
			sink = ((volatile char *)p)[o];
		r.ns = now_ns() - t0;
		munmap(p, len);
		(void)sink;
		return r;
	}
	smm_setup(e);
	int64_t a = smm_mmap(e->mm, 0, len, SMM_PROT_READ | SMM_PROT_WRITE,
			     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS);
	die_if(a < 0, "smm_mmap");
	char c;
	t0 = now_ns();
	for (uint64_t o = 0; o < len; o += PAGE)
		die_if(smm_read(e->cpu, (uint64_t)a + o, &c, 1, NULL), "load");
	r.ns = now_ns() - t0;
	smm_teardown(e);
	return r;
}

/*
 * dontneed-cycle: the Qi Zheng test. Reserve a large sparse region with
 * MAP_NORESERVE; for each 2 MiB chunk, touch every page and MADV_DONTNEED
 * it. Aligned chunks start on 2 MiB boundaries; unaligned ones one page
 * off. Full size: 50 GiB and 25,600 chunks; default: 4 GiB and 2,048.
 */
static struct result w_dontneed(struct env *e)
{
	const uint64_t chunks = e->full ? 25600 : 2048;
	const uint64_t chunk = 2 * MiB;
	const uint64_t len = chunks * chunk + 2 * MiB;
	const uint64_t off = e->aligned ? 0 : PAGE;
	struct result r = { 0, chunks * (chunk / PAGE), -1, -1 };
	double t0;

	if (e->kernel) {
		long pt0 = vmpte_bytes();
		char *p = mmap(NULL, len + 2 * MiB, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
			       0);
		die_if(p == MAP_FAILED, "mmap");
		char *base = (char *)(((uintptr_t)p + 2 * MiB - 1) &
				      ~(2 * MiB - 1)) +
			     off;
		t0 = now_ns();
		for (uint64_t c = 0; c < chunks; c++) {
			char *q = base + c * chunk;

			k_touch(q, chunk);
			madvise(q, chunk, MADV_DONTNEED);
		}
		r.ns = now_ns() - t0;
		r.pt_bytes = vmpte_bytes() - pt0;
		munmap(p, len + 2 * MiB);
		return r;
	}
	smm_setup(e);
	int64_t a = smm_mmap(
		e->mm, 0x200000000000ULL, len, SMM_PROT_READ | SMM_PROT_WRITE,
		SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS | SMM_MAP_NORESERVE |
			SMM_MAP_FIXED_NOREPLACE);
	die_if(a < 0, "smm_mmap");
	uint64_t base = (uint64_t)a + off;
	t0 = now_ns();
	for (uint64_t c = 0; c < chunks; c++) {
		uint64_t q = base + c * chunk;

		smm_touch(e->cpu, q, chunk);
		smm_madvise(e->mm, q, chunk, SMM_MADV_DONTNEED);
	}
	r.ns = now_ns() - t0;
	struct smm_mm_stats st;
	smm_mm_stats(e->mm, &st);
	r.pt_bytes = (long)st.pt_bytes;
	smm_teardown(e);
	return r;
}

/*
 * dontneed-refault: 64 MiB touched once, then cycles of MADV_DONTNEED of
 * all of it and touching every page again: what reclaim costs on the
 * fault path (freed tables are allocated again on the refault).
 */
static struct result w_dontneed_refault(struct env *e)
{
	const uint64_t len = 64 * MiB;
	const int cycles = 8;
	struct result r = { 0, cycles * (len / PAGE), -1, -1 };
	double t0;

	if (e->kernel) {
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		die_if(p == MAP_FAILED, "mmap");
		k_touch(p, len);
		t0 = now_ns();
		for (int c = 0; c < cycles; c++) {
			madvise(p, len, MADV_DONTNEED);
			k_touch(p, len);
		}
		r.ns = now_ns() - t0;
		munmap(p, len);
		return r;
	}
	smm_setup(e);
	int64_t a = smm_mmap(
		e->mm, 0x200000000000ULL, len, SMM_PROT_READ | SMM_PROT_WRITE,
		SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS | SMM_MAP_FIXED_NOREPLACE);
	die_if(a < 0, "smm_mmap");
	smm_touch(e->cpu, (uint64_t)a, len);
	t0 = now_ns();
	for (int c = 0; c < cycles; c++) {
		smm_madvise(e->mm, (uint64_t)a, len, SMM_MADV_DONTNEED);
		smm_touch(e->cpu, (uint64_t)a, len);
	}
	r.ns = now_ns() - t0;
	smm_teardown(e);
	return r;
}

/* mmap-munmap: map and unmap 128 MiB untouched (will-it-scale mmap1). */
static struct result w_mmap_munmap(struct env *e)
{
	const int iters = 20000;
	struct result r = { 0, iters, -1, -1 };
	double t0;

	if (e->kernel) {
		t0 = now_ns();
		for (int i = 0; i < iters; i++) {
			void *p = mmap(NULL, 128 * MiB, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			die_if(p == MAP_FAILED, "mmap");
			munmap(p, 128 * MiB);
		}
		r.ns = now_ns() - t0;
		return r;
	}
	smm_setup(e);
	t0 = now_ns();
	for (int i = 0; i < iters; i++) {
		int64_t a = smm_mmap(e->mm, 0, 128 * MiB,
				     SMM_PROT_READ | SMM_PROT_WRITE,
				     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS);
		die_if(a < 0, "smm_mmap");
		smm_munmap(e->mm, (uint64_t)a, 128 * MiB);
	}
	r.ns = now_ns() - t0;
	smm_teardown(e);
	return r;
}

/* The process' own VMAs: the lines of /proc/self/maps but [vsyscall]. */
static int k_nr_vmas(void)
{
	char buf[512];
	FILE *f = fopen("/proc/self/maps", "r");
	int n = 0;

	die_if(!f, "/proc/self/maps");
	while (fgets(buf, sizeof(buf), f))
		if (!strstr(buf, "[vsyscall]"))
			n++;
	fclose(f);
	return n;
}

/*
 * mmap-many-N: one mmap (placed by the allocator) and munmap of one page
 * with N VMAs present. The layout, the same on both sides: two-page
 * mappings placed top-down, the lower page of each unmapped again, so N
 * read-only one-page VMAs with one-page holes; the timed read-write page
 * goes into the highest hole and merges with nothing. The kernel's count
 * includes the process' own VMAs.
 */
static struct result w_mmap_many(struct env *e)
{
	const int iters = 20000;
	struct result r = { 0, iters, -1, -1 };
	int n = e->nr_vmas;
	double t0;

	if (e->kernel) {
		int have = k_nr_vmas(), made = n > have ? n - have : 0;
		char **v = malloc(sizeof(*v) * (size_t)(made ? made : 1));

		die_if(!v, "malloc");
		for (int i = 0; i < made; i++) {
			char *p = mmap(NULL, 2 * PAGE, PROT_READ,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			die_if(p == MAP_FAILED, "mmap");
			munmap(p, PAGE);
			v[i] = p + PAGE;
		}
		t0 = now_ns();
		for (int i = 0; i < iters; i++) {
			void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			die_if(p == MAP_FAILED, "mmap");
			munmap(p, PAGE);
		}
		r.ns = now_ns() - t0;
		for (int i = 0; i < made; i++)
			munmap(v[i], PAGE);
		free(v);
		return r;
	}
	smm_setup(e);
	for (int i = 0; i < n; i++) {
		int64_t a = smm_mmap(e->mm, 0, 2 * PAGE, SMM_PROT_READ,
				     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS);
		die_if(a < 0, "smm_mmap");
		smm_munmap(e->mm, (uint64_t)a, PAGE);
	}
	t0 = now_ns();
	for (int i = 0; i < iters; i++) {
		int64_t a = smm_mmap(e->mm, 0, PAGE,
				     SMM_PROT_READ | SMM_PROT_WRITE,
				     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS);
		die_if(a < 0, "smm_mmap");
		smm_munmap(e->mm, (uint64_t)a, PAGE);
	}
	r.ns = now_ns() - t0;
	smm_teardown(e);
	return r;
}

/* The anchor of access-hit and access-read: @iters 8-byte loads from
 * ordinary memory. One function, so that both rows time the same code. */
static __attribute__((noinline)) struct result plain_loads(uint64_t iters)
{
	static volatile uint64_t cell[512];
	struct result r = { 0, iters, -1, -1 };
	uint64_t sum = 0;
	double t0 = now_ns();

	for (uint64_t i = 0; i < iters; i++)
		sum += cell[i & 7];
	r.ns = now_ns() - t0;
	die_if(sum != 0, "plain load");
	return r;
}

/*
 * access-hit: an 8-byte load through smm_translate() inside an access
 * section, its translation in the TLB (the inline hit of softmm.h), one
 * section per 1,024 loads as an emulator's run loop would hold it; beside
 * it a plain load from ordinary memory ("linux").
 */
static struct result w_access_hit(struct env *e)
{
	const uint64_t iters = 20000000, per_section = 1024;
	struct result r = { 0, iters, -1, -1 };
	uint64_t sum = 0;
	double t0;

	if (e->kernel)
		return plain_loads(iters);
	smm_setup(e);
	int64_t a = smm_mmap(e->mm, 0, PAGE, SMM_PROT_READ | SMM_PROT_WRITE,
			     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS |
				     SMM_MAP_POPULATE);
	die_if(a < 0, "smm_mmap");
	t0 = now_ns();
	for (uint64_t i = 0; i < iters; i += per_section) {
		die_if(smm_access_begin(e->cpu), "smm_access_begin");
		for (uint64_t j = i; j < i + per_section; j++) {
			uint64_t addr = (uint64_t)a + (j & 7) * 8;
			volatile uint64_t *p = smm_translate(e->cpu, addr, 0);

			if (!p) {
				die_if(smm_access_fault(e->cpu, addr, 0),
				       "smm_access_fault");
				p = smm_translate(e->cpu, addr, 0);
			}
			sum += *p;
		}
		smm_access_end(e->cpu);
	}
	r.ns = now_ns() - t0;
	die_if(sum != 0, "load");
	smm_teardown(e);
	return r;
}

/* access-read: the same 8-byte load through smm_read(), which enters and
 * leaves an access section for each access. */
static struct result w_access_read(struct env *e)
{
	const uint64_t iters = 20000000;
	struct result r = { 0, iters, -1, -1 };
	uint64_t v, sum = 0;
	double t0;

	if (e->kernel)
		return plain_loads(iters);
	smm_setup(e);
	int64_t a = smm_mmap(e->mm, 0, PAGE, SMM_PROT_READ | SMM_PROT_WRITE,
			     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS |
				     SMM_MAP_POPULATE);
	die_if(a < 0, "smm_mmap");
	t0 = now_ns();
	for (uint64_t i = 0; i < iters; i++) {
		smm_read(e->cpu, (uint64_t)a + (i & 7) * 8, &v, 8, NULL);
		sum += v;
	}
	r.ns = now_ns() - t0;
	die_if(sum != 0, "load");
	smm_teardown(e);
	return r;
}

/*
 * gup-fast / gup-slow: pin and unpin one hot, present page through
 * GUP-fast (lockless walk) or slow GUP (VMA lock, PTE lock); beside it
 * ("linux") the kernel's process_vm_readv() of 8 bytes from our own
 * process: a remote GUP of one page plus an 8-byte copy, the cheapest
 * user-visible GUP the kernel offers.
 */
/*
 * uffd-missing: demand paging of 128 MiB, a handler thread supplying each
 * page (4 KiB copied) as the faulting thread stores one byte per page.
 * The kernel: real userfaultfd(2) (as root), the handler blocked in
 * poll(2) and read(2), resolving with UFFDIO_COPY. softmm: the event
 * queue read by a handler thread (smm_uffd_read(), smm_uffd_copy()), or
 * (uffd-missing-callback) the handler called in the faulting thread, or
 * (uffd-missing-poll) the handler thread with the faulting thread polling
 * for its wake before it sleeps (smm_uffd_set_poll()); the kernel has
 * neither mode, so their rows repeat the kernel's uffd.
 */
static uint8_t uffd_src[PAGE] __attribute__((aligned(4096))) = { 7 };

struct k_uffd_handler {
	int fd;
	uint64_t pages;
};

static void *k_uffd_handler(void *arg)
{
	struct k_uffd_handler *h = arg;
	struct pollfd pfd = { .fd = h->fd, .events = POLLIN };

	for (uint64_t n = 0; n < h->pages;) {
		struct uffd_msg msg;
		struct uffdio_copy c;

		die_if(poll(&pfd, 1, -1) != 1, "poll on the userfaultfd");
		if (read(h->fd, &msg, sizeof(msg)) != sizeof(msg))
			continue;
		die_if(msg.event != UFFD_EVENT_PAGEFAULT, "uffd event");
		c = (struct uffdio_copy){
			.dst = msg.arg.pagefault.address & ~(PAGE - 1),
			.src = (uintptr_t)uffd_src,
			.len = PAGE,
		};
		die_if(ioctl(h->fd, UFFDIO_COPY, &c) && errno != EEXIST,
		       "UFFDIO_COPY");
		n++;
	}
	return NULL;
}

static struct result k_uffd_missing(uint64_t len)
{
	struct result r = { 0, len / PAGE, -1, -1 };
	struct uffdio_api api = { .api = UFFD_API };
	struct k_uffd_handler h = { .pages = len / PAGE };
	struct uffdio_register reg;
	pthread_t t;
	double t0;
	char *p;

	h.fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	die_if(h.fd < 0, "userfaultfd(2) (needs root)");
	die_if(ioctl(h.fd, UFFDIO_API, &api) != 0, "UFFDIO_API");
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	die_if(p == MAP_FAILED, "mmap");
	reg = (struct uffdio_register){
		.range = { (uintptr_t)p, len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	die_if(ioctl(h.fd, UFFDIO_REGISTER, &reg) != 0, "UFFDIO_REGISTER");
	pthread_create(&t, NULL, k_uffd_handler, &h);
	t0 = now_ns();
	k_touch(p, len);
	r.ns = now_ns() - t0;
	pthread_join(t, NULL);
	munmap(p, len);
	close(h.fd);
	return r;
}

struct s_uffd_handler {
	struct smm_mm *mm;
	uint64_t pages;
};

/* The handler thread has a CPU switched to the mm, as softmm.h advises:
 * it keeps the mm alive, and its copies take frames from the CPU's cache
 * instead of the pool's lock. */
static void *s_uffd_handler(void *arg)
{
	struct s_uffd_handler *h = arg;
	struct smm_cpu *cpu = smm_cpu_attach(pool);

	die_if(!cpu, "attach");
	smm_cpu_switch_mm(cpu, h->mm);

	for (uint64_t n = 0; n < h->pages; n++) {
		struct smm_uffd_msg msg;
		int err;

		die_if(smm_uffd_read(h->mm, &msg, 0) != 0, "smm_uffd_read");
		err = smm_uffd_copy(h->mm, msg.address, uffd_src, PAGE, 0,
				    NULL);
		die_if(err && err != -EEXIST, "smm_uffd_copy");
	}
	smm_cpu_switch_mm(cpu, NULL);
	smm_cpu_detach(cpu);
	return NULL;
}

static int s_uffd_copy_cb(struct smm_mm *mm, const struct smm_uffd_msg *msg,
			  void *arg)
{
	int err = smm_uffd_copy(mm, msg->address, uffd_src, PAGE, 0, NULL);

	return err == -EEXIST ? 0 : err;
}

enum uffd_bench_mode {
	UFFD_QUEUE,
	UFFD_CALLBACK,
	UFFD_QUEUE_POLL
};

static struct result w_uffd(struct env *e, enum uffd_bench_mode mode)
{
	const uint64_t len = 128 * MiB;
	struct result r = { 0, len / PAGE, -1, -1 };
	struct s_uffd_handler h;
	pthread_t t;
	double t0;

	if (e->kernel)
		return k_uffd_missing(len);
	smm_setup(e);
	int64_t a = smm_mmap(e->mm, 0, len, SMM_PROT_READ | SMM_PROT_WRITE,
			     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS |
				     SMM_MAP_NORESERVE);
	die_if(a < 0, "smm_mmap");
	die_if(smm_uffd_register(e->mm, (uint64_t)a, len,
				 SMM_UFFD_REGISTER_MODE_MISSING),
	       "smm_uffd_register");
	h = (struct s_uffd_handler){ e->mm, len / PAGE };
	if (mode == UFFD_QUEUE_POLL)
		die_if(smm_uffd_set_poll(e->mm, 50000), "smm_uffd_set_poll");
	if (mode == UFFD_CALLBACK)
		die_if(smm_uffd_set_handler(e->mm, s_uffd_copy_cb, NULL),
		       "smm_uffd_set_handler");
	else
		pthread_create(&t, NULL, s_uffd_handler, &h);
	t0 = now_ns();
	smm_touch(e->cpu, (uint64_t)a, len);
	r.ns = now_ns() - t0;
	if (mode != UFFD_CALLBACK)
		pthread_join(t, NULL);
	smm_teardown(e);
	return r;
}

static struct result w_uffd_missing(struct env *e)
{
	return w_uffd(e, UFFD_QUEUE);
}

static struct result w_uffd_missing_poll(struct env *e)
{
	return w_uffd(e, UFFD_QUEUE_POLL);
}

static struct result w_uffd_missing_callback(struct env *e)
{
	return w_uffd(e, UFFD_CALLBACK);
}

static struct result w_gup(struct env *e, bool fast)
{
	const uint64_t iters = fast ? 2000000 : 1000000;
	struct result r = { 0, iters, -1, -1 };
	double t0;

	if (e->kernel) {
		static uint64_t src = 42;
		uint64_t dst = 0;
		struct iovec l = { &dst, 8 }, rv = { &src, 8 };
		pid_t me = getpid();

		t0 = now_ns();
		for (uint64_t i = 0; i < iters; i++)
			die_if(process_vm_readv(me, &l, 1, &rv, 1, 0) != 8,
			       "process_vm_readv");
		r.ns = now_ns() - t0;
		die_if(dst != 42, "process_vm_readv data");
		return r;
	}
	smm_setup(e);
	int64_t a = smm_mmap(e->mm, 0, PAGE, SMM_PROT_READ | SMM_PROT_WRITE,
			     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS |
				     SMM_MAP_POPULATE);
	die_if(a < 0, "smm_mmap");
	struct smm_page *pg;
	t0 = now_ns();
	for (uint64_t i = 0; i < iters; i++) {
		long n = fast ? smm_pin_user_pages_fast(e->cpu, (uint64_t)a, 1,
							SMM_FOLL_WRITE, &pg) :
				smm_pin_user_pages(e->mm, (uint64_t)a, 1,
						   SMM_FOLL_WRITE, &pg);

		die_if(n != 1, "pin");
		smm_unpin_user_pages(&pg, 1);
	}
	r.ns = now_ns() - t0;
	smm_teardown(e);
	return r;
}

static struct result w_gup_fast(struct env *e)
{
	return w_gup(e, true);
}

static struct result w_gup_slow(struct env *e)
{
	return w_gup(e, false);
}

/* What memset-4k and each memset-threads thread zero: 256 MiB, larger
 * than the caches, mapped by the host once (so cold, not faulting). */
#define MEMSET_LEN (256 * MiB)

/* The host buffer of memset thread @i, populated at its first use. */
static char *memset_buf(int i)
{
	static char *buf[MAX_THREADS];

	if (!buf[i]) {
		buf[i] = mmap(NULL, MEMSET_LEN, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1,
			      0);
		die_if(buf[i] == MAP_FAILED, "mmap");
	}
	return buf[i];
}

/* Zero [buf, buf + len) a 4 KiB page at a time, as a fault zeroes. */
static void memset_pages(char *buf, uint64_t len)
{
	for (uint64_t o = 0; o < len; o += PAGE)
		memset(buf + o, 0, PAGE);
	__asm__ __volatile__("" ::"r"(buf) : "memory");
}

/* memset-4k: zero a cache-cold 4 KiB page of memory the host has already
 * mapped, a page at a time: the floor under a fault that zeroes its page
 * alone (softmm zeroes batches in runs of frames, frame.c). Host-only. */
static struct result w_memset(struct env *e)
{
	struct result r = { 0, MEMSET_LEN / PAGE, -1, -1 };
	char *buf = memset_buf(0);
	double t0;

	t0 = now_ns();
	memset_pages(buf, MEMSET_LEN);
	r.ns = now_ns() - t0;
	return r;
}

/* One thread of a multi-threaded workload (run_threads()). */
struct thr {
	struct env *e;
	pthread_barrier_t *bar; /* wait on it once set up: the start */
	int idx;
	uint64_t len;	/* fault-threads: per thread */
	uint64_t base;	/* fault-shared: softmm address, or host address */
	uint64_t unit;	/* fault-shared: a page, or a chunk, in turn */
	double t_start; /* set by the thread as it leaves the barrier */
	double t_end;	/* set by the thread when its timed part is done */
};

/* Wait for the start, and note when this thread began (run_threads()). */
static void thr_start(struct thr *t)
{
	pthread_barrier_wait(t->bar);
	t->t_start = now_ns();
}

/*
 * Start e->threads threads of @fn on @t, release them together once each
 * is set up (the barrier), and return the ns from the first one's start
 * to the end of the last one. Each thread notes its own start
 * (thr_start()): with more threads than cores, this thread may run long
 * after the barrier released the others, and a start taken here would
 * cut their time short (two threads once "scaled" 2.95x on 2 cores). The
 * caller fills what @fn needs beyond e, bar and idx.
 */
static double run_threads(struct env *e, void *(*fn)(void *), struct thr *t)
{
	pthread_t tid[MAX_THREADS];
	pthread_barrier_t bar;
	double start = 0, end = 0;

	pthread_barrier_init(&bar, NULL, (unsigned)e->threads + 1);
	for (int i = 0; i < e->threads; i++) {
		t[i].e = e;
		t[i].bar = &bar;
		t[i].idx = i;
		pthread_create(&tid[i], NULL, fn, &t[i]);
	}
	pthread_barrier_wait(&bar);
	for (int i = 0; i < e->threads; i++) {
		pthread_join(tid[i], NULL);
		if (t[i].t_end > end)
			end = t[i].t_end;
		if (!i || t[i].t_start < start)
			start = t[i].t_start;
	}
	pthread_barrier_destroy(&bar);
	return end - start;
}

/* fault-threads: fault-anon on N threads over disjoint regions. */

static void *fault_thread(void *arg)
{
	struct thr *t = arg;
	struct env *e = t->e;

	if (e->kernel) {
		char *p = mmap(NULL, t->len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		die_if(p == MAP_FAILED, "mmap");
		thr_start(t);
		k_touch(p, t->len);
		munmap(p, t->len);
	} else {
		struct smm_cpu *cpu = smm_cpu_attach(pool);

		die_if(!cpu, "attach");
		smm_cpu_switch_mm(cpu, e->mm);
		int64_t a = smm_mmap(e->mm, 0, t->len,
				     SMM_PROT_READ | SMM_PROT_WRITE,
				     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS);
		die_if(a < 0, "smm_mmap");
		thr_start(t);
		smm_touch(cpu, (uint64_t)a, t->len);
		smm_munmap(e->mm, (uint64_t)a, t->len);
		smm_cpu_switch_mm(cpu, NULL);
		smm_cpu_detach(cpu);
	}
	t->t_end = now_ns();
	return NULL;
}

static struct result w_fault_threads(struct env *e)
{
	const uint64_t len = 128 * MiB; /* per thread, as fault-anon */
	struct thr t[MAX_THREADS];
	struct result r = { 0, (uint64_t)e->threads * (len / PAGE), -1, -1 };

	if (!e->kernel) {
		struct smm_mm_opts o = { .scheme = e->scheme,
					 .flags = e->mm_flags };

		e->mm = smm_mm_create(pool, &o);
		die_if(!e->mm, "mm");
	}
	for (int i = 0; i < e->threads; i++)
		t[i] = (struct thr){ .len = len };
	r.ns = run_threads(e, fault_thread, t);
	if (!e->kernel)
		smm_mm_destroy(e->mm);
	return r;
}

/*
 * memset-threads: memset-4k on N threads at once, each over its own
 * 256 MiB (the same size and method): what this machine's memory
 * bandwidth allows N faulting threads at best, against which
 * fault-threads' scaling is judged (print_scaling()). Host-only.
 */
static void *memset_thread(void *arg)
{
	struct thr *t = arg;

	thr_start(t);
	memset_pages((char *)(uintptr_t)t->base, t->len);
	t->t_end = now_ns();
	return NULL;
}

static struct result w_memset_threads(struct env *e)
{
	struct thr t[MAX_THREADS];
	struct result r = { 0, (uint64_t)e->threads * (MEMSET_LEN / PAGE), -1,
			    -1 };

	for (int i = 0; i < e->threads; i++)
		t[i] = (struct thr){ .len = MEMSET_LEN,
				     .base = (uint64_t)(uintptr_t)memset_buf(
					     i) };
	r.ns = run_threads(e, memset_thread, t);
	return r;
}

/*
 * fault-vs-mmap: one thread faults in 64 MiB (ns per page of that thread)
 * while a second one keeps taking mmap_lock for write: mmap, touch and
 * munmap of one page, in a loop. With per-VMA locks the faults do not wait
 * for the writer; with mmap_lock only they queue behind it.
 */
struct mix {
	struct env *e;
	pthread_barrier_t *bar;
	atomic_bool *stop;
	long writer_ops;
};

static void *mix_writer(void *arg)
{
	struct mix *m = arg;
	struct env *e = m->e;
	struct smm_cpu *cpu = NULL;

	if (!e->kernel) {
		cpu = smm_cpu_attach(pool);
		die_if(!cpu, "attach");
		smm_cpu_switch_mm(cpu, e->mm);
	}
	pthread_barrier_wait(m->bar);
	while (!atomic_load_explicit(m->stop, memory_order_relaxed)) {
		if (e->kernel) {
			char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			die_if(p == MAP_FAILED, "mmap");
			p[0] = 1;
			munmap(p, PAGE);
		} else {
			int64_t a = smm_mmap(
				e->mm, 0, PAGE, SMM_PROT_READ | SMM_PROT_WRITE,
				SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS);
			die_if(a < 0, "smm_mmap");
			die_if(smm_fill(cpu, (uint64_t)a, 1, 1, NULL), "store");
			smm_munmap(e->mm, (uint64_t)a, PAGE);
		}
		m->writer_ops++;
	}
	if (cpu) {
		smm_cpu_switch_mm(cpu, NULL);
		smm_cpu_detach(cpu);
	}
	return NULL;
}

static struct result w_fault_vs_mmap(struct env *e)
{
	const uint64_t len = 64 * MiB;
	struct result r = { 0, len / PAGE, -1, -1 };
	pthread_barrier_t bar;
	atomic_bool stop = false;
	struct mix m = { e, &bar, &stop, 0 };
	pthread_t tid;
	double t0;

	pthread_barrier_init(&bar, NULL, 2);
	if (e->kernel) {
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		die_if(p == MAP_FAILED, "mmap");
		pthread_create(&tid, NULL, mix_writer, &m);
		pthread_barrier_wait(&bar);
		t0 = now_ns();
		k_touch(p, len);
		r.ns = now_ns() - t0;
		atomic_store(&stop, true);
		pthread_join(tid, NULL);
		munmap(p, len);
	} else {
		struct smm_mm_opts o = { .scheme = e->scheme,
					 .flags = e->mm_flags };
		struct smm_cpu *cpu;

		e->mm = smm_mm_create(pool, &o);
		cpu = smm_cpu_attach(pool);
		die_if(!e->mm || !cpu, "setup");
		smm_cpu_switch_mm(cpu, e->mm);
		int64_t a = smm_mmap(e->mm, 0, len,
				     SMM_PROT_READ | SMM_PROT_WRITE,
				     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS);
		die_if(a < 0, "smm_mmap");
		pthread_create(&tid, NULL, mix_writer, &m);
		pthread_barrier_wait(&bar);
		t0 = now_ns();
		smm_touch(cpu, (uint64_t)a, len);
		r.ns = now_ns() - t0;
		atomic_store(&stop, true);
		pthread_join(tid, NULL);
		smm_cpu_switch_mm(cpu, NULL);
		smm_mm_destroy(e->mm);
		smm_cpu_detach(cpu);
	}
	pthread_barrier_destroy(&bar);
	return r;
}

/*
 * fault-shared-pte/N, fault-shared-pmd/N: N threads fault disjoint parts
 * of one 256 MiB region whose page tables they share. -pte: thread i
 * stores to pages i, i + N, ...: every PTE table is filled by all the
 * threads at once (its lock is contended). -pmd: thread i faults every
 * page of the 2 MiB chunks i, i + N, ...: the threads allocate PTE tables
 * into one PMD table at once. The region lies in one PMD table: at a fixed
 * 1 GiB-aligned address on softmm, over-mapped and aligned to 256 MiB on
 * the kernel. ns per page of all threads together.
 */
#define SHARED_LEN (256 * MiB)

static void *shared_thread(void *arg)
{
	struct thr *t = arg;
	struct env *e = t->e;
	uint64_t stride = (uint64_t)e->threads * t->unit;
	struct smm_cpu *cpu = NULL;

	if (!e->kernel) {
		cpu = smm_cpu_attach(pool);
		die_if(!cpu, "attach");
		smm_cpu_switch_mm(cpu, e->mm);
	}
	thr_start(t);
	for (uint64_t o = (uint64_t)t->idx * t->unit; o < SHARED_LEN;
	     o += stride) {
		if (e->kernel)
			k_touch((char *)(uintptr_t)(t->base + o), t->unit);
		else
			smm_touch(cpu, t->base + o, t->unit);
	}
	t->t_end = now_ns();
	if (cpu) {
		smm_cpu_switch_mm(cpu, NULL);
		smm_cpu_detach(cpu);
	}
	return NULL;
}

static struct result w_fault_shared(struct env *e, uint64_t unit)
{
	struct thr t[MAX_THREADS];
	struct result r = { 0, SHARED_LEN / PAGE, -1, -1 };
	char *map = NULL;
	uint64_t base;

	if (e->kernel) {
		map = mmap(NULL, 2 * SHARED_LEN, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		die_if(map == MAP_FAILED, "mmap");
		base = ((uintptr_t)map + SHARED_LEN - 1) & ~(SHARED_LEN - 1);
	} else {
		struct smm_mm_opts o = { .scheme = e->scheme,
					 .flags = e->mm_flags };
		int64_t a;

		e->mm = smm_mm_create(pool, &o);
		die_if(!e->mm, "mm");
		a = smm_mmap(e->mm, 0x200000000000ULL, SHARED_LEN,
			     SMM_PROT_READ | SMM_PROT_WRITE,
			     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS |
				     SMM_MAP_FIXED_NOREPLACE);
		die_if(a < 0, "smm_mmap");
		base = (uint64_t)a;
	}
	for (int i = 0; i < e->threads; i++)
		t[i] = (struct thr){ .base = base, .unit = unit };
	r.ns = run_threads(e, shared_thread, t);
	if (e->kernel)
		munmap(map, 2 * SHARED_LEN);
	else
		smm_mm_destroy(e->mm);
	return r;
}

static struct result w_fault_shared_pte(struct env *e)
{
	return w_fault_shared(e, PAGE);
}

static struct result w_fault_shared_pmd(struct env *e)
{
	return w_fault_shared(e, 2 * MiB);
}

/* xorshift64: the fixed-seed random numbers of the workloads below. */
static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/*
 * alloc-dontneed: what a memory allocator does to a heap. In a 1 GiB
 * MAP_NORESERVE region, this thread stores one byte per page of 20,000
 * random 64 KiB blocks while a second thread MADV_DONTNEEDs random 64 KiB
 * blocks of the same region, until the first is done. Both pick blocks
 * with fixed seeds. ns per page stored to by the first thread (a fault,
 * unless its block is still present from an earlier store); the
 * page-table bytes at the end.
 */
#define AD_LEN	  GiB
#define AD_BLOCK  (64 * 1024ULL)
#define AD_BLOCKS 20000

struct ad_thr {
	struct env *e;
	pthread_barrier_t *bar;
	uint64_t base;
	atomic_bool *stop;
};

static void *ad_dontneed_thread(void *arg)
{
	struct ad_thr *t = arg;
	struct env *e = t->e;
	struct smm_cpu *cpu = NULL;
	uint64_t seed = 0x2545f4914f6cdd1dULL;

	if (!e->kernel) {
		cpu = smm_cpu_attach(pool);
		die_if(!cpu, "attach");
		smm_cpu_switch_mm(cpu, e->mm);
	}
	pthread_barrier_wait(t->bar);
	while (!atomic_load_explicit(t->stop, memory_order_relaxed)) {
		uint64_t o = xorshift64(&seed) % (AD_LEN / AD_BLOCK) * AD_BLOCK;

		if (e->kernel)
			die_if(madvise((void *)(uintptr_t)(t->base + o),
				       AD_BLOCK, MADV_DONTNEED),
			       "madvise");
		else
			die_if(smm_madvise(e->mm, t->base + o, AD_BLOCK,
					   SMM_MADV_DONTNEED),
			       "smm_madvise");
	}
	if (cpu) {
		smm_cpu_switch_mm(cpu, NULL);
		smm_cpu_detach(cpu);
	}
	return NULL;
}

static struct result w_alloc_dontneed(struct env *e)
{
	struct result r = { 0, AD_BLOCKS * (AD_BLOCK / PAGE), -1, -1 };
	pthread_barrier_t bar;
	atomic_bool stop = false;
	struct ad_thr t = { e, &bar, 0, &stop };
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	struct smm_cpu *cpu = NULL;
	char *map = NULL;
	pthread_t tid;
	long pt0 = 0;
	double t0;

	if (e->kernel) {
		map = mmap(NULL, AD_LEN, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		die_if(map == MAP_FAILED, "mmap");
		t.base = (uintptr_t)map;
	} else {
		struct smm_mm_opts o = { .scheme = e->scheme,
					 .flags = e->mm_flags };
		int64_t a;

		e->mm = smm_mm_create(pool, &o);
		cpu = smm_cpu_attach(pool);
		die_if(!e->mm || !cpu, "setup");
		smm_cpu_switch_mm(cpu, e->mm);
		a = smm_mmap(e->mm, 0, AD_LEN, SMM_PROT_READ | SMM_PROT_WRITE,
			     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS |
				     SMM_MAP_NORESERVE);
		die_if(a < 0, "smm_mmap");
		t.base = (uint64_t)a;
	}
	pthread_barrier_init(&bar, NULL, 2);
	pthread_create(&tid, NULL, ad_dontneed_thread, &t);
	pthread_barrier_wait(&bar);
	/* after the second thread's stack got its page tables */
	if (e->kernel)
		pt0 = vmpte_bytes();
	t0 = now_ns();
	for (int i = 0; i < AD_BLOCKS; i++) {
		uint64_t o = xorshift64(&seed) % (AD_LEN / AD_BLOCK) * AD_BLOCK;

		if (e->kernel)
			k_touch(map + o, AD_BLOCK);
		else
			smm_touch(cpu, t.base + o, AD_BLOCK);
	}
	r.ns = now_ns() - t0;
	atomic_store(&stop, true);
	pthread_join(tid, NULL);
	pthread_barrier_destroy(&bar);
	if (e->kernel) {
		r.pt_bytes = vmpte_bytes() - pt0;
		munmap(map, AD_LEN);
	} else {
		struct smm_mm_stats st;

		smm_mm_stats(e->mm, &st);
		r.pt_bytes = (long)st.pt_bytes;
		smm_cpu_switch_mm(cpu, NULL);
		smm_mm_destroy(e->mm);
		smm_cpu_detach(cpu);
	}
	return r;
}

/*
 * sparse-dontneed: reserve 1 TiB (MAP_NORESERVE, 1 GiB-aligned: at a fixed
 * address on softmm, over-mapped and aligned on the kernel), load one byte
 * per 2 MiB (524,288 zero-page faults, each in a PTE table of its own: 2 GiB
 * of tables), then MADV_DONTNEED the whole 1 TiB at once. ns per page
 * loaded, the DONTNEED included; the point is the page-table bytes left,
 * what each scheme frees of a sparse region's tables.
 */
#define SPARSE_LEN (1ULL << 40)

static struct result w_sparse_dontneed(struct env *e)
{
	struct result r = { 0, SPARSE_LEN / (2 * MiB), -1, -1 };
	double t0;
	char c;

	if (e->kernel) {
		volatile char sink;
		long pt0 = vmpte_bytes();
		char *map = mmap(NULL, SPARSE_LEN + GiB, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				 -1, 0);
		die_if(map == MAP_FAILED, "mmap");
		char *p = (char *)(((uintptr_t)map + GiB - 1) & ~(GiB - 1));

		t0 = now_ns();
		for (uint64_t o = 0; o < SPARSE_LEN; o += 2 * MiB)
			sink = ((volatile char *)p)[o];
		die_if(madvise(p, SPARSE_LEN, MADV_DONTNEED), "madvise");
		r.ns = now_ns() - t0;
		r.pt_bytes = vmpte_bytes() - pt0;
		munmap(map, SPARSE_LEN + GiB);
		(void)sink;
		return r;
	}
	smm_setup(e);
	int64_t a =
		smm_mmap(e->mm, 0x200000000000ULL, SPARSE_LEN,
			 SMM_PROT_READ | SMM_PROT_WRITE,
			 SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS |
				 SMM_MAP_NORESERVE | SMM_MAP_FIXED_NOREPLACE);
	die_if(a < 0, "smm_mmap");
	t0 = now_ns();
	for (uint64_t o = 0; o < SPARSE_LEN; o += 2 * MiB)
		die_if(smm_read(e->cpu, (uint64_t)a + o, &c, 1, NULL), "load");
	die_if(smm_madvise(e->mm, (uint64_t)a, SPARSE_LEN, SMM_MADV_DONTNEED),
	       "smm_madvise");
	r.ns = now_ns() - t0;
	struct smm_mm_stats st;
	smm_mm_stats(e->mm, &st);
	r.pt_bytes = (long)st.pt_bytes;
	smm_teardown(e);
	return r;
}

/*
 * File workloads: will-it-scale's page_fault2 and page_fault3, read faults
 * on a cached file, msync. Each call makes its own host file of FILE_LEN
 * bytes in FILE_DIR, a hole sized with ftruncate() as will-it-scale's, and
 * unlinks it at once: it is gone from the disk when the last descriptor
 * closes (softmm keeps a duplicate until smm_file_close()), whatever way
 * the bench ends. The kernel maps it with mmap(2); softmm with
 * smm_file_open() of the same kind of host file and smm_mmap_file(), its
 * page cache in front of the host file. FILE_DIR must be a disk filesystem,
 * not tmpfs, or msync writes nothing anywhere: said once if it is.
 */
#define FILE_DIR "/var/tmp"
#define FILE_LEN (128 * MiB)

static int host_file(uint64_t len)
{
	static bool checked;
	char path[] = FILE_DIR "/softmm-bench.XXXXXX";
	struct statfs sf;
	int fd;

	if (!checked && !statfs(FILE_DIR, &sf) && sf.f_type == TMPFS_MAGIC)
		fprintf(stderr, "bench: %s is tmpfs: msync writes to no disk\n",
			FILE_DIR);
	checked = true;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "bench: cannot create a file in %s: %s\n",
			FILE_DIR, strerror(errno));
		exit(1);
	}
	unlink(path);
	die_if(ftruncate(fd, (off_t)len), "ftruncate");
	return fd;
}

/* The file workloads' softmm side: a file in front of a new host file, and
 * after it, every frame back in the pool (the page cache included). */
static struct smm_file *smm_file_setup(struct env *e, uint64_t len)
{
	int fd = host_file(len);
	struct smm_file *f;

	smm_setup(e);
	f = smm_file_open(pool, fd);
	if (!f) {
		fprintf(stderr, "bench: smm_file_open: %s\n", strerror(errno));
		exit(1);
	}
	close(fd); /* softmm holds its own */
	return f;
}

static void smm_file_teardown(struct env *e, struct smm_file *f)
{
	struct smm_pool_stats ps;

	/* The host file is unlinked: the kernel drops its dirty pages at
	 * its last close, unwritten. Truncating first does the same here,
	 * rather than have the close write 128 MiB to the host for nothing. */
	die_if(smm_file_truncate(f, 0), "smm_file_truncate");
	die_if(smm_file_close(f), "smm_file_close");
	smm_teardown(e); /* waits for deferred frees: the mappings' ones */
	smm_pool_stats(pool, &ps);
	if (ps.file_pages || ps.anon_pages || ps.pt_pages) {
		fprintf(stderr,
			"bench: pool not empty after a file workload: %llu "
			"page-cache, %llu anonymous, %llu page-table frames\n",
			(unsigned long long)ps.file_pages,
			(unsigned long long)ps.anon_pages,
			(unsigned long long)ps.pt_pages);
		exit(1);
	}
}

enum file_access {
	FA_PRIVATE_WRITE, /* page-fault2: COW from the page cache */
	FA_SHARED_WRITE,  /* page-fault3: dirty the page-cache page */
	FA_SHARED_READ,	  /* read-fault-file: map the page-cache page */
};

/* Page faults the calling thread has taken so far (the kernel's count). */
static long k_faults(void)
{
	struct rusage ru;

	die_if(getrusage(RUSAGE_THREAD, &ru), "getrusage");
	return ru.ru_minflt + ru.ru_majflt;
}

static uint64_t smm_faults(struct smm_mm *mm)
{
	struct smm_mm_stats st;

	smm_mm_stats(mm, &st);
	return st.faults;
}

/*
 * fault-anon-64k: fault-anon with 64 KiB multi-size THP (Linux 6.8's
 * mTHP): softmm's pool with smm_pool_set_mthp(SMM_MTHP_64K) for the run;
 * the kernel with hugepages-64kB/enabled = always (sysfs, root only; the
 * old setting restored after the run) and THP no longer disabled for the
 * process (PR_SET_THP_DISABLE, which run_all() sets, disables every size).
 * PMD-size THP stays as the system has it (inherit: madvise here), which
 * never applies to a plain mmap. Faults per page are shown (1/16 when
 * every block is mapped whole; the first and last blocks of an unaligned
 * region are not). Without the knob the kernel side runs without mTHP
 * and the table says so.
 */
#define K_MTHP_64K "/sys/kernel/mm/transparent_hugepage/hugepages-64kB/enabled"
static bool k_mthp_missing; /* the kernel side ran without mTHP */

/* The word in brackets of the sysfs setting at @path, or "" on failure. */
static void k_mthp_get(const char *path, char *word, size_t size)
{
	char buf[128], *a, *b;
	FILE *f = fopen(path, "r");

	word[0] = 0;
	if (!f)
		return;
	if (fgets(buf, sizeof(buf), f) && (a = strchr(buf, '[')) &&
	    (b = strchr(a, ']')) && (size_t)(b - a) < size) {
		memcpy(word, a + 1, (size_t)(b - a - 1));
		word[b - a - 1] = 0;
	}
	fclose(f);
}

static bool k_mthp_set(const char *path, const char *word)
{
	FILE *f = fopen(path, "w");
	bool ok;

	if (!f)
		return false;
	ok = fputs(word, f) >= 0;
	return fclose(f) == 0 && ok;
}

static struct result w_fault_anon_64k(struct env *e)
{
	const uint64_t len = 128 * MiB;
	struct result r = { 0, len / PAGE, -1, -1 };
	double t0;

	if (e->kernel) {
		char old[32];
		bool on;
		long f0;
		char *p;

		k_mthp_get(K_MTHP_64K, old, sizeof(old));
		on = old[0] && (!strcmp(old, "always") ||
				k_mthp_set(K_MTHP_64K, "always"));
		k_mthp_missing |= !on;
		if (on)
			prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0);
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		die_if(p == MAP_FAILED, "mmap");
		f0 = k_faults();
		t0 = now_ns();
		k_touch(p, len);
		r.faults = (double)(k_faults() - f0);
		munmap(p, len);
		r.ns = now_ns() - t0;
		if (on) {
			prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
			if (strcmp(old, "always"))
				k_mthp_set(K_MTHP_64K, old);
		}
		return r;
	}
	smm_setup(e);
	die_if(smm_pool_set_mthp(pool, SMM_MTHP_64K), "smm_pool_set_mthp");
	int64_t a = smm_mmap(e->mm, 0, len, SMM_PROT_READ | SMM_PROT_WRITE,
			     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS);
	die_if(a < 0, "smm_mmap");
	t0 = now_ns();
	smm_touch(e->cpu, (uint64_t)a, len);
	r.faults = (double)smm_faults(e->mm);
	smm_munmap(e->mm, (uint64_t)a, len);
	r.ns = now_ns() - t0;
	smm_pool_set_mthp(pool, 0);
	smm_teardown(e);
	return r;
}

/*
 * One pass: map the file, one access per page, unmap; the mmap is not
 * timed, the accesses and the munmap are (as fault-anon). Returns the ns
 * and the faults taken in *@r.
 */
static void k_file_pass(int fd, uint64_t len, enum file_access how,
			struct result *r)
{
	int prot = how == FA_SHARED_READ ? PROT_READ : PROT_READ | PROT_WRITE;
	int flags = how == FA_PRIVATE_WRITE ? MAP_PRIVATE : MAP_SHARED;
	char *p = mmap(NULL, len, prot, flags, fd, 0);
	volatile char sink;
	long f0;
	double t0;

	die_if(p == MAP_FAILED, "mmap");
	f0 = k_faults();
	t0 = now_ns();
	if (how == FA_SHARED_READ)
		for (uint64_t o = 0; o < len; o += PAGE)
			sink = ((volatile char *)p)[o];
	else
		k_touch(p, len);
	munmap(p, len);
	r->ns = now_ns() - t0;
	r->faults = (double)(k_faults() - f0);
	(void)sink;
}

static void smm_file_pass(struct env *e, struct smm_file *f, uint64_t len,
			  enum file_access how, struct result *r)
{
	int prot = how == FA_SHARED_READ ? SMM_PROT_READ :
					   SMM_PROT_READ | SMM_PROT_WRITE;
	int flags = how == FA_PRIVATE_WRITE ? SMM_MAP_PRIVATE : SMM_MAP_SHARED;
	int64_t a = smm_mmap_file(e->mm, 0, len, prot, flags, f, 0);
	uint64_t f0 = smm_faults(e->mm);
	double t0;
	char c;

	if (a < 0) {
		fprintf(stderr, "bench: smm_mmap_file: %s\n",
			strerror((int)-a));
		exit(1);
	}
	t0 = now_ns();
	if (how == FA_SHARED_READ)
		for (uint64_t o = 0; o < len; o += PAGE)
			die_if(smm_read(e->cpu, (uint64_t)a + o, &c, 1, NULL),
			       "load");
	else
		smm_touch(e->cpu, (uint64_t)a, len);
	die_if(smm_munmap(e->mm, (uint64_t)a, len), "smm_munmap");
	r->ns = now_ns() - t0;
	r->faults = (double)(smm_faults(e->mm) - f0);
}

/*
 * page-fault2, page-fault3, read-fault-file: a first, untimed pass brings
 * every page of the file into the page cache (will-it-scale's steady
 * state: its file stays cached from one iteration to the next); the
 * second pass is timed. ns per page. page-fault3's stores leave the page
 * cache dirty on both sides and neither side writes them back: the kernel
 * writes back in the background only after 30 s (dirty_expire) or under
 * memory pressure, neither of which a run meets, and drops the dirty pages
 * of the unlinked file at its close; softmm keeps them dirty, and the
 * truncation before the close drops them (smm_file_teardown()).
 */
static struct result w_file_fault(struct env *e, enum file_access how)
{
	const uint64_t len = FILE_LEN;
	struct result r = { 0, len / PAGE, -1, -1 };

	if (e->kernel) {
		int fd = host_file(len);

		k_file_pass(fd, len, how, &r);
		k_file_pass(fd, len, how, &r);
		close(fd);
		return r;
	}
	struct smm_file *f = smm_file_setup(e, len);

	smm_file_pass(e, f, len, how, &r);
	smm_file_pass(e, f, len, how, &r);
	smm_file_teardown(e, f);
	return r;
}

static struct result w_page_fault2(struct env *e)
{
	return w_file_fault(e, FA_PRIVATE_WRITE);
}

static struct result w_page_fault3(struct env *e)
{
	return w_file_fault(e, FA_SHARED_WRITE);
}

static struct result w_read_fault_file(struct env *e)
{
	return w_file_fault(e, FA_SHARED_READ);
}

/*
 * msync-128m: map a new 128 MiB file MAP_SHARED, store one byte in every
 * page (not timed), then msync(MS_SYNC) all of it, timed alone: ns per
 * page written back. The kernel writes the pages to the disk and waits;
 * softmm pwrite()s each dirty page to the host file and fdatasync()s it:
 * the same disk writes, plus softmm's copies into the host's page cache.
 * On both sides the file is new, so the disk blocks are allocated too.
 */
static struct result w_msync(struct env *e)
{
	const uint64_t len = FILE_LEN;
	struct result r = { 0, len / PAGE, -1, -1 };
	double t0;

	if (e->kernel) {
		int fd = host_file(len);
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
			       fd, 0);

		die_if(p == MAP_FAILED, "mmap");
		k_touch(p, len);
		t0 = now_ns();
		die_if(msync(p, len, MS_SYNC), "msync");
		r.ns = now_ns() - t0;
		munmap(p, len);
		close(fd);
		return r;
	}
	struct smm_file *f = smm_file_setup(e, len);
	int64_t a = smm_mmap_file(e->mm, 0, len, SMM_PROT_READ | SMM_PROT_WRITE,
				  SMM_MAP_SHARED, f, 0);

	die_if(a < 0, "smm_mmap_file");
	smm_touch(e->cpu, (uint64_t)a, len);
	t0 = now_ns();
	die_if(smm_msync(e->mm, (uint64_t)a, len, SMM_MS_SYNC), "smm_msync");
	r.ns = now_ns() - t0;
	die_if(smm_munmap(e->mm, (uint64_t)a, len), "smm_munmap");
	smm_file_teardown(e, f);
	return r;
}

/* ---- fork, copy-on-write and mremap ---- */

#define FORK_LEN (256 * MiB)

/* The anonymous 256 MiB every fork workload starts from: mapped, and
 * written one byte per page (so each page is resident and exclusive). */
static char *k_fork_setup(void)
{
	char *p = mmap(NULL, FORK_LEN, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	die_if(p == MAP_FAILED, "mmap");
	k_touch(p, FORK_LEN);
	return p;
}

static uint64_t smm_fork_setup(struct env *e)
{
	int64_t a;

	smm_setup(e);
	a = smm_mmap(e->mm, 0, FORK_LEN, SMM_PROT_READ | SMM_PROT_WRITE,
		     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS);
	die_if(a < 0, "smm_mmap");
	smm_touch(e->cpu, (uint64_t)a, FORK_LEN);
	return (uint64_t)a;
}

/*
 * The kernel's side of fork-256m and cow-fault, in the process this runs
 * in: map and write 256 MiB, then time fork(2) as the parent sees it
 * (@what "fork"), or the parent's stores to every page while the child
 * waits ("cow"). Returns the ns.
 */
static double k_fork_measure(const char *what)
{
	char *p = k_fork_setup();
	int fds[2];
	double t0, ns;
	pid_t pid;
	char c;

	die_if(pipe(fds), "pipe");
	t0 = now_ns();
	pid = fork();
	if (pid == 0) {
		close(fds[1]);
		_exit(read(fds[0], &c, 1) < 0);
	}
	ns = now_ns() - t0;
	die_if(pid < 0, "fork");
	close(fds[0]);
	if (!strcmp(what, "cow")) {
		t0 = now_ns();
		k_touch(p, FORK_LEN);
		ns = now_ns() - t0;
	}
	close(fds[1]);
	waitpid(pid, NULL, 0);
	munmap(p, FORK_LEN);
	return ns;
}

/*
 * The same in a fresh process (this program run again, with
 * SOFTMM_BENCH_KERNEL_FORK=@what; cmd_bench() answers on stdout): this
 * process holds the frame pool, gigabytes of written private memory that
 * its own fork would copy too. The fresh one holds what a small program
 * does, and the 256 MiB.
 */
static double k_fork_fresh(const char *what)
{
	char *argv[] = { "softmm", "bench", NULL }, buf[64] = "";
	posix_spawn_file_actions_t fa;
	char env[64], *envp[] = { env, NULL };
	int fds[2], err;
	ssize_t n;
	pid_t pid;

	snprintf(env, sizeof(env), "SOFTMM_BENCH_KERNEL_FORK=%s", what);
	die_if(pipe(fds), "pipe");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	err = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	die_if(err, "posix_spawn");
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	waitpid(pid, NULL, 0);
	die_if(n <= 0, "the fork measurement");
	return strtod(buf, NULL);
}

/*
 * fork-256m: fork an address space with 256 MiB of written anonymous
 * memory, timed alone: ns per page of copy_page_range() and the rest of
 * fork (every entry made read-only in the parent and copied to the child,
 * each page's counts raised). The kernel's is fork(2) as the parent sees
 * it returning, measured in a fresh process (k_fork_fresh()).
 */
static struct result w_fork(struct env *e)
{
	struct result r = { 0, FORK_LEN / PAGE, -1, -1 };
	double t0;

	if (e->kernel) {
		r.ns = k_fork_fresh("fork");
		return r;
	}
	uint64_t a = smm_fork_setup(e);
	struct smm_mm *child;

	t0 = now_ns();
	child = smm_fork(e->mm);
	r.ns = now_ns() - t0;
	die_if(!child, "smm_fork");
	r.pt_bytes = -1;
	smm_mm_destroy(child);
	smm_munmap(e->mm, a, FORK_LEN);
	smm_teardown(e);
	return r;
}

/*
 * cow-fault: after a fork of the 256 MiB above, with the child alive, the
 * parent writes one byte to each page, timed: each store takes a write
 * fault that copies the page the two share (wp_page_copy). ns per page.
 * The kernel's child waits on a pipe until the parent is done; both in a
 * fresh process (k_fork_fresh()).
 */
static struct result w_cow_fault(struct env *e)
{
	struct result r = { 0, FORK_LEN / PAGE, -1, -1 };
	double t0;

	if (e->kernel) {
		r.ns = k_fork_fresh("cow");
		return r;
	}
	uint64_t a = smm_fork_setup(e);
	struct smm_mm *child = smm_fork(e->mm);

	die_if(!child, "smm_fork");
	t0 = now_ns();
	smm_touch(e->cpu, a, FORK_LEN);
	r.ns = now_ns() - t0;
	smm_mm_destroy(child);
	smm_munmap(e->mm, a, FORK_LEN);
	smm_teardown(e);
	return r;
}

/*
 * mremap-1g-aligned and -unaligned: move 1 GiB of written anonymous memory
 * with MREMAP_MAYMOVE|MREMAP_FIXED, timed alone: ns per page moved. The
 * source starts 2 MiB past a 1 GiB boundary (so no PMD table moves whole
 * by its PUD entry). Aligned: the destination is 2 MiB-aligned too, and
 * each of the 512 PTE tables moves by its PMD entry (move_pgt_entry).
 * Unaligned: the destination is one page further, and each of the 262,144
 * entries moves on its own. The kernel's figure is its own mremap of the
 * same layout, in a reserved 4 GiB window of its address space.
 */
static struct result w_mremap(struct env *e)
{
	const uint64_t len = GiB, skew = e->aligned ? 0 : PAGE;
	struct result r = { 0, len / PAGE, -1, -1 };
	double t0;

	if (e->kernel) {
		char *win = mmap(NULL, 4 * GiB, PROT_NONE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				 -1, 0);
		char *base, *src, *dst, *p;

		die_if(win == MAP_FAILED, "mmap");
		base = (char *)(((uintptr_t)win + GiB - 1) & ~(GiB - 1));
		src = base + 2 * MiB;
		dst = base + GiB + 4 * MiB + skew;
		p = mmap(src, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		die_if(p != src, "mmap");
		k_touch(src, len);
		t0 = now_ns();
		p = mremap(src, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
		r.ns = now_ns() - t0;
		die_if(p != dst, "mremap");
		munmap(win, 4 * GiB);
		return r;
	}
	const uint64_t src = 0x200000000000ULL + 2 * MiB;
	const uint64_t dst = 0x200000000000ULL + GiB + 4 * MiB + skew;

	smm_setup(e);
	die_if(smm_mmap(e->mm, src, len, SMM_PROT_READ | SMM_PROT_WRITE,
			SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS | SMM_MAP_FIXED) !=
		       (int64_t)src,
	       "smm_mmap");
	smm_touch(e->cpu, src, len);
	t0 = now_ns();
	die_if(smm_mremap(e->mm, src, len, len,
			  SMM_MREMAP_MAYMOVE | SMM_MREMAP_FIXED,
			  dst) != (int64_t)dst,
	       "smm_mremap");
	r.ns = now_ns() - t0;
	smm_munmap(e->mm, dst, len);
	smm_teardown(e);
	return r;
}

/* ---- the table of workloads ---- */

struct workload {
	const char *name;
	struct result (*fn)(struct env *);
	const char *unit;
	int threads;
	int aligned;	/* -1: n/a */
	bool host_only; /* measured once, as "linux" (host) */
	bool in_compare;
	unsigned int mm_flags;
	int nr_vmas;	  /* mmap-many */
	int compare_reps; /* compare without --reps: this many, 0: as all */
};

static const struct workload workloads[] = {
	{ "fault-anon", w_fault_anon, "page", 1, -1, false, true, 0, 0, 0 },
	{ "fault-anon-64k", w_fault_anon_64k, "page", 1, -1, false, true, 0, 0,
	  0 },
	{ "fault-zero", w_fault_zero, "page", 1, -1, false, true, 0, 0, 0 },
	{ "memset-4k", w_memset, "page", 1, -1, true, true, 0, 0, 0 },
	{ "dontneed-aligned", w_dontneed, "page", 1, 1, false, true, 0, 0, 0 },
	{ "dontneed-unaligned", w_dontneed, "page", 1, 0, false, true, 0, 0,
	  0 },
	{ "dontneed-refault", w_dontneed_refault, "page", 1, -1, false, true, 0,
	  0, 0 },
	{ "mmap-munmap", w_mmap_munmap, "op", 1, -1, false, true, 0, 0, 0 },
	/* One page mapped and unmapped among 1,000 .. 60,000 VMAs. */
	{ "mmap-many-1k", w_mmap_many, "op", 1, -1, false, false, 0, 1000, 0 },
	{ "mmap-many-10k", w_mmap_many, "op", 1, -1, false, false, 0, 10000,
	  0 },
	{ "mmap-many-60k", w_mmap_many, "op", 1, -1, false, false, 0, 60000,
	  0 },
	{ "access-hit", w_access_hit, "load", 1, -1, false, true, 0, 0, 0 },
	{ "access-read", w_access_read, "load", 1, -1, false, true, 0, 0, 0 },
	{ "gup-fast", w_gup_fast, "pin", 1, -1, false, true, 0, 0, 0 },
	{ "gup-slow", w_gup_slow, "pin", 1, -1, false, true, 0, 0, 0 },
	/* Demand paging: a handler supplies each page (userfaultfd). */
	{ "uffd-missing", w_uffd_missing, "page", 1, -1, false, true, 0, 0, 0 },
	{ "uffd-missing-callback", w_uffd_missing_callback, "page", 1, -1,
	  false, true, 0, 0, 0 },
	/* The handler thread again, the faulting thread polling 50 us for
	 * its wake before it sleeps (smm_uffd_set_poll()). */
	{ "uffd-missing-poll", w_uffd_missing_poll, "page", 1, -1, false, true,
	  0, 0, 0 },
	{ "fault-threads", w_fault_threads, "page", 1, -1, false, true, 0, 0,
	  0 },
	{ "fault-threads", w_fault_threads, "page", 2, -1, false, true, 0, 0,
	  0 },
	/* The same threads zeroing cold pages: the machine's own limit. */
	{ "memset-threads", w_memset_threads, "page", 1, -1, true, true, 0, 0,
	  0 },
	{ "memset-threads", w_memset_threads, "page", 2, -1, true, true, 0, 0,
	  0 },
	/* Two threads faulting in the same PTE tables, the same PMD table. */
	{ "fault-shared-pte", w_fault_shared_pte, "page", 2, -1, false, true, 0,
	  0, 0 },
	{ "fault-shared-pmd", w_fault_shared_pmd, "page", 2, -1, false, true, 0,
	  0, 0 },
	{ "alloc-dontneed", w_alloc_dontneed, "page", 1, -1, false, true, 0, 0,
	  0 },
	{ "sparse-dontneed", w_sparse_dontneed, "page", 1, -1, false, true, 0,
	  0, 0 },
	/* Files: page_fault2 (private) and page_fault3 (shared), read faults
	 * on a cached file, msync of a dirty 128 MiB to the disk. */
	{ "page-fault2", w_page_fault2, "page", 1, -1, false, true, 0, 0, 0 },
	{ "page-fault3", w_page_fault3, "page", 1, -1, false, true, 0, 0, 0 },
	{ "read-fault-file", w_read_fault_file, "page", 1, -1, false, true, 0,
	  0, 0 },
	/* 2 repetitions in compare: each writes 128 MiB to the disk per
	 * scheme, and softmm's page-by-page writeback takes ~0.4 s. */
	{ "msync-128m", w_msync, "page", 1, -1, false, true, 0, 0, 2 },
	{ "fork-256m", w_fork, "page", 1, -1, false, true, 0, 0, 0 },
	{ "cow-fault", w_cow_fault, "page", 1, -1, false, true, 0, 0, 0 },
	{ "mremap-1g-aligned", w_mremap, "page", 1, 1, false, true, 0, 0, 0 },
	{ "mremap-1g-unaligned", w_mremap, "page", 1, 0, false, true, 0, 0, 0 },
	{ "fault-vs-mmap", w_fault_vs_mmap, "page", 1, -1, false, false, 0, 0,
	  0 },
	{ "fault-vs-mmap-mmaplock", w_fault_vs_mmap, "page", 1, -1, false,
	  false, SMM_MM_NO_VMA_LOCK, 0, 0 },
	/* The same without per-VMA locks: every fault takes mmap_lock. */
	{ "fault-threads-mmaplock", w_fault_threads, "page", 1, -1, false,
	  false, SMM_MM_NO_VMA_LOCK, 0, 0 },
	{ "fault-threads-mmaplock", w_fault_threads, "page", 2, -1, false,
	  false, SMM_MM_NO_VMA_LOCK, 0, 0 },
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of @v[0..n), which it sorts. */
static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct summary {
	double med, min, max;
	uint64_t ops;
	long pt_bytes;
	double faults; /* per op, -1: not counted */
};

static double ns_per_op(const struct result *r)
{
	return r->ns / (double)r->ops;
}

static struct summary summarize(struct result *r, int n)
{
	double v[MAX_REPS];
	struct summary s;

	for (int i = 0; i < n; i++)
		v[i] = ns_per_op(&r[i]);
	s.med = median(v, n);
	s.min = v[0];
	s.max = v[n - 1];
	s.ops = r[0].ops;
	s.pt_bytes = r[n - 1].pt_bytes;
	s.faults = r[n - 1].faults < 0 ? -1 :
					 r[n - 1].faults / (double)r[n - 1].ops;
	return s;
}

/* Whether the --only item @p (@l bytes) names workload @name: all of it,
 * or the part before one of its '-' (dontneed: dontneed-aligned, ...). */
static bool item_selects(const char *p, size_t l, const char *name)
{
	size_t n = strlen(name);

	return (l == n && !strncmp(p, name, n)) ||
	       (l && l < n && !strncmp(p, name, l) && name[l] == '-');
}

static bool selected(const struct bench_opts *o, const char *name)
{
	const char *p = o->only;

	if (!p)
		return true;
	while (*p) {
		const char *c = strchr(p, ',');
		size_t l = c ? (size_t)(c - p) : strlen(p);

		if (item_selects(p, l, name))
			return true;
		p += l + (c ? 1 : 0);
	}
	return false;
}

/* One row of results, for the table and the chart. */
struct row {
	char name[48];
	const char *unit;
	struct summary linux_s;
	bool host_only;
	struct summary smm[CLI_MAX_SCHEMES];
	/* softmm / linux of each repetition (they alternate): the spread */
	double ratio_min[CLI_MAX_SCHEMES], ratio_max[CLI_MAX_SCHEMES];
};

static void print_json(const char *workload, const char *system, int scheme,
		       int threads, const struct summary *s)
{
	printf("{\"workload\": \"%s\", \"system\": \"%s\", \"scheme\": ",
	       workload, system);
	if (scheme < 0)
		printf("null");
	else
		printf("\"%s\"", smm_scheme_name(scheme));
	printf(", \"threads\": %d, \"ops\": %llu, \"ns_per_op\": %.2f, "
	       "\"ns_per_op_min\": %.2f, \"ns_per_op_max\": %.2f",
	       threads, (unsigned long long)s->ops, s->med, s->min, s->max);
	if (s->pt_bytes >= 0)
		printf(", \"pt_bytes\": %ld", s->pt_bytes);
	if (s->faults >= 0)
		printf(", \"faults_per_op\": %.4f", s->faults);
	printf("}\n");
	fflush(stdout);
}

static int run_all(const struct bench_opts *o, struct row *rows, int *nrows)
{
	int n = 0;

	prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
	for (size_t w = 0; w < sizeof(workloads) / sizeof(workloads[0]); w++) {
		const struct workload *wl = &workloads[w];
		struct result lr[MAX_REPS], sr[CLI_MAX_SCHEMES][MAX_REPS];
		struct row *row = &rows[n];
		int reps = o->reps;

		if (!selected(o, wl->name) ||
		    (!o->only && o->compare && !wl->in_compare))
			continue;
		if (!strncmp(wl->name, "fault-threads", 13) ||
		    !strncmp(wl->name, "fault-shared", 12) ||
		    !strcmp(wl->name, "memset-threads"))
			snprintf(row->name, sizeof(row->name), "%s/%d",
				 wl->name, wl->threads);
		else
			snprintf(row->name, sizeof(row->name), "%s", wl->name);
		row->unit = wl->unit;
		row->host_only = wl->host_only;
		if (o->compare && !o->reps_set && wl->compare_reps &&
		    wl->compare_reps < reps)
			reps = wl->compare_reps;
		if (!o->json)
			fprintf(stderr, "  %-24s", row->name);
		/* One warm-up of each, so the frame pool and the host's memory
		 * are faulted in before anything is timed. */
		for (int rep = -1; rep < reps; rep++) {
			struct env e = { .kernel = true,
					 .threads = wl->threads,
					 .aligned = wl->aligned == 1,
					 .full = o->full,
					 .mm_flags = wl->mm_flags,
					 .nr_vmas = wl->nr_vmas };
			struct result x = wl->fn(&e);

			if (rep >= 0)
				lr[rep] = x;
			if (wl->host_only)
				continue;
			/*
			 * Rotate which scheme runs first: the run right after
			 * the kernel's pays for the host memory the kernel
			 * run just freed, and no scheme should always be it.
			 */
			for (int k = 0; k < o->nr_schemes; k++) {
				int s = (k + (rep < 0 ? 0 : rep)) %
					o->nr_schemes;

				e.kernel = false;
				e.scheme = o->schemes[s];
				x = wl->fn(&e);
				if (rep >= 0)
					sr[s][rep] = x;
			}
			if (!o->json)
				fprintf(stderr, ".");
		}
		if (!o->json)
			fprintf(stderr, "\n");
		row->linux_s = summarize(lr, reps);
		if (o->json)
			print_json(wl->name, wl->host_only ? "host" : "linux",
				   -1, wl->threads, &row->linux_s);
		for (int s = 0; s < o->nr_schemes && !wl->host_only; s++) {
			row->smm[s] = summarize(sr[s], reps);
			row->ratio_min[s] = row->ratio_max[s] =
				ns_per_op(&sr[s][0]) / ns_per_op(&lr[0]);
			for (int k = 1; k < reps; k++) {
				double x = ns_per_op(&sr[s][k]) /
					   ns_per_op(&lr[k]);

				if (x < row->ratio_min[s])
					row->ratio_min[s] = x;
				if (x > row->ratio_max[s])
					row->ratio_max[s] = x;
			}
			if (o->json)
				print_json(wl->name, "softmm", o->schemes[s],
					   wl->threads, &row->smm[s]);
		}
		n++;
	}
	*nrows = n;
	return 0;
}

/* "MEDIAN (MIN..MAX)" of @s: the spread of the repetitions, in whole ns
 * from 100 ns on. */
static const char *spread(char *buf, size_t size, const struct summary *s)
{
	int p = s->max < 100 ? 1 : 0;

	snprintf(buf, size, "%.1f (%.*f..%.*f)", s->med, p, s->min, p, s->max);
	return buf;
}

static void print_table(const struct bench_opts *o, struct row *rows, int n)
{
	char b[96];

	printf("%-24s %-5s %22s", "workload", "unit", "linux ns (min..max)");
	for (int s = 0; s < o->nr_schemes; s++)
		printf(" %22s %7s", smm_scheme_name(o->schemes[s]), "ratio");
	printf("  %s\n", "pt bytes linux / softmm");
	for (int i = 0; i < n; i++) {
		struct row *r = &rows[i];

		printf("%-24s %-5s %22s", r->name, r->unit,
		       spread(b, sizeof(b), &r->linux_s));
		for (int s = 0; s < o->nr_schemes; s++) {
			if (r->host_only)
				printf(" %22s %7s", "-", "-");
			else
				printf(" %22s %6.2fx",
				       spread(b, sizeof(b), &r->smm[s]),
				       r->smm[s].med / r->linux_s.med);
		}
		if (r->linux_s.pt_bytes >= 0) {
			printf("  %ld", r->linux_s.pt_bytes);
			for (int s = 0; s < o->nr_schemes; s++)
				printf(" / %ld", r->smm[s].pt_bytes);
		}
		if (r->linux_s.faults >= 0) {
			printf("  faults/%s %.3g", r->unit, r->linux_s.faults);
			for (int s = 0; s < o->nr_schemes; s++)
				printf(" / %.3g", r->smm[s].faults);
		}
		printf("\n");
	}
	if (k_mthp_missing)
		printf("fault-anon-64k: the linux column ran without mTHP (%s "
		       "not writable: not root, or a kernel before 6.8)\n",
		       K_MTHP_64K);
}

/* The row named @name, or NULL if it did not run. */
static const struct row *find_row(const struct row *rows, int n,
				  const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(rows[i].name, name))
			return &rows[i];
	return NULL;
}

/* Pairs of pairs print_scaling() measures, without --reps. */
#define SCALING_PAIRS 9

/* ns per page of fault-threads (@fault) or memset-threads on @threads
 * threads, on the kernel (@scheme < 0) or on softmm's @scheme. */
static double scaling_run(bool fault, int scheme, int threads)
{
	struct env e = { .kernel = scheme < 0,
			 .scheme = scheme < 0 ? 0 : scheme,
			 .threads = threads };
	struct result r = fault ? w_fault_threads(&e) : w_memset_threads(&e);

	return ns_per_op(&r);
}

/*
 * The scaling of one system in one repetition: memset-threads and
 * fault-threads on 1 and 2 threads, back to back (a few hundred ms in
 * all), as throughput on 2 over throughput on 1. Odd repetitions run
 * them in the reverse order, so that a host getting faster or slower
 * during the four runs does not favour one side.
 */
static void scaling_pair(int scheme, int rep, double *ms, double *fs)
{
	double m1, m2, f1, f2;

	if (rep % 2 == 0) {
		m1 = scaling_run(false, scheme, 1);
		m2 = scaling_run(false, scheme, 2);
		f1 = scaling_run(true, scheme, 1);
		f2 = scaling_run(true, scheme, 2);
	} else {
		f2 = scaling_run(true, scheme, 2);
		f1 = scaling_run(true, scheme, 1);
		m2 = scaling_run(false, scheme, 2);
		m1 = scaling_run(false, scheme, 1);
	}
	*ms = m1 / m2;
	*fs = f1 / f2;
}

/*
 * How fault-threads scales from 1 thread to 2 (throughput on 2 / on 1)
 * beside memset-threads', the memory bandwidth's own limit on this
 * machine; "of memset's" is the first over the second (goal for softmm:
 * 0.9 or more). Measured apart from the table's rows: those are medians
 * of runs seconds apart, between which the host moved: in six runs one
 * after the other, memset-threads scaled 1.45x to 1.97x by them.
 * Here each repetition measures both scalings of a system within a few
 * hundred ms (scaling_pair()), and the figures are the medians over the
 * repetitions of the scalings and of their quotient, with its min..max.
 * A line of text per system, or JSON objects with --json. Runs only if
 * both rows were selected.
 */
static void print_scaling(const struct bench_opts *o, const struct row *rows,
			  int n)
{
	int pairs = o->reps_set ? o->reps : SCALING_PAIRS;

	if (!find_row(rows, n, "fault-threads/1") ||
	    !find_row(rows, n, "fault-threads/2") ||
	    !find_row(rows, n, "memset-threads/1") ||
	    !find_row(rows, n, "memset-threads/2"))
		return;
	/* The table first, then the progress on stderr: one file may take
	 * both. */
	fflush(stdout);
	if (!o->json) {
		fprintf(stderr, "  %-24s", "scaling pairs");
		printf("\n2 threads / 1 (throughput), memset-threads and "
		       "fault-threads back to back, median of %d (of memset's: "
		       "min..max):",
		       pairs);
	}
	for (int k = -1; k < o->nr_schemes; k++) {
		int scheme = k < 0 ? -1 : o->schemes[k];
		double ms[MAX_REPS], fs[MAX_REPS], q[MAX_REPS];

		for (int rep = 0; rep < pairs; rep++) {
			scaling_pair(scheme, rep, &ms[rep], &fs[rep]);
			q[rep] = fs[rep] / ms[rep];
			if (!o->json)
				fprintf(stderr, ".");
		}
		/* median() sorts: then q[0] and q[pairs - 1] are the ends */
		double mmed = median(ms, pairs), fmed = median(fs, pairs),
		       qmed = median(q, pairs), qmin = q[0],
		       qmax = q[pairs - 1];

		if (o->json) {
			printf("{\"scaling\": \"fault-threads\", \"threads\": 2, "
			       "\"system\": \"%s\", \"scheme\": ",
			       k < 0 ? "linux" : "softmm");
			if (k < 0)
				printf("null");
			else
				printf("\"%s\"", smm_scheme_name(scheme));
			printf(", \"pairs\": %d, \"memset_scaling\": %.3f, "
			       "\"fault_scaling\": %.3f, \"of_memset\": %.3f, "
			       "\"of_memset_min\": %.3f, \"of_memset_max\": "
			       "%.3f}\n",
			       pairs, mmed, fmed, qmed, qmin, qmax);
			fflush(stdout);
		} else {
			printf("%s %s: memset-threads %.2fx, fault-threads "
			       "%.2fx: %.2f (%.2f..%.2f) of memset's",
			       k < 0 ? "" : ";",
			       k < 0 ? "linux" : smm_scheme_name(scheme), mmed,
			       fmed, qmed, qmin, qmax);
		}
	}
	if (!o->json) {
		fprintf(stderr, "\n");
		printf("\n");
	}
}

/* ---- --atomics: atomic read-modify-writes per operation ---- */

#ifdef SMM_COUNT_ATOMICS
/* The calling thread's count (src/compiler.h, the counter build). */
extern __thread unsigned long smm_atomic_rmw;

/*
 * Each case runs one operation many times on the calling thread and
 * returns the RMWs it counted per operation, setup left out. Only this
 * thread's RMWs count: liburcu's worker, which frees tables and VMAs after
 * a grace period, is not in the figures, nor are liburcu's own atomics.
 */
static double a_fault_anon(struct env *e)
{
	const uint64_t len = 128 * MiB; /* tables allocated on the way */
	int64_t a = smm_mmap(e->mm, 0, len, SMM_PROT_READ | SMM_PROT_WRITE,
			     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS);
	unsigned long c0;

	die_if(a < 0, "smm_mmap");
	c0 = smm_atomic_rmw;
	smm_touch(e->cpu, (uint64_t)a, len);
	return (double)(smm_atomic_rmw - c0) / (double)(len / PAGE);
}

static double a_fault_zero(struct env *e)
{
	const uint64_t len = 128 * MiB;
	int64_t a = smm_mmap(e->mm, 0, len, SMM_PROT_READ | SMM_PROT_WRITE,
			     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS);
	unsigned long c0;
	char c;

	die_if(a < 0, "smm_mmap");
	c0 = smm_atomic_rmw;
	for (uint64_t o = 0; o < len; o += PAGE)
		die_if(smm_read(e->cpu, (uint64_t)a + o, &c, 1, NULL), "load");
	return (double)(smm_atomic_rmw - c0) / (double)(len / PAGE);
}

/* As dontneed-refault: per page of 8 cycles of DONTNEED 64 MiB, touch it. */
static double a_dontneed_refault(struct env *e)
{
	const uint64_t len = 64 * MiB;
	const int cycles = 8;
	int64_t a = smm_mmap(
		e->mm, 0x200000000000ULL, len, SMM_PROT_READ | SMM_PROT_WRITE,
		SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS | SMM_MAP_FIXED_NOREPLACE);
	unsigned long c0;

	die_if(a < 0, "smm_mmap");
	smm_touch(e->cpu, (uint64_t)a, len);
	c0 = smm_atomic_rmw;
	for (int i = 0; i < cycles; i++) {
		smm_madvise(e->mm, (uint64_t)a, len, SMM_MADV_DONTNEED);
		smm_touch(e->cpu, (uint64_t)a, len);
	}
	return (double)(smm_atomic_rmw - c0) / (double)(cycles * (len / PAGE));
}

/* As gup-fast: a pin and its unpin of one present page. */
static double a_gup_fast(struct env *e)
{
	const int iters = 100000;
	int64_t a = smm_mmap(e->mm, 0, PAGE, SMM_PROT_READ | SMM_PROT_WRITE,
			     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS |
				     SMM_MAP_POPULATE);
	struct smm_page *pg;
	unsigned long c0;

	die_if(a < 0, "smm_mmap");
	c0 = smm_atomic_rmw;
	for (int i = 0; i < iters; i++) {
		die_if(smm_pin_user_pages_fast(e->cpu, (uint64_t)a, 1,
					       SMM_FOLL_WRITE, &pg) != 1,
		       "pin");
		smm_unpin_user_pages(&pg, 1);
	}
	return (double)(smm_atomic_rmw - c0) / iters;
}

/* One DONTNEED of 64 whole PTE tables, each with @pages pages present:
 * per table. */
static double a_zap(struct env *e, uint64_t pages)
{
	const uint64_t tables = 64;
	int64_t a = smm_mmap(e->mm, 0x200000000000ULL, tables * 2 * MiB,
			     SMM_PROT_READ | SMM_PROT_WRITE,
			     SMM_MAP_PRIVATE | SMM_MAP_ANONYMOUS |
				     SMM_MAP_FIXED_NOREPLACE);
	unsigned long c0;

	die_if(a < 0, "smm_mmap");
	for (uint64_t t = 0; t < tables; t++)
		smm_touch(e->cpu, (uint64_t)a + t * 2 * MiB, pages * PAGE);
	c0 = smm_atomic_rmw;
	die_if(smm_madvise(e->mm, (uint64_t)a, tables * 2 * MiB,
			   SMM_MADV_DONTNEED),
	       "smm_madvise");
	return (double)(smm_atomic_rmw - c0) / (double)tables;
}

static double a_zap_full(struct env *e)
{
	return a_zap(e, 512);
}

static double a_zap_one(struct env *e)
{
	return a_zap(e, 1);
}

static const struct {
	const char *name, *what;
	double (*fn)(struct env *e);
} atomics_cases[] = {
	{ "fault-anon", "write fault, per page (128 MiB)", a_fault_anon },
	{ "fault-zero", "zero-page read fault, per page", a_fault_zero },
	{ "dontneed-refault", "DONTNEED + refault, per page",
	  a_dontneed_refault },
	{ "gup-fast", "GUP-fast pin + unpin", a_gup_fast },
	{ "zap-full-table", "DONTNEED, per full PTE table", a_zap_full },
	{ "zap-one-page-table", "DONTNEED, per table of 1 page", a_zap_one },
};

static int run_atomics(const struct bench_opts *o)
{
	const size_t nc = sizeof(atomics_cases) / sizeof(atomics_cases[0]);
	double v[sizeof(atomics_cases) / sizeof(atomics_cases[0])]
		[CLI_MAX_SCHEMES];

	for (size_t c = 0; c < nc; c++) {
		for (int s = 0; s < o->nr_schemes; s++) {
			struct env e = { .scheme = o->schemes[s] };

			smm_setup(&e);
			v[c][s] = atomics_cases[c].fn(&e);
			smm_teardown(&e);
			if (o->json)
				printf("{\"atomics\": \"%s\", \"scheme\": "
				       "\"%s\", \"rmw_per_op\": %.3f}\n",
				       atomics_cases[c].name,
				       smm_scheme_name(o->schemes[s]), v[c][s]);
		}
	}
	if (o->json)
		return 0;
	printf("atomic read-modify-writes per operation, calling thread only "
	       "(build/count)\n\n%-20s %-32s",
	       "case", "operation");
	for (int s = 0; s < o->nr_schemes; s++)
		printf(" %10s", smm_scheme_name(o->schemes[s]));
	printf("\n");
	for (size_t c = 0; c < nc; c++) {
		printf("%-20s %-32s", atomics_cases[c].name,
		       atomics_cases[c].what);
		for (int s = 0; s < o->nr_schemes; s++)
			printf(" %10.2f", v[c][s]);
		printf("\n");
	}
	return 0;
}
#else
static int run_atomics(const struct bench_opts *o)
{
	fprintf(stderr, "softmm bench: --atomics counts only in the counter "
			"build: make build/count/softmm\n");
	return 2;
}
#endif

const char bench_synopsis[] =
	"[--reps N (5)] [--only WORKLOAD,... (all)] [--full] [--json]\n"
	"[--scheme NAME,... (none,pt-reclaim,eager,refcount,pmd-rwsem)]\n"
	"[--atomics]";
const char bench_summary[] =
	"benchmarks: each workload on the kernel and on softmm";
const char compare_synopsis[] =
	"[--reps N (3)] [--only WORKLOAD,... (the set marked *)]\n"
	"[--scheme NAME,... (none,pt-reclaim,eager,refcount,pmd-rwsem)]\n"
	"[--full] [--json] [--out PATH (compare.svg)]";
const char compare_summary[] =
	"the main comparison: the table, and an SVG chart of softmm / Linux";

/* The workload names --only knows, wrapped, those of compare's set with
 * a '*' (a name listed twice in the table, once). */
static void print_workloads(FILE *f)
{
	const size_t nw = sizeof(workloads) / sizeof(workloads[0]);
	int col = 0;

	for (size_t w = 0; w < nw; w++) {
		const struct workload *wl = &workloads[w];
		int len = (int)strlen(wl->name) + (wl->in_compare ? 1 : 0);

		if (w && !strcmp(wl->name, workloads[w - 1].name))
			continue;
		if (col && col + 1 + len > 76) {
			fprintf(f, "\n");
			col = 0;
		}
		col += fprintf(f, "%s%s%s", col ? " " : "  ", wl->name,
			       wl->in_compare ? "*" : "");
	}
	fprintf(f, "\n");
}

static int bench_usage(FILE *f, bool compare)
{
	if (compare)
		cli_usage(f, "compare", compare_synopsis, compare_summary);
	else
		cli_usage(f, "bench", bench_synopsis, bench_summary);
	fprintf(f,
		"  --reps N         repetitions, 1..%d (median, min..max)\n"
		"  --scheme LIST    schemes: " CLI_SCHEMES "\n"
		"                   (default: all of them this library knows)\n"
		"  --only LIST      workloads, by name or by the part before a\n"
		"                   '-' (dontneed: every dontneed-* row)\n"
		"  --full           the Qi Zheng rows at full size (50 GiB)\n"
		"  --json           one JSON object per measurement\n",
		MAX_REPS);
	if (compare)
		fprintf(f,
			"  --out PATH       the chart, written by gnuplot\n");
	else
		fprintf(f,
			"  --atomics        no timing: the atomic read-modify-"
			"writes per fault, pin,\n"
			"                   zapped table, per scheme (only in "
			"the counter build,\n"
			"                   build/count/softmm)\n");
	fprintf(f, "workloads (* = in `softmm compare` by default):\n");
	print_workloads(f);
	return f == stdout ? 0 : 2;
}

/* Every item of --only must name a workload. */
static int check_only(const char *cmd, const char *only)
{
	const size_t nw = sizeof(workloads) / sizeof(workloads[0]);
	char q[CLI_QUOTE_SIZE];
	const char *p = only;

	for (;;) {
		const char *c = strchr(p, ',');
		size_t l = c ? (size_t)(c - p) : strlen(p), w;

		for (w = 0; w < nw; w++)
			if (item_selects(p, l, workloads[w].name))
				break;
		if (w == nw) {
			fprintf(stderr,
				"softmm %s: unknown workload '%s' in --only; "
				"the workloads are:\n",
				cmd, cli_quote(p, l, q, sizeof(q)));
			print_workloads(stderr);
			return -1;
		}
		if (!c)
			return 0;
		p = c + 1;
	}
}

/* Returns 0, 1 after --help (printed), -1 on a usage error (printed). */
static int parse_opts(int argc, char **argv, struct bench_opts *o, bool compare)
{
	static const struct option lo[] = {
		{ "reps", required_argument, NULL, 'r' },
		{ "scheme", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "atomics", no_argument, NULL, 'a' },
		{ "full", no_argument, NULL, 'f' },
		{ "only", required_argument, NULL, 'o' },
		{ "out", required_argument, NULL, 'O' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = compare ? "compare" : "bench";
	char q[CLI_QUOTE_SIZE];
	int c;

	memset(o, 0, sizeof(*o));
	o->reps = compare ? 3 : 5;
	o->out = "compare.svg";
	optind = 1;
	while ((c = getopt_long(argc, argv, "r:s:jfo:h", lo, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (cli_int(cmd, "--reps", optarg, 1, MAX_REPS,
				    &o->reps))
				return -1;
			o->reps_set = true;
			break;
		case 's': {
			char *dup = strdup(optarg), *save = NULL;

			for (char *t = strtok_r(dup, ",", &save); t;
			     t = strtok_r(NULL, ",", &save)) {
				int s = smm_scheme_from_name(t);

				if (s < 0 || o->nr_schemes == CLI_MAX_SCHEMES) {
					char l[128];

					fprintf(stderr,
						"softmm %s: unknown scheme "
						"'%s' (%s)\n",
						cmd,
						cli_quote_str(t, q, sizeof(q)),
						cli_scheme_list(l, sizeof(l)));
					free(dup);
					return -1;
				}
				o->schemes[o->nr_schemes++] = s;
			}
			free(dup);
			break;
		}
		case 'j':
			o->json = true;
			break;
		case 'a':
			if (compare) {
				fprintf(stderr,
					"softmm compare: --atomics is for "
					"`softmm bench`\n");
				return -1;
			}
			o->atomics = true;
			break;
		case 'f':
			o->full = true;
			break;
		case 'o':
			if (check_only(cmd, optarg))
				return -1;
			o->only = optarg;
			break;
		case 'O':
			if (!compare) {
				fprintf(stderr,
					"softmm bench: --out is for `softmm "
					"compare` (bench draws no chart)\n");
				return -1;
			}
			o->out = optarg;
			break;
		case 'h':
			bench_usage(stdout, compare);
			return 1;
		default:
			bench_usage(stderr, compare);
			return -1;
		}
	}
	if (cli_no_args(cmd, argc, argv, optind))
		return -1;
	if (!o->nr_schemes) /* Linux's two, softmm's own, the newer ones */
		o->nr_schemes = cli_known_schemes(o->schemes, CLI_MAX_SCHEMES);
	return 0;
}

static int open_pool(void)
{
	/* sparse-dontneed alone needs 2 GiB of PTE tables; frames are host
	 * memory only once used */
	pool = smm_pool_create(4 * GiB, 0);
	if (!pool) {
		fprintf(stderr, "bench: cannot create the frame pool: %s\n",
			strerror(errno));
		return -1;
	}
	return 0;
}

int cmd_bench(int argc, char **argv)
{
	struct bench_opts o;
	struct row rows[48];
	int n, r;

	const char *kfork = getenv("SOFTMM_BENCH_KERNEL_FORK");

	if (kfork) { /* k_fork_fresh() asks */
		prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
		printf("%.0f\n", k_fork_measure(kfork));
		return 0;
	}
	r = parse_opts(argc, argv, &o, false);
	if (r)
		return r > 0 ? 0 : 2;
#ifndef SMM_COUNT_ATOMICS
	if (o.atomics)
		return run_atomics(&o);
#endif
	if (open_pool())
		return 2;
	if (o.atomics) {
		r = run_atomics(&o);
		smm_pool_destroy(pool);
		return r;
	}
	run_all(&o, rows, &n);
	if (!o.json)
		print_table(&o, rows, n);
	print_scaling(&o, rows, n);
	smm_pool_destroy(pool);
	return 0;
}

/*
 * check_out - whether the chart can be written to @path, found out before
 * the benchmarks run rather than after. Changes nothing: a file it had to
 * create is removed again, an existing one is opened without truncating.
 */
static int check_out(const char *path)
{
	char q[CLI_QUOTE_SIZE];
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);

	if (fd >= 0) {
		close(fd);
		unlink(path);
		return 0;
	}
	if (errno == EEXIST) {
		fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
	}
	fprintf(stderr, "softmm compare: cannot write the chart to '%s': %s\n",
		cli_quote_str(path, q, sizeof(q)), strerror(errno));
	return -1;
}

/* @dir/@name into @buf. */
static const char *in_dir(char *buf, size_t size, const char *dir,
			  const char *name)
{
	snprintf(buf, size, "%s/%s", dir, name);
	return buf;
}

/* The data and the gnuplot script of the chart, in @dir. */
static int write_chart_files(const char *dir, const struct bench_opts *o,
			     const struct row *rows, int n)
{
	char path[PATH_MAX]; /* dir is at most PATH_MAX / 2 */
	FILE *f = fopen(in_dir(path, sizeof(path), dir, "chart.dat"), "w");

	if (!f)
		return -1;
	for (int i = 0; i < n; i++) {
		if (rows[i].host_only)
			continue;
		/* per scheme: the ratio of the medians, and the lowest and
		 * highest ratio of one repetition (the error bar) */
		fprintf(f, "\"%s\"", rows[i].name);
		for (int s = 0; s < o->nr_schemes; s++)
			fprintf(f, " %.4f %.4f %.4f",
				rows[i].smm[s].med / rows[i].linux_s.med,
				rows[i].ratio_min[s], rows[i].ratio_max[s]);
		fprintf(f, "\n");
	}
	if (fclose(f))
		return -1;
	f = fopen(in_dir(path, sizeof(path), dir, "chart.gp"), "w");
	if (!f)
		return -1;
	/* wider with more schemes: each workload has a bar per scheme */
	fprintf(f,
		"set terminal svg size %d,480 dynamic font 'sans,11' background rgb 'white'\n"
		"set output 'chart.svg'\n"
		"set title \"softmm's time per operation relative to Linux's "
		"(lower is faster)\\n{/*0.8 bars: ratio of the medians; "
		"whiskers: lowest and highest ratio of one of %d repetitions}\"\n"
		"set style data histograms\n"
		"set style histogram errorbars gap 1 lw 1\n"
		"set style fill solid 0.8 border -1\nset boxwidth 0.9\n"
		"set logscale y 2\nset grid ytics\nset xtics rotate by -30\n"
		"set ylabel 'softmm / linux'\n"
		"set key outside right top\n"
		"plot 1 with lines lc rgb '#444444' dt 2 "
		"title 'Linux = 1 (same speed)'",
		o->nr_schemes > 3 ? 900 + 150 * (o->nr_schemes - 3) : 900,
		o->reps);
	for (int s = 0; s < o->nr_schemes; s++)
		fprintf(f, ", 'chart.dat' using %d:%d:%d%s title 'softmm %s'",
			2 + 3 * s, 3 + 3 * s, 4 + 3 * s, s ? "" : ":xtic(1)",
			smm_scheme_name(o->schemes[s]));
	fprintf(f, "\n");
	return fclose(f) ? -1 : 0;
}

/* Runs gnuplot on @dir/chart.gp in @dir, its output in @dir/gnuplot.log.
 * Returns its exit status, 127 if it is not installed, -1 (errno). */
static int run_gnuplot(const char *dir)
{
	char *argv[] = { "gnuplot", "chart.gp", NULL };
	posix_spawn_file_actions_t fa;
	int err, st;
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addchdir_np(&fa, dir);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "gnuplot.log",
					 O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	fflush(NULL);
	err = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (err == ENOENT)
		return 127;
	if (err) {
		errno = err;
		return -1;
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Copies @src to @dst. Returns 0, or -1 with errno; *@reading says which
 * side failed. */
static int copy_file(const char *src, const char *dst, bool *reading)
{
	char buf[65536];
	int in, out, ret = 0;
	ssize_t n;

	*reading = true;
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -1;
	*reading = false;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (out < 0) {
		close(in);
		return -1;
	}
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*reading = true;
			ret = -1;
			break;
		}
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				if (!w)
					errno = EIO;
				ret = -1;
				goto done;
			}
			off += w;
		}
	}
done:
	if (close(out) && !ret)
		ret = -1;
	close(in);
	return ret;
}

/* Copies the file at @path to @to, indented. */
static void print_file(FILE *to, const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		fprintf(to, "  %s", line);
	fclose(f);
}

/*
 * write_chart - the softmm/linux ratio per workload and scheme, as an SVG
 * at @path. gnuplot draws it in a temporary directory, with its data and
 * script (removed after); then it is copied to @path. Returns 0 (also when
 * gnuplot is missing: said so), or -1 after saying what failed.
 */
static int write_chart(const struct bench_opts *o, const struct row *rows,
		       int n, const char *path)
{
	static const char *const names[] = { "chart.dat", "chart.gp",
					     "chart.svg", "gnuplot.log" };
	const char *tmp = getenv("TMPDIR");
	char q[CLI_QUOTE_SIZE], dir[PATH_MAX / 2], f[PATH_MAX];
	int plotted = 0, ret = -1, st;
	bool reading;

	cli_quote_str(path, q, sizeof(q));
	for (int i = 0; i < n; i++)
		plotted += !rows[i].host_only;
	if (!plotted) {
		printf("\nchart: not written (no workload ran on softmm)\n");
		return 0;
	}
	if (!tmp || !*tmp)
		tmp = "/tmp";
	if (snprintf(dir, sizeof(dir), "%s/softmm-compare.XXXXXX", tmp) >=
	    (int)sizeof(dir))
		strcpy(dir, "/"); /* too long: mkdtemp() refuses it */
	if (!mkdtemp(dir)) {
		fprintf(stderr,
			"softmm compare: chart not written to '%s': cannot "
			"make a temporary directory in %s: %s\n",
			q, tmp, strerror(errno));
		return -1;
	}
	if (write_chart_files(dir, o, rows, n)) {
		fprintf(stderr,
			"softmm compare: chart not written to '%s': cannot "
			"write the chart's data in %s: %s\n",
			q, dir, strerror(errno));
		goto out;
	}
	st = run_gnuplot(dir);
	if (st == 127) {
		fprintf(stderr,
			"softmm compare: chart not written to '%s': gnuplot "
			"is not installed (Debian: gnuplot-nox)\n",
			q);
		ret = 0;
		goto out;
	}
	if (st) {
		fprintf(stderr,
			"softmm compare: chart not written to '%s': gnuplot "
			"failed (%s)\n",
			q, st < 0 ? strerror(errno) : "exit status");
		print_file(stderr, in_dir(f, sizeof(f), dir, "gnuplot.log"));
		goto out;
	}
	if (copy_file(in_dir(f, sizeof(f), dir, "chart.svg"), path, &reading)) {
		fprintf(stderr,
			"softmm compare: cannot write the chart to "
			"'%s': %s%s\n",
			q, reading ? "gnuplot's output: " : "",
			strerror(errno));
		goto out;
	}
	printf("\nchart: %s\n", path);
	ret = 0;
out:
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unlink(in_dir(f, sizeof(f), dir, names[i]));
	rmdir(dir);
	return ret;
}

int cmd_compare(int argc, char **argv)
{
	struct bench_opts o;
	struct row rows[48];
	struct utsname u;
	int n, r;

	r = parse_opts(argc, argv, &o, true);
	if (r)
		return r > 0 ? 0 : 2;
	if (check_out(o.out) || open_pool())
		return 2;
	o.compare = true;
	uname(&u);
	printf("softmm compare: %s %s, %ld cores, %d repetitions (median and "
	       "(min..max); ratio = softmm / linux of the medians)\n",
	       u.sysname, u.release, sysconf(_SC_NPROCESSORS_ONLN), o.reps);
	fflush(stdout);
	run_all(&o, rows, &n);
	printf("\n");
	print_table(&o, rows, n);
	print_scaling(&o, rows, n);
	smm_pool_destroy(pool);
	return write_chart(&o, rows, n, o.out) ? 1 : 0;
}
