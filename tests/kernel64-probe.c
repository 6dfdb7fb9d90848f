/*
 * kernel64-probe.c - NOT built by make. Runs on the real Linux kernel the
 * exact operation sequence that tests/test_kernel64.c runs through softmm,
 * and prints the numbers that test hard-codes (page-table bytes as growth of
 * VmPTE over a baseline, resident pages from mincore(2), anonymous RSS as
 * growth of RssAnon, minor faults as growth of ru_minflt, and the addresses
 * of SIGSEGVs). It also prints the page-table bytes of the small touch
 * patterns used by tests/test_fault.c.
 *
 *   gcc -O1 -o /tmp/kernel64-probe tests/kernel64-probe.c && /tmp/kernel64-probe
 *
 * Transparent huge pages are disabled with prctl(PR_SET_THP_DISABLE) so
 * that every page is a 4 KiB page, as in softmm. Addresses are offsets from
 * A = 0x200000000000 (512 GiB aligned, far from anything else the process
 * maps), mapped with MAP_FIXED_NOREPLACE.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <unistd.h>

#define A 0x200000000000ULL
#define P 4096ULL
#define M (1ULL << 20)
#define G (1ULL << 30)

static long base_pte, base_rss, base_flt;

/* read with open/read into a static buffer: no allocation that could add
 * page faults or anonymous pages to the numbers */
static long status_kb(const char *key)
{
	static char buf[8192];
	int fd = open("/proc/self/status", O_RDONLY);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	char *p = strstr(buf, key);
	return p ? atol(p + strlen(key) + 1) : -1;
}

static long minflt(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

/* resident pages of [off, off + len) (must be mapped) */
static long resident(uint64_t off, uint64_t len)
{
	static unsigned char vec[64 * M / P];
	long n = 0;
	if (mincore((void *)(A + off), len, vec)) {
		perror("mincore");
		exit(1);
	}
	for (uint64_t i = 0; i < len / P; i++)
		n += vec[i] & 1;
	return n;
}

static void baseline(void)
{
	base_pte = status_kb("VmPTE");
	base_rss = status_kb("RssAnon");
	base_flt = minflt();
}

/* snapshot the counters first, then print (printing may fault) */
static void report(const char *phase)
{
	long flt = minflt() - base_flt;
	long pte = (status_kb("VmPTE") - base_pte) * 1024;
	long rss = (status_kb("RssAnon") - base_rss) / 4;
	printf("%-34s pt_bytes=%6ld  rss_anon_pages=%6ld  minflt=%6ld\n", phase,
	       pte, rss, flt);
	fflush(stdout);
	base_flt = minflt();
}

static sigjmp_buf jb;
static volatile uint64_t segv_addr;
static void on_segv(int sig, siginfo_t *si, void *uc)
{
	segv_addr = (uint64_t)si->si_addr;
	siglongjmp(jb, 1);
}

/* write bytes one by one from A+off; returns the offset of the SIGSEGV or -1 */
static int64_t try_write(uint64_t off, size_t len)
{
	volatile char *p = (volatile char *)(A + off);
	if (sigsetjmp(jb, 1))
		return (int64_t)(segv_addr - A);
	for (size_t i = 0; i < len; i++)
		p[i] = 0x5a;
	return -1;
}

static int64_t try_read(uint64_t off, size_t len)
{
	volatile char *p = (volatile char *)(A + off);
	if (sigsetjmp(jb, 1))
		return (int64_t)(segv_addr - A);
	for (size_t i = 0; i < len; i++)
		(void)p[i];
	return -1;
}

static void *map(uint64_t off, uint64_t len, int prot)
{
	void *p = mmap((void *)(A + off), len, prot,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1,
		       0);
	if (p != (void *)(A + off)) {
		perror("mmap");
		exit(1);
	}
	return p;
}

/* page-table bytes of touching (writing) the given offsets in a fresh map */
static void pt_case(const char *name, uint64_t moff, uint64_t mlen,
		    const uint64_t *offs, int n)
{
	long b0 = status_kb("VmPTE");
	map(moff, mlen, PROT_READ | PROT_WRITE);
	for (int i = 0; i < n; i++)
		*(volatile char *)(A + offs[i]) = 1;
	printf("%-34s pt_bytes=%6ld\n", name, (status_kb("VmPTE") - b0) * 1024);
	munmap((void *)(A + moff), mlen);
	printf("%-34s pt_bytes=%6ld\n", "  after munmap",
	       (status_kb("VmPTE") - b0) * 1024);
}

int main(void)
{
	struct sigaction sa = { .sa_sigaction = on_segv,
				.sa_flags = SA_SIGINFO };
	sigaction(SIGSEGV, &sa, NULL);
	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)) {
		perror("prctl");
		return 1;
	}
	/* warm up: fault in the buffers, stack and code used below */
	map(0, 64 * M, PROT_READ | PROT_WRITE);
	resident(0, 64 * M);
	try_read(0, 1);
	try_write(0, 1);
	mprotect((void *)A, P, PROT_READ);
	try_write(0, 1); /* a SIGSEGV: deepens the stack once */
	munmap((void *)A, 64 * M);
	printf("kernel64-probe: offsets from A = %#llx\n", A);
	fflush(stdout);
	baseline();

	/* 1: map 64 MiB read/write */
	map(0, 64 * M, PROT_READ | PROT_WRITE);
	report("1 mmap 64M");
	printf("   resident=%ld\n", resident(0, 64 * M));

	/* 2: read one byte of each page of [0, 8M); write the page index at
	 * offset 0 and 4088 of each page of [8M, 64M) */
	for (uint64_t o = 0; o < 8 * M; o += P)
		(void)*(volatile char *)(A + o);
	for (uint64_t o = 8 * M; o < 64 * M; o += P) {
		*(volatile uint64_t *)(A + o) = o / P;
		*(volatile uint64_t *)(A + o + 4088) = o / P;
	}
	report("2 touch");
	printf("   resident=%ld\n", resident(0, 64 * M));

	/* 3: MADV_DONTNEED of ranges that cover no whole PTE table */
	madvise((void *)(A + 1 * M), 2 * M, MADV_DONTNEED);
	madvise((void *)(A + 12 * M + P), 2 * M, MADV_DONTNEED);
	report("3 dontneed unaligned");
	printf("   resident=%ld\n", resident(0, 64 * M));

	/* 4: read the first byte of every page again */
	for (uint64_t o = 0; o < 64 * M; o += P)
		(void)*(volatile char *)(A + o);
	report("4 read all");
	printf("   resident=%ld\n", resident(0, 64 * M));

	/* 5: mprotect [32M, 48M) read-only; write 16 bytes from 32M - 8 */
	mprotect((void *)(A + 32 * M), 16 * M, PROT_READ);
	report("5 mprotect ro");
	printf("   write 16 at 32M-8 faults at off=%lld\n",
	       (long long)try_write(32 * M - 8, 16));
	printf("   resident=%ld\n", resident(0, 64 * M));

	/* 6: munmap [16M + 4K, 40M - 4K) */
	munmap((void *)(A + 16 * M + P), 24 * M - 2 * P);
	report("6 munmap middle");
	printf("   resident=%ld+%ld\n", resident(0, 16 * M + P),
	       resident(40 * M - P, 24 * M + P));
	printf("   read 8192 at 16M faults at off=%lld\n",
	       (long long)try_read(16 * M, 8192));
	printf("   read 8 at 40M-4K-4 faults at off=%lld\n",
	       (long long)try_read(40 * M - P - 4, 8));

	/* 7: MADV_DONTNEED of [48M, 52M): two whole PTE tables */
	madvise((void *)(A + 48 * M), 4 * M, MADV_DONTNEED);
	report("7 dontneed 2 whole tables");
	printf("   resident=%ld+%ld\n", resident(0, 16 * M + P),
	       resident(40 * M - P, 24 * M + P));

	/* 8: munmap everything */
	munmap((void *)A, 64 * M);
	report("8 munmap all");

	printf("\npage-table bytes for tests/test_fault.c:\n");
	uint64_t one[] = { 0 }, two_in_one[] = { 0, 2 * M - P },
		 two_tables[] = { 0, 2 * M }, gb[] = { G - P, G },
		 tb[] = { 512 * G - P, 512 * G };
	pt_case("one page", 0, 4 * M, one, 1);
	pt_case("two pages, one table", 0, 4 * M, two_in_one, 2);
	pt_case("two tables", 0, 4 * M, two_tables, 2);
	pt_case("across 1 GiB", G - 2 * M, 4 * M, gb, 2);
	pt_case("across 512 GiB", 512 * G - 2 * M, 4 * M, tb, 2);
	return 0;
}
