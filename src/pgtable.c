/*
 * pgtable.c - installing page-table levels on demand (alloc_level, for the
 * one walk's installing walkers, pte_alloc_map), and freeing tables:
 * unlink_table() and Linux's free_pgd_range() with its floor/ceiling rule.
 *
 * Locking: a PGD or PUD entry is set and cleared under mm->page_table_lock,
 * a PMD entry under its PMD table's lock (asserted by the setters and by
 * unlink_table). Installers hold mmap_lock or a VMA lock; free_pgd_range()
 * holds mmap_lock (for read in munmap, for write in mremap and MAP_FIXED)
 * over a range no VMA covers and none can be mapped into, so no locked or
 * semi-locked walker can be inside it. The reclaim schemes also free empty
 * tables under mmap_lock held for read (pt_scheme*.c), which is why
 * installers walk as the scheme says (walk_rcu) and ask it (pte_install)
 * under the lock whether the table they install into is being freed, and
 * why free_pgd_range() walks under RCU and skips a shared upper table
 * they unlinked. Lockless walkers are kept safe by the TLB flush and RCU
 * in mmu_gather.
 */
#include <errno.h>
#include "pagewalk.h"

static atomic_long *level_counter(struct smm_mm *mm, int level)
{
	return level == 3 ? &mm->nr_puds :
	       level == 2 ? &mm->nr_pmds :
			    &mm->nr_ptes;
}

/*
 * Two walkers may race to fill the same entry: each allocates a zeroed
 * table, takes the entry's lock, and the loser frees its table and uses the
 * winner's. With schemes that free empty tables, the table holding
 * *@entryp may have been unlinked since the walker read the entry above
 * it: the freer marks it dead under the same lock, and the scheme's
 * pte_install sees the mark. The walk's RCU section (walk_rcu) keeps that
 * table valid memory meanwhile.
 */
int alloc_level(struct pt_walk *w, pteval_t *entryp, int level, pteval_t *ep)
{
	struct smm_mm *mm = w->mm;
	struct smm_pool *pool = mm->pool;
	const struct pt_scheme_ops *ops = mm->pt_ops;
	struct page *parent = virt_to_page(pool, entryp), *page;
	spinlock_t *lock = pt_entry_lock(mm, entryp);
	pteval_t e;
	pfn_t pfn;

	pfn = alloc_frame(pool, PG_TABLE);
	if (pfn == NO_PFN)
		return -ENOMEM;
	page = pfn_to_page(pool, pfn);
	page->pt_level = (short)level;
	page->pt_owner = mm;
	race_point();
	spin_lock_class(lock, level == 1 ? LC_PMD : LC_PAGE_TABLE);
	if (ops->pte_install) {
		if (unlikely(!ops->pte_install(w, parent, page))) {
			spin_unlock(lock);
			free_table_now(pool, pfn);
			return -EAGAIN;
		}
	} else {
		/* Only munmap and exit free tables: none can be dying here. */
		VM_BUG_ON(atomic_load(&parent->flags) & PG_PT_DEAD);
	}
	e = table_read(entryp);
	if (!pt_entry_table(e)) {
		VM_BUG_ON(e);
		e = pfn_pte(pfn, _PAGE_TABLE);
		/* Release: the zeroed table is visible before the entry. */
		set_table_entry(mm, entryp, e);
		pt_count_add(parent, 1);
		atomic_fetch_add(level_counter(mm, level), 1);
		pfn = NO_PFN;
		if (level == 1)
			w->installed = true;
	}
	spin_unlock(lock);
	if (pfn != NO_PFN)
		free_table_now(pool, pfn);
	*ep = e;
	return 0;
}

/* ---- freeing tables: free_pgd_range and its levels ---- */

void unlink_table(struct mmu_gather *tlb, pteval_t *entryp)
{
	struct smm_mm *mm = tlb->mm;
	struct smm_pool *pool = mm->pool;
	pteval_t e;
	struct page *table;

	assert_entry_locked(mm, entryp);
	e = __pte_xchg(entryp, 0);
	VM_BUG_ON(!pt_entry_table(e));
	table = pfn_to_page(pool, pte_pfn(e));
	atomic_fetch_or(&table->flags, PG_PT_DEAD);
	pt_count_add(virt_to_page(pool, entryp), -1);
	atomic_fetch_sub(level_counter(mm, table->pt_level), 1);
	tlb_remove_table(tlb, pte_pfn(e));
}

/*
 * A table covering the @mask-aligned slot around [start, end) may be freed
 * only if that slot lies within [floor, ceiling): no mapping outside the
 * range being freed can need it. The unsigned "- 1" comparisons let
 * ceiling 0 mean the top of the address space.
 */
static bool slot_free(uint64_t start, uint64_t end, uint64_t floor,
		      uint64_t ceiling, uint64_t mask)
{
	start &= mask;
	if (start < floor)
		return false;
	if (ceiling) {
		ceiling &= mask;
		if (!ceiling)
			return false;
	}
	return end - 1 <= ceiling - 1;
}

/* Planted bug (docs/LOCKING.md): free_pgd_range() outside RCU. */
#ifdef SMM_BUG_FREE_PGD_NO_RCU
#define BUG_FREE_PGD_NO_RCU 1
#else
#define BUG_FREE_PGD_NO_RCU 0
#endif

#ifdef SMM_DEBUG
/* Test hook: free_pgd_range() found the PMD table for @addr and has not
 * locked it yet (tests/test_reclaim.c). */
void (*smm_debug_free_pgd_hook)(struct smm_mm *mm, uint64_t addr);
#endif

/*
 * @pmd is the PMD table @pudp pointed at when the caller read it. Under
 * mmap_lock held for read (munmap), a fault's zap beside the range may
 * have emptied and unlinked it since (eager and pmd-rwsem free a PMD table
 * that empties, and one that straddles floor or ceiling is shared with a
 * remaining VMA): the RCU read section keeps its memory, the dead mark,
 * set under its lock, says it is gone, and then it held no entry either.
 */
static void free_pmd_range(struct mmu_gather *tlb, pteval_t *pudp,
			   pteval_t *pmd, uint64_t addr, uint64_t end,
			   uint64_t floor, uint64_t ceiling)
{
	struct smm_mm *mm = tlb->mm;
	struct page *pmd_page = virt_to_page(mm->pool, pmd);
	spinlock_t *pmd_lock = &pmd_page->ptl;
	uint64_t start = addr, next;
	bool dead;

	spin_lock_class(pmd_lock, LC_PMD);
	/* A table we walk is never back in the pool: RCU holds it. */
	VM_BUG_ON(atomic_load(&pmd_page->flags) & PG_FREE);
	dead = atomic_load(&pmd_page->flags) & PG_PT_DEAD;
	if (!dead) {
		do {
			next = pmd_addr_end(addr, end);
			if (pt_entry_table(table_read(&pmd[pmd_index(addr)])))
				unlink_table(tlb, &pmd[pmd_index(addr)]);
		} while (addr = next, addr != end);
	}
	spin_unlock(pmd_lock);

	if (!dead && slot_free(start, end, floor, ceiling, PUD_MASK)) {
		spin_lock_class(&mm->page_table_lock, LC_PAGE_TABLE);
		unlink_table(tlb, pudp);
		spin_unlock(&mm->page_table_lock);
	}
}

static void free_pud_range(struct mmu_gather *tlb, pteval_t *pgdp,
			   pteval_t *pud, uint64_t addr, uint64_t end,
			   uint64_t floor, uint64_t ceiling)
{
	struct smm_mm *mm = tlb->mm;
	pteval_t e;
	struct page *pud_page = virt_to_page(mm->pool, pud);
	uint64_t start = addr, next;

	do {
		next = pud_addr_end(addr, end);
		e = table_read(&pud[pud_index(addr)]);
		if (pt_entry_table(e)) {
#ifdef SMM_DEBUG
			if (smm_debug_free_pgd_hook)
				smm_debug_free_pgd_hook(mm, addr);
#endif
			free_pmd_range(tlb, &pud[pud_index(addr)],
				       table_virt(mm->pool, e), addr, next,
				       floor, ceiling);
		}
	} while (addr = next, addr != end);

	if (slot_free(start, end, floor, ceiling, PGDIR_MASK)) {
		spin_lock_class(&mm->page_table_lock, LC_PAGE_TABLE);
		/* Gone already if a fault's zap emptied it (see above). */
		if (!(atomic_load(&pud_page->flags) & PG_PT_DEAD))
			unlink_table(tlb, pgdp);
		spin_unlock(&mm->page_table_lock);
	}
}

void free_pgd_range(struct mmu_gather *tlb, uint64_t addr, uint64_t end,
		    uint64_t floor, uint64_t ceiling)
{
	struct smm_mm *mm = tlb->mm;
	uint64_t next;

	/* Write (mremap, MAP_FIXED) or read (munmap after its downgrade). */
	mmap_assert_locked(mm);
	/*
	 * PTE tables cover PMD_SIZE each. Round the range out to whole PTE
	 * tables, then pull each end back in by one table if that table
	 * reaches below floor or above ceiling: a table shared with a
	 * mapping outside [floor, ceiling) must stay (ceiling 0: the top).
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
	if (!BUG_FREE_PGD_NO_RCU)
		urcu_memb_read_lock();
	do {
		pteval_t e = table_read(&mm->pgd[pgd_index(addr)]);

		next = pgd_addr_end(addr, end);
		if (pt_entry_table(e))
			free_pud_range(tlb, &mm->pgd[pgd_index(addr)],
				       table_virt(mm->pool, e), addr, next,
				       floor, ceiling);
	} while (addr = next, addr != end);
	if (!BUG_FREE_PGD_NO_RCU)
		urcu_memb_read_unlock();
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
		spin_lock_class(&mm->page_table_lock, LC_PAGE_TABLE);
		set_table_entry(mm, &mm->pgd[i], 0);
		spin_unlock(&mm->page_table_lock);
	}
}
