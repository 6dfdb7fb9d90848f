/*
 * uffd_wait.c - the faulting side of userfaultfd (Linux's
 * handle_userfault() and the uffd wait queues): the per-mm context, the
 * waiters (one per thread, in thread-local storage: a thread waits for
 * one fault at a time), queueing an event, waiting for the wake, the
 * callback, the event queue that smm_uffd_read() takes from, and waking.
 * uffd.c, the API above the fault path, calls down into it.
 *
 * Locking (docs/LOCKING.md, "Userfaultfd"): ctx->lock (LC_UFFD, below the
 * ptl) guards the lists, each waiter's state, the handler, ctx->users and
 * ctx->dead. A fault queues its waiter under the PTE lock after
 * rechecking the entry there; copy and zeropage install under the same
 * lock and wake after dropping it, so no wake is lost. A waiting fault
 * holds no lock and is outside any access section; it counts in
 * ctx->users until it leaves uffd_wait(), and smm_mm_destroy() wakes
 * every waiter and waits for ctx->users to drain (uffd_mm_exit()).
 */
#include <errno.h>
#include <time.h>
#include "fault.h"
#include "pagewalk.h"
#include "tlb.h"

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
	bool callback; /* deliver through @fn, not the queue */
	smm_uffd_handler_t fn;
	void *arg;
};

static __thread struct uffd_waiter uffd_self = {
	.cond = PTHREAD_COND_INITIALIZER,
};

void uffd_ctx_init(struct uffd_ctx *ctx)
{
	pthread_mutex_init(&ctx->lock, NULL);
	pthread_cond_init(&ctx->read_cond, NULL);
	pthread_cond_init(&ctx->exit_cond, NULL);
	ctx->pending_head = ctx->pending_tail = ctx->read_head = NULL;
	atomic_init(&ctx->nr_pending, 0);
	ctx->handler = NULL;
	ctx->handler_arg = NULL;
	ctx->users = 0;
	ctx->dead = false;
}

void uffd_ctx_destroy(struct uffd_ctx *ctx)
{
	BUG_ON(ctx->pending_head || ctx->read_head || ctx->users);
	pthread_cond_destroy(&ctx->exit_cond);
	pthread_cond_destroy(&ctx->read_cond);
	pthread_mutex_destroy(&ctx->lock);
}

void uffd_ctx_lock(struct uffd_ctx *ctx)
{
	lockdep_acquire(&ctx->lock, LC_UFFD, false);
	pthread_mutex_lock(&ctx->lock);
}

void uffd_ctx_unlock(struct uffd_ctx *ctx)
{
	pthread_mutex_unlock(&ctx->lock);
	lockdep_release(&ctx->lock);
}

/* ---- the waiter lists (ctx->lock held) ---- */

static void list_add_pending(struct uffd_ctx *ctx, struct uffd_waiter *w)
{
	atomic_fetch_add_explicit(&ctx->nr_pending, 1, memory_order_release);
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
	if (w->pending)
		atomic_fetch_sub_explicit(&ctx->nr_pending, 1,
					  memory_order_relaxed);
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

void uffd_wake_range(struct uffd_ctx *ctx, uint64_t start, uint64_t len)
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

/*
 * How long a reader finding no event polls for one before it sleeps. A
 * handler thread that sleeps between events costs every fault a wake-up
 * of an idle CPU (tens of microseconds on a quiet VM) before the copy
 * even starts; one that polls a while is running when the next fault of
 * a burst comes. The faulting thread itself never polls: it sleeps.
 */
#define UFFD_READ_SPIN_NS 50000

static bool spin_for_event(struct uffd_ctx *ctx)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned int n = 1;; n++) {
		if (atomic_load_explicit(&ctx->nr_pending,
					 memory_order_acquire))
			return true;
		cpu_relax();
		if (n % 64)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000000000L + t.tv_nsec -
			    t0.tv_nsec >=
		    UFFD_READ_SPIN_NS)
			return false;
	}
}

int uffd_read_event(struct uffd_ctx *ctx, struct smm_uffd_msg *msg,
		    bool nonblock)
{
	bool spun = false;
	int err;

	uffd_ctx_lock(ctx);
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
		if (nonblock) {
			err = -EAGAIN;
			break;
		}
		if (!spun) {
			/* Once per call, without the lock: the faults that
			 * queue need it. */
			spun = true;
			uffd_ctx_unlock(ctx);
			spin_for_event(ctx);
			uffd_ctx_lock(ctx);
			continue;
		}
		pthread_cond_wait(&ctx->read_cond, &ctx->lock);
	}
	uffd_ctx_unlock(ctx);
	return err;
}

void uffd_mm_exit(struct smm_mm *mm)
{
	struct uffd_ctx *ctx = &mm->uffd;

	uffd_ctx_lock(ctx);
	ctx->dead = true;
	ctx->handler = NULL;
	uffd_wake_range(ctx, 0, 0);
	pthread_cond_broadcast(&ctx->read_cond);
	/* Woken faults leave uffd_wait() at once; callbacks finish. */
	while (ctx->users)
		pthread_cond_wait(&ctx->exit_cond, &ctx->lock);
	uffd_ctx_unlock(ctx);
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
	w->msg.flags =
		(vmf->flags & FAULT_WRITE ? SMM_UFFD_PAGEFAULT_FLAG_WRITE : 0) |
		(reason == VM_UFFD_WP ? SMM_UFFD_PAGEFAULT_FLAG_WP : 0);
	if (__atomic_load_n(&ctx->handler, __ATOMIC_RELAXED)) {
		/* The callback resolves it, with no lock held. */
		pte_unmap(&vmf->pt);
		uffd_ctx_lock(ctx);
		w->fn = ctx->handler;
		w->arg = ctx->handler_arg;
		if (w->fn) {
			w->callback = true;
			w->state = W_WAITING;
			ctx->users++;
		}
		uffd_ctx_unlock(ctx);
		/* unset meanwhile: fault again, to queue */
		return w->fn ? VM_FAULT_UFFD : 0;
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
	uffd_ctx_lock(ctx);
	w->callback = false;
	w->state = W_WAITING;
	ctx->users++; /* under the fault's lock: destroy has not begun */
	list_add_pending(ctx, w);
	pthread_cond_signal(&ctx->read_cond);
	uffd_ctx_unlock(ctx);
	pte_unmap_unlock(&vmf->pt);
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
	if (w->callback && w->fn(mm, &w->msg, w->arg) < 0)
		ret = -ENXIO;
	uffd_ctx_lock(ctx);
	/* woken already, maybe, before we got here */
	VM_BUG_ON(w->state == W_IDLE);
	while (w->state == W_WAITING && !w->callback)
		pthread_cond_wait(&w->cond, &ctx->lock);
	if (ctx->dead)
		ret = -ESRCH;
	w->state = W_IDLE;
	if (!--ctx->users && ctx->dead)
		pthread_cond_signal(&ctx->exit_cond);
	uffd_ctx_unlock(ctx);
	/* destroy may free the mm from here on: not touched again */
	return ret;
}
