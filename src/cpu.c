/*
 * cpu.c - CPUs: threads attached to a pool, each with a software TLB; user
 * loads and stores (TLB, then a lockless hardware-style walk, then a page
 * fault); TLB shootdown.
 *
 * The shootdown protocol. A CPU touches an address space only inside an
 * access section: it makes cpu->access_seq odd, then reads mm->tlb_gen and
 * drops its whole TLB if the generation moved. A flusher, after changing
 * entries, bumps mm->tlb_gen and then waits for every CPU of that mm that is
 * inside a section to leave it (the analogue of the IPI). Either the CPU's
 * generation read sees the bump, or the flusher sees the CPU inside its
 * section and waits: a store-load pattern on both sides, which needs a full
 * barrier on both. The CPU side, the hot path, gets away with a compiler
 * barrier because the flusher runs membarrier(PRIVATE_EXPEDITED), which
 * executes a full barrier on every running thread of the process (liburcu's
 * memb flavour makes the same trade). Without membarrier the CPU side falls
 * back to a real fence.
 *
 * A CPU leaves its section before handling a fault (faults sleep on
 * mmap_lock, which a flusher may hold while it waits). Page tables that a
 * lockless walk could still be reading are freed only after such a flush
 * and an RCU grace period (mmu_gather.c).
 *
 * Locking: a CPU's TLB, epoch and frame cache belong to its thread.
 * pool->cpus[] slots are claimed with cmpxchg.
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "access.h"

/* initial-exec: the library is built -fPIC, and the general-dynamic model
 * would call __tls_get_addr on every access. */
__thread struct smm_cpu *this_cpu __attribute__((tls_model("initial-exec")));

int smm_membarrier_ok = -1;

static long sys_membarrier(int cmd)
{
	return syscall(__NR_membarrier, cmd, 0, 0);
}

void smm_membarrier_init(void)
{
	if (__atomic_load_n(&smm_membarrier_ok, __ATOMIC_ACQUIRE) >= 0)
		return;
	long mask = sys_membarrier(MEMBARRIER_CMD_QUERY);
	int ok = mask > 0 && (mask & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
		 sys_membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
	__atomic_store_n(&smm_membarrier_ok, ok, __ATOMIC_RELEASE);
}

/* ---- RCU registration of threads ---- */

static pthread_key_t rcu_key;
static pthread_once_t rcu_key_once = PTHREAD_ONCE_INIT;
static __thread bool rcu_registered __attribute__((tls_model("initial-exec")));

static void rcu_thread_exit(void *arg)
{
	if (rcu_registered) {
		urcu_memb_unregister_thread();
		rcu_registered = false;
	}
}

static void rcu_key_init(void)
{
	pthread_key_create(&rcu_key, rcu_thread_exit);
}

void rcu_thread_online(void)
{
	if (likely(rcu_registered))
		return;
	pthread_once(&rcu_key_once, rcu_key_init);
	urcu_memb_register_thread();
	rcu_registered = true;
	pthread_setspecific(rcu_key, (void *)1);
}

/* ---- attach, detach, switch ---- */

SMM_API struct smm_cpu *smm_cpu_attach(struct smm_pool *pool)
{
	struct smm_cpu *cpu;

	if (this_cpu) {
		errno = EBUSY;
		return NULL;
	}
	cpu = aligned_alloc(64, (sizeof(*cpu) + 63) & ~(size_t)63);
	if (!cpu) {
		errno = ENOMEM;
		return NULL;
	}
	memset(cpu, 0, sizeof(*cpu));
	cpu->pool = pool;
	cpu->thread = pthread_self();
	cpu->epoch = 1;
	for (int i = 0; i < SMM_MAX_CPUS; i++) {
		struct smm_cpu *none = NULL;

		if (atomic_compare_exchange_strong(&pool->cpus[i], &none, cpu)) {
			cpu->id = i;
			atomic_fetch_add(&pool->nr_cpus, 1);
			rcu_thread_online();
			this_cpu = cpu;
			smm_stripe = (unsigned int)i % NR_STRIPES;
			return cpu;
		}
	}
	free(cpu);
	errno = EBUSY;
	return NULL;
}

void tlb_flush_local(struct smm_cpu *cpu)
{
	if (++cpu->epoch > 0xffff) {
		memset(cpu->tlb, 0, sizeof(cpu->tlb));
		cpu->epoch = 1;
	}
}

SMM_API void smm_cpu_switch_mm(struct smm_cpu *cpu, struct smm_mm *mm)
{
	struct smm_mm *old = cpu->mm;

	BUG_ON(cpu != this_cpu);
	if (old == mm)
		return;
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
	WRITE_ONCE(cpu->mm, mm);
	tlb_flush_local(cpu);
	if (old) {
		atomic_fetch_sub(&old->nr_cpus, 1);
		mm_put(old);
	}
}

static void cpu_free_rcu(struct rcu_head *head)
{
	free(container_of(head, struct smm_cpu, rcu));
}

SMM_API void smm_cpu_detach(struct smm_cpu *cpu)
{
	struct smm_pool *pool = cpu->pool;

	BUG_ON(cpu != this_cpu);
	smm_cpu_switch_mm(cpu, NULL);
	pcp_drain(pool, &cpu->pcp);
	atomic_store(&pool->cpus[cpu->id], NULL);
	this_cpu = NULL;
	smm_stripe = 0;
	/* A flusher may still be looking at us: free after a grace period.
	 * The pool stays busy until then (smm_pool_destroy waits). */
	urcu_memb_call_rcu(&cpu->rcu, cpu_free_rcu);
	atomic_fetch_sub(&pool->nr_cpus, 1);
}

/* ---- access sections and shootdown ---- */

void flush_tlb_mm(struct smm_mm *mm)
{
	struct smm_pool *pool = mm->pool;
	struct smm_cpu *self = this_cpu;
	unsigned long seen[SMM_MAX_CPUS];
	int n;

	lockdep_assert_none_held_below_mmap();
	atomic_fetch_add_explicit(&mm->tlb_flushes, 1, memory_order_relaxed);
	atomic_fetch_add(&mm->tlb_gen, 1);	/* seq_cst: a full barrier */
	if (self && self->mm == mm) {
		/* Our own TLB: flush now, we are outside any section. */
		self->tlb_gen = atomic_load(&mm->tlb_gen);
		tlb_flush_local(self);
	}
	n = atomic_load(&mm->nr_cpus);
	if (n == 0 || (n == 1 && self && self->mm == mm))
		return;	/* nobody else can hold a translation */
	race_point();
	if (smm_membarrier_ok == 1)
		sys_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
	/*
	 * Snapshot every other CPU of @mm that is inside an access section,
	 * then wait until each has left that section. A CPU entering a new
	 * section after our barrier sees the new generation. The RCU read
	 * lock keeps a CPU that detaches meanwhile from being freed.
	 */
	urcu_memb_read_lock();
	for (int i = 0; i < SMM_MAX_CPUS; i++) {
		struct smm_cpu *cpu = atomic_load(&pool->cpus[i]);

		seen[i] = 0;
		if (!cpu || cpu == self || READ_ONCE(cpu->mm) != mm)
			continue;
		seen[i] = atomic_load_explicit(&cpu->access_seq, memory_order_acquire);
	}
	for (int i = 0; i < SMM_MAX_CPUS; i++) {
		struct smm_cpu *cpu;
		unsigned int spins = 0;

		if (!(seen[i] & 1))
			continue;
		cpu = atomic_load(&pool->cpus[i]);
		while (cpu && atomic_load_explicit(&cpu->access_seq,
						   memory_order_acquire) == seen[i]) {
			if (++spins < 128)
				cpu_relax();
			else
				sched_yield();
		}
	}
	urcu_memb_read_unlock();
}

/* ---- the hardware walk ---- */

/*
 * Walk @mm's tables for @addr without locks, as the MMU does, inside an
 * access section: set the accessed bit (and the dirty bit for a store)
 * with cmpxchg, and fill the TLB. Returns the host address of the page, or
 * 0 if the access must fault.
 */
static uintptr_t hw_walk(struct smm_cpu *cpu, struct smm_mm *mm,
			 uint64_t addr, bool write)
{
	struct smm_pool *pool = mm->pool;
	pteval_t e, *ptep, *table = mm->pgd;
	pteval_t want = _PAGE_ACCESSED | (write ? _PAGE_DIRTY : 0);
	static const int shift[3] = { PGDIR_SHIFT, PUD_SHIFT, PMD_SHIFT };
	struct tlb_entry *te;
	uintptr_t host;

	for (int l = 0; l < 3; l++) {
		e = table_read(&table[(addr >> shift[l]) & 511]);
		if (!(e & _PAGE_PRESENT))
			return 0;
		if (unlikely(pte_pfn(e) >= pool->nr_frames)) {
			fprintf(stderr, "softmm: walk of %#llx read a corrupt or "
				"poisoned table entry %#llx\n",
				(unsigned long long)addr, (unsigned long long)e);
			BUG_ON(1);
		}
		table = table_virt(pool, e);
		race_point();
	}
	ptep = &table[pte_index(addr)];
	e = table_read(ptep);	/* acquire: see the page's contents */
	do {
		if (!(e & _PAGE_PRESENT) || (write && !(e & _PAGE_RW)))
			return 0;
		if ((e & want) == want)
			break;
	} while (!__atomic_compare_exchange_n(ptep, &e, e | want, false,
					      __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE));
	if (unlikely(pte_pfn(e) >= pool->nr_frames)) {
		fprintf(stderr, "softmm: walk of %#llx read a corrupt or "
			"poisoned entry %#llx\n", (unsigned long long)addr,
			(unsigned long long)e);
		BUG_ON(1);
	}
	host = (uintptr_t)pfn_to_virt(pool, pte_pfn(e));
	te = &cpu->tlb[(addr >> PAGE_SHIFT) % TLB_ENTRIES];
	te->tag = (addr >> PAGE_SHIFT) << 16 | cpu->epoch;
	te->host = host | (((e | want) & (_PAGE_RW | _PAGE_DIRTY)) ==
			   (_PAGE_RW | _PAGE_DIRTY) ? TLB_WRITE : 0);
	return host;
}

static inline __attribute__((always_inline)) uintptr_t
tlb_lookup(struct smm_cpu *cpu, uint64_t addr, bool write)
{
	struct tlb_entry *te = &cpu->tlb[(addr >> PAGE_SHIFT) % TLB_ENTRIES];

	if (likely(te->tag == ((addr >> PAGE_SHIFT) << 16 | cpu->epoch)) &&
	    (!write || (te->host & TLB_WRITE)))
		return te->host & ~(uintptr_t)TLB_WRITE;
	return 0;
}

enum { ACC_READ, ACC_WRITE, ACC_FILL };

#ifdef SMM_TSAN
/*
 * ThreadSanitizer builds: guest memory is hardware memory, where CPUs
 * racing on the same bytes are the guest's business, not a data race in
 * softmm. Access it with relaxed atomics, so that TSan reports only races
 * between a guest access and softmm's own use of the frame (zeroing,
 * poisoning, copying, freeing), never guest against guest.
 */
static void guest_copy(uint8_t *h, uint8_t *p, int byte, size_t n, int kind)
{
	size_t i = 0;

	/*
	 * Aligned 8-byte words as single atomics, as the hardware does:
	 * another CPU, or a device reading through a pin, must never see
	 * half of an aligned 8-byte store.
	 */
	for (; i < n; i++) {
		if (!((uintptr_t)(h + i) & 7) && n - i >= 8) {
			uint64_t w;

			if (kind == ACC_READ) {
				w = __atomic_load_n((uint64_t *)(h + i), __ATOMIC_RELAXED);
				memcpy(p + i, &w, 8);
			} else {
				if (kind == ACC_WRITE)
					memcpy(&w, p + i, 8);
				else
					memset(&w, byte, 8);
				__atomic_store_n((uint64_t *)(h + i), w, __ATOMIC_RELAXED);
			}
			i += 7;
			continue;
		}
		if (kind == ACC_READ)
			p[i] = __atomic_load_n(&h[i], __ATOMIC_RELAXED);
		else
			__atomic_store_n(&h[i], kind == ACC_WRITE ? p[i] : (uint8_t)byte,
					 __ATOMIC_RELAXED);
	}
}
#endif

/*
 * Copy between the CPU's address space and @buf (or fill with @byte),
 * page by page, each page inside its own access section.
 */
static int user_access(struct smm_cpu *cpu, uint64_t addr, void *buf,
		       int byte, size_t len, int kind, uint64_t *fault_addr)
{
	struct smm_mm *mm = cpu->mm;
	bool write = kind != ACC_READ;
	uint8_t *p = buf;

	VM_BUG_ON(cpu != this_cpu);
	if (!mm)
		return -EINVAL;
	while (len) {
		size_t chunk = MIN(len, PAGE_SIZE - (addr & (PAGE_SIZE - 1)));
		uintptr_t host;
		int err;

		if (addr >= SMM_TASK_SIZE)
			goto segv;
		access_begin(cpu, mm);
		host = tlb_lookup(cpu, addr, write);
		if (!host)
			host = hw_walk(cpu, mm, addr, write);
		if (likely(host)) {
			void *h = (void *)(host + (addr & (PAGE_SIZE - 1)));

#ifdef SMM_TSAN
			guest_copy(h, p, byte, chunk, kind);
#else
			if (kind == ACC_READ)
				memcpy(p, h, chunk);
			else if (kind == ACC_WRITE)
				memcpy(h, p, chunk);
			else
				memset(h, byte, chunk);
#endif
			access_end(cpu);
			addr += chunk;
			len -= chunk;
			if (p)
				p += chunk;
			continue;
		}
		access_end(cpu);
		err = handle_mm_fault(mm, addr, write ? FAULT_WRITE : 0);
		if (err == -EFAULT)
			goto segv;
		if (err) {
			if (fault_addr)
				*fault_addr = addr;
			return err;
		}
	}
	return 0;
segv:
	if (fault_addr)
		*fault_addr = addr;
	return -EFAULT;
}

/*
 * The fast path of a small access within one page whose translation is in
 * the TLB: what a load or store instruction costs when it hits. Sizes of
 * 1, 2, 4 and 8 bytes get fixed-size copies; anything else, or a miss,
 * takes user_access().
 */
static inline __attribute__((always_inline)) bool
small_hit(struct smm_cpu *cpu, uint64_t addr, void *buf, size_t len, bool write)
{
	struct smm_mm *mm = cpu->mm;
	uintptr_t host;
	void *h;

	if (unlikely(!mm || len > 8 || (addr & (PAGE_SIZE - 1)) + len > PAGE_SIZE))
		return false;
	access_begin(cpu, mm);
	host = tlb_lookup(cpu, addr, write);
	if (unlikely(!host)) {
		access_end(cpu);
		return false;
	}
	h = (void *)(host + (addr & (PAGE_SIZE - 1)));
#ifdef SMM_TSAN
	guest_copy(h, buf, 0, len, write ? ACC_WRITE : ACC_READ);
	access_end(cpu);
	return true;
#endif
	switch (len) {
	case 8:
		write ? memcpy(h, buf, 8) : memcpy(buf, h, 8);
		break;
	case 4:
		write ? memcpy(h, buf, 4) : memcpy(buf, h, 4);
		break;
	case 2:
		write ? memcpy(h, buf, 2) : memcpy(buf, h, 2);
		break;
	case 1:
		write ? memcpy(h, buf, 1) : memcpy(buf, h, 1);
		break;
	default:
		write ? memcpy(h, buf, len) : memcpy(buf, h, len);
		break;
	}
	access_end(cpu);
	return true;
}

SMM_API int smm_read(struct smm_cpu *cpu, uint64_t addr, void *buf,
		     size_t len, uint64_t *fault_addr)
{
	VM_BUG_ON(cpu != this_cpu);
	if (likely(small_hit(cpu, addr, buf, len, false)))
		return 0;
	return user_access(cpu, addr, buf, 0, len, ACC_READ, fault_addr);
}

SMM_API int smm_write(struct smm_cpu *cpu, uint64_t addr, const void *buf,
		      size_t len, uint64_t *fault_addr)
{
	VM_BUG_ON(cpu != this_cpu);
	if (likely(small_hit(cpu, addr, (void *)buf, len, true)))
		return 0;
	return user_access(cpu, addr, (void *)buf, 0, len, ACC_WRITE, fault_addr);
}

SMM_API int smm_fill(struct smm_cpu *cpu, uint64_t addr, int byte, size_t len,
		     uint64_t *fault_addr)
{
	return user_access(cpu, addr, NULL, byte, len, ACC_FILL, fault_addr);
}
