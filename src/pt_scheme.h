/*
 * pt_scheme.h - the PTE-table schemes: how a walker keeps the page tables
 * it walks alive, and when empty tables are freed. One interface, one file
 * per scheme (pt_scheme_*.c); an address space picks its scheme at creation
 * (smm_mm_opts.scheme), so one binary runs every design side by side.
 *
 * Who calls what. Walkers never call a scheme directly. They reach the
 * tables through the one walk of their class (pagewalk.h):
 *
 *   locked       pte_offset_map_lock() .. pte_unmap_unlock()
 *   semi-locked  pte_offset_map()      .. pte_unmap()
 *   installing   pte_alloc_map()       .. pte_unmap()
 *   lockless     pte_offset_lockless() .. pte_lockless_end()
 *   zapping      walk_page_range_vma() with a zap's mm_walk_ops
 *
 * and those call the hooks below at the points where the scheme must
 * protect the walk. The order for a semi-locked or locked walker is
 *
 *   [rcu_read_lock if walk_rcu or map_rcu]  read PGD, PUD, PMD entries
 *   pte_map [ends RCU if map_rcu]  use the table
 *   pte_unmap [rcu_read_unlock if walk_rcu]
 *
 * without pte_map and pte_unmap if there was no table. A locked walker
 * takes the table's ptl after pte_map and rechecks under it that the PMD
 * entry still points at the table (pagewalk.c); it drops the ptl before
 * pte_unmap.
 *
 * A NULL hook does nothing (pte_map: accepts every table). The schemes:
 *
 *   none        no walk_rcu, every hook NULL: only munmap, mremap and
 *               exit free tables, over a range that no VMA covers and no
 *               writer can map into meanwhile, so no semi-locked or
 *               locked walker can be on them; lockless walkers are
 *               covered by the TLB shootdown.
 *   pt-reclaim  walk_rcu: PTE tables are freed under mmap_lock held for
 *               read, through RCU.
 *   eager       walk_rcu, which covers the upper levels it frees too, and
 *               pte_install refuses a parent table that is being freed.
 *   refcount    Qi Zheng's: pte_map takes a reference on the PTE table
 *               (pte_try_get, under RCU: map_rcu), pte_unmap drops it and
 *               frees the table when the count (entries + walkers) ends
 *               at zero.
 *   pmd-rwsem   Jason Gunthorpe's: pte_map read-locks the PMD table (once
 *               per walk, under RCU: map_rcu); zap_leave write-locks it to
 *               free empty PTE tables below, and the PMD and PUD tables
 *               that empties.
 *
 * Locking: see docs/LOCKING.md, "PTE-table schemes".
 */
#ifndef SMM_PT_SCHEME_H
#define SMM_PT_SCHEME_H

#include "mm.h"

struct pt_walk;

/* Why a range is being zapped: the schemes free tables for some only. */
enum zap_reason {
	ZAP_MUNMAP,   /* munmap, MAP_FIXED replacement */
	ZAP_DONTNEED, /* MADV_DONTNEED */
	ZAP_PAGEOUT,  /* clean lazily-freed pages dropped (MADV_PAGEOUT) */
	ZAP_EXIT,     /* address space teardown: free_all_pgtables() follows */
};

struct pt_scheme_ops {
	const char *name;

	/*
	 * walk_rcu - semi-locked, locked and installing walkers (which hold
	 * mmap_lock or a VMA lock covering the address, and no page-table
	 * lock when they start) walk inside an RCU read-side section, from
	 * before they read the PGD entry until they are done with the
	 * tables (pte_unmap). Set by schemes that
	 * free tables while such walkers may be on them: the scheme then
	 * frees tables only through RCU (mmu_gather), so every table the
	 * walk reaches stays valid memory, possibly unlinked and then
	 * reading as empty. The walkers do this inline; it costs a few
	 * instructions, an indirect call would cost more.
	 */
	bool walk_rcu;

	/*
	 * map_rcu - as walk_rcu, but only until pte_map: the walk holds the
	 * RCU read lock from before it reads the PGD entry until it finds no
	 * table, or until pte_map, which ends it whatever it returns. For
	 * schemes whose pte_map takes a protection of its own (a reference,
	 * a read lock) that RCU only lets it take safely: the table (and
	 * its page metadata) cannot be freed and reused between the walker
	 * reading the entry and taking it.
	 */
	bool map_rcu;

	/*
	 * pte_refcount - the PTE table's pte_refcount counts its non-none
	 * entries too: every install and clear (pte_table_add, under the
	 * ptl) adds to it, atomically, as Qi Zheng's design does.
	 */
	bool pte_refcount;

	/*
	 * keeps_linked - a table pte_map kept stays linked until pte_unmap
	 * (a reference or a read lock, not only valid memory): the locked
	 * walker's recheck of the PMD entry under the ptl cannot fail, and
	 * is done in debug builds only, as an assertion of this promise.
	 */
	bool keeps_linked;

	/*
	 * install_maps - a PTE table an installing walker installed itself
	 * (pte_install said yes, the entry was empty) is already mapped for
	 * that walker: pte_install set up what pte_map would (the walker's
	 * reference), and pte_map is not called for it.
	 */
	bool install_maps;

	/*
	 * pte_map - the walk found @w->pmdval, a PMD entry pointing at a PTE
	 * table, at @w->pmdp. Keep that table (not only its memory) for the
	 * walker until pte_unmap: what "keep" promises beyond walk_rcu's
	 * valid memory is the scheme's (a reference, a read lock). Returns
	 * 1 if it did; 0 if there is no table to keep (the entry is none, or
	 * the table is being freed and holds no entry): the walker treats
	 * the range as having no table; -EAGAIN if the scheme had to wait
	 * (with no RCU held): the walker walks again from the PGD. May
	 * update @w->pmdval if it rereads the entry under its protection.
	 * With map_rcu it ends the walk's RCU section in every case.
	 */
	int (*pte_map)(struct pt_walk *w);
	/* pte_unmap - the walker is done with the table pte_map kept; it
	 * holds its ptl no longer, nor any page-table lock. May free the
	 * table (through @w->tlb if set, else a gather of its own). */
	void (*pte_unmap)(struct pt_walk *w);

	/*
	 * pte_install - an installer holds the lock that guards the entries
	 * of @parent (page_table_lock for a PGD or PUD table, the PMD
	 * table's lock for a PMD table) and is about to store, in an empty
	 * entry of @parent, a pointer to @table: a new, zeroed table of the
	 * level below. Returns false if it must not, because @parent is
	 * being freed; the installer then frees @table and walks again from
	 * the top. The scheme may also set up @table's own state here.
	 */
	bool (*pte_install)(struct pt_walk *w, struct page *parent,
			    struct page *table);

	/*
	 * lockless_begin / lockless_end - bracket a lockless walk of @w->mm
	 * (the hardware walk, GUP-fast) by the calling CPU, inside its
	 * access section (tlb.h). The section already guarantees that no
	 * table the walk reaches is freed before it ends (every scheme frees
	 * tables only after a TLB shootdown, which waits for the section);
	 * a scheme that frees tables otherwise protects them here. Never
	 * sleep, take a lock that a flusher may hold, or fail.
	 */
	void (*lockless_begin)(struct pt_walk *w);
	void (*lockless_end)(struct pt_walk *w);

	/*
	 * zap_leave - a zap for @why (or MADV_PAGEOUT's drop) is done with
	 * the PTE table covering [start, end), which it found at @w->pmdp as
	 * @w->pmdval, cleared entries of, and no longer holds (no ptl, no
	 * pte_map). The caller holds mmap_lock (read or write) and no
	 * page-table lock. The scheme may unlink the table, and levels above,
	 * and queue them on @tlb; it must recheck under the page-table locks
	 * whatever it saw without them (a fault may have refilled the
	 * table). Never fails. A scheme with zap_leave must set walk_rcu or
	 * pte_map: walkers may be on the tables it frees (asserted when an
	 * address space is created).
	 */
	void (*zap_leave)(struct mmu_gather *tlb, struct pt_walk *w,
			  uint64_t start, uint64_t end, enum zap_reason why);
};

extern __hidden const struct pt_scheme_ops pt_scheme_none;
extern __hidden const struct pt_scheme_ops pt_scheme_pt_reclaim;
extern __hidden const struct pt_scheme_ops pt_scheme_eager;
extern __hidden const struct pt_scheme_ops pt_scheme_refcount;
extern __hidden const struct pt_scheme_ops pt_scheme_pmd_rwsem;
const struct pt_scheme_ops *pt_scheme_get(int scheme);

/*
 * The lock word of scheme pmd-rwsem (page->pmd_rwsem of a PMD table):
 * readers in the low bits, and three flags. Here for smm_mm_verify().
 */
#define RWSEM_READERS 0x0fffffffU
#define RWSEM_WAITERS 0x20000000U /* someone sleeps on the hitching post */
#define RWSEM_WWAIT   0x40000000U /* a writer waits: new readers stay out */
#define RWSEM_WRITER  0x80000000U

/*
 * What the schemes share (pt_scheme.c).
 *
 * pt_install_alive - pte_install for schemes that free upper tables under
 * mmap_lock held for read: refuse a parent marked dead.
 *
 * free_empty_pte_table - unlink the PTE table covering @addr if it holds
 * no entry, rechecking under the PMD-table lock and the table's own ptl
 * (with @scan, by looking at all 512 entries, as Linux does; otherwise by
 * the table's count). Returns true if it was unlinked and queued on @tlb.
 * free_empty_upper - after a PTE table went: free the PMD table above
 * @addr if it is now empty, then the PUD table if that is.
 */
bool pt_install_alive(struct pt_walk *w, struct page *parent,
		      struct page *table);
/*
 * zap_left_empty - for a zap_leave that frees what a zap emptied: whether
 * the table the zap left (@w->pmdval) may be empty and worth the locks.
 * Not at exit (free_all_pgtables() follows). The table is no longer the
 * zap's: its page's metadata is still valid memory, but the count may be
 * stale or even another page's. It is only a filter; the scheme decides
 * under its locks.
 */
bool zap_left_empty(struct mmu_gather *tlb, struct pt_walk *w,
		    enum zap_reason why);
bool free_empty_pte_table(struct mmu_gather *tlb, uint64_t addr, bool scan);
void free_empty_upper(struct mmu_gather *tlb, uint64_t addr);
#ifdef SMM_DEBUG
extern void (*smm_debug_pt_free_hook)(struct smm_mm *mm, uint64_t addr);
/* pgtable.c: free_pgd_range() is about to lock the PMD table for @addr. */
extern void (*smm_debug_free_pgd_hook)(struct smm_mm *mm, uint64_t addr);
/* mmap.c: munmap downgraded mmap_lock and is about to zap [start, end). */
extern void (*smm_debug_munmap_hook)(struct smm_mm *mm, uint64_t start,
				     uint64_t end);
#endif

#endif
