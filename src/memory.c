/*
 * memory.c - what a fault does to an entry, once fault.c has found and
 * locked the VMA: the dispatch (handle_pte_fault), the anonymous fault
 * (the zero page on read, a fresh zeroed page on write, or a block of
 * them with multi-size THP), the preload of the faulting CPU's TLB, and
 * the write-protect fault (copy-on-write away from the zero page, reuse
 * of an exclusive anonymous page). VMAs with vm_ops send their faults
 * there.
 *
 * Locking: the caller holds mmap_lock for read or the VMA's read lock.
 * Like Linux's do_anonymous_page(), a fault that needs a page allocates
 * (and zeroes) it before taking the PTE lock, then takes the lock once and
 * installs the page if the entry is still what it was when the fault
 * looked; otherwise the access retries.
 */
#include <errno.h>
#include "fault.h"
#include "pagewalk.h"
#include "rmap.h"
#include "filemap.h"

/* x86 entries carry no read or exec bit: every mapping is user-readable. */
pteval_t vm_page_prot(unsigned long vm_flags)
{
	return _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;
}

/*
 * Lock the PTE table the fault mapped and recheck that the entry is still
 * vmf->orig_pte. False if the table was unlinked meanwhile (the schemes
 * that keep tables by RCU alone) or the entry changed: another CPU got
 * there first, and the access retries. The table stays mapped either way.
 */
static inline __attribute__((always_inline)) bool
fault_lock_recheck(struct vm_fault *vmf)
{
	if (unlikely(!pte_map_lock(&vmf->pt)))
		return false;
	if (unlikely(pte_read(vmf->pte) != vmf->orig_pte)) {
		pte_unlock(&vmf->pt);
		return false;
	}
	return true;
}

/*
 * Linux's update_mmu_cache(): after installing the entry for @addr under
 * its ptl, preload the faulting CPU's TLB with it, so that the access
 * the fault was for hits the TLB when it retries instead of walking the
 * tables again (about 90 instructions a fault). Only the calling
 * thread's own CPU, and only while it is switched to the fault's mm (a
 * GUP or populate fault on another mm fills nothing).
 *
 * Outside an access section, which is safe here: the entry is valid now
 * (we hold its ptl), and whoever clears or downgrades it later takes the
 * ptl after us and then bumps mm->tlb_gen before its flush returns; this
 * CPU's next access_begin() sees the new generation and drops its whole
 * TLB, this entry too. A flush that ran before the fill found the entry
 * none or older, so the fill cannot resurrect what it removed.
 */
static inline void update_mmu_cache(struct smm_mm *mm, uint64_t addr, pfn_t pfn,
				    bool writable)
{
	struct smm_cpu *cpu = this_cpu;

	if (cpu && cpu->mm == mm)
		tlb_fill(cpu, addr, (uintptr_t)pfn_to_virt(mm->pool, pfn),
			 writable);
}

/*
 * A fresh anonymous page for @vmf, zeroed, with its metadata set before
 * the entry that publishes it: the anon_vma it belongs to and its linear
 * index, exclusive to this mm, dirty (what a drop would lose). Its
 * mapcount is set with the entry, under the ptl. NO_PFN if the pool
 * is exhausted.
 */
static inline __attribute__((always_inline)) pfn_t
alloc_anon_page(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct smm_pool *pool = vma->vm_mm->pool;
	pfn_t pfn = alloc_frame(pool, PG_ANON);

	if (pfn == NO_PFN)
		return NO_PFN;
	anon_page_init(pfn_to_page(pool, pfn), vma, vmf->address);
	race_point();
	return pfn;
}

/*
 * The first half of installing a new anonymous page for @vmf: its
 * anon_vma, the page (allocated and zeroed before the lock), then the ptl
 * and the recheck. Returns the page, its mapcount set, with the ptl held;
 * or NO_PFN with *@err 0 (the entry changed: the access retries), -ENOMEM
 * or -EAGAIN. The table stays mapped in every case.
 */
static inline __attribute__((always_inline)) pfn_t
new_anon_page_locked(struct vm_fault *vmf, int *err)
{
	struct smm_pool *pool = vmf->vma->vm_mm->pool;
	pfn_t new;

	*err = anon_vma_prepare(vmf->vma, vmf->flags & FAULT_VMA_LOCK);
	if (*err)
		return NO_PFN;
	new = alloc_anon_page(vmf);
	if (new == NO_PFN) {
		*err = -ENOMEM;
		return NO_PFN;
	}
	if (!fault_lock_recheck(vmf)) {
		put_page(pool, new);
		return NO_PFN;
	}
	atomic_store_explicit(&pfn_to_page(pool, new)->mapcount, 1,
			      memory_order_relaxed);
	return new;
}

/* ---- multi-size THP (Linux 6.8's mTHP for anonymous memory) ---- */

/* Whether the @n entries from @ptep are all none (Linux's pte_range_none()). */
static bool pte_range_none(pteval_t *ptep, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (!pte_none(pte_read(ptep + i)))
			return false;
	return true;
}

/*
 * The orders of @orders (mask, bit n: 2^n pages) that a write fault at
 * vmf->address may map at once, as Linux's alloc_anon_folio() keeps them:
 * none for a VMA advised NOHUGEPAGE (and MAP_STACK) or registered with
 * userfaultfd; then only those whose naturally aligned block lies inside
 * the VMA (thp_vma_suitable_order()), and of those the highest whose
 * entries are all none, with every lower one. A naturally aligned block of
 * at most 64 KiB never crosses a PTE table (2 MiB), so one table holds all
 * its entries. Read without the ptl: rechecked under it.
 */
static unsigned int anon_block_orders(struct vm_fault *vmf, unsigned int orders)
{
	struct vm_area_struct *vma = vmf->vma;

	if (vma->vm_flags & VM_NOHUGEPAGE)
		return 0;
	/*
	 * A userfaultfd-registered VMA faults one page at a time, so that
	 * its handler sees every missing page (Linux: userfaultfd_armed()
	 * in alloc_anon_folio()). Missing faults there go to the handler
	 * before this (do_anonymous_page()); a WP-only registration too.
	 */
	if (vma->vm_flags & (VM_UFFD_MISSING | VM_UFFD_WP))
		return 0;
	for (unsigned int o = MTHP_MAX_ORDER; o; o--) {
		uint64_t size = PAGE_SIZE << o;
		uint64_t start = vmf->address & ~(size - 1);

		if (!(orders & (1U << o)))
			continue;
		if (start < vma->vm_start || start + size > vma->vm_end ||
		    !pte_range_none(vmf->pte - ((vmf->address - start) >>
						PAGE_SHIFT),
				    1U << o))
			orders &= ~(1U << o);
		else
			break; /* the lower ones lie inside this block */
	}
	return orders;
}

/*
 * A write fault maps a whole block of 2^order pages (the highest order
 * anon_block_orders() leaves whose pages the pool has). Returns 1 when no
 * order was possible: nothing changed, the table is still mapped, the
 * caller maps one page. Otherwise 0 (mapped, or the entries changed
 * meanwhile and the access retries, as Linux's does, to pick a smaller
 * order) or -EAGAIN/-ENOMEM from anon_vma_prepare(), the table unmapped.
 *
 * The block is 2^order order-0 frames from the CPU's frame cache, not one
 * contiguous alloc_frames() block: softmm's allocator never merges freed
 * single frames back into blocks, and a block split at once (below) is
 * freed page by page, so contiguous blocks would run out once the pool's
 * untouched part is used up and mTHP would silently stop happening. No
 * one can observe the contiguity: once mapped, the block is 2^order
 * independent pages (Linux's split folio), each with its own refcount,
 * mapcount and linear index, freed, copied, pinned and counted on its
 * own, so every other path (zap, fork, COW, mprotect, mremap, GUP,
 * verify) is unchanged. The frames come zeroed in batches (frame.c), so
 * the block costs the faults it saves, not its zeroing.
 */
static int do_anonymous_block(struct vm_fault *vmf, unsigned int orders)
{
	struct vm_area_struct *vma = vmf->vma;
	struct smm_mm *mm = vma->vm_mm;
	struct smm_pool *pool = mm->pool;
	pteval_t prot = vm_page_prot(vma->vm_flags) | _PAGE_RW | _PAGE_DIRTY;
	pfn_t pfns[1U << MTHP_MAX_ORDER];
	unsigned int order = 0, n = 0, i;
	uint64_t start;
	pteval_t *first;
	int err;

	orders = anon_block_orders(vmf, orders);
	if (!orders)
		return 1;
	err = anon_vma_prepare(vma, vmf->flags & FAULT_VMA_LOCK);
	if (err) {
		pte_unmap(&vmf->pt);
		return err;
	}
	for (; orders; orders &= ~(1U << order)) {
		order = 31 - (unsigned int)__builtin_clz(orders);
		n = 1U << order;
		for (i = 0; i < n; i++) {
			pfns[i] = alloc_frame(pool, PG_ANON);
			if (pfns[i] == NO_PFN)
				break;
		}
		if (i == n)
			break;
		while (i--) /* short of frames: try the next order */
			put_page(pool, pfns[i]);
	}
	if (!orders)
		return 1;
	start = vmf->address & ~((PAGE_SIZE << order) - 1);
	first = vmf->pte - ((vmf->address - start) >> PAGE_SHIFT);
	for (i = 0; i < n; i++)
		anon_page_init(pfn_to_page(pool, pfns[i]), vma,
			       start + ((uint64_t)i << PAGE_SHIFT));
	race_point();
	if (unlikely(!pte_map_lock(&vmf->pt)))
		goto release;
	if (unlikely(!pte_range_none(first, n))) {
		pte_unlock(&vmf->pt);
		goto release;
	}
	for (i = 0; i < n; i++) {
		atomic_store_explicit(&pfn_to_page(pool, pfns[i])->mapcount, 1,
				      memory_order_relaxed);
		set_pte(mm, first + i, pfn_pte(pfns[i], prot));
	}
	pte_table_add(mm, first, (int)n);
	stripe_add(mm->ctr, MC_RSS, n);
	for (i = 0; i < n; i++)
		update_mmu_cache(mm, start + ((uint64_t)i << PAGE_SHIFT),
				 pfns[i], true);
	pte_unmap_unlock(&vmf->pt);
	return 0;
release:
	/* Filled meanwhile: the access retries, and finds a smaller order. */
	for (i = 0; i < n; i++)
		put_page(pool, pfns[i]);
	pte_unmap(&vmf->pt);
	return 0;
}

/* The entry for vmf->address is none: map the zero page, or a new page. */
static int do_anonymous_page(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct smm_mm *mm = vma->vm_mm;
	struct smm_pool *pool = mm->pool;
	pteval_t prot = vm_page_prot(vma->vm_flags);
	unsigned int orders;
	pfn_t new;
	int err = 0;

	if (unlikely(vma->vm_flags & VM_UFFD_MISSING)) {
		/*
		 * Linux prepares a write fault's anon_vma (and allocates its
		 * folio, which softmm does not) before it delivers the event,
		 * so the VMA has one even if the page is never supplied:
		 * mprotect then keeps VM_ACCOUNT when it removes write, and
		 * fork copies the VMA's page tables.
		 */
		if (vmf->flags & FAULT_WRITE) {
			err = anon_vma_prepare(vma,
					       vmf->flags & FAULT_VMA_LOCK);
			if (err) {
				pte_unmap(&vmf->pt);
				return err;
			}
		}
		return handle_userfault(vmf, VM_UFFD_MISSING);
	}
	if (!(vmf->flags & FAULT_WRITE)) {
		/* Read of untouched memory: map the shared zero page. */
		if (fault_lock_recheck(vmf)) {
			set_pte(mm, vmf->pte, pfn_pte(pool->zero_pfn, prot));
			pte_table_add(mm, vmf->pte, 1);
			stripe_add(mm->ctr, MC_ZERO, 1);
			update_mmu_cache(mm, vmf->address, pool->zero_pfn,
					 false);
			pte_unmap_unlock(&vmf->pt);
			return 0;
		}
		goto unmap;
	}
	orders = atomic_load_explicit(&pool->mthp_orders, memory_order_relaxed);
	if (unlikely(orders)) {
		err = do_anonymous_block(vmf, orders);
		if (err <= 0)
			return err;
		err = 0; /* no block: one page */
	}
	new = new_anon_page_locked(vmf, &err);
	if (new == NO_PFN)
		goto unmap;
	set_pte(mm, vmf->pte, pfn_pte(new, prot | _PAGE_RW | _PAGE_DIRTY));
	pte_table_add(mm, vmf->pte, 1);
	stripe_add(mm->ctr, MC_RSS, 1);
	update_mmu_cache(mm, vmf->address, new, true);
	pte_unmap_unlock(&vmf->pt);
	return 0;
unmap:
	pte_unmap(&vmf->pt);
	return err;
}

/*
 * A write to a present, read-only entry of a writable VMA. The zero page
 * is copied (a fresh zeroed page replaces it, Linux's wp_page_copy()); an
 * exclusive anonymous page is written in place. Without fork every
 * anonymous page is exclusive; fork will bring the copy of shared ones.
 */
/* ---- file VMAs ---- */

/*
 * Whether a shared mapping of @vma must map clean pages read-only, so
 * that the first store faults and dirties the page (Linux's
 * vma_wants_writenotify()): writable, and tracked by writeback.
 */
static inline bool vma_wants_writenotify(struct vm_area_struct *vma)
{
	return (vma->vm_flags & VM_WRITE) && vma_needs_dirty_tracking(vma);
}

/* The index in its file of the page at vmf->address. */
static inline uint64_t vmf_pgoff(struct vm_fault *vmf)
{
	return vmf->vma->vm_pgoff +
	       ((vmf->address - vmf->vma->vm_start) >> PAGE_SHIFT);
}

/* The entry a read maps a page-cache page with: writable only in a
 * shared writable mapping that writeback does not track (shmem). */
static inline pteval_t file_read_pte(struct vm_area_struct *vma, pfn_t pfn)
{
	pteval_t entry = pfn_pte(pfn, vm_page_prot(vma->vm_flags));

	if ((vma->vm_flags & (VM_SHARED | VM_WRITE)) ==
		    (VM_SHARED | VM_WRITE) &&
	    !vma_wants_writenotify(vma))
		entry |= _PAGE_RW;
	return entry;
}

/* Fault-around maps at most this many pages (Linux's fault_around_bytes,
 * 64 KiB), from an aligned group of them. */
#define FAULT_AROUND_PAGES 16

/*
 * Linux's do_fault_around() and filemap_map_pages(): a read fault maps the
 * cached pages around vmf->address too, within an aligned group of 16,
 * the VMA, the PTE table and the file's size (but for a host file's last
 * page), each up to date and not locked (a trylock, under the ptl); the
 * PTE table is installed only if
 * there is such a page. True if vmf->address itself got mapped. No table
 * is mapped on entry or on return.
 */
static bool do_fault_around(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct smm_mm *mm = vma->vm_mm;
	struct smm_pool *pool = mm->pool;
	struct smm_file *f = vma->vm_file;
	uint64_t pgoff = vmf_pgoff(vmf), end = file_size_pages(f);
	uint64_t pte_off = (vmf->address >> PAGE_SHIFT) & (PTRS_PER_TABLE - 1);
	uint64_t vma_off = pgoff - vma->vm_pgoff;
	uint64_t vma_pages = (vma->vm_end - vma->vm_start) >> PAGE_SHIFT;
	uint64_t from = MAX(pte_off & ~(uint64_t)(FAULT_AROUND_PAGES - 1),
			    pte_off - MIN(pte_off, vma_off));
	uint64_t to =
		MIN(MIN(from + FAULT_AROUND_PAGES, (uint64_t)PTRS_PER_TABLE),
		    pte_off + vma_pages - vma_off) -
		1;
	uint64_t first = pgoff - (pte_off - from),
		 last = pgoff + (to - pte_off);
	bool any = false, done = false;
	int err;

	/*
	 * Not the page that holds the end of a host file: Linux 6.18 on
	 * ext4 leaves it out (measured: a bus error installs the PTE table
	 * when a cached page before the last one is in the group, not for
	 * the last one). Shared memory (shmem) maps it (measured: a mapping
	 * grown by mremap past its object's end).
	 */
	if (!f->shmem) {
		if (end < 2)
			return false;
		last = MIN(last, end - 2);
	}
	urcu_memb_read_lock();
	for (uint64_t i = first; i <= last && !any; i++)
		any = pc_load(&f->pages, i);
	urcu_memb_read_unlock();
	if (!any)
		return false;
	vmf->pte = pte_alloc_map(mm, vmf->address, &vmf->pt, &err);
	if (!vmf->pte)
		return false;
	if (!pte_map_lock(&vmf->pt)) {
		pte_unmap(&vmf->pt);
		return false;
	}
	for (uint64_t i = first; i <= last; i++) {
		pteval_t *ptep = vmf->pte + (int64_t)(i - pgoff);
		struct page *page;

		if (!pte_none(pte_read(ptep)))
			continue;
		page = filemap_get_page(f, i);
		if (!page)
			continue;
		if (!trylock_page(page)) {
			put_page(pool, page_to_pfn(pool, page));
			continue;
		}
		if (page->mapping != f ||
		    !(atomic_load(&page->flags) & PG_UPTODATE) ||
		    i >= file_size_pages(f)) {
			unlock_page(page);
			put_page(pool, page_to_pfn(pool, page));
			continue;
		}
		/* Our reference becomes the entry's. */
		atomic_fetch_add(&page->mapcount, 1);
		set_pte(mm, ptep, file_read_pte(vma, page_to_pfn(pool, page)));
		pte_table_add(mm, ptep, 1);
		stripe_add(mm->ctr, MC_FILE, 1);
		unlock_page(page);
		done |= i == pgoff;
	}
	pte_unmap_unlock(&vmf->pt);
	return done;
}

/*
 * The entry for vmf->address is none in a file VMA, or there is no PTE
 * table (file_vm_ops.page_first: nothing is mapped on entry): map the
 * page-cache page (a read, or a store to a shared mapping, which dirties
 * it), or a private copy of it (a store to a private mapping, Linux's
 * do_cow_fault()). As in Linux, the tables above the PTE table are
 * installed first, a read faults around, and only then the page is
 * locked (the page lock comes before the page tables, filemap.h) and the
 * PTE table walked to, installed if still missing; a bus error leaves no
 * PTE table that fault-around did not install. The page stays locked
 * until its entry is in, so that truncation, which takes the lock, either
 * sees the entry or makes the fault see the new size.
 */
static int do_file_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct smm_mm *mm = vma->vm_mm;
	struct smm_pool *pool = mm->pool;
	struct smm_file *f = vma->vm_file;
	bool write = vmf->flags & FAULT_WRITE;
	bool cow = write && !(vma->vm_flags & VM_SHARED);
	struct page *page;
	pfn_t pfn, new = NO_PFN;
	pteval_t entry;
	int err = 0;

	err = pmd_alloc(mm, vmf->address);
	if (err)
		return err;
	if (!write && do_fault_around(vmf))
		return 0;
	if (cow) {
		err = anon_vma_prepare(vma, vmf->flags & FAULT_VMA_LOCK);
		if (err)
			return err;
	}
	page = filemap_lock_page(f, vmf_pgoff(vmf), true, true, &err);
	if (!page)
		return err == -EIO ? -ENXIO : err;
	pfn = page_to_pfn(pool, page);
	if (cow) {
		new = alloc_anon_page(vmf);
		if (new == NO_PFN) {
			err = -ENOMEM;
			goto out;
		}
		frame_copy(pfn_to_virt(pool, new), pfn_to_virt(pool, pfn),
			   PAGE_SIZE);
		entry = pfn_pte(new, vm_page_prot(vma->vm_flags) | _PAGE_RW |
					     _PAGE_DIRTY);
	} else if (write) {
		wait_for_stable_page(page);
		set_page_dirty(page);
		entry = pfn_pte(pfn, vm_page_prot(vma->vm_flags) | _PAGE_RW |
					     _PAGE_DIRTY);
	} else {
		entry = file_read_pte(vma, pfn);
	}
	vmf->pte = pte_alloc_map(mm, vmf->address, &vmf->pt, &err);
	if (!vmf->pte)
		goto out;
	vmf->orig_pte = 0;
	if (!fault_lock_recheck(vmf)) {
		pte_unmap(&vmf->pt); /* mapped meanwhile: retry the access */
		goto out;
	}
	if (cow) {
		atomic_store_explicit(&pfn_to_page(pool, new)->mapcount, 1,
				      memory_order_relaxed);
		stripe_add(mm->ctr, MC_RSS, 1);
		new = NO_PFN;
	} else {
		atomic_fetch_add(&page->refcount, 1);
		atomic_fetch_add(&page->mapcount, 1);
		stripe_add(mm->ctr, MC_FILE, 1);
	}
	set_pte(mm, vmf->pte, entry);
	pte_table_add(mm, vmf->pte, 1);
	pte_unmap_unlock(&vmf->pt);
out:
	if (new != NO_PFN)
		put_page(pool, new);
	filemap_unlock_put(f, page);
	return err;
}

const struct vm_operations_struct file_vm_ops = {
	.name = "file",
	.fault = do_file_fault,
	.page_first = true,
};

/*
 * Linux's wp_page_copy(): replace the read-only entry the fault found by
 * a new anonymous page holding a copy of @old (NULL: the zero page, which
 * the new page already is), writable if the fault writes (an unshare maps
 * it read-only). The ptl is not held; the table is mapped, and stays so
 * (unmapped on return). @from is the counter the old page counted in
 * (MC_FILE, MC_ZERO; -1: an anonymous page, RSS unchanged). The old
 * entry's reference goes only once no TLB can hold the entry
 * (ptep_clear_flush()).
 */
static int wp_page_copy(struct vm_fault *vmf, struct page *old, int from)
{
	struct smm_mm *mm = vmf->vma->vm_mm;
	struct smm_pool *pool = mm->pool;
	int err = 0;
	pfn_t new;

	new = new_anon_page_locked(vmf, &err);
	if (new == NO_PFN) {
		pte_unmap(&vmf->pt);
		return err;
	}
	if (old)
		frame_copy(pfn_to_virt(pool, new),
			   pfn_to_virt(pool, page_to_pfn(pool, old)),
			   PAGE_SIZE);
	ptep_xchg(mm, vmf->pte,
		  pfn_pte(new,
			  vm_page_prot(vmf->vma->vm_flags) |
				  ((vmf->flags & FAULT_WRITE) ?
					   _PAGE_RW | _PAGE_DIRTY :
					   /* an unshare keeps uffd-wp */
					   vmf->orig_pte & _PAGE_UFFD_WP)));
	if (old)
		atomic_fetch_sub(&old->mapcount, 1);
	if (from >= 0) {
		stripe_add(mm->ctr, from, -1);
		stripe_add(mm->ctr, MC_RSS, 1);
	}
	pte_unmap_unlock(&vmf->pt);
	flush_tlb_mm(mm);
	if (old)
		put_page(pool, page_to_pfn(pool, old));
	return 0;
}

/*
 * A store to a present, read-only entry of a page-cache page. A shared
 * mapping dirties the page and makes the entry writable (Linux's
 * wp_page_shared(): writenotify), under the page lock and after any
 * writeback of the page ended; a private one copies it into a new
 * anonymous page (wp_page_copy()).
 */
static int do_wp_file_page(struct vm_fault *vmf, struct page *page)
{
	struct vm_area_struct *vma = vmf->vma;
	struct smm_mm *mm = vma->vm_mm;
	struct smm_file *f = vma->vm_file;

	if (vma->vm_flags & VM_SHARED) {
		if (!fault_lock_recheck(vmf)) {
			pte_unmap(&vmf->pt);
			return 0;
		}
		/* Mapped by the entry we hold the lock of: not freed. */
		atomic_fetch_add(&page->refcount, 1);
		pte_unmap_unlock(&vmf->pt);
		lock_page(page);
		if (page->mapping == f) {
			wait_for_stable_page(page);
			set_page_dirty(page);
			vmf->pte =
				pte_offset_map_lock(mm, vmf->address, &vmf->pt);
			if (vmf->pte) {
				if (pte_read(vmf->pte) == vmf->orig_pte)
					ptep_xchg(mm, vmf->pte,
						  vmf->orig_pte | _PAGE_RW |
							  _PAGE_DIRTY |
							  _PAGE_ACCESSED);
				pte_unmap_unlock(&vmf->pt);
			}
		}
		filemap_unlock_put(f, page);
		return 0;
	}
	return wp_page_copy(vmf, page, MC_FILE);
}

static int do_wp_page(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct smm_mm *mm = vma->vm_mm;
	struct smm_pool *pool = mm->pool;
	pteval_t orig = vmf->orig_pte;
	struct page *page = pfn_to_page(pool, pte_pfn(orig));

	/* A store to a page smm_uffd_wp() protects (not GUP's unshare) */
	if (unlikely((orig & _PAGE_UFFD_WP) && (vma->vm_flags & VM_UFFD_WP) &&
		     (vmf->flags & FAULT_WRITE)))
		return handle_userfault(vmf, VM_UFFD_WP);
	if (!is_zero_pfn(pool, pte_pfn(orig)) &&
	    (atomic_load_explicit(&page->flags, memory_order_relaxed) &
	     PG_FILE))
		return do_wp_file_page(vmf, page);
	if (!is_zero_pfn(pool, pte_pfn(orig))) {
		if (!fault_lock_recheck(vmf))
			goto unmap;
		/*
		 * Reuse the page if it is exclusive to this mm
		 * (PageAnonExclusive), or has become so: no other mapping
		 * and no other reference, so no pin either (Linux's
		 * wp_can_reuse_anon_folio(); the page's count is stable
		 * under our ptl only for this entry's reference, and a
		 * reference taken meanwhile by GUP-fast is a pin it must
		 * drop again, as write_protect_seq tells it).
		 */
		if (!(atomic_load(&page->flags) & PG_ANON_EXCLUSIVE) &&
		    atomic_load(&page->mapcount) == 1 &&
		    atomic_load(&page->refcount) == 1)
			atomic_fetch_or(&page->flags, PG_ANON_EXCLUSIVE);
		if (atomic_load(&page->flags) & PG_ANON_EXCLUSIVE) {
			if (vmf->flags & FAULT_WRITE)
				set_pte(mm, vmf->pte,
					orig | _PAGE_RW | _PAGE_DIRTY |
						_PAGE_ACCESSED);
			pte_unmap_unlock(&vmf->pt);
			return 0;
		}
		pte_unlock(&vmf->pt);
		/* Shared with another mm since fork: copy it. */
		return wp_page_copy(vmf, page, -1);
	}
	/* The zero page, copied as the zeroed new page is. */
	return wp_page_copy(vmf, NULL, MC_ZERO);
unmap:
	pte_unmap(&vmf->pt);
	return 0; /* the entry changed: the access retries */
}

/*
 * The fault's one walk: install what is missing down to the PTE table and
 * map it (pte_alloc_map), read the entry, and hand the table to the
 * handler, which locks it, rechecks the entry and unmaps it. One walk for
 * the whole fault: the scheme's protection (RCU, a reference, a read lock
 * on the PMD table) is taken once, and a table installed here cannot be
 * freed before the fault fills it.
 */
int handle_pte_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	pteval_t orig = 0;
	int err;

	if (vma->vm_ops && vma->vm_ops->page_first) {
		/* Look without installing: the handler installs. */
		vmf->pte = pte_offset_map(vma->vm_mm, vmf->address, &vmf->pt);
		if (vmf->pte)
			vmf->orig_pte = orig = pte_read(vmf->pte);
		if (!vmf->pte || pte_none(orig)) {
			if (vmf->pte)
				pte_unmap(&vmf->pt);
			return vma->vm_ops->fault(vmf);
		}
		goto present;
	}
	vmf->pte = pte_alloc_map(vma->vm_mm, vmf->address, &vmf->pt, &err);
	if (!vmf->pte)
		return err;
	vmf->orig_pte = orig = pte_read(vmf->pte);
	if (pte_none(orig)) {
		if (vma->vm_ops)
			return vma->vm_ops->fault(vmf);
		return do_anonymous_page(vmf);
	}
present:
	/*
	 * Not present but not none is a PROT_NONE entry, which only a
	 * PROT_NONE VMA holds, and the caller checked the VMA allows the
	 * access: mprotect write-locks the VMA while it changes both.
	 */
	VM_BUG_ON(!pte_present(orig));
	if ((vmf->flags & FAULT_WRITE) && !(orig & _PAGE_RW))
		return do_wp_page(vmf);
	/* GUP's pin of a page fork shares: unshare it (FAULT_UNSHARE). */
	if ((vmf->flags & FAULT_UNSHARE) &&
	    !is_zero_pfn(vma->vm_mm->pool, pte_pfn(orig)) &&
	    (atomic_load(&pfn_to_page(vma->vm_mm->pool, pte_pfn(orig))->flags) &
	     (PG_ANON | PG_ANON_EXCLUSIVE)) == PG_ANON)
		return do_wp_page(vmf);
	/* Spurious: another CPU fixed it first, or a stale TLB entry. */
	pte_unmap(&vmf->pt);
	return 0;
}
