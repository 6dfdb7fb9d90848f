/*
 * test_file.c - files and shared memory: the page cache behind host files
 * and anonymous files, shared and private mappings (coherence between
 * address spaces, copy-on-write, writenotify), bus errors beyond the end,
 * truncation, msync and writeback to the host, merging of file VMAs, GUP
 * on file pages, and fault injection on every allocation of these paths.
 */
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <pthread.h>
#include <stdatomic.h>
#include "common.h"

#define SH   (SMM_MAP_SHARED)
#define PRIV (SMM_MAP_PRIVATE)

/* A host file of @size bytes in a fresh temporary file, filled with
 * byte i % 251 at offset i; returns its descriptor (unlinked). */
static int host_file(uint64_t size, int flags)
{
	char path[] = "/var/tmp/softmm-test-XXXXXX";
	int fd = mkstemp(path);
	uint8_t buf[4096];

	assert_true(fd >= 0);
	unlink(path);
	for (uint64_t off = 0; off < size; off += sizeof(buf)) {
		size_t n = (size_t)(size - off < sizeof(buf) ? size - off :
							       sizeof(buf));

		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)((off + i) % 251);
		assert_int_equal(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
	}
	if (flags != O_RDWR) {
		char p2[64];
		int fd2;

		snprintf(p2, sizeof(p2), "/proc/self/fd/%d", fd);
		fd2 = open(p2, flags);
		assert_true(fd2 >= 0);
		close(fd);
		fd = fd2;
	}
	return fd;
}

static uint8_t host_byte(int fd, uint64_t off)
{
	uint8_t b = 0;

	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	return b;
}

static uint8_t rd(struct env *e, uint64_t addr)
{
	uint8_t b;

	assert_int_equal(smm_read(e->cpu, addr, &b, 1, NULL), 0);
	return b;
}

static void wr(struct env *e, uint64_t addr, uint8_t b)
{
	assert_int_equal(smm_write(e->cpu, addr, &b, 1, NULL), 0);
}

/* Reads come from the host file; the page cache holds what was read. */
static void test_read_fault(void **state)
{
	struct env *e = *state;
	int fd = host_file(5 * PG, O_RDWR);
	struct smm_file *f = smm_file_open(e->pool, fd);
	unsigned char vec[8];

	assert_non_null(f);
	assert_int_equal(smm_file_size(f), 5 * PG);
	assert_int_equal(smm_mmap_file(e->mm, TA, 8 * PG, RO,
				       SH | SMM_MAP_FIXED, f, 0),
			 (int64_t)TA);
	assert_int_equal(rd(e, TA + 3 * PG + 7), (3 * PG + 7) % 251);
	assert_int_equal(mm_stats(e->mm).rss_file, 1);
	assert_int_equal(pool_stats(e->pool).file_pages, 1);
	/* mincore shows the cache: the page read, nothing else */
	assert_int_equal(smm_mincore(e->mm, TA, 8 * PG, vec), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(vec[i], i == 3);
	/* page 5 and beyond are past the end: bus errors */
	uint64_t fa = 0;
	uint8_t b;
	assert_int_equal(smm_read(e->cpu, TA + 5 * PG, &b, 1, &fa), -ENXIO);
	assert_int_equal(fa, TA + 5 * PG);
	assert_int_equal(smm_mm_verify(e->mm), 0);
	assert_int_equal(smm_munmap(e->mm, TA, 8 * PG), 0);
	/* still cached after the unmap, until the file is closed */
	assert_int_equal(pool_stats(e->pool).file_pages, 1);
	assert_int_equal(smm_file_close(f), 0);
	assert_int_equal(pool_stats(e->pool).file_pages, 0);
	close(fd);
}

/* Two address spaces share a file: stores through one are loads through
 * the other and pread; pwrite is seen by both. */
static void test_shared_two_mms(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm2 = new_mm(e->pool, 0);
	int fd = host_file(4 * PG, O_RDWR);
	struct smm_file *f = smm_file_open(e->pool, fd);
	uint8_t buf[16];

	assert_non_null(f);
	assert_int_equal(smm_mmap_file(e->mm, TA, 4 * PG, RW,
				       SH | SMM_MAP_FIXED, f, 0),
			 (int64_t)TA);
	assert_int_equal(smm_mmap_file(mm2, TA + 64 * PG, 2 * PG, RW,
				       SH | SMM_MAP_FIXED, f, 2 * PG),
			 (int64_t)(TA + 64 * PG));
	wr(e, TA + 2 * PG + 5, 0xab);
	assert_int_equal(smm_file_pread(f, buf, 1, 2 * PG + 5), 1);
	assert_int_equal(buf[0], 0xab);
	smm_cpu_switch_mm(e->cpu, mm2);
	assert_int_equal(rd(e, TA + 64 * PG + 5), 0xab);
	wr(e, TA + 64 * PG + PG + 9, 0xcd);
	smm_cpu_switch_mm(e->cpu, e->mm);
	assert_int_equal(rd(e, TA + 3 * PG + 9), 0xcd);
	assert_int_equal(smm_file_pwrite(f, "xyz", 3, 2 * PG + 100), 3);
	assert_int_equal(rd(e, TA + 2 * PG + 101), 'y');
	/* not yet on the host: writeback has not run */
	assert_int_not_equal(host_byte(fd, 2 * PG + 5), 0xab);
	assert_int_equal(smm_msync(e->mm, TA, 4 * PG, SMM_MS_SYNC), 0);
	assert_int_equal(host_byte(fd, 2 * PG + 5), 0xab);
	assert_int_equal(host_byte(fd, 3 * PG + 9), 0xcd);
	assert_int_equal(host_byte(fd, 2 * PG + 101), 'y');
	/*
	 * writenotify: the pages are clean now and mapped read-only; a store
	 * faults, dirties the page again and reaches the host at the next
	 * writeback, through either mapping.
	 */
	smm_cpu_switch_mm(e->cpu, mm2);
	wr(e, TA + 64 * PG + 6, 0x11);
	smm_cpu_switch_mm(e->cpu, e->mm);
	assert_int_equal(smm_file_writeback(f, SMM_WB_SYNC), 0);
	assert_int_equal(host_byte(fd, 2 * PG + 6), 0x11);
	assert_int_equal(smm_mm_verify(e->mm), 0);
	assert_int_equal(smm_mm_verify(mm2), 0);
	assert_int_equal(mm_stats(mm2).rss_file, 2);
	smm_mm_destroy(mm2);
	assert_int_equal(smm_file_close(f), 0);
	close(fd);
}

/* Private mappings see the file until they write; then their copy. */
static void test_private_cow(void **state)
{
	struct env *e = *state;
	int fd = host_file(2 * PG, O_RDWR);
	struct smm_file *f = smm_file_open(e->pool, fd);

	assert_non_null(f);
	assert_int_equal(smm_mmap_file(e->mm, TA, 2 * PG, RW,
				       PRIV | SMM_MAP_FIXED, f, 0),
			 (int64_t)TA);
	assert_int_equal(smm_mmap_file(e->mm, TA + 16 * PG, 2 * PG, RW,
				       SH | SMM_MAP_FIXED, f, 0),
			 (int64_t)(TA + 16 * PG));
	assert_int_equal(rd(e, TA + 1), 1);    /* read: the cache page */
	wr(e, TA + 16 * PG + 1, 0x77);	       /* through the shared one */
	assert_int_equal(rd(e, TA + 1), 0x77); /* seen: not copied yet */
	wr(e, TA + 2, 0x99);		       /* copy on write */
	assert_int_equal(rd(e, TA + 1), 0x77);
	assert_int_equal(rd(e, TA + 16 * PG + 2), 2); /* file unchanged */
	wr(e, TA + 16 * PG + 1, 0x55);
	assert_int_equal(rd(e, TA + 1), 0x77); /* the copy stays */
	wr(e, TA + PG + 3, 0x42);	       /* write fault on none */
	assert_int_equal(rd(e, TA + 16 * PG + PG + 3), (PG + 3) % 251);
	assert_int_equal(mm_stats(e->mm).rss_anon, 2);
	assert_int_equal(smm_mm_verify(e->mm), 0);
	assert_int_equal(smm_msync(e->mm, TA, 32 * PG, SMM_MS_SYNC), -ENOMEM);
	assert_int_equal(host_byte(fd, 2), 2);
	assert_int_equal(host_byte(fd, 1), 0x55);
	assert_int_equal(smm_munmap(e->mm, TA, 32 * PG), 0);
	assert_int_equal(smm_file_close(f), 0);
	close(fd);
}

/* Truncation unmaps what lies beyond, private copies too; growing maps
 * nothing and reads zeros. */
static void test_truncate(void **state)
{
	struct env *e = *state;
	int fd = host_file(4 * PG, O_RDWR);
	struct smm_file *f = smm_file_open(e->pool, fd);
	uint8_t b;
	struct stat st;

	assert_non_null(f);
	assert_int_equal(smm_mmap_file(e->mm, TA, 4 * PG, RW,
				       SH | SMM_MAP_FIXED, f, 0),
			 (int64_t)TA);
	assert_int_equal(smm_mmap_file(e->mm, TA + 8 * PG, 4 * PG, RW,
				       PRIV | SMM_MAP_FIXED, f, 0),
			 (int64_t)(TA + 8 * PG));
	for (int i = 0; i < 4; i++) {
		wr(e, TA + i * PG, 0xa0 + i);
		wr(e, TA + 8 * PG + i * PG + 1, 0xb0 + i); /* copies */
	}
	assert_int_equal(smm_file_truncate(f, PG + 100), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, PG + 100);
	assert_int_equal(rd(e, TA + PG), 0xa1);
	assert_int_equal(rd(e, TA + PG + 99), (PG + 99) % 251);
	assert_int_equal(rd(e, TA + PG + 100), 0); /* the tail: zeroed */
	assert_int_equal(smm_read(e->cpu, TA + 2 * PG, &b, 1, NULL), -ENXIO);
	assert_int_equal(smm_read(e->cpu, TA + 8 * PG + 3 * PG, &b, 1, NULL),
			 -ENXIO); /* the private copy went too */
	assert_int_equal(rd(e, TA + 8 * PG + 1), 0xb0); /* within: kept */
	assert_int_equal(smm_mm_verify(e->mm), 0);
	assert_int_equal(smm_file_truncate(f, 3 * PG), 0);
	assert_int_equal(rd(e, TA + 2 * PG + 5), 0);
	assert_int_equal(rd(e, TA + PG + 200), 0);
	assert_int_equal(smm_msync(e->mm, TA, 4 * PG, SMM_MS_SYNC), 0);
	assert_int_equal(host_byte(fd, PG), 0xa1);
	assert_int_equal(host_byte(fd, PG + 200), 0);
	assert_int_equal(smm_file_truncate(f, 0), 0);
	assert_int_equal(pool_stats(e->pool).file_pages, 0);
	assert_int_equal(mm_stats(e->mm).rss_file, 0);
	assert_int_equal(smm_munmap(e->mm, TA, 16 * PG), 0);
	assert_int_equal(smm_file_close(f), 0);
	close(fd);
}

static void test_msync_errors(void **state)
{
	struct env *e = *state;
	int fd = host_file(4 * PG, O_RDWR);
	struct smm_file *f = smm_file_open(e->pool, fd);

	assert_int_equal(smm_mmap_file(e->mm, TA, 2 * PG, RW,
				       SH | SMM_MAP_FIXED, f, 0),
			 (int64_t)TA);
	assert_int_equal(smm_mmap(e->mm, TA + 3 * PG, PG, RW,
				  PRIV_ANON | SMM_MAP_FIXED),
			 (int64_t)(TA + 3 * PG));
	assert_int_equal(smm_msync(e->mm, TA + 1, PG, SMM_MS_SYNC), -EINVAL);
	assert_int_equal(smm_msync(e->mm, TA, PG, 8), -EINVAL);
	assert_int_equal(smm_msync(e->mm, TA, PG, SMM_MS_SYNC | SMM_MS_ASYNC),
			 -EINVAL);
	assert_int_equal(smm_msync(e->mm, TA, 0, SMM_MS_SYNC), 0);
	assert_int_equal(smm_msync(e->mm, TA, 2 * PG, 0), 0);
	assert_int_equal(smm_msync(e->mm, TA, 4 * PG, SMM_MS_ASYNC), -ENOMEM);
	assert_int_equal(smm_msync(e->mm, TA, 4 * PG, SMM_MS_SYNC), -ENOMEM);
	assert_int_equal(smm_msync(e->mm, TA + 8 * PG, PG, SMM_MS_SYNC),
			 -ENOMEM);
	assert_int_equal(smm_msync(e->mm, TA, UINT64_MAX - 2 * PG, 0), -ENOMEM);
	assert_int_equal(smm_mlock(e->mm, TA, PG), 0);
	assert_int_equal(smm_msync(e->mm, TA, PG, SMM_MS_INVALIDATE), -EBUSY);
	assert_int_equal(smm_munmap(e->mm, TA, 4 * PG), 0);
	assert_int_equal(smm_file_close(f), 0);
	close(fd);
}

/* mmap's errno values for files. */
static void test_mmap_errors(void **state)
{
	struct env *e = *state;
	int fd = host_file(PG, O_RDONLY);
	struct smm_file *f = smm_file_open(e->pool, fd);

	assert_non_null(f);
	assert_int_equal(smm_mmap_file(e->mm, TA, PG, RW, SH, f, 100), -EINVAL);
	assert_int_equal(smm_mmap_file(e->mm, TA, PG, RW, SH, f, 0), -EACCES);
	assert_int_equal(smm_mmap_file(e->mm, TA, PG, RW, SH, NULL, 0), -EBADF);
	assert_int_equal(smm_mmap_file(e->mm, TA, PG, RO,
				       SH | SMM_MAP_ANONYMOUS, f, 0),
			 -EINVAL);
	assert_int_equal(smm_mmap_file(e->mm, TA, 2 * PG, RO, SH, f,
				       UINT64_MAX & ~(PG - 1)),
			 -EOVERFLOW);
	assert_int_equal(smm_mmap_file(e->mm, TA, PG, RO,
				       SH | SMM_MAP_GROWSDOWN, f, 0),
			 -EINVAL);
	/* read-only shared: fine, and `s` without VM_SHARED */
	assert_int_equal(smm_mmap_file(e->mm, TA, PG, RO, SH | SMM_MAP_FIXED, f,
				       0),
			 (int64_t)TA);
	assert_int_equal(smm_mprotect(e->mm, TA, PG, RW), -EACCES);
	/* private writable is fine: stores go to copies */
	assert_int_equal(smm_mmap_file(e->mm, TA + PG, PG, RW,
				       PRIV | SMM_MAP_FIXED, f, 0),
			 (int64_t)(TA + PG));
	wr(e, TA + PG, 1);
	assert_int_equal(smm_munmap(e->mm, TA, 2 * PG), 0);
	assert_int_equal(smm_file_close(f), 0);
	close(fd);
	fd = host_file(PG, O_WRONLY);
	errno = 0;
	assert_null(smm_file_open(e->pool, fd));
	assert_int_equal(errno, EACCES);
	close(fd);
	assert_null(smm_file_open(e->pool, -1));
	assert_int_equal(errno, EBADF);
}

/* File VMAs merge when the offsets continue, and split with them. */
static void test_merge_split(void **state)
{
	struct env *e = *state;
	int fd = host_file(16 * PG, O_RDWR);
	struct smm_file *f = smm_file_open(e->pool, fd);
	struct smm_vma_info v[4];

	assert_int_equal(smm_mmap_file(e->mm, TA, 4 * PG, RW,
				       SH | SMM_MAP_FIXED, f, 0),
			 (int64_t)TA);
	assert_int_equal(smm_mmap_file(e->mm, TA + 4 * PG, 4 * PG, RW,
				       SH | SMM_MAP_FIXED, f, 4 * PG),
			 (int64_t)(TA + 4 * PG));
	assert_int_equal(smm_mm_vmas(e->mm, TA, TA + 16 * PG, v, 4), 1);
	/* not continuing: no merge */
	assert_int_equal(smm_mmap_file(e->mm, TA + 8 * PG, 4 * PG, RW,
				       SH | SMM_MAP_FIXED, f, 0),
			 (int64_t)(TA + 8 * PG));
	assert_int_equal(smm_mm_vmas(e->mm, TA, TA + 16 * PG, v, 4), 2);
	assert_int_equal(v[1].pgoff, 0);
	assert_true(v[0].flags & SMM_VM_SHARED);
	assert_ptr_equal(v[0].file, f);
	/* split, then merge back */
	assert_int_equal(smm_mprotect(e->mm, TA + PG, PG, RO), 0);
	assert_int_equal(smm_mm_vmas(e->mm, TA, TA + 16 * PG, v, 4), 4);
	assert_int_equal(v[2].pgoff, 2);
	wr(e, TA + 2 * PG, 9); /* the reverse map finds the split part */
	assert_int_equal(smm_file_truncate(f, 2 * PG), 0);
	uint8_t b;
	assert_int_equal(smm_read(e->cpu, TA + 2 * PG, &b, 1, NULL), -ENXIO);
	assert_int_equal(smm_mprotect(e->mm, TA + PG, PG, RW), 0);
	assert_int_equal(smm_mm_vmas(e->mm, TA, TA + 16 * PG, v, 4), 2);
	assert_int_equal(smm_mm_verify(e->mm), 0);
	assert_int_equal(smm_munmap(e->mm, TA, 16 * PG), 0);
	assert_int_equal(smm_file_close(f), 0);
	close(fd);
}

/* MAP_SHARED | MAP_ANONYMOUS: a file of its own, shared by its parts. */
static void test_shared_anon(void **state)
{
	struct env *e = *state;
	struct smm_file *f = smm_file_create(e->pool, 3 * PG);
	unsigned char vec[3];

	assert_int_equal(smm_mmap(e->mm, TA, 2 * PG, RW,
				  SH | SMM_MAP_ANONYMOUS | SMM_MAP_FIXED),
			 (int64_t)TA);
	assert_int_equal(rd(e, TA + 5), 0);
	wr(e, TA + PG + 1, 3);
	assert_int_equal(smm_mincore(e->mm, TA, 2 * PG, vec), 0);
	assert_int_equal(vec[0] + vec[1], 2);
	assert_int_equal(smm_madvise(e->mm, TA, 2 * PG, SMM_MADV_DONTNEED), 0);
	assert_int_equal(rd(e, TA + PG + 1), 3); /* the cache keeps it */
	assert_int_equal(smm_madvise(e->mm, TA, 2 * PG, SMM_MADV_REMOVE), 0);
	assert_int_equal(rd(e, TA + PG + 1), 0); /* punched */
	assert_int_equal(smm_madvise(e->mm, TA, PG, SMM_MADV_FREE), -EINVAL);
	/* an anonymous file of the caller's, mapped twice */
	assert_non_null(f);
	assert_int_equal(smm_mmap_file(e->mm, TA + 8 * PG, 3 * PG, RW,
				       SH | SMM_MAP_FIXED, f, 0),
			 (int64_t)(TA + 8 * PG));
	assert_int_equal(smm_mmap_file(e->mm, TA + 16 * PG, 3 * PG, RW,
				       SH | SMM_MAP_FIXED, f, 0),
			 (int64_t)(TA + 16 * PG));
	wr(e, TA + 8 * PG + 2 * PG, 0x5a);
	assert_int_equal(rd(e, TA + 16 * PG + 2 * PG), 0x5a);
	assert_int_equal(smm_file_close(f), 0); /* mappings keep it */
	assert_int_equal(rd(e, TA + 16 * PG + 2 * PG), 0x5a);
	assert_int_equal(smm_mm_verify(e->mm), 0);
	assert_int_equal(smm_munmap(e->mm, TA, 32 * PG), 0);
	assert_int_equal(pool_stats(e->pool).file_pages, 0);
}

/* GUP on file pages; long-term writable pins of written-back files are
 * refused; a pin's dirty unpin reaches the host. */
static void test_gup_file(void **state)
{
	struct env *e = *state;
	int fd = host_file(2 * PG, O_RDWR);
	struct smm_file *f = smm_file_open(e->pool, fd);
	struct smm_page *p[2];
	struct smm_pool_stats ps;

	assert_int_equal(smm_mmap_file(e->mm, TA, 2 * PG, RW,
				       SH | SMM_MAP_FIXED, f, 0),
			 (int64_t)TA);
	assert_int_equal(smm_pin_user_pages(e->mm, TA, 2,
					    SMM_FOLL_WRITE | SMM_FOLL_LONGTERM,
					    p),
			 -EFAULT);
	assert_int_equal(
		smm_pin_user_pages_fast(e->cpu, TA, 2,
					SMM_FOLL_WRITE | SMM_FOLL_LONGTERM, p),
		-EFAULT);
	assert_int_equal(smm_pin_user_pages(e->mm, TA, 2, SMM_FOLL_LONGTERM, p),
			 2);
	smm_unpin_user_pages(p, 2);
	assert_int_equal(smm_pin_user_pages(e->mm, TA, 2, SMM_FOLL_WRITE, p),
			 2);
	assert_int_equal(smm_msync(e->mm, TA, 2 * PG, SMM_MS_SYNC), 0);
	((uint8_t *)smm_page_address(p[1]))[7] = 0xee; /* "DMA" */
	smm_unpin_user_pages_dirty_lock(p, 2, true);
	assert_int_equal(smm_msync(e->mm, TA, 2 * PG, SMM_MS_SYNC), 0);
	assert_int_equal(host_byte(fd, PG + 7), 0xee);
	/* a pin outlives the file: the frame goes at the unpin */
	assert_int_equal(smm_get_user_pages(e->mm, TA, 1, 0, p), 1);
	assert_int_equal(smm_munmap(e->mm, TA, 2 * PG), 0);
	assert_int_equal(smm_file_close(f), 0);
	assert_int_equal(pool_stats(e->pool).file_pages, 1);
	smm_put_page(p[0]);
	ps = pool_stats(e->pool);
	assert_int_equal(ps.file_pages, 0);
	assert_int_equal(ps.pins_acquired, ps.pins_released);
	close(fd);
}

/* Fault injection: each allocation of a file mmap, fault, pwrite and
 * truncate fails in turn; the failed call leaves everything as it was. */
static void test_fault_injection(void **state)
{
	struct env *e = *state;
	int fd = host_file(4 * PG, O_RDWR);
	struct smm_file *f = smm_file_open(e->pool, fd);

	for (unsigned long n = 1; n < 40; n++) {
		struct smm_vma_info v[4];
		size_t nv;
		int64_t r;
		uint8_t b = 0;
		int err;

		/* mmap: nothing mapped if it fails */
		smm_pool_inject_failure(e->pool, n);
		r = smm_mmap_file(e->mm, TA, 4 * PG, RW, SH | SMM_MAP_FIXED, f,
				  0);
		smm_pool_inject_failure(e->pool, 0);
		nv = smm_mm_vmas(e->mm, TA, TA + 4 * PG, v, 4);
		if (r < 0) {
			assert_int_equal(r, -ENOMEM);
			assert_int_equal(nv, 0);
			continue;
		}
		assert_int_equal(nv, 1);
		/* a fault: -ENOMEM and no entry, or done */
		smm_pool_inject_failure(e->pool, n);
		err = smm_read(e->cpu, TA + PG, &b, 1, NULL);
		smm_pool_inject_failure(e->pool, 0);
		if (err)
			assert_int_equal(err, -ENOMEM);
		assert_int_equal(rd(e, TA + PG), PG % 251);
		/* pwrite: all or nothing per page; the data intact */
		smm_pool_inject_failure(e->pool, n);
		r = smm_file_pwrite(f, "Q", 1, 3 * PG + 1);
		smm_pool_inject_failure(e->pool, 0);
		if (r < 0)
			assert_int_equal(r, -ENOMEM);
		assert_int_equal(rd(e, TA + 3 * PG + 1), r == 1 ? 'Q' : 0);
		assert_int_equal(smm_file_pwrite(f, "\0", 1, 3 * PG + 1), 1);
		assert_int_equal(smm_mm_verify(e->mm), 0);
		assert_int_equal(smm_munmap(e->mm, TA, 4 * PG), 0);
	}
	assert_int_equal(smm_file_close(f), 0);
	/* opening and creating files, and shared anonymous mmap */
	for (unsigned long n = 1; n < 8; n++) {
		struct smm_pool_stats ps;
		int64_t r;

		smm_pool_inject_failure(e->pool, n);
		f = smm_file_open(e->pool, fd);
		smm_pool_inject_failure(e->pool, 0);
		if (f)
			assert_int_equal(smm_file_close(f), 0);
		else
			assert_int_equal(errno, ENOMEM);
		smm_pool_inject_failure(e->pool, n);
		f = smm_file_create(e->pool, PG);
		smm_pool_inject_failure(e->pool, 0);
		if (f)
			assert_int_equal(smm_file_close(f), 0);
		else
			assert_int_equal(errno, ENOMEM);
		smm_pool_inject_failure(e->pool, n);
		r = smm_mmap(e->mm, TA, 2 * PG, RW,
			     SH | SMM_MAP_ANONYMOUS | SMM_MAP_FIXED);
		smm_pool_inject_failure(e->pool, 0);
		if (r < 0) {
			assert_int_equal(r, -ENOMEM);
			assert_int_equal(smm_mm_vmas(e->mm, 0, SMM_TASK_SIZE,
						     NULL, 0),
					 0);
		} else {
			wr(e, TA, 1);
			assert_int_equal(smm_munmap(e->mm, TA, 2 * PG), 0);
		}
		ps = pool_stats(e->pool);
		assert_int_equal(ps.file_pages, 0);
	}
	close(fd);
}

/*
 * Races: CPUs of two address spaces store to and load from one shared
 * mapping and a private one, while a thread truncates the file down and
 * back up, one writes it back, and one punches holes. Every access must
 * end in data, zeros or a bus error (never a crash, a lock-order report or
 * a bad entry); a byte stored by a thread into a page that no truncation
 * or hole touched since must read back. At the end both address spaces
 * verify and every frame returns to the pool.
 */
#define RACE_PAGES 16
struct race {
	struct smm_pool *pool;
	struct smm_mm *mm[2];
	struct smm_file *f;
	atomic_bool stop;
	atomic_ulong epoch; /* bumped around every truncate and punch */
	atomic_long ops, bus;
};

struct race_cpu {
	struct race *r;
	int id;
};

static void *race_cpu_fn(void *arg)
{
	struct race_cpu *c = arg;
	struct race *r = c->r;
	struct smm_cpu *cpu = smm_cpu_attach(r->pool);
	unsigned int seed = (unsigned int)c->id * 7919u + 1;

	assert_non_null(cpu);
	smm_cpu_switch_mm(cpu, r->mm[c->id & 1]);
	while (!atomic_load(&r->stop)) {
		int page = (int)(rand_r(&seed) % RACE_PAGES);
		uint64_t base = rand_r(&seed) & 1 ? TA : TA + 64 * PG;
		uint64_t a = base + (uint64_t)page * PG + (uint64_t)c->id * 8;
		uint8_t v = (uint8_t)rand_r(&seed), got;
		unsigned long e0 = atomic_load(&r->epoch);
		int err = smm_write(cpu, a, &v, 1, NULL);

		if (err) {
			assert_int_equal(err, -ENXIO);
			atomic_fetch_add(&r->bus, 1);
			continue;
		}
		err = smm_read(cpu, a, &got, 1, NULL);
		if (err) {
			assert_int_equal(err, -ENXIO);
			continue;
		}
		/* nothing truncated or punched meanwhile: our byte is there */
		if (!(e0 & 1) && atomic_load(&r->epoch) == e0)
			assert_int_equal(got, v);
		atomic_fetch_add(&r->ops, 1);
	}
	smm_cpu_switch_mm(cpu, NULL);
	smm_cpu_detach(cpu);
	return NULL;
}

static void *race_truncate_fn(void *arg)
{
	struct race *r = arg;
	unsigned int seed = 99;

	while (!atomic_load(&r->stop)) {
		uint64_t size = (rand_r(&seed) % (RACE_PAGES * PG + 1));

		atomic_fetch_add(&r->epoch, 1);
		assert_int_equal(smm_file_truncate(r->f, size), 0);
		if (rand_r(&seed) % 4 == 0)
			assert_int_equal(
				smm_file_truncate(r->f, RACE_PAGES * PG), 0);
		atomic_fetch_add(&r->epoch, 1);
		usleep(200);
		atomic_fetch_add(&r->epoch, 1);
		assert_int_equal(smm_file_truncate(r->f, RACE_PAGES * PG), 0);
		if (rand_r(&seed) % 2)
			assert_int_equal(smm_madvise(r->mm[1], TA + PG, 2 * PG,
						     SMM_MADV_REMOVE),
					 0);
		atomic_fetch_add(&r->epoch, 1);
		usleep(500);
	}
	return NULL;
}

static void *race_writeback_fn(void *arg)
{
	struct race *r = arg;

	while (!atomic_load(&r->stop)) {
		assert_int_equal(smm_file_writeback(r->f, 0), 0);
		assert_int_equal(smm_msync(r->mm[0], TA, RACE_PAGES * PG,
					   SMM_MS_SYNC),
				 0);
	}
	return NULL;
}

static void test_races(void **state)
{
	struct env *e = *state;
	int fd = host_file(RACE_PAGES * PG, O_RDWR);
	struct race r = { .pool = e->pool };
	struct race_cpu c[4];
	pthread_t t[6];

	r.f = smm_file_open(e->pool, fd);
	r.mm[0] = e->mm;
	r.mm[1] = new_mm(e->pool, 0);
	for (int m = 0; m < 2; m++) {
		assert_int_equal(smm_mmap_file(r.mm[m], TA, RACE_PAGES * PG, RW,
					       SH | SMM_MAP_FIXED, r.f, 0),
				 (int64_t)TA);
		assert_int_equal(smm_mmap_file(r.mm[m], TA + 64 * PG,
					       RACE_PAGES * PG, RW,
					       PRIV | SMM_MAP_FIXED, r.f, 0),
				 (int64_t)(TA + 64 * PG));
	}
	for (int i = 0; i < 4; i++) {
		c[i] = (struct race_cpu){ &r, i };
		pthread_create(&t[i], NULL, race_cpu_fn, &c[i]);
	}
	pthread_create(&t[4], NULL, race_truncate_fn, &r);
	pthread_create(&t[5], NULL, race_writeback_fn, &r);
	usleep(1500 * 1000);
	atomic_store(&r.stop, true);
	for (int i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	print_message("races: %ld accesses, %ld bus errors\n",
		      atomic_load(&r.ops), atomic_load(&r.bus));
	assert_true(atomic_load(&r.ops) > 0);
	assert_true(atomic_load(&r.bus) > 0);
	assert_int_equal(smm_mm_verify(r.mm[0]), 0);
	assert_int_equal(smm_mm_verify(r.mm[1]), 0);
	smm_mm_destroy(r.mm[1]);
	assert_int_equal(smm_file_close(r.f), 0);
	assert_int_equal(smm_munmap(e->mm, TA, 128 * PG), 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_read_fault, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_shared_two_mms, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_private_cow, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_truncate, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_msync_errors, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_mmap_errors, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_merge_split, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_shared_anon, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_gup_file, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_fault_injection, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_races, env_setup,
						env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
