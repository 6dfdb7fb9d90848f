/*
 * access.h - access sections: how a CPU uses an address space's page
 * tables without locks (the hardware walk in cpu.c, GUP-fast). The
 * protocol is explained at the top of cpu.c. State: the CPU's own
 * access_seq, tlb_gen and TLB, touched only by its thread.
 */
#ifndef SMM_ACCESS_H
#define SMM_ACCESS_H

#include "mm.h"
#include "cpu.h"

/*
 * access_begin/access_end - bracket a lockless use of @mm's page tables by
 * the calling CPU (the hardware walk, GUP-fast): the analogue of running
 * with interrupts off. A TLB shootdown of @mm waits until the section
 * ends, and page tables a walk in the section can reach are not freed
 * before that. Never sleep or take a sleeping lock inside.
 */
static inline __attribute__((always_inline)) void
access_begin(struct smm_cpu *cpu, struct smm_mm *mm)
{
	unsigned long seq = atomic_load_explicit(&cpu->access_seq, memory_order_relaxed);
	uint64_t gen;

	atomic_store_explicit(&cpu->access_seq, seq + 1, memory_order_relaxed);
	if (likely(smm_membarrier_ok == 1))
		atomic_signal_fence(memory_order_seq_cst);
	else
		atomic_thread_fence(memory_order_seq_cst);
	gen = atomic_load_explicit(&mm->tlb_gen, memory_order_acquire);
	if (unlikely(gen != cpu->tlb_gen)) {
		cpu->tlb_gen = gen;
		tlb_flush_local(cpu);
	}
}

static inline __attribute__((always_inline)) void access_end(struct smm_cpu *cpu)
{
	unsigned long seq = atomic_load_explicit(&cpu->access_seq, memory_order_relaxed);

	atomic_store_explicit(&cpu->access_seq, seq + 1, memory_order_release);
}

#endif
