/*
 * mm.c - address spaces: creation (with the scheme's ops, pt_scheme.c),
 * teardown (exit_mmap), lifetime, statistics, mincore and the VMA listing.
 *
 * Locking: teardown takes mmap_lock for write and marks the mm dead; the
 * structure itself lives until the last reference (the creator's, one per
 * CPU switched to it, one per pin) is dropped. mincore walks semi-locked,
 * under mmap_lock held for read. The registry of live address spaces has
 * its own mutex, live_lock.
 */
#include <errno.h>
#include <string.h>
#include "mm.h"
#include "pagewalk.h"
#include "filemap.h"

/*
 * Address spaces created and not yet destroyed, hashed by address and
 * chained through mm->live_next. smm_mm_destroy() looks its argument up
 * here before it dereferences it, so that destroying twice (by then the
 * structure may be freed) is reported, not a use after free or a hang on
 * a destroyed lock.
 */
#define LIVE_BUCKETS 256
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static struct smm_mm *live_mms[LIVE_BUCKETS];

static struct smm_mm **live_bucket(const struct smm_mm *mm)
{
	uintptr_t h = (uintptr_t)mm >> 6;

	return &live_mms[(h ^ (h >> 8)) % LIVE_BUCKETS];
}

static void live_add(struct smm_mm *mm)
{
	struct smm_mm **b = live_bucket(mm);

	pthread_mutex_lock(&live_lock);
	mm->live_next = *b;
	*b = mm;
	pthread_mutex_unlock(&live_lock);
}

/* Take @mm out of the registry; false if it was not in it. The chain is
 * walked by its links: @mm itself is only compared. */
static bool live_del(struct smm_mm *mm)
{
	struct smm_mm **pp;
	bool found = false;

	pthread_mutex_lock(&live_lock);
	for (pp = live_bucket(mm); *pp; pp = &(*pp)->live_next) {
		if (*pp == mm) {
			*pp = mm->live_next;
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&live_lock);
	return found;
}

SMM_API struct smm_mm *smm_mm_create(struct smm_pool *pool,
				     const struct smm_mm_opts *opts)
{
	/* The defaults of a NULL @opts are those of a zeroed one. */
	static const struct smm_mm_opts def;
	pthread_rwlockattr_t attr;
	struct smm_mm *mm;

	if (!pool || !pool_is_live(pool)) {
		errno = EINVAL;
		return NULL;
	}
	if (!opts)
		opts = &def;
	if (!smm_scheme_name(opts->scheme) ||
	    (opts->flags & ~SMM_MM_NO_VMA_LOCK) ||
	    (opts->mmap_base & ~PAGE_MASK) || opts->mmap_base > SMM_TASK_SIZE) {
		errno = EINVAL;
		return NULL;
	}
	mm = pool_zalloc_aligned(pool, sizeof(*mm));
	if (!mm) {
		errno = ENOMEM;
		return NULL;
	}
	mm->pool = pool;
	mm->scheme = opts->scheme;
	mm->pt_ops = pt_scheme_get(opts->scheme);
	mm->pt_flags = pt_scheme_flags(mm->pt_ops);
	mm->flags = opts->flags;
	mm->mmap_base = opts->mmap_base ? opts->mmap_base : 0x7ffff7fff000ULL;
	mm->pgd_pfn = alloc_frame(pool, PG_TABLE);
	if (mm->pgd_pfn == NO_PFN) {
		free(mm);
		errno = ENOMEM;
		return NULL;
	}
	mm->tree_seed = (uint32_t)((uintptr_t)mm >> 4) | 1;
	pfn_to_page(pool, mm->pgd_pfn)->pt_level = 4;
	pfn_to_page(pool, mm->pgd_pfn)->pt_owner = mm;
	mm->pgd = pfn_to_virt(pool, mm->pgd_pfn);
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(
		&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&mm->mmap_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&mm->mmap_write_gate, NULL);
	spin_lock_init(&mm->page_table_lock);
	uffd_ctx_init(&mm->uffd);
	atomic_init(&mm->refs, 1);
	atomic_fetch_add(&pool->nr_mms, 1);
	live_add(mm);
	return mm;
}

static void mm_free(struct smm_mm *mm)
{
	struct smm_pool *pool = mm->pool;

	/* The PGD outlives destroy for CPUs still switched to the mm: their
	 * walks find it empty and fault. */
	free_table_now(pool, mm->pgd_pfn);
	vma_tree_destroy(mm);
	vma_cache_drain(mm);
	pthread_rwlock_destroy(&mm->mmap_lock);
	pthread_mutex_destroy(&mm->mmap_write_gate);
	uffd_ctx_destroy(&mm->uffd);
	free(mm);
	atomic_fetch_sub(&pool->nr_mms, 1);
}

void mm_put(struct smm_mm *mm)
{
	if (atomic_fetch_sub(&mm->refs, 1) == 1)
		mm_free(mm);
}

/*
 * exit_mmap: zap every VMA, free every table. No CPU may be inside an
 * access, but CPUs may still be switched to @mm: the TLB flush in the
 * gather covers their TLBs.
 */
SMM_API void smm_mm_destroy(struct smm_mm *mm)
{
	struct vm_area_struct *v, *n;

	if (!mm)
		return;
	if (!live_del(mm))
		smm_misuse("smm_mm_destroy",
			   "%p is not a live address space (destroyed twice?)",
			   (void *)mm);
	rcu_thread_online();
	mmap_write_lock(mm);
	BUG_ON(mm->dead);
	if (mm->vma_head) {
		for (v = mm->vma_head; v; v = v->vm_next) {
			vma_start_write(v);
			v->detached = true;
		}
		unmap_region(mm, mm->vma_head, mm->vma_tail, 0, 0, ZAP_EXIT);
	}
	/* Unpublish the tree before the VMAs it holds go to RCU. */
	vma_tree_clear(mm);
	for (v = mm->vma_head; v; v = n) {
		n = v->vm_next;
		if (v->vm_file)
			fput(v->vm_file);
		vma_free_rcu(v);
	}
	mm->vma_head = mm->vma_tail = NULL;
	mm->nr_vmas = 0;
	free_all_pgtables(mm);
	mm->dead = true;
	mmap_write_unlock(mm);
	/* Faults waiting for a userfaultfd handler fail now (-ESRCH). */
	uffd_mm_exit(mm);
	/* Wait for RCU callbacks, so every deferred free is done. */
	urcu_memb_barrier();
	BUG_ON(stripe_sum(mm->ctr, MC_RSS) || stripe_sum(mm->ctr, MC_ZERO) ||
	       stripe_sum(mm->ctr, MC_FILE));
	BUG_ON(atomic_load(&mm->nr_ptes) || atomic_load(&mm->nr_pmds) ||
	       atomic_load(&mm->nr_puds));
	mm_put(mm);
}

SMM_API int smm_mm_stats(struct smm_mm *mm, struct smm_mm_stats *st)
{
	if (!mm || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->rss_anon = (uint64_t)stripe_sum(mm->ctr, MC_RSS);
	st->zero_ptes = (uint64_t)stripe_sum(mm->ctr, MC_ZERO);
	st->rss_file = (uint64_t)stripe_sum(mm->ctr, MC_FILE);
	st->pud_bytes = (uint64_t)atomic_load(&mm->nr_puds) * PAGE_SIZE;
	st->pmd_bytes = (uint64_t)atomic_load(&mm->nr_pmds) * PAGE_SIZE;
	st->pte_bytes = (uint64_t)atomic_load(&mm->nr_ptes) * PAGE_SIZE;
	st->pt_bytes = st->pud_bytes + st->pmd_bytes + st->pte_bytes;
	st->faults = (uint64_t)stripe_sum(mm->ctr, MC_FAULTS);
	st->faults_vma_lock = (uint64_t)stripe_sum(mm->ctr, MC_FAULTS_VMA);
	st->faults_mmap_lock = (uint64_t)stripe_sum(mm->ctr, MC_FAULTS_MMAP);
	st->tlb_flushes = (uint64_t)atomic_load(&mm->tlb_flushes);
	st->nr_vmas = READ_ONCE(mm->nr_vmas);
	st->pins_acquired = (uint64_t)atomic_load(&mm->pins_acquired);
	st->pins_released = (uint64_t)atomic_load(&mm->pins_released);
	st->pt_reclaimed = (uint64_t)atomic_load(&mm->pt_reclaimed);
	return 0;
}

SMM_API int smm_mincore(struct smm_mm *mm, uint64_t start, uint64_t len,
			unsigned char *vec)
{
	uint64_t end, addr;
	int err = 0;

	if (!mm)
		return -EINVAL;
	if (start & ~PAGE_MASK)
		return -EINVAL;
	/*
	 * Linux's access_ok(start, len) on the length as given: rounding it
	 * up first would wrap a length near 2^64 to zero. The range then
	 * ends at or below SMM_TASK_SIZE, which is page-aligned, so the
	 * rounded-up end cannot pass it.
	 */
	if (len > SMM_TASK_SIZE || start > SMM_TASK_SIZE - len)
		return -ENOMEM;
	end = start + PAGE_ALIGN(len);
	if (!vec && end > start)
		return -EFAULT;
	rcu_thread_online();
	mmap_read_lock(mm);
	if (mm->dead) {
		err = -ESRCH;
		goto out;
	}
	for (addr = start; addr < end;) {
		struct vm_area_struct *vma = vma_lookup(mm, addr);
		uint64_t stop;

		if (!vma) {
			err = -ENOMEM;
			break;
		}
		stop = MIN(end, vma->vm_end);
		for (; addr < stop; addr += PAGE_SIZE) {
			struct pt_walk w;
			pteval_t *ptep = pte_offset_map(mm, addr, &w);
			bool present = ptep && pte_mapped(pte_read(ptep));

			if (ptep)
				pte_unmap(&w);
			/* Linux's mincore_page(): a file's page counts if
			 * it is in the page cache, mapped here or not. */
			if (!present && vma->vm_file) {
				urcu_memb_read_lock();
				present = pc_load(
					&vma->vm_file->pages,
					vma->vm_pgoff +
						((addr - vma->vm_start) >>
						 PAGE_SHIFT));
				urcu_memb_read_unlock();
			}
			*vec++ = present;
		}
	}
out:
	mmap_read_unlock(mm);
	return err;
}

SMM_API size_t smm_mm_vmas(struct smm_mm *mm, uint64_t start, uint64_t end,
			   struct smm_vma_info *out, size_t max)
{
	size_t n = 0;

	if (!mm)
		return 0;
	if (!out)
		max = 0;
	rcu_thread_online();
	mmap_read_lock(mm);
	for (struct vm_area_struct *v = find_vma(mm, start);
	     v && v->vm_start < end; v = v->vm_next) {
		if (n < max) {
			out[n].start = v->vm_start;
			out[n].end = v->vm_end;
			out[n].prot =
				(v->vm_flags & VM_READ ? SMM_PROT_READ : 0) |
				(v->vm_flags & VM_WRITE ? SMM_PROT_WRITE : 0) |
				(v->vm_flags & VM_EXEC ? SMM_PROT_EXEC : 0);
			out[n].flags = v->vm_flags & VM_INFO_FLAGS;
			out[n].pgoff = v->vm_pgoff;
			out[n].file = v->vm_file;
		}
		n++;
	}
	mmap_read_unlock(mm);
	return n;
}
