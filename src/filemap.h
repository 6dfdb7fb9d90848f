/*
 * filemap.h - files (struct smm_file, Linux's file + inode + address_space
 * in one) and their page caches (filemap.c); the reverse map of file
 * pages, i_mmap (rmap.c); the page lock and the writeback bit.
 *
 * Locks, outermost first (lock.h, docs/LOCKING.md):
 *  - wb_lock (mutex): one writeback of the file at a time;
 *  - invalidate_lock (rwlock): truncation (write) against anything that
 *    adds a page or changes the size (read; the size only under write);
 *  - the page lock (PG_LOCKED, sleeping): a page-cache page's identity
 *    (mapping, index), its contents while read in, and the window in
 *    which a fault checks the size and installs the entry;
 *  - i_mmap_lock (rwlock): the tree of VMAs that map the file;
 *  - i_pages_lock (spinlock): the page tree and its marks, PG_DIRTY and
 *    PG_WRITEBACK changes that go with a mark.
 * A page-cache page holds one reference for the cache and one per entry
 * that maps it; lockless lookups take theirs under RCU and recheck.
 */
#ifndef SMM_FILEMAP_H
#define SMM_FILEMAP_H

#include "mm.h"
#include "pagecache.h"

struct smm_file {
	struct smm_pool *pool;
	int fd;	    /* the host file (a duplicate), -1 when anonymous */
	bool shmem; /* anonymous: never written back */
	bool may_read, may_write; /* the host descriptor's access mode */
	atomic_long refs;	  /* the opener's, one per VMA, transient */
	_Atomic uint64_t size;	  /* bytes; changes under invalidate_lock */
	spinlock_t i_pages_lock;
	struct page_tree pages;
	pthread_rwlock_t invalidate_lock;
	pthread_rwlock_t i_mmap_lock;
	struct itree_root i_mmap;
	pthread_mutex_t wb_lock;
	bool need_sync; /* pwrite()s since the last fdatasync(); wb_lock */
};

static inline uint64_t file_size(struct smm_file *f)
{
	return atomic_load_explicit(&f->size, memory_order_acquire);
}

/* Pages the file's size covers: an index at or above is beyond the end. */
static inline uint64_t file_size_pages(struct smm_file *f)
{
	return (file_size(f) + PAGE_SIZE - 1) >> PAGE_SHIFT;
}

static inline void get_file(struct smm_file *f)
{
	atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

/* Drop a reference; the last one writes back and frees the file. */
void fput(struct smm_file *f);

static inline void i_mmap_lock_read(struct smm_file *f)
{
	lockdep_acquire(&f->i_mmap_lock, LC_I_MMAP, true);
	pthread_rwlock_rdlock(&f->i_mmap_lock);
}

static inline void i_mmap_unlock_read(struct smm_file *f)
{
	pthread_rwlock_unlock(&f->i_mmap_lock);
	lockdep_release(&f->i_mmap_lock);
}

static inline void i_mmap_lock_write(struct smm_file *f)
{
	lockdep_acquire(&f->i_mmap_lock, LC_I_MMAP, false);
	pthread_rwlock_wrlock(&f->i_mmap_lock);
}

static inline void i_mmap_unlock_write(struct smm_file *f)
{
	pthread_rwlock_unlock(&f->i_mmap_lock);
	lockdep_release(&f->i_mmap_lock);
}

/* The page lock. Sleeps; never two at once (one lock class). */
void lock_page(struct page *page);
void unlock_page(struct page *page);
/* The page lock if it is free (any lock may be held then). */
bool trylock_page(struct page *page);
/* The page at @index with a reference, or NULL: lockless (RCU). */
struct page *filemap_get_page(struct smm_file *f, uint64_t index);
/* Sleep until @page is not under writeback. */
void wait_on_page_writeback(struct page *page);

/*
 * filemap_lock_page - the page at @index of @f, locked, up to date, with a
 * reference for the caller; created (read in from the host, or zeroed) if
 * missing and @create. With @eof, an index at or beyond the end of the
 * file is -ENXIO (a fault's bus error), checked under the page lock (an
 * existing page) or under invalidate_lock (a new one), so that it holds
 * until the page is unlocked. NULL with *@err: 0 (not cached, !@create),
 * -ENXIO, -ENOMEM, -EIO (the host read failed; a fault's bus error too).
 */
struct page *filemap_lock_page(struct smm_file *f, uint64_t index, bool create,
			       bool eof, int *err);
/* Release what filemap_lock_page() gave. */
void filemap_unlock_put(struct smm_file *f, struct page *page);
/*
 * set_page_dirty - mark a page-cache page dirty (and its index in the
 * tree, unless anonymous) so that writeback writes it. Callers hold the
 * page lock, or the ptl of an entry that maps it (zap), or a reference
 * with the page's mapping checked under its lock (unpin).
 */
void set_page_dirty(struct page *page);
/* unpin_user_pages_dirty_lock(): set_page_dirty() under the page lock. */
void set_page_dirty_lock(struct page *page);
/* A write fault's or pwrite's wait for a page under writeback to end
 * (stable pages): called with the page lock held. */
static inline void wait_for_stable_page(struct page *page)
{
	wait_on_page_writeback(page);
}

/*
 * filemap_writeback - write back the dirty pages of [first, last] in index
 * order (smm_file_writeback()). @sync: fdatasync() the host file when
 * something was written. Takes wb_lock; no mm lock may be held. 0 or the
 * first I/O error.
 */
int filemap_writeback(struct smm_file *f, uint64_t first, uint64_t last,
		      bool sync);
/* MADV_WILLNEED: read [first, last] into the cache (within the size). */
void filemap_willneed(struct smm_file *f, uint64_t first, uint64_t last);
/* MADV_REMOVE: punch [first, last] out of the cache and the host file:
 * its pages unmapped everywhere (private copies stay, as Linux's
 * truncate_pagecache_range() leaves them), read back as zeros. */
int filemap_punch_hole(struct smm_file *f, uint64_t first, uint64_t last);
/* A new anonymous file for MAP_SHARED | MAP_ANONYMOUS. */
struct smm_file *shmem_file_new(struct smm_pool *pool, uint64_t size);

/*
 * Whether writeback tracks the stores of @vma's mapping (Linux's
 * vma_needs_dirty_tracking()): a shared mapping of a file that is written
 * back, not shared anonymous memory. Its clean pages are mapped read-only
 * when it is writable (writenotify), and long-term writable pins of it are
 * refused.
 */
static inline bool vma_needs_dirty_tracking(const struct vm_area_struct *vma)
{
	return (vma->vm_flags & VM_SHARED) && vma->vm_file &&
	       !vma->vm_file->shmem;
}

/* The page-offset interval a file VMA maps, for i_mmap. */
static inline uint64_t vma_last_pgoff(const struct vm_area_struct *vma)
{
	return vma->vm_pgoff + ((vma->vm_end - vma->vm_start) >> PAGE_SHIFT) -
	       1;
}

/* i_mmap: the caller holds the file's i_mmap_lock for write. */
static inline void i_mmap_insert(struct vm_area_struct *vma)
{
	vma->shared.start = vma->vm_pgoff;
	vma->shared.last = vma_last_pgoff(vma);
	itree_insert(&vma->vm_file->i_mmap, &vma->shared);
}

static inline void i_mmap_remove(struct vm_area_struct *vma)
{
	itree_remove(&vma->vm_file->i_mmap, &vma->shared);
}
/*
 * unmap_mapping_range - zap the entries that map the file's pages
 * [first, last] in every VMA that maps them; @even_cows: also the private
 * copies of private mappings (truncation), else only page-cache pages.
 * Takes i_mmap_lock for read; the caller holds no mm lock.
 */
void unmap_mapping_range(struct smm_file *f, uint64_t first, uint64_t last,
			 bool even_cows);
/*
 * page_mkclean - write-protect and clean every entry of a shared mapping
 * that maps @page (locked, in @page's file), each under its ptl, and flush
 * the TLBs of the address spaces changed, so that no CPU can store to the
 * page without a write fault afterwards. Returns how many entries changed.
 */
int page_mkclean(struct page *page);

/* memory.c: the fault of a file VMA (file_vm_ops). */
extern const struct vm_operations_struct file_vm_ops;

#endif
