/*
 * test_misuse.c - the API's rules for callers (softmm.h, "What softmm
 * checks"): lifecycle misuse and bad arguments fail with an errno, or abort
 * with one line naming the rule; never a segfault, a hang or a use after
 * free. Also the defaults that must not depend on how they are asked for,
 * and lengths that must not wrap when rounded up. Aborting cases run in a
 * child process (fork) whose stderr is checked.
 */
#include "common.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run @fn in a child; its exit status or 128 + signal, stderr in @msg. */
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
		alarm(20); /* a hang is a failure too */
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

/* @fn must abort with softmm's one-line report naming @fn_name and @rule. */
static void expect_misuse(void (*fn)(void), const char *fn_name,
			  const char *rule)
{
	char msg[4096];
	int r = in_child(fn, msg, sizeof(msg));

	if (r != 128 + SIGABRT || !strstr(msg, fn_name) || !strstr(msg, rule))
		fprintf(stderr,
			"expected an abort naming %s: %s; got %d:\n%s\n",
			fn_name, rule, r, msg);
	assert_int_equal(r, 128 + SIGABRT);
	assert_non_null(strstr(msg, "softmm: "));
	assert_non_null(strstr(msg, fn_name));
	assert_non_null(strstr(msg, rule));
	assert_null(strstr(msg, "BUG at"));
}

/* ---- item 1: a CPU of one pool, an address space of another ---- */

static void test_switch_other_pool(void **state)
{
	struct smm_pool *a = smm_pool_create(16 * MB, SMM_POOL_POISON);
	struct smm_pool *b = smm_pool_create(16 * MB, SMM_POOL_POISON);
	struct smm_mm *mb = new_mm(b, 0), *ma = new_mm(a, 0);
	struct smm_cpu *cpu = smm_cpu_attach(a);
	struct smm_mm_stats st;

	assert_non_null(cpu);
	assert_int_equal(smm_cpu_switch_mm(cpu, mb), -EXDEV);
	/* Refused without a trace: no reference taken on @mb. */
	smm_mm_stats(mb, &st);
	smm_mm_destroy(mb);
	assert_int_equal(smm_pool_destroy(b), 0);
	/* The CPU still works on its own pool. */
	assert_int_equal(smm_cpu_switch_mm(cpu, ma), 0);
	assert_true(smm_mmap(ma, TA, PG, RW, PRIV_ANON | SMM_MAP_FIXED) ==
		    (int64_t)TA);
	assert_int_equal(smm_fill(cpu, TA, 7, PG, NULL), 0);
	assert_int_equal(smm_cpu_switch_mm(cpu, NULL), 0);
	assert_int_equal(smm_cpu_detach(cpu), 0);
	smm_mm_destroy(ma);
	assert_pool_clean(a);
	assert_int_equal(smm_pool_destroy(a), 0);
}

/* ---- item 2: one default scheme, however it is asked for ---- */

/* Whether @mm frees a PTE table that MADV_DONTNEED empties (eager does,
 * none does not; pt-reclaim only for a whole 2 MiB table). */
static bool frees_emptied_table(struct smm_pool *pool, struct smm_mm *mm)
{
	struct smm_cpu *cpu = smm_cpu_attach(pool);
	struct smm_mm_stats st;

	assert_non_null(cpu);
	assert_int_equal(smm_cpu_switch_mm(cpu, mm), 0);
	assert_true(smm_mmap(mm, TA, 2 * MB, RW, PRIV_ANON | SMM_MAP_FIXED) ==
		    (int64_t)TA);
	assert_int_equal(smm_fill(cpu, TA, 1, PG, NULL), 0);
	assert_int_equal(smm_madvise(mm, TA, PG, SMM_MADV_DONTNEED), 0);
	smm_mm_stats(mm, &st);
	smm_cpu_detach(cpu);
	return st.pte_bytes == 0;
}

static void test_default_scheme(void **state)
{
	struct smm_pool *pool = smm_pool_create(16 * MB, 0);
	struct smm_mm_opts zero = { 0 };
	struct smm_mm *a = smm_mm_create(pool, NULL);
	struct smm_mm *b = smm_mm_create(pool, &zero);

	assert_int_equal(SMM_SCHEME_EAGER, 0); /* the zeroed default */
	assert_non_null(a);
	assert_non_null(b);
	assert_true(frees_emptied_table(pool, a));
	assert_true(frees_emptied_table(pool, b));
	smm_mm_destroy(a);
	smm_mm_destroy(b);
	assert_pool_clean(pool);
	assert_int_equal(smm_pool_destroy(pool), 0);
}

/* ---- item 3: user lengths near 2^64 do not wrap ---- */

static void test_length_wrap(void **state)
{
	struct smm_pool *pool = smm_pool_create(16 * MB, 0);
	struct smm_mm *mm = new_mm(pool, 0);
	unsigned char vec[4];

	assert_true(smm_mmap(mm, TA, 4 * PG, RW, PRIV_ANON | SMM_MAP_FIXED) ==
		    (int64_t)TA);
	/* Linux: access_ok() fails, -ENOMEM, before anything is rounded. */
	assert_int_equal(smm_mincore(mm, TA, UINT64_MAX, vec), -ENOMEM);
	assert_int_equal(smm_mincore(mm, TA, UINT64_MAX - PG + 2, vec),
			 -ENOMEM);
	assert_int_equal(smm_mincore(mm, TA, SMM_TASK_SIZE - TA + 1, vec),
			 -ENOMEM);
	assert_int_equal(smm_mincore(mm, TA, 4 * PG, vec), 0);
	assert_int_equal(smm_mincore(mm, TA, 0, NULL), 0);
	assert_int_equal(smm_mincore(mm, TA, PG, NULL), -EFAULT);
	/* The other rounded lengths, with Linux's answers. */
	assert_int_equal(smm_mmap(mm, 0, UINT64_MAX, RW, PRIV_ANON), -ENOMEM);
	assert_int_equal(smm_mmap(mm, 0, UINT64_MAX - PG + 2, RW, PRIV_ANON),
			 -ENOMEM);
	assert_int_equal(smm_munmap(mm, TA, UINT64_MAX), -EINVAL);
	assert_int_equal(smm_mprotect(mm, TA, UINT64_MAX, RO), -ENOMEM);
	assert_int_equal(smm_madvise(mm, TA, UINT64_MAX, SMM_MADV_DONTNEED),
			 -EINVAL);
	assert_int_equal(smm_mm_verify(mm), 0);
	smm_mm_destroy(mm);
	assert_pool_clean(pool);
	assert_int_equal(smm_pool_destroy(pool), 0);
}

/* ---- item 7: lifecycle misuse ---- */

static void test_double_detach(void **state)
{
	struct smm_pool *pool = smm_pool_create(16 * MB, SMM_POOL_POISON);
	struct smm_cpu *cpu = smm_cpu_attach(pool);

	assert_non_null(cpu);
	assert_int_equal(smm_cpu_detach(cpu), 0);
	/* The CPU is freed memory now: refused without a dereference. */
	assert_int_equal(smm_cpu_detach(cpu), -EINVAL);
	assert_int_equal(smm_cpu_detach(NULL), -EINVAL);
	assert_int_equal(smm_pool_destroy(pool), 0);
	assert_int_equal(smm_pool_destroy(pool), -EINVAL);
	assert_int_equal(smm_pool_destroy(NULL), -EINVAL);
}

static void double_destroy(void)
{
	struct smm_pool *pool = smm_pool_create(16 * MB, 0);
	struct smm_mm *mm = smm_mm_create(pool, NULL);

	smm_mm_destroy(mm);
	smm_mm_destroy(mm);
}

static void double_destroy_while_held(void)
{
	struct smm_pool *pool = smm_pool_create(16 * MB, 0);
	struct smm_mm *mm = smm_mm_create(pool, NULL);
	struct smm_cpu *cpu = smm_cpu_attach(pool);

	smm_cpu_switch_mm(cpu, mm); /* keeps the structure alive */
	smm_mm_destroy(mm);
	if (smm_mmap(mm, 0, PG, RW, PRIV_ANON) != -ESRCH)
		_exit(3);
	smm_mm_destroy(mm);
}

static void test_double_destroy(void **state)
{
	expect_misuse(double_destroy, "smm_mm_destroy", "not a live address");
	expect_misuse(double_destroy_while_held, "smm_mm_destroy",
		      "not a live address");
	smm_mm_destroy(NULL); /* like free(NULL) */
}

struct other {
	struct smm_cpu *cpu;
	struct smm_mm *mm;
	int switch_err, detach_err, read_err, gup_err;
};

static void *other_thread(void *arg)
{
	struct other *o = arg;
	struct smm_page *pg;
	char c;

	o->switch_err = smm_cpu_switch_mm(o->cpu, o->mm);
	o->detach_err = smm_cpu_detach(o->cpu);
	o->read_err = smm_read(o->cpu, TA, &c, 1, NULL);
	o->gup_err = (int)smm_pin_user_pages_fast(o->cpu, TA, 1, 0, &pg);
	return NULL;
}

static void test_wrong_thread(void **state)
{
	struct smm_pool *pool = smm_pool_create(16 * MB, 0);
	struct smm_mm *mm = new_mm(pool, 0);
	struct smm_cpu *cpu = smm_cpu_attach(pool);
	struct other o = { .cpu = cpu, .mm = mm };
	pthread_t t;
	char c;

	assert_int_equal(smm_cpu_switch_mm(cpu, mm), 0);
	assert_true(smm_mmap(mm, TA, PG, RW, PRIV_ANON | SMM_MAP_FIXED) ==
		    (int64_t)TA);
	assert_int_equal(pthread_create(&t, NULL, other_thread, &o), 0);
	pthread_join(t, NULL);
	assert_int_equal(o.switch_err, -EINVAL);
	assert_int_equal(o.detach_err, -EINVAL);
	assert_int_equal(o.read_err, -EINVAL);
	assert_int_equal(o.gup_err, -EINVAL);
	/* Nothing changed for the owner. */
	assert_int_equal(smm_read(cpu, TA, &c, 1, NULL), 0);
	assert_int_equal(smm_cpu_switch_mm(cpu, NULL), 0);
	assert_int_equal(smm_cpu_detach(cpu), 0);
	smm_mm_destroy(mm);
	assert_pool_clean(pool);
	assert_int_equal(smm_pool_destroy(pool), 0);
}

struct exiting {
	struct smm_pool *pool;
	struct smm_mm *mm;
	bool attached;
};

static void *exit_attached(void *arg)
{
	struct exiting *x = arg;
	struct smm_cpu *cpu = smm_cpu_attach(x->pool);

	x->attached = cpu != NULL;
	if (cpu && x->mm) {
		smm_cpu_switch_mm(cpu, x->mm);
		smm_fill(cpu, TA, 9, PG, NULL);
	}
	return NULL; /* exits attached, maybe still switched to x->mm */
}

static void test_exit_attached(void **state)
{
	struct smm_pool *pool = smm_pool_create(16 * MB, 0);
	struct smm_mm *mm = new_mm(pool, 0);
	struct exiting x = { .pool = pool, .mm = mm };
	pthread_t t;

	assert_true(smm_mmap(mm, TA, PG, RW, PRIV_ANON | SMM_MAP_FIXED) ==
		    (int64_t)TA);
	for (int i = 0; i < 2 * SMM_MAX_CPUS; i++) {
		x.mm = i % 2 ? mm : NULL;
		assert_int_equal(pthread_create(&t, NULL, exit_attached, &x),
				 0);
		pthread_join(t, NULL);
		/* More threads than slots: each exit freed its slot. */
		assert_true(x.attached);
	}
	smm_mm_destroy(mm);
	assert_pool_clean(pool);
	assert_int_equal(smm_pool_destroy(pool), 0);
}

static void test_null_args(void **state)
{
	struct smm_pool *pool = smm_pool_create(16 * MB, 0);
	struct smm_pool_stats ps;
	struct smm_mm_stats ms;
	struct smm_cpu *cpu;
	struct smm_mm *mm;
	char buf[8];

	errno = 0;
	assert_null(smm_mm_create(NULL, NULL));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(smm_cpu_attach(NULL));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(smm_mmap(NULL, 0, PG, RW, PRIV_ANON), -EINVAL);
	assert_int_equal(smm_munmap(NULL, TA, PG), -EINVAL);
	assert_int_equal(smm_mprotect(NULL, TA, PG, RO), -EINVAL);
	assert_int_equal(smm_madvise(NULL, TA, PG, SMM_MADV_DONTNEED), -EINVAL);
	assert_int_equal(smm_mincore(NULL, TA, PG, (unsigned char *)buf),
			 -EINVAL);
	assert_int_equal(smm_mm_verify(NULL), -EINVAL);
	assert_int_equal(smm_mm_stats(NULL, &ms), -EINVAL);
	assert_int_equal(smm_pool_stats(NULL, &ps), -EINVAL);
	assert_int_equal(smm_pool_stats(pool, NULL), -EINVAL);
	assert_int_equal(smm_mm_vmas(NULL, 0, ~0ULL, NULL, 4), 0);
	assert_int_equal(smm_read(NULL, TA, buf, 1, NULL), -EINVAL);
	assert_int_equal(smm_write(NULL, TA, buf, 1, NULL), -EINVAL);
	assert_int_equal(smm_fill(NULL, TA, 0, 1, NULL), -EINVAL);
	assert_int_equal(smm_get_user_pages(NULL, TA, 1, 0, NULL), -EINVAL);
	assert_int_equal(smm_scheme_from_name(NULL), -EINVAL);
	assert_null(smm_page_address(NULL));
	assert_false(smm_page_maybe_dma_pinned(NULL));
	smm_put_page(NULL);
	smm_unpin_user_pages(NULL, 3);
	smm_pool_inject_failure(NULL, 1);

	mm = new_mm(pool, 0);
	cpu = smm_cpu_attach(pool);
	assert_non_null(cpu);
	assert_int_equal(smm_cpu_switch_mm(NULL, mm), -EINVAL);
	assert_int_equal(smm_cpu_switch_mm(cpu, mm), 0);
	assert_true(smm_mmap(mm, TA, PG, RW, PRIV_ANON | SMM_MAP_FIXED) ==
		    (int64_t)TA);
	assert_int_equal(smm_mm_stats(mm, NULL), -EINVAL);
	assert_int_equal(smm_mm_vmas(mm, 0, ~0ULL, NULL, 4), 1);
	assert_int_equal(smm_read(cpu, TA, NULL, 1, NULL), -EFAULT);
	assert_int_equal(smm_write(cpu, TA, NULL, 1, NULL), -EFAULT);
	assert_int_equal(smm_read(cpu, TA, NULL, 0, NULL), 0);
	assert_int_equal(smm_mm_verify(mm), 0);
	smm_cpu_detach(cpu);
	smm_mm_destroy(mm);
	assert_pool_clean(pool);
	assert_int_equal(smm_pool_destroy(pool), 0);
}

static void bogus_page(void)
{
	static char not_a_page[64];

	smm_page_address((struct smm_page *)not_a_page);
}

/* ---- access sections (debug builds): no softmm call inside one ---- */

#ifdef SMM_DEBUG
static struct smm_cpu *section_setup(struct smm_mm **mmp)
{
	struct smm_pool *pool = smm_pool_create(16 * MB, 0);
	struct smm_mm *mm = new_mm(pool, 0);
	struct smm_cpu *cpu = smm_cpu_attach(pool);

	map_at(mm, TA, PG, RW);
	smm_cpu_switch_mm(cpu, mm);
	if (smm_access_begin(cpu))
		_exit(2);
	*mmp = mm;
	return cpu;
}

static void mmap_in_section(void)
{
	struct smm_mm *mm;

	section_setup(&mm);
	smm_mmap(mm, 0, PG, RW, PRIV_ANON);
}

static void read_in_section(void)
{
	struct smm_mm *mm;
	struct smm_cpu *cpu = section_setup(&mm);
	char c;

	smm_read(cpu, TA, &c, 1, NULL);
}

static void gup_fast_in_section(void)
{
	struct smm_mm *mm;
	struct smm_cpu *cpu = section_setup(&mm);
	struct smm_page *pg;

	smm_pin_user_pages_fast(cpu, TA, 1, 0, &pg);
}

static void pin_in_section(void)
{
	struct smm_mm *mm;
	struct smm_page *pg;

	section_setup(&mm);
	smm_pin_user_pages(mm, TA, 1, 0, &pg);
}
#endif

static void test_access_section_misuse(void **state)
{
#ifdef SMM_DEBUG
	expect_misuse(mmap_in_section, "lockdep",
		      "taken inside an access section");
	expect_misuse(pin_in_section, "lockdep",
		      "taken inside an access section");
	expect_misuse(read_in_section, "access_begin",
		      "access sections do not nest");
	expect_misuse(gup_fast_in_section, "access_begin",
		      "access sections do not nest");
#else
	skip();
#endif
}

static void test_bogus_page(void **state)
{
	expect_misuse(bogus_page, "page", "is not a page of any live pool");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_switch_other_pool),
		cmocka_unit_test(test_default_scheme),
		cmocka_unit_test(test_length_wrap),
		cmocka_unit_test(test_double_detach),
		cmocka_unit_test(test_double_destroy),
		cmocka_unit_test(test_wrong_thread),
		cmocka_unit_test(test_exit_attached),
		cmocka_unit_test(test_null_args),
		cmocka_unit_test(test_bogus_page),
		cmocka_unit_test(test_access_section_misuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
