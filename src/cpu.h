/*
 * cpu.h - CPUs (attached threads), their software TLBs, access sections
 * and TLB shootdown. A CPU's TLB and frame cache are touched only by its
 * own thread; access_seq is written by its thread and read by flushers,
 * which find CPUs in pool->cpus[] under the RCU read lock: a detached CPU
 * is freed after a grace period.
 */
#ifndef SMM_CPU_H
#define SMM_CPU_H

#include "frame.h"

#define TLB_ENTRIES 256	/* direct-mapped by virtual page number */

/* A TLB entry: tag is (vpn << 16 | epoch), 0 is never valid. */
struct tlb_entry {
	uint64_t tag;
	uintptr_t host;	/* frame base in the host | TLB_WRITE */
};
#define TLB_WRITE 0x1UL	/* PTE writable and dirty: stores may hit */

struct smm_cpu {
	struct smm_pool *pool;
	int id;
	pthread_t thread;
	struct smm_mm *mm;		/* current address space */
	/* Odd while inside an access section (cpu.c). */
	atomic_ulong access_seq;
	uint64_t tlb_gen;		/* mm->tlb_gen the TLB is valid for */
	uint32_t epoch;			/* current TLB tag epoch, 1..0xffff */
	struct tlb_entry tlb[TLB_ENTRIES];
	struct pcp_cache pcp;
	struct rcu_head rcu;	/* flushers scan CPUs under RCU */
};

extern __thread struct smm_cpu *this_cpu __attribute__((tls_model("initial-exec")));

/* The calling thread's CPU if it is attached to @pool, else NULL. */
static inline struct smm_cpu *this_cpu_on(struct smm_pool *pool)
{
	struct smm_cpu *cpu = this_cpu;

	return cpu && cpu->pool == pool ? cpu : NULL;
}

void smm_membarrier_init(void);
extern int smm_membarrier_ok;	/* -1 unknown, 0 no, 1 yes */
void tlb_flush_local(struct smm_cpu *cpu);
/* Make sure the calling thread is registered with liburcu. */
void rcu_thread_online(void);

struct smm_mm;
/*
 * flush_tlb_mm - after page-table entries of @mm were cleared or
 * downgraded: when it returns no CPU can use a translation made from the
 * old entries, nor hold a pointer into a page table unlinked before it
 * was called (cpu.c explains the protocol).
 */
void flush_tlb_mm(struct smm_mm *mm);

#endif
