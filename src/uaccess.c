/*
 * uaccess.c - user loads and stores of a CPU: the software TLB, then a
 * lockless hardware-style page walk, then a page fault; and the hardware
 * walk itself, which sets the accessed and dirty bits as the MMU does.
 *
 * Locking: none taken. Every use of the page tables is inside an access
 * section of the calling CPU (tlb.h), which keeps every table it can reach
 * valid memory; the section is left before a fault is handled (faults may
 * sleep on mmap_lock, which a flusher may hold while it waits for us).
 */
#include <errno.h>
#include <string.h>
#include "pagewalk.h"
#include "fault.h"

/*
 * Walk @mm's tables for @addr without locks, as the MMU does, inside an
 * access section: set the accessed bit (and the dirty bit for a store)
 * with cmpxchg, and fill the TLB. Returns the host address of the page, or
 * 0 if the access must fault.
 */
static uintptr_t hw_walk(struct smm_cpu *cpu, struct smm_mm *mm, uint64_t addr,
			 bool write)
{
	pteval_t want = _PAGE_ACCESSED | (write ? _PAGE_DIRTY : 0);
	struct pt_walk w;
	pteval_t e, *ptep;
	uintptr_t host = 0;

	ptep = pte_offset_lockless(mm, addr, &w);
	if (!ptep)
		return 0;
	e = table_read(ptep); /* acquire: see the page's contents */
	do {
		if (!(e & _PAGE_PRESENT) || (write && !(e & _PAGE_RW)))
			goto out;
		if ((e & want) == want)
			break;
	} while (!__atomic_compare_exchange_n(
		ptep, &e, e | want, false, __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE));
	check_table_entry(&w, e);
	host = (uintptr_t)pfn_to_virt(mm->pool, pte_pfn(e));
	tlb_fill(cpu, addr, host,
		 ((e | want) & (_PAGE_RW | _PAGE_DIRTY)) ==
			 (_PAGE_RW | _PAGE_DIRTY));
out:
	pte_lockless_end(&w);
	return host;
}

enum {
	ACC_READ,
	ACC_WRITE,
	ACC_FILL
};

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
				w = __atomic_load_n((uint64_t *)(h + i),
						    __ATOMIC_RELAXED);
				memcpy(p + i, &w, 8);
			} else {
				if (kind == ACC_WRITE)
					memcpy(&w, p + i, 8);
				else
					memset(&w, byte, 8);
				__atomic_store_n((uint64_t *)(h + i), w,
						 __ATOMIC_RELAXED);
			}
			i += 7;
			continue;
		}
		if (kind == ACC_READ)
			p[i] = __atomic_load_n(&h[i], __ATOMIC_RELAXED);
		else
			__atomic_store_n(
				&h[i], kind == ACC_WRITE ? p[i] : (uint8_t)byte,
				__ATOMIC_RELAXED);
	}
}
#endif

/*
 * Copy between the CPU's address space and @buf (or fill with @byte),
 * page by page, each page inside its own access section. Out of line: the
 * TLB-hit path of smm_read/smm_write must not pay for its registers.
 */
static __attribute__((noinline)) int user_access(struct smm_cpu *cpu,
						 uint64_t addr, void *buf,
						 int byte, size_t len, int kind,
						 uint64_t *fault_addr)
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

	if (unlikely(!mm || len > 8 ||
		     (addr & (PAGE_SIZE - 1)) + len > PAGE_SIZE))
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

/*
 * The caller's duties, checked on every access at the cost of one
 * thread-local load: @cpu is the calling thread's CPU, and a buffer is
 * given. Compared before @cpu is dereferenced.
 */
static inline bool bad_access(struct smm_cpu *cpu, const void *buf, size_t len)
{
	return unlikely(cpu != this_cpu || !cpu || (!buf && len));
}

static int bad_access_err(struct smm_cpu *cpu)
{
	return cpu != this_cpu || !cpu ? -EINVAL : -EFAULT;
}

SMM_API int smm_read(struct smm_cpu *cpu, uint64_t addr, void *buf, size_t len,
		     uint64_t *fault_addr)
{
	if (bad_access(cpu, buf, len))
		return bad_access_err(cpu);
	if (likely(small_hit(cpu, addr, buf, len, false)))
		return 0;
	return user_access(cpu, addr, buf, 0, len, ACC_READ, fault_addr);
}

SMM_API int smm_write(struct smm_cpu *cpu, uint64_t addr, const void *buf,
		      size_t len, uint64_t *fault_addr)
{
	if (bad_access(cpu, buf, len))
		return bad_access_err(cpu);
	if (likely(small_hit(cpu, addr, (void *)buf, len, true)))
		return 0;
	return user_access(cpu, addr, (void *)buf, 0, len, ACC_WRITE,
			   fault_addr);
}

SMM_API int smm_fill(struct smm_cpu *cpu, uint64_t addr, int byte, size_t len,
		     uint64_t *fault_addr)
{
	uint8_t pattern[8];

	if (bad_access(cpu, "", 0))
		return -EINVAL;
	/* A small fill that hits the TLB is a small store (a guest's store
	 * of a constant): the same fast path, from an 8-byte pattern. */
	if (len <= sizeof(pattern)) {
		memset(pattern, byte, sizeof(pattern));
		if (likely(small_hit(cpu, addr, pattern, len, true)))
			return 0;
	}
	return user_access(cpu, addr, NULL, byte, len, ACC_FILL, fault_addr);
}

/*
 * The public access sections (softmm.h). A section of the embedder is the
 * same access section smm_read() uses per page, only held across many
 * translations; the rules that keep its pointers valid are tlb.c's.
 */
SMM_API int smm_access_begin_layout(struct smm_cpu *cpu, unsigned int layout)
{
	if (!cpu || cpu != this_cpu || !cpu->mm ||
	    (atomic_load_explicit(&cpu->access_seq, memory_order_relaxed) & 1))
		return -EINVAL;
	if (layout != SMM_TLB_LAYOUT)
		return -EPROTO;
	access_begin(cpu, cpu->mm);
	return 0;
}

static inline bool in_section_of(struct smm_cpu *cpu)
{
	return cpu && cpu == this_cpu &&
	       (atomic_load_explicit(&cpu->access_seq, memory_order_relaxed) &
		1);
}

SMM_API int smm_access_end(struct smm_cpu *cpu)
{
	if (!in_section_of(cpu))
		return -EINVAL;
	access_end(cpu);
	return 0;
}

/*
 * A TLB miss of smm_translate(): the lockless walk, which fills the TLB.
 * Anything it cannot do needs a fault, which must not run inside the
 * section: NULL, and the caller calls smm_access_fault().
 */
SMM_API void *smm_translate_slow(struct smm_cpu *cpu, uint64_t addr, int write)
{
	uintptr_t host;

#ifdef SMM_DEBUG
	if (!in_section_of(cpu))
		smm_misuse("smm_translate",
			   "called outside an access section of the "
			   "calling thread's CPU");
#endif
	if (addr >= SMM_TASK_SIZE)
		return NULL;
	host = hw_walk(cpu, cpu->mm, addr, write);
	return host ? (void *)(host + (addr & (PAGE_SIZE - 1))) : NULL;
}

SMM_API int smm_access_fault(struct smm_cpu *cpu, uint64_t addr, int write)
{
	struct smm_mm *mm;
	int err;

	if (!in_section_of(cpu))
		return -EINVAL;
	mm = cpu->mm;
	access_end(cpu);
	if (addr >= SMM_TASK_SIZE)
		err = -EFAULT;
	else
		err = handle_mm_fault(mm, addr, write ? FAULT_WRITE : 0);
	access_begin(cpu, mm);
	return err;
}
