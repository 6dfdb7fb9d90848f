/*
 * fork.c - smm_fork() (a stub until issue 14 lands it).
 */
#include <errno.h>
#include "mm.h"

SMM_API struct smm_mm *smm_fork(struct smm_mm *mm)
{
	errno = ENOSYS;
	return NULL;
}
