/*
 * pgtable.h - x86-64 page-table entries and levels: 4 levels of 512
 * eight-byte entries, 48-bit addresses. Entries are read and written with
 * READ_ONCE/WRITE_ONCE (or cmpxchg for the accessed/dirty bits set by the
 * hardware walk); which lock a change needs is in docs/LOCKING.md and is
 * asserted by the functions that change entries.
 */
#ifndef SMM_PGTABLE_H
#define SMM_PGTABLE_H

#include "mm_types.h"

#define _PAGE_PRESENT	0x001ULL
#define _PAGE_RW	0x002ULL
#define _PAGE_USER	0x004ULL
#define _PAGE_ACCESSED	0x020ULL
#define _PAGE_DIRTY	0x040ULL
#define _PAGE_PSE	0x080ULL
#define _PAGE_PROTNONE	0x100ULL	/* not present, but a PROT_NONE page */
#define PTE_PFN_MASK	0x000ffffffffff000ULL
#define _PAGE_TABLE	(_PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED)

#define PTRS_PER_TABLE	512
#define PAGE_SHIFT	SMM_PAGE_SHIFT
#define PAGE_SIZE	SMM_PAGE_SIZE
#define PAGE_MASK	(~(PAGE_SIZE - 1))
#define PMD_SHIFT	21
#define PUD_SHIFT	30
#define PGDIR_SHIFT	39
#define PMD_SIZE	(1ULL << PMD_SHIFT)
#define PUD_SIZE	(1ULL << PUD_SHIFT)
#define PGDIR_SIZE	(1ULL << PGDIR_SHIFT)
#define PMD_MASK	(~(PMD_SIZE - 1))
#define PUD_MASK	(~(PUD_SIZE - 1))
#define PGDIR_MASK	(~(PGDIR_SIZE - 1))

#define PAGE_ALIGN(x)	(((x) + PAGE_SIZE - 1) & PAGE_MASK)

static inline unsigned int pgd_index(uint64_t a) { return (a >> PGDIR_SHIFT) & 511; }
static inline unsigned int pud_index(uint64_t a) { return (a >> PUD_SHIFT) & 511; }
static inline unsigned int pmd_index(uint64_t a) { return (a >> PMD_SHIFT) & 511; }
static inline unsigned int pte_index(uint64_t a) { return (a >> PAGE_SHIFT) & 511; }

/* End of the table entry's range containing @a, capped at @end. */
static inline uint64_t level_addr_end(uint64_t a, uint64_t end, uint64_t size)
{
	uint64_t b = (a + size) & ~(size - 1);

	return (b - 1 < end - 1) ? b : end;
}
#define pgd_addr_end(a, e) level_addr_end(a, e, PGDIR_SIZE)
#define pud_addr_end(a, e) level_addr_end(a, e, PUD_SIZE)
#define pmd_addr_end(a, e) level_addr_end(a, e, PMD_SIZE)

static inline bool pte_none(pteval_t e) { return e == 0; }
static inline bool pte_present(pteval_t e) { return e & _PAGE_PRESENT; }
/* What mincore and zap treat as a mapped entry: present or PROT_NONE. */
static inline bool pte_mapped(pteval_t e) { return e & (_PAGE_PRESENT | _PAGE_PROTNONE); }
static inline pfn_t pte_pfn(pteval_t e) { return (e & PTE_PFN_MASK) >> PAGE_SHIFT; }
static inline pteval_t pfn_pte(pfn_t pfn, pteval_t prot) { return (pfn << PAGE_SHIFT) | prot; }

static inline pteval_t *table_virt(struct smm_pool *pool, pteval_t entry)
{
	return pfn_to_virt(pool, pte_pfn(entry));
}

static inline pteval_t pte_read(pteval_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void pte_write(pteval_t *p, pteval_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline pteval_t pte_xchg(pteval_t *p, pteval_t v) { return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL); }
/* Table entries are published with release so a walker that sees the
 * entry sees the zeroed table behind it (the kernel's smp_wmb in
 * pmd_populate paths). */
static inline pteval_t table_read(pteval_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

/* A PTE table's count of non-none entries, changed under its ptl. */
static inline void pte_table_inc(struct smm_pool *pool, pteval_t *pte)
{
	atomic_fetch_add_explicit(&virt_to_page(pool, pte)->pt_count, 1,
				  memory_order_relaxed);
}
static inline void pte_table_sub(struct smm_pool *pool, pteval_t *pte, int n)
{
	atomic_fetch_sub_explicit(&virt_to_page(pool, pte)->pt_count, n,
				  memory_order_relaxed);
}

struct smm_mm;
struct mmu_gather;

/* Make sure a PTE table covers @addr, allocating levels; store the entry
 * for @addr as it was then in *@entry (it may change as soon as this
 * returns). 0 or -ENOMEM. Caller holds mmap_lock or a VMA lock. */
int pte_alloc(struct smm_mm *mm, uint64_t addr, pteval_t *entry);
/* Walk to the PTE table for @addr without allocating; NULL if none. A
 * table returned stays valid memory until pte_unmap() (semi-locked
 * walkers: it may be unlinked meanwhile and then reads as empty). */
pteval_t *pte_offset_map(struct smm_mm *mm, uint64_t addr, pfn_t *table_pfn);
void pte_unmap(pteval_t *pte);
/*
 * Map and lock the PTE table for @addr: returns the table with its ptl
 * held, rechecking after taking the lock that the PMD entry still points
 * at the same table (retrying if not), or NULL if there is no table.
 */
pteval_t *pte_offset_map_lock(struct smm_mm *mm, uint64_t addr, spinlock_t **ptlp);
void pte_unmap_unlock(spinlock_t *ptl);

/*
 * Clear the table entry *@entryp, mark the table it pointed to dead (an
 * installer holding the lock that guards *@entryp will see it), and take
 * it off the counts: its parent's pt_count and the level's @counter.
 * Returns the table's frame, for the caller to queue on its mmu_gather
 * once it holds no page-table lock. Caller holds what guards *@entryp.
 */
pfn_t unlink_table(struct smm_mm *mm, pteval_t *entryp, atomic_long *counter);

/* Linux's free_pgd_range(): free the tables covering [addr, end) that no
 * mapping in [floor, ceiling) can need (ceiling 0 means the top). */
void free_pgd_range(struct mmu_gather *tlb, uint64_t addr, uint64_t end,
		    uint64_t floor, uint64_t ceiling);
/* Free every table below the PGD (address space teardown). */
void free_all_pgtables(struct smm_mm *mm);

#endif
