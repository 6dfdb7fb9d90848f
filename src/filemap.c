/*
 * filemap.c - files and their page caches: opening and releasing files,
 * looking pages up without locks and creating them (read in from the host
 * file, or zeroed), the page lock and the writeback bit with their
 * sleeping waits, pread/pwrite through the cache, truncation, writeback
 * (page_mkclean, PG_writeback, pwrite, end) and the public smm_file_* API.
 *
 * Locking: see filemap.h for the file's locks and their order. Page-cache
 * lookups run under RCU and take a reference that they validate against
 * the slot after taking it (Linux's filemap_get_entry): a page is erased
 * from the tree before the cache's reference is dropped, so a reference
 * taken on a page that is still in its slot is a reference on that page.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include "filemap.h"
#include "fault.h"

#define MAX_FILE_SIZE (1ULL << 52)

/* ---- the page lock and the writeback bit ---- */

/*
 * Sleepers on a page bit wait in one of 64 hashed queues. A waiter sets
 * PG_WAITERS, then tests its bit again, both under the queue's mutex; a
 * waker clears its bit and PG_WAITERS in one atomic operation and, if
 * PG_WAITERS was set, broadcasts under the mutex. Either the waiter's test
 * sees the bit clear, or it is already waiting when the broadcast comes.
 * Waiters of other bits of the page, or of other pages of the queue, wake
 * too, find their bit still set and set PG_WAITERS again.
 */
#define NR_PAGE_WAITQ 64
static struct page_waitq {
	pthread_mutex_t lock;
	pthread_cond_t cond;
} __attribute__((aligned(64))) page_waitq[NR_PAGE_WAITQ];
static pthread_once_t page_waitq_once = PTHREAD_ONCE_INIT;

static void page_waitq_init(void)
{
	for (int i = 0; i < NR_PAGE_WAITQ; i++) {
		pthread_mutex_init(&page_waitq[i].lock, NULL);
		pthread_cond_init(&page_waitq[i].cond, NULL);
	}
}

static struct page_waitq *page_waitq_of(struct page *page)
{
	uintptr_t h = (uintptr_t)page / sizeof(struct page);

	return &page_waitq[(h ^ (h >> 6)) % NR_PAGE_WAITQ];
}

/* Sleep until @bit of @page is clear (PG_LOCKED: and take it). */
static void wait_on_page_bit(struct page *page, unsigned int bit)
{
	struct page_waitq *q = page_waitq_of(page);

	pthread_once(&page_waitq_once, page_waitq_init);
	for (;;) {
		if (bit == PG_LOCKED) {
			if (!(atomic_fetch_or(&page->flags, PG_LOCKED) &
			      PG_LOCKED))
				return;
		} else if (!(atomic_load(&page->flags) & bit)) {
			return;
		}
		pthread_mutex_lock(&q->lock);
		atomic_fetch_or(&page->flags, PG_WAITERS);
		if (atomic_load(&page->flags) & bit)
			pthread_cond_wait(&q->cond, &q->lock);
		pthread_mutex_unlock(&q->lock);
	}
}

static void clear_page_bit_wake(struct page *page, unsigned int bit)
{
	unsigned int old = atomic_fetch_and(&page->flags, ~(bit | PG_WAITERS));
	struct page_waitq *q;

	VM_BUG_ON(!(old & bit));
	if (old & PG_WAITERS) {
		pthread_once(&page_waitq_once, page_waitq_init);
		q = page_waitq_of(page);
		pthread_mutex_lock(&q->lock);
		pthread_cond_broadcast(&q->cond);
		pthread_mutex_unlock(&q->lock);
	}
}

void lock_page(struct page *page)
{
	lockdep_acquire(page, LC_PAGE_LOCK, false);
	wait_on_page_bit(page, PG_LOCKED);
}

bool trylock_page(struct page *page)
{
	if (atomic_fetch_or(&page->flags, PG_LOCKED) & PG_LOCKED)
		return false;
	lockdep_acquire_trylock(page, LC_PAGE_LOCK, false);
	return true;
}

void unlock_page(struct page *page)
{
	clear_page_bit_wake(page, PG_LOCKED);
	lockdep_release(page);
}

void wait_on_page_writeback(struct page *page)
{
	wait_on_page_bit(page, PG_WRITEBACK);
}

/* ---- references ---- */

static inline pfn_t file_page_pfn(struct smm_file *f, struct page *page)
{
	return page_to_pfn(f->pool, page);
}

static bool get_page_unless_zero(struct page *page)
{
	int c = atomic_load_explicit(&page->refcount, memory_order_relaxed);

	do {
		if (!c)
			return false;
	} while (!atomic_compare_exchange_weak(&page->refcount, &c, c + 1));
	return true;
}

static void file_put_page(struct smm_file *f, struct page *page)
{
	put_page(f->pool, file_page_pfn(f, page));
}

/*
 * The page at @index with a reference, or NULL: lockless. The reference is
 * taken only if the count is not zero (a page leaving the cache, or
 * freed), and kept only if the slot still holds the page afterwards (the
 * frame may have been freed and reused meanwhile).
 */
struct page *filemap_get_page(struct smm_file *f, uint64_t index)
{
	struct page *page;

	urcu_memb_read_lock();
	for (;;) {
		page = pc_load(&f->pages, index);
		if (!page)
			break;
		if (!get_page_unless_zero(page))
			continue;
		if (likely(page == pc_load(&f->pages, index)))
			break;
		urcu_memb_read_unlock();
		file_put_page(f, page);
		urcu_memb_read_lock();
	}
	urcu_memb_read_unlock();
	return page;
}

/* ---- the invalidate lock ---- */

static void invalidate_lock_shared(struct smm_file *f)
{
	lockdep_acquire(&f->invalidate_lock, LC_INVALIDATE, true);
	pthread_rwlock_rdlock(&f->invalidate_lock);
}

static void invalidate_lock(struct smm_file *f)
{
	lockdep_acquire(&f->invalidate_lock, LC_INVALIDATE, false);
	pthread_rwlock_wrlock(&f->invalidate_lock);
}

static void invalidate_unlock(struct smm_file *f)
{
	pthread_rwlock_unlock(&f->invalidate_lock);
	lockdep_release(&f->invalidate_lock);
}

/* ---- creating and removing pages ---- */

/* Fill a new page from the host file: a short read (the end of the file)
 * leaves zeros. 0 or -EIO. */
static int read_page(struct smm_file *f, struct page *page, uint64_t index)
{
	uint8_t *p = pfn_to_virt(f->pool, file_page_pfn(f, page));
	size_t done = 0;

	if (f->shmem)
		return 0;
	while (done < PAGE_SIZE) {
		ssize_t n = pread(f->fd, p + done, PAGE_SIZE - done,
				  (off_t)((index << PAGE_SHIFT) + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -EIO;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return 0;
}

/*
 * Take @page out of the cache: erase its slot, clear its identity and
 * dirtiness, drop the cache's reference. The page is locked, not mapped,
 * not under writeback. References others hold (a pin) keep the frame.
 */
static void delete_from_page_cache(struct smm_file *f, struct page *page)
{
	VM_BUG_ON(!(atomic_load(&page->flags) & PG_LOCKED));
	VM_BUG_ON(atomic_load(&page->flags) & PG_WRITEBACK);
	spin_lock_class(&f->i_pages_lock, LC_I_PAGES);
	pc_erase(&f->pages, page->index);
	WRITE_ONCE(page->mapping, NULL);
	atomic_fetch_and(&page->flags, ~PG_DIRTY);
	spin_unlock(&f->i_pages_lock);
	file_put_page(f, page);
}

/*
 * A new page at @index, locked, with two references (the cache's and the
 * caller's), read in; or NULL with *@err: -EEXIST (someone else added one:
 * look again), -ENOMEM, -EIO. invalidate_lock held for read.
 */
static struct page *add_new_page(struct smm_file *f, uint64_t index, int *err)
{
	pfn_t pfn = alloc_frame(f->pool, PG_FILE);
	struct page *page;

	if (pfn == NO_PFN) {
		*err = -ENOMEM;
		return NULL;
	}
	page = pfn_to_page(f->pool, pfn);
	atomic_store_explicit(&page->flags,
			      PG_FILE | PG_LOCKED |
				      (f->shmem ? PG_SWAPBACKED : 0),
			      memory_order_relaxed);
	atomic_store_explicit(&page->refcount, 2, memory_order_relaxed);
	atomic_store_explicit(&page->mapcount, 0, memory_order_relaxed);
	page->mapping = f;
	page->index = index;
	page->pin_owner = NULL;
	spin_lock_class(&f->i_pages_lock, LC_I_PAGES);
	if (pc_load(&f->pages, index))
		*err = -EEXIST;
	else
		*err = pc_insert(&f->pages, index, page);
	spin_unlock(&f->i_pages_lock);
	if (*err) {
		atomic_store(&page->flags, PG_FILE);
		atomic_store(&page->refcount, 1);
		page->mapping = NULL;
		put_page(f->pool, pfn);
		return NULL;
	}
	lockdep_acquire_trylock(page, LC_PAGE_LOCK, false);
	race_point();
	*err = read_page(f, page, index);
	if (*err) {
		delete_from_page_cache(f, page);
		unlock_page(page);
		put_page(f->pool, pfn);
		return NULL;
	}
	atomic_fetch_or(&page->flags, PG_UPTODATE);
	return page;
}

struct page *filemap_lock_page(struct smm_file *f, uint64_t index, bool create,
			       bool eof, int *err)
{
	struct page *page;

	for (;;) {
		page = filemap_get_page(f, index);
		if (page) {
			lock_page(page);
			/* Truncated (or punched) while we slept? */
			if (unlikely(page->mapping != f)) {
				filemap_unlock_put(f, page);
				continue;
			}
			VM_BUG_ON(page->index != index);
			VM_BUG_ON(!(atomic_load(&page->flags) & PG_UPTODATE));
			/*
			 * Truncation sets the size before it takes the page
			 * locks: under the lock, a page beyond the size is
			 * on its way out.
			 */
			if (eof && index >= file_size_pages(f)) {
				filemap_unlock_put(f, page);
				*err = -ENXIO;
				return NULL;
			}
			return page;
		}
		if (!create) {
			*err = 0;
			return NULL;
		}
		invalidate_lock_shared(f);
		if (eof && index >= file_size_pages(f)) {
			invalidate_unlock(f);
			*err = -ENXIO;
			return NULL;
		}
		page = add_new_page(f, index, err);
		invalidate_unlock(f);
		if (page || *err != -EEXIST)
			return page;
	}
}

void filemap_unlock_put(struct smm_file *f, struct page *page)
{
	unlock_page(page);
	file_put_page(f, page);
}

/* ---- dirtiness (set_page_dirty() is in pagecache.c) ---- */

void set_page_dirty_lock(struct page *page)
{
	lock_page(page);
	set_page_dirty(page);
	unlock_page(page);
}

/* ---- writeback ---- */

/* Up to this many consecutive dirty pages are written with one pwritev(). */
#define WB_BATCH 64

/*
 * Write the pages @pages[0..@n) (under writeback, at consecutive indexes
 * from @index) with one pwritev(2), the last one cut at the size. In TSan
 * builds each page is copied first: a device may write it through a pin
 * meanwhile (and dirty it again at the unpin), and pwritev() reads the
 * frames as TSan cannot see the guest's relaxed atomics (frame_copy()).
 */
static int write_pages(struct smm_file *f, struct page **pages, int n,
		       uint64_t index)
{
	uint64_t off = index << PAGE_SHIFT, size = file_size(f);
	struct iovec iov[WB_BATCH];
	size_t len = 0, done = 0;
	int cnt = 0;
#ifdef SMM_TSAN
	static __thread uint8_t copy[WB_BATCH][PAGE_SIZE];
#endif

	for (int i = 0; i < n && off + len < size; i++) {
		uint8_t *p = pfn_to_virt(f->pool, file_page_pfn(f, pages[i]));
		size_t l = (size_t)MIN((uint64_t)PAGE_SIZE, size - off - len);

#ifdef SMM_TSAN
		frame_copy(copy[i], p, l);
		p = copy[i];
#endif
		iov[cnt++] = (struct iovec){ .iov_base = p, .iov_len = l };
		len += l;
	}
	while (done < len) {
		ssize_t w = pwritev(f->fd, iov, cnt, (off_t)(off + done));

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		done += (size_t)w;
		/* A short write: skip what went out. */
		while (cnt && (size_t)w >= iov[0].iov_len) {
			w -= (ssize_t)iov[0].iov_len;
			memmove(iov, iov + 1, (size_t)--cnt * sizeof(iov[0]));
		}
		if (cnt) {
			iov[0].iov_base = (uint8_t *)iov[0].iov_base + w;
			iov[0].iov_len -= (size_t)w;
		}
	}
	if (len)
		f->need_sync = true;
	return 0;
}

/*
 * Start the writeback of one page, Linux's order: under the page lock,
 * clean every entry that maps it (so that the next store faults and
 * dirties it again), then trade PG_DIRTY for PG_WRITEBACK. False if the
 * page was truncated or cleaned meanwhile. The write happens without the
 * page lock; stores after page_mkclean() wait for the end of the writeback
 * (a write fault waits for stable pages), so the host gets one consistent
 * image of the page and a store is never lost between clean and write.
 */
static bool writeback_start(struct smm_file *f, struct page *page,
			    uint64_t index)
{
	lock_page(page);
	if (page->mapping != f || !(atomic_load(&page->flags) & PG_DIRTY)) {
		unlock_page(page);
		return false;
	}
	page_mkclean(page);
	spin_lock_class(&f->i_pages_lock, LC_I_PAGES);
	atomic_fetch_and(&page->flags, ~PG_DIRTY);
	pc_clear_mark(&f->pages, index, PC_MARK_DIRTY);
	atomic_fetch_or(&page->flags, PG_WRITEBACK);
	pc_set_mark(&f->pages, index, PC_MARK_WRITEBACK);
	spin_unlock(&f->i_pages_lock);
	unlock_page(page);
	return true;
}

/* Truncation waits for the end before it erases the page. */
static void writeback_end(struct smm_file *f, struct page *page, uint64_t index)
{
	spin_lock_class(&f->i_pages_lock, LC_I_PAGES);
	pc_clear_mark(&f->pages, index, PC_MARK_WRITEBACK);
	spin_unlock(&f->i_pages_lock);
	clear_page_bit_wake(page, PG_WRITEBACK);
}

/*
 * The writeback loop, wb_lock held (or the file's last reference): runs of
 * up to WB_BATCH consecutive dirty pages, found by the dirty mark in index
 * order; each page started, the started ones written in as few pwritev()
 * calls as their gaps allow, each ended.
 */
static int __filemap_writeback(struct smm_file *f, uint64_t first,
			       uint64_t last, bool sync)
{
	uint64_t index = first;
	int err = 0, e;

	while (index <= last) {
		struct page *pages[WB_BATCH], *page;
		bool started[WB_BATCH];
		uint64_t base = 0;
		int n = 0;

		spin_lock_class(&f->i_pages_lock, LC_I_PAGES);
		while (n < WB_BATCH) {
			uint64_t i = index;

			page = pc_find(&f->pages, &i, PC_MARK_DIRTY);
			if (!page || i > last || (n && i != base + n))
				break;
			if (!n)
				base = i;
			/* the cache's reference keeps it: not zero */
			atomic_fetch_add(&page->refcount, 1);
			pages[n++] = page;
			if (i == UINT64_MAX)
				break;
			index = i + 1;
		}
		spin_unlock(&f->i_pages_lock);
		if (!n)
			break;
		for (int i = 0; i < n; i++)
			started[i] = writeback_start(f, pages[i], base + i);
		race_point();
		for (int i = 0, j; i < n; i = j) {
			for (j = i; j < n && started[j] == started[i]; j++)
				;
			if (!started[i])
				continue;
			e = write_pages(f, pages + i, j - i, base + i);
			if (e && !err)
				err = e;
		}
		for (int i = 0; i < n; i++) {
			if (started[i])
				writeback_end(f, pages[i], base + i);
			file_put_page(f, pages[i]);
		}
		if (base + n - 1 == UINT64_MAX)
			break;
		index = base + n;
	}
	if (sync && f->need_sync) {
		if (fdatasync(f->fd) && !err)
			err = -errno;
		f->need_sync = false;
	}
	return err;
}

int filemap_writeback(struct smm_file *f, uint64_t first, uint64_t last,
		      bool sync)
{
	int err;

	if (f->shmem)
		return 0;
	lockdep_acquire(&f->wb_lock, LC_WB, false);
	pthread_mutex_lock(&f->wb_lock);
	err = __filemap_writeback(f, first, last, sync);
	pthread_mutex_unlock(&f->wb_lock);
	lockdep_release(&f->wb_lock);
	return err;
}

/* ---- truncation ---- */

/*
 * Take the pages at [first, last] out of the cache: each one locked, its
 * writeback waited for, unmapped where a fault mapped it after the range
 * was unmapped, erased. invalidate_lock held for write, so no page is
 * added meanwhile.
 */
static void truncate_pages(struct smm_file *f, uint64_t first, uint64_t last)
{
	uint64_t index = first;

	while (index <= last) {
		struct page *page;

		spin_lock_class(&f->i_pages_lock, LC_I_PAGES);
		page = pc_find(&f->pages, &index, PC_NR_MARKS);
		if (page && index <= last)
			atomic_fetch_add(&page->refcount, 1);
		else
			page = NULL;
		spin_unlock(&f->i_pages_lock);
		if (!page)
			break;
		lock_page(page);
		if (page->mapping == f) {
			wait_on_page_writeback(page);
			if (atomic_load(&page->mapcount))
				unmap_mapping_range(f, index, index, false);
			VM_BUG_ON(atomic_load(&page->mapcount));
			delete_from_page_cache(f, page);
		}
		filemap_unlock_put(f, page);
		if (index == UINT64_MAX)
			break;
		index++;
	}
}

/* Zero the bytes [from, to) of the cached page that holds them (one page),
 * if it is cached: what lies beyond the end of a file reads as zeros. */
static void zero_cached_range(struct smm_file *f, uint64_t from, uint64_t to)
{
	struct page *page;
	int err;

	if (from >= to)
		return;
	page = filemap_lock_page(f, from >> PAGE_SHIFT, false, false, &err);
	if (!page)
		return;
	wait_for_stable_page(page);
	static const uint8_t zeros[PAGE_SIZE];

	frame_copy((uint8_t *)pfn_to_virt(f->pool, file_page_pfn(f, page)) +
			   (from & ~PAGE_MASK),
		   zeros, to - from);
	filemap_unlock_put(f, page);
}

/* Set the size; invalidate_lock held for write. */
static int set_size_locked(struct smm_file *f, uint64_t size)
{
	uint64_t old = file_size(f);

	if (!f->shmem && ftruncate(f->fd, (off_t)size))
		return -errno;
	if (size > old) {
		/* Whatever a mapping stored past the old end is not data. */
		zero_cached_range(f, old, MIN(size, PAGE_ALIGN(old)));
		atomic_store_explicit(&f->size, size, memory_order_release);
		return 0;
	}
	atomic_store_explicit(&f->size, size, memory_order_release);
	if (size == old)
		return 0;
	/*
	 * Linux's truncate_pagecache(): unmap (private copies too), drop the
	 * pages, unmap again for the private copies that faults made from
	 * pages dropped meanwhile; then the tail of the new last page.
	 */
	unmap_mapping_range(f, PAGE_ALIGN(size) >> PAGE_SHIFT, UINT64_MAX,
			    true);
	truncate_pages(f, PAGE_ALIGN(size) >> PAGE_SHIFT, UINT64_MAX);
	unmap_mapping_range(f, PAGE_ALIGN(size) >> PAGE_SHIFT, UINT64_MAX,
			    true);
	zero_cached_range(f, size, PAGE_ALIGN(size));
	return 0;
}

int filemap_punch_hole(struct smm_file *f, uint64_t first, uint64_t last)
{
	uint64_t end = file_size_pages(f);

	if (!end || first >= end)
		return 0;
	last = MIN(last, end - 1);
	invalidate_lock(f);
	if (!f->shmem &&
	    fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(first << PAGE_SHIFT),
		      (off_t)((last - first + 1) << PAGE_SHIFT))) {
		int err = -errno;

		invalidate_unlock(f);
		return err;
	}
	/* truncate_pagecache_range(): a hole leaves private copies be */
	unmap_mapping_range(f, first, last, false);
	truncate_pages(f, first, last);
	invalidate_unlock(f);
	return 0;
}

void filemap_willneed(struct smm_file *f, uint64_t first, uint64_t last)
{
	uint64_t end = file_size_pages(f);
	int err;

	if (f->shmem)
		return; /* shmem's WILLNEED only swaps in */
	for (uint64_t i = first; i <= last && i < end; i++) {
		struct page *page = filemap_lock_page(f, i, true, true, &err);

		if (!page)
			break;
		filemap_unlock_put(f, page);
	}
}

/* ---- files ---- */

static struct smm_file *file_alloc(struct smm_pool *pool)
{
	struct smm_file *f = pool_zalloc_aligned(pool, sizeof(*f));

	if (!f)
		return NULL;
	f->pool = pool;
	f->fd = -1;
	atomic_init(&f->refs, 1);
	spin_lock_init(&f->i_pages_lock);
	f->pages.pool = pool;
	pthread_rwlock_init(&f->invalidate_lock, NULL);
	pthread_rwlock_init(&f->i_mmap_lock, NULL);
	pthread_mutex_init(&f->wb_lock, NULL);
	f->may_read = f->may_write = true;
	atomic_fetch_add(&pool->nr_files, 1);
	return f;
}

/*
 * The last reference is gone: no VMA maps the file, no call runs on it, so
 * no other writeback either. May run under mmap_lock (munmap drops a VMA's
 * reference), which is why it does not take wb_lock, an outer lock.
 */
static void file_release(struct smm_file *f)
{
	struct smm_pool *pool = f->pool;

	rcu_thread_online();
	if (!f->shmem)
		__filemap_writeback(f, 0, UINT64_MAX, false);
	invalidate_lock(f);
	truncate_pages(f, 0, UINT64_MAX);
	invalidate_unlock(f);
	VM_BUG_ON(!itree_empty(&f->i_mmap));
	pc_destroy(&f->pages);
	if (f->fd >= 0)
		close(f->fd);
	pthread_rwlock_destroy(&f->invalidate_lock);
	pthread_rwlock_destroy(&f->i_mmap_lock);
	pthread_mutex_destroy(&f->wb_lock);
	free(f);
	atomic_fetch_sub(&pool->nr_files, 1);
}

void fput(struct smm_file *f)
{
	if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
		file_release(f);
}

struct smm_file *shmem_file_new(struct smm_pool *pool, uint64_t size)
{
	struct smm_file *f = file_alloc(pool);

	if (f) {
		f->shmem = true;
		atomic_store(&f->size, size);
	}
	return f;
}

SMM_API struct smm_file *smm_file_open(struct smm_pool *pool, int fd)
{
	struct smm_file *f;
	struct stat st;
	int mode, dup;

	if (!pool || !pool_is_live(pool)) {
		errno = EINVAL;
		return NULL;
	}
	mode = fcntl(fd, F_GETFL);
	if (mode < 0 || fstat(fd, &st)) {
		errno = EBADF;
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		errno = ENODEV;
		return NULL;
	}
	if ((mode & O_ACCMODE) == O_WRONLY) {
		errno = EACCES;
		return NULL;
	}
	dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dup < 0)
		return NULL;
	f = file_alloc(pool);
	if (!f) {
		close(dup);
		errno = ENOMEM;
		return NULL;
	}
	f->fd = dup;
	f->may_write = (mode & O_ACCMODE) == O_RDWR;
	atomic_store(&f->size, (uint64_t)st.st_size);
	return f;
}

SMM_API struct smm_file *smm_file_create(struct smm_pool *pool, uint64_t size)
{
	struct smm_file *f;

	if (!pool || !pool_is_live(pool)) {
		errno = EINVAL;
		return NULL;
	}
	if (size > MAX_FILE_SIZE) {
		errno = EFBIG;
		return NULL;
	}
	f = shmem_file_new(pool, size);
	if (!f)
		errno = ENOMEM;
	return f;
}

SMM_API int smm_file_close(struct smm_file *f)
{
	int err;

	if (!f)
		return -EINVAL;
	rcu_thread_online();
	/* Report what writing back now finds, then let go. */
	err = filemap_writeback(f, 0, UINT64_MAX, false);
	fput(f);
	return err;
}

SMM_API int64_t smm_file_size(struct smm_file *f)
{
	return f ? (int64_t)file_size(f) : -EINVAL;
}

SMM_API int smm_file_truncate(struct smm_file *f, uint64_t size)
{
	int err;

	if (!f)
		return -EINVAL;
	if (size > MAX_FILE_SIZE)
		return -EFBIG;
	rcu_thread_online();
	invalidate_lock(f);
	err = set_size_locked(f, size);
	invalidate_unlock(f);
	return err;
}

/*
 * Copy between @buf and the file's pages from @off, page by page through
 * the cache (each created and read in if missing, and locked while
 * copied), up to @len bytes or the end of the file: read(2) and write(2)
 * semantics without the size change, which pwrite makes first. A store
 * waits for a page's writeback (stable pages) and dirties it. Returns the
 * bytes copied; *@err says why it stopped short (-ENXIO: the end).
 */
static size_t filemap_rw(struct smm_file *f, uint8_t *buf, size_t len,
			 uint64_t off, bool write, int *err)
{
	size_t done = 0;

	*err = 0;
	while (done < len) {
		uint64_t pos = off + done, size = file_size(f);
		size_t in = pos & ~PAGE_MASK, n;
		struct page *page;
		uint8_t *p;

		if (pos >= size)
			break;
		n = (size_t)MIN((uint64_t)(PAGE_SIZE - in),
				MIN((uint64_t)(len - done), size - pos));
		page = filemap_lock_page(f, pos >> PAGE_SHIFT, true, true, err);
		if (!page)
			break;
		p = (uint8_t *)pfn_to_virt(f->pool, file_page_pfn(f, page)) +
		    in;
		if (write) {
			wait_for_stable_page(page);
			frame_copy(p, buf + done, n);
			set_page_dirty(page);
		} else {
			frame_copy(buf + done, p, n);
		}
		filemap_unlock_put(f, page);
		done += n;
	}
	return done;
}

SMM_API int64_t smm_file_pread(struct smm_file *f, void *buf, size_t len,
			       uint64_t off)
{
	size_t done;
	int err;

	if (!f)
		return -EINVAL;
	if (!buf && len)
		return -EFAULT;
	if (off > INT64_MAX)
		return -EINVAL; /* a negative loff_t */
	rcu_thread_online();
	done = filemap_rw(f, buf, len, off, false, &err);
	if (!done && err && err != -ENXIO)
		return err;
	return (int64_t)done;
}

SMM_API int64_t smm_file_pwrite(struct smm_file *f, const void *buf, size_t len,
				uint64_t off)
{
	size_t done;
	int err = 0;

	if (!f)
		return -EINVAL;
	if (!buf && len)
		return -EFAULT;
	if (off > MAX_FILE_SIZE || len > MAX_FILE_SIZE - off)
		return -EFBIG;
	if (!len)
		return 0;
	rcu_thread_online();
	if (off + len > file_size(f)) {
		invalidate_lock(f);
		if (off + len > file_size(f))
			err = set_size_locked(f, off + len);
		invalidate_unlock(f);
		if (err)
			return err;
	}
	/* A truncation meanwhile may leave less to write: a short write. */
	done = filemap_rw(f, (uint8_t *)buf, len, off, true, &err);
	if (!done && err && err != -ENXIO)
		return err;
	return (int64_t)done;
}

SMM_API int smm_file_writeback(struct smm_file *f, unsigned int flags)
{
	if (!f || (flags & ~SMM_WB_SYNC))
		return -EINVAL;
	rcu_thread_online();
	return filemap_writeback(f, 0, UINT64_MAX, flags & SMM_WB_SYNC);
}
