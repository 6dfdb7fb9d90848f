/*
 * test_lockdep.c - the lock rules that debug builds assert (docs/LOCKING.md)
 * fire when broken: a PTE stored without its table's ptl, or under the
 * wrong lock; a PMD entry without its PMD table's lock; a PUD entry
 * without page_table_lock; a table unlinked, or a table's count changed,
 * without the lock; a semi-locked walk without mmap_lock or a VMA lock; a
 * lockless walk outside an access section. Each case runs in a child
 * process, which must abort with softmm's BUG report naming the broken
 * check; the same store with the right lock held must not. In release
 * builds the assertions do not exist and the test is skipped.
 */
#include "common.h"
#include "pagewalk.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef SMM_DEBUG
static struct env *E;

/* Run @fn in a child. Returns its exit status, or 128 + the signal that
 * killed it; its stderr (the BUG report) goes to @msg. */
static int in_child(void (*fn)(void), char *msg, size_t len)
{
	int fd[2], st;
	ssize_t n, got = 0;
	pid_t pid;

	assert_int_equal(pipe(fd), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		fn();
		_exit(0);
	}
	close(fd[1]);
	while (got < (ssize_t)len - 1 &&
	       (n = read(fd[0], msg + got, len - 1 - (size_t)got)) > 0)
		got += n;
	msg[got] = 0;
	close(fd[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

/* @fn must abort with a BUG report that contains @what. */
static void expect_bug(void (*fn)(void), const char *what)
{
	char msg[4096];
	int r = in_child(fn, msg, sizeof(msg));

	if (r != 128 + SIGABRT || !strstr(msg, "softmm: BUG") ||
	    !strstr(msg, what))
		fprintf(stderr,
			"expected a BUG naming %s, got status %d:\n%s\n", what,
			r, msg);
	assert_int_equal(r, 128 + SIGABRT);
	assert_non_null(strstr(msg, "softmm: BUG"));
	assert_non_null(strstr(msg, what));
}

static void expect_fine(void (*fn)(void))
{
	char msg[4096];
	int r = in_child(fn, msg, sizeof(msg));

	if (r)
		fprintf(stderr, "expected no BUG, got status %d:\n%s\n", r,
			msg);
	assert_int_equal(r, 0);
}

/* A PTE of the test page, found by a semi-locked walk (no ptl). */
static pteval_t *the_pte(struct pt_walk *w)
{
	pteval_t *ptep;

	mmap_read_lock(E->mm);
	ptep = pte_offset_map(E->mm, TA, w);
	assert_non_null(ptep);
	return ptep;
}

static void set_pte_unlocked(void)
{
	struct pt_walk w;
	pteval_t *ptep = the_pte(&w);

	set_pte(E->mm, ptep, pte_read(ptep));
}

static void clear_pte_unlocked(void)
{
	struct pt_walk w;

	ptep_get_and_clear(E->mm, the_pte(&w));
}

static void count_unlocked(void)
{
	struct pt_walk w;

	pte_table_add(E->mm, the_pte(&w), 0);
}

static void set_pte_under_pmd_lock(void)
{
	struct pt_walk w;
	pteval_t *ptep = the_pte(&w);

	spin_lock_class(&virt_to_page(E->mm->pool, w.pmdp)->ptl, LC_PMD);
	set_pte(E->mm, ptep, pte_read(ptep));
}

static void set_pte_locked(void)
{
	struct pt_walk w;
	pteval_t *ptep;

	mmap_read_lock(E->mm);
	ptep = pte_offset_map_lock(E->mm, TA, &w);
	assert_non_null(ptep);
	set_pte(E->mm, ptep, pte_read(ptep));
	ptep_xchg(E->mm, ptep, pte_read(ptep));
	pte_table_add(E->mm, ptep, 0);
	pte_unmap_unlock(&w);
	mmap_read_unlock(E->mm);
}

static void set_pmd_unlocked(void)
{
	struct pt_walk w;

	the_pte(&w);
	set_table_entry(E->mm, w.pmdp, table_read(w.pmdp));
}

static void set_pmd_locked(void)
{
	struct pt_walk w;
	spinlock_t *pmd_lock;

	the_pte(&w);
	pmd_lock = &virt_to_page(E->mm->pool, w.pmdp)->ptl;
	spin_lock_class(pmd_lock, LC_PMD);
	set_table_entry(E->mm, w.pmdp, table_read(w.pmdp));
	spin_unlock(pmd_lock);
}

static pteval_t *the_pud_entry(void)
{
	pteval_t g = E->mm->pgd[pgd_index(TA)];

	return &table_virt(E->mm->pool, g)[pud_index(TA)];
}

static void set_pud_under_pmd_lock(void)
{
	struct pt_walk w;

	the_pte(&w);
	spin_lock_class(&virt_to_page(E->mm->pool, w.pmdp)->ptl, LC_PMD);
	set_table_entry(E->mm, the_pud_entry(), table_read(the_pud_entry()));
}

static void set_pud_locked(void)
{
	spin_lock_class(&E->mm->page_table_lock, LC_PAGE_TABLE);
	set_table_entry(E->mm, the_pud_entry(), table_read(the_pud_entry()));
	spin_unlock(&E->mm->page_table_lock);
}

static void unlink_unlocked(void)
{
	struct mmu_gather tlb;
	struct pt_walk w;

	the_pte(&w);
	tlb_gather_mmu(&tlb, E->mm);
	unlink_table(&tlb, w.pmdp);
}

static void walk_without_mmap_lock(void)
{
	struct pt_walk w;

	pte_offset_map(E->mm, TA, &w);
}

static void lockless_outside_section(void)
{
	struct pt_walk w;

	pte_offset_lockless(E->mm, TA, &w);
}

static void lockless_inside_section(void)
{
	struct pt_walk w;

	access_begin(E->cpu, E->mm);
	if (pte_offset_lockless(E->mm, TA, &w))
		pte_lockless_end(&w);
	access_end(E->cpu);
}

static int setup(void **state)
{
	env_setup(state);
	E = *state;
	map_at(E->mm, TA, PG, RW);
	assert_int_equal(smm_fill(E->cpu, TA, 7, PG, NULL), 0);
	return 0;
}

static void test_pte_stores(void **state)
{
	expect_bug(set_pte_unlocked, "lockdep_is_held");
	expect_bug(clear_pte_unlocked, "lockdep_is_held");
	expect_bug(count_unlocked, "lockdep_is_held");
	expect_bug(set_pte_under_pmd_lock, "lockdep_is_held");
	expect_fine(set_pte_locked);
}

static void test_table_stores(void **state)
{
	expect_bug(set_pmd_unlocked, "lockdep_is_held");
	expect_fine(set_pmd_locked);
	expect_bug(set_pud_under_pmd_lock, "lockdep_is_held");
	expect_fine(set_pud_locked);
	expect_bug(unlink_unlocked, "lockdep_is_held");
}

static void test_walker_classes(void **state)
{
	expect_bug(walk_without_mmap_lock, "lockdep_holds_class");
	expect_bug(lockless_outside_section, "in_access_section");
	expect_fine(lockless_inside_section);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pte_stores, setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_table_stores, setup,
						env_teardown),
		cmocka_unit_test_setup_teardown(test_walker_classes, setup,
						env_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
#else
static void test_release(void **state)
{
	skip(); /* the lock assertions exist in debug builds only */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_release),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
