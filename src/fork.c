/*
 * fork.c - smm_fork() and smm_mremap() (stubs until issue 14 lands them).
 */
#include <errno.h>
#include "mm.h"

SMM_API struct smm_mm *smm_fork(struct smm_mm *mm)
{
	errno = ENOSYS;
	return NULL;
}

SMM_API int64_t smm_mremap(struct smm_mm *mm, uint64_t old_addr,
			   uint64_t old_len, uint64_t new_len, int flags,
			   uint64_t new_addr)
{
	return -ENOSYS;
}
