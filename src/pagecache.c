/*
 * pagecache.c - the page cache's radix tree (pagecache.h): 64 slots a
 * node, as many levels as the highest index needs, marks propagated up so
 * that a search for a dirty page skips whole clean subtrees; and
 * set_page_dirty(), which sets the dirty mark of a page's index.
 *
 * Locking: writers hold the owner's i_pages_lock; pc_load() runs under the
 * RCU read lock only. A slot or the root changes with a release store of a
 * fully initialised node or page, so a lockless reader sees either the old
 * value or the new one; emptied nodes are freed after a grace period.
 */
#include <errno.h>
#include <stdlib.h>
#include "filemap.h"

#define PC_MAX_INDEX ((1ULL << 40) - 1) /* 2^52 bytes */

static struct pc_node *node_alloc(struct page_tree *t, unsigned int shift,
				  struct pc_node *parent, unsigned int offset)
{
	struct pc_node *n = pool_zalloc(t->pool, sizeof(*n));

	if (n) {
		n->shift = (unsigned char)shift;
		n->parent = parent;
		n->offset = (unsigned char)offset;
	}
	return n;
}

static void node_free_cb(struct rcu_head *head)
{
	struct pc_node *n = container_of(head, struct pc_node, rcu);

	tsan_acquire(n);
	free(n);
}

static void node_free(struct pc_node *n)
{
	tsan_release(n);
	urcu_memb_call_rcu(&n->rcu, node_free_cb);
}

static inline void *slot_get(struct pc_node *n, unsigned int off)
{
	return atomic_load_explicit(&n->slots[off], memory_order_acquire);
}

static inline void slot_set(struct pc_node *n, unsigned int off, void *v)
{
	atomic_store_explicit(&n->slots[off], v, memory_order_release);
}

/* The highest index a root of @shift covers. */
static inline uint64_t node_max(const struct pc_node *n)
{
	return (1ULL << (n->shift + PC_SHIFT)) - 1;
}

struct page *pc_load(struct page_tree *t, uint64_t index)
{
	struct pc_node *n =
		atomic_load_explicit(&t->root, memory_order_acquire);

	if (!n || index > node_max(n))
		return NULL;
	for (;;) {
		void *e = slot_get(n, (index >> n->shift) & PC_MASK);

		if (!n->shift || !e)
			return e;
		n = e;
	}
}

/* The leaf node that holds @index, which must be in the tree. */
static struct pc_node *leaf_of(struct page_tree *t, uint64_t index)
{
	struct pc_node *n =
		atomic_load_explicit(&t->root, memory_order_relaxed);

	BUG_ON(!n || index > node_max(n));
	while (n->shift) {
		n = slot_get(n, (index >> n->shift) & PC_MASK);
		BUG_ON(!n);
	}
	return n;
}

/* Unlink and free @n, a node pc_insert() just created, and the nodes it
 * created below it (all empty but for the chain). */
static void undo_chain(struct pc_node *n)
{
	struct pc_node *p = n->parent;

	slot_set(p, n->offset, NULL);
	p->count--;
	while (n) {
		struct pc_node *c = NULL;

		for (int i = 0; n->shift && i < PC_SLOTS; i++)
			if (slot_get(n, i))
				c = slot_get(n, i);
		node_free(n);
		n = c;
	}
}

int pc_insert(struct page_tree *t, uint64_t index, struct page *page)
{
	struct pc_node *root =
		atomic_load_explicit(&t->root, memory_order_relaxed);
	struct pc_node *n, *first_new = NULL;
	unsigned int shift = 0;

	BUG_ON(index > PC_MAX_INDEX);
	while (index >> (shift + PC_SHIFT))
		shift += PC_SHIFT;
	if (!root) {
		root = node_alloc(t, shift, NULL, 0);
		if (!root)
			return -ENOMEM;
		atomic_store_explicit(&t->root, root, memory_order_release);
	}
	/*
	 * Grow at the top: a new root whose slot 0 is the old one. A reader
	 * that loaded the old root finds every index it covers still there.
	 * A grown level that ends up unused is harmless, so growth is not
	 * undone on a later failure.
	 */
	while (root->shift < shift) {
		struct pc_node *up =
			node_alloc(t, root->shift + PC_SHIFT, NULL, 0);

		if (!up)
			return -ENOMEM;
		slot_set(up, 0, root);
		up->count = 1;
		for (int m = 0; m < PC_NR_MARKS; m++)
			if (root->marks[m])
				up->marks[m] = 1;
		root->parent = up;
		root->offset = 0;
		atomic_store_explicit(&t->root, up, memory_order_release);
		root = up;
	}
	n = root;
	while (n->shift) {
		unsigned int off = (index >> n->shift) & PC_MASK;
		struct pc_node *c = slot_get(n, off);

		if (!c) {
			c = node_alloc(t, n->shift - PC_SHIFT, n, off);
			if (!c) {
				if (first_new)
					undo_chain(first_new);
				return -ENOMEM;
			}
			if (!first_new)
				first_new = c;
			slot_set(n, off, c);
			n->count++;
		}
		n = c;
	}
	BUG_ON(slot_get(n, index & PC_MASK));
	slot_set(n, index & PC_MASK, page);
	n->count++;
	t->nr_pages++;
	return 0;
}

void pc_set_mark(struct page_tree *t, uint64_t index, enum pc_mark m)
{
	struct pc_node *n = leaf_of(t, index);
	unsigned int off = index & PC_MASK;

	while (n && !(n->marks[m] & (1ULL << off))) {
		n->marks[m] |= 1ULL << off;
		off = n->offset;
		n = n->parent;
	}
}

void pc_clear_mark(struct page_tree *t, uint64_t index, enum pc_mark m)
{
	struct pc_node *n = leaf_of(t, index);
	unsigned int off = index & PC_MASK;

	while (n) {
		n->marks[m] &= ~(1ULL << off);
		if (n->marks[m])
			break;
		off = n->offset;
		n = n->parent;
	}
}

bool pc_get_mark(struct page_tree *t, uint64_t index, enum pc_mark m)
{
	return leaf_of(t, index)->marks[m] & (1ULL << (index & PC_MASK));
}

void pc_erase(struct page_tree *t, uint64_t index)
{
	struct pc_node *n = leaf_of(t, index);
	unsigned int off = index & PC_MASK;

	BUG_ON(!slot_get(n, off));
	for (int m = 0; m < PC_NR_MARKS; m++)
		pc_clear_mark(t, index, m);
	slot_set(n, off, NULL);
	n->count--;
	t->nr_pages--;
	while (!n->count) {
		struct pc_node *p = n->parent;

		VM_BUG_ON(n->marks[0] || n->marks[1]);
		if (!p) {
			atomic_store_explicit(&t->root, NULL,
					      memory_order_release);
			node_free(n);
			break;
		}
		slot_set(p, n->offset, NULL);
		p->count--;
		node_free(n);
		n = p;
	}
}

/* Slots of @n at or after @off that hold something (mark @m: marked). */
static uint64_t slot_bits(struct pc_node *n, unsigned int off, int m)
{
	uint64_t bits = 0;

	if (m < PC_NR_MARKS) {
		bits = n->marks[m];
	} else {
		for (unsigned int i = off; i < PC_SLOTS; i++)
			if (slot_get(n, i))
				bits |= 1ULL << i;
	}
	return off ? bits & ~((1ULL << off) - 1) : bits;
}

struct page *pc_find(struct page_tree *t, uint64_t *index, int m)
{
	struct pc_node *n =
		atomic_load_explicit(&t->root, memory_order_relaxed);
	uint64_t start = *index;

	if (!n || start > node_max(n))
		return NULL;
	for (;;) {
		unsigned int off = (start >> n->shift) & PC_MASK;
		uint64_t bits = slot_bits(n, off, m);
		unsigned int b;

		if (!bits) {
			/* Nothing here at or after @start: the next range of
			 * the parent, if the parent has one. */
			uint64_t next = ((start >> (n->shift + PC_SHIFT)) + 1)
					<< (n->shift + PC_SHIFT);

			for (;;) {
				struct pc_node *p = n->parent;

				if (!p)
					return NULL;
				if ((next >> (p->shift + PC_SHIFT)) ==
				    (start >> (p->shift + PC_SHIFT))) {
					n = p;
					break;
				}
				n = p;
			}
			start = next;
			continue;
		}
		b = (unsigned int)__builtin_ctzll(bits);
		if (b != off)
			start = ((start >> (n->shift + PC_SHIFT))
				 << (n->shift + PC_SHIFT)) |
				((uint64_t)b << n->shift);
		if (!n->shift) {
			*index = start;
			return slot_get(n, b);
		}
		n = slot_get(n, b);
	}
}

void pc_destroy(struct page_tree *t)
{
	BUG_ON(atomic_load_explicit(&t->root, memory_order_relaxed));
	BUG_ON(t->nr_pages);
}

/*
 * set_page_dirty (filemap.h) lives here, with the marks it sets, below the
 * mmu_gather that calls it after a flush (GATHER_DIRTY).
 */
void set_page_dirty(struct page *page)
{
	struct smm_file *f;

	if (atomic_load(&page->flags) & PG_DIRTY)
		return;
	f = READ_ONCE(page->mapping);
	if (!f)
		return;
	if (f->shmem) {
		atomic_fetch_or(&page->flags, PG_DIRTY);
		return;
	}
	spin_lock_class(&f->i_pages_lock, LC_I_PAGES);
	/* Still in the cache (truncation erases under this lock)? */
	if (page->mapping == f &&
	    !(atomic_fetch_or(&page->flags, PG_DIRTY) & PG_DIRTY))
		pc_set_mark(&f->pages, page->index, PC_MARK_DIRTY);
	spin_unlock(&f->i_pages_lock);
}
