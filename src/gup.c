/*
 * gup.c - get_user_pages and pin_user_pages: the lockless fast path
 * (GUP-fast), the slow path that faults pages in, references and pins
 * (GUP_PIN_COUNTING_BIAS), unpinning, and the pin counters.
 *
 * Owns: the GUP references on pages (page->refcount beyond the one per
 * mapping), the owner of a pinned anonymous page (page->pin_owner), the pin
 * counters of pools and address spaces, and the mm references that pins
 * hold.
 *
 * Locking (docs/LOCKING.md, "GUP"):
 *  - GUP-fast is a lockless walker: no lock at all, inside an access
 *    section of the calling CPU (tlb.h), so no TLB shootdown of the mm
 *    completes and no page table it can reach is freed while it walks. It
 *    takes a reference only on a page whose count is not zero (try-get,
 *    never resurrecting a freed page), then rechecks the PMD entry and the
 *    PTE and drops the reference if either changed.
 *  - The slow path is a locked walker: a VMA read lock (or mmap_lock for
 *    read), and the reference is taken under the PTE table's ptl with the
 *    entry present, so the page cannot be unmapped and freed meanwhile.
 *  - Page refcounts and all counters are atomics. The page lock used by
 *    unpin_user_pages_dirty_lock() is the data page's own ptl spinlock
 *    (class LC_LEAF: nothing nests inside it, and it is taken with no
 *    other lock held).
 *  - Lifetime: a pin holds a reference on its page (the frame is not freed
 *    while pinned, whatever happens to the mapping) and on the page's mm
 *    (mm->refs: the structure, not the address space, outlives
 *    smm_mm_destroy() until the last pin goes, so that the unpin can count
 *    itself in mm->pins_released). A plain get holds only the page.
 */
#include <errno.h>
#include <limits.h>
#include "gup.h"
#include "pagewalk.h"
#include "fault.h"
#include "filemap.h"

#ifdef SMM_DEBUG
void (*smm_debug_gup_fast_hook)(struct smm_mm *mm, uint64_t addr,
				pteval_t *pmdp, pteval_t *ptep);
#endif

/* A page's count must stay far from overflowing. */
#define GUP_REF_LIMIT (INT_MAX / 2)

static inline struct page *to_page(struct smm_page *p)
{
	return (struct page *)p;
}

static inline struct smm_page *to_handle(struct page *p)
{
	return (struct smm_page *)p;
}

static inline bool page_is_zero(const struct page *page)
{
	return atomic_load_explicit(&((struct page *)page)->flags,
				    memory_order_relaxed) &
	       PG_ZERO;
}

/*
 * Take @refs references on @page unless its count is zero (being freed,
 * or free: never resurrect it) or would come near overflow. Returns 0,
 * -EAGAIN (count was zero) or -ENOMEM (overflow, as Linux answers).
 */
static int try_grab_page(struct page *page, int refs)
{
	int c = atomic_load_explicit(&page->refcount, memory_order_relaxed);

	do {
		if (c <= 0)
			return -EAGAIN;
		if (c > GUP_REF_LIMIT - refs)
			return -ENOMEM;
	} while (!atomic_compare_exchange_weak_explicit(
		&page->refcount, &c, c + refs, memory_order_acquire,
		memory_order_relaxed));
	return 0;
}

/* Drop @refs references; free the frame with the last one. */
static void put_page_refs(struct smm_pool *pool, struct page *page, int refs)
{
	int old = atomic_fetch_sub_explicit(&page->refcount, refs,
					    memory_order_acq_rel);

	BUG_ON(old < refs);
	if (old == refs)
		free_frames(pool, page_to_pfn(pool, page), page->order);
}

/* Pins taken on @mm's pages: counted, and each holds a reference on @mm. */
static void account_pins(struct smm_mm *mm, long n)
{
	if (!n)
		return;
	atomic_fetch_add_explicit(&mm->refs, (int)n, memory_order_relaxed);
	atomic_fetch_add_explicit(&mm->pins_acquired, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&mm->pool->pins_acquired, n,
				  memory_order_relaxed);
}

/*
 * A pin was taken on @page for @mm. An anonymous page is exclusive to one
 * mm: it records that owner, whose counters and reference the pin holds
 * (account_pins() counts it from *@pinned). A page-cache page may be
 * pinned through several address spaces at once, so its pins count in
 * the pool's counters only and hold no mm.
 */
static inline void pin_taken(struct smm_mm *mm, struct page *page, long *pinned)
{
	if (atomic_load_explicit(&page->flags, memory_order_relaxed) &
	    PG_FILE) {
		atomic_fetch_add_explicit(&mm->pool->pins_acquired, 1,
					  memory_order_relaxed);
		return;
	}
	__atomic_store_n(&page->pin_owner, mm, __ATOMIC_RELAXED);
	(*pinned)++;
}

static int check_flags(unsigned int *flags, unsigned int kind)
{
	unsigned int f = *flags;

	if (f & ~(unsigned int)(SMM_FOLL_WRITE | SMM_FOLL_GET | SMM_FOLL_PIN |
				SMM_FOLL_LONGTERM))
		return -EINVAL;
	if (f & (SMM_FOLL_GET | SMM_FOLL_PIN) & ~kind)
		return -EINVAL;
	/* LONGTERM only when pinning (Linux's is_valid_gup_args()) */
	if ((f & SMM_FOLL_LONGTERM) && kind != SMM_FOLL_PIN)
		return -EINVAL;
	*flags = f | kind;
	return 0;
}

/* ------------------------------------------------------------------ */
/* fast path                                                           */
/* ------------------------------------------------------------------ */

/*
 * One page, lockless, inside the caller's access section. Returns the page
 * with its reference taken, or NULL to leave this page to the slow path.
 */
static struct page *gup_fast_one(struct smm_mm *mm, uint64_t addr, bool write,
				 bool longterm, int refs)
{
	struct smm_pool *pool = mm->pool;
	struct page *page = NULL;
	struct pt_walk w;
	pteval_t *ptep, pte;

	ptep = pte_offset_lockless(mm, addr, &w);
	if (!ptep)
		return NULL;
	/* acquire, like the upper levels: the page's zeroing and metadata
	 * setup, published with the entry's release store, happen before
	 * our grab and our pin_owner store */
	pte = table_read(ptep);
	if (!pte_present(pte) || (write && !(pte & _PAGE_RW)))
		goto out;
	check_table_entry(&w, pte);
	if (is_zero_pfn(pool, pte_pfn(pte))) {
		if (!write)
			page = pfn_to_page(
				pool, pte_pfn(pte)); /* eternal: no reference */
		goto out;
	}
	race_point();
#ifdef SMM_DEBUG
	if (smm_debug_gup_fast_hook)
		smm_debug_gup_fast_hook(mm, addr, w.pmdp, ptep);
#endif
	/*
	 * A pin needs an exclusive anonymous page (PageAnonExclusive): a
	 * shared one must be unshared first, which only the slow path's
	 * fault can do. Every anonymous page is exclusive until fork. A
	 * page-cache page may be pinned here too, unless the pin is long-term
	 * and writable and the page is written back (not shared anonymous
	 * memory): that the slow path refuses (gup_fast_folio_allowed()).
	 */
	if (refs == GUP_PIN_COUNTING_BIAS) {
		unsigned int fl = atomic_load_explicit(
			&pfn_to_page(pool, pte_pfn(pte))->flags,
			memory_order_relaxed);

		if (fl & PG_FILE) {
			if (longterm && write && !(fl & PG_SWAPBACKED))
				goto out;
		} else if (!(fl & PG_ANON_EXCLUSIVE)) {
			goto out;
		}
	}
	if (try_grab_page(pfn_to_page(pool, pte_pfn(pte)), refs))
		goto out;
	/*
	 * The reference is ours; but the entry we read may have been
	 * cleared or replaced since, and the page unmapped (and, but for
	 * our reference, freed and reused). Recheck both levels after the
	 * acquire of the grab: if anything moved, drop the reference and
	 * let the slow path decide under the locks.
	 */
	if (unlikely(table_read(w.pmdp) != w.pmdval ||
		     table_read(ptep) != pte)) {
		put_page_refs(pool, pfn_to_page(pool, pte_pfn(pte)), refs);
		goto out;
	}
	page = pfn_to_page(pool, pte_pfn(pte));
out:
	pte_lockless_end(&w);
	return page;
}

long gup_fast_only(struct smm_cpu *cpu, uint64_t start, unsigned long nr_pages,
		   unsigned int gup_flags, struct smm_page **pages)
{
	struct smm_mm *mm = cpu->mm;
	bool pin = gup_flags & SMM_FOLL_PIN;
	bool write = gup_flags & SMM_FOLL_WRITE;
	int refs = pin ? GUP_PIN_COUNTING_BIAS : 1;
	unsigned long i;
	long pinned = 0;

	unsigned long seq = 0;

	BUG_ON(cpu != this_cpu);
	BUG_ON(!(gup_flags & SMM_FOLL_PIN) == !(gup_flags & SMM_FOLL_GET));

	if (!mm)
		return 0;
	start &= PAGE_MASK;
	/*
	 * write_protect_seq (Linux 5.11): while fork copies this mm it is
	 * odd, and a pin must not be taken on a page fork may be sharing
	 * with the child; one taken across a change is given back, and the
	 * slow path (which unshares) does the work.
	 */
	if (pin) {
		seq = atomic_load(&mm->write_protect_seq);
#ifndef SMM_BUG_GUP_NO_WP_SEQ
		if (seq & 1)
			return 0;
#endif
	}
	access_begin(cpu, mm);
	for (i = 0; i < nr_pages; i++) {
		uint64_t addr = start + (i << PAGE_SHIFT);
		struct page *page = gup_fast_one(
			mm, addr, write, gup_flags & SMM_FOLL_LONGTERM, refs);

		if (!page)
			break;
		if (pin && !page_is_zero(page))
			pin_taken(mm, page, &pinned);
		pages[i] = to_handle(page);
	}
	access_end(cpu);
	if (pin)
		account_pins(mm, pinned);
#ifndef SMM_BUG_GUP_NO_WP_SEQ
	if (pin && i && atomic_load(&mm->write_protect_seq) != seq) {
		smm_unpin_user_pages(pages, i);
		return 0;
	}
#else
	(void)seq; /* planted bug (build/bug6): the check is gone */
#endif
	return (long)i;
}

/* ------------------------------------------------------------------ */
/* slow path                                                           */
/* ------------------------------------------------------------------ */

/*
 * Take up to @nr pages from @addr within @vma, faulting as needed, with
 * the VMA (@fault_flags & FAULT_VMA_LOCK) or mmap_lock held. Returns how
 * many were taken; *@err says why it stopped early (-EFAULT, -ENOMEM, or
 * -EAGAIN: this fault needs mmap_lock). *@pinned counts the pins taken.
 */
static unsigned long gup_vma(struct smm_mm *mm, struct vm_area_struct *vma,
			     uint64_t addr, unsigned long nr,
			     unsigned int flags, unsigned int fault_flags,
			     struct smm_page **pages, long *pinned, int *err)
{
	struct smm_pool *pool = mm->pool;
	bool write = flags & SMM_FOLL_WRITE;
	bool pin = flags & SMM_FOLL_PIN;
	int refs = pin ? GUP_PIN_COUNTING_BIAS : 1;
	unsigned long i = 0;

	assert_fault_locked(mm);
	/* check_vma_flags(): no FOLL_FORCE, so the VMA must allow it */
	if (write ? !(vma->vm_flags & VM_WRITE) : !(vma->vm_flags & VM_READ)) {
		*err = -EFAULT;
		return 0;
	}
	/*
	 * Linux 6.5's writable_file_mapping_allowed(): a long-term writable
	 * pin of a mapping that writeback tracks would let the device write
	 * a page writeback believes clean.
	 */
	if (write && pin && (flags & SMM_FOLL_LONGTERM) &&
	    vma_needs_dirty_tracking(vma)) {
		*err = -EFAULT;
		return 0;
	}
	if (write)
		fault_flags |= FAULT_WRITE;
	while (i < nr && addr < vma->vm_end) {
		struct pt_walk w;
		pteval_t *ptep = pte_offset_map_lock(mm, addr, &w);
		int r;

		if (ptep) {
			pteval_t e = pte_read(ptep);

			if (pte_present(e) && (!write || (e & _PAGE_RW))) {
				struct page *page =
					pfn_to_page(pool, pte_pfn(e));

				r = 0;
				if (pin && !is_zero_pfn(pool, pte_pfn(e)) &&
				    (atomic_load(&page->flags) &
				     (PG_ANON | PG_ANON_EXCLUSIVE)) ==
					    PG_ANON) {
					/* shared since fork: unshare first */
					pte_unmap_unlock(&w);
					r = handle_mm_fault_locked(
						mm, vma, addr,
						fault_flags | FAULT_UNSHARE);
					if (r) {
						*err = r;
						return i;
					}
					continue;
				}
				if (!is_zero_pfn(pool, pte_pfn(e))) {
					/* mapped under our ptl: never zero */
					r = try_grab_page(page, refs);
					unsigned int fl =
						atomic_load(&page->flags);

					/* unshared above, under this ptl */
					VM_BUG_ON(pin && (fl & PG_ANON) &&
						  !(fl & PG_ANON_EXCLUSIVE));
					BUG_ON(r == -EAGAIN);
					if (!r && write) { /* FOLL_TOUCH */
						if (fl & PG_FILE)
							set_page_dirty(page);
						else
							atomic_fetch_or(
								&page->flags,
								PG_DIRTY);
					}
					if (!r && pin)
						pin_taken(mm, page, pinned);
				}
				pte_unmap_unlock(&w);
				if (r) {
					*err = r;
					return i;
				}
				pages[i++] = to_handle(page);
				addr += PAGE_SIZE;
				continue;
			}
			pte_unmap_unlock(&w);
		}
		r = handle_mm_fault_locked(mm, vma, addr, fault_flags);
		if (r == -ENXIO) /* SIGBUS: GUP's answer is -EFAULT */
			r = -EFAULT;
		if (r) {
			*err = r;
			return i;
		}
		/* 0: the entry should allow it now; look again */
	}
	return i;
}

static long gup_slow(struct smm_mm *mm, uint64_t start, unsigned long nr_pages,
		     unsigned int flags, struct smm_page **pages)
{
	unsigned long done = 0;
	bool mmap_locked = false;
	long pinned = 0;
	int err = 0;

	rcu_thread_online();
	start &= PAGE_MASK;
	while (done < nr_pages) {
		uint64_t addr = start + (done << PAGE_SHIFT);
		struct vm_area_struct *vma = NULL;

		if (addr >= SMM_TASK_SIZE || addr < start) {
			err = -EFAULT;
			break;
		}
		if (!mmap_locked && !(mm->flags & SMM_MM_NO_VMA_LOCK))
			vma = lock_vma_under_rcu(mm, addr);
		if (vma) {
			done += gup_vma(mm, vma, addr, nr_pages - done, flags,
					FAULT_VMA_LOCK, pages + done, &pinned,
					&err);
			vma_end_read(vma);
			if (err == VM_FAULT_UFFD) { /* unlocked: wait */
				err = uffd_wait(mm);
				if (err)
					break;
				continue;
			}
			if (err == -EAGAIN) { /* needs mmap_lock: retry */
				err = 0;
				mmap_read_lock(mm);
				mmap_locked = true;
				if (mm->dead) {
					err = -ESRCH;
					break;
				}
			}
			if (err)
				break;
			continue;
		}
		if (!mmap_locked) {
			mmap_read_lock(mm);
			mmap_locked = true;
			if (mm->dead) {
				err = -ESRCH;
				break;
			}
		}
		vma = vma_lookup(mm, addr);
		if (!vma) {
			err = -EFAULT;
			break;
		}
		done += gup_vma(mm, vma, addr, nr_pages - done, flags, 0,
				pages + done, &pinned, &err);
		if (err == VM_FAULT_UFFD) {
			mmap_read_unlock(mm);
			mmap_locked = false;
			err = uffd_wait(mm);
			if (err)
				break;
			continue;
		}
		if (err)
			break;
	}
	if (mmap_locked)
		mmap_read_unlock(mm);
	if (flags & SMM_FOLL_PIN)
		account_pins(mm, pinned);
	BUG_ON(err == -EAGAIN);
	return done ? (long)done : err;
}

static int check_range(uint64_t start, unsigned long nr_pages)
{
	uint64_t s = start & PAGE_MASK, len;

	if (nr_pages > (UINT64_MAX >> PAGE_SHIFT))
		return -EOVERFLOW;
	len = (uint64_t)nr_pages << PAGE_SHIFT;
	if (s + len < s)
		return -EOVERFLOW;
	return 0;
}

static long gup_fast(struct smm_cpu *cpu, uint64_t start,
		     unsigned long nr_pages, unsigned int flags,
		     struct smm_page **pages, unsigned int kind)
{
	struct smm_mm *mm;
	long got, more;
	int err;

	if (cpu != this_cpu)
		return -EINVAL; /* GUP-fast runs on the caller's own CPU */
	if ((err = check_flags(&flags, kind)))
		return err;
	if (!pages || !cpu || !cpu->mm)
		return -EINVAL;
	if (!nr_pages)
		return 0;
	if ((err = check_range(start, nr_pages)))
		return err;
	if ((start & PAGE_MASK) + ((uint64_t)nr_pages << PAGE_SHIFT) >
	    SMM_TASK_SIZE)
		return -EFAULT;
	mm = cpu->mm;
	start &= PAGE_MASK;
	got = gup_fast_only(cpu, start, nr_pages, flags, pages);
	if ((unsigned long)got == nr_pages)
		return got;
	more = gup_slow(mm, start + ((uint64_t)got << PAGE_SHIFT),
			nr_pages - (unsigned long)got, flags, pages + got);
	if (more < 0)
		return got ? got : more;
	return got + more;
}

static long gup_remote(struct smm_mm *mm, uint64_t start,
		       unsigned long nr_pages, unsigned int flags,
		       struct smm_page **pages, unsigned int kind)
{
	int err;

	if ((err = check_flags(&flags, kind)))
		return err;
	if (!pages || !mm)
		return -EINVAL;
	if (!nr_pages)
		return 0;
	if ((err = check_range(start, nr_pages)))
		return err;
	return gup_slow(mm, start, nr_pages, flags, pages);
}

SMM_API long smm_get_user_pages_fast(struct smm_cpu *cpu, uint64_t start,
				     unsigned long nr_pages,
				     unsigned int gup_flags,
				     struct smm_page **pages)
{
	return gup_fast(cpu, start, nr_pages, gup_flags, pages, SMM_FOLL_GET);
}

SMM_API long smm_pin_user_pages_fast(struct smm_cpu *cpu, uint64_t start,
				     unsigned long nr_pages,
				     unsigned int gup_flags,
				     struct smm_page **pages)
{
	return gup_fast(cpu, start, nr_pages, gup_flags, pages, SMM_FOLL_PIN);
}

SMM_API long smm_get_user_pages(struct smm_mm *mm, uint64_t start,
				unsigned long nr_pages, unsigned int gup_flags,
				struct smm_page **pages)
{
	return gup_remote(mm, start, nr_pages, gup_flags, pages, SMM_FOLL_GET);
}

SMM_API long smm_pin_user_pages(struct smm_mm *mm, uint64_t start,
				unsigned long nr_pages, unsigned int gup_flags,
				struct smm_page **pages)
{
	return gup_remote(mm, start, nr_pages, gup_flags, pages, SMM_FOLL_PIN);
}

/* ------------------------------------------------------------------ */
/* release                                                             */
/* ------------------------------------------------------------------ */

/* Pins of @mm released: count them and drop the mm references they held
 * (the last one may free the mm structure after its destroy). */
static void release_pins(struct smm_mm *mm, long n)
{
	if (!n)
		return;
	atomic_fetch_add_explicit(&mm->pins_released, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&mm->pool->pins_released, n,
				  memory_order_relaxed);
	if (n > 1)
		atomic_fetch_sub_explicit(&mm->refs, (int)(n - 1),
					  memory_order_relaxed);
	mm_put(mm);
}

SMM_API void smm_unpin_user_pages_dirty_lock(struct smm_page **pages,
					     unsigned long npages,
					     bool make_dirty)
{
	struct smm_pool *pool = NULL;
	struct smm_mm *run_mm = NULL;
	long run = 0;

	if (!pages || !npages)
		return;
	rcu_thread_online(); /* the last mm_put() may free an mm */
	for (unsigned long i = 0; i < npages; i++) {
		struct page *page = to_page(pages[i]);
		struct smm_mm *owner;

		if (!pool || page < pool->pages ||
		    page >= pool->pages + pool->nr_frames)
			pool = page_pool(page);
		if (page_is_zero(page))
			continue;
		if (atomic_load(&page->flags) & PG_FILE) {
			/* A page-cache page: no owner (pin_taken()). */
			if (make_dirty)
				set_page_dirty_lock(page);
			BUG_ON(atomic_load(&page->refcount) <
			       GUP_PIN_COUNTING_BIAS);
			atomic_fetch_add_explicit(&pool->pins_released, 1,
						  memory_order_relaxed);
			put_page_refs(pool, page, GUP_PIN_COUNTING_BIAS);
			continue;
		}
		if (make_dirty) {
			spin_lock_class(&page->ptl, LC_LEAF);
			atomic_fetch_or(&page->flags, PG_DIRTY);
			spin_unlock(&page->ptl);
		}
		/* Read the owner before our pin stops keeping the page. */
		owner = __atomic_load_n(&page->pin_owner, __ATOMIC_RELAXED);
		BUG_ON(!owner ||
		       atomic_load(&page->refcount) < GUP_PIN_COUNTING_BIAS);
		put_page_refs(pool, page, GUP_PIN_COUNTING_BIAS);
		if (owner != run_mm) {
			release_pins(run_mm, run);
			run_mm = owner;
			run = 0;
		}
		run++;
	}
	release_pins(run_mm, run);
}

SMM_API void smm_unpin_user_pages(struct smm_page **pages, unsigned long npages)
{
	smm_unpin_user_pages_dirty_lock(pages, npages, false);
}

SMM_API void smm_put_page(struct smm_page *handle)
{
	struct page *page = to_page(handle);

	if (!page || page_is_zero(page))
		return;
	put_page_refs(page_pool(page), page, 1);
}

SMM_API void *smm_page_address(struct smm_page *handle)
{
	struct page *page = to_page(handle);
	struct smm_pool *pool;

	if (!page)
		return NULL;
	pool = page_pool(page);
	return pfn_to_virt(pool, page_to_pfn(pool, page));
}

SMM_API bool smm_page_maybe_dma_pinned(struct smm_page *handle)
{
	struct page *page = to_page(handle);

	if (!page)
		return false;
	return page_is_zero(page) ||
	       atomic_load(&page->refcount) >= GUP_PIN_COUNTING_BIAS;
}
