/*
 * pgtable.h - x86-64 page-table entries and levels: 4 levels of 512
 * eight-byte entries, 48-bit addresses; the setters through which every
 * entry is changed, each asserting (debug builds) that the lock guarding
 * the entry is held; installing missing levels (alloc_level) and freeing
 * tables (unlink_table, free_pgd_range).
 *
 * Which lock guards an entry (docs/LOCKING.md, "Who may change what"): a
 * PTE its table's ptl; a PMD entry its PMD table's lock; a PUD or PGD entry
 * mm->page_table_lock. The one exception is the hardware walk, which sets
 * the accessed and dirty bits of a PTE with cmpxchg and no lock: every
 * locked writer therefore clears entries with an exchange.
 */
#ifndef SMM_PGTABLE_H
#define SMM_PGTABLE_H

#include "mm_types.h"

#define _PAGE_PRESENT  0x001ULL
#define _PAGE_RW       0x002ULL
#define _PAGE_USER     0x004ULL
#define _PAGE_ACCESSED 0x020ULL
#define _PAGE_DIRTY    0x040ULL
#define _PAGE_PSE      0x080ULL
#define _PAGE_PROTNONE 0x100ULL /* not present, but a PROT_NONE page */
/* Software bit (x86's SOFTW2, as Linux's _PAGE_UFFD_WP): write-protected
 * by smm_uffd_wp(); means something only in a VM_UFFD_WP VMA (uffd.c). */
#define _PAGE_UFFD_WP 0x400ULL
#define PTE_PFN_MASK  0x000ffffffffff000ULL
#define _PAGE_TABLE   (_PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED)

#define PTRS_PER_TABLE 512
#define PAGE_SHIFT     SMM_PAGE_SHIFT
#define PAGE_SIZE      SMM_PAGE_SIZE
#define PAGE_MASK      (~(PAGE_SIZE - 1))
#define PMD_SHIFT      21
#define PUD_SHIFT      30
#define PGDIR_SHIFT    39
#define PMD_SIZE       (1ULL << PMD_SHIFT)
#define PUD_SIZE       (1ULL << PUD_SHIFT)
#define PGDIR_SIZE     (1ULL << PGDIR_SHIFT)
#define PMD_MASK       (~(PMD_SIZE - 1))
#define PUD_MASK       (~(PUD_SIZE - 1))
#define PGDIR_MASK     (~(PGDIR_SIZE - 1))

#define PAGE_ALIGN(x) (((x) + PAGE_SIZE - 1) & PAGE_MASK)

static inline unsigned int pgd_index(uint64_t a)
{
	return (a >> PGDIR_SHIFT) & 511;
}
static inline unsigned int pud_index(uint64_t a)
{
	return (a >> PUD_SHIFT) & 511;
}
static inline unsigned int pmd_index(uint64_t a)
{
	return (a >> PMD_SHIFT) & 511;
}
static inline unsigned int pte_index(uint64_t a)
{
	return (a >> PAGE_SHIFT) & 511;
}

/* End of the table entry's range containing @a, capped at @end. */
static inline uint64_t level_addr_end(uint64_t a, uint64_t end, uint64_t size)
{
	uint64_t b = (a + size) & ~(size - 1);

	return (b - 1 < end - 1) ? b : end;
}
#define pgd_addr_end(a, e) level_addr_end(a, e, PGDIR_SIZE)
#define pud_addr_end(a, e) level_addr_end(a, e, PUD_SIZE)
#define pmd_addr_end(a, e) level_addr_end(a, e, PMD_SIZE)

static inline bool pte_none(pteval_t e)
{
	return e == 0;
}
static inline bool pte_present(pteval_t e)
{
	return e & _PAGE_PRESENT;
}
/* What mincore and zap treat as a mapped entry: present or PROT_NONE. */
static inline bool pte_mapped(pteval_t e)
{
	return e & (_PAGE_PRESENT | _PAGE_PROTNONE);
}
static inline pfn_t pte_pfn(pteval_t e)
{
	return (e & PTE_PFN_MASK) >> PAGE_SHIFT;
}
static inline pteval_t pfn_pte(pfn_t pfn, pteval_t prot)
{
	return (pfn << PAGE_SHIFT) | prot;
}
/* An upper-level entry that points at a table (not none, not a leaf). */
static inline bool pt_entry_table(pteval_t e)
{
	return (e & (_PAGE_PRESENT | _PAGE_PSE)) == _PAGE_PRESENT;
}

static inline pteval_t *table_virt(struct smm_pool *pool, pteval_t entry)
{
	return pfn_to_virt(pool, pte_pfn(entry));
}

/*
 * Reading entries: pte_read() for a PTE (relaxed), table_read() for an
 * upper-level entry or a PTE whose page a lockless walker will use
 * (acquire: table entries and PTEs are published with release, so a walker
 * that sees the entry sees the zeroed table or initialised page behind it;
 * the kernel's smp_wmb() in the pmd_populate paths).
 */
static inline pteval_t pte_read(pteval_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline pteval_t table_read(pteval_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/*
 * Raw stores, with no lock check: for the setters below, and for tests
 * that play a racing CPU. Library code changes entries through the setters.
 */
static inline void __pte_write(pteval_t *p, pteval_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline pteval_t __pte_xchg(pteval_t *p, pteval_t v)
{
	return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL);
}

/* The lock that guards the entries of the table holding @entryp. */
static inline spinlock_t *pt_entry_lock(struct smm_mm *mm, pteval_t *entryp)
{
	struct page *table = virt_to_page(mm->pool, entryp);

	return table->pt_level >= 3 ? &mm->page_table_lock : &table->ptl;
}
/* The ptl of the PTE table that the PMD entry @pmdval points at. */
static inline spinlock_t *pte_lockptr(struct smm_pool *pool, pteval_t pmdval)
{
	return &pfn_to_page(pool, pte_pfn(pmdval))->ptl;
}

#ifdef SMM_DEBUG
#define assert_entry_locked(mm, entryp) \
	lockdep_assert_held(pt_entry_lock((mm), (entryp)))
#else
#define assert_entry_locked(mm, entryp) \
	do {                            \
	} while (0)
#endif

/* Install or change a PTE (ptl held). */
static inline void set_pte(struct smm_mm *mm, pteval_t *ptep, pteval_t v)
{
	assert_entry_locked(mm, ptep);
	__pte_write(ptep, v);
}
/* Replace a PTE and return what it was, accessed/dirty bits included. */
static inline pteval_t ptep_xchg(struct smm_mm *mm, pteval_t *ptep, pteval_t v)
{
	assert_entry_locked(mm, ptep);
	return __pte_xchg(ptep, v);
}
static inline pteval_t ptep_get_and_clear(struct smm_mm *mm, pteval_t *ptep)
{
	return ptep_xchg(mm, ptep, 0);
}
/* Point an upper-level entry at a new table (its lock held). */
static inline void set_table_entry(struct smm_mm *mm, pteval_t *entryp,
				   pteval_t v)
{
	assert_entry_locked(mm, entryp);
	__pte_write(entryp, v);
}

/*
 * A table's count of entries in use (page->pt_count) changes only under the
 * lock that guards those entries, so it needs no read-modify-write: a
 * relaxed load and store, which lockless readers (the schemes' filters)
 * may read at any time.
 */
static inline void pt_count_add(struct page *table, int n)
{
	atomic_store_explicit(&table->pt_count,
			      atomic_load_explicit(&table->pt_count,
						   memory_order_relaxed) +
				      n,
			      memory_order_relaxed);
}

/*
 * A PTE table's entries went from none to used (@n > 0) or back, under its
 * ptl. Scheme "refcount" counts them in pte_refcount too, atomically: its
 * walkers change it without the ptl. The caller keeps the table mapped, so
 * that count cannot reach zero here.
 */
static inline void pte_table_add(struct smm_mm *mm, pteval_t *ptep, int n)
{
	struct page *table = virt_to_page(mm->pool, ptep);

	assert_entry_locked(mm, ptep);
	pt_count_add(table, n);
	if (mm->pt_flags & PTF_REFCOUNT) {
		int old = atomic_fetch_add_explicit(&table->pte_refcount, n,
						    memory_order_relaxed);

		VM_BUG_ON(old + n <= 0);
		(void)old;
	}
}

struct mmu_gather;
struct pt_walk;

/*
 * alloc_level - install a new, empty table of @level at the empty entry
 * *@entryp, or find the one a racing installer put there first. Called by
 * the one walk (pagewalk.h) for walkers that allocate. Stores the entry
 * now present in *@ep. Returns 0, -ENOMEM, or -EAGAIN when the table
 * holding *@entryp is being freed (the scheme's pte_install hook said so):
 * the caller walks again from the top.
 */
int alloc_level(struct pt_walk *w, pteval_t *entryp, int level, pteval_t *ep);

/*
 * unlink_table - clear the table entry *@entryp, mark the table it pointed
 * to dead (an installer holding the lock that guards *@entryp sees it),
 * take it off the counts (its parent's pt_count, the mm's tables of that
 * level) and queue it on @tlb, which frees it after the TLB flush and an
 * RCU grace period. Caller holds the lock that guards *@entryp.
 */
void unlink_table(struct mmu_gather *tlb, pteval_t *entryp);

/* Linux's free_pgd_range(): free the tables covering [addr, end) that no
 * mapping in [floor, ceiling) can need (ceiling 0 means the top).
 * mmap_lock held for write. */
void free_pgd_range(struct mmu_gather *tlb, uint64_t addr, uint64_t end,
		    uint64_t floor, uint64_t ceiling);
/* Free every table below the PGD (address space teardown). */
void free_all_pgtables(struct smm_mm *mm);

#endif
