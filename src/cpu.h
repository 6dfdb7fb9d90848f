/*
 * cpu.h - CPUs: threads attached to a pool, each with a software TLB, a
 * frame cache and an access-section counter. A CPU's TLB, epoch and frame
 * cache are touched only by its own thread; access_seq is written by its
 * thread and read by flushers (tlb.c), which find CPUs in pool->cpus[]
 * under the RCU read lock: a detached CPU is freed after a grace period.
 */
#ifndef SMM_CPU_H
#define SMM_CPU_H

#include "frame.h"

#define TLB_ENTRIES 256 /* direct-mapped by virtual page number */

/* A TLB entry: tag is (vpn << 16 | epoch), 0 is never valid. */
struct tlb_entry {
	uint64_t tag;
	uintptr_t host; /* frame base in the host | TLB_WRITE */
};

struct smm_cpu {
	struct smm_pool *pool;
	int id;
	pthread_t thread;
	struct smm_mm *mm; /* current address space */
	/* Odd while inside an access section (tlb.h). */
	atomic_ulong access_seq;
	uint64_t tlb_gen; /* mm->tlb_gen the TLB is valid for */
	uint32_t epoch;	  /* current TLB tag epoch, 1..0xffff */
	struct tlb_entry tlb[TLB_ENTRIES];
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
