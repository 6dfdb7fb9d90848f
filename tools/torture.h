/*
 * tools/torture.h - the torture command of the softmm tool: torture.c
 * parses the options and runs the address-space torture; with --files it
 * hands them to the file torture of torture_files.c.
 */
#ifndef SOFTMM_TOOLS_TORTURE_H
#define SOFTMM_TOOLS_TORTURE_H

#include <stdint.h>

#define TORTURE_MAX_THREADS    64
#define TORTURE_MAX_MMS	       8
#define TORTURE_MAX_GUP	       8
#define TORTURE_MAX_FILE_PAGES 4096

/* The options both tortures take (cmd_torture() checked their ranges). */
struct torture_opts {
	int threads, mms, seconds, scheme, gup;
	int file_pages;	       /* --files: the host file's size in pages */
	unsigned int mm_flags; /* SMM_MM_* */
	uint64_t seed;
};

int cmd_torture(int argc, char **argv);

/* `softmm torture --files`: returns 0, 1 after a violation, 2 if it could
 * not start. */
int torture_files(const struct torture_opts *o);

#endif
