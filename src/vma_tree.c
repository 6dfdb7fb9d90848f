/*
 * vma_tree.c - the VMA tree that lookups search under RCU: a persistent
 * (path-copying) treap keyed by vm_start.
 *
 * Published nodes are immutable. A writer builds the next version by
 * copying the nodes on the paths it changes, rebuilds the key range it
 * touched from the VMA list, and publishes the new root with one pointer
 * store; the nodes that dropped out of the tree are freed after an RCU grace
 * period. A reader that loaded the old root keeps a consistent old tree.
 * Lookup costs O(log n) expected; an update copies O(log n) nodes plus the
 * VMAs of the range it changed, never the whole tree.
 *
 * Every update draws its nodes from a per-mm reserve that the writer fills
 * *before* it changes anything (vma_tree_reserve()), so that a failed
 * allocation leaves the address space as it was. The reserve bound uses the
 * height each node records.
 *
 * Locking: updates and the reserve under mmap_lock held for write; lookups
 * under mmap_lock or the RCU read lock.
 */
#include <errno.h>
#include "mm.h"

struct vma_node {
	uint64_t key; /* vma->vm_start when inserted */
	struct vm_area_struct *vma;
	struct vma_node *left, *right;
	uint32_t prio; /* heap order: parent >= child */
	uint16_t height;
	bool fresh;	       /* allocated by the current update */
	struct vma_node *next; /* reserve, fresh list or garbage */
	struct vma_node *stk;  /* build_range()'s stack */
	struct rcu_head rcu;
};

/* Writer-private state of one update. */
struct tree_update {
	struct smm_mm *mm;
	struct vma_node *fresh;	  /* nodes of this update */
	struct vma_node *garbage; /* published nodes that drop out */
};

static inline int height(struct vma_node *n)
{
	return n ? n->height : 0;
}

static inline void fix_height(struct vma_node *n)
{
	n->height = (uint16_t)(1 + MAX(height(n->left), height(n->right)));
}

static uint32_t next_prio(struct smm_mm *mm)
{
	/* xorshift32: the priorities only need to look random. */
	uint32_t x = mm->tree_seed;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	mm->tree_seed = x;
	return x;
}

static struct vma_node *node_take(struct tree_update *u)
{
	struct smm_mm *mm = u->mm;
	struct vma_node *n = mm->tree_reserve;

	BUG_ON(!n); /* vma_tree_reserve() promised enough */
	mm->tree_reserve = n->next;
	mm->tree_reserve_nr--;
	n->fresh = true;
	n->next = u->fresh;
	u->fresh = n;
	return n;
}

/* A node the update may change: @n itself if this update made it,
 * otherwise a copy, with @n queued for freeing after publication. */
static struct vma_node *node_own(struct tree_update *u, struct vma_node *n)
{
	struct vma_node *c;

	if (n->fresh)
		return n;
	c = node_take(u);
	c->key = n->key;
	c->vma = n->vma;
	c->left = n->left;
	c->right = n->right;
	c->prio = n->prio;
	c->height = n->height;
	n->next = u->garbage;
	u->garbage = n;
	return c;
}

/* Split @t into keys < @key (*l) and keys >= @key (*r). */
static void split(struct tree_update *u, struct vma_node *t, uint64_t key,
		  struct vma_node **l, struct vma_node **r)
{
	if (!t) {
		*l = *r = NULL;
		return;
	}
	t = node_own(u, t);
	if (t->key < key) {
		split(u, t->right, key, &t->right, r);
		*l = t;
	} else {
		split(u, t->left, key, l, &t->left);
		*r = t;
	}
	fix_height(t);
}

/* Join @l and @r, every key of @l below every key of @r. */
static struct vma_node *merge(struct tree_update *u, struct vma_node *l,
			      struct vma_node *r)
{
	if (!l)
		return r;
	if (!r)
		return l;
	if (l->prio >= r->prio) {
		l = node_own(u, l);
		l->right = merge(u, l->right, r);
		fix_height(l);
		return l;
	}
	r = node_own(u, r);
	r->left = merge(u, l, r->left);
	fix_height(r);
	return r;
}

/* Every node of a subtree that drops out is garbage (or, if fresh, back
 * to the reserve). */
static void drop_subtree(struct tree_update *u, struct vma_node *t)
{
	if (!t)
		return;
	drop_subtree(u, t->left);
	drop_subtree(u, t->right);
	if (t->fresh) {
		t->fresh = false; /* unlinked from the fresh list below */
		t->vma = NULL;
	} else {
		t->next = u->garbage;
		u->garbage = t;
	}
}

/*
 * Build a treap from the list VMAs starting at @v and below @hi, in order,
 * with random priorities: the stack-based Cartesian-tree build, O(m). The
 * stack is the right spine, linked through ->stk.
 */
static struct vma_node *build_range(struct tree_update *u,
				    struct vm_area_struct *v, uint64_t hi)
{
	struct vma_node *top = NULL, *root = NULL;

	for (; v && v->vm_start < hi; v = v->vm_next) {
		struct vma_node *n = node_take(u), *last = NULL;

		n->key = v->vm_start;
		n->vma = v;
		n->right = NULL;
		n->prio = next_prio(u->mm);
		while (top && top->prio < n->prio) {
			last = top;
			top = top->stk;
		}
		n->left = last;
		if (top)
			top->right = n;
		else
			root = n;
		n->stk = top;
		top = n;
	}
	return root;
}

/* Post-order height fix of the freshly built subtree. */
static void fix_heights(struct vma_node *t)
{
	if (!t)
		return;
	fix_heights(t->left);
	fix_heights(t->right);
	fix_height(t);
}

static void free_chain_cb(struct rcu_head *head)
{
	struct vma_node *n = container_of(head, struct vma_node, rcu);

	while (n) {
		struct vma_node *next = n->next;

		free(n);
		n = next;
	}
}

/*
 * Replace the tree's nodes for keys in [lo, hi) with nodes for the VMAs
 * of the list whose vm_start lies in [lo, hi), and publish the result. The
 * caller changed the list; every VMA whose vm_start it changed, and every
 * VMA it added or removed, must have its old and new vm_start in [lo, hi).
 */
void vma_tree_rebuild(struct smm_mm *mm, uint64_t lo, uint64_t hi)
{
	struct tree_update u = { .mm = mm };
	struct vma_node *l, *mid, *r, *root = mm->vma_root, *n, *next;
	struct vm_area_struct *v;

	mmap_assert_write_locked(mm);
	split(&u, root, lo, &l, &mid);
	split(&u, mid, hi, &mid, &r);
	drop_subtree(&u, mid);
	/*
	 * Where the range starts in the list: after the last VMA of @l (keys
	 * below @lo, unchanged VMAs by the contract above, so that VMA is
	 * still on the list and its successor is the first VMA at or above
	 * @lo), or at the head when @l is empty. Not a walk from the head.
	 */
	for (n = l; n && n->right; n = n->right)
		;
	v = n ? n->vma->vm_next : mm->vma_head;
	while (v && v->vm_start < lo)
		v = v->vm_next;
	mid = build_range(&u, v, hi);
	fix_heights(mid);
	root = merge(&u, merge(&u, l, mid), r);
	rcu_assign_pointer(mm->vma_root, root);

	/* Fresh nodes are now published; dropped fresh ones go back. */
	for (n = u.fresh; n; n = next) {
		next = n->next;
		if (n->fresh) {
			n->fresh = false;
			n->next = NULL;
		} else {
			n->next = mm->tree_reserve;
			mm->tree_reserve = n;
			mm->tree_reserve_nr++;
		}
	}
	if (u.garbage)
		urcu_memb_call_rcu(&u.garbage->rcu, free_chain_cb);
#ifdef SMM_DEBUG
	vma_tree_check(mm);
#endif
}

#ifdef SMM_DEBUG
/* In-order walk: keys strictly increasing, each node's key its VMA's
 * vm_start, heights right, and the sequence exactly the list. */
static struct vm_area_struct *check_node(struct vma_node *t,
					 struct vm_area_struct *v)
{
	if (!t)
		return v;
	BUG_ON(t->fresh);
	BUG_ON(t->height != 1 + MAX(height(t->left), height(t->right)));
	v = check_node(t->left, v);
	BUG_ON(!v || v != t->vma || t->key != v->vm_start);
	return check_node(t->right, v->vm_next);
}

void vma_tree_check(struct smm_mm *mm)
{
	BUG_ON(check_node(mm->vma_root, mm->vma_head) != NULL);
}
#endif

/*
 * Make sure the reserve holds enough nodes for @updates updates that each
 * rebuild up to @m VMAs: two splits copy at most one path each, the two
 * merges at most the spines they walk (each update can deepen the tree by
 * at most the @m nodes it adds), and each rebuilt range needs @m nodes.
 */
int vma_tree_reserve(struct smm_mm *mm, size_t m, int updates)
{
	size_t h = (size_t)height(mm->vma_root) + 2;
	size_t need = (size_t)updates * (6 * (h + m) + 8) + 3 * m;

	mmap_assert_write_locked(mm);
	while (mm->tree_reserve_nr < need) {
		struct vma_node *n = pool_zalloc(mm->pool, sizeof(*n));

		if (!n)
			return -ENOMEM;
		n->next = mm->tree_reserve;
		mm->tree_reserve = n;
		mm->tree_reserve_nr++;
	}
	return 0;
}

static void free_tree_now(struct vma_node *t)
{
	if (!t)
		return;
	free_tree_now(t->left);
	free_tree_now(t->right);
	free(t);
}

static void free_tree_cb(struct rcu_head *head)
{
	free_tree_now(container_of(head, struct vma_node, rcu));
}

/* Unpublish the whole tree (address space teardown); lockless readers may
 * still be in it, so it goes after a grace period. Cannot fail. */
void vma_tree_clear(struct smm_mm *mm)
{
	struct vma_node *root = mm->vma_root;

	mmap_assert_write_locked(mm);
	rcu_assign_pointer(mm->vma_root, NULL);
	if (root)
		urcu_memb_call_rcu(&root->rcu, free_tree_cb);
}

/* Free the reserve: the mm itself is going. */
void vma_tree_destroy(struct smm_mm *mm)
{
	BUG_ON(mm->vma_root);
	while (mm->tree_reserve) {
		struct vma_node *n = mm->tree_reserve;

		mm->tree_reserve = n->next;
		free(n);
	}
	mm->tree_reserve_nr = 0;
}

/*
 * The first VMA with vm_end > @addr: the VMA with the largest key <= addr
 * if it still extends past @addr, else the one with the smallest key above
 * it. Works on any consistent version of the tree.
 */
static struct vm_area_struct *tree_find(struct vma_node *t, uint64_t addr)
{
	struct vma_node *floor = NULL, *ceil = NULL;

	while (t) {
		if (t->key <= addr) {
			floor = t;
			t = rcu_dereference(t->right);
		} else {
			ceil = t;
			t = rcu_dereference(t->left);
		}
	}
	if (floor && READ_ONCE(floor->vma->vm_end) > addr)
		return floor->vma;
	return ceil ? ceil->vma : NULL;
}

struct vm_area_struct *find_vma(struct smm_mm *mm, uint64_t addr)
{
	mmap_assert_locked(mm);
	return tree_find(mm->vma_root, addr);
}

struct vm_area_struct *find_vma_prev(struct smm_mm *mm, uint64_t addr,
				     struct vm_area_struct **prev)
{
	struct vm_area_struct *vma = find_vma(mm, addr);

	*prev = vma ? vma->vm_prev : mm->vma_tail;
	return vma;
}

struct vm_area_struct *vma_lookup(struct smm_mm *mm, uint64_t addr)
{
	struct vm_area_struct *vma = find_vma(mm, addr);

	return vma && vma->vm_start <= addr ? vma : NULL;
}

/*
 * Lookup under the RCU read lock, without mmap_lock: the VMA returned was
 * in the tree during the search and is not freed before the caller's
 * rcu_read_unlock(); its bounds may change under the caller, who must lock
 * it and recheck them.
 */
struct vm_area_struct *lockless_vma_lookup(struct smm_mm *mm, uint64_t addr)
{
	struct vm_area_struct *vma =
		tree_find(rcu_dereference(mm->vma_root), addr);

	return vma && READ_ONCE(vma->vm_start) <= addr ? vma : NULL;
}
