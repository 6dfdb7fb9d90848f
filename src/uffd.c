/*
 * uffd.c - userfaultfd in process (Linux's fs/userfaultfd.c and
 * mm/userfaultfd.c): registration as VMA flags, the faults that wait for
 * a handler (handle_userfault, uffd_wait), the event queue and the
 * callback, and the resolving calls (copy, zeropage, write-protect, wake).
 *
 * Owns: struct uffd_ctx of each mm (uffd.h), the waiters (one per
 * thread, in thread-local storage: a thread waits for one fault at a
 * time), the VM_UFFD_* flags and the _PAGE_UFFD_WP bit of entries.
 *
 * Locking (docs/LOCKING.md, "Userfaultfd"):
 *  - ctx->lock (LC_UFFD) guards the waiter lists, each waiter's state, the
 *    handler and ctx->dead. A fault queues its waiter under the PTE lock,
 *    after rechecking the entry there; copy and zeropage install under
 *    the same lock and wake after dropping it. So a fault either sees the
 *    page (and retries at once) or is queued before the page goes in, and
 *    then the wake finds it: no wake is lost.
 *  - A waiting fault holds no lock at all, is outside any access section,
 *    and holds a reference on the mm (mm->refs), so that smm_mm_destroy()
 *    can wake it and the structure outlives it.
 *  - register and unregister hold mmap_lock for write (VMA flags change
 *    through vma_modify_range(), which write-locks each VMA it changes);
 *    copy and zeropage hold the VMA's read lock or mmap_lock for read;
 *    write-protect holds mmap_lock for read; entries change under their
 *    ptl.
 */
#include <errno.h>
#include "mm.h"
#include "fault.h"
#include "pagewalk.h"
#include "rmap.h"
#include "tlb.h"

/* vm.mmap_min_addr of this machine: validate_range() refuses below it. */
#define UFFD_MIN_ADDR 4096ULL

enum {
	W_IDLE,	   /* not waiting */
	W_WAITING, /* queued (or a callback to call) */
	W_WOKEN,
};

struct uffd_waiter {
	struct uffd_waiter *prev, *next; /* on ctx's pending or read list */
	struct smm_mm *mm;
	struct smm_uffd_msg msg;
	pthread_cond_t cond;
	int state;     /* W_*, ctx->lock */
	bool pending;  /* on the pending list: its event not read yet */
	bool callback; /* deliver through ctx->handler, not the queue */
};

static __thread struct uffd_waiter uffd_self = {
	.cond = PTHREAD_COND_INITIALIZER,
};

void uffd_ctx_init(struct uffd_ctx *ctx)
{
	pthread_mutex_init(&ctx->lock, NULL);
	pthread_cond_init(&ctx->read_cond, NULL);
	ctx->pending_head = ctx->pending_tail = ctx->read_head = NULL;
	ctx->handler = NULL;
	ctx->handler_arg = NULL;
	ctx->dead = false;
}

void uffd_ctx_destroy(struct uffd_ctx *ctx)
{
	BUG_ON(ctx->pending_head || ctx->read_head);
	pthread_cond_destroy(&ctx->read_cond);
	pthread_mutex_destroy(&ctx->lock);
}

static void ctx_lock(struct uffd_ctx *ctx)
{
	lockdep_acquire(&ctx->lock, LC_UFFD, false);
	pthread_mutex_lock(&ctx->lock);
}

static void ctx_unlock(struct uffd_ctx *ctx)
{
	pthread_mutex_unlock(&ctx->lock);
	lockdep_release(&ctx->lock);
}

/* ---- the waiter lists (ctx->lock held) ---- */

static void list_add_pending(struct uffd_ctx *ctx, struct uffd_waiter *w)
{
	w->pending = true;
	w->next = NULL;
	w->prev = ctx->pending_tail;
	if (ctx->pending_tail)
		ctx->pending_tail->next = w;
	else
		ctx->pending_head = w;
	ctx->pending_tail = w;
}

static void list_add_read(struct uffd_ctx *ctx, struct uffd_waiter *w)
{
	w->pending = false;
	w->prev = NULL;
	w->next = ctx->read_head;
	if (w->next)
		w->next->prev = w;
	ctx->read_head = w;
}

static void list_del(struct uffd_ctx *ctx, struct uffd_waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else if (w->pending)
		ctx->pending_head = w->next;
	else
		ctx->read_head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else if (w->pending)
		ctx->pending_tail = w->prev;
}

/* Wake the waiters of [start, start + len), read or not; len 0: all. */
static void wake_range(struct uffd_ctx *ctx, uint64_t start, uint64_t len)
{
	struct uffd_waiter *lists[2] = { ctx->pending_head, ctx->read_head };

	for (int i = 0; i < 2; i++) {
		struct uffd_waiter *w = lists[i], *n;

		for (; w; w = n) {
			n = w->next;
			if (len && (w->msg.address < start ||
				    w->msg.address - start >= len))
				continue;
			list_del(ctx, w);
			w->state = W_WOKEN;
			pthread_cond_signal(&w->cond);
		}
	}
}

static void uffd_wake(struct smm_mm *mm, uint64_t start, uint64_t len)
{
	ctx_lock(&mm->uffd);
	wake_range(&mm->uffd, start, len);
	ctx_unlock(&mm->uffd);
}

void uffd_mm_exit(struct smm_mm *mm)
{
	struct uffd_ctx *ctx = &mm->uffd;

	ctx_lock(ctx);
	ctx->dead = true;
	ctx->handler = NULL;
	wake_range(ctx, 0, 0);
	pthread_cond_broadcast(&ctx->read_cond);
	ctx_unlock(ctx);
}

/* ---- the faulting side ---- */

int handle_userfault(struct vm_fault *vmf, unsigned long reason)
{
	struct smm_mm *mm = vmf->vma->vm_mm;
	struct uffd_ctx *ctx = &mm->uffd;
	struct uffd_waiter *w = &uffd_self;

	assert_fault_locked(mm);
	if (vmf->flags & FAULT_NO_UFFD) {
		/* populate: may not drop its lock (Linux without
		 * FAULT_FLAG_ALLOW_RETRY: VM_FAULT_SIGBUS) */
		pte_unmap(&vmf->pt);
		return -EFAULT;
	}
	VM_BUG_ON(__atomic_load_n(&w->state, __ATOMIC_RELAXED) != W_IDLE);
	w->mm = mm;
	w->msg.event = SMM_UFFD_EVENT_PAGEFAULT;
	w->msg.address = vmf->address;
	w->msg.flags = (vmf->flags & FAULT_WRITE ?
				SMM_UFFD_PAGEFAULT_FLAG_WRITE :
				0) |
		       (reason == VM_UFFD_WP ? SMM_UFFD_PAGEFAULT_FLAG_WP : 0);
	if (__atomic_load_n(&ctx->handler, __ATOMIC_RELAXED)) {
		/* The callback resolves it; if it was unset meanwhile,
		 * uffd_wait() sees that and the fault queues next time. */
		pte_unmap(&vmf->pt);
		w->callback = true;
		w->state = W_WAITING;
		atomic_fetch_add(&mm->refs, 1);
		return VM_FAULT_UFFD;
	}
	/*
	 * Queue under the ptl, with the entry still what the fault saw: a
	 * copy (or wp) that changes it takes this ptl too, and wakes after,
	 * so it either came first (we retry now) or will find us queued.
	 */
	if (!pte_map_lock(&vmf->pt)) {
		pte_unmap(&vmf->pt);
		return 0;
	}
	if (pte_read(vmf->pte) != vmf->orig_pte) {
		pte_unmap_unlock(&vmf->pt);
		return 0;
	}
	ctx_lock(ctx);
	w->callback = false;
	w->state = W_WAITING;
	list_add_pending(ctx, w);
	pthread_cond_signal(&ctx->read_cond);
	ctx_unlock(ctx);
	pte_unmap_unlock(&vmf->pt);
	/* Still under the fault's lock: destroy cannot have begun. */
	atomic_fetch_add(&mm->refs, 1);
	return VM_FAULT_UFFD;
}

int uffd_wait(struct smm_mm *mm)
{
	struct uffd_ctx *ctx = &mm->uffd;
	struct uffd_waiter *w = &uffd_self;
	int ret = 0;

	/* Linux's VM_FAULT_RETRY: every fault lock was dropped. */
	lockdep_assert_none_held();
	VM_BUG_ON(in_access_section());
	VM_BUG_ON(w->mm != mm);
	race_point();
	if (w->callback) {
		smm_uffd_handler_t fn;
		void *arg;
		bool dead;

		ctx_lock(ctx);
		fn = ctx->handler;
		arg = ctx->handler_arg;
		dead = ctx->dead;
		ctx_unlock(ctx);
		w->state = W_IDLE;
		if (dead)
			ret = -ESRCH;
		else if (fn && fn(mm, &w->msg, arg) < 0)
			ret = -ENXIO;
	} else {
		ctx_lock(ctx);
		/* woken already, maybe, before we got here */
		VM_BUG_ON(w->state == W_IDLE);
		while (w->state == W_WAITING)
			pthread_cond_wait(&w->cond, &ctx->lock);
		ret = ctx->dead ? -ESRCH : 0;
		w->state = W_IDLE;
		ctx_unlock(ctx);
	}
	mm_put(mm); /* may free the structure: not touched after */
	return ret;
}

/* ---- argument checks ---- */

/* Linux's validate_range() */
static int validate_range(uint64_t start, uint64_t len)
{
	if ((start | len) & ~PAGE_MASK)
		return -EINVAL;
	if (!len || start < UFFD_MIN_ADDR || start >= SMM_TASK_SIZE ||
	    len > SMM_TASK_SIZE - start)
		return -EINVAL;
	return 0;
}

/* Linux's vma_can_userfault(), for what softmm models: private
 * anonymous memory (shared anonymous memory has a file: shmem). */
static bool vma_can_userfault(struct vm_area_struct *vma)
{
	return !vma->vm_file && !vma->vm_ops && !(vma->vm_flags & VM_SHARED);
}

/* The first VMA intersecting [start, end), all of them can userfault:
 * 0, else -EINVAL (mmap_lock held). */
static int check_vmas(struct smm_mm *mm, uint64_t start, uint64_t end)
{
	struct vm_area_struct *v = vma_find_list(mm, start);

	if (!v || v->vm_start >= end)
		return -EINVAL;
	for (; v && v->vm_start < end; v = v->vm_next)
		if (!vma_can_userfault(v))
			return -EINVAL;
	return 0;
}

/* ---- write-protect walks ---- */

enum {
	WP_SET,
	WP_CLEAR,	  /* and make writable where the VMA allows */
	WP_CLEAR_ONLY,	  /* registration lost: the bit only */
};

static inline __attribute__((always_inline)) int
uffd_wp_entry(struct mm_walk *walk, pteval_t *ptep, pteval_t e, uint64_t addr)
{
	int how = *(int *)walk->private;
	struct smm_pool *pool = walk->mm->pool;
	pteval_t old, new;

	if (!pte_mapped(e))
		return WALK_CONTINUE;
	if (how == WP_SET ? (e & _PAGE_UFFD_WP) && !(e & _PAGE_RW) :
			    !(e & _PAGE_UFFD_WP))
		return WALK_CONTINUE;
	old = ptep_get_and_clear(walk->mm, ptep); /* collect A/D */
	if (how == WP_SET) {
		new = (old & ~_PAGE_RW) | _PAGE_UFFD_WP;
		if ((old & _PAGE_PRESENT) && (old & _PAGE_RW))
			walk->tlb->need_flush = true;
	} else {
		new = old & ~_PAGE_UFFD_WP;
		/* can_change_pte_writable(): an exclusive anonymous page */
		if (how == WP_CLEAR && (old & _PAGE_PRESENT) &&
		    (walk->vma->vm_flags & VM_WRITE) &&
		    !is_zero_pfn(pool, pte_pfn(old)) &&
		    (atomic_load(&pfn_to_page(pool, pte_pfn(old))->flags) &
		     PG_ANON_EXCLUSIVE))
			new |= _PAGE_RW;
	}
	set_pte(walk->mm, ptep, new);
	return WALK_CONTINUE;
}

static const struct mm_walk_ops uffd_wp_ops = {
	.pte_entry = uffd_wp_entry,
};

static void wp_range(struct mmu_gather *tlb, struct vm_area_struct *vma,
		     uint64_t start, uint64_t end, int how)
{
	struct mm_walk walk = {
		.mm = vma->vm_mm,
		.vma = vma,
		.tlb = tlb,
		.private = &how,
	};

	walk_page_range_vma(&walk, &uffd_wp_ops, start, end);
}

void uffd_wp_clear_range(struct vm_area_struct *vma, uint64_t start,
			 uint64_t end)
{
	struct mmu_gather tlb;

	mmap_assert_write_locked(vma->vm_mm);
	tlb_gather_mmu(&tlb, vma->vm_mm);
	wp_range(&tlb, vma, start, end, WP_CLEAR_ONLY);
	tlb_finish_mmu(&tlb);
}

/* ---- register, unregister ---- */

/* vma_modify_range()'s errno for a split that failed, told apart from
 * the -ENOMEM it answers for holes (which registration allows). */
#define SPLIT_FAILED (-E2BIG)

static unsigned long register_flags(struct vm_area_struct *vma, void *arg)
{
	unsigned long want = *(unsigned long *)arg;

	/* Linux skips a VMA that has every mode asked for already. */
	if ((vma->vm_flags & want) == want)
		return vma->vm_flags;
	return (vma->vm_flags & ~VM_UFFD_FLAGS) | want;
}

static const struct vma_range_ops register_ops = {
	.new_flags = register_flags,
	.split_errno = SPLIT_FAILED,
};

static unsigned long unregister_flags(struct vm_area_struct *vma, void *arg)
{
	return vma->vm_flags & ~VM_UFFD_FLAGS;
}

static void unregister_changed(struct vm_area_struct *vma, uint64_t start,
			       uint64_t end, unsigned long oldflags, void *arg)
{
	if (oldflags & VM_UFFD_WP)
		wp_range(arg, vma, start, end, WP_CLEAR_ONLY);
}

static const struct vma_range_ops unregister_ops = {
	.new_flags = unregister_flags,
	.changed = unregister_changed,
	.split_errno = SPLIT_FAILED,
};

static int do_register(struct smm_mm *mm, uint64_t addr, uint64_t len,
		       unsigned long flags, bool reg)
{
	struct mmu_gather tlb;
	int err;

	if (!mm)
		return -EINVAL;
	err = validate_range(addr, len);
	if (err)
		return err;
	rcu_thread_online();
	mmap_write_lock(mm);
	if (mm->dead) {
		err = -ESRCH;
		goto out;
	}
	err = check_vmas(mm, addr, addr + len);
	if (err)
		goto out;
	if (reg) {
		err = vma_modify_range(mm, addr, addr + len, true,
				       &register_ops, &flags);
	} else {
		tlb_gather_mmu(&tlb, mm);
		err = vma_modify_range(mm, addr, addr + len, true,
				       &unregister_ops, &tlb);
		tlb_finish_mmu(&tlb);
		/* The faults waiting there fault again, as ordinary ones:
		 * their VMAs are no longer registered when they look. */
		uffd_wake(mm, addr, len);
	}
	/* a hole: fine here */
	err = err == SPLIT_FAILED ? -ENOMEM : err == -ENOMEM ? 0 : err;
out:
	mmap_write_unlock(mm);
	return err;
}

SMM_API int smm_uffd_register(struct smm_mm *mm, uint64_t addr, uint64_t len,
			      uint64_t mode)
{
	unsigned long flags = 0;

	if (!mode || (mode & ~(uint64_t)(SMM_UFFD_REGISTER_MODE_MISSING |
					 SMM_UFFD_REGISTER_MODE_WP)))
		return -EINVAL;
	if (mode & SMM_UFFD_REGISTER_MODE_MISSING)
		flags |= VM_UFFD_MISSING;
	if (mode & SMM_UFFD_REGISTER_MODE_WP)
		flags |= VM_UFFD_WP;
	return do_register(mm, addr, len, flags, true);
}

SMM_API int smm_uffd_unregister(struct smm_mm *mm, uint64_t addr, uint64_t len)
{
	return do_register(mm, addr, len, 0, false);
}

/* ---- handler, queue ---- */

SMM_API int smm_uffd_set_handler(struct smm_mm *mm, smm_uffd_handler_t fn,
				 void *arg)
{
	int err = 0;

	if (!mm)
		return -EINVAL;
	ctx_lock(&mm->uffd);
	if (mm->uffd.dead) {
		err = -ESRCH;
	} else {
		mm->uffd.handler_arg = arg;
		__atomic_store_n(&mm->uffd.handler, fn, __ATOMIC_RELAXED);
	}
	ctx_unlock(&mm->uffd);
	return err;
}

SMM_API int smm_uffd_read(struct smm_mm *mm, struct smm_uffd_msg *msg,
			  int flags)
{
	struct uffd_ctx *ctx;
	int err;

	if (!mm || !msg || (flags & ~SMM_UFFD_NONBLOCK))
		return -EINVAL;
	rcu_thread_online();
	ctx = &mm->uffd;
	/* A reader blocked here outlives a concurrent destroy. */
	atomic_fetch_add(&mm->refs, 1);
	ctx_lock(ctx);
	for (;;) {
		struct uffd_waiter *w = ctx->pending_head;

		if (ctx->dead) {
			err = -ESRCH;
			break;
		}
		if (w) {
			list_del(ctx, w);
			list_add_read(ctx, w);
			*msg = w->msg;
			err = 0;
			break;
		}
		if (flags & SMM_UFFD_NONBLOCK) {
			err = -EAGAIN;
			break;
		}
		pthread_cond_wait(&ctx->read_cond, &ctx->lock);
	}
	ctx_unlock(ctx);
	mm_put(mm);
	return err;
}

SMM_API int smm_uffd_wake(struct smm_mm *mm, uint64_t addr, uint64_t len)
{
	int err;

	if (!mm)
		return -EINVAL;
	err = validate_range(addr, len);
	if (err)
		return err;
	ctx_lock(&mm->uffd);
	if (mm->uffd.dead)
		err = -ESRCH;
	else
		wake_range(&mm->uffd, addr, len);
	ctx_unlock(&mm->uffd);
	return err;
}

/* ---- copy, zeropage ---- */

/*
 * Map one page at @addr of @vma: a new anonymous page holding @src, or
 * the zero page (@src NULL). The page is allocated and filled before the
 * ptl; under it the entry must still be none (-EEXIST), as in Linux's
 * mfill_atomic_install_pte(). 0, -EEXIST, -ENOMEM, or -EAGAIN (the table
 * went away under us: try again).
 */
static int mfill_one(struct vm_area_struct *vma, uint64_t addr,
		     const void *src, bool wp)
{
	struct smm_mm *mm = vma->vm_mm;
	struct smm_pool *pool = mm->pool;
	pteval_t entry, *ptep;
	pfn_t pfn = NO_PFN;
	struct pt_walk w;
	int err = 0;

#ifdef SMM_BUG_UFFD_NO_RECHECK
	/* planted bug: the check done before the lock, not under it */
	ptep = pte_offset_map(mm, addr, &w);
	if (ptep) {
		pteval_t e = pte_read(ptep);

		pte_unmap(&w);
		if (!pte_none(e))
			return -EEXIST;
	}
#endif
	if (src) {
		struct page *page;

		pfn = alloc_frame(pool, PG_ANON);
		if (pfn == NO_PFN)
			return -ENOMEM;
		frame_copy(pfn_to_virt(pool, pfn), src, PAGE_SIZE);
		page = pfn_to_page(pool, pfn);
		atomic_store_explicit(&page->flags,
				      PG_ANON | PG_ANON_EXCLUSIVE | PG_DIRTY,
				      memory_order_relaxed);
		page->mapping = READ_ONCE(vma->anon_vma);
		page->index = vma->vm_pgoff +
			      ((addr - vma->vm_start) >> PAGE_SHIFT);
		entry = pfn_pte(pfn, vm_page_prot(vma->vm_flags) | _PAGE_DIRTY);
		if (wp)
			entry |= _PAGE_UFFD_WP;
		else if (vma->vm_flags & VM_WRITE)
			entry |= _PAGE_RW;
	} else {
		entry = pfn_pte(pool->zero_pfn, vm_page_prot(vma->vm_flags));
	}
	if (!(vma->vm_flags & VM_ACCESS_FLAGS)) /* PROT_NONE, as mprotect */
		entry = (entry & ~(_PAGE_PRESENT | _PAGE_RW)) | _PAGE_PROTNONE;
	race_point();
	ptep = pte_alloc_map(mm, addr, &w, &err);
	if (!ptep)
		goto out;
	if (!pte_map_lock(&w)) {
		pte_unmap(&w);
		err = -EAGAIN;
		goto out;
	}
#ifndef SMM_BUG_UFFD_NO_RECHECK
	if (!pte_none(pte_read(ptep))) {
		pte_unmap_unlock(&w);
		err = -EEXIST;
		goto out;
	}
#endif
	set_pte(mm, ptep, entry);
	pte_table_add(mm, ptep, 1);
	if (src) {
		atomic_store_explicit(&pfn_to_page(pool, pfn)->mapcount, 1,
				      memory_order_relaxed);
		stripe_add(mm->ctr, MC_RSS, 1);
		pfn = NO_PFN;
	} else {
		stripe_add(mm->ctr, MC_ZERO, 1);
	}
	pte_unmap_unlock(&w);
out:
	if (pfn != NO_PFN)
		put_page(pool, pfn);
	return err;
}

static int mfill(struct smm_mm *mm, uint64_t dst, const void *src,
		 uint64_t len, uint64_t mode, int64_t *done)
{
	bool zero = !src, wp = !zero && (mode & SMM_UFFD_COPY_MODE_WP);
	uint64_t dontwake = zero ? SMM_UFFD_ZEROPAGE_MODE_DONTWAKE :
				   SMM_UFFD_COPY_MODE_DONTWAKE;
	struct vm_area_struct *vma = NULL;
	bool mmap_locked = false;
	uint64_t copied = 0;
	int err;

	rcu_thread_online();
	if (!(mm->flags & SMM_MM_NO_VMA_LOCK))
		vma = lock_vma_under_rcu(mm, dst);
retry:
	if (!vma) {
		mmap_read_lock(mm);
		mmap_locked = true;
		if (mm->dead) {
			err = -ESRCH;
			goto unlock;
		}
		vma = vma_lookup(mm, dst);
	}
	/* Linux's uffd_mfill_lock() and validate_dst_vma() */
	err = -ENOENT;
	if (!vma || dst + len > vma->vm_end ||
	    !(vma->vm_flags & VM_UFFD_FLAGS))
		goto unlock;
	err = -EINVAL;
	if (wp && !(vma->vm_flags & VM_UFFD_WP))
		goto unlock;
	err = zero ? 0 : anon_vma_prepare(vma, !mmap_locked);
	if (err == -EAGAIN) { /* needs mmap_lock */
		vma_end_read(vma);
		vma = NULL;
		goto retry;
	}
	while (!err && copied < len) {
		err = mfill_one(vma, dst + copied,
				zero ? NULL : (const uint8_t *)src + copied, wp);
		if (err == -EAGAIN) {
			err = 0;
			continue;
		}
		if (!err)
			copied += PAGE_SIZE;
	}
unlock:
	if (mmap_locked)
		mmap_read_unlock(mm);
	else if (vma)
		vma_end_read(vma);
	if (copied && !(mode & dontwake))
		uffd_wake(mm, dst, copied);
	if (done)
		*done = copied ? (int64_t)copied : err;
	return copied == len ? 0 : copied ? -EAGAIN : err;
}

SMM_API int smm_uffd_copy(struct smm_mm *mm, uint64_t dst, const void *src,
			  uint64_t len, uint64_t mode, int64_t *copied)
{
	int err;

	if (!mm)
		return -EINVAL;
	err = validate_range(dst, len);
	if (err)
		return err;
	if (mode & ~(uint64_t)(SMM_UFFD_COPY_MODE_DONTWAKE |
			       SMM_UFFD_COPY_MODE_WP))
		return -EINVAL;
	if (!src)
		return -EFAULT;
	return mfill(mm, dst, src, len, mode, copied);
}

SMM_API int smm_uffd_zeropage(struct smm_mm *mm, uint64_t dst, uint64_t len,
			      uint64_t mode, int64_t *zeroed)
{
	int err;

	if (!mm)
		return -EINVAL;
	err = validate_range(dst, len);
	if (err)
		return err;
	if (mode & ~(uint64_t)SMM_UFFD_ZEROPAGE_MODE_DONTWAKE)
		return -EINVAL;
	return mfill(mm, dst, NULL, len, mode, zeroed);
}

/* ---- write-protect ---- */

SMM_API int smm_uffd_wp(struct smm_mm *mm, uint64_t addr, uint64_t len,
			uint64_t mode)
{
	bool set = mode & SMM_UFFD_WP_MODE_WP;
	uint64_t end = addr + len;
	struct mmu_gather tlb;
	int err;

	if (!mm)
		return -EINVAL;
	err = validate_range(addr, len);
	if (err)
		return err;
	if ((mode & ~(uint64_t)(SMM_UFFD_WP_MODE_WP |
				SMM_UFFD_WP_MODE_DONTWAKE)) ||
	    (set && (mode & SMM_UFFD_WP_MODE_DONTWAKE)))
		return -EINVAL;
	rcu_thread_online();
	mmap_read_lock(mm);
	if (mm->dead) {
		mmap_read_unlock(mm);
		return -ESRCH;
	}
	/* Linux's mwriteprotect_range(): holes are skipped, a VMA not
	 * registered for WP stops it, and no VMA at all is -ENOENT. */
	err = -ENOENT;
	tlb_gather_mmu(&tlb, mm);
	for (struct vm_area_struct *v = find_vma(mm, addr);
	     v && v->vm_start < end; v = v->vm_next) {
		if (!(v->vm_flags & VM_UFFD_WP)) {
			err = -ENOENT;
			break;
		}
		wp_range(&tlb, v, MAX(addr, v->vm_start), MIN(end, v->vm_end),
			 set ? WP_SET : WP_CLEAR);
		err = 0;
	}
	tlb_finish_mmu(&tlb);
	mmap_read_unlock(mm);
	if (!err && !set && !(mode & SMM_UFFD_WP_MODE_DONTWAKE))
		uffd_wake(mm, addr, len);
	return err;
}
