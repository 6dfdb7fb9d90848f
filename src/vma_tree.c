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
 * The writer's view is augmented for placement: each node records the free
 * gap below its VMA and the largest gap of its subtree, so that the highest
 * or lowest gap of a given size in a range is found in O(log n)
 * (vma_tree_find_gap()).
 *
 * Locking: updates, the reserve and the gap fields under mmap_lock held
 * for write; lookups under mmap_lock or the RCU read lock (they read only
 * key, vma, left and right).
 */
#include <errno.h>
#include "mm.h"

struct vma_node {
	uint64_t key; /* vma->vm_start when inserted */
	struct vm_area_struct *vma;
	struct vma_node *left, *right;
	uint32_t prio; /* heap order: parent >= child */
	uint16_t height;
	/*
	 * Writer-only, for placement (mmap_lock held for write; lockless
	 * lookups never read them): gap is the free space below the VMA,
	 * vm_start_gap(vma) minus the previous VMA's vm_end (0 for the
	 * first VMA), clipped at 0; max_gap the largest gap of the subtree.
	 * Like every field they are set before the node is published and
	 * never change after, so the update that changes a VMA's start, its
	 * predecessor or its predecessor's end must rebuild its node: the
	 * rebuilt range always ends with the first VMA above it.
	 */
	uint64_t gap, max_gap;
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

static inline uint64_t max_gap(struct vma_node *n)
{
	return n ? n->max_gap : 0;
}

/* Recompute @n's height and max_gap from its children (a node the update
 * owns: fresh, not yet published). */
static inline void fix_height(struct vma_node *n)
{
	n->height = (uint16_t)(1 + MAX(height(n->left), height(n->right)));
	n->max_gap = MAX(n->gap, MAX(max_gap(n->left), max_gap(n->right)));
}

/* The free space below @v for placement, from the list (mmap_lock). */
static uint64_t vma_gap(const struct vm_area_struct *v)
{
	uint64_t below = v->vm_prev ? v->vm_prev->vm_end : 0;
	uint64_t start = vm_start_gap(v);

	return start > below ? start - below : 0;
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
	c->gap = n->gap;
	c->max_gap = n->max_gap;
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
		n->gap = vma_gap(v);
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

/* Post-order height and max_gap fix of the freshly built subtree. */
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

	tsan_acquire(n);
	while (n) {
		struct vma_node *next = n->next;

		free(n);
		n = next;
	}
}

#ifdef SMM_DEBUG
static void check_fresh(struct smm_mm *mm, struct vma_node *fresh);
#endif

/*
 * Replace the tree's nodes for keys in [lo, hi) with nodes for the VMAs
 * of the list whose vm_start lies in [lo, hi), and publish the result. The
 * caller changed the list; every VMA whose vm_start it changed, and every
 * VMA it added or removed, must have its old and new vm_start in [lo, hi),
 * and every VMA whose vm_end it changed must have its vm_start in [lo, hi)
 * or be the last VMA below @lo.
 */
void vma_tree_rebuild(struct smm_mm *mm, uint64_t lo, uint64_t hi)
{
	struct tree_update u = { .mm = mm };
	struct vma_node *l, *mid, *r, *root = mm->vma_root, *n, *next;
	struct vm_area_struct *v, *w;

	mmap_assert_write_locked(mm);
	split(&u, root, lo, &l, &mid);
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
	/*
	 * The gap below the first VMA at or above @hi depends on the end of
	 * the VMA before it, which the update may have changed (or removed,
	 * or added): rebuild its node too. That VMA itself is unchanged (its
	 * vm_start is not in [lo, hi)), so its key is its vm_start, and no
	 * key of the tree lies between @hi and it.
	 */
	for (w = v; w && w->vm_start < hi; w = w->vm_next)
		;
	if (w)
		hi = w->vm_start + 1;
	split(&u, mid, hi, &mid, &r);
	drop_subtree(&u, mid);
	mid = build_range(&u, v, hi);
	fix_heights(mid);
	root = merge(&u, merge(&u, l, mid), r);
	rcu_assign_pointer(mm->vma_root, root);
#ifdef SMM_DEBUG
	check_fresh(mm, u.fresh);
#endif

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
	if (u.garbage) {
		tsan_release(u.garbage);
		urcu_memb_call_rcu(&u.garbage->rcu, free_chain_cb);
	}
#ifdef SMM_DEBUG
	/*
	 * check_fresh() checked every node this update wrote. The whole
	 * tree is O(n): checking it after every update would make debug
	 * builds quadratic in the number of VMAs, so it runs after every
	 * update only while the mm is small, and otherwise once per
	 * nr_vmas / 8 updates (amortized O(1) per update).
	 */
	if (mm->nr_vmas <= 512 || ++mm->tree_check_skipped >= mm->nr_vmas / 8) {
		mm->tree_check_skipped = 0;
		vma_tree_check(mm);
	}
#endif
}

#ifdef SMM_DEBUG
/* One node's own invariants, given its children: height, max_gap, the
 * gap below its VMA, its key, order with its children. */
static void check_one(struct vma_node *t)
{
	BUG_ON(t->height != 1 + MAX(height(t->left), height(t->right)));
	BUG_ON(t->max_gap !=
	       MAX(t->gap, MAX(max_gap(t->left), max_gap(t->right))));
	BUG_ON(t->vma->detached || t->key != t->vma->vm_start);
	BUG_ON(t->gap != vma_gap(t->vma));
	BUG_ON(t->left && t->left->key >= t->key);
	BUG_ON(t->right && t->right->key <= t->key);
}

/* The nodes the update just wrote (still marked fresh), before they are
 * released: O(log n + m). */
static void check_fresh(struct smm_mm *mm, struct vma_node *fresh)
{
	for (struct vma_node *n = fresh; n; n = n->next)
		if (n->fresh)
			check_one(n);
	BUG_ON(mm->vma_tail && mm->vma_tail->vm_next);
}

/* In-order walk: keys strictly increasing, each node's key its VMA's
 * vm_start, heights and gaps right, and the sequence exactly the list. */
static struct vm_area_struct *check_node(struct vma_node *t,
					 struct vm_area_struct *v)
{
	if (!t)
		return v;
	BUG_ON(t->fresh);
	check_one(t);
	v = check_node(t->left, v);
	BUG_ON(!v || v != t->vma || t->key != v->vm_start);
	return check_node(t->right, v->vm_next);
}

/* The whole tree against the list: O(n). */
void vma_tree_check(struct smm_mm *mm)
{
	BUG_ON(check_node(mm->vma_root, mm->vma_head) != NULL);
	BUG_ON(!mm->vma_head != !mm->vma_tail);
	BUG_ON(mm->vma_tail && mm->vma_tail->vm_next);
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
	size_t h = (size_t)height(mm->vma_root) + 2, need;

	mmap_assert_write_locked(mm);
	m++; /* each rebuild also rebuilds the first VMA above its range */
	need = (size_t)updates * (6 * (h + m) + 8) + 3 * m;
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
	struct vma_node *root = container_of(head, struct vma_node, rcu);

	tsan_acquire(root);
	free_tree_now(root);
}

/* Unpublish the whole tree (address space teardown); lockless readers may
 * still be in it, so it goes after a grace period. Cannot fail. */
void vma_tree_clear(struct smm_mm *mm)
{
	struct vma_node *root = mm->vma_root;

	mmap_assert_write_locked(mm);
	rcu_assign_pointer(mm->vma_root, NULL);
	if (root) {
		tsan_release(root);
		urcu_memb_call_rcu(&root->rcu, free_tree_cb);
	}
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

/* ---- placement: the writer's gap search (mmap_lock held for write) ---- */

struct gap_query {
	uint64_t len, low, high;
	bool topdown;
	uint64_t addr; /* the answer */
};

/*
 * Does the gap below @t's VMA, [previous VMA's vm_end, vm_start_gap),
 * clipped to [low, high), hold len? If so, the answer is its top (top-down)
 * or bottom end.
 */
static bool gap_fits(struct gap_query *q, struct vma_node *t)
{
	struct vm_area_struct *v = t->vma;
	uint64_t gs = v->vm_prev ? v->vm_prev->vm_end : 0;
	uint64_t ge = vm_start_gap(v);

	gs = MAX(gs, q->low);
	ge = MIN(ge, q->high);
	if (ge <= gs || ge - gs < q->len)
		return false;
	q->addr = q->topdown ? ge - q->len : gs;
	return true;
}

/*
 * The rightmost (top-down) or leftmost node of @t whose clipped gap holds
 * len. A subtree whose max_gap is below len holds none. A node's gap lies
 * below its key and above its predecessor's key, so the subtree right of a
 * node with key >= high has only gaps above high, and the one left of a
 * node with key <= low only gaps below low: neither is searched. The
 * remaining subtrees lie in [low, high) but for the gaps that straddle low
 * or high (at most one node each, on one root path), so max_gap decides
 * for all others and the search visits O(height) nodes.
 */
static bool gap_search(struct gap_query *q, struct vma_node *t)
{
	struct vma_node *first, *second;
	bool first_ok, second_ok;

	if (!t || t->max_gap < q->len)
		return false;
	if (q->topdown) {
		first = t->right, second = t->left;
		first_ok = t->key<q->high, second_ok = t->key> q->low;
	} else {
		first = t->left, second = t->right;
		first_ok = t->key > q->low, second_ok = t->key < q->high;
	}
	if (first_ok && gap_search(q, first))
		return true;
	if (t->gap >= q->len && gap_fits(q, t))
		return true;
	return second_ok && gap_search(q, second);
}

/*
 * The gap above the last VMA, [its vm_end, high) clipped to [low, high)
 * (all of [low, high) when there is no VMA).
 */
static bool top_fits(struct smm_mm *mm, struct gap_query *q)
{
	uint64_t gs = mm->vma_tail ? mm->vma_tail->vm_end : 0;

	gs = MAX(gs, q->low);
	if (q->high <= gs || q->high - gs < q->len)
		return false;
	q->addr = q->topdown ? q->high - q->len : gs;
	return true;
}

bool vma_tree_find_gap(struct smm_mm *mm, uint64_t len, uint64_t low,
		       uint64_t high, bool topdown, uint64_t *addr)
{
	struct gap_query q = { len, low, high, topdown, 0 };
	bool found;

	mmap_assert_write_locked(mm);
	if (high < len || high - len < low)
		return false;
	/* Top-down, the gap above the last VMA is the highest candidate;
	 * bottom-up, the last. */
	if (topdown)
		found = top_fits(mm, &q) || gap_search(&q, mm->vma_root);
	else
		found = gap_search(&q, mm->vma_root) || top_fits(mm, &q);
	if (found)
		*addr = q.addr;
	return found;
}
