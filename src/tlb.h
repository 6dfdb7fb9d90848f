/*
 * tlb.h - the software TLB of each CPU, access sections, and TLB shootdown
 * (tlb.c explains the protocol). A CPU's TLB entries and tlb_gen are
 * touched only by its own thread; flushers read access_seq and write
 * mm->tlb_gen.
 */
#ifndef SMM_TLB_H
#define SMM_TLB_H

#include <string.h>
#include "cpu.h"
#include "mm_types.h"

extern __hidden int smm_membarrier_ok; /* -1 unknown, 0 no, 1 yes */
/* Register the process for private expedited membarrier, once. */
void smm_membarrier_init(void);

/* Drop every entry of the calling CPU's own TLB: rewrite the tags of the
 * slots filled since the last flush (usually a few), or all of them. */
static inline void tlb_flush_local(struct smm_cpu *cpu)
{
	unsigned int n = cpu->nr_tlb_used;

	if (n > TLB_ENTRIES / 8) {
		memset(cpu->tlb.vpn_read, 0xff, sizeof(cpu->tlb.vpn_read));
		memset(cpu->tlb.vpn_write, 0xff, sizeof(cpu->tlb.vpn_write));
	} else {
		for (unsigned int i = 0; i < n; i++) {
			unsigned int slot = cpu->tlb_used[i];

			cpu->tlb.vpn_read[slot] = SMM_TLB_INVALID;
			cpu->tlb.vpn_write[slot] = SMM_TLB_INVALID;
		}
	}
	cpu->nr_tlb_used = 0;
}

/*
 * flush_tlb_mm - after page-table entries of @mm were cleared or
 * downgraded: when it returns no CPU can use a translation made from the
 * old entries, nor hold a pointer into a page table unlinked before it
 * was called. Waits for other CPUs: no page-table lock may be held.
 */
void flush_tlb_mm(struct smm_mm *mm);

/* The host address of @addr's page if the TLB allows the access, else 0. */
static inline __attribute__((always_inline)) uintptr_t
tlb_lookup(struct smm_cpu *cpu, uint64_t addr, bool write)
{
	uint64_t vpn = addr >> SMM_PAGE_SHIFT;
	unsigned int slot = vpn % TLB_ENTRIES;

	if (likely((write ? cpu->tlb.vpn_write[slot] :
			    cpu->tlb.vpn_read[slot]) == vpn))
		return (uintptr_t)(addr & ~(uint64_t)(SMM_PAGE_SIZE - 1)) +
		       cpu->tlb.addend[slot];
	return 0;
}

/* Cache the translation of @addr to the frame at @host; @writable: stores
 * may hit it too. Inside an access section only. */
static inline void tlb_fill(struct smm_cpu *cpu, uint64_t addr, uintptr_t host,
			    bool writable)
{
	uint64_t vpn = addr >> SMM_PAGE_SHIFT;
	unsigned int slot = vpn % TLB_ENTRIES;

	if (cpu->tlb.vpn_read[slot] == SMM_TLB_INVALID &&
	    cpu->nr_tlb_used < TLB_ENTRIES)
		cpu->tlb_used[cpu->nr_tlb_used++] = (uint8_t)slot;
	cpu->tlb.vpn_read[slot] = vpn;
	cpu->tlb.vpn_write[slot] = writable ? vpn : SMM_TLB_INVALID;
	cpu->tlb.addend[slot] = host - (vpn << SMM_PAGE_SHIFT);
}

/*
 * access_begin/access_end - bracket a lockless use of @mm's page tables by
 * the calling CPU (the hardware walk, GUP-fast): the analogue of running
 * with interrupts off. A TLB shootdown of @mm waits until the section
 * ends, and page tables a walk in the section can reach are not freed
 * before that. Never sleep, fault or start a flush inside.
 */
static inline __attribute__((always_inline)) void
access_begin(struct smm_cpu *cpu, struct smm_mm *mm)
{
	unsigned long seq =
		atomic_load_explicit(&cpu->access_seq, memory_order_relaxed);
	uint64_t gen;

#ifdef SMM_DEBUG
	if (seq & 1)
		smm_misuse("access_begin",
			   "access sections do not nest (smm_read(), "
			   "smm_write(), smm_fill() or GUP-fast called inside "
			   "smm_access_begin()?)");
#endif
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

static inline __attribute__((always_inline)) void
access_end(struct smm_cpu *cpu)
{
	unsigned long seq =
		atomic_load_explicit(&cpu->access_seq, memory_order_relaxed);

	atomic_store_explicit(&cpu->access_seq, seq + 1, memory_order_release);
}

/*
 * Whether no CPU but the calling thread's (if it is one) is switched to
 * @mm: a shootdown of @mm then has nobody else to reach. nr_cpus is read
 * seq_cst, as flush_tlb_mm() needs against a CPU switching in (cpu.c).
 */
static inline bool tlb_mm_only_self(struct smm_mm *mm)
{
	struct smm_cpu *self = this_cpu;
	int n = atomic_load(&mm->nr_cpus);

	return n == 0 || (n == 1 && self && self->mm == mm);
}

/* Is the calling thread a CPU inside an access section? (assertions) */
static inline bool in_access_section(void)
{
	struct smm_cpu *cpu = this_cpu;

	return cpu &&
	       (atomic_load_explicit(&cpu->access_seq, memory_order_relaxed) &
		1);
}

#endif
