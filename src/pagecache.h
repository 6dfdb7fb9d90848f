/*
 * pagecache.h - the page cache's index: a radix tree from page index to
 * struct page, with two marks (dirty, writeback) that can be searched in
 * index order, after Linux's XArray (pagecache.c).
 *
 * Why not liburcu's rculfhash: a hash table has no order, and writeback
 * and truncation walk a file's pages (or its dirty ones) by index; its
 * lock-free resize machinery is more than a per-file tree needs.
 *
 * Locking: lookups (pc_load) run under the RCU read lock with no other
 * lock and may see a tree mid-update: a slot is either the old or the new
 * value. Every other function needs the tree's owner's lock (the file's
 * i_pages_lock). Nodes are freed after a grace period.
 */
#ifndef SMM_PAGECACHE_H
#define SMM_PAGECACHE_H

#include "frame.h"

#define PC_SHIFT 6
#define PC_SLOTS (1 << PC_SHIFT)
#define PC_MASK	 (PC_SLOTS - 1)

enum pc_mark {
	PC_MARK_DIRTY,
	PC_MARK_WRITEBACK,
	PC_NR_MARKS
};

struct pc_node {
	unsigned char shift;  /* index bits below this node's slots */
	unsigned char offset; /* its slot in the parent */
	unsigned short count; /* slots in use */
	struct pc_node *parent;
	/* Bit i: slot i holds a marked page, or a node with one below. */
	uint64_t marks[PC_NR_MARKS];
	void *_Atomic slots[PC_SLOTS]; /* leaves (shift 0): pages */
	struct rcu_head rcu;
};

struct page_tree {
	struct pc_node *_Atomic root;
	struct smm_pool *pool; /* where nodes are allocated (fault injection) */
	uint64_t nr_pages;
};

/* The page at @index, or NULL. RCU read lock held; the page may be
 * leaving the tree: take a reference and check again (filemap.c). */
struct page *pc_load(struct page_tree *t, uint64_t index);
/* Put @page at @index, an empty slot. 0, or -ENOMEM (a node could not be
 * allocated; the tree is as it was). */
int pc_insert(struct page_tree *t, uint64_t index, struct page *page);
/* Empty the slot at @index (it holds a page), clearing its marks; nodes
 * left empty are freed after a grace period. */
void pc_erase(struct page_tree *t, uint64_t index);
void pc_set_mark(struct page_tree *t, uint64_t index, enum pc_mark m);
void pc_clear_mark(struct page_tree *t, uint64_t index, enum pc_mark m);
bool pc_get_mark(struct page_tree *t, uint64_t index, enum pc_mark m);
/*
 * The first page at an index >= *@index (with mark @m, or any page when @m
 * is PC_NR_MARKS), its index stored in *@index; NULL if none.
 */
struct page *pc_find(struct page_tree *t, uint64_t *index, int m);
/* Free every node (the tree must hold no page); after a grace period. */
void pc_destroy(struct page_tree *t);

#endif
