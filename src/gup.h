/*
 * gup.h - internals of get/pin user pages (gup.c) that tests reach: the
 * lockless fast walk alone, and the debug hook in its race window.
 */
#ifndef SMM_GUP_H
#define SMM_GUP_H

#include "mm.h"

#define GUP_PIN_COUNTING_BIAS SMM_GUP_PIN_COUNTING_BIAS

/*
 * gup_fast_only - the lockless walk of smm_{get,pin}_user_pages_fast()
 * without the slow-path fallback (Linux's get_user_pages_fast_only()):
 * returns how many pages from @start it took (0 .. @nr_pages) and never
 * sleeps. @gup_flags must hold exactly one of SMM_FOLL_GET, SMM_FOLL_PIN.
 */
long gup_fast_only(struct smm_cpu *cpu, uint64_t start, unsigned long nr_pages,
		   unsigned int gup_flags, struct smm_page **pages);

#ifdef SMM_DEBUG
/*
 * Called by the fast walk, inside its access section, between its lockless
 * read of the PTE at @ptep (under the PMD entry at @pmdp) and its attempt
 * to take a reference on the page: a test sets it to change an entry there
 * and see the fast path back off. It must not sleep, take a lock or flush
 * a TLB (a flush waits for this very CPU to leave its section).
 */
extern void (*smm_debug_gup_fast_hook)(struct smm_mm *mm, uint64_t addr,
				       pteval_t *pmdp, pteval_t *ptep);
#endif

#endif
