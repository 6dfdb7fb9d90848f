/*
 * interval_tree.c - the augmented interval tree of interval_tree.h: a
 * treap ordered by start (ties in insertion order), heap-ordered by a
 * random priority (parent >= child), each node recording the largest last
 * of its subtree. Owns no memory and no lock: the nodes are the caller's,
 * and the caller serialises every call on a tree (interval_tree.h).
 */
#include "interval_tree.h"
#include "compiler.h"

/* xorshift32: the tree's priorities; a zero state would stay zero. */
static uint32_t next_prio(struct itree_root *root)
{
	uint32_t x = root->seed ? root->seed : 2463534242u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	root->seed = x;
	return x;
}

/* @n's subtree_last from its own last and its children's. */
static uint64_t compute_subtree_last(const struct itree_node *n)
{
	uint64_t m = n->last;

	if (n->left && n->left->subtree_last > m)
		m = n->left->subtree_last;
	if (n->right && n->right->subtree_last > m)
		m = n->right->subtree_last;
	return m;
}

/* Point the link to @old (its parent's child slot, or the root) at @new. */
static void change_child(struct itree_root *root, struct itree_node *parent,
			 struct itree_node *old, struct itree_node *new)
{
	if (!parent)
		root->node = new;
	else if (parent->left == old)
		parent->left = new;
	else
		parent->right = new;
}

/*
 * Rotate @n up over its parent. The order is kept; @n's subtree now holds
 * exactly what its parent's held, so it takes the parent's subtree_last.
 */
static void rotate_up(struct itree_root *root, struct itree_node *n)
{
	struct itree_node *p = n->parent, *g = p->parent;

	if (p->left == n) {
		p->left = n->right;
		if (n->right)
			n->right->parent = p;
		n->right = p;
	} else {
		p->right = n->left;
		if (n->left)
			n->left->parent = p;
		n->left = p;
	}
	p->parent = n;
	n->parent = g;
	change_child(root, g, p, n);
	n->subtree_last = p->subtree_last;
	p->subtree_last = compute_subtree_last(p);
}

void itree_insert(struct itree_root *root, struct itree_node *n)
{
	struct itree_node **link = &root->node, *parent = NULL;

	VM_BUG_ON(n->start > n->last);
	/* Down to a leaf slot, after every node of start <= n->start. */
	while (*link) {
		parent = *link;
		if (parent->subtree_last < n->last)
			parent->subtree_last = n->last;
		if (n->start < parent->start)
			link = &parent->left;
		else
			link = &parent->right;
	}
	n->left = n->right = NULL;
	n->parent = parent;
	n->subtree_last = n->last;
	n->prio = next_prio(root);
	*link = n;
	/* Then up to where its priority belongs. */
	while (n->parent && n->parent->prio < n->prio)
		rotate_up(root, n);
}

void itree_remove(struct itree_root *root, struct itree_node *n)
{
	struct itree_node *child, *parent;

	VM_BUG_ON(n->parent ? n->parent->left != n && n->parent->right != n :
			      root->node != n);
	/* Down until it has at most one child: the higher child goes up. */
	while (n->left && n->right)
		rotate_up(root,
			  n->left->prio > n->right->prio ? n->left : n->right);
	child = n->left ? n->left : n->right;
	parent = n->parent;
	change_child(root, parent, n, child);
	if (child)
		child->parent = parent;
	/* The ancestors lose n->last; once one is unchanged, so are the rest. */
	for (; parent; parent = parent->parent) {
		uint64_t sl = compute_subtree_last(parent);

		if (sl == parent->subtree_last)
			break;
		parent->subtree_last = sl;
	}
	n->left = n->right = n->parent = NULL;
}

/*
 * The first node of @n's subtree, in order, that overlaps [start, last].
 * The caller knows @n->subtree_last >= start: some node of the subtree
 * ends at or after start. Go to the first such node; it overlaps if it
 * starts at or before last, and if it does not, no later node does.
 */
static struct itree_node *subtree_first(struct itree_node *n, uint64_t start,
					uint64_t last)
{
	for (;;) {
		if (n->left && n->left->subtree_last >= start) {
			n = n->left;
			continue;
		}
		if (n->start > last)
			return NULL;
		if (n->last >= start)
			return n;
		/* The node that ends at or after start is on the right. */
		n = n->right;
		VM_BUG_ON(!n || n->subtree_last < start);
	}
}

struct itree_node *itree_iter_first(struct itree_root *root, uint64_t start,
				    uint64_t last)
{
	struct itree_node *n = root->node;

	if (!n || n->subtree_last < start)
		return NULL;
	return subtree_first(n, start, last);
}

struct itree_node *itree_iter_next(struct itree_node *n, uint64_t start,
				   uint64_t last)
{
	struct itree_node *prev;

	/* Invariant: n->start <= last, and n's left subtree and n are done. */
	for (;;) {
		if (n->right && n->right->subtree_last >= start)
			return subtree_first(n->right, start, last);
		/* Up to the first ancestor we reach from its left child. */
		do {
			prev = n;
			n = n->parent;
			if (!n)
				return NULL;
		} while (n->right == prev);
		if (n->start > last)
			return NULL;
		if (n->last >= start)
			return n;
	}
}

/* Check @n's subtree, whose nodes start in [lo, hi]; returns its size. */
static unsigned long check_subtree(const struct itree_node *n, uint64_t lo,
				   uint64_t hi)
{
	unsigned long nr = 1;

	BUG_ON(n->start > n->last);
	BUG_ON(n->start < lo || n->start > hi);
	BUG_ON(n->subtree_last != compute_subtree_last(n));
	if (n->left) {
		BUG_ON(n->left->parent != n);
		BUG_ON(n->left->prio > n->prio);
		nr += check_subtree(n->left, lo, n->start);
	}
	if (n->right) {
		BUG_ON(n->right->parent != n);
		BUG_ON(n->right->prio > n->prio);
		nr += check_subtree(n->right, n->start, hi);
	}
	return nr;
}

void itree_check(const struct itree_root *root)
{
	if (!root->node)
		return;
	BUG_ON(root->node->parent);
	check_subtree(root->node, 0, UINT64_MAX);
}
