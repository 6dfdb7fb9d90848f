/*
 * uffd.h - in-process userfaultfd: the per-mm context that faulting
 * threads wait on and handlers read from (uffd_wait.c, the faulting side,
 * below the fault path), and the hooks that fork and mremap call into the
 * API (uffd.c).
 *
 * Locking: struct uffd_ctx is guarded by its own mutex, ctx->lock (class
 * LC_UFFD, below the ptl: a fault queues its event under the ptl). The
 * VM_UFFD_* flags of a VMA are VMA fields (mmap_lock for write, VMA write
 * lock); the uffd-wp bit of a PTE changes under the PTE's ptl, like every
 * entry bit. docs/LOCKING.md, "Userfaultfd".
 */
#ifndef SMM_UFFD_H
#define SMM_UFFD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "softmm.h"

struct smm_mm;
struct vm_fault;
struct vm_area_struct;
struct uffd_waiter;

/* The VM_UFFD_* flags of vm_flags, Linux's bits (mm_types.h). */
#define VM_UFFD_MISSING 0x00000200UL
#define VM_UFFD_WP	0x00001000UL
#define VM_UFFD_FLAGS	(VM_UFFD_MISSING | VM_UFFD_WP)

/*
 * handle_mm_fault_locked() and handle_pte_fault() return it when the fault
 * queued a userfault (Linux's VM_FAULT_RETRY): the caller drops its VMA
 * lock or mmap_lock, then calls uffd_wait(). Positive: never an errno.
 */
#define VM_FAULT_UFFD 1

struct uffd_ctx {
	pthread_mutex_t lock;
	pthread_cond_t read_cond; /* readers wait for an event */
	pthread_cond_t exit_cond; /* destroy waits for users to drain */
	int users;		  /* faults between queueing and waking */
	/* Waiting faults: unread ones (events to read, FIFO) and read ones. */
	struct uffd_waiter *pending_head, *pending_tail;
	/* How many are pending: written under the lock, read without it by
	 * a reader spinning before it sleeps (uffd_read_event()). */
	atomic_uint nr_pending;
	struct uffd_waiter *read_head;
	/* Callback delivery (smm_uffd_set_handler); NULL: queue. */
	smm_uffd_handler_t handler;
	void *handler_arg;
	/* smm_uffd_set_poll(): how long a queued fault polls for its wake
	 * before it sleeps (atomic: read unlocked by the fault). */
	uint64_t poll_ns;
	bool dead; /* smm_mm_destroy(): no more waiting */
};

/* uffd_wait.c: the context and its lock, waking, reading events */
void uffd_ctx_init(struct uffd_ctx *ctx);
void uffd_ctx_destroy(struct uffd_ctx *ctx);
void uffd_ctx_lock(struct uffd_ctx *ctx);
void uffd_ctx_unlock(struct uffd_ctx *ctx);
/* Wake the faults waiting on [start, start + len), 0: all (lock held). */
void uffd_wake_range(struct uffd_ctx *ctx, uint64_t start, uint64_t len);
/* Take the oldest unread event: 0, -EAGAIN (@nonblock), -ESRCH (dead). */
int uffd_read_event(struct smm_mm *mm, struct smm_uffd_msg *msg, bool nonblock);
/* smm_mm_destroy(), after mm->dead: wake every waiter and reader, and
 * wait until no fault is left inside uffd_wait(). */
void uffd_mm_exit(struct smm_mm *mm);

/*
 * handle_userfault - memory.c, for a fault in a VMA registered for
 * @reason (VM_UFFD_MISSING: vmf->orig_pte is none; VM_UFFD_WP: a store to
 * a uffd-wp entry). The caller holds the VMA lock or mmap_lock and has
 * the PTE table mapped; it is unmapped on return. Returns VM_FAULT_UFFD
 * (event queued, or a callback to call: the caller drops its lock and
 * calls uffd_wait()), 0 (the entry changed: retry), or -EFAULT when the
 * caller may not wait (FAULT_NO_UFFD: populate).
 */
int handle_userfault(struct vm_fault *vmf, unsigned long reason);
/*
 * uffd_wait - after VM_FAULT_UFFD, with no lock held and outside any
 * access section: deliver the event (callback) or wait until woken.
 * Returns 0 (fault again), -ESRCH (mm destroyed) or -ENXIO (the callback
 * failed). The mm may be freed once it returned: the caller must hold it
 * otherwise (a CPU switched to it) to touch it again.
 */
int uffd_wait(struct smm_mm *mm);

/* fork, mremap: clear the uffd-wp bits of [start, end) in @vma, which
 * lost its registration (mmap_lock held for write). */
void uffd_wp_clear_range(struct vm_area_struct *vma, uint64_t start,
			 uint64_t end);

#endif
