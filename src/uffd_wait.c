/*
 * uffd_wait.c - the faulting side of userfaultfd (Linux's
 * handle_userfault() and the uffd wait queues): the per-mm context, the
 * waiters (one per thread, in thread-local storage: a thread waits for
 * one fault at a time), queueing an event, waiting for the wake, the
 * callback, the event queue that smm_uffd_read() takes from, and waking.
 * uffd.c, the API above the fault path, calls down into it.
 *
 * Locking (docs/LOCKING.md, "Userfaultfd"): ctx->lock (LC_UFFD, below the
 * ptl) guards the lists, the handler, ctx->users and ctx->dead. A fault
 * queues its waiter under the PTE lock after rechecking the entry there;
 * copy and zeropage install under the same lock and wake after dropping
 * it, so no wake is lost. A waiting fault holds no lock and is outside
 * any access section. It waits on its own waiter's state word (a futex),
 * which the waker changes atomically as the last thing it does to the
 * waiter: once woken, the fault touches neither the waiter's lists nor
 * the context. A queued fault counts in ctx->users from queueing until it
 * is woken (the waker drops the count for it), a callback until it leaves
 * uffd_wait(); smm_mm_destroy() wakes every waiter and waits for
 * ctx->users to drain (uffd_mm_exit()).
 */
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "fault.h"
#include "pagewalk.h"
#include "tlb.h"

/*
 * A waiter's state. The fault sets W_WAITING when it queues (under
 * ctx->lock), may move it to W_SLEEPING before it sleeps (a CAS: the
 * waker sees that it must make the futex call), and sets W_IDLE when it
 * is done; the waker exchanges W_WAITING or W_SLEEPING for W_WOKEN, or
 * W_DEAD when the address space is being destroyed.
 */
enum {
	W_IDLE,	    /* not waiting */
	W_WAITING,  /* queued (or a callback to call) */
	W_SLEEPING, /* queued, and asleep on the futex (or about to be) */
	W_WOKEN,
	W_DEAD, /* woken by smm_mm_destroy() */
};

struct uffd_waiter {
	struct uffd_waiter *prev, *next; /* on ctx's pending or read list */
	struct smm_mm *mm;
	struct smm_uffd_msg msg;
	bool pending;  /* on the pending list: its event not read yet */
	bool callback; /* deliver through @fn, not the queue */
	smm_uffd_handler_t fn;
	void *arg;
	uint64_t poll_ns; /* ctx->poll_ns when the fault queued */
	/*
	 * W_*, changed atomically: a futex word. On a line of its own: the
	 * reader and the waker write the list links above while the fault
	 * polls this word, which would otherwise be taken from the fault's
	 * CPU at each of their stores.
	 */
	int state __attribute__((aligned(64)));
};

static __thread struct uffd_waiter uffd_self;

void uffd_ctx_init(struct uffd_ctx *ctx)
{
	pthread_mutex_init(&ctx->lock, NULL);
	pthread_cond_init(&ctx->read_cond, NULL);
	pthread_cond_init(&ctx->exit_cond, NULL);
	ctx->pending_head = ctx->pending_tail = ctx->read_head = NULL;
	atomic_init(&ctx->nr_pending, 0);
	ctx->handler = NULL;
	ctx->handler_arg = NULL;
	ctx->poll_ns = 0;
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

/*
 * The last touch of a queued waiter: the release pairs with the fault's
 * acquire load of its state, so the entry the copy installed is seen by
 * the fault's retry without any lock on its side. After the exchange the
 * fault may return, fault elsewhere or exit its thread; the futex wake
 * needs only the address (a private futex is keyed by it, not read), and
 * a stray wake of whatever waits there later is harmless (each waiter
 * rechecks its word). The wake is made only for a fault that said it
 * sleeps: one that polls is not worth a system call.
 */
static void waiter_wake(struct uffd_waiter *w, bool dead)
{
	int old = __atomic_exchange_n(&w->state, dead ? W_DEAD : W_WOKEN,
				      __ATOMIC_ACQ_REL);

	/* only a queued waiter is on a list, and it is woken once */
	VM_BUG_ON(old != W_WAITING && old != W_SLEEPING);
	if (old == W_SLEEPING)
		syscall(SYS_futex, &w->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL,
			0);
}

void uffd_wake_range(struct uffd_ctx *ctx, uint64_t start, uint64_t len)
{
	struct uffd_waiter *lists[2] = { ctx->pending_head, ctx->read_head };

	lockdep_assert_held(&ctx->lock);
	for (int i = 0; i < 2; i++) {
		struct uffd_waiter *w = lists[i], *n;

		for (; w; w = n) {
			n = w->next;
			if (len && (w->msg.address < start ||
				    w->msg.address - start >= len))
				continue;
			list_del(ctx, w);
			ctx->users--;
			waiter_wake(w, ctx->dead);
		}
	}
}

/*
 * How long a reader finding no event polls for one before it sleeps. A
 * handler thread that sleeps between events costs every fault a wake-up
 * of an idle CPU (tens of microseconds on a quiet VM) before the copy
 * even starts; one that polls a while is running when the next fault of
 * a burst comes. The faulting thread polls only when the program asked
 * for it (smm_uffd_set_poll()); by default it sleeps at once.
 */
#define UFFD_READ_SPIN_NS 50000

static uint64_t elapsed_ns(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)((t.tv_sec - t0->tv_sec) * 1000000000L + t.tv_nsec -
			  t0->tv_nsec);
}

static bool spin_for_event(struct uffd_ctx *ctx)
{
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned int n = 1;; n++) {
		if (atomic_load_explicit(&ctx->nr_pending,
					 memory_order_acquire))
			return true;
		cpu_relax();
		if (n % 64 == 0 && elapsed_ns(&t0) >= UFFD_READ_SPIN_NS)
			return false;
	}
}

/*
 * A queued fault waits for waiter_wake(): first polling for up to @ns
 * (smm_uffd_set_poll(); 0 by default), then asleep on the futex. Returns
 * W_WOKEN or W_DEAD. The acquire loads pair with the waker's exchange.
 */
static int wait_for_wake(struct uffd_waiter *w, uint64_t ns)
{
	struct timespec t0;
	int expect = W_WAITING;

	if (ns) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (unsigned int n = 1;; n++) {
			int s = __atomic_load_n(&w->state, __ATOMIC_ACQUIRE);

			if (s != W_WAITING)
				return s;
			cpu_relax();
			if (n % 64 == 0 && elapsed_ns(&t0) >= ns)
				break;
		}
	}
#ifdef SMM_BUG_UFFD_LOST_WAKE
	/* planted bug (build/bug9): sleeps without saying so first, so a
	 * waker that comes after the check below makes no futex call */
	while ((expect = __atomic_load_n(&w->state, __ATOMIC_ACQUIRE)) ==
	       W_WAITING)
		syscall(SYS_futex, &w->state, FUTEX_WAIT_PRIVATE, W_WAITING,
			NULL, NULL, 0);
#else
	if (__atomic_compare_exchange_n(&w->state, &expect, W_SLEEPING, false,
					__ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE))
		expect = W_SLEEPING;
#endif
	while (expect == W_SLEEPING) {
		syscall(SYS_futex, &w->state, FUTEX_WAIT_PRIVATE, W_SLEEPING,
			NULL, NULL, 0);
		expect = __atomic_load_n(&w->state, __ATOMIC_ACQUIRE);
	}
	VM_BUG_ON(expect != W_WOKEN && expect != W_DEAD);
	return expect;
}

int uffd_read_event(struct smm_mm *mm, struct smm_uffd_msg *msg, bool nonblock)
{
	struct uffd_ctx *ctx = &mm->uffd;
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
			/* Idle time: warm the frame the copy will take. */
			pcp_prefetch_next(mm->pool);
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
			__atomic_store_n(&w->state, W_WAITING,
					 __ATOMIC_RELAXED);
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
	w->poll_ns = __atomic_load_n(&ctx->poll_ns, __ATOMIC_RELAXED);
	__atomic_store_n(&w->state, W_WAITING, __ATOMIC_RELAXED);
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
	if (!w->callback) {
		/*
		 * Queued: woken already, maybe, before we got here. The waker
		 * dropped our count in ctx->users, so from the wake on the
		 * mm may be freed: nothing here touches it.
		 */
		ret = wait_for_wake(w, w->poll_ns) == W_DEAD ? -ESRCH : 0;
		__atomic_store_n(&w->state, W_IDLE, __ATOMIC_RELAXED);
		return ret;
	}
	if (w->fn(mm, &w->msg, w->arg) < 0)
		ret = -ENXIO;
	uffd_ctx_lock(ctx);
	if (ctx->dead)
		ret = -ESRCH;
	__atomic_store_n(&w->state, W_IDLE, __ATOMIC_RELAXED);
	if (!--ctx->users && ctx->dead)
		pthread_cond_signal(&ctx->exit_cond);
	uffd_ctx_unlock(ctx);
	/* destroy may free the mm from here on: not touched again */
	return ret;
}
