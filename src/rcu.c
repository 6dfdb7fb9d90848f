/*
 * rcu.c - registering threads with liburcu on first use and unregistering
 * them at thread exit; liburcu's fork hooks. State: one thread-local flag
 * per thread and the pthread key whose destructor unregisters.
 */
#include <pthread.h>
#include <stdbool.h>
#include "rcu.h"

#ifdef SMM_TSAN
char smm_tsan_rcu_readers; /* rcu.h: the readers' release object */
#endif

static pthread_key_t rcu_key;
static pthread_once_t rcu_key_once = PTHREAD_ONCE_INIT;
static __thread bool rcu_registered __attribute__((tls_model("initial-exec")));

static void rcu_thread_exit(void *arg)
{
	if (rcu_registered) {
		urcu_memb_unregister_thread();
		rcu_registered = false;
	}
}

/*
 * fork() copies only the calling thread, not liburcu's call_rcu worker:
 * in the child, every deferred free (smm_mm_destroy() waits for them)
 * would wait forever. liburcu's fork hooks stop the worker around fork()
 * and give the child a new one, so a process that embeds softmm may fork.
 */
static void rcu_key_init(void)
{
	pthread_key_create(&rcu_key, rcu_thread_exit);
	pthread_atfork(urcu_memb_call_rcu_before_fork,
		       urcu_memb_call_rcu_after_fork_parent,
		       urcu_memb_call_rcu_after_fork_child);
}

void rcu_thread_online(void)
{
	if (likely(rcu_registered))
		return;
	pthread_once(&rcu_key_once, rcu_key_init);
	urcu_memb_register_thread();
	rcu_registered = true;
	pthread_setspecific(rcu_key, (void *)1);
}
