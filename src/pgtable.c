/*
 * pgtable.c - allocating page-table levels on demand, mapping and locking
 * PTE tables for walkers, and freeing tables that no VMA needs
 * (free_pgd_range, Linux's floor/ceiling rule).
 *
 * Locking: a PGD or PUD entry is set under mm->page_table_lock, a PMD entry
 * under the PMD table's own lock (split PMD lock), a PTE under the PTE
 * table's ptl. free_pgd_range() runs with mmap_lock held for write over a
 * range no VMA covers, so no locked or semi-locked walker can be inside it;
 * the reclaim schemes (pt_scheme*.c) also free empty tables under
 * mmap_lock held for read, which is why walkers map tables under RCU and
 * installers recheck that the table they install into is not dead.
 * Lockless walkers are kept safe by the TLB flush and RCU in mmu_gather.
 */
#include <errno.h>
#include "mm.h"
#include "pt_scheme.h"

static atomic_long *level_counter(struct smm_mm *mm, int level)
{
	return level == 3 ? &mm->nr_puds : level == 2 ? &mm->nr_pmds : &mm->nr_ptes;
}

/*
 * Return the table that *@entryp points to, allocating and installing a new
 * one of @level if there is none. Two faults may race to fill the same
 * entry: the loser frees its table and uses the winner's. With schemes that
 * free empty tables, the table holding *@entryp (@parent) may have been
 * unlinked since the caller read the entry above it: the freer marks it
 * dead under @lock, so we recheck that under @lock and make the caller
 * retry the walk (*@retry) rather than install into a dying table.
 * Called under the RCU read lock, which keeps @parent's memory valid.
 */
static pteval_t *alloc_level(struct smm_mm *mm, pteval_t *entryp, int level,
			     spinlock_t *lock, int cls, struct page *parent,
			     pfn_t *pfnp, bool *retry)
{
	struct smm_pool *pool = mm->pool;
	pteval_t e = table_read(entryp);
	struct page *page;
	pfn_t pfn;

	if (likely(e & _PAGE_PRESENT))
		goto out;
	pfn = alloc_frame(pool, PG_TABLE);
	if (pfn == NO_PFN)
		return NULL;
	page = pfn_to_page(pool, pfn);
	page->pt_level = level;
	page->pt_owner = mm;
	race_point();
	spin_lock_class(lock, cls);
	if (unlikely(atomic_load(&parent->flags) & PG_PT_DEAD)) {
		spin_unlock(lock);
		free_table_now(pool, pfn);
		*retry = true;
		return NULL;
	}
	e = table_read(entryp);
	if (!(e & _PAGE_PRESENT)) {
		e = pfn_pte(pfn, _PAGE_TABLE);
		/* Release: the zeroed table is visible before the entry. */
		pte_write(entryp, e);
		atomic_fetch_add(&parent->pt_count, 1);
		atomic_fetch_add(level_counter(mm, level), 1);
		pfn = NO_PFN;
	}
	spin_unlock(lock);
	if (pfn != NO_PFN)
		free_table_now(pool, pfn);
out:
	if (pfnp)
		*pfnp = pte_pfn(e);
	return table_virt(pool, e);
}

static inline spinlock_t *table_lock(struct smm_pool *pool, pfn_t table_pfn)
{
	return &pfn_to_page(pool, table_pfn)->ptl;
}

int pte_alloc(struct smm_mm *mm, uint64_t addr, pteval_t *entry)
{
	struct smm_pool *pool = mm->pool;
	pteval_t *pud, *pmd, *pte;
	pfn_t pud_pfn, pmd_pfn;
	bool retry;

	assert_fault_locked(mm);
	do {
		retry = false;
		pte = pmd = NULL;
		urcu_memb_read_lock();
		pud = alloc_level(mm, &mm->pgd[pgd_index(addr)], 3,
				  &mm->page_table_lock, LC_PAGE_TABLE,
				  pfn_to_page(pool, mm->pgd_pfn), &pud_pfn, &retry);
		if (pud)
			pmd = alloc_level(mm, &pud[pud_index(addr)], 2,
					  &mm->page_table_lock, LC_PAGE_TABLE,
					  pfn_to_page(pool, pud_pfn), &pmd_pfn, &retry);
		if (pmd)
			pte = alloc_level(mm, &pmd[pmd_index(addr)], 1,
					  table_lock(pool, pmd_pfn), LC_PMD,
					  pfn_to_page(pool, pmd_pfn), NULL, &retry);
		if (pte)
			*entry = table_read(&pte[pte_index(addr)]);
		urcu_memb_read_unlock();
	} while (retry);
	/* Only existence is promised: the caller maps the table again. */
	return pte ? 0 : -ENOMEM;
}

/* The PMD entry that points at the PTE table for @addr, or NULL. Under
 * the RCU read lock. */
static pteval_t *pmd_entry(struct smm_mm *mm, uint64_t addr)
{
	struct smm_pool *pool = mm->pool;
	pteval_t e;

	e = table_read(&mm->pgd[pgd_index(addr)]);
	if (!(e & _PAGE_PRESENT))
		return NULL;
	e = table_read(&table_virt(pool, e)[pud_index(addr)]);
	if (!(e & _PAGE_PRESENT))
		return NULL;
	return &table_virt(pool, e)[pmd_index(addr)];
}

/*
 * Semi-locked walkers: the table found stays valid memory until
 * pte_unmap(), because schemes that free tables under mmap_lock held for
 * read free them through RCU; it may be unlinked meanwhile, and then only
 * reads as empty. Linux's pte_offset_map() since 6.5.
 */
pteval_t *pte_offset_map(struct smm_mm *mm, uint64_t addr, pfn_t *table_pfn)
{
	pteval_t *pmdp, e;

	urcu_memb_read_lock();
	pmdp = pmd_entry(mm, addr);
	if (!pmdp)
		goto none;
	e = table_read(pmdp);
	if (!(e & _PAGE_PRESENT))
		goto none;
	if (table_pfn)
		*table_pfn = pte_pfn(e);
	return table_virt(mm->pool, e);
none:
	urcu_memb_read_unlock();
	return NULL;
}

void pte_unmap(pteval_t *pte)
{
	urcu_memb_read_unlock();
}

pteval_t *pte_offset_map_lock(struct smm_mm *mm, uint64_t addr, spinlock_t **ptlp)
{
	struct smm_pool *pool = mm->pool;
	pteval_t *pmdp, e;
	spinlock_t *ptl;

	for (;;) {
		urcu_memb_read_lock();
		pmdp = pmd_entry(mm, addr);
		e = pmdp ? table_read(pmdp) : 0;
		if (!(e & _PAGE_PRESENT)) {
			urcu_memb_read_unlock();
			return NULL;
		}
		ptl = table_lock(pool, pte_pfn(e));
		race_point();
		spin_lock_class(ptl, LC_PTE);
		/*
		 * The table may have been unlinked (and queued for freeing)
		 * between reading the PMD entry and taking its lock: RCU
		 * keeps it valid memory, but it is no longer ours to change.
		 * A freer unlinks only while holding this ptl, so once the
		 * PMD entry still points at it under the lock, it stays, and
		 * the RCU read lock is no longer needed.
		 */
		if (likely(table_read(pmdp) == e)) {
			urcu_memb_read_unlock();
			*ptlp = ptl;
			return table_virt(pool, e);
		}
		spin_unlock(ptl);
		urcu_memb_read_unlock();
	}
}

void pte_unmap_unlock(spinlock_t *ptl)
{
	spin_unlock(ptl);
}

/* ---- freeing tables: free_pgd_range and its levels ---- */

/* Unlink the table *@entryp points to and queue it on @tlb. */
pfn_t unlink_table(struct smm_mm *mm, pteval_t *entryp, atomic_long *counter)
{
	struct smm_pool *pool = mm->pool;
	pteval_t e = pte_xchg(entryp, 0);

	atomic_fetch_or(&pfn_to_page(pool, pte_pfn(e))->flags, PG_PT_DEAD);
	atomic_fetch_sub(&virt_to_page(pool, entryp)->pt_count, 1);
	atomic_fetch_sub(counter, 1);
	return pte_pfn(e);
}

static void free_pmd_range(struct mmu_gather *tlb, pteval_t *pudp,
			   uint64_t addr, uint64_t end, uint64_t floor,
			   uint64_t ceiling)
{
	struct smm_pool *pool = tlb->mm->pool;
	pteval_t *pmd = table_virt(pool, table_read(pudp));
	uint64_t start = addr, next;

	do {
		next = pmd_addr_end(addr, end);
		if (table_read(&pmd[pmd_index(addr)]) & _PAGE_PRESENT)
			tlb_remove_table(tlb, unlink_table(tlb->mm, &pmd[pmd_index(addr)],
							   &tlb->mm->nr_ptes));
	} while (addr = next, addr != end);

	/*
	 * The PMD table covers a whole PUD_SIZE slot: free it only if that
	 * slot lies within [floor, ceiling), i.e. no mapping outside the
	 * range being freed can need it.
	 */
	start &= PUD_MASK;
	if (start < floor)
		return;
	if (ceiling) {
		ceiling &= PUD_MASK;
		if (!ceiling)
			return;
	}
	if (end - 1 > ceiling - 1)
		return;
	tlb_remove_table(tlb, unlink_table(tlb->mm, pudp, &tlb->mm->nr_pmds));
}

static void free_pud_range(struct mmu_gather *tlb, pteval_t *pgdp,
			   uint64_t addr, uint64_t end, uint64_t floor,
			   uint64_t ceiling)
{
	struct smm_pool *pool = tlb->mm->pool;
	pteval_t *pud = table_virt(pool, table_read(pgdp));
	uint64_t start = addr, next;

	do {
		next = pud_addr_end(addr, end);
		if (table_read(&pud[pud_index(addr)]) & _PAGE_PRESENT)
			free_pmd_range(tlb, &pud[pud_index(addr)], addr, next,
				       floor, ceiling);
	} while (addr = next, addr != end);

	start &= PGDIR_MASK;
	if (start < floor)
		return;
	if (ceiling) {
		ceiling &= PGDIR_MASK;
		if (!ceiling)
			return;
	}
	if (end - 1 > ceiling - 1)
		return;
	tlb_remove_table(tlb, unlink_table(tlb->mm, pgdp, &tlb->mm->nr_puds));
}

void free_pgd_range(struct mmu_gather *tlb, uint64_t addr, uint64_t end,
		    uint64_t floor, uint64_t ceiling)
{
	struct smm_mm *mm = tlb->mm;
	uint64_t next;

	mmap_assert_write_locked(mm);
	/*
	 * PTE tables cover PMD_SIZE each. Round the range out to whole PTE
	 * tables, then pull each end back in by one table if that table
	 * reaches below floor or above ceiling: a table shared with a
	 * mapping outside [floor, ceiling) must stay. The unsigned "- 1"
	 * comparisons let ceiling 0 mean the top of the address space.
	 */
	addr &= PMD_MASK;
	if (addr < floor) {
		addr += PMD_SIZE;
		if (!addr)
			return;
	}
	if (ceiling) {
		ceiling &= PMD_MASK;
		if (!ceiling)
			return;
	}
	if (end - 1 > ceiling - 1)
		end -= PMD_SIZE;
	if (addr > end - 1)
		return;

	tlb->freed_tables = true;
	do {
		next = pgd_addr_end(addr, end);
		if (table_read(&mm->pgd[pgd_index(addr)]) & _PAGE_PRESENT)
			free_pud_range(tlb, &mm->pgd[pgd_index(addr)], addr,
				       next, floor, ceiling);
	} while (addr = next, addr != end);
}

/* Teardown: nothing can walk any more, free every level directly. */
void free_all_pgtables(struct smm_mm *mm)
{
	struct smm_pool *pool = mm->pool;

	for (int i = 0; i < PTRS_PER_TABLE; i++) {
		pteval_t g = mm->pgd[i];
		pteval_t *pud;

		if (!(g & _PAGE_PRESENT))
			continue;
		pud = table_virt(pool, g);
		for (int j = 0; j < PTRS_PER_TABLE; j++) {
			pteval_t u = pud[j];
			pteval_t *pmd;

			if (!(u & _PAGE_PRESENT))
				continue;
			pmd = table_virt(pool, u);
			for (int k = 0; k < PTRS_PER_TABLE; k++) {
				if (pmd[k] & _PAGE_PRESENT) {
					free_table_now(pool, pte_pfn(pmd[k]));
					atomic_fetch_sub(&mm->nr_ptes, 1);
				}
			}
			free_table_now(pool, pte_pfn(u));
			atomic_fetch_sub(&mm->nr_pmds, 1);
		}
		free_table_now(pool, pte_pfn(g));
		atomic_fetch_sub(&mm->nr_puds, 1);
		mm->pgd[i] = 0;
	}
}
