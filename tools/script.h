/*
 * tools/script.h - the softmm script language: parsed form, parser, printer,
 * and the two backends (softmm in tools/script.c, the Linux kernel in
 * tools/kbackend.c) behind one run function, with the helpers both share
 * (output hashing, the host files that `file` creates). Owned by the oracle
 * tooling.
 */
#ifndef SOFTMM_TOOLS_SCRIPT_H
#define SOFTMM_TOOLS_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* pin FLAGS */
#define PIN_WRITE    0x1
#define PIN_LONGTERM 0x2
#define PIN_FAST     0x4

/* Scripts work in this window of the address space. */
#define SCRIPT_WIN_START 0x200000000000ULL
#define SCRIPT_WIN_END	 0x300000000000ULL
/* `resident` may cover at most this many bytes (keeps lines bounded). */
#define SCRIPT_RESIDENT_MAX (16ULL << 30)
/* `pin` may cover at most this many bytes (unless the range wraps). */
#define SCRIPT_PIN_MAX (1ULL << 30)
/* Files a script may create (`file N SIZE`, N < SCRIPT_FILES). */
#define SCRIPT_FILES 8
/* `pread`/`pwrite` move at most this many bytes. */
#define SCRIPT_IO_MAX (1ULL << 20)
/* Sizes and offsets of file, ftruncate, pread and pwrite are off_t. */
#define SCRIPT_OFF_MAX 0x7fffffffffffffffULL

/* Address spaces a script may have: the first one and at most
 * SCRIPT_MMS - 1 `fork` lines (the parser refuses more). */
#define SCRIPT_MMS 16

/* `uffd-copy` moves at most this many bytes (unless the range wraps). */
#define SCRIPT_UFFD_COPY_MAX SCRIPT_IO_MAX
/* uffd-policy: how the handler resolves a missing fault (a WP fault is
 * always resolved by removing the protection of its page). */
#define UFFD_POLICY_ZERO 0 /* UFFDIO_ZEROPAGE */
#define UFFD_POLICY_COPY 1 /* UFFDIO_COPY of a page of BYTE */
/* uffd-next: what the handler does at its next event before resolving
 * it, once (op->flags; UFFD_NEXT_MPROTECT: to op->arg's PROT). */
#define UFFD_NEXT_NONE	   0
#define UFFD_NEXT_MUNMAP   1 /* munmap, then wake the fault unresolved */
#define UFFD_NEXT_MPROTECT 2 /* mprotect, then resolve as the policy says */

/* msync FLAGS: Linux's MS_* values */
#define SCRIPT_MS_ASYNC	     1
#define SCRIPT_MS_INVALIDATE 2
#define SCRIPT_MS_SYNC	     4

enum op_kind {
	OP_MMAP,
	OP_MUNMAP,
	OP_MPROTECT,
	OP_MADVISE,
	OP_WRITE,
	OP_TOUCH,
	OP_READ,
	OP_PEEK,
	OP_MAPS,
	OP_RESIDENT,
	OP_PT,
	OP_PIN,	      /* pin ADDR LEN FLAGS: softmm only (kernel: -ENOSYS) */
	OP_UNPIN_ALL, /* unpin_all [dirty] */
	OP_MLOCK,     /* mlock ADDR LEN [onfault] */
	OP_MUNLOCK,   /* munlock ADDR LEN */
	OP_VMFLAGS,   /* vmflags: each VMA's flags, as smaps' VmFlags */
	OP_FILE,      /* file N SIZE: create file N, or truncate it */
	OP_MSYNC,     /* msync ADDR LEN FLAGS */
	OP_FTRUNCATE, /* ftruncate N SIZE */
	OP_PREAD,     /* pread N OFF LEN */
	OP_PWRITE,    /* pwrite N OFF LEN BYTE */
	OP_FORK,      /* fork: a child of the current address space */
	OP_MM,	      /* mm N: address space N becomes current */
	OP_MREMAP,    /* mremap OLD OLDLEN NEWLEN FLAGS [NEWADDR] */
	OP_UFFD_REGISTER,   /* uffd-register ADDR LEN MODE */
	OP_UFFD_UNREGISTER, /* uffd-unregister ADDR LEN */
	OP_UFFD_COPY,	    /* uffd-copy DST LEN BYTE [MODE] */
	OP_UFFD_ZEROPAGE,   /* uffd-zeropage DST LEN [MODE] */
	OP_UFFD_WP,	    /* uffd-wp ADDR LEN on|off [dontwake] */
	OP_UFFD_WAKE,	    /* uffd-wake ADDR LEN */
	OP_UFFD_POLICY,	    /* uffd-policy zero | copy BYTE */
	OP_UFFD_NEXT,	    /* uffd-next ADDR LEN munmap | PROT */
	OP_NR
};

struct op {
	int kind;	    /* enum op_kind */
	uint64_t addr, len; /* the range; file, ftruncate: len is SIZE;
			     * pread, pwrite: len is LEN; mremap: OLD
			     * OLDLEN */
	uint64_t arg;	    /* mmap/mprotect: prot; madvise: advice; write,
			 * pwrite: byte; pin: PIN_* flags; unpin_all: 1 for
			 * dirty; mlock: 1 for onfault (mlock2
			 * MLOCK_ONFAULT); msync: MS_* flags; mm: N;
			 * mremap: NEWLEN; uffd-register: MODE;
			 * uffd-copy, uffd-policy copy: BYTE;
			 * uffd-next: PROT */
	uint64_t flags;	    /* mmap: flags; mremap: MREMAP_* flags;
			     * uffd-copy, -zeropage, -wp: the ioctl's mode;
			     * uffd-policy: UFFD_POLICY_*; uffd-next:
			     * UFFD_NEXT_* */
	uint64_t off;	    /* mmap of a file: OFFSET; pread, pwrite: OFF;
			     * mremap: NEWADDR (0 if not given) */
	int file;	    /* 1 + N of the file used (mmap's 6-argument form,
			 * file, ftruncate, pread, pwrite); 0: none */
};

struct script {
	struct op *ops;
	size_t n, cap;
};

/* A growable output buffer. */
struct strbuf {
	char *buf;
	size_t len, cap;
};

enum backend {
	BACKEND_SOFTMM,
	BACKEND_KERNEL
};

/* Exit statuses of script_run() besides 0. */
#define SCRIPT_ERR_LEAK	 3 /* softmm pool did not get all frames back */
#define SCRIPT_ERR_SETUP 4 /* pool/mm/cpu creation or fork failed */

#include <sys/types.h>
int collect_child(pid_t pid, int fd, struct strbuf *out);

void sb_init(struct strbuf *sb);
void sb_free(struct strbuf *sb);
void sb_reset(struct strbuf *sb);
void sb_add(struct strbuf *sb, const char *s, size_t n);
void sb_printf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void script_init(struct script *s);
void script_free(struct script *s);
void script_push(struct script *s, const struct op *op);

/*
 * script_parse_buf - parse the @len bytes at @text into @s (appending). On
 * a syntax error, a NUL byte, or an operation longer than 1,023 characters
 * (comments after '#' may be any length) prints "NAME:LINE: message" to
 * @err and returns -1; user text in the message is quoted (cli_quote()).
 */
int script_parse_buf(const char *text, size_t len, const char *name,
		     struct script *s, FILE *err);
/* script_parse - script_parse_buf() of the NUL-terminated @text. */
int script_parse(const char *text, const char *name, struct script *s,
		 FILE *err);
/* Whether @op stays inside the window (or overflows, or is a non-fixed
 * mmap): what the parser accepts, and all the kernel backend may run. */
bool script_op_allowed(const struct op *op);
/* script_format_op - append @op as one script line (with '\n') to @sb. */
void script_format_op(const struct op *op, struct strbuf *sb);
/* Lowercase name of an op kind ("mmap", ...). */
const char *script_op_name(int kind);

/*
 * script_run - run @s on one backend, appending exactly one output line per
 * operation to @out. Returns 0, SCRIPT_ERR_LEAK, SCRIPT_ERR_SETUP, or
 * 128 + signal if a (forked) backend was killed by a signal.
 */
int script_run(const struct script *s, enum backend be, int scheme,
	       struct strbuf *out);

/*
 * script_run_forked - like script_run() but the softmm backend runs in a
 * forked child too, so a crash in the library cannot take the caller down.
 */
int script_run_forked(const struct script *s, enum backend be, int scheme,
		      struct strbuf *out);

/*
 * Multi-size THP for both backends (`--mthp` of oracle and script): an
 * OR of SMM_MTHP_*, 0 (the default) for none. The softmm backend's pool
 * gets it (smm_pool_set_mthp()); the kernel backend's child then leaves
 * THP enabled for itself, and script_kernel_mthp() must have set the
 * kernel's per-size knobs to the same sizes.
 */
extern unsigned int script_mthp;
/* Set script_mthp from a --mthp list ("64k", "16k,64k"): 0; or -1, after
 * telling "softmm @tool: --mthp takes ..." on stderr. */
int script_set_mthp(const char *tool, const char *list);
/*
 * script_kernel_mthp - make the kernel's anonymous THP sizes exactly
 * script_mthp: hugepages-<size>kB/enabled "always" for those, "never" for
 * every other size (PMD-size too, so MADV_HUGEPAGE maps no 2 MiB pages),
 * saving the old settings and restoring them at exit. Needs root. 0, or
 * -errno (EACCES: a knob is not writable; ENOENT: no per-size knobs,
 * Linux before 6.8).
 */
int script_kernel_mthp(void);

/* Backends (script.c, kbackend.c). */
int script_run_softmm(const struct script *s, int scheme, struct strbuf *out);
int script_run_kernel(const struct script *s, struct strbuf *out);

/* Shared helpers for the backends. */
uint64_t fnv1a_init(void);
uint64_t fnv1a_update(uint64_t h, const unsigned char *p, size_t n);
/* Number of characters a `resident` line for @len may need. */
size_t script_resident_pages(uint64_t len);
/* Largest output line this script can produce, plus slack. */
size_t script_max_line(const struct script *s);

/*
 * The VMA flags `vmflags` prints: smaps' two-letter VmFlags names of the
 * VM_* bits softmm models beyond the protection (which `maps` shows), in
 * bit order as smaps prints them. @bit is the SMM_VM_* value, Linux's.
 */
struct vmflag_name {
	uint64_t bit;
	const char *name;
};
extern const struct vmflag_name script_vmflags[];
extern const size_t script_nr_vmflags;

/*
 * Userfaultfd events of one operation (both backends): each backend's
 * handler thread appends one entry per event, "UFFD 0xADDR missing|wp
 * read|write; " (with " -ERRNO" before the "; " if the handler could not
 * resolve it), at most SCRIPT_UFFD_EVENTS of them (the rest are counted,
 * "UFFD +N more; "); the line of the operation that raised them starts
 * with them. No allocation: the kernel backend's handler uses it too.
 */
#define SCRIPT_UFFD_EVENTS 64
#define SCRIPT_UFFD_ENTRY  48 /* longest entry, with slack */
struct uffd_log {
	char buf[SCRIPT_UFFD_EVENTS * SCRIPT_UFFD_ENTRY + 64];
	size_t len;
	unsigned int n, more;
};
void uffd_log_event(struct uffd_log *l, uint64_t addr, bool wp, bool write,
		    int err);
/* Finish the log (the "+N more" entry); returns its length. */
size_t uffd_log_finish(struct uffd_log *l);
/* Whether @s has a uffd-* line: the backends start their handlers then. */
bool script_uses_uffd(const struct script *s);
/* Whether @kind is one of the uffd-* operations. */
bool script_op_is_uffd(int kind);

/* The limits the kernel backend's child runs under, softmm's own:
 * RLIMIT_MEMLOCK (SMM_MLOCK_LIMIT) and RLIMIT_STACK (SMM_STACK_LIMIT). */

/*
 * script_host_file - a new, empty, unnamed host file for `file N SIZE`,
 * open for reading and writing (O_TMPFILE, or a name unlinked at once, so
 * that nothing is left behind however the process ends), on a disk
 * filesystem: /var/tmp, else /tmp, else $TMPDIR, the first one that is not
 * tmpfs (page-cache residency on tmpfs follows shmem's rules, not a disk
 * file's). Returns the descriptor (close-on-exec), or -errno; -ENOTSUP if
 * all of them are tmpfs.
 */
int script_host_file(void);

/* Errno name ("EINVAL") for a positive errno value. */
const char *script_errname(int err);

/* Commands of the `softmm` tool. */
int cmd_script(int argc, char **argv);
int cmd_oracle(int argc, char **argv);

#endif
