/*
 * test_interval_tree.c - the interval tree of i_mmap (interval_tree.c),
 * against a brute-force array: random inserts and removes over a small key
 * range (overlaps and identical intervals common, and ranges reaching
 * UINT64_MAX), each query returning exactly the overlapping nodes, each
 * once, by start and then insertion order; itree_check() along the way;
 * edge cases (single points, 0 and UINT64_MAX); the height after sorted
 * inserts; and itree_check() catching a corrupted tree.
 */
#include "common.h"
#include "compiler.h"
#include "interval_tree.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

struct item {
	struct itree_node it;
	uint64_t seq;	   /* insertion order: ties of start come out by it */
	bool in;	   /* in the tree */
	unsigned int seen; /* query generation that returned it */
};

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void insert(struct itree_root *root, struct item *x, uint64_t start,
		   uint64_t last, uint64_t *seq)
{
	x->it.start = start;
	x->it.last = last;
	x->seq = (*seq)++;
	x->in = true;
	itree_insert(root, &x->it);
}

static void remove_item(struct itree_root *root, struct item *x)
{
	itree_remove(root, &x->it);
	x->in = false;
}

/*
 * Query [s, l] and compare with the array: every node returned is one of
 * the items, in the tree, overlapping, not returned before, after the
 * previous one in (start, seq) order; and as many as the array holds.
 */
static void check_query(struct itree_root *root, struct item *items, int nr,
			uint64_t s, uint64_t l)
{
	static unsigned int gen;
	struct item *prev = NULL;
	struct itree_node *n;
	int got = 0, want = 0;

	gen++;
	for (n = itree_iter_first(root, s, l); n;
	     n = itree_iter_next(n, s, l)) {
		struct item *x = container_of(n, struct item, it);

		assert_true(x >= items && x < items + nr);
		assert_true(x->in);
		assert_true(n->start <= l && n->last >= s);
		assert_true(x->seen != gen);
		x->seen = gen;
		if (prev)
			assert_true(prev->it.start < n->start ||
				    (prev->it.start == n->start &&
				     prev->seq < x->seq));
		prev = x;
		got++;
		assert_true(got <= nr);
	}
	for (int i = 0; i < nr; i++)
		if (items[i].in && items[i].it.start <= l &&
		    items[i].it.last >= s)
			want++;
	assert_int_equal(got, want);
}

/* Keys 0..255 map to 0..199 and UINT64_MAX - 55..UINT64_MAX, in order. */
static uint64_t key(unsigned int k)
{
	return k < 200 ? k : UINT64_MAX - (255 - k);
}

/* A random range of keys: mostly short (often one point), sometimes long. */
static void rnd_range(uint64_t *s, uint64_t *l)
{
	unsigned int a = rnd() % 256, b;

	switch (rnd() % 8) {
	case 0:
		b = a;
		break;
	case 1:
		b = a + rnd() % (256 - a);
		break;
	default:
		b = a + rnd() % 8;
		b = MIN(b, 255u);
		break;
	}
	*s = key(a);
	*l = key(b);
}

static void test_empty(void **state)
{
	struct itree_root root = { 0 };

	assert_true(itree_empty(&root));
	assert_null(itree_iter_first(&root, 0, UINT64_MAX));
	assert_null(itree_iter_first(&root, 5, 5));
	itree_check(&root);
}

static void test_edges(void **state)
{
	static const uint64_t iv[][2] = {
		{ UINT64_MAX, UINT64_MAX },
		{ 0, UINT64_MAX },
		{ 5, 5 },
		{ 0, 0 },
		{ 5, 5 },
		{ UINT64_MAX - 1, UINT64_MAX },
		{ 4, 6 },
		{ 6, UINT64_MAX - 1 },
		{ 0, 0 },
	};
	static const uint64_t q[][2] = {
		{ UINT64_MAX, UINT64_MAX },
		{ 0, 0 },
		{ 5, 5 },
		{ 4, 4 },
		{ 6, 6 },
		{ 7, UINT64_MAX - 2 },
		{ 1, 3 },
		{ 0, UINT64_MAX },
		{ UINT64_MAX - 1, UINT64_MAX - 1 },
	};
	struct item items[ARRAY_SIZE(iv)] = { 0 };
	struct itree_root root = { 0 };
	uint64_t seq = 0;
	const int nr = ARRAY_SIZE(iv);

	for (int i = 0; i < nr; i++) {
		insert(&root, &items[i], iv[i][0], iv[i][1], &seq);
		itree_check(&root);
		for (size_t j = 0; j < ARRAY_SIZE(q); j++)
			check_query(&root, items, nr, q[j][0], q[j][1]);
	}
	/* [UINT64_MAX, UINT64_MAX] alone, at the end */
	{
		struct itree_node *n =
			itree_iter_first(&root, UINT64_MAX, UINT64_MAX);
		int k = 0;

		for (; n; n = itree_iter_next(n, UINT64_MAX, UINT64_MAX))
			k++;
		assert_int_equal(k, 3); /* [0,MAX] [MAX-1,MAX] [MAX,MAX] */
	}
	for (int i = nr - 1; i >= 0; i--) {
		remove_item(&root, &items[i]);
		itree_check(&root);
		for (size_t j = 0; j < ARRAY_SIZE(q); j++)
			check_query(&root, items, nr, q[j][0], q[j][1]);
	}
	assert_true(itree_empty(&root));
}

/* Identical intervals come out in insertion order, also after removals. */
static void test_duplicates(void **state)
{
	enum {
		NR = 300
	};
	struct item *items = calloc(NR, sizeof(*items));
	struct itree_root root = { 0 };
	uint64_t seq = 0;

	assert_non_null(items);
	for (int i = 0; i < NR; i++)
		insert(&root, &items[i], 10, 20, &seq);
	itree_check(&root);
	check_query(&root, items, NR, 15, 15);
	for (int i = 0; i < NR; i += 3)
		remove_item(&root, &items[i]);
	itree_check(&root);
	check_query(&root, items, NR, 20, 30);
	for (int i = 0; i < NR; i += 3)
		insert(&root, &items[i], 10, 20, &seq);
	check_query(&root, items, NR, 0, 10);
	assert_null(itree_iter_first(&root, 21, UINT64_MAX));
	assert_null(itree_iter_first(&root, 0, 9));
	for (int i = 0; i < NR; i++)
		remove_item(&root, &items[i]);
	assert_true(itree_empty(&root));
	free(items);
}

/*
 * 200,000 random inserts and removes over 1024 nodes; the share of inserts
 * changes by phase, so that the tree fills up and drains. A query against
 * the array every 4 operations, itree_check() every 256.
 */
static void test_random(void **state)
{
	enum {
		NR = 1024,
		OPS = 200000
	};
	static const unsigned int insert_pct[] = { 50, 90, 10, 50, 95, 5 };
	struct item *items = calloc(NR, sizeof(*items));
	struct itree_root root = { 0 };
	uint64_t seq = 0, s, l;
	int ops = 0, in = 0, max_in = 0;

	assert_non_null(items);
	while (ops < OPS) {
		unsigned int pct = insert_pct[ops / 10000 % 6];
		struct item *x = &items[rnd() % NR];

		if (!x->in) {
			if (rnd() % 100 >= pct)
				continue;
			rnd_range(&s, &l);
			insert(&root, x, s, l, &seq);
			in++;
		} else {
			if (rnd() % 100 < pct)
				continue;
			remove_item(&root, x);
			in--;
		}
		max_in = MAX(max_in, in);
		ops++;
		if (ops % 4 == 0) {
			rnd_range(&s, &l);
			check_query(&root, items, NR, s, l);
		}
		if (ops % 256 == 0) {
			itree_check(&root);
			check_query(&root, items, NR, 0, UINT64_MAX);
		}
	}
	assert_true(max_in > NR * 3 / 4); /* the phases filled the tree */
	itree_check(&root);
	/* Remove everything, in random order. */
	while (in) {
		struct item *x = &items[rnd() % NR];

		if (!x->in)
			continue;
		remove_item(&root, x);
		in--;
		if (in % 64 == 0) {
			itree_check(&root);
			rnd_range(&s, &l);
			check_query(&root, items, NR, s, l);
		}
	}
	assert_true(itree_empty(&root));
	assert_null(itree_iter_first(&root, 0, UINT64_MAX));
	itree_check(&root);
	free(items);
}

static int height(const struct itree_node *n)
{
	int l, r;

	if (!n)
		return 0;
	l = height(n->left);
	r = height(n->right);
	return 1 + MAX(l, r);
}

/* Sorted inserts, the worst case of an unbalanced tree, stay O(log n). */
static void test_sorted_height(void **state)
{
	enum {
		NR = 100000
	};
	struct item *items = calloc(NR, sizeof(*items));
	struct itree_root root = { 0 };
	uint64_t seq = 0;
	int h;

	assert_non_null(items);
	for (int i = 0; i < NR; i++)
		insert(&root, &items[i], i, i + 1, &seq);
	itree_check(&root);
	h = height(root.node);
	assert_true(h < 70); /* log2(100000) is 17; a treap's is ~2.99 ln n */
	check_query(&root, items, NR, 5000, 5001);
	for (int i = 0; i < NR; i += 2)
		remove_item(&root, &items[i]);
	itree_check(&root);
	assert_true(height(root.node) < 70);
	for (int i = 1; i < NR; i += 2)
		remove_item(&root, &items[i]);
	assert_true(itree_empty(&root));
	free(items);
}

/* itree_check() BUGs on a broken subtree_last, in a child process. */
static void test_check_catches(void **state)
{
	struct item items[8] = { 0 };
	struct itree_root root = { 0 };
	uint64_t seq = 0;
	pid_t pid;
	int st;

	for (int i = 0; i < 8; i++)
		insert(&root, &items[i], i, i + 3, &seq);
	itree_check(&root);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		dup2(fd, 2); /* the BUG line is expected */
		root.node->subtree_last++;
		itree_check(&root);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_sorted_height),
		cmocka_unit_test(test_check_catches),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
