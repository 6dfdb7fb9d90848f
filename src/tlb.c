/*
 * tlb.c - TLB shootdown: flushing a CPU's own software TLB, and
 * flush_tlb_mm(), which makes every CPU of an address space forget
 * translations made from entries that were cleared or downgraded.
 *
 * The protocol. A CPU touches an address space only inside an access
 * section (tlb.h): it makes cpu->access_seq odd, then reads mm->tlb_gen and
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
 * Locking: no lock of its own. A CPU's TLB belongs to its thread;
 * flushers find CPUs in pool->cpus[] under the RCU read lock.
 */
#include <linux/membarrier.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "tlb.h"
#include "lock.h"

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

void flush_tlb_mm(struct smm_mm *mm)
{
	struct smm_pool *pool = mm->pool;
	struct smm_cpu *self = this_cpu;
	unsigned long seen[SMM_MAX_CPUS];

	lockdep_assert_none_held_below_mmap();
#ifdef SMM_DEBUG
	if (in_access_section())
		smm_misuse("flush_tlb_mm",
			   "a TLB shootdown started inside an "
			   "access section would wait for itself");
#endif
	atomic_fetch_add_explicit(&mm->tlb_flushes, 1, memory_order_relaxed);
	atomic_fetch_add(&mm->tlb_gen, 1); /* seq_cst: a full barrier */
	if (self && self->mm == mm) {
		/* Our own TLB: flush now, we are outside any section. */
		self->tlb_gen = atomic_load(&mm->tlb_gen);
		tlb_flush_local(self);
	}
	if (tlb_mm_only_self(mm))
		return; /* nobody else can hold a translation */
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
		if (!cpu || cpu == self ||
		    __atomic_load_n(&cpu->mm, __ATOMIC_ACQUIRE) != mm)
			continue;
		seen[i] = atomic_load_explicit(&cpu->access_seq,
					       memory_order_acquire);
	}
	for (int i = 0; i < SMM_MAX_CPUS; i++) {
		struct smm_cpu *cpu;
		unsigned int spins = 0;

#ifdef SMM_BUG_FLUSH_NO_WAIT
		/* Planted bug (build/bug7): do not wait for CPUs inside an
		 * access section; test_access must catch a store that lands
		 * after mprotect() made the page read-only. */
		break;
#endif
		if (!(seen[i] & 1))
			continue;
		cpu = atomic_load(&pool->cpus[i]);
		while (cpu &&
		       atomic_load_explicit(&cpu->access_seq,
					    memory_order_acquire) == seen[i]) {
			if (++spins < 128)
				cpu_relax();
			else
				sched_yield();
		}
	}
	urcu_memb_read_unlock();
}
