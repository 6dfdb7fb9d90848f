/*
 * filemap.c - files and their page caches (stubs: the implementation
 * lands with the page cache).
 */
#include <errno.h>
#include "mm.h"

SMM_API struct smm_file *smm_file_open(struct smm_pool *pool, int fd)
{
	errno = ENOSYS;
	return NULL;
}
SMM_API struct smm_file *smm_file_create(struct smm_pool *pool, uint64_t size)
{
	errno = ENOSYS;
	return NULL;
}
SMM_API int smm_file_close(struct smm_file *file) { return -ENOSYS; }
SMM_API int64_t smm_file_size(struct smm_file *file) { return -ENOSYS; }
SMM_API int smm_file_truncate(struct smm_file *file, uint64_t size) { return -ENOSYS; }
SMM_API int64_t smm_file_pread(struct smm_file *file, void *buf, size_t len, uint64_t off) { return -ENOSYS; }
SMM_API int64_t smm_file_pwrite(struct smm_file *file, const void *buf, size_t len, uint64_t off) { return -ENOSYS; }
SMM_API int smm_file_writeback(struct smm_file *file, unsigned int flags) { return -ENOSYS; }
SMM_API int64_t smm_mmap_file(struct smm_mm *mm, uint64_t addr, uint64_t len, int prot, int flags, struct smm_file *file, uint64_t offset) { return -ENOSYS; }
SMM_API int smm_msync(struct smm_mm *mm, uint64_t addr, uint64_t len, int flags) { return -ENOSYS; }
