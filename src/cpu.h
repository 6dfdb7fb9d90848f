/*
 * cpu.h - CPUs: threads attached to a pool, each with a software TLB, a
 * frame cache and an access-section counter. A CPU's TLB and frame
 * cache are touched only by its own thread; access_seq is written by its
 * thread and read by flushers (tlb.c), which find CPUs in pool->cpus[]
 * under the RCU read lock: a detached CPU is freed after a grace period.
 */
#ifndef SMM_CPU_H
#define SMM_CPU_H

#include "frame.h"

/*
 * The TLB: SMM_TLB_ENTRIES entries, direct-mapped by virtual page number.
 * Its layout is public (softmm.h, struct smm_tlb_view): the inline
 * smm_translate() of embedders reads it. A tag is the page's number
 * (address >> SMM_PAGE_SHIFT), SMM_TLB_INVALID when empty. tlb_used[]
 * lists the slots filled since the last flush, so that a flush rewrites
 * only those (tlb.h).
 */
#define TLB_ENTRIES SMM_TLB_ENTRIES
_Static_assert(TLB_ENTRIES <= 256, "tlb_used[] holds 8-bit slot numbers");

struct smm_cpu {
	/* First: smm_translate() casts the CPU to it. */
	struct smm_tlb_view tlb;
	struct smm_pool *pool;
	int id;
	pthread_t thread;
	struct smm_mm *mm; /* current address space */
	/* Odd while inside an access section (tlb.h). */
	atomic_ulong access_seq;
	uint64_t tlb_gen; /* mm->tlb_gen the TLB is valid for */
	unsigned int nr_tlb_used;
	uint8_t tlb_used[TLB_ENTRIES];
	struct pcp_cache pcp;
	struct rcu_head rcu; /* flushers scan CPUs under RCU */
};

extern __hidden __thread struct smm_cpu *this_cpu
	__attribute__((tls_model("initial-exec")));

/* The calling thread's CPU if it is attached to @pool, else NULL. */
static inline struct smm_cpu *this_cpu_on(struct smm_pool *pool)
{
	struct smm_cpu *cpu = this_cpu;

	return cpu && cpu->pool == pool ? cpu : NULL;
}

#endif
