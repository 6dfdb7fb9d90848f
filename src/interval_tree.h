/*
 * interval_tree.h - an augmented interval tree of closed ranges of
 * uint64_t (interval_tree.c), what a file's i_mmap is made of: the VMAs
 * mapping a file, keyed by the page-offset range each maps. Like Linux's
 * interval_tree_generic.h, but a treap with parent pointers: O(log n)
 * expected insert and remove, a query's first answer in O(log n) and each
 * next one in O(log n) at most, pruned by subtree_last.
 *
 * Nodes are embedded in the caller's structs; the tree allocates nothing.
 * Identical intervals may be inserted any number of times (one per node).
 *
 * Locking: none of its own. The caller serialises every call on a tree
 * (e.g. the file's i_mmap lock): updates exclude all other calls, queries
 * and iterations may run together only with other queries. A node removed
 * during an iteration ends that iteration: look it up again.
 */
#ifndef SMM_INTERVAL_TREE_H
#define SMM_INTERVAL_TREE_H

#include <stdbool.h>
#include <stdint.h>

struct itree_node {
	uint64_t start, last;  /* closed interval [start, last], set by the
				* caller before insert; start <= last */
	uint64_t subtree_last; /* max last in this subtree (the tree's) */
	struct itree_node *left, *right, *parent;
	uint32_t prio; /* treap priority (the tree's) */
};

/* A zeroed root is an empty tree. */
struct itree_root {
	struct itree_node *node;
	uint32_t seed; /* state of the priority generator; 0 is fine */
};

/*
 * Insert @n, whose start and last the caller has set, and which is in no
 * tree. Among nodes of equal start, @n goes after those already there.
 */
void itree_insert(struct itree_root *root, struct itree_node *n);
/* Remove @n, which is in @root's tree. Its tree fields are cleared. */
void itree_remove(struct itree_root *root, struct itree_node *n);

/*
 * Iteration over the nodes whose interval overlaps [start, last], in the
 * tree's order: by start, and nodes of equal start in the order they were
 * inserted. Each overlapping node is returned exactly once:
 *
 *	for (n = itree_iter_first(root, s, l); n; n = itree_iter_next(n, s, l))
 *
 * The first node that overlaps [start, last]; NULL if none.
 */
struct itree_node *itree_iter_first(struct itree_root *root, uint64_t start,
				    uint64_t last);
/* The next overlapping node after @n in the same order; NULL at the end. */
struct itree_node *itree_iter_next(struct itree_node *n, uint64_t start,
				   uint64_t last);

static inline bool itree_empty(const struct itree_root *root)
{
	return !root->node;
}

/*
 * Debug: walk the whole tree, O(n), and BUG_ON a broken order, heap
 * property, subtree_last, parent link, or an interval with start > last.
 */
void itree_check(const struct itree_root *root);

#endif
