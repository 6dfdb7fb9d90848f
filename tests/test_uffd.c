/*
 * test_uffd.c - userfaultfd in process: registration (errors, splitting
 * and merging, fork and mremap dropping it), copy / zeropage / write-
 * protect / wake with Linux's errno values (EEXIST, partial EAGAIN,
 * ENOENT), DONTWAKE, the queue with a handler thread, the faulting
 * thread's poll before it sleeps (smm_uffd_set_poll()), the callback, WP
 * faults, slow GUP through a missing page, fault injection, and races
 * with real threads: copies against unregister, waiters against
 * unregister, destroy with waiters and readers, copies racing copies.
 */
#define _GNU_SOURCE /* pthread_timedjoin_np() */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#include "common.h"

#define MISSING SMM_UFFD_REGISTER_MODE_MISSING
#define WPMODE	SMM_UFFD_REGISTER_MODE_WP
#define F_WRITE SMM_UFFD_PAGEFAULT_FLAG_WRITE
#define F_WP	SMM_UFFD_PAGEFAULT_FLAG_WP

/* Assertions in threads other than the test's own: cmocka's would jump
 * into the main thread's stack, so print and abort. */
#define T_ASSERT(c)                                                     \
	do {                                                            \
		if (!(c)) {                                             \
			fprintf(stderr, "%s:%d: %s failed\n", __FILE__, \
				__LINE__, #c);                          \
			abort();                                        \
		}                                                       \
	} while (0)

static uint8_t srcpage[16 * 4096];

static void fill_src(int byte)
{
	memset(srcpage, byte, sizeof(srcpage));
}

static uint64_t vma_flags_at(struct smm_mm *mm, uint64_t a)
{
	struct smm_vma_info v;

	assert_int_equal(smm_mm_vmas(mm, a, a + 1, &v, 1), 1);
	return v.flags & (SMM_VM_UFFD_MISSING | SMM_VM_UFFD_WP);
}

static size_t nr_vmas(struct smm_mm *mm, uint64_t s, uint64_t e)
{
	return smm_mm_vmas(mm, s, e, NULL, 0);
}

static uint8_t peek(struct env *e, uint64_t a)
{
	uint8_t b = 0xee;

	assert_int_equal(smm_read(e->cpu, a, &b, 1, NULL), 0);
	return b;
}

/* ---- registration ---- */

static void test_register_errors(void **state)
{
	struct env *e = *state;
	struct smm_mm *m2;

	map_at(e->mm, TA, 8 * PG, RW);
	assert_int_equal(smm_uffd_register(NULL, TA, PG, MISSING), -EINVAL);
	assert_int_equal(smm_uffd_register(e->mm, TA, 0, MISSING), -EINVAL);
	assert_int_equal(smm_uffd_register(e->mm, TA + 1, PG, MISSING),
			 -EINVAL);
	assert_int_equal(smm_uffd_register(e->mm, TA, 100, MISSING), -EINVAL);
	assert_int_equal(smm_uffd_register(e->mm, TA, PG, 0), -EINVAL);
	assert_int_equal(smm_uffd_register(e->mm, TA, PG, 4), -EINVAL);
	assert_int_equal(smm_uffd_register(e->mm, TA, PG, 8), -EINVAL);
	assert_int_equal(smm_uffd_register(e->mm, TA, -PG, MISSING), -EINVAL);
	assert_int_equal(smm_uffd_register(e->mm, 0, PG, MISSING), -EINVAL);
	assert_int_equal(smm_uffd_register(e->mm, SMM_TASK_SIZE, PG, MISSING),
			 -EINVAL);
	assert_int_equal(smm_uffd_register(e->mm, TA + 20 * PG, PG, MISSING),
			 -EINVAL); /* no VMA */
	assert_int_equal(smm_uffd_unregister(e->mm, TA + 20 * PG, PG), -EINVAL);
	assert_int_equal(smm_uffd_unregister(e->mm, TA, 0), -EINVAL);
	assert_int_equal(smm_uffd_unregister(e->mm, TA, PG), 0);
	/* shared anonymous memory is shmem: not modelled, refused, and
	 * checked before anything changes */
	assert_int_equal(smm_mmap(e->mm, TA + 8 * PG, 2 * PG, RW,
				  SMM_MAP_SHARED | SMM_MAP_ANONYMOUS |
					  SMM_MAP_FIXED),
			 (int64_t)(TA + 8 * PG));
	assert_int_equal(smm_uffd_register(e->mm, TA, 10 * PG, MISSING),
			 -EINVAL);
	assert_int_equal(vma_flags_at(e->mm, TA), 0);
	/* unregistering it succeeds, as on Linux (tests/oracle/uffd-shmem) */
	assert_int_equal(smm_uffd_unregister(e->mm, TA, 10 * PG), 0);
	/* a destroyed address space a CPU still holds */
	m2 = new_mm(e->pool, 0);
	assert_int_equal(smm_cpu_switch_mm(e->cpu, m2), 0);
	smm_mm_destroy(m2);
	assert_int_equal(smm_uffd_register(m2, TA, PG, MISSING), -ESRCH);
	assert_int_equal(smm_uffd_unregister(m2, TA, PG), -ESRCH);
	assert_int_equal(smm_uffd_copy(m2, TA, srcpage, PG, 0, NULL), -ESRCH);
	assert_int_equal(smm_uffd_zeropage(m2, TA, PG, 0, NULL), -ESRCH);
	assert_int_equal(smm_uffd_wp(m2, TA, PG, 0), -ESRCH);
	assert_int_equal(smm_uffd_wake(m2, TA, PG), -ESRCH);
	assert_int_equal(smm_uffd_set_handler(m2, NULL, NULL), -ESRCH);
	assert_int_equal(smm_uffd_set_poll(m2, 0), -ESRCH);
	struct smm_uffd_msg msg;
	assert_int_equal(smm_uffd_read(m2, &msg, 0), -ESRCH);
	assert_int_equal(smm_cpu_switch_mm(e->cpu, e->mm), 0);
	assert_int_equal(smm_uffd_read(e->mm, &msg, SMM_UFFD_NONBLOCK),
			 -EAGAIN);
	assert_int_equal(smm_uffd_read(e->mm, &msg, 2), -EINVAL);
	assert_int_equal(smm_uffd_read(e->mm, NULL, 0), -EINVAL);
}

static void test_register_split_merge(void **state)
{
	struct env *e = *state;

	map_at(e->mm, TA, 8 * PG, RW);
	map_at(e->mm, TA + 10 * PG, 4 * PG, RW);
	/* holes are fine, as in Linux */
	assert_int_equal(
		smm_uffd_register(e->mm, TA + 2 * PG, 14 * PG, MISSING), 0);
	assert_int_equal(nr_vmas(e->mm, TA, TA + 16 * PG), 3);
	assert_int_equal(vma_flags_at(e->mm, TA), 0);
	assert_int_equal(vma_flags_at(e->mm, TA + 2 * PG), SMM_VM_UFFD_MISSING);
	assert_int_equal(vma_flags_at(e->mm, TA + 12 * PG),
			 SMM_VM_UFFD_MISSING);
	/* a range starting in a hole, with a VMA in it */
	assert_int_equal(smm_uffd_register(e->mm, TA + 8 * PG, 4 * PG,
					   MISSING | WPMODE),
			 0);
	assert_int_equal(vma_flags_at(e->mm, TA + 10 * PG),
			 SMM_VM_UFFD_MISSING | SMM_VM_UFFD_WP);
	assert_int_equal(vma_flags_at(e->mm, TA + 12 * PG),
			 SMM_VM_UFFD_MISSING);
	/* every mode asked for already there: nothing changes (no split) */
	assert_int_equal(smm_uffd_register(e->mm, TA + 10 * PG, PG, MISSING),
			 0);
	assert_int_equal(vma_flags_at(e->mm, TA + 10 * PG),
			 SMM_VM_UFFD_MISSING | SMM_VM_UFFD_WP);
	/* else the mode is replaced */
	assert_int_equal(smm_uffd_register(e->mm, TA + 2 * PG, 2 * PG, WPMODE),
			 0);
	assert_int_equal(vma_flags_at(e->mm, TA + 2 * PG), SMM_VM_UFFD_WP);
	assert_int_equal(vma_flags_at(e->mm, TA + 4 * PG), SMM_VM_UFFD_MISSING);
	/* unregister merges back */
	assert_int_equal(smm_uffd_unregister(e->mm, TA, 16 * PG), 0);
	assert_int_equal(nr_vmas(e->mm, TA, TA + 16 * PG), 2);
	assert_int_equal(vma_flags_at(e->mm, TA + 2 * PG), 0);
	/* a registered VMA does not merge with a new neighbour */
	assert_int_equal(smm_uffd_register(e->mm, TA, 8 * PG, MISSING), 0);
	map_at(e->mm, TA + 8 * PG, 2 * PG, RW); /* merges with the next */
	assert_int_equal(nr_vmas(e->mm, TA, TA + 16 * PG), 2);
	assert_int_equal(smm_uffd_unregister(e->mm, TA, 8 * PG), 0);
	assert_int_equal(nr_vmas(e->mm, TA, TA + 16 * PG), 1);
	assert_int_equal(smm_mm_verify(e->mm), 0);
}

/* ---- copy, zeropage ---- */

static void test_copy_errors(void **state)
{
	struct env *e = *state;
	int64_t c;

	map_at(e->mm, TA, 8 * PG, RW);
	assert_int_equal(smm_uffd_register(e->mm, TA + 2 * PG, 4 * PG, MISSING),
			 0);
	fill_src('x');
	c = 77;
	assert_int_equal(smm_uffd_copy(e->mm, TA + 4 * PG, srcpage, PG, 0, &c),
			 0);
	assert_int_equal(c, PG);
	/* a later page mapped: partial, -EAGAIN, the bytes done */
	assert_int_equal(smm_uffd_copy(e->mm, TA + 2 * PG, srcpage, 4 * PG, 0,
				       &c),
			 -EAGAIN);
	assert_int_equal(c, 2 * PG);
	/* the first page mapped */
	assert_int_equal(smm_uffd_copy(e->mm, TA + 4 * PG, srcpage, 2 * PG, 0,
				       &c),
			 -EEXIST);
	assert_int_equal(c, -EEXIST);
	/* not within one registered VMA, not registered, no VMA */
	assert_int_equal(smm_uffd_copy(e->mm, TA + 5 * PG, srcpage, 2 * PG, 0,
				       &c),
			 -ENOENT);
	assert_int_equal(c, -ENOENT);
	assert_int_equal(smm_uffd_copy(e->mm, TA, srcpage, PG, 0, &c), -ENOENT);
	assert_int_equal(smm_uffd_copy(e->mm, TA + 20 * PG, srcpage, PG, 0, &c),
			 -ENOENT);
	/* argument errors leave *copied alone */
	c = 77;
	assert_int_equal(smm_uffd_copy(e->mm, TA + 5 * PG, srcpage, 0, 0, &c),
			 -EINVAL);
	assert_int_equal(smm_uffd_copy(e->mm, TA + 5 * PG + 1, srcpage, PG, 0,
				       &c),
			 -EINVAL);
	assert_int_equal(smm_uffd_copy(e->mm, TA + 5 * PG, srcpage, PG, 4, &c),
			 -EINVAL);
	assert_int_equal(smm_uffd_copy(e->mm, TA + 5 * PG, NULL, PG, 0, &c),
			 -EFAULT);
	assert_int_equal(c, 77);
	/* MODE_WP without WP registration: found in the VMA, copy set */
	assert_int_equal(smm_uffd_copy(e->mm, TA + 5 * PG, srcpage, PG,
				       SMM_UFFD_COPY_MODE_WP, &c),
			 -EINVAL);
	assert_int_equal(c, -EINVAL);
	/* zeropage */
	assert_int_equal(smm_uffd_zeropage(e->mm, TA + 5 * PG, PG, 2, &c),
			 -EINVAL);
	assert_int_equal(smm_uffd_zeropage(e->mm, TA + 5 * PG, PG, 0, &c), 0);
	assert_int_equal(c, PG);
	assert_int_equal(smm_uffd_zeropage(e->mm, TA + 5 * PG, PG, 0, &c),
			 -EEXIST);
	assert_int_equal(c, -EEXIST);
	assert_int_equal(smm_uffd_wake(e->mm, TA, 0), -EINVAL);
	assert_int_equal(smm_uffd_wake(e->mm, TA + 1, PG), -EINVAL);
	assert_int_equal(smm_uffd_wake(e->mm, TA + 40 * PG, PG), 0);
	/* what the pages hold: copies, and the zero page (copied on write) */
	assert_int_equal(peek(e, TA + 2 * PG), 'x');
	assert_int_equal(peek(e, TA + 4 * PG + 100), 'x');
	assert_int_equal(peek(e, TA + 5 * PG), 0);
	struct smm_mm_stats st = mm_stats(e->mm);
	assert_int_equal(st.rss_anon, 3);
	assert_int_equal(st.zero_ptes, 1);
	assert_int_equal(smm_fill(e->cpu, TA + 5 * PG, 'z', 10, NULL), 0);
	assert_int_equal(peek(e, TA + 5 * PG), 'z');
	/* PROT_NONE: copy works, access faults, mprotect shows it */
	assert_int_equal(smm_mprotect(e->mm, TA + 3 * PG, PG, SMM_PROT_NONE),
			 0);
	assert_int_equal(smm_mm_verify(e->mm), 0);
	/* not unregistered by the split: the copied page is there */
	assert_int_equal(smm_mprotect(e->mm, TA + 3 * PG, PG, RW), 0);
	assert_int_equal(peek(e, TA + 3 * PG), 'x');
	assert_int_equal(smm_mm_verify(e->mm), 0);
}

/*
 * Destroy the env's address space while @handler, a thread reading its
 * events, blocks or is between two reads: its read answers -ESRCH. The
 * env's CPU, still switched to the mm, keeps the structure alive until
 * the handler has returned.
 */
static void destroy_with_handler(struct env *e, pthread_t handler)
{
	smm_mm_destroy(e->mm);
	pthread_join(handler, NULL);
	smm_cpu_switch_mm(e->cpu, NULL);
	e->mm = NULL;
}

/* ---- the queue, with a handler thread ---- */

struct handler {
	struct smm_mm *mm;
	int byte;
	bool zero;	      /* zeropage instead of copy */
	bool wp_clear;	      /* WP events: clear the protection */
	atomic_int events;    /* events served */
	atomic_int wp_events; /* of which WP */
	atomic_int write_events;
	atomic_bool stop;
};

static void *handler_thread(void *arg)
{
	struct handler *h = arg;
	struct smm_uffd_msg msg;
	uint8_t buf[4096];

	memset(buf, h->byte, sizeof(buf));
	for (;;) {
		int r = smm_uffd_read(h->mm, &msg, 0);

		if (r == -ESRCH)
			break;
		T_ASSERT(r == 0);
		T_ASSERT(msg.event == SMM_UFFD_EVENT_PAGEFAULT);
		T_ASSERT(!(msg.address & (PG - 1)));
		if (msg.address == 0) /* the stop marker */
			break;
		/* counted before the fault is woken, which then looks */
		atomic_fetch_add(&h->events, 1);
		if (msg.flags & F_WRITE)
			atomic_fetch_add(&h->write_events, 1);
		if (msg.flags & F_WP) {
			atomic_fetch_add(&h->wp_events, 1);
			T_ASSERT(smm_uffd_wp(h->mm, msg.address, PG, 0) == 0);
		} else if (h->zero) {
			r = smm_uffd_zeropage(h->mm, msg.address, PG, 0, NULL);
			T_ASSERT(r == 0 || r == -EEXIST);
		} else {
			r = smm_uffd_copy(h->mm, msg.address, buf, PG, 0, NULL);
			/* -ENOENT: unregistered meanwhile, woken already */
			T_ASSERT(r == 0 || r == -EEXIST || r == -ENOENT);
			if (r == -ENOENT)
				smm_uffd_wake(h->mm, msg.address, PG);
		}
	}
	return NULL;
}

static void test_queue_handler_thread(void **state)
{
	struct env *e = *state;
	struct handler h = { .mm = e->mm, .byte = 0x5a };
	pthread_t t;
	uint64_t fault;

	map_at(e->mm, TA, 32 * PG, RW);
	assert_int_equal(smm_uffd_register(e->mm, TA, 32 * PG, MISSING), 0);
	pthread_create(&t, NULL, handler_thread, &h);
	for (int i = 0; i < 16; i++)
		assert_int_equal(peek(e, TA + i * PG + 7), 0x5a);
	for (int i = 16; i < 32; i++)
		assert_int_equal(smm_fill(e->cpu, TA + i * PG, 1, 8, &fault),
				 0);
	assert_int_equal(peek(e, TA + 20 * PG), 1);
	assert_int_equal(peek(e, TA + 20 * PG + 8), 0x5a);
	assert_int_equal(atomic_load(&h.events), 32);
	assert_int_equal(atomic_load(&h.write_events), 16);
	/* served pages fault no more; DONTNEED makes them missing again */
	assert_int_equal(smm_madvise(e->mm, TA, 4 * PG, SMM_MADV_DONTNEED), 0);
	assert_int_equal(peek(e, TA + 3 * PG), 0x5a);
	assert_int_equal(atomic_load(&h.events), 33);
	/* zeropage resolution */
	h.zero = true;
	assert_int_equal(peek(e, TA + 2 * PG), 0);
	assert_int_equal(atomic_load(&h.events), 34);
	assert_int_equal(smm_mm_verify(e->mm), 0);
	destroy_with_handler(e, t);
}

/* ---- the callback ---- */

struct cb_state {
	int calls, writes, fail;
	uint64_t last;
};

static int callback(struct smm_mm *mm, const struct smm_uffd_msg *msg,
		    void *arg)
{
	struct cb_state *s = arg;
	int r;

	s->calls++;
	s->last = msg->address;
	if (msg->flags & F_WRITE)
		s->writes++;
	if (s->fail)
		return -1;
	if (msg->flags & F_WP)
		return smm_uffd_wp(mm, msg->address, PG, 0);
	r = smm_uffd_copy(mm, msg->address, srcpage, PG, 0, NULL);
	return r == -EEXIST ? 0 : r;
}

static void test_callback(void **state)
{
	struct env *e = *state;
	struct cb_state s = { 0 };
	uint64_t fault, v = 42;
	struct smm_page *pg;

	fill_src('c');
	map_at(e->mm, TA, 8 * PG, RW);
	assert_int_equal(smm_uffd_register(e->mm, TA, 8 * PG, MISSING), 0);
	assert_int_equal(smm_uffd_set_handler(e->mm, callback, &s), 0);
	assert_int_equal(peek(e, TA + PG + 5), 'c');
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.last, TA + PG);
	assert_int_equal(smm_write(e->cpu, TA + 3 * PG + 8, &v, 8, NULL), 0);
	assert_int_equal(s.calls, 2);
	assert_int_equal(s.writes, 1);
	assert_int_equal(peek(e, TA + 3 * PG), 'c');
	/* an access spanning two missing pages: two events */
	uint8_t buf[16];
	assert_int_equal(smm_read(e->cpu, TA + 5 * PG - 8, buf, 16, NULL), 0);
	assert_int_equal(s.calls, 4);
	/* slow GUP through a missing page */
	assert_int_equal(smm_get_user_pages(e->mm, TA + 6 * PG, 1, 0, &pg), 1);
	assert_int_equal(((uint8_t *)smm_page_address(pg))[0], 'c');
	smm_put_page(pg);
	assert_int_equal(s.calls, 5);
	/* a failing callback: a bus error */
	s.fail = 1;
	assert_int_equal(smm_read(e->cpu, TA + 7 * PG + 4, buf, 1, &fault),
			 -ENXIO);
	assert_int_equal(fault, TA + 7 * PG + 4);
	assert_int_equal(smm_pin_user_pages(e->mm, TA + 7 * PG, 1, 0, &pg),
			 -ENXIO);
	/* populate may not wait: -EFAULT */
	assert_int_equal(smm_madvise(e->mm, TA + 7 * PG, PG,
				     SMM_MADV_POPULATE_READ),
			 -EFAULT);
	s.fail = 0;
	/* back to the queue: NONBLOCK read is empty */
	assert_int_equal(smm_uffd_set_handler(e->mm, NULL, NULL), 0);
	struct smm_uffd_msg msg;
	assert_int_equal(smm_uffd_read(e->mm, &msg, SMM_UFFD_NONBLOCK),
			 -EAGAIN);
	assert_int_equal(smm_mm_verify(e->mm), 0);
}

/* ---- DONTWAKE and wake; unregister wakes ---- */

struct toucher {
	struct smm_pool *pool;
	struct smm_mm *mm;
	uint64_t addr;
	bool write;
	int ret;
	uint8_t seen;
	atomic_bool switched, done;
};

static void *touch_thread(void *arg)
{
	struct toucher *t = arg;
	struct smm_cpu *cpu = smm_cpu_attach(t->pool);
	uint8_t b = 'w';

	smm_cpu_switch_mm(cpu, t->mm);
	atomic_store(&t->switched, true);
	if (t->write)
		t->ret = smm_write(cpu, t->addr, &b, 1, NULL);
	else
		t->ret = smm_read(cpu, t->addr, &t->seen, 1, NULL);
	atomic_store(&t->done, true);
	smm_cpu_switch_mm(cpu, NULL);
	smm_cpu_detach(cpu);
	return NULL;
}

static void start_toucher(struct env *e, struct toucher *t, pthread_t *th,
			  uint64_t addr, bool write)
{
	memset(t, 0, sizeof(*t));
	t->pool = e->pool;
	t->mm = e->mm;
	t->addr = addr;
	t->write = write;
	pthread_create(th, NULL, touch_thread, t);
}

static void test_dontwake_wake(void **state)
{
	struct env *e = *state;
	struct smm_uffd_msg msg;
	struct toucher t;
	pthread_t th;
	int64_t c;

	fill_src('d');
	map_at(e->mm, TA, 8 * PG, RW);
	assert_int_equal(smm_uffd_register(e->mm, TA, 8 * PG, MISSING), 0);
	start_toucher(e, &t, &th, TA + 2 * PG + 9, false);
	assert_int_equal(smm_uffd_read(e->mm, &msg, 0), 0);
	assert_int_equal(msg.address, TA + 2 * PG);
	assert_int_equal(msg.flags, 0);
	assert_int_equal(smm_uffd_copy(e->mm, TA + 2 * PG, srcpage, PG,
				       SMM_UFFD_COPY_MODE_DONTWAKE, &c),
			 0);
	usleep(30000);
	assert_false(atomic_load(&t.done)); /* still waiting */
	/* a wake elsewhere does not wake it */
	assert_int_equal(smm_uffd_wake(e->mm, TA + 3 * PG, PG), 0);
	usleep(10000);
	assert_false(atomic_load(&t.done));
	assert_int_equal(smm_uffd_wake(e->mm, TA + 2 * PG, PG), 0);
	pthread_join(th, NULL);
	assert_int_equal(t.ret, 0);
	assert_int_equal(t.seen, 'd');

	/* woken without a page: faults again, a new event */
	start_toucher(e, &t, &th, TA + 4 * PG, true);
	assert_int_equal(smm_uffd_read(e->mm, &msg, 0), 0);
	assert_int_equal(msg.flags, F_WRITE);
	assert_int_equal(smm_uffd_wake(e->mm, TA, 8 * PG), 0);
	assert_int_equal(smm_uffd_read(e->mm, &msg, 0), 0);
	assert_int_equal(msg.address, TA + 4 * PG);
	/* unregister wakes it, and its fault is then an ordinary one */
	assert_int_equal(smm_uffd_unregister(e->mm, TA + 4 * PG, PG), 0);
	pthread_join(th, NULL);
	assert_int_equal(t.ret, 0);
	assert_int_equal(peek(e, TA + 4 * PG), 'w');
	assert_int_equal(smm_mm_verify(e->mm), 0);
}

/* ---- the faulting thread's poll (smm_uffd_set_poll) ---- */

/* Join @th within 5 s, or fail: a fault whose wake was lost sleeps for
 * good (the planted bug build/bug9 is caught by the uffd torture). */
static void join_within(pthread_t th)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	if (pthread_timedjoin_np(th, NULL, &ts))
		fail_msg("a faulting thread was not woken within 5 s");
}

static void test_poll(void **state)
{
	struct env *e = *state;
	struct handler h = { .mm = e->mm, .byte = 0x6b };
	struct smm_uffd_msg msg;
	struct toucher t;
	pthread_t th, ht;

	assert_int_equal(smm_uffd_set_poll(NULL, 0), -EINVAL);
	assert_int_equal(smm_uffd_set_poll(e->mm, SMM_UFFD_POLL_MAX_NS + 1),
			 -EINVAL);
	assert_int_equal(smm_uffd_set_poll(e->mm, SMM_UFFD_POLL_MAX_NS), 0);
	fill_src('p');
	map_at(e->mm, TA, 64 * PG, RW);
	assert_int_equal(smm_uffd_register(e->mm, TA, 64 * PG, MISSING), 0);

	/*
	 * A slow handler: the fault polls 20 us, runs out, sleeps, and the
	 * copy 5 ms later wakes it. A wake before any sleep: the copy comes
	 * while the fault still polls its 1 ms (reads are immediate here).
	 */
	assert_int_equal(smm_uffd_set_poll(e->mm, 20000), 0);
	start_toucher(e, &t, &th, TA + 3 * PG + 1, false);
	assert_int_equal(smm_uffd_read(e->mm, &msg, 0), 0);
	assert_int_equal(msg.address, TA + 3 * PG);
	usleep(5000);
	assert_false(atomic_load(&t.done));
	assert_int_equal(
		smm_uffd_copy(e->mm, TA + 3 * PG, srcpage, PG, 0, NULL), 0);
	join_within(th);
	assert_int_equal(t.ret, 0);
	assert_int_equal(t.seen, 'p');
	assert_int_equal(smm_uffd_set_poll(e->mm, 1000000), 0);
	start_toucher(e, &t, &th, TA + 4 * PG, true);
	assert_int_equal(smm_uffd_read(e->mm, &msg, 0), 0);
	assert_int_equal(
		smm_uffd_copy(e->mm, TA + 4 * PG, srcpage, PG, 0, NULL), 0);
	join_within(th);
	assert_int_equal(t.ret, 0);
	assert_int_equal(peek(e, TA + 4 * PG), 'w');
	/* woken by unregister while polling, and while asleep */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(smm_uffd_set_poll(e->mm, i ? 0 : 1000000), 0);
		start_toucher(e, &t, &th, TA + (5 + i) * PG, false);
		assert_int_equal(smm_uffd_read(e->mm, &msg, 0), 0);
		if (i)
			usleep(2000);
		assert_int_equal(smm_uffd_unregister(e->mm, msg.address, PG),
				 0);
		join_within(th);
		assert_int_equal(t.ret, 0);
		assert_int_equal(t.seen, 0); /* an ordinary fault: zeroes */
	}
	/* a handler thread serving 48 pages to a polling fault */
	assert_int_equal(smm_uffd_set_poll(e->mm, 50000), 0);
	pthread_create(&ht, NULL, handler_thread, &h);
	for (int i = 16; i < 64; i++)
		assert_int_equal(peek(e, TA + i * PG + 9), 0x6b);
	assert_int_equal(atomic_load(&h.events), 48);
	assert_int_equal(smm_mm_verify(e->mm), 0);
	destroy_with_handler(e, ht);
}

/* ---- write-protect ---- */

static void test_wp(void **state)
{
	struct env *e = *state;
	struct smm_uffd_msg msg;
	struct toucher t;
	pthread_t th;
	int64_t c;

	map_at(e->mm, TA, 8 * PG, RW);
	assert_int_equal(smm_fill(e->cpu, TA, 'a', 8 * PG, NULL), 0);
	assert_int_equal(smm_uffd_wp(e->mm, TA, PG, SMM_UFFD_WP_MODE_WP),
			 -ENOENT);
	assert_int_equal(smm_uffd_wp(e->mm, TA + 20 * PG, PG, 0), -ENOENT);
	assert_int_equal(smm_uffd_register(e->mm, TA, 4 * PG, WPMODE), 0);
	assert_int_equal(smm_uffd_wp(e->mm, TA, PG, 3), -EINVAL);
	assert_int_equal(smm_uffd_wp(e->mm, TA, PG, 4), -EINVAL);
	assert_int_equal(smm_uffd_wp(e->mm, TA, 8 * PG, SMM_UFFD_WP_MODE_WP),
			 -ENOENT); /* runs into an unregistered VMA */
	assert_int_equal(smm_uffd_wp(e->mm, TA, 4 * PG, SMM_UFFD_WP_MODE_WP),
			 0);
	/* reads go through; mprotect does not make it writable */
	assert_int_equal(peek(e, TA + PG), 'a');
	assert_int_equal(smm_mprotect(e->mm, TA, 4 * PG, RO), 0);
	assert_int_equal(smm_mprotect(e->mm, TA, 4 * PG, RW), 0);
	/* a store: a WP event; clearing the protection wakes it */
	start_toucher(e, &t, &th, TA + PG + 3, true);
	assert_int_equal(smm_uffd_read(e->mm, &msg, 0), 0);
	assert_int_equal(msg.address, TA + PG);
	assert_int_equal(msg.flags, F_WRITE | F_WP);
	usleep(10000);
	assert_false(atomic_load(&t.done));
	assert_int_equal(smm_uffd_wp(e->mm, TA + PG, PG, 0), 0);
	pthread_join(th, NULL);
	assert_int_equal(t.ret, 0);
	assert_int_equal(peek(e, TA + PG + 3), 'w');
	assert_int_equal(peek(e, TA + PG + 4), 'a');
	/* GUP for write raises it too, through the callback */
	struct cb_state s = { 0 };
	struct smm_page *pg;
	assert_int_equal(smm_uffd_set_handler(e->mm, callback, &s), 0);
	assert_int_equal(smm_pin_user_pages(e->mm, TA + 2 * PG, 1,
					    SMM_FOLL_WRITE, &pg),
			 1);
	smm_unpin_user_pages(&pg, 1);
	assert_int_equal(s.calls, 1);
	/* a read pin does not */
	assert_int_equal(smm_pin_user_pages(e->mm, TA + 3 * PG, 1, 0, &pg), 1);
	smm_unpin_user_pages(&pg, 1);
	assert_int_equal(s.calls, 1);
	/* fork: the child is not registered and writes freely */
	struct smm_mm *child = smm_fork(e->mm);
	assert_non_null(child);
	assert_int_equal(vma_flags_at(child, TA), 0);
	assert_int_equal(smm_cpu_switch_mm(e->cpu, child), 0);
	assert_int_equal(smm_fill(e->cpu, TA + 3 * PG, 'k', 1, NULL), 0);
	assert_int_equal(smm_mm_verify(child), 0);
	assert_int_equal(smm_cpu_switch_mm(e->cpu, e->mm), 0);
	smm_mm_destroy(child);
	assert_int_equal(s.calls, 1);
	assert_int_equal(smm_fill(e->cpu, TA + 3 * PG, 'p', 1, NULL), 0);
	assert_int_equal(s.calls, 2); /* the parent still is */
	/* copy with MODE_WP: mapped write-protected */
	assert_int_equal(smm_uffd_register(e->mm, TA + 4 * PG, 2 * PG,
					   MISSING | WPMODE),
			 0);
	assert_int_equal(
		smm_madvise(e->mm, TA + 4 * PG, 2 * PG, SMM_MADV_DONTNEED), 0);
	fill_src('q');
	assert_int_equal(smm_uffd_copy(e->mm, TA + 4 * PG, srcpage, PG,
				       SMM_UFFD_COPY_MODE_WP, &c),
			 0);
	assert_int_equal(peek(e, TA + 4 * PG), 'q');
	assert_int_equal(s.calls, 2);
	assert_int_equal(smm_fill(e->cpu, TA + 4 * PG, 'r', 1, NULL), 0);
	assert_int_equal(s.calls, 3);
	assert_int_equal(peek(e, TA + 4 * PG), 'r');
	/* unregister clears the protection: no more events */
	assert_int_equal(smm_uffd_wp(e->mm, TA, 4 * PG, SMM_UFFD_WP_MODE_WP),
			 0);
	assert_int_equal(smm_uffd_unregister(e->mm, TA, 8 * PG), 0);
	assert_int_equal(smm_fill(e->cpu, TA, 'u', 4 * PG, NULL), 0);
	assert_int_equal(s.calls, 3);
	assert_int_equal(smm_mm_verify(e->mm), 0);
}

/* ---- fork and mremap drop registration ---- */

static void test_fork_mremap(void **state)
{
	struct env *e = *state;
	struct cb_state s = { 0 };

	fill_src('f');
	map_at(e->mm, TA, 8 * PG, RW);
	assert_int_equal(smm_uffd_register(e->mm, TA, 8 * PG, MISSING | WPMODE),
			 0);
	assert_int_equal(smm_uffd_set_handler(e->mm, callback, &s), 0);
	assert_int_equal(peek(e, TA), 'f');
	struct smm_mm *child = smm_fork(e->mm);
	assert_non_null(child);
	assert_int_equal(vma_flags_at(child, TA), 0);
	assert_int_equal(smm_cpu_switch_mm(e->cpu, child), 0);
	assert_int_equal(peek(e, TA + PG), 0); /* ordinary: zero */
	assert_int_equal(peek(e, TA), 'f');
	assert_int_equal(smm_cpu_switch_mm(e->cpu, e->mm), 0);
	smm_mm_destroy(child);
	assert_int_equal(s.calls, 1);
	/* a move: the new VMA is not registered, grown in place it stays */
	assert_int_equal(smm_uffd_wp(e->mm, TA, PG, SMM_UFFD_WP_MODE_WP), 0);
	assert_int_equal(smm_mremap(e->mm, TA, 4 * PG, 4 * PG,
				    SMM_MREMAP_MAYMOVE | SMM_MREMAP_FIXED,
				    TA + 64 * PG),
			 (int64_t)(TA + 64 * PG));
	assert_int_equal(vma_flags_at(e->mm, TA + 64 * PG), 0);
	assert_int_equal(smm_fill(e->cpu, TA + 64 * PG, 'm', 1, NULL), 0);
	assert_int_equal(peek(e, TA + 65 * PG), 0);
	assert_int_equal(s.calls, 1);
	assert_int_equal(smm_mremap(e->mm, TA + 4 * PG, 4 * PG, 8 * PG, 0, 0),
			 (int64_t)(TA + 4 * PG));
	assert_int_equal(vma_flags_at(e->mm, TA + 11 * PG),
			 SMM_VM_UFFD_MISSING | SMM_VM_UFFD_WP);
	assert_int_equal(peek(e, TA + 11 * PG), 'f');
	assert_int_equal(s.calls, 2);
	assert_int_equal(smm_mm_verify(e->mm), 0);
}

/* ---- fault injection ---- */

static void test_fault_injection(void **state)
{
	struct env *e = *state;
	struct smm_mm_stats st0, st;
	int64_t c;

	fill_src('i');
	map_at(e->mm, TA, 64 * PG, RW);
	for (unsigned long n = 1; n < 12; n++) {
		int r;

		smm_pool_inject_failure(e->pool, n);
		r = smm_uffd_register(e->mm, TA + 8 * PG, 8 * PG, MISSING);
		smm_pool_inject_failure(e->pool, 0);
		if (r) {
			assert_int_equal(r, -ENOMEM);
			assert_int_equal(nr_vmas(e->mm, TA, TA + 64 * PG), 1);
			continue;
		}
		assert_int_equal(nr_vmas(e->mm, TA, TA + 64 * PG), 3);
		smm_pool_inject_failure(e->pool, n);
		r = smm_uffd_unregister(e->mm, TA + 8 * PG, 8 * PG);
		smm_pool_inject_failure(e->pool, 0);
		if (r) {
			assert_int_equal(r, -ENOMEM);
			assert_int_equal(nr_vmas(e->mm, TA, TA + 64 * PG), 3);
			assert_int_equal(smm_uffd_unregister(e->mm, TA + 8 * PG,
							     8 * PG),
					 0);
		}
		assert_int_equal(nr_vmas(e->mm, TA, TA + 64 * PG), 1);
	}
	assert_int_equal(smm_uffd_register(e->mm, TA, 64 * PG, MISSING), 0);
	for (unsigned long n = 1; n < 12; n++) {
		int r;

		assert_int_equal(
			smm_madvise(e->mm, TA, 64 * PG, SMM_MADV_DONTNEED), 0);
		st0 = mm_stats(e->mm);
		smm_pool_inject_failure(e->pool, n);
		r = smm_uffd_copy(e->mm, TA, srcpage, 4 * PG, 0, &c);
		smm_pool_inject_failure(e->pool, 0);
		st = mm_stats(e->mm);
		assert_int_equal(smm_mm_verify(e->mm), 0);
		if (r == -ENOMEM) {
			assert_int_equal(c, -ENOMEM);
			assert_int_equal(st.rss_anon, st0.rss_anon);
		} else if (r == -EAGAIN) {
			assert_true(c > 0 && c < 4 * (int64_t)PG);
			assert_int_equal(st.rss_anon, c / PG);
		} else {
			assert_int_equal(r, 0);
			assert_int_equal(st.rss_anon, 4);
		}
	}
}

/* ---- races ---- */

static unsigned int rnd(unsigned int *s)
{
	*s = *s * 1103515245 + 12345;
	return *s >> 8;
}

#define RACE_PAGES 32

struct race {
	struct smm_pool *pool;
	struct smm_mm *mm;
	atomic_bool stop;
	atomic_long accesses;
	atomic_int bad;
	unsigned int seed;
};

/*
 * A worker stores its tag in its own word of each page and reads the
 * rest: each byte it reads is the handler's (0x5a), zero (the range was
 * unregistered and the fault was ordinary, or DONTNEED), or a worker's
 * tag.
 */
static void *race_worker(void *arg)
{
	struct race *r = arg;
	struct smm_cpu *cpu = smm_cpu_attach(r->pool);
	unsigned int seed = (unsigned int)(uintptr_t)cpu ^ r->seed;
	int id = (int)(rnd(&seed) % 7) + 1;

	smm_cpu_switch_mm(cpu, r->mm);
	while (!atomic_load(&r->stop)) {
		uint64_t a = TA + (rnd(&seed) % RACE_PAGES) * PG;
		uint8_t b;
		int err;

		if (rnd(&seed) & 1) {
			b = (uint8_t)id;
			err = smm_write(cpu, a + 64 + id, &b, 1, NULL);
		} else {
			err = smm_read(cpu, a + (rnd(&seed) % 64), &b, 1, NULL);
			if (!err && b != 0x5a && b != 0)
				atomic_fetch_add(&r->bad, 1);
		}
		if (err)
			atomic_fetch_add(&r->bad, 1);
		atomic_fetch_add(&r->accesses, 1);
	}
	smm_cpu_switch_mm(cpu, NULL);
	smm_cpu_detach(cpu);
	return NULL;
}

static void test_race_unregister(void **state)
{
	struct env *e = *state;
	struct race r = { .pool = e->pool, .mm = e->mm, .seed = 1 };
	struct handler h = { .mm = e->mm, .byte = 0x5a };
	pthread_t w[3], ht;
	unsigned int seed = 7;

	smm_debug_race_yield(20);
	map_at(e->mm, TA, RACE_PAGES * PG, RW);
	pthread_create(&ht, NULL, handler_thread, &h);
	for (int i = 0; i < 3; i++)
		pthread_create(&w[i], NULL, race_worker, &r);
	for (int it = 0; it < 400; it++) {
		uint64_t a = TA + (rnd(&seed) % RACE_PAGES) * PG;
		uint64_t n = 1 + rnd(&seed) % (RACE_PAGES - (a - TA) / PG);

		switch (rnd(&seed) % 5) {
		case 0:
			assert_int_equal(smm_uffd_register(e->mm, a, n * PG,
							   MISSING),
					 0);
			break;
		case 1:
			assert_int_equal(smm_uffd_unregister(e->mm, a, n * PG),
					 0);
			break;
		case 2:
			assert_int_equal(smm_madvise(e->mm, a, n * PG,
						     SMM_MADV_DONTNEED),
					 0);
			break;
		case 3:
			assert_int_equal(
				smm_uffd_set_poll(e->mm,
						  rnd(&seed) % 2 ?
							  0 :
							  rnd(&seed) % 200000),
				0);
			break;
		default:
			usleep(rnd(&seed) % 200);
		}
		if (it % 50 == 0)
			assert_int_equal(smm_mm_verify(e->mm), 0);
	}
	/* no fault may stay waiting: unregister everything */
	assert_int_equal(smm_uffd_unregister(e->mm, TA, RACE_PAGES * PG), 0);
	atomic_store(&r.stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(w[i], NULL);
	smm_debug_race_yield(0);
	assert_int_equal(atomic_load(&r.bad), 0);
	assert_true(atomic_load(&r.accesses) > 0);
	assert_int_equal(smm_mm_verify(e->mm), 0);
	destroy_with_handler(e, ht);
}

/* Faults waiting (read or not) when the address space is destroyed. */
static void test_race_destroy(void **state)
{
	struct env *e = *state;
	unsigned int seed = 3;

	for (int it = 0; it < 60; it++) {
		struct smm_mm *mm = new_mm(e->pool, 0);
		struct toucher t[4];
		pthread_t th[4];
		struct smm_uffd_msg msg;
		int nt = 1 + rnd(&seed) % 4, nread = rnd(&seed) % (nt + 1);

		map_at(mm, TA, 8 * PG, RW);
		assert_int_equal(smm_uffd_register(mm, TA, 8 * PG, MISSING), 0);
		/* asleep, or polling (up to 1 ms) when destroy comes */
		assert_int_equal(
			smm_uffd_set_poll(
				mm, rnd(&seed) % 2 ? 0 : rnd(&seed) % 1000000),
			0);
		for (int i = 0; i < nt; i++) {
			memset(&t[i], 0, sizeof(t[i]));
			t[i].pool = e->pool;
			t[i].mm = mm;
			t[i].addr = TA + (rnd(&seed) % 8) * PG;
			t[i].write = rnd(&seed) & 1;
			pthread_create(&th[i], NULL, touch_thread, &t[i]);
		}
		/* each holds the mm before it may be destroyed */
		for (int i = 0; i < nt; i++)
			while (!atomic_load(&t[i].switched))
				usleep(100);
		for (int i = 0; i < nread; i++)
			assert_int_equal(smm_uffd_read(mm, &msg, 0), 0);
		if (rnd(&seed) & 1)
			usleep(rnd(&seed) % 2000);
		smm_mm_destroy(mm);
		for (int i = 0; i < nt; i++) {
			pthread_join(th[i], NULL);
			/* woken by destroy, or faulted after it */
			assert_true(t[i].ret == -ESRCH || t[i].ret == -EFAULT);
		}
	}
}

/* A reader blocked in smm_uffd_read() when the mm is destroyed. */
static void *reader_thread(void *arg)
{
	struct smm_uffd_msg msg;

	return (void *)(intptr_t)smm_uffd_read(arg, &msg, 0);
}

static void test_destroy_reader(void **state)
{
	struct env *e = *state;
	struct smm_mm *mm = new_mm(e->pool, 0);
	pthread_t t;
	void *ret;

	pthread_create(&t, NULL, reader_thread, mm);
	usleep(20000);
	smm_mm_destroy(mm);
	pthread_join(t, &ret);
	assert_int_equal((intptr_t)ret, -ESRCH);
}

/* ---- populate: mlock and MADV_POPULATE_* wait for the handler ---- */

enum {
	POP_MLOCK,
	POP_READ,
	POP_WRITE,
	NR_POP
};

static int populate(struct smm_mm *mm, uint64_t a, uint64_t len, int how)
{
	if (how == POP_MLOCK)
		return smm_mlock(mm, a, len);
	return smm_madvise(mm, a, len,
			   how == POP_READ ? SMM_MADV_POPULATE_READ :
					     SMM_MADV_POPULATE_WRITE);
}

/*
 * Each populate over missing pages raises an event per page, which the
 * handler (a thread reading the queue, then a callback) resolves, and
 * succeeds with every page resident and holding the handler's bytes;
 * populating again raises nothing. mlock of private writable memory and
 * POPULATE_WRITE fault for writing, POPULATE_READ for reading.
 */
static void test_populate_waits(void **state)
{
	struct env *e = *state;
	struct handler h = { .mm = e->mm, .byte = 0x33 };
	struct cb_state cb = { 0 };
	pthread_t t;

	map_at(e->mm, TA, 2 * NR_POP * 16 * PG, RW);
	assert_int_equal(
		smm_uffd_register(e->mm, TA, 2 * NR_POP * 16 * PG, MISSING), 0);
	pthread_create(&t, NULL, handler_thread, &h);
	for (int how = 0; how < NR_POP; how++) {
		uint64_t a = TA + (uint64_t)how * 16 * PG;
		int before = atomic_load(&h.events),
		    writes = atomic_load(&h.write_events);

		assert_int_equal(populate(e->mm, a, 16 * PG, how), 0);
		assert_int_equal(atomic_load(&h.events) - before, 16);
		assert_int_equal(atomic_load(&h.write_events) - writes,
				 how == POP_READ ? 0 : 16);
		assert_int_equal(resident(e->mm, a, 16 * PG), 16);
		for (int i = 0; i < 16; i++)
			assert_int_equal(peek(e, a + i * PG + 9), 0x33);
		assert_int_equal(populate(e->mm, a, 16 * PG, how), 0);
		assert_int_equal(atomic_load(&h.events) - before, 16);
	}
	fill_src('c');
	assert_int_equal(smm_uffd_set_handler(e->mm, callback, &cb), 0);
	for (int how = 0; how < NR_POP; how++) {
		uint64_t a = TA + (uint64_t)(NR_POP + how) * 16 * PG;

		cb.calls = cb.writes = 0;
		assert_int_equal(populate(e->mm, a, 16 * PG, how), 0);
		assert_int_equal(cb.calls, 16);
		assert_int_equal(cb.writes, how == POP_READ ? 0 : 16);
		assert_int_equal(resident(e->mm, a, 16 * PG), 16);
		assert_int_equal(peek(e, a + 15 * PG), 'c');
	}
	/* A callback that fails is a bus error: -EFAULT, -ENOMEM for
	 * mlock (__mlock_posix_error_return()). */
	cb.fail = 1;
	assert_int_equal(smm_madvise(e->mm, TA + 16 * PG, 16 * PG,
				     SMM_MADV_DONTNEED),
			 0);
	assert_int_equal(populate(e->mm, TA + 16 * PG, 16 * PG, POP_READ),
			 -EFAULT);
	assert_int_equal(populate(e->mm, TA + 16 * PG, 16 * PG, POP_MLOCK),
			 -ENOMEM);
	assert_int_equal(resident(e->mm, TA + 16 * PG, 16 * PG), 0);
	assert_int_equal(smm_mm_verify(e->mm), 0);
	destroy_with_handler(e, t);
}

/*
 * The range changes while populate waits: on the first event the handler
 * unmaps it (and lets RCU free the VMA before it wakes the fault), or
 * mprotects it and resolves that page and those after it. Populate must
 * look the address up again after the wait. Linux 6.18 answers (a C
 * program doing the same with userfaultfd; the first page present):
 *
 *	change	   mlock		    POPULATE_READ   POPULATE_WRITE
 *	munmap	   0 (a hole is skipped)    -ENOMEM	    -ENOMEM
 *	read-only  0: later faults reads    0		    -EINVAL
 *	PROT_NONE  -ENOMEM (EFAULT)	    -EINVAL	    -EINVAL
 *
 * Every page is resident after a 0; after an error, the page that was
 * present and the one the handler resolved. Going on with the VMA held
 * before the wait (build/bug11) reads the freed VMA.
 */
enum {
	CHG_UNMAP,
	CHG_RDONLY,
	CHG_NONE,
	NR_CHG
};

struct changer {
	struct smm_mm *mm;
	uint64_t addr, len;
	int change; /* CHG_* for the next populate, set before it */
	atomic_int events, write_events;
};

static void *changer_thread(void *arg)
{
	static const int prot[NR_CHG] = { 0, SMM_PROT_READ, SMM_PROT_NONE };
	struct changer *c = arg;
	struct smm_uffd_msg msg;
	uint8_t buf[4096];

	memset(buf, 7, sizeof(buf));
	while (smm_uffd_read(c->mm, &msg, 0) == 0) {
		bool first = atomic_fetch_add(&c->events, 1) == 0;

		if (msg.flags & F_WRITE)
			atomic_fetch_add(&c->write_events, 1);
		if (first && c->change == CHG_UNMAP) {
			T_ASSERT(smm_munmap(c->mm, c->addr, c->len) == 0);
			usleep(50000); /* grace periods: the VMA is freed */
			T_ASSERT(smm_uffd_wake(c->mm, msg.address, PG) == 0);
			continue;
		}
		if (first)
			T_ASSERT(smm_mprotect(c->mm, c->addr, c->len,
					      prot[c->change]) == 0);
		T_ASSERT(smm_uffd_copy(c->mm, msg.address, buf, PG, 0, NULL) ==
			 0);
	}
	return NULL;
}

static void test_populate_changed(void **state)
{
	/* [change][how]: the answer, events, write events, pages resident
	 * (none left to count after munmap) */
	static const struct {
		int ret, events, writes, resident;
	} want[NR_CHG][NR_POP] = {
		[CHG_UNMAP] = { { 0, 1, 1, -1 },
				{ -ENOMEM, 1, 0, -1 },
				{ -ENOMEM, 1, 1, -1 } },
		[CHG_RDONLY] = { { 0, 3, 1, 4 },
				 { 0, 3, 0, 4 },
				 { -EINVAL, 1, 1, 2 } },
		[CHG_NONE] = { { -ENOMEM, 1, 1, 2 },
			       { -EINVAL, 1, 0, 2 },
			       { -EINVAL, 1, 1, 2 } },
	};
	struct env *e = *state;
	struct changer c = { .mm = e->mm, .addr = TA, .len = 4 * PG };
	pthread_t t;
	uint8_t one = 1;

	pthread_create(&t, NULL, changer_thread, &c);
	for (int chg = 0; chg < NR_CHG; chg++) {
		for (int how = 0; how < NR_POP; how++) {
			/* the first page present: the wait comes at the
			 * second */
			map_at(e->mm, TA, 4 * PG, RW);
			assert_int_equal(smm_write(e->cpu, TA, &one, 1, NULL),
					 0);
			assert_int_equal(smm_uffd_register(e->mm, TA, 4 * PG,
							   MISSING),
					 0);
			c.change = chg;
			atomic_store(&c.events, 0);
			atomic_store(&c.write_events, 0);
			assert_int_equal(populate(e->mm, TA, 4 * PG, how),
					 want[chg][how].ret);
			assert_int_equal(atomic_load(&c.events),
					 want[chg][how].events);
			assert_int_equal(atomic_load(&c.write_events),
					 want[chg][how].writes);
			if (chg == CHG_UNMAP) {
				assert_int_equal(
					nr_vmas(e->mm, TA, TA + 4 * PG), 0);
				continue;
			}
			assert_int_equal(resident(e->mm, TA, 4 * PG),
					 want[chg][how].resident);
			if (chg == CHG_RDONLY && want[chg][how].ret == 0) {
				assert_int_equal(peek(e, TA), 1);
				assert_int_equal(peek(e, TA + 3 * PG), 7);
			}
			assert_int_equal(smm_mm_verify(e->mm), 0);
			assert_int_equal(smm_munmap(e->mm, TA, 4 * PG), 0);
		}
	}
	destroy_with_handler(e, t);
}

/*
 * Populate waiting for a handler that never answers, in a thread that is
 * not a CPU of the address space, when the address space is destroyed:
 * woken, it answers -ESRCH and touches the freed mm no more (ASan).
 */
struct pop_thread {
	struct smm_mm *mm;
	int how, ret;
};

static void *pop_thread(void *arg)
{
	struct pop_thread *p = arg;

	p->ret = populate(p->mm, TA, 4 * PG, p->how);
	return NULL;
}

static void test_populate_destroy(void **state)
{
	struct env *e = *state;

	for (int how = 0; how < NR_POP; how++) {
		struct smm_mm *mm = new_mm(e->pool, 0);
		struct pop_thread p = { .mm = mm, .how = how };
		struct smm_uffd_msg msg;
		pthread_t t;

		map_at(mm, TA, 4 * PG, RW);
		assert_int_equal(smm_uffd_register(mm, TA, 4 * PG, MISSING), 0);
		pthread_create(&t, NULL, pop_thread, &p);
		/* its event read: the populate is waiting */
		assert_int_equal(smm_uffd_read(mm, &msg, 0), 0);
		assert_int_equal(msg.address, TA);
		smm_mm_destroy(mm);
		join_within(t);
		assert_int_equal(p.ret, -ESRCH);
	}
}

/* Callback mode, many threads faulting the same pages: one copy wins,
 * the others see -EEXIST; every page holds the copy, counted once. */
struct same {
	struct smm_pool *pool;
	struct smm_mm *mm;
	pthread_barrier_t *bar;
	int bad;
};

static int copy_cb(struct smm_mm *mm, const struct smm_uffd_msg *msg, void *arg)
{
	int r = smm_uffd_copy(mm, msg->address, srcpage, PG, 0, NULL);

	return r == 0 || r == -EEXIST ? 0 : r;
}

static void *same_thread(void *arg)
{
	struct same *s = arg;
	struct smm_cpu *cpu = smm_cpu_attach(s->pool);

	smm_cpu_switch_mm(cpu, s->mm);
	pthread_barrier_wait(s->bar);
	for (int i = 0; i < RACE_PAGES; i++) {
		uint8_t b;

		if (smm_read(cpu, TA + i * PG + 11, &b, 1, NULL) || b != 'S')
			s->bad++;
	}
	smm_cpu_switch_mm(cpu, NULL);
	smm_cpu_detach(cpu);
	return NULL;
}

static void test_race_copies(void **state)
{
	struct env *e = *state;
	pthread_barrier_t bar;

	fill_src('S');
	smm_debug_race_yield(100);
	for (int it = 0; it < 40; it++) {
		struct smm_mm *mm = new_mm(e->pool, 0);
		struct same s[3];
		pthread_t t[3];

		pthread_barrier_init(&bar, NULL, 3);
		map_at(mm, TA, RACE_PAGES * PG, RW);
		assert_int_equal(
			smm_uffd_register(mm, TA, RACE_PAGES * PG, MISSING), 0);
		assert_int_equal(smm_uffd_set_handler(mm, copy_cb, NULL), 0);
		for (int i = 0; i < 3; i++) {
			s[i] = (struct same){ e->pool, mm, &bar, 0 };
			pthread_create(&t[i], NULL, same_thread, &s[i]);
		}
		for (int i = 0; i < 3; i++) {
			pthread_join(t[i], NULL);
			assert_int_equal(s[i].bad, 0);
		}
		assert_int_equal(mm_stats(mm).rss_anon, RACE_PAGES);
		assert_int_equal(smm_mm_verify(mm), 0);
		smm_mm_destroy(mm);
		pthread_barrier_destroy(&bar);
	}
	smm_debug_race_yield(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_register_errors, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_register_split_merge,
						env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_copy_errors, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_queue_handler_thread,
						env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_callback, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_poll, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_dontwake_wake, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_wp, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_fork_mremap, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_fault_injection, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_race_unregister, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_race_destroy, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_destroy_reader, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_race_copies, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_populate_waits, env_setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_populate_changed,
						env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_populate_destroy,
						env_setup, env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
