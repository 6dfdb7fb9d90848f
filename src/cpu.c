/*
 * cpu.c - CPUs: attaching a thread to a pool as a CPU, detaching it (also
 * at thread exit), and switching the address space it runs on. In the
 * counter build, each thread's count of atomic RMWs (compiler.h).
 *
 * Locking: pool->cpus[] slots are claimed with cmpxchg and cleared at
 * detach; a detached CPU is freed after an RCU grace period, because
 * flushers (tlb.c) scan the slots under the RCU read lock. cpu->mm is
 * written by the CPU's own thread (WRITE_ONCE: flushers read it); the mm's
 * nr_cpus and refs are atomics.
 */
#include <errno.h>
#include <string.h>
#include "tlb.h"
#include "mm.h"

#ifdef SMM_COUNT_ATOMICS
/* The calling thread's atomic read-modify-writes (compiler.h). */
__thread unsigned long smm_atomic_rmw;
#endif

/* initial-exec: the library is built -fPIC, and the general-dynamic model
 * would call __tls_get_addr on every access. */
__thread struct smm_cpu *this_cpu __attribute__((tls_model("initial-exec")));

/*
 * A thread that exits while attached would keep its slot, and the pool
 * would answer -EBUSY forever: the key's destructor detaches it. It may run
 * after rcu.c's destructor unregistered the thread from liburcu, and
 * detaching needs call_rcu(), which needs a registered thread: so it
 * registers again (rcu_thread_online() sets rcu.c's key anew, and its
 * destructor runs once more in the next round, PTHREAD_DESTRUCTOR_ITERATIONS).
 */
static pthread_key_t cpu_key;
static pthread_once_t cpu_key_once = PTHREAD_ONCE_INIT;

static void cpu_thread_exit(void *arg)
{
	struct smm_cpu *cpu = this_cpu;

	if (cpu && cpu == arg) {
		/* A thread that exits inside an access section leaves it. */
		if (in_access_section())
			access_end(cpu);
		rcu_thread_online();
		smm_cpu_detach(cpu);
	}
}

static void cpu_key_init(void)
{
	if (pthread_key_create(&cpu_key, cpu_thread_exit))
		BUG_ON(1);
}

SMM_API struct smm_cpu *smm_cpu_attach(struct smm_pool *pool)
{
	struct smm_cpu *cpu;

	if (!pool || !pool_is_live(pool)) {
		errno = EINVAL;
		return NULL;
	}
	if (this_cpu) {
		errno = EBUSY;
		return NULL;
	}
	pthread_once(&cpu_key_once, cpu_key_init);
	cpu = aligned_alloc(64, (sizeof(*cpu) + 63) & ~(size_t)63);
	if (!cpu) {
		errno = ENOMEM;
		return NULL;
	}
	memset(cpu, 0, sizeof(*cpu));
	/* Before any CPU can run an access section (tlb.c says why). */
	smm_membarrier_init();
	cpu->pool = pool;
	cpu->thread = pthread_self();
	memset(cpu->tlb.vpn_read, 0xff, sizeof(cpu->tlb.vpn_read));
	memset(cpu->tlb.vpn_write, 0xff, sizeof(cpu->tlb.vpn_write));
	cpu->tlb.layout = SMM_TLB_LAYOUT;
	for (int i = 0; i < SMM_MAX_CPUS; i++) {
		struct smm_cpu *none = NULL;

		if (atomic_compare_exchange_strong(&pool->cpus[i], &none,
						   cpu)) {
			cpu->id = i;
			atomic_fetch_add(&pool->nr_cpus, 1);
			rcu_thread_online();
			this_cpu = cpu;
			smm_stripe = stripe_get(i);
			pthread_setspecific(cpu_key, cpu);
			return cpu;
		}
	}
	free(cpu);
	errno = EBUSY;
	return NULL;
}

SMM_API int smm_cpu_switch_mm(struct smm_cpu *cpu, struct smm_mm *mm)
{
	struct smm_mm *old;

	/* Compared before any dereference: @cpu may be stale. */
	if (!cpu || cpu != this_cpu)
		return -EINVAL;
	/*
	 * A CPU's TLB is flushed by shootdowns of its own pool only
	 * (flush_tlb_mm scans pool->cpus[]), and its frame cache holds that
	 * pool's frames: an address space of another pool is refused.
	 */
	if (mm && mm->pool != cpu->pool)
		return -EXDEV;
	if (in_access_section())
		return -EBUSY;
	old = cpu->mm;
	if (old == mm)
		return 0;
	if (mm) {
		atomic_fetch_add(&mm->refs, 1);
		/*
		 * Count ourselves in before the first walk: a flusher that
		 * reads nr_cpus after its fence either sees us, or we see its
		 * cleared entries (flush_tlb_mm).
		 */
		atomic_fetch_add(&mm->nr_cpus, 1);
		cpu->tlb_gen = atomic_load(&mm->tlb_gen);
	}
	/* Release: a flusher that reads the new value and skips us sees
	 * every store we made through the old mm (tlb.c). */
	__atomic_store_n(&cpu->mm, mm, __ATOMIC_RELEASE);
	tlb_flush_local(cpu);
	if (old) {
		atomic_fetch_sub(&old->nr_cpus, 1);
		mm_put(old);
	}
	return 0;
}

static void cpu_free_rcu(struct rcu_head *head)
{
	struct smm_cpu *cpu = container_of(head, struct smm_cpu, rcu);

	tsan_acquire(cpu);
	free(cpu);
}

SMM_API int smm_cpu_detach(struct smm_cpu *cpu)
{
	struct smm_pool *pool;

	/* Before any dereference: a CPU detached twice is freed memory. */
	if (!cpu || cpu != this_cpu)
		return -EINVAL;
	if (in_access_section())
		return -EBUSY;
	pool = cpu->pool;
	smm_cpu_switch_mm(cpu, NULL);
	pthread_setspecific(cpu_key, NULL);
	pcp_drain(pool, &cpu->pcp);
	atomic_store(&pool->cpus[cpu->id], NULL);
	this_cpu = NULL;
	/* After our last update: the next owner of the stripe sees it. */
	stripe_put(smm_stripe);
	smm_stripe = 0;
	/* A flusher may still be looking at us: free after a grace period.
	 * The pool stays busy until then (smm_pool_destroy waits). */
	tsan_release(cpu);
	urcu_memb_call_rcu(&cpu->rcu, cpu_free_rcu);
	atomic_fetch_sub(&pool->nr_cpus, 1);
	return 0;
}
