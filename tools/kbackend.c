/*
 * tools/kbackend.c - the kernel backend of the script language: runs a
 * parsed script through real syscalls and real loads/stores in a forked
 * child, so that the Linux kernel on this machine serves as the oracle.
 *
 * The child must not change its own page tables except through the script:
 * everything it needs (output line, mincore vector, /proc buffer, signal
 * stack, pread/pwrite buffer) is allocated and touched before it takes its
 * VmPTE baseline, and it formats numbers itself and talks to files with raw
 * read()/write().
 *
 * The script's files (`file N SIZE`) are unnamed files on a disk
 * filesystem (script_host_file(): O_TMPFILE in /var/tmp), so nothing is
 * left behind however the child ends, advised POSIX_FADV_RANDOM so that
 * reads do not read ahead: what is in the page cache (what `resident`
 * shows of a file mapping) is then what the script touched, as in softmm.
 * They are opened before the first line (one per N that a `file` line
 * names) and marked created when `file` first names them, so that every
 * process below has the same descriptors, as after a fork.
 *
 * Address spaces (`fork`, `mm N`): one process per address space. Process
 * 0 is the child forked by script_run_kernel(); `fork` forks the process
 * of the current address space, and the new process waits. Exactly one
 * process runs the script at a time, the current address space's: `mm N`
 * prints its line, writes the index of the next line to process N's
 * control pipe and waits on its own. Every process has every control pipe
 * and the output pipe (made before the first fork), and a page of shared
 * memory (struct kshared) says how many address spaces exist and which
 * files are created. At the end the process that ran the last line tells
 * the others to exit; process 0, a child subreaper, reaps every one of
 * them (orphans come to it) before it exits with the first failure seen.
 * A waiting process that finds a child of its own dead, or its parent
 * gone, before the end, tells everyone to exit (no hang).
 *
 * `pt` of a forked process: the growth of its VmPTE over what the process
 * would have with an empty window. `fork` first forks a probe that unmaps
 * the whole window (which frees all of its page tables: the window is
 * aligned to PGD entries), runs the same warm-up as the real child, and
 * reports its VmPTE; then forks the real child, whose baseline that is.
 */
#define _GNU_SOURCE
#include "script.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <linux/userfaultfd.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include "softmm.h"

#define KPAGE	      4096ULL
#define PROCBUF_SIZE  (64 * 1024)
#define ALTSTACK_SIZE (64 * 1024)

static sigjmp_buf kjb;
static volatile uint64_t kcur; /* start of the chunk being accessed */
static volatile int ksig;      /* SIGSEGV or SIGBUS: what the fault was */
static int kfd[SCRIPT_FILES];  /* the script's files, -1: not opened */

/* Shared by all the processes of a script (MAP_SHARED, made before the
 * first fork); only the process running the script writes it. */
struct kshared {
	size_t nmm;		    /* address spaces that exist */
	bool created[SCRIPT_FILES]; /* `file N` has run */
	int status;		    /* first failure seen, for the exit */
	uint64_t probe_pte;	    /* VmPTE of the last fork's probe */
};
static struct kshared *ksh;
static int kctl[SCRIPT_MMS][2]; /* control pipes, by address space */
static size_t kself;		/* this process's address space */
static pid_t kparent;		/* its parent (process 0: 0) */
#define KMSG_EXIT UINT64_MAX	/* a control message: exit */
static char altstack[ALTSTACK_SIZE] __attribute__((aligned(4096)));
static char procbuf[PROCBUF_SIZE + 1];

struct kout {
	int fd;
	char *line; /* pre-sized by the parent */
	size_t len;
};

/*
 * Userfaultfd: each process of a script with uffd-* lines has its own
 * userfaultfd (a forked one's fd would still be its parent's, registering
 * ranges of the parent's address space) and a handler thread reading it,
 * both made in the warm-up, before the VmPTE baseline; the thread runs on
 * a static stack, touched then, so that it allocates nothing later. It
 * resolves each event as the softmm backend's does (tools/script.c,
 * suffd_handler()): first the change a uffd-next line left for it, if
 * any (munmap: the fault is then woken unresolved); then by the
 * process's uffd-policy with DONTWAKE. It logs the event in kulog and
 * wakes the page with UFFDIO_WAKE; if it cannot resolve it, it logs the
 * error and unregisters the page first. k_op() puts the log before the
 * line of the operation that raised the events.
 */
#define KUFFD_STACK (256 * 1024)
static struct {
	int fd;	   /* this process's userfaultfd, -1: none */
	pid_t pid; /* the process that made fd and the thread */
	int policy, byte;
	/* uffd-next: set by the script's thread, taken (exchanged for
	 * UFFD_NEXT_NONE) by the handler at its next event */
	int next;
	uint64_t next_addr, next_len, next_prot;
} ku = { .fd = -1 };
static struct uffd_log kulog;
static char kuffd_stack[KUFFD_STACK] __attribute__((aligned(4096)));
static unsigned char kuffd_page[KPAGE] __attribute__((aligned(4096)));
static unsigned char kuffd_src[SCRIPT_UFFD_COPY_MAX]
	__attribute__((aligned(4096)));

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	ksig = sig;
	siglongjmp(kjb, 1);
}

static void k_puts(struct kout *o, const char *s)
{
	size_t n = strlen(s);
	memcpy(o->line + o->len, s, n);
	o->len += n;
}

static void k_putc(struct kout *o, char c)
{
	o->line[o->len++] = c;
}

static void k_hex(struct kout *o, uint64_t v, int width)
{
	char tmp[17];
	int n = 0;
	do {
		tmp[n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	while (n < width)
		tmp[n++] = '0';
	while (n)
		k_putc(o, tmp[--n]);
}

static void k_dec(struct kout *o, uint64_t v)
{
	char tmp[21];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		k_putc(o, tmp[--n]);
}

static void k_flush(struct kout *o)
{
	k_putc(o, '\n');
	size_t off = 0;
	while (off < o->len) {
		ssize_t w = write(o->fd, o->line + off, o->len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(SCRIPT_ERR_SETUP);
		off += (size_t)w;
	}
	o->len = 0;
}

static void k_err(struct kout *o, int err)
{
	k_putc(o, '-');
	k_puts(o, script_errname(err));
}

static void k_ret(struct kout *o, long r)
{
	if (r < 0)
		k_err(o, errno);
	else
		k_putc(o, '0');
}

/* A load or store faulted: SEGV 0x..., or BUS 0x... for SIGBUS (a file
 * page beyond the end of the file). */
static void k_segv(struct kout *o)
{
	k_puts(o, ksig == SIGBUS ? "BUS 0x" : "SEGV 0x");
	k_hex(o, kcur, 0);
}

/* Open the files that the script's `file` lines name (unnamed,
 * FADV_RANDOM), before the first line: created, for the script, when
 * `file` first names them. */
static void k_open_files(const struct script *s)
{
	for (size_t i = 0; i < s->n; i++) {
		int *fd = &kfd[s->ops[i].file - 1];
		int r;

		if (s->ops[i].kind != OP_FILE || *fd >= 0)
			continue;
		r = script_host_file();
		if (r < 0) {
			static const char msg[] = "softmm: kernel backend: no "
						  "disk file for `file`\n";

			(void)!write(2, msg, sizeof(msg) - 1);
			_exit(SCRIPT_ERR_SETUP);
		}
		posix_fadvise(r, 0, 0, POSIX_FADV_RANDOM);
		*fd = r;
	}
}

/* file N SIZE: file N is created now if it was not; ftruncate. */
static void k_file(const struct op *op, struct kout *o)
{
	ksh->created[op->file - 1] = true;
	k_ret(o, ftruncate(kfd[op->file - 1], (off_t)op->len));
}

/* The fd of the op's file, -1 (EBADF) if not created. */
static int op_fd(const struct op *op)
{
	return op->file && ksh->created[op->file - 1] ? kfd[op->file - 1] : -1;
}

/* Read a whole /proc file into procbuf (truncated at PROCBUF_SIZE). */
static size_t read_proc(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, procbuf + len, PROCBUF_SIZE - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == PROCBUF_SIZE)
			break;
	}
	close(fd);
	procbuf[len] = 0;
	return len;
}

static uint64_t parse_hex(const char **pp)
{
	const char *p = *pp;
	uint64_t v = 0;
	for (;; p++) {
		if (*p >= '0' && *p <= '9')
			v = v * 16 + (uint64_t)(*p - '0');
		else if (*p >= 'a' && *p <= 'f')
			v = v * 16 + (uint64_t)(*p - 'a' + 10);
		else
			break;
	}
	*pp = p;
	return v;
}

/* VmPTE in bytes. */
static uint64_t vmpte_bytes(void)
{
	read_proc("/proc/self/status");
	const char *p = strstr(procbuf, "VmPTE:");
	if (!p)
		return 0;
	p += 6;
	while (*p == ' ' || *p == '\t')
		p++;
	uint64_t v = 0;
	while (*p >= '0' && *p <= '9')
		v = v * 10 + (uint64_t)(*p++ - '0');
	return v * 1024;
}

/*
 * Stream the /proc file @path (it may be longer than procbuf) and call
 * @fn on each line, without its newline.
 */
static void proc_lines(const char *path,
		       void (*fn)(const char *line, size_t len, void *ctx),
		       void *ctx)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t have = 0;
	bool eof = false;

	while (fd >= 0) {
		if (!eof) {
			ssize_t n =
				read(fd, procbuf + have, PROCBUF_SIZE - have);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				eof = true;
			else
				have += (size_t)n;
		}
		procbuf[have] = 0;
		char *p = procbuf;
		char *nl;
		while ((nl = memchr(p, '\n', have - (size_t)(p - procbuf)))) {
			fn(p, (size_t)(nl - p), ctx);
			p = nl + 1;
		}
		size_t rest = have - (size_t)(p - procbuf);
		memmove(procbuf, p, rest);
		have = rest;
		if (eof)
			break;
	}
	if (fd >= 0)
		close(fd);
}

/* A VMA's line of maps or smaps: "start-end perms ...". */
static bool vma_line(const char *l, size_t len, uint64_t *s, uint64_t *e,
		     const char **rest)
{
	const char *q = l;

	if (!len || !((*l >= '0' && *l <= '9') || (*l >= 'a' && *l <= 'f')))
		return false;
	*s = parse_hex(&q);
	if (*q++ != '-')
		return false;
	*e = parse_hex(&q);
	if (*q++ != ' ')
		return false;
	*rest = q;
	return true;
}

struct vma_printer {
	struct kout *o;
	int nprinted;
	bool in; /* smaps: the current VMA is in the window */
};

/* "start-end ", after a ';' unless it is the first VMA printed. */
static void put_vma(struct vma_printer *pr, uint64_t s, uint64_t e)
{
	if (pr->nprinted++)
		k_putc(pr->o, ';');
	k_hex(pr->o, s, 0);
	k_putc(pr->o, '-');
	k_hex(pr->o, e, 0);
	k_putc(pr->o, ' ');
}

/* maps: the VMAs intersecting the window, "start-end perms". */
static void maps_line(const char *l, size_t len, void *ctx)
{
	struct vma_printer *pr = ctx;
	uint64_t s, e;
	const char *q;

	if (!vma_line(l, len, &s, &e, &q) || s >= SCRIPT_WIN_END ||
	    e <= SCRIPT_WIN_START)
		return;
	put_vma(pr, s, e);
	for (int i = 0; i < 4 && q[i]; i++)
		k_putc(pr->o, q[i]);
}

static void k_maps(struct kout *o)
{
	struct vma_printer pr = { .o = o };

	proc_lines("/proc/self/maps", maps_line, &pr);
	if (!pr.nprinted)
		k_putc(o, '-');
}

/*
 * vmflags: for each VMA intersecting the window, "start-end " and the
 * VmFlags names of smaps that softmm models (script_vmflags), comma
 * separated, in smaps' order; "-" for none of them.
 */
static void smaps_line(const char *l, size_t len, void *ctx)
{
	struct vma_printer *pr = ctx;
	uint64_t s, e;
	const char *q;
	int nf = 0;

	if (vma_line(l, len, &s, &e, &q)) {
		pr->in = s < SCRIPT_WIN_END && e > SCRIPT_WIN_START;
		if (pr->in)
			put_vma(pr, s, e);
		return;
	}
	if (!pr->in || len < 8 || memcmp(l, "VmFlags:", 8))
		return;
	for (size_t k = 0; k < script_nr_vmflags; k++) {
		const char *name = script_vmflags[k].name;

		for (size_t i = 8; i + 2 <= len; i++)
			if (l[i] == name[0] && l[i + 1] == name[1] &&
			    l[i - 1] == ' ' &&
			    (i + 2 == len || l[i + 2] == ' ')) {
				if (nf++)
					k_putc(pr->o, ',');
				k_puts(pr->o, name);
				break;
			}
	}
	if (!nf)
		k_putc(pr->o, '-');
	pr->in = false;
}

static void k_vmflags(struct kout *o)
{
	struct vma_printer pr = { .o = o };

	proc_lines("/proc/self/smaps", smaps_line, &pr);
	if (!pr.nprinted)
		k_putc(o, '-');
}

static uint64_t range_end(uint64_t addr, uint64_t len)
{
	uint64_t end = addr + len;
	return end < addr ? UINT64_MAX : end;
}

static volatile uint64_t khash; /* result of the last read/peek */

/* The loads and stores of write/touch/read/peek, page chunk by page chunk;
 * kcur says which chunk a fault hit. Plain volatile accesses, not memset and
 * not sanitizer-instrumented: a sanitizer's shadow lookups would allocate
 * page tables and show up in `pt`. */
#if defined(__SANITIZE_ADDRESS__)
#define NO_SANITIZE __attribute__((no_sanitize_address))
#else
#define NO_SANITIZE
#endif
static __attribute__((noinline)) NO_SANITIZE void
access_loop(const struct op *op)
{
	uint64_t end = range_end(op->addr, op->len);
	uint64_t h = fnv1a_init();
	if (op->kind == OP_WRITE || op->kind == OP_READ) {
		for (uint64_t a = op->addr; a < end;) {
			uint64_t next = (a & ~(KPAGE - 1)) + KPAGE;
			if (next > end || next < a)
				next = end;
			kcur = a;
			if (op->kind == OP_WRITE) {
				for (uint64_t x = a; x < next; x++)
					*(volatile unsigned char *)x =
						(unsigned char)op->arg;
			} else {
				for (uint64_t x = a; x < next; x++) {
					h ^= *(volatile const unsigned char *)x;
					h *= 0x100000001b3ULL;
				}
			}
			a = next;
		}
	} else {
		uint64_t a = (op->addr + KPAGE - 1) & ~(KPAGE - 1);
		for (; a >= op->addr && a < end; a += KPAGE) {
			kcur = a;
			if (op->kind == OP_TOUCH) {
				*(volatile unsigned char *)a = 1;
			} else {
				h ^= *(volatile const unsigned char *)a;
				h *= 0x100000001b3ULL;
			}
			if (a + KPAGE < a)
				break;
		}
	}
	khash = h;
}

static int k_uffd_range(unsigned long req, uint64_t a, uint64_t len)
{
	struct uffdio_range r = { .start = a, .len = len };

	return ioctl(ku.fd, req, &r) ? -errno : 0;
}

static void *k_uffd_handler(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct uffd_msg m;

	for (;;) {
		ssize_t n = read(fd, &m, sizeof(m));
		uint64_t a;
		bool wp;
		int r, next;

		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n != sizeof(m))
			return NULL;
		if (m.event != UFFD_EVENT_PAGEFAULT)
			continue;
		a = m.arg.pagefault.address & ~(KPAGE - 1);
		wp = m.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP;
		next = __atomic_exchange_n(&ku.next, UFFD_NEXT_NONE,
					   __ATOMIC_ACQUIRE);
		r = 0;
		if (next == UFFD_NEXT_MUNMAP)
			r = munmap((void *)(uintptr_t)ku.next_addr,
				   ku.next_len) ?
				    -errno :
				    0;
		else if (next == UFFD_NEXT_MPROTECT)
			r = mprotect((void *)(uintptr_t)ku.next_addr,
				     ku.next_len, (int)ku.next_prot) ?
				    -errno :
				    0;
		if (r || next == UFFD_NEXT_MUNMAP) {
			/* the change's answer; the fault woken unresolved */
		} else if (wp) {
			struct uffdio_writeprotect w = {
				.range = { .start = a, .len = KPAGE },
				.mode = UFFDIO_WRITEPROTECT_MODE_DONTWAKE,
			};

			r = ioctl(fd, UFFDIO_WRITEPROTECT, &w) ? -errno : 0;
		} else if (__atomic_load_n(&ku.policy, __ATOMIC_ACQUIRE) ==
			   UFFD_POLICY_COPY) {
			struct uffdio_copy c = {
				.dst = a,
				.src = (uint64_t)(uintptr_t)kuffd_page,
				.len = KPAGE,
				.mode = UFFDIO_COPY_MODE_DONTWAKE,
			};

			memset(kuffd_page,
			       __atomic_load_n(&ku.byte, __ATOMIC_RELAXED),
			       KPAGE);
			r = ioctl(fd, UFFDIO_COPY, &c) ? -errno : 0;
		} else {
			struct uffdio_zeropage z = {
				.range = { .start = a, .len = KPAGE },
				.mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE,
			};

			r = ioctl(fd, UFFDIO_ZEROPAGE, &z) ? -errno : 0;
		}
		uffd_log_event(
			&kulog, a, wp,
			m.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE, r);
		__atomic_thread_fence(__ATOMIC_RELEASE);
		if (r)
			k_uffd_range(UFFDIO_UNREGISTER, a, KPAGE);
		k_uffd_range(UFFDIO_WAKE, a, KPAGE);
	}
}

/* This process's userfaultfd and handler, if it has none yet (a forked
 * process closes its parent's). Part of the warm-up. */
static void k_uffd_setup(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	pthread_attr_t at;
	pthread_t t;

	if (ku.pid == getpid())
		return;
	ku.pid = getpid();
	if (ku.fd >= 0)
		close(ku.fd);
	alarm(60); /* a fault no handler resolves: die, not hang */
	memset(kuffd_stack, 0, sizeof(kuffd_stack));
	memset(kuffd_page, 0, sizeof(kuffd_page));
	memset(kuffd_src, 0, sizeof(kuffd_src));
	memset(&kulog, 0, sizeof(kulog));
	uffd_log_event(&kulog, 0x1234, true, true, -EINVAL);
	(void)uffd_log_finish(&kulog);
	memset(&kulog, 0, sizeof(kulog));
	ku.fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	if (ku.fd < 0)
		return; /* the uffd-* lines print the errno (EBADF) */
	if (ioctl(ku.fd, UFFDIO_API, &api)) {
		close(ku.fd);
		ku.fd = -1;
		return;
	}
	(void)k_uffd_range(UFFDIO_WAKE, SCRIPT_WIN_START, 0);
	if (pthread_attr_init(&at) ||
	    pthread_attr_setstack(&at, kuffd_stack, sizeof(kuffd_stack)) ||
	    pthread_create(&t, &at, k_uffd_handler, (void *)(intptr_t)ku.fd))
		_exit(SCRIPT_ERR_SETUP);
	pthread_attr_destroy(&at);
	pthread_detach(t);
}

/* The uffd-* lines. */
static void k_uffd_op(const struct op *op, struct kout *o)
{
	int r;

	switch (op->kind) {
	case OP_UFFD_POLICY:
		__atomic_store_n(&ku.byte, (int)op->arg, __ATOMIC_RELAXED);
		__atomic_store_n(&ku.policy, (int)op->flags, __ATOMIC_RELEASE);
		k_putc(o, '0');
		return;
	case OP_UFFD_NEXT:
		ku.next_addr = op->addr;
		ku.next_len = op->len;
		ku.next_prot = op->arg;
		__atomic_store_n(&ku.next, (int)op->flags, __ATOMIC_RELEASE);
		k_putc(o, '0');
		return;
	case OP_UFFD_REGISTER: {
		struct uffdio_register g = {
			.range = { .start = op->addr, .len = op->len },
			.mode = op->arg,
		};

		r = ioctl(ku.fd, UFFDIO_REGISTER, &g) ? -errno : 0;
		break;
	}
	case OP_UFFD_UNREGISTER:
		r = k_uffd_range(UFFDIO_UNREGISTER, op->addr, op->len);
		break;
	case OP_UFFD_WAKE:
		r = k_uffd_range(UFFDIO_WAKE, op->addr, op->len);
		break;
	case OP_UFFD_WP: {
		struct uffdio_writeprotect w = {
			.range = { .start = op->addr, .len = op->len },
			.mode = op->flags,
		};

		r = ioctl(ku.fd, UFFDIO_WRITEPROTECT, &w) ? -errno : 0;
		break;
	}
	case OP_UFFD_COPY:
	case OP_UFFD_ZEROPAGE: {
		int64_t done;

		if (op->kind == OP_UFFD_COPY) {
			struct uffdio_copy c = {
				.dst = op->addr,
				.src = (uint64_t)(uintptr_t)kuffd_src,
				.len = op->len,
				.mode = op->flags,
			};

			if (op->len <= SCRIPT_UFFD_COPY_MAX)
				memset(kuffd_src, (int)op->arg, op->len);
			r = ioctl(ku.fd, UFFDIO_COPY, &c) ? -errno : 0;
			done = c.copy;
		} else {
			struct uffdio_zeropage z = {
				.range = { .start = op->addr, .len = op->len },
				.mode = op->flags,
			};

			r = ioctl(ku.fd, UFFDIO_ZEROPAGE, &z) ? -errno : 0;
			done = z.zeropage;
		}
		/* the return, then the field the kernel wrote (0 if it
		 * left it alone) */
		if (r)
			k_err(o, -r);
		else
			k_putc(o, '0');
		k_putc(o, ' ');
		if (done < 0)
			k_err(o, (int)-done);
		else
			k_dec(o, (uint64_t)done);
		return;
	}
	default:
		return;
	}
	if (r)
		k_err(o, -r);
	else
		k_putc(o, '0');
}

/* Put the events the line's operation raised (kulog) before the line. */
static void k_uffd_flush(struct kout *o)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	size_t n = uffd_log_finish(&kulog);

	if (!n)
		return;
	memmove(o->line + n, o->line, o->len);
	memcpy(o->line, kulog.buf, n);
	o->len += n;
	kulog.len = kulog.n = kulog.more = 0;
}

/* Returns 0, or -1 if the access faulted (at kcur). */
static __attribute__((noinline)) int guarded_access(const struct op *op)
{
	if (sigsetjmp(kjb, 1))
		return -1;
	access_loop(op);
	return 0;
}

static void k_op(const struct op *op, struct kout *o, unsigned char *vec,
		 unsigned char *iobuf, uint64_t pt_base)
{
	long r;
	if (!script_op_allowed(op)) {
		k_puts(o, "REFUSED (range outside the window)");
		return;
	}
	switch (op->kind) {
	case OP_FILE:
		k_file(op, o);
		return;
	case OP_FTRUNCATE:
		k_ret(o, ftruncate(op_fd(op), (off_t)op->len));
		return;
	case OP_MSYNC:
		k_ret(o, msync((void *)op->addr, op->len, (int)op->arg));
		return;
	case OP_PREAD:
	case OP_PWRITE: {
		ssize_t n;

		if (op->kind == OP_PREAD) {
			n = pread(op_fd(op), iobuf, op->len, (off_t)op->off);
		} else {
			memset(iobuf, (int)op->arg, op->len);
			n = pwrite(op_fd(op), iobuf, op->len, (off_t)op->off);
		}
		if (n < 0) {
			k_err(o, errno);
			return;
		}
		k_dec(o, (uint64_t)n);
		if (op->kind == OP_PREAD) {
			k_putc(o, ' ');
			k_hex(o, fnv1a_update(fnv1a_init(), iobuf, (size_t)n),
			      16);
		}
		return;
	}
	case OP_MMAP: {
		void *p = mmap((void *)op->addr, op->len, (int)op->arg,
			       (int)op->flags, op_fd(op), (off_t)op->off);
		if (p == MAP_FAILED) {
			k_err(o, errno);
		} else {
			k_puts(o, "0x");
			k_hex(o, (uint64_t)p, 0);
		}
		return;
	}
	case OP_MREMAP: {
		/* the raw call: glibc's wrapper is variadic */
		long a = syscall(SYS_mremap, op->addr, op->len, op->arg,
				 (unsigned long)op->flags, op->off);
		if (a == -1) {
			k_err(o, errno);
		} else {
			k_puts(o, "0x");
			k_hex(o, (uint64_t)a, 0);
		}
		return;
	}
	case OP_FORK:
	case OP_MM:
		return; /* k_run() runs them */
	case OP_MUNMAP:
		r = munmap((void *)op->addr, op->len);
		k_ret(o, r);
		return;
	case OP_MPROTECT:
		r = mprotect((void *)op->addr, op->len, (int)op->arg);
		k_ret(o, r);
		return;
	case OP_MADVISE:
		r = madvise((void *)op->addr, op->len, (int)op->arg);
		k_ret(o, r);
		return;
	case OP_MLOCK:
		r = op->arg ? mlock2((void *)op->addr, op->len, MLOCK_ONFAULT) :
			      mlock((void *)op->addr, op->len);
		k_ret(o, r);
		return;
	case OP_MUNLOCK:
		r = munlock((void *)op->addr, op->len);
		k_ret(o, r);
		return;
	case OP_VMFLAGS:
		k_vmflags(o);
		return;
	case OP_WRITE:
	case OP_TOUCH:
	case OP_READ:
	case OP_PEEK:
		if (guarded_access(op)) {
			k_segv(o);
			return;
		}
		if (op->kind == OP_WRITE || op->kind == OP_TOUCH)
			k_puts(o, "ok");
		else
			k_hex(o, khash, 16);
		return;
	case OP_MAPS:
		k_maps(o);
		return;
	case OP_RESIDENT: {
		size_t pages = script_resident_pages(op->len);
		r = mincore((void *)op->addr, op->len, vec);
		if (r < 0) {
			k_err(o, errno);
			return;
		}
		for (size_t i = 0; i < pages; i++)
			k_putc(o, (vec[i] & 1) ? '1' : '0');
		return;
	}
	case OP_PIN:
	case OP_UNPIN_ALL:
		/* user space cannot pin its own pages */
		k_err(o, ENOSYS);
		return;
	case OP_UFFD_REGISTER:
	case OP_UFFD_UNREGISTER:
	case OP_UFFD_COPY:
	case OP_UFFD_ZEROPAGE:
	case OP_UFFD_WP:
	case OP_UFFD_WAKE:
	case OP_UFFD_POLICY:
	case OP_UFFD_NEXT:
		k_uffd_op(op, o);
		return;
	case OP_PT: {
		uint64_t now = vmpte_bytes();
		if (now >= pt_base) {
			k_dec(o, now - pt_base);
		} else {
			k_putc(o, '-');
			k_dec(o, pt_base - now);
		}
		return;
	}
	}
}

/* Exercise every path the child will use, so that faulting in its text,
 * data and stack does not show up in VmPTE later. */
static void warm_up(unsigned char *vec, size_t vecsz, char *line, size_t linesz,
		    unsigned char *iobuf, size_t iosz, const struct script *s)
{
	memset(iobuf, 0, iosz);
	(void)fnv1a_update(fnv1a_init(), iobuf, 1);
	for (size_t i = 0; i < s->n; i++)
		if (s->ops[i].kind == OP_FILE) {
			int fd = script_host_file();

			if (fd >= 0) {
				posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
				(void)!ftruncate(fd, KPAGE);
				(void)!pwrite(fd, iobuf, 1, 0);
				(void)!pread(fd, iobuf, 1, 0);
				close(fd);
			}
			break;
		}
	(void)!ftruncate(-1, 0);
	(void)!pread(-1, iobuf, 0, 0);
	(void)!pwrite(-1, iobuf, 0, 0);
	(void)msync((void *)SCRIPT_WIN_START, 0, 0);
	memset(vec, 0, vecsz);
	memset(line, 0, linesz);
	memset(procbuf, 0, sizeof(procbuf));
	memset(altstack, 0, sizeof(altstack));
	volatile unsigned char sum = 0;
	for (size_t i = 0; i < s->n * sizeof(struct op); i += 512)
		sum += ((const unsigned char *)s->ops)[i];
	(void)sum;
	errno = 0;
	(void)mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	(void)munmap((void *)SCRIPT_WIN_START, 0);
	(void)mprotect((void *)SCRIPT_WIN_START, 0, PROT_READ);
	(void)madvise((void *)SCRIPT_WIN_START, 0, MADV_DONTNEED);
	(void)mlock((void *)SCRIPT_WIN_START, 0);
	(void)mlock2((void *)SCRIPT_WIN_START, 0, MLOCK_ONFAULT);
	(void)munlock((void *)SCRIPT_WIN_START, 0);
	(void)mincore((void *)SCRIPT_WIN_START, 0, vec);
	(void)syscall(SYS_mremap, SCRIPT_WIN_START, 0, 0, 0, 0);
	/* what the processes of fork and mm N use to wait and hand over */
	struct pollfd pf = { .fd = kctl[kself][0], .events = POLLIN };
	(void)poll(&pf, 1, 0);
	(void)waitpid(-1, NULL, WNOHANG);
	(void)getppid();
	(void)getpid();
	(void)!write(kctl[kself][1], "", 0);
	ksh->status += 0;
	(void)script_errname(EINVAL);
	(void)vmpte_bytes();
	struct kout o = { .fd = -1, .line = line, .len = 0 };
	k_maps(&o);
	o.len = 0;
	k_vmflags(&o);
	o.len = 0;
	k_hex(&o, 0x1234, 16);
	k_dec(&o, 1234);
	/* A deliberate fault through the handler and siglongjmp. */
	void *g = mmap(NULL, KPAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);
	if (g != MAP_FAILED) {
		if (!sigsetjmp(kjb, 1)) {
			kcur = (uint64_t)g;
			(void)*(volatile unsigned char *)g;
		}
		munmap(g, KPAGE);
	}
	if (script_uses_uffd(s))
		k_uffd_setup();
	memset(line, 0, linesz);
}

/*
 * Run under softmm's limits: RLIMIT_MEMLOCK and RLIMIT_STACK as softmm
 * applies them (SMM_MLOCK_LIMIT, SMM_STACK_LIMIT), and without
 * CAP_IPC_LOCK, which would lift the mlock limit (the oracle usually runs
 * as root).
 */
static void drop_to_softmm_limits(void)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct d[2];
	struct rlimit ml = { SMM_MLOCK_LIMIT, SMM_MLOCK_LIMIT };
	struct rlimit st;

	if (!syscall(SYS_capget, &h, d)) {
		d[CAP_IPC_LOCK / 32].effective &= ~(1U << (CAP_IPC_LOCK % 32));
		d[CAP_IPC_LOCK / 32].permitted &= ~(1U << (CAP_IPC_LOCK % 32));
		d[CAP_IPC_LOCK / 32].inheritable &=
			~(1U << (CAP_IPC_LOCK % 32));
		syscall(SYS_capset, &h, d);
	}
	setrlimit(RLIMIT_MEMLOCK, &ml);
	if (!getrlimit(RLIMIT_STACK, &st)) {
		st.rlim_cur = SMM_STACK_LIMIT;
		if (st.rlim_max != RLIM_INFINITY &&
		    st.rlim_max < SMM_STACK_LIMIT)
			st.rlim_cur = st.rlim_max;
		setrlimit(RLIMIT_STACK, &st);
	}
}

/* What every process of the script runs with (a forked one warms up with
 * it too). */
static struct {
	const struct script *s;
	struct kout o;
	unsigned char *vec, *iobuf;
	size_t vecsz, linesz, iosz;
	uint64_t pt_base; /* VmPTE with an empty window */
} kc;

static void k_warm_up(void)
{
	warm_up(kc.vec, kc.vecsz, kc.o.line, kc.linesz, kc.iobuf, kc.iosz,
		kc.s);
}

static void k_send(size_t mm, uint64_t msg)
{
	while (write(kctl[mm][1], &msg, sizeof(msg)) < 0 && errno == EINTR)
		;
}

/* Tell every other address space's process to exit. */
static void k_broadcast_exit(void)
{
	for (size_t i = 0; i < ksh->nmm; i++)
		if (i != kself)
			k_send(i, KMSG_EXIT);
}

static int wait_code(int st)
{
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

/* The end of this process. Process 0 first reaps every other process of
 * the script (it is their subreaper) and exits with the first failure. */
static __attribute__((noreturn)) void k_exit(void)
{
	if (kself)
		_exit(0);
	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, 0);

		if (p < 0 && errno == EINTR)
			continue;
		if (p < 0)
			break;
		if (wait_code(st) && !ksh->status)
			ksh->status = wait_code(st);
	}
	_exit(ksh->status);
}

/*
 * Wait for this address space's turn: returns the index of the line to run
 * next; exits when told to. Every 200 ms without a message it checks that
 * no child of its own died and (but process 0) that its parent is still
 * there: either means a process died before the end, and then everyone
 * is told to exit rather than wait forever.
 */
static size_t k_wait(void)
{
	struct pollfd pf = { .fd = kctl[kself][0], .events = POLLIN };

	for (;;) {
		int r = poll(&pf, 1, 200);

		if (r > 0) {
			uint64_t m;

			if (read(kctl[kself][0], &m, sizeof(m)) != sizeof(m))
				continue;
			if (m == KMSG_EXIT)
				k_exit();
			return (size_t)m;
		}
		if (r < 0 && errno != EINTR) {
			if (!ksh->status)
				ksh->status = SCRIPT_ERR_SETUP;
			k_broadcast_exit();
			k_exit();
		}
		int st;
		pid_t c = waitpid(-1, &st, WNOHANG);

		if (c > 0 && wait_code(st) && !ksh->status)
			ksh->status = wait_code(st);
		if (c <= 0 && (!kself || getppid() == kparent))
			continue;
		/* processes exit only after the message to exit: is it
		 * here? */
		if (poll(&pf, 1, 0) > 0)
			continue;
		if (!ksh->status)
			ksh->status = SCRIPT_ERR_SETUP;
		k_broadcast_exit();
		k_exit();
	}
}

/*
 * fork: a probe first (unmaps the window, warms up, reports its VmPTE: the
 * new process's baseline), then the new process. Returns true in the new
 * process (which then waits for its turn); in this one, false, with the
 * new address space's number or -ERRNO in the output line.
 */
static bool k_fork(void)
{
	size_t n = ksh->nmm;
	pid_t me = getpid();
	int st;
	pid_t p = fork();

	if (!p) {
		munmap((void *)SCRIPT_WIN_START,
		       SCRIPT_WIN_END - SCRIPT_WIN_START);
		k_warm_up();
		ksh->probe_pte = vmpte_bytes();
		_exit(0);
	}
	if (p < 0) {
		k_err(&kc.o, errno);
		return false;
	}
	while (waitpid(p, &st, 0) < 0)
		if (errno != EINTR)
			break;
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		ksh->status = SCRIPT_ERR_SETUP;
		k_err(&kc.o, ECHILD);
		return false;
	}
	p = fork();
	if (p < 0) {
		k_err(&kc.o, errno);
		return false;
	}
	if (!p) {
		kself = n;
		kparent = me;
		kc.pt_base = ksh->probe_pte;
		k_warm_up();
		return true;
	}
	ksh->nmm = n + 1;
	k_dec(&kc.o, n);
	return false;
}

/* Run the script from line @i in this process, handing over at `mm N`. */
static __attribute__((noreturn)) void k_run(size_t i)
{
	const struct script *s = kc.s;

	while (i < s->n) {
		const struct op *op = &s->ops[i++];

		if (op->kind == OP_MM) {
			if (op->arg >= ksh->nmm) {
				k_err(&kc.o, EINVAL);
				k_flush(&kc.o);
				continue;
			}
			k_putc(&kc.o, '0');
			k_flush(&kc.o);
			if (op->arg != kself) {
				k_send((size_t)op->arg, i);
				i = k_wait();
			}
			continue;
		}
		if (op->kind == OP_FORK) {
			if (k_fork()) {
				i = k_wait();
				continue;
			}
			k_flush(&kc.o);
			continue;
		}
		k_op(op, &kc.o, kc.vec, kc.iobuf, kc.pt_base);
		k_uffd_flush(&kc.o);
		k_flush(&kc.o);
	}
	k_broadcast_exit();
	k_exit();
}

static void kernel_child(const struct script *s, int fd, char *line,
			 size_t linesz, unsigned char *vec, size_t vecsz,
			 unsigned char *iobuf, size_t iosz)
{
	size_t forks = 0;

	for (int i = 0; i < SCRIPT_FILES; i++)
		kfd[i] = -1;
	for (int i = 0; i < SCRIPT_MMS; i++)
		kctl[i][0] = kctl[i][1] = -1;
	for (size_t i = 0; i < s->n; i++)
		forks += s->ops[i].kind == OP_FORK;
	ksh = mmap(NULL, sizeof(*ksh), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ksh == MAP_FAILED)
		_exit(SCRIPT_ERR_SETUP);
	memset(ksh, 0, sizeof(*ksh));
	ksh->nmm = 1;
	for (size_t i = 0; forks && i <= forks && i < SCRIPT_MMS; i++)
		if (pipe2(kctl[i], O_CLOEXEC))
			_exit(SCRIPT_ERR_SETUP);
	/* orphans of the script's processes come to process 0 */
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	k_open_files(s);
	/* THP stays on with --mthp: script_kernel_mthp() set the sizes. */
	if (!script_mthp)
		prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
	drop_to_softmm_limits();
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
	sigaltstack(&ss, NULL);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	/* Nothing of ours may live in the window. */
	munmap((void *)SCRIPT_WIN_START, SCRIPT_WIN_END - SCRIPT_WIN_START);
	kc.s = s;
	kc.o = (struct kout){ .fd = fd, .line = line, .len = 0 };
	kc.vec = vec;
	kc.vecsz = vecsz;
	kc.linesz = linesz;
	kc.iobuf = iobuf;
	kc.iosz = iosz;
	k_warm_up();
	kc.pt_base = vmpte_bytes();
	k_run(0);
}

/* ---- the kernel's mTHP knobs (--mthp) ---- */

#define THP_DIR	   "/sys/kernel/mm/transparent_hugepage"
#define MTHP_KNOBS 16
static struct {
	char path[320];
	char old[16]; /* the bracketed word it had */
} mthp_knob[MTHP_KNOBS];
static int nr_mthp_knobs;
static pid_t mthp_owner; /* forked children inherit atexit(): not theirs */

static void mthp_restore(void)
{
	if (getpid() != mthp_owner)
		return;
	for (int i = 0; i < nr_mthp_knobs; i++) {
		FILE *f = fopen(mthp_knob[i].path, "w");

		if (f) {
			fputs(mthp_knob[i].old, f);
			fclose(f);
		}
	}
	nr_mthp_knobs = 0;
}

static void mthp_restore_signal(int sig)
{
	mthp_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

int script_kernel_mthp(void)
{
	DIR *d = opendir(THP_DIR);
	struct dirent *de;
	int err = 0;

	if (!d)
		return -ENOENT;
	mthp_owner = getpid();
	while ((de = readdir(d)) && nr_mthp_knobs < MTHP_KNOBS) {
		unsigned int kb, order = 0;
		char buf[128], *a, *b, path[320];
		const char *want;
		FILE *f;

		if (sscanf(de->d_name, "hugepages-%ukB", &kb) != 1)
			continue;
		while ((4U << order) < kb)
			order++;
		want = (script_mthp & (1U << order)) ? "always" : "never";
		snprintf(path, sizeof(path), "%s/%s/enabled", THP_DIR,
			 de->d_name);
		f = fopen(path, "r");
		if (!f && errno == ENOENT)
			continue; /* a size for shmem only (8 KiB) */
		if (!f || !fgets(buf, sizeof(buf), f) ||
		    !(a = strchr(buf, '[')) || !(b = strchr(a, ']')) ||
		    b - a - 1 >= (long)sizeof(mthp_knob[0].old)) {
			if (f)
				fclose(f);
			err = -ENOENT;
			break;
		}
		fclose(f);
		*b = 0;
		snprintf(mthp_knob[nr_mthp_knobs].path,
			 sizeof(mthp_knob[0].path), "%s", path);
		snprintf(mthp_knob[nr_mthp_knobs].old, sizeof(mthp_knob[0].old),
			 "%s", a + 1);
		f = fopen(path, "w");
		if (!f || fputs(want, f) < 0 || fclose(f)) {
			err = -EACCES;
			break;
		}
		if (!nr_mthp_knobs++) {
			atexit(mthp_restore);
			signal(SIGINT, mthp_restore_signal);
			signal(SIGTERM, mthp_restore_signal);
		}
	}
	closedir(d);
	if (!err && !nr_mthp_knobs)
		err = -ENOENT;
	if (err)
		mthp_restore();
	return err;
}

int script_run_kernel(const struct script *s, struct strbuf *out)
{
	size_t linesz = script_max_line(s);
	size_t vecsz = 4096;
	for (size_t i = 0; i < s->n; i++)
		if (s->ops[i].kind == OP_RESIDENT &&
		    script_resident_pages(s->ops[i].len) + 4096 > vecsz)
			vecsz = script_resident_pages(s->ops[i].len) + 4096;
	size_t iosz = KPAGE;
	for (size_t i = 0; i < s->n; i++)
		if (s->ops[i].kind == OP_PREAD || s->ops[i].kind == OP_PWRITE)
			iosz = SCRIPT_IO_MAX;
	char *line = malloc(linesz);
	unsigned char *vec = malloc(vecsz);
	unsigned char *iobuf = malloc(iosz);
	if (!line || !vec || !iobuf) {
		free(line);
		free(vec);
		free(iobuf);
		return SCRIPT_ERR_SETUP;
	}
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC)) {
		free(line);
		free(vec);
		free(iobuf);
		return SCRIPT_ERR_SETUP;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		free(line);
		free(vec);
		free(iobuf);
		return SCRIPT_ERR_SETUP;
	}
	if (!pid) {
		close(pfd[0]);
		kernel_child(s, pfd[1], line, linesz, vec, vecsz, iobuf, iosz);
	}
	close(pfd[1]);
	free(line);
	free(vec);
	free(iobuf);
	return collect_child(pid, pfd[0], out);
}
