/*
 * tools/script.c - the script language (parser and printer), the softmm
 * backend that runs a script through libsoftmm (its files are unnamed host
 * files opened with smm_file_open(), script_host_file()), and the `softmm
 * script` command. The kernel backend lives in tools/kbackend.c.
 */
#define _GNU_SOURCE
#include "script.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "softmm.h"

/* ------------------------------------------------------------------ */
/* strbuf                                                              */
/* ------------------------------------------------------------------ */

void sb_init(struct strbuf *sb)
{
	sb->buf = NULL;
	sb->len = sb->cap = 0;
}

void sb_free(struct strbuf *sb)
{
	free(sb->buf);
	sb_init(sb);
}

void sb_reset(struct strbuf *sb)
{
	sb->len = 0;
	if (sb->buf)
		sb->buf[0] = 0;
}

static void sb_reserve(struct strbuf *sb, size_t extra)
{
	if (sb->len + extra + 1 <= sb->cap)
		return;
	size_t cap = sb->cap ? sb->cap : 256;
	while (cap < sb->len + extra + 1)
		cap *= 2;
	char *p = realloc(sb->buf, cap);
	if (!p) {
		perror("realloc");
		exit(SCRIPT_ERR_SETUP);
	}
	sb->buf = p;
	sb->cap = cap;
}

void sb_add(struct strbuf *sb, const char *s, size_t n)
{
	sb_reserve(sb, n);
	memcpy(sb->buf + sb->len, s, n);
	sb->len += n;
	sb->buf[sb->len] = 0;
}

void sb_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	sb_reserve(sb, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

/* ------------------------------------------------------------------ */
/* script container and shared helpers                                 */
/* ------------------------------------------------------------------ */

void script_init(struct script *s)
{
	s->ops = NULL;
	s->n = s->cap = 0;
}

void script_free(struct script *s)
{
	free(s->ops);
	script_init(s);
}

void script_push(struct script *s, const struct op *op)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct op *p = realloc(s->ops, cap * sizeof(*p));
		if (!p) {
			perror("realloc");
			exit(SCRIPT_ERR_SETUP);
		}
		s->ops = p;
		s->cap = cap;
	}
	s->ops[s->n++] = *op;
}

uint64_t fnv1a_init(void)
{
	return 0xcbf29ce484222325ULL;
}

uint64_t fnv1a_update(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

size_t script_resident_pages(uint64_t len)
{
	if (len > SCRIPT_RESIDENT_MAX)
		len = SCRIPT_RESIDENT_MAX;
	return (size_t)((len + SMM_PAGE_SIZE - 1) >> SMM_PAGE_SHIFT);
}

size_t script_max_line(const struct script *s)
{
	/* maps: at most ~2 VMAs per operation can exist, 30 chars each. */
	size_t max = 64 * (s->n + 64);
	for (size_t i = 0; i < s->n; i++)
		if (s->ops[i].kind == OP_RESIDENT) {
			size_t p = script_resident_pages(s->ops[i].len) + 64;
			if (p > max)
				max = p;
		}
	/* a line may start with its userfaultfd events */
	if (script_uses_uffd(s))
		max += sizeof(((struct uffd_log *)0)->buf);
	return max;
}

const char *script_errname(int err)
{
	const char *n = strerrorname_np(err);
	return n ? n : "E?";
}

#define TMPFS_MAGIC_NR 0x01021994

/* An unnamed file in @dir, or -errno; -ENOTSUP on tmpfs. */
static int host_file_in(const char *dir)
{
	struct statfs sf;
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
		/* no O_TMPFILE here: a name, unlinked at once */
		char path[4096];

		if (snprintf(path, sizeof(path), "%s/softmm-file-XXXXXX",
			     dir) >= (int)sizeof(path))
			return -ENAMETOOLONG;
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0)
		return -errno;
	if (fstatfs(fd, &sf) || sf.f_type == TMPFS_MAGIC_NR) {
		close(fd);
		return -ENOTSUP;
	}
	return fd;
}

int script_host_file(void)
{
	const char *dirs[] = { "/var/tmp", "/tmp", getenv("TMPDIR") };
	int r = -ENOTSUP;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (!dirs[i] || !*dirs[i])
			continue;
		r = host_file_in(dirs[i]);
		if (r >= 0)
			return r;
	}
	return r;
}

static const char *const op_names[OP_NR] = {
	[OP_MMAP] = "mmap",
	[OP_MUNMAP] = "munmap",
	[OP_MPROTECT] = "mprotect",
	[OP_MADVISE] = "madvise",
	[OP_WRITE] = "write",
	[OP_TOUCH] = "touch",
	[OP_READ] = "read",
	[OP_PEEK] = "peek",
	[OP_MAPS] = "maps",
	[OP_RESIDENT] = "resident",
	[OP_PT] = "pt",
	[OP_PIN] = "pin",
	[OP_UNPIN_ALL] = "unpin_all",
	[OP_MLOCK] = "mlock",
	[OP_MUNLOCK] = "munlock",
	[OP_VMFLAGS] = "vmflags",
	[OP_FILE] = "file",
	[OP_MSYNC] = "msync",
	[OP_FTRUNCATE] = "ftruncate",
	[OP_PREAD] = "pread",
	[OP_PWRITE] = "pwrite",
	[OP_FORK] = "fork",
	[OP_MM] = "mm",
	[OP_MREMAP] = "mremap",
	[OP_UFFD_REGISTER] = "uffd-register",
	[OP_UFFD_UNREGISTER] = "uffd-unregister",
	[OP_UFFD_COPY] = "uffd-copy",
	[OP_UFFD_ZEROPAGE] = "uffd-zeropage",
	[OP_UFFD_WP] = "uffd-wp",
	[OP_UFFD_WAKE] = "uffd-wake",
	[OP_UFFD_POLICY] = "uffd-policy",
	[OP_UFFD_NEXT] = "uffd-next",
};

const char *script_op_name(int kind)
{
	return kind >= 0 && kind < OP_NR ? op_names[kind] : "?";
}

bool script_op_is_uffd(int kind)
{
	return kind >= OP_UFFD_REGISTER && kind <= OP_UFFD_NEXT;
}

bool script_uses_uffd(const struct script *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (script_op_is_uffd(s->ops[i].kind))
			return true;
	return false;
}

/* Append @str to the log, if it fits (it always does: entries are
 * bounded, and counted). */
static void uffd_log_add(struct uffd_log *l, const char *str)
{
	size_t n = strlen(str);

	if (l->len + n < sizeof(l->buf)) {
		memcpy(l->buf + l->len, str, n);
		l->len += n;
		l->buf[l->len] = 0;
	}
}

void uffd_log_event(struct uffd_log *l, uint64_t addr, bool wp, bool write,
		    int err)
{
	char e[SCRIPT_UFFD_ENTRY + 32], hex[17];
	int k = 0;

	if (l->n >= SCRIPT_UFFD_EVENTS) {
		l->more++;
		return;
	}
	l->n++;
	do { /* no snprintf: the kernel backend's handler calls this */
		hex[k++] = "0123456789abcdef"[addr & 15];
		addr >>= 4;
	} while (addr);
	memcpy(e, "UFFD 0x", 8);
	for (size_t o = 7; k;)
		e[o++] = hex[--k], e[o] = 0;
	strcat(e, wp ? " wp" : " missing");
	strcat(e, write ? " write" : " read");
	if (err) {
		strcat(e, " -");
		strcat(e, script_errname(-err));
	}
	strcat(e, "; ");
	uffd_log_add(l, e);
}

size_t uffd_log_finish(struct uffd_log *l)
{
	if (l->more) {
		char e[40] = "UFFD +", dec[12];
		unsigned int m = l->more;
		int k = 0;

		do {
			dec[k++] = (char)('0' + m % 10);
			m /= 10;
		} while (m);
		for (size_t o = 6; k;)
			e[o++] = dec[--k], e[o] = 0;
		strcat(e, " more; ");
		uffd_log_add(l, e);
		l->more = 0;
	}
	return l->len;
}

/* ------------------------------------------------------------------ */
/* parser                                                              */
/* ------------------------------------------------------------------ */

/* A name of a flag in a comma list (mmap, pin, msync and mremap flags). */
struct flag_name {
	const char *name;
	uint64_t val;
};

/*
 * A comma list of the names in @names (@n of them) into *@out, the flags
 * or'ed: false on an unknown or empty name (a comma at either end, two in a
 * row) and, with @once, on a name given twice.
 */
static bool parse_name_list(const char *t, const struct flag_name *names,
			    size_t n, bool once, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = t;

	while (*p) {
		const char *c = strchr(p, ',');
		size_t l = c ? (size_t)(c - p) : strlen(p), i;

		for (i = 0; i < n; i++)
			if (strlen(names[i].name) == l &&
			    !strncmp(p, names[i].name, l))
				break;
		if (i == n || (once && (v & names[i].val)))
			return false;
		v |= names[i].val;
		if (c && !c[1])
			return false;
		p += l + (c ? 1 : 0);
	}
	*out = v;
	return true;
}

/* Print @flags as the comma list of their names, in @names' order; false
 * (nothing printed) if @flags has a bit no name stands for. */
static bool format_name_list(uint64_t flags, const struct flag_name *names,
			     size_t n, struct strbuf *sb)
{
	uint64_t known = 0;

	for (size_t i = 0; i < n; i++)
		known |= names[i].val;
	if (flags & ~known)
		return false;
	for (size_t i = 0, k = 0; i < n; i++)
		if (flags & names[i].val)
			sb_printf(sb, "%s%s", k++ ? "," : "", names[i].name);
	return true;
}

static const struct flag_name map_flag_names[] = {
	/* in the order format_flags() prints them */
	{ "private", SMM_MAP_PRIVATE },
	{ "shared", SMM_MAP_SHARED },
	{ "anon", SMM_MAP_ANONYMOUS },
	{ "fixed", SMM_MAP_FIXED },
	{ "fixed_noreplace", SMM_MAP_FIXED_NOREPLACE },
	{ "noreserve", SMM_MAP_NORESERVE },
	{ "populate", SMM_MAP_POPULATE },
	{ "growsdown", SMM_MAP_GROWSDOWN },
	{ "stack", SMM_MAP_STACK },
	{ "locked", SMM_MAP_LOCKED },
};
#define N_MAP_FLAGS (sizeof(map_flag_names) / sizeof(map_flag_names[0]))

static const struct {
	const char *name;
	uint64_t val;
} advice_names[] = {
	/* Linux's MADV_* names, lower case, without MADV_ */
	{ "normal", SMM_MADV_NORMAL },
	{ "random", SMM_MADV_RANDOM },
	{ "sequential", SMM_MADV_SEQUENTIAL },
	{ "willneed", SMM_MADV_WILLNEED },
	{ "dontneed", SMM_MADV_DONTNEED },
	{ "free", SMM_MADV_FREE },
	{ "remove", SMM_MADV_REMOVE },
	{ "dontfork", SMM_MADV_DONTFORK },
	{ "dofork", SMM_MADV_DOFORK },
	{ "mergeable", SMM_MADV_MERGEABLE },
	{ "unmergeable", SMM_MADV_UNMERGEABLE },
	{ "hugepage", SMM_MADV_HUGEPAGE },
	{ "nohugepage", SMM_MADV_NOHUGEPAGE },
	{ "dontdump", SMM_MADV_DONTDUMP },
	{ "dodump", SMM_MADV_DODUMP },
	{ "wipeonfork", SMM_MADV_WIPEONFORK },
	{ "keeponfork", SMM_MADV_KEEPONFORK },
	{ "cold", SMM_MADV_COLD },
	{ "pageout", SMM_MADV_PAGEOUT },
	{ "populate_read", SMM_MADV_POPULATE_READ },
	{ "populate_write", SMM_MADV_POPULATE_WRITE },
	{ "dontneed_locked", SMM_MADV_DONTNEED_LOCKED },
};
#define N_ADVICE (sizeof(advice_names) / sizeof(advice_names[0]))

/* Number: decimal or 0x hex, optional K/M/G/T suffix. */
static bool parse_num(const char *t, uint64_t *out)
{
	uint64_t v = 0;
	int base = 10;
	const char *p = t;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	if (!*p)
		return false;
	int ndig = 0;
	for (; *p; p++) {
		int d;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			break;
		if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			return false;
		v = v * (uint64_t)base + (uint64_t)d;
		ndig++;
	}
	if (!ndig)
		return false;
	if (*p) {
		int sh;
		switch (*p) {
		case 'K':
		case 'k':
			sh = 10;
			break;
		case 'M':
		case 'm':
			sh = 20;
			break;
		case 'G':
		case 'g':
			sh = 30;
			break;
		case 'T':
		case 't':
			sh = 40;
			break;
		default:
			return false;
		}
		if (p[1])
			return false;
		if (v > (UINT64_MAX >> sh))
			return false;
		v <<= sh;
	}
	*out = v;
	return true;
}

static bool parse_prot(const char *t, uint64_t *out)
{
	if (t[0] >= '0' && t[0] <= '9')
		return parse_num(t, out);
	if (!strcmp(t, "-")) {
		*out = 0;
		return true;
	}
	uint64_t v = 0;
	for (const char *p = t; *p; p++) {
		uint64_t b;
		switch (*p) {
		case 'r':
			b = SMM_PROT_READ;
			break;
		case 'w':
			b = SMM_PROT_WRITE;
			break;
		case 'x':
			b = SMM_PROT_EXEC;
			break;
		default:
			return false;
		}
		if (v & b)
			return false;
		v |= b;
	}
	*out = v;
	return true;
}

static bool parse_flags(const char *t, uint64_t *out)
{
	if (t[0] >= '0' && t[0] <= '9')
		return parse_num(t, out);
	return parse_name_list(t, map_flag_names, N_MAP_FLAGS, false, out);
}

static bool parse_advice(const char *t, uint64_t *out)
{
	if (t[0] >= '0' && t[0] <= '9')
		return parse_num(t, out);
	for (size_t i = 0; i < N_ADVICE; i++)
		if (!strcmp(t, advice_names[i].name)) {
			*out = advice_names[i].val;
			return true;
		}
	return false;
}

static const struct flag_name pin_flag_names[] = {
	{ "write", PIN_WRITE },
	{ "longterm", PIN_LONGTERM },
	{ "fast", PIN_FAST },
};
#define N_PIN_FLAGS (sizeof(pin_flag_names) / sizeof(pin_flag_names[0]))

/* pin FLAGS: a comma list of write, longterm, fast; or - for none. */
static bool parse_pin_flags(const char *t, uint64_t *out)
{
	if (!strcmp(t, "-")) {
		*out = 0;
		return true;
	}
	return parse_name_list(t, pin_flag_names, N_PIN_FLAGS, true, out);
}

static const struct flag_name msync_flag_names[] = {
	/* in the order format_msync() prints them */
	{ "async", SCRIPT_MS_ASYNC },
	{ "invalidate", SCRIPT_MS_INVALIDATE },
	{ "sync", SCRIPT_MS_SYNC },
};
#define N_MSYNC_FLAGS (sizeof(msync_flag_names) / sizeof(msync_flag_names[0]))

/* msync FLAGS: a comma list of async, invalidate, sync; or a number. */
static bool parse_msync_flags(const char *t, uint64_t *out)
{
	if (t[0] >= '0' && t[0] <= '9')
		return parse_num(t, out);
	return parse_name_list(t, msync_flag_names, N_MSYNC_FLAGS, false, out);
}

static const struct flag_name mremap_flag_names[] = {
	/* in the order format_mremap() prints them */
	{ "maymove", SMM_MREMAP_MAYMOVE },
	{ "fixed", SMM_MREMAP_FIXED },
	{ "dontunmap", SMM_MREMAP_DONTUNMAP },
};
#define N_MREMAP_FLAGS \
	(sizeof(mremap_flag_names) / sizeof(mremap_flag_names[0]))

/* mremap FLAGS: a comma list of maymove, fixed, dontunmap (each at most
 * once); - for none; or a number. */
static bool parse_mremap_flags(const char *t, uint64_t *out)
{
	if (t[0] >= '0' && t[0] <= '9')
		return parse_num(t, out);
	if (!strcmp(t, "-")) {
		*out = 0;
		return true;
	}
	return parse_name_list(t, mremap_flag_names, N_MREMAP_FLAGS, true, out);
}

static const struct flag_name uffd_register_names[] = {
	{ "missing", SMM_UFFD_REGISTER_MODE_MISSING },
	{ "wp", SMM_UFFD_REGISTER_MODE_WP },
};
static const struct flag_name uffd_copy_names[] = {
	{ "dontwake", SMM_UFFD_COPY_MODE_DONTWAKE },
	{ "wp", SMM_UFFD_COPY_MODE_WP },
};
static const struct flag_name uffd_zeropage_names[] = {
	{ "dontwake", SMM_UFFD_ZEROPAGE_MODE_DONTWAKE },
};
#define N_NAMES(a) (sizeof(a) / sizeof(a[0]))

/* A uffd ioctl's MODE: a comma list of @names (each at most once), or a
 * number (any 64 bits, passed through). */
static bool parse_uffd_mode(const char *t, const struct flag_name *names,
			    size_t n, uint64_t *out)
{
	if (t[0] >= '0' && t[0] <= '9')
		return parse_num(t, out);
	return parse_name_list(t, names, n, true, out);
}

/*
 * The operations' syntax. @nargs counts the arguments (mmap also has a
 * 6-argument form, mlock, unpin_all and mremap an optional one, handled in
 * the parser); @ranged: the first two are ADDR LEN, a range of the window.
 */
static const struct {
	int kind;
	int nargs;
	bool ranged;
	const char *usage;
} op_syntax[OP_NR] = {
	[OP_MMAP] = { OP_MMAP, 4, true,
		      "mmap ADDR LEN PROT FLAGS [FILE OFFSET]" },
	[OP_MUNMAP] = { OP_MUNMAP, 2, true, "munmap ADDR LEN" },
	[OP_MPROTECT] = { OP_MPROTECT, 3, true, "mprotect ADDR LEN PROT" },
	[OP_MADVISE] = { OP_MADVISE, 3, true, "madvise ADDR LEN ADVICE" },
	[OP_WRITE] = { OP_WRITE, 3, true, "write ADDR LEN BYTE" },
	[OP_TOUCH] = { OP_TOUCH, 2, true, "touch ADDR LEN" },
	[OP_READ] = { OP_READ, 2, true, "read ADDR LEN" },
	[OP_PEEK] = { OP_PEEK, 2, true, "peek ADDR LEN" },
	[OP_MAPS] = { OP_MAPS, 0, false, "maps" },
	[OP_RESIDENT] = { OP_RESIDENT, 2, true, "resident ADDR LEN" },
	[OP_PT] = { OP_PT, 0, false, "pt" },
	[OP_PIN] = { OP_PIN, 3, true, "pin ADDR LEN FLAGS" },
	/* one optional argument, handled in the parser */
	[OP_UNPIN_ALL] = { OP_UNPIN_ALL, 0, false, "unpin_all [dirty]" },
	[OP_MLOCK] = { OP_MLOCK, 2, true, "mlock ADDR LEN [onfault]" },
	[OP_MUNLOCK] = { OP_MUNLOCK, 2, true, "munlock ADDR LEN" },
	[OP_VMFLAGS] = { OP_VMFLAGS, 0, false, "vmflags" },
	[OP_FILE] = { OP_FILE, 2, false, "file N SIZE" },
	[OP_MSYNC] = { OP_MSYNC, 3, true, "msync ADDR LEN FLAGS" },
	[OP_FTRUNCATE] = { OP_FTRUNCATE, 2, false, "ftruncate N SIZE" },
	[OP_PREAD] = { OP_PREAD, 3, false, "pread N OFF LEN" },
	[OP_PWRITE] = { OP_PWRITE, 4, false, "pwrite N OFF LEN BYTE" },
	[OP_FORK] = { OP_FORK, 0, false, "fork" },
	[OP_MM] = { OP_MM, 1, false, "mm N" },
	/* NEWADDR optional, handled in the parser */
	[OP_MREMAP] = { OP_MREMAP, 4, true,
			"mremap OLD OLDLEN NEWLEN FLAGS [NEWADDR]" },
	[OP_UFFD_REGISTER] = { OP_UFFD_REGISTER, 3, true,
			       "uffd-register ADDR LEN missing[,wp]|wp|NUMBER" },
	[OP_UFFD_UNREGISTER] = { OP_UFFD_UNREGISTER, 2, true,
				 "uffd-unregister ADDR LEN" },
	/* the last argument of these four is optional */
	[OP_UFFD_COPY] = { OP_UFFD_COPY, 3, true,
			   "uffd-copy DST LEN BYTE [dontwake,wp|NUMBER]" },
	[OP_UFFD_ZEROPAGE] = { OP_UFFD_ZEROPAGE, 2, true,
			       "uffd-zeropage DST LEN [dontwake|NUMBER]" },
	[OP_UFFD_WP] = { OP_UFFD_WP, 3, true,
			 "uffd-wp ADDR LEN on|off|NUMBER [dontwake]" },
	[OP_UFFD_WAKE] = { OP_UFFD_WAKE, 2, true, "uffd-wake ADDR LEN" },
	[OP_UFFD_POLICY] = { OP_UFFD_POLICY, 1, false,
			     "uffd-policy zero|copy BYTE" },
	[OP_UFFD_NEXT] = { OP_UFFD_NEXT, 3, true,
			   "uffd-next ADDR LEN munmap|PROT" },
};

/* smaps' VmFlags names, in bit order (fs/proc/task_mmu.c prints them so) */
const struct vmflag_name script_vmflags[] = {
	{ SMM_VM_GROWSDOWN, "gd" },  { SMM_VM_UFFD_MISSING, "um" },
	{ SMM_VM_UFFD_WP, "uw" },    { SMM_VM_LOCKED, "lo" },
	{ SMM_VM_SEQ_READ, "sr" },   { SMM_VM_RAND_READ, "rr" },
	{ SMM_VM_DONTCOPY, "dc" },   { SMM_VM_LOCKONFAULT, "lf" },
	{ SMM_VM_ACCOUNT, "ac" },    { SMM_VM_NORESERVE, "nr" },
	{ SMM_VM_WIPEONFORK, "wf" }, { SMM_VM_DONTDUMP, "dd" },
	{ SMM_VM_HUGEPAGE, "hg" },   { SMM_VM_NOHUGEPAGE, "nh" },
	{ SMM_VM_MERGEABLE, "mg" },
};
const size_t script_nr_vmflags =
	sizeof(script_vmflags) / sizeof(script_vmflags[0]);

/*
 * The kernel backend runs in a real process: a range outside the window
 * could unmap or overwrite the process itself. Allowed: ranges inside the
 * window, empty ones, and ones whose end wraps around (overflow tests, which
 * every syscall rejects before doing anything); a non-fixed mmap may have any
 * hint. Loads and stores must start inside the window.
 */
static bool range_allowed(int kind, uint64_t addr, uint64_t len)
{
	bool in = addr >= SCRIPT_WIN_START && addr < SCRIPT_WIN_END;
	if (kind == OP_WRITE || kind == OP_TOUCH || kind == OP_READ ||
	    kind == OP_PEEK) {
		if (!in)
			return false;
	}
	if (!len)
		return true;
	uint64_t rlen = len;
	if (!(kind == OP_WRITE || kind == OP_TOUCH || kind == OP_READ ||
	      kind == OP_PEEK)) {
		rlen = (len + SMM_PAGE_SIZE - 1) & ~(SMM_PAGE_SIZE - 1);
		if (rlen < len)
			return true; /* PAGE_ALIGN(len) overflows */
	}
	uint64_t end = addr + rlen;
	if (end < addr)
		return true;
	return in && end <= SCRIPT_WIN_END;
}

bool script_op_allowed(const struct op *op)
{
	if (!op_syntax[op->kind].ranged)
		return true;
	if (op->kind == OP_MMAP &&
	    !(op->flags & (SMM_MAP_FIXED | SMM_MAP_FIXED_NOREPLACE)))
		return true;
	/* mremap: the old range, the range it would grow into in place,
	 * and with MREMAP_FIXED the new one. Without FIXED, NEWADDR is at
	 * most a hint (DONTUNMAP) and a move goes where the kernel finds
	 * room: never over anything mapped. */
	if (op->kind == OP_MREMAP &&
	    (!range_allowed(op->kind, op->addr, op->arg) ||
	     ((op->flags & SMM_MREMAP_FIXED) &&
	      !range_allowed(op->kind, op->off, op->arg))))
		return false;
	return range_allowed(op->kind, op->addr, op->len);
}

int script_parse_buf(const char *text, size_t len, const char *name,
		     struct script *s, FILE *err)
{
	int lineno = 0;
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);
		if (lineno == INT_MAX) {
			fprintf(err, "%s: too many lines\n", name);
			return -1;
		}
		lineno++;
		if (memchr(p, 0, n)) {
			fprintf(err, "%s:%d: NUL byte in the script\n", name,
				lineno);
			return -1;
		}
		/* Only the operation has a limit; a comment may be any length. */
		const char *hash = memchr(p, '#', n);
		size_t opn = hash ? (size_t)(hash - p) : n;
		char line[1024];
		if (opn >= sizeof(line)) {
			fprintf(err,
				"%s:%d: line too long (more than %zu "
				"characters before any '#')\n",
				name, lineno, sizeof(line) - 1);
			return -1;
		}
		memcpy(line, p, opn);
		line[opn] = 0;
		p += n + (eol ? 1 : 0);
		char *tok[8];
		int nt = 0;
		char *save = NULL;
		for (char *t = strtok_r(line, " \t\r", &save); t;
		     t = strtok_r(NULL, " \t\r", &save)) {
			if (nt == 8) {
				fprintf(err, "%s:%d: too many fields\n", name,
					lineno);
				return -1;
			}
			tok[nt++] = t;
		}
		if (!nt)
			continue;
		int kind;
		for (kind = 0; kind < OP_NR; kind++)
			if (!strcmp(tok[0], op_names[kind]))
				break;
		if (kind == OP_NR) {
			char q[CLI_QUOTE_SIZE];
			fprintf(err, "%s:%d: unknown operation '%s'\n", name,
				lineno, cli_quote_str(tok[0], q, sizeof(q)));
			return -1;
		}
		bool unpin_dirty = kind == OP_UNPIN_ALL && nt == 2 &&
				   !strcmp(tok[1], "dirty");
		bool onfault = kind == OP_MLOCK && nt == 4 &&
			       !strcmp(tok[3], "onfault");
		bool mmap_file = kind == OP_MMAP && nt == 7;
		bool newaddr = kind == OP_MREMAP && nt == 6;
		bool uffd_opt =
			(kind == OP_UFFD_COPY || kind == OP_UFFD_ZEROPAGE ||
			 kind == OP_UFFD_WP || kind == OP_UFFD_POLICY) &&
			nt - 1 == op_syntax[kind].nargs + 1;
		if (nt - 1 != op_syntax[kind].nargs && !unpin_dirty &&
		    !onfault && !mmap_file && !newaddr && !uffd_opt) {
			fprintf(err, "%s:%d: usage: %s\n", name, lineno,
				op_syntax[kind].usage);
			return -1;
		}
		struct op op = { .kind = kind };
		bool ok = true;
		const char *what = "";
		if (op_syntax[kind].ranged) {
			ok = parse_num(tok[1], &op.addr) &&
			     parse_num(tok[2], &op.len);
			what = "bad number";
		}
		if (kind == OP_FILE || kind == OP_FTRUNCATE ||
		    kind == OP_PREAD || kind == OP_PWRITE) {
			uint64_t n;

			ok = parse_num(tok[1], &n) && n < SCRIPT_FILES;
			what = "bad file number N (0-7)";
			op.file = (int)n + 1;
			if (ok && (kind == OP_FILE || kind == OP_FTRUNCATE)) {
				ok = parse_num(tok[2], &op.len) &&
				     op.len <= SCRIPT_OFF_MAX;
				what = "bad SIZE (0 to 2^63-1)";
			} else if (ok) {
				ok = parse_num(tok[2], &op.off) &&
				     op.off <= SCRIPT_OFF_MAX;
				what = "bad OFF (0 to 2^63-1)";
				if (ok) {
					ok = parse_num(tok[3], &op.len) &&
					     op.len <= SCRIPT_IO_MAX;
					what = "bad LEN (at most 1M)";
				}
				if (ok && kind == OP_PWRITE) {
					ok = parse_num(tok[4], &op.arg) &&
					     op.arg <= 255;
					what = "bad BYTE";
				}
			}
		}
		if (ok && kind == OP_MMAP) {
			ok = parse_prot(tok[3], &op.arg);
			what = "bad PROT";
			if (ok) {
				ok = parse_flags(tok[4], &op.flags);
				what = "bad FLAGS";
			}
			if (ok && mmap_file) {
				uint64_t n;

				ok = parse_num(tok[5], &n) && n < SCRIPT_FILES;
				what = "bad FILE (0-7)";
				op.file = (int)n + 1;
				if (ok) {
					ok = parse_num(tok[6], &op.off);
					what = "bad OFFSET";
				}
				if (ok && (op.flags & SMM_MAP_ANONYMOUS)) {
					ok = false;
					what = "a file mapping is not anon";
				}
			}
		} else if (ok && kind == OP_MREMAP) {
			ok = parse_num(tok[3], &op.arg);
			what = "bad NEWLEN";
			if (ok) {
				ok = parse_mremap_flags(tok[4], &op.flags) &&
				     op.flags <= 0xffffffffULL;
				what = "bad FLAGS (maymove,fixed,dontunmap, - "
				       "or a number that fits in an int)";
			}
			if (ok && newaddr) {
				ok = parse_num(tok[5], &op.off);
				what = "bad NEWADDR";
			}
		} else if (ok && kind == OP_MM) {
			ok = parse_num(tok[1], &op.arg);
			what = "bad N";
		} else if (ok && kind == OP_FORK) {
			size_t forks = 0;

			for (size_t i = 0; i < s->n; i++)
				forks += s->ops[i].kind == OP_FORK;
			ok = forks < SCRIPT_MMS - 1;
			what = "too many forks (at most 15 in a script)";
		} else if (ok && kind == OP_MSYNC) {
			ok = parse_msync_flags(tok[3], &op.arg);
			what = "bad FLAGS (sync, async, invalidate or a number)";
			if (ok && op.arg > 0x7fffffffULL) {
				ok = false;
				what = "FLAGS do not fit in an int";
			}
		} else if (ok && kind == OP_MPROTECT) {
			ok = parse_prot(tok[3], &op.arg);
			what = "bad PROT";
		} else if (ok && kind == OP_UFFD_NEXT) {
			op.flags = UFFD_NEXT_MUNMAP;
			if (strcmp(tok[3], "munmap")) {
				op.flags = UFFD_NEXT_MPROTECT;
				ok = parse_prot(tok[3], &op.arg);
			}
			what = "bad ACTION (munmap or a PROT)";
		} else if (ok && kind == OP_MADVISE) {
			ok = parse_advice(tok[3], &op.arg);
			what = "bad ADVICE";
		} else if (ok && kind == OP_PIN) {
			ok = parse_pin_flags(tok[3], &op.arg);
			what = "bad FLAGS (write,longterm,fast or -)";
		} else if (ok && kind == OP_UNPIN_ALL) {
			op.arg = unpin_dirty;
		} else if (ok && kind == OP_MLOCK) {
			op.arg = onfault;
		} else if (ok && kind == OP_WRITE) {
			ok = parse_num(tok[3], &op.arg) && op.arg <= 255;
			what = "bad BYTE";
		} else if (ok && kind == OP_UFFD_REGISTER) {
			ok = parse_uffd_mode(tok[3], uffd_register_names,
					     N_NAMES(uffd_register_names),
					     &op.arg);
			what = "bad MODE (missing,wp or a number)";
		} else if (ok && kind == OP_UFFD_COPY) {
			ok = parse_num(tok[3], &op.arg) && op.arg <= 255;
			what = "bad BYTE";
			if (ok && uffd_opt) {
				ok = parse_uffd_mode(tok[4], uffd_copy_names,
						     N_NAMES(uffd_copy_names),
						     &op.flags);
				what = "bad MODE (dontwake,wp or a number)";
			}
			if (ok && op.len > SCRIPT_UFFD_COPY_MAX &&
			    op.addr + op.len >= op.addr) {
				ok = false;
				what = "uffd-copy LEN too large (max 1M)";
			}
		} else if (ok && kind == OP_UFFD_ZEROPAGE && uffd_opt) {
			ok = parse_uffd_mode(tok[3], uffd_zeropage_names,
					     N_NAMES(uffd_zeropage_names),
					     &op.flags);
			what = "bad MODE (dontwake or a number)";
		} else if (ok && kind == OP_UFFD_WP) {
			bool num = tok[3][0] >= '0' && tok[3][0] <= '9';

			what = "bad MODE (on, off or a number; then dontwake)";
			if (num)
				ok = parse_num(tok[3], &op.flags) && !uffd_opt;
			else if (!strcmp(tok[3], "on"))
				op.flags = SMM_UFFD_WP_MODE_WP;
			else
				ok = !strcmp(tok[3], "off");
			if (ok && uffd_opt) {
				ok = !strcmp(tok[4], "dontwake");
				op.flags |= SMM_UFFD_WP_MODE_DONTWAKE;
			}
		} else if (kind == OP_UFFD_POLICY) {
			what = "bad POLICY";
			if (!strcmp(tok[1], "zero") && !uffd_opt) {
				op.flags = UFFD_POLICY_ZERO;
			} else if (!strcmp(tok[1], "copy") && uffd_opt) {
				op.flags = UFFD_POLICY_COPY;
				ok = parse_num(tok[2], &op.arg) &&
				     op.arg <= 255;
				what = "bad BYTE";
			} else {
				ok = false;
			}
		}
		if (ok &&
		    (kind == OP_MMAP || kind == OP_MPROTECT ||
		     kind == OP_UFFD_NEXT) &&
		    op.arg > 0xffffffffULL) {
			ok = false;
			what = "PROT does not fit in an int";
		}
		if (ok && kind == OP_MMAP && op.flags > 0xffffffffULL) {
			ok = false;
			what = "FLAGS do not fit in an int";
		}
		if (ok && kind == OP_MADVISE && op.arg > 0x7fffffffULL) {
			ok = false;
			what = "ADVICE does not fit in an int";
		}
		if (ok && kind == OP_PIN && op.len > SCRIPT_PIN_MAX &&
		    op.addr + op.len >= op.addr) {
			ok = false;
			what = "pin LEN too large (max 1G)";
		}
		if (ok && kind == OP_RESIDENT && op.len > SCRIPT_RESIDENT_MAX) {
			ok = false;
			what = "resident LEN too large (max 16G)";
		}
		if (ok && !script_op_allowed(&op)) {
			ok = false;
			what = "range leaves the window [0x200000000000, "
			       "0x300000000000) without overflowing";
		}
		if (!ok) {
			fprintf(err, "%s:%d: %s: usage: %s\n", name, lineno,
				what, op_syntax[kind].usage);
			return -1;
		}
		script_push(s, &op);
	}
	return 0;
}

int script_parse(const char *text, const char *name, struct script *s,
		 FILE *err)
{
	return script_parse_buf(text, strlen(text), name, s, err);
}

static void format_prot(uint64_t prot, struct strbuf *sb)
{
	if (prot &
	    ~(uint64_t)(SMM_PROT_READ | SMM_PROT_WRITE | SMM_PROT_EXEC)) {
		sb_printf(sb, "0x%llx", (unsigned long long)prot);
		return;
	}
	if (!prot) {
		sb_add(sb, "-", 1);
		return;
	}
	if (prot & SMM_PROT_READ)
		sb_add(sb, "r", 1);
	if (prot & SMM_PROT_WRITE)
		sb_add(sb, "w", 1);
	if (prot & SMM_PROT_EXEC)
		sb_add(sb, "x", 1);
}

static void format_flags(uint64_t flags, struct strbuf *sb)
{
	if (!flags || !format_name_list(flags, map_flag_names, N_MAP_FLAGS, sb))
		sb_printf(sb, "0x%llx", (unsigned long long)flags);
}

static void format_advice(uint64_t adv, struct strbuf *sb)
{
	for (size_t i = 0; i < N_ADVICE; i++)
		if (advice_names[i].val == adv) {
			sb_printf(sb, "%s", advice_names[i].name);
			return;
		}
	sb_printf(sb, "%llu", (unsigned long long)adv);
}

static void format_mremap(uint64_t flags, struct strbuf *sb)
{
	if (!flags)
		sb_add(sb, "-", 1);
	else if (!format_name_list(flags, mremap_flag_names, N_MREMAP_FLAGS,
				   sb))
		sb_printf(sb, "0x%llx", (unsigned long long)flags);
}

static void format_msync(uint64_t flags, struct strbuf *sb)
{
	if (!flags ||
	    !format_name_list(flags, msync_flag_names, N_MSYNC_FLAGS, sb))
		sb_printf(sb, "%llu", (unsigned long long)flags);
}

void script_format_op(const struct op *op, struct strbuf *sb)
{
	sb_printf(sb, "%s", op_names[op->kind]);
	if (op_syntax[op->kind].ranged)
		sb_printf(sb, " 0x%llx 0x%llx", (unsigned long long)op->addr,
			  (unsigned long long)op->len);
	switch (op->kind) {
	case OP_MMAP:
		sb_add(sb, " ", 1);
		format_prot(op->arg, sb);
		sb_add(sb, " ", 1);
		format_flags(op->flags, sb);
		if (op->file)
			sb_printf(sb, " %d 0x%llx", op->file - 1,
				  (unsigned long long)op->off);
		break;
	case OP_MSYNC:
		sb_add(sb, " ", 1);
		format_msync(op->arg, sb);
		break;
	case OP_MREMAP:
		sb_printf(sb, " 0x%llx ", (unsigned long long)op->arg);
		format_mremap(op->flags, sb);
		if (op->off || (op->flags & SMM_MREMAP_FIXED))
			sb_printf(sb, " 0x%llx", (unsigned long long)op->off);
		break;
	case OP_MM:
		sb_printf(sb, " %llu", (unsigned long long)op->arg);
		break;
	case OP_FILE:
	case OP_FTRUNCATE:
		sb_printf(sb, " %d 0x%llx", op->file - 1,
			  (unsigned long long)op->len);
		break;
	case OP_PREAD:
	case OP_PWRITE:
		sb_printf(sb, " %d 0x%llx 0x%llx", op->file - 1,
			  (unsigned long long)op->off,
			  (unsigned long long)op->len);
		if (op->kind == OP_PWRITE)
			sb_printf(sb, " 0x%02llx", (unsigned long long)op->arg);
		break;
	case OP_MPROTECT:
		sb_add(sb, " ", 1);
		format_prot(op->arg, sb);
		break;
	case OP_UFFD_NEXT:
		sb_add(sb, " ", 1);
		if (op->flags == UFFD_NEXT_MUNMAP)
			sb_add(sb, "munmap", 6);
		else
			format_prot(op->arg, sb);
		break;
	case OP_MADVISE:
		sb_add(sb, " ", 1);
		format_advice(op->arg, sb);
		break;
	case OP_WRITE:
		sb_printf(sb, " 0x%02llx", (unsigned long long)op->arg);
		break;
	case OP_PIN:
		if (!op->arg) {
			sb_add(sb, " -", 2);
			break;
		}
		for (size_t i = 0, n = 0; i < N_PIN_FLAGS; i++)
			if (op->arg & pin_flag_names[i].val)
				sb_printf(sb, "%s%s", n++ ? "," : " ",
					  pin_flag_names[i].name);
		break;
	case OP_UNPIN_ALL:
		if (op->arg)
			sb_add(sb, " dirty", 6);
		break;
	case OP_MLOCK:
		if (op->arg)
			sb_add(sb, " onfault", 8);
		break;
	case OP_UFFD_REGISTER:
		sb_add(sb, " ", 1);
		if (!op->arg ||
		    !format_name_list(op->arg, uffd_register_names,
				      N_NAMES(uffd_register_names), sb))
			sb_printf(sb, "0x%llx", (unsigned long long)op->arg);
		break;
	case OP_UFFD_COPY:
		sb_printf(sb, " 0x%02llx", (unsigned long long)op->arg);
		__attribute__((fallthrough)); /* the mode */
	case OP_UFFD_ZEROPAGE:
		if (!op->flags)
			break;
		sb_add(sb, " ", 1);
		if (!format_name_list(op->flags,
				      op->kind == OP_UFFD_COPY ?
					      uffd_copy_names :
					      uffd_zeropage_names,
				      op->kind == OP_UFFD_COPY ?
					      N_NAMES(uffd_copy_names) :
					      N_NAMES(uffd_zeropage_names),
				      sb))
			sb_printf(sb, "0x%llx", (unsigned long long)op->flags);
		break;
	case OP_UFFD_WP:
		if (op->flags & ~(uint64_t)(SMM_UFFD_WP_MODE_WP |
					    SMM_UFFD_WP_MODE_DONTWAKE))
			sb_printf(sb, " 0x%llx", (unsigned long long)op->flags);
		else
			sb_printf(sb, " %s%s",
				  op->flags & SMM_UFFD_WP_MODE_WP ? "on" :
								    "off",
				  op->flags & SMM_UFFD_WP_MODE_DONTWAKE ?
					  " dontwake" :
					  "");
		break;
	case OP_UFFD_POLICY:
		if (op->flags == UFFD_POLICY_COPY)
			sb_printf(sb, " copy 0x%02llx",
				  (unsigned long long)op->arg);
		else
			sb_add(sb, " zero", 5);
		break;
	}
	sb_add(sb, "\n", 1);
}

/* ------------------------------------------------------------------ */
/* softmm backend                                                      */
/* ------------------------------------------------------------------ */

#define SOFTMM_POOL_BYTES (8ULL << 30)
#define IO_CHUNK	  (64 * 1024)

static void put_err(struct strbuf *out, long r)
{
	sb_printf(out, "-%s\n", script_errname((int)-r));
}

/* put_err() followed by a space, not the end of the line */
static void put_err_sp(struct strbuf *out, long r)
{
	sb_printf(out, "-%s ", script_errname((int)-r));
}

/* Print SEGV/BUS/OOM/other error for a failed user access. */
static void put_access_err(struct strbuf *out, int r, uint64_t fa)
{
	if (r == -EFAULT)
		sb_printf(out, "SEGV 0x%llx\n", (unsigned long long)fa);
	else if (r == -ENXIO)
		sb_printf(out, "BUS 0x%llx\n", (unsigned long long)fa);
	else if (r == -ENOMEM)
		sb_printf(out, "OOM 0x%llx\n", (unsigned long long)fa);
	else
		put_err(out, r);
}

/* Pages the script has pinned and not yet unpinned (softmm backend). */
static struct {
	struct smm_page **pages;
	size_t n, cap;
} pinned;

static void pin_op(const struct op *op, struct smm_mm *mm, struct smm_cpu *cpu,
		   struct strbuf *out)
{
	uint64_t off = op->addr & (SMM_PAGE_SIZE - 1);
	unsigned long nr;
	struct smm_page *one[1], **pages = one;
	unsigned int flags = (op->arg & PIN_WRITE ? SMM_FOLL_WRITE : 0) |
			     (op->arg & PIN_LONGTERM ? SMM_FOLL_LONGTERM : 0);
	long r;

	if (op->addr + op->len < op->addr) {
		nr = ~0UL; /* wraps: the library answers -EOVERFLOW */
	} else {
		nr = (unsigned long)((off + op->len + SMM_PAGE_SIZE - 1) >>
				     SMM_PAGE_SHIFT);
		if (!op->len) /* [addr, addr) covers no page, aligned or not */
			nr = 0;
		/* Room for nr pages and never NULL, even for 0 pages: the
		 * library's answer is printed, not its -EINVAL for NULL. */
		if (pinned.n + nr >= pinned.cap) {
			size_t cap = pinned.cap ? pinned.cap : 64;
			while (cap <= pinned.n + nr)
				cap *= 2;
			pinned.pages = realloc(pinned.pages,
					       cap * sizeof(*pinned.pages));
			if (!pinned.pages) {
				perror("realloc");
				exit(SCRIPT_ERR_SETUP);
			}
			pinned.cap = cap;
		}
		pages = pinned.pages + pinned.n;
	}
	r = op->arg & PIN_FAST ?
		    smm_pin_user_pages_fast(cpu, op->addr, nr, flags, pages) :
		    smm_pin_user_pages(mm, op->addr, nr, flags, pages);
	if (r < 0) {
		put_err(out, r);
		return;
	}
	if (pages != one)
		pinned.n += (size_t)r;
	sb_printf(out, "%ld\n", r);
}

/* The script's files (softmm backend), by N; NULL: not created yet. */
static struct smm_file *sfiles[SCRIPT_FILES];

/* file N SIZE: a new unnamed host file opened with smm_file_open(), or the
 * existing one; then smm_file_truncate() to SIZE. */
static void file_op(const struct op *op, struct smm_pool *pool,
		    struct strbuf *out)
{
	struct smm_file **f = &sfiles[op->file - 1];
	int r;

	if (!*f) {
		int fd = script_host_file();

		if (fd < 0) {
			fprintf(stderr, "softmm: no host file: %s\n",
				strerror(-fd));
			exit(SCRIPT_ERR_SETUP);
		}
		*f = smm_file_open(pool, fd);
		r = -errno;
		close(fd); /* softmm keeps its own duplicate */
		if (!*f) {
			put_err(out, r);
			return;
		}
	}
	r = smm_file_truncate(*f, op->len);
	if (r)
		put_err(out, r);
	else
		sb_add(out, "0\n", 2);
}

/* Close the script's files; returns the first error. */
static int close_files(void)
{
	int ret = 0;

	for (int i = 0; i < SCRIPT_FILES; i++) {
		int r = sfiles[i] ? smm_file_close(sfiles[i]) : 0;

		if (r && !ret)
			ret = r;
		sfiles[i] = NULL;
	}
	return ret;
}

static size_t unpin_all(bool dirty)
{
	size_t n = pinned.n;

	smm_unpin_user_pages_dirty_lock(pinned.pages, n, dirty);
	pinned.n = 0;
	return n;
}

/*
 * Userfaultfd (softmm backend): each address space that runs a uffd-*
 * line gets a handler, a callback run in the faulting thread
 * (smm_uffd_set_handler()): a handler thread reading smm_uffd_read()
 * would have to be in its read before the address space may be
 * destroyed at the end, which it cannot tell. The handler first makes
 * the change a uffd-next line left for it, if any (after a munmap it
 * resolves nothing), then resolves the event by its address space's
 * uffd-policy (a WP event by removing the protection of the page) with
 * DONTWAKE, logs it in slog, and wakes the page with smm_uffd_wake(), as
 * the kernel backend's handler thread does; if it cannot resolve it, it
 * logs the error and unregisters the page first (the access then faults
 * as an ordinary one), rather than fault forever.
 */
struct suffd {
	bool started;
	int policy; /* UFFD_POLICY_* */
	int byte;
	struct op next; /* uffd-next, until an event takes it */
};
static struct suffd suffds[SCRIPT_MMS];
static pthread_mutex_t slog_lock = PTHREAD_MUTEX_INITIALIZER;
static struct uffd_log slog;

static int suffd_handler(struct smm_mm *mm, const struct smm_uffd_msg *msg,
			 void *arg)
{
	struct suffd *u = arg;
	unsigned char page[SMM_PAGE_SIZE];
	bool wp = msg->flags & SMM_UFFD_PAGEFAULT_FLAG_WP;
	uint64_t a = msg->address;
	struct op next = u->next;
	int r = 0;

	u->next.flags = UFFD_NEXT_NONE;
	if (next.flags == UFFD_NEXT_MUNMAP)
		r = smm_munmap(mm, next.addr, next.len);
	else if (next.flags == UFFD_NEXT_MPROTECT)
		r = smm_mprotect(mm, next.addr, next.len, (int)next.arg);
	if (r || next.flags == UFFD_NEXT_MUNMAP) {
		/* the change's answer; the fault woken unresolved */
	} else if (wp) {
		r = smm_uffd_wp(mm, a, SMM_PAGE_SIZE,
				SMM_UFFD_WP_MODE_DONTWAKE);
	} else if (u->policy == UFFD_POLICY_COPY) {
		memset(page, u->byte, sizeof(page));
		r = smm_uffd_copy(mm, a, page, SMM_PAGE_SIZE,
				  SMM_UFFD_COPY_MODE_DONTWAKE, NULL);
	} else {
		r = smm_uffd_zeropage(mm, a, SMM_PAGE_SIZE,
				      SMM_UFFD_ZEROPAGE_MODE_DONTWAKE, NULL);
	}
	pthread_mutex_lock(&slog_lock);
	uffd_log_event(&slog, a, wp, msg->flags & SMM_UFFD_PAGEFAULT_FLAG_WRITE,
		       r);
	pthread_mutex_unlock(&slog_lock);
	if (r)
		smm_uffd_unregister(mm, a, SMM_PAGE_SIZE);
	smm_uffd_wake(mm, a, SMM_PAGE_SIZE);
	return 0;
}

/* The handler of address space @k, set if it is not yet. */
static void suffd_start(size_t k, struct smm_mm *mm)
{
	struct suffd *u = &suffds[k];

	if (u->started)
		return;
	if (smm_uffd_set_handler(mm, suffd_handler, u)) {
		fprintf(stderr, "softmm: smm_uffd_set_handler failed\n");
		exit(SCRIPT_ERR_SETUP);
	}
	u->started = true;
}

/* The events the last operation raised go before its line, which starts
 * at @mark in @out. */
static void suffd_flush(struct strbuf *out, size_t mark)
{
	pthread_mutex_lock(&slog_lock);
	size_t n = uffd_log_finish(&slog);

	if (n) {
		sb_reserve(out, n);
		memmove(out->buf + mark + n, out->buf + mark, out->len - mark);
		memcpy(out->buf + mark, slog.buf, n);
		out->len += n;
		out->buf[out->len] = 0;
	}
	slog.len = slog.n = slog.more = 0;
	pthread_mutex_unlock(&slog_lock);
}

/* The uffd-* operations on address space @k (@mm). */
static void uffd_op(const struct op *op, size_t k, struct smm_mm *mm,
		    struct strbuf *out, unsigned char *src)
{
	struct suffd *u = &suffds[k];
	int64_t done = 0;
	int r;

	suffd_start(k, mm);
	switch (op->kind) {
	case OP_UFFD_POLICY:
		u->byte = (int)op->arg;
		u->policy = (int)op->flags;
		sb_add(out, "0\n", 2);
		return;
	case OP_UFFD_NEXT:
		u->next = *op;
		sb_add(out, "0\n", 2);
		return;
	case OP_UFFD_REGISTER:
		r = smm_uffd_register(mm, op->addr, op->len, op->arg);
		break;
	case OP_UFFD_UNREGISTER:
		r = smm_uffd_unregister(mm, op->addr, op->len);
		break;
	case OP_UFFD_WP:
		r = smm_uffd_wp(mm, op->addr, op->len, op->flags);
		break;
	case OP_UFFD_WAKE:
		r = smm_uffd_wake(mm, op->addr, op->len);
		break;
	case OP_UFFD_COPY:
	case OP_UFFD_ZEROPAGE:
		if (op->kind == OP_UFFD_COPY) {
			/* the parser allows more only if the range wraps */
			if (op->len <= SCRIPT_UFFD_COPY_MAX)
				memset(src, (int)op->arg, (size_t)op->len);
			r = smm_uffd_copy(mm, op->addr, src, op->len, op->flags,
					  &done);
		} else {
			r = smm_uffd_zeropage(mm, op->addr, op->len, op->flags,
					      &done);
		}
		/* as Linux reports it: the ioctl's return, then the field
		 * uffdio_copy.copy (uffdio_zeropage.zeropage) */
		if (r)
			put_err_sp(out, r);
		else
			sb_add(out, "0 ", 2);
		if (done < 0)
			put_err(out, done);
		else
			sb_printf(out, "%lld\n", (long long)done);
		return;
	default:
		return;
	}
	if (r)
		put_err(out, r);
	else
		sb_add(out, "0\n", 2);
}

/* The VMAs in the window, into *@vmas (grown to fit). Returns how many. */
static size_t window_vmas(struct smm_mm *mm, struct smm_vma_info **vmas,
			  size_t *nvmas)
{
	size_t n = smm_mm_vmas(mm, SCRIPT_WIN_START, SCRIPT_WIN_END, *vmas,
			       *nvmas);

	if (n > *nvmas) {
		free(*vmas);
		*nvmas = n * 2;
		*vmas = calloc(*nvmas, sizeof(**vmas));
		if (!*vmas) {
			perror("calloc");
			exit(SCRIPT_ERR_SETUP);
		}
		n = smm_mm_vmas(mm, SCRIPT_WIN_START, SCRIPT_WIN_END, *vmas,
				*nvmas);
	}
	return n;
}

/* The script's address spaces (softmm backend): mm[0] first, then one per
 * `fork` that succeeded, in that order; mm[cur] is current, the one the
 * CPU has switched to. */
struct smm_mms {
	struct smm_mm *mm[SCRIPT_MMS];
	size_t n, cur;
};

static void run_softmm_op(const struct op *op, struct smm_pool *pool,
			  struct smm_mms *mms, struct smm_cpu *cpu,
			  struct strbuf *out, unsigned char *iobuf,
			  unsigned char *vec, struct smm_vma_info **vmas,
			  size_t *nvmas)
{
	struct smm_mm *mm = mms->mm[mms->cur];
	uint64_t fa = 0;
	int r;
	switch (op->kind) {
	case OP_FORK: {
		struct smm_mm *child = smm_fork(mm);

		if (!child) {
			put_err(out, -(errno ? errno : ENOMEM));
			return;
		}
		/* the parser allows at most SCRIPT_MMS - 1 forks; the child
		 * has its parent's policy and uffd-next, as a forked process
		 * would */
		suffds[mms->n].policy = suffds[mms->cur].policy;
		suffds[mms->n].byte = suffds[mms->cur].byte;
		suffds[mms->n].next = suffds[mms->cur].next;
		mms->mm[mms->n] = child;
		sb_printf(out, "%zu\n", mms->n++);
		return;
	}
	case OP_MM:
		if (op->arg >= mms->n) {
			put_err(out, -EINVAL);
			return;
		}
		mms->cur = (size_t)op->arg;
		smm_cpu_switch_mm(cpu, mms->mm[mms->cur]);
		sb_add(out, "0\n", 2);
		return;
	case OP_MREMAP: {
		int64_t a = smm_mremap(mm, op->addr, op->len, op->arg,
				       (int)op->flags, op->off);

		if (a < 0 && a > -4096)
			put_err(out, a);
		else
			sb_printf(out, "0x%llx\n", (unsigned long long)a);
		return;
	}
	case OP_FILE:
		file_op(op, pool, out);
		return;
	case OP_FTRUNCATE:
		r = sfiles[op->file - 1] ?
			    smm_file_truncate(sfiles[op->file - 1], op->len) :
			    -EBADF;
		goto ret;
	case OP_MSYNC:
		r = smm_msync(mm, op->addr, op->len, (int)op->arg);
		goto ret;
	case OP_PREAD:
	case OP_PWRITE: {
		struct smm_file *f = sfiles[op->file - 1];
		int64_t n;

		if (!f) {
			put_err(out, -EBADF);
			return;
		}
		if (op->kind == OP_PREAD) {
			n = smm_file_pread(f, iobuf, (size_t)op->len, op->off);
		} else {
			memset(iobuf, (int)op->arg, (size_t)op->len);
			n = smm_file_pwrite(f, iobuf, (size_t)op->len, op->off);
		}
		if (n < 0)
			put_err(out, n);
		else if (op->kind == OP_PWRITE)
			sb_printf(out, "%lld\n", (long long)n);
		else
			sb_printf(out, "%lld %016llx\n", (long long)n,
				  (unsigned long long)fnv1a_update(
					  fnv1a_init(), iobuf, (size_t)n));
		return;
	}
	case OP_MMAP: {
		int64_t a = op->file ?
				    smm_mmap_file(mm, op->addr, op->len,
						  (int)op->arg, (int)op->flags,
						  sfiles[op->file - 1],
						  op->off) :
				    smm_mmap(mm, op->addr, op->len,
					     (int)op->arg, (int)op->flags);
		if (a < 0 && a > -4096)
			put_err(out, a);
		else
			sb_printf(out, "0x%llx\n", (unsigned long long)a);
		return;
	}
	case OP_MUNMAP:
		r = smm_munmap(mm, op->addr, op->len);
		goto ret;
	case OP_MPROTECT:
		r = smm_mprotect(mm, op->addr, op->len, (int)op->arg);
		goto ret;
	case OP_MADVISE:
		r = smm_madvise(mm, op->addr, op->len, (int)op->arg);
		goto ret;
	case OP_MLOCK:
		r = op->arg ? smm_mlock2(mm, op->addr, op->len,
					 SMM_MLOCK_ONFAULT) :
			      smm_mlock(mm, op->addr, op->len);
		goto ret;
	case OP_MUNLOCK:
		r = smm_munlock(mm, op->addr, op->len);
ret:
		if (r)
			put_err(out, r);
		else
			sb_add(out, "0\n", 2);
		return;
	case OP_WRITE:
		r = smm_fill(cpu, op->addr, (int)op->arg, op->len, &fa);
		if (r)
			put_access_err(out, r, fa);
		else
			sb_add(out, "ok\n", 3);
		return;
	case OP_TOUCH: {
		uint64_t end = op->addr + op->len;
		uint64_t p = (op->addr + SMM_PAGE_SIZE - 1) &
			     ~(SMM_PAGE_SIZE - 1);
		if (end < op->addr)
			end = UINT64_MAX;
		for (; p >= op->addr && p < end; p += SMM_PAGE_SIZE) {
			r = smm_fill(cpu, p, 1, 1, &fa);
			if (r) {
				put_access_err(out, r, fa);
				return;
			}
			if (p + SMM_PAGE_SIZE < p)
				break;
		}
		sb_add(out, "ok\n", 3);
		return;
	}
	case OP_READ: {
		uint64_t h = fnv1a_init();
		uint64_t a = op->addr, left = op->len;
		while (left) {
			size_t n = left < IO_CHUNK ? (size_t)left : IO_CHUNK;
			r = smm_read(cpu, a, iobuf, n, &fa);
			if (r) {
				put_access_err(out, r, fa);
				return;
			}
			h = fnv1a_update(h, iobuf, n);
			a += n;
			left -= n;
		}
		sb_printf(out, "%016llx\n", (unsigned long long)h);
		return;
	}
	case OP_PEEK: {
		uint64_t h = fnv1a_init();
		uint64_t end = op->addr + op->len;
		uint64_t p = (op->addr + SMM_PAGE_SIZE - 1) &
			     ~(SMM_PAGE_SIZE - 1);
		if (end < op->addr)
			end = UINT64_MAX;
		for (; p >= op->addr && p < end; p += SMM_PAGE_SIZE) {
			unsigned char b;
			r = smm_read(cpu, p, &b, 1, &fa);
			if (r) {
				put_access_err(out, r, fa);
				return;
			}
			h = fnv1a_update(h, &b, 1);
			if (p + SMM_PAGE_SIZE < p)
				break;
		}
		sb_printf(out, "%016llx\n", (unsigned long long)h);
		return;
	}
	case OP_MAPS: {
		size_t n = window_vmas(mm, vmas, nvmas);

		if (!n)
			sb_add(out, "-", 1);
		for (size_t i = 0; i < n && i < *nvmas; i++) {
			const struct smm_vma_info *v = &(*vmas)[i];
			sb_printf(out, "%s%llx-%llx %c%c%c%c", i ? ";" : "",
				  (unsigned long long)v->start,
				  (unsigned long long)v->end,
				  v->prot & SMM_PROT_READ ? 'r' : '-',
				  v->prot & SMM_PROT_WRITE ? 'w' : '-',
				  v->prot & SMM_PROT_EXEC ? 'x' : '-',
				  v->flags & SMM_VM_SHARED ? 's' : 'p');
		}
		sb_add(out, "\n", 1);
		return;
	}
	case OP_VMFLAGS: {
		size_t n = window_vmas(mm, vmas, nvmas);

		if (!n)
			sb_add(out, "-", 1);
		for (size_t i = 0; i < n && i < *nvmas; i++) {
			const struct smm_vma_info *v = &(*vmas)[i];
			size_t k, nf = 0;

			sb_printf(out, "%s%llx-%llx ", i ? ";" : "",
				  (unsigned long long)v->start,
				  (unsigned long long)v->end);
			for (k = 0; k < script_nr_vmflags; k++)
				if (v->flags & script_vmflags[k].bit)
					sb_printf(out, "%s%s", nf++ ? "," : "",
						  script_vmflags[k].name);
			if (!nf)
				sb_add(out, "-", 1);
		}
		sb_add(out, "\n", 1);
		return;
	}
	case OP_RESIDENT: {
		size_t pages = script_resident_pages(op->len);
		r = smm_mincore(mm, op->addr, op->len, vec);
		if (r) {
			put_err(out, r);
			return;
		}
		size_t start = out->len;
		sb_reserve(out, pages + 1);
		for (size_t i = 0; i < pages; i++)
			out->buf[start + i] = (vec[i] & 1) ? '1' : '0';
		out->len = start + pages;
		sb_add(out, "\n", 1);
		return;
	}
	case OP_PT: {
		struct smm_mm_stats st;
		smm_mm_stats(mm, &st);
		sb_printf(out, "%llu\n", (unsigned long long)st.pt_bytes);
		return;
	}
	case OP_PIN:
		pin_op(op, mm, cpu, out);
		return;
	case OP_UNPIN_ALL:
		sb_printf(out, "%zu\n", unpin_all(op->arg));
		return;
	case OP_UFFD_REGISTER:
	case OP_UFFD_UNREGISTER:
	case OP_UFFD_COPY:
	case OP_UFFD_ZEROPAGE:
	case OP_UFFD_WP:
	case OP_UFFD_WAKE:
	case OP_UFFD_POLICY:
	case OP_UFFD_NEXT:
		uffd_op(op, mms->cur, mm, out, iobuf);
		return;
	}
}

unsigned int script_mthp;

int script_set_mthp(const char *tool, const char *list)
{
	static const struct {
		const char *name;
		unsigned int bit;
	} sizes[] = { { "16k", SMM_MTHP_16K },
		      { "32k", SMM_MTHP_32K },
		      { "64k", SMM_MTHP_64K } };
	unsigned int bits = 0;
	const char *p = list;

	while (*p) {
		size_t l = strcspn(p, ","), k;

		for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
			if (l == strlen(sizes[k].name) &&
			    !strncmp(p, sizes[k].name, l))
				break;
		if (k == sizeof(sizes) / sizeof(sizes[0]))
			break;
		bits |= sizes[k].bit;
		p += l + (p[l] == ',');
	}
	if (*p || !bits) {
		char q[CLI_QUOTE_SIZE];

		fprintf(stderr,
			"softmm %s: --mthp takes 16k, 32k, 64k or a list of "
			"them (got '%s')\n",
			tool, cli_quote_str(list, q, sizeof(q)));
		return -1;
	}
	script_mthp = bits;
	return 0;
}

int script_run_softmm(const struct script *s, int scheme, struct strbuf *out)
{
	size_t maxpages = 1;
	for (size_t i = 0; i < s->n; i++)
		if (s->ops[i].kind == OP_RESIDENT &&
		    script_resident_pages(s->ops[i].len) > maxpages)
			maxpages = script_resident_pages(s->ops[i].len);
	size_t iosz = IO_CHUNK;
	for (size_t i = 0; i < s->n; i++)
		if (s->ops[i].kind == OP_PREAD || s->ops[i].kind == OP_PWRITE ||
		    s->ops[i].kind == OP_UFFD_COPY)
			iosz = SCRIPT_IO_MAX;
	unsigned char *iobuf = malloc(iosz);
	unsigned char *vec = malloc(maxpages + 4096);
	size_t nvmas = 256;
	struct smm_vma_info *vmas = calloc(nvmas, sizeof(*vmas));
	if (!iobuf || !vec || !vmas) {
		perror("malloc");
		return SCRIPT_ERR_SETUP;
	}
	struct smm_pool *pool = smm_pool_create(SOFTMM_POOL_BYTES, 0);
	if (!pool) {
		perror("smm_pool_create");
		return SCRIPT_ERR_SETUP;
	}
	if (smm_pool_set_mthp(pool, script_mthp)) {
		fprintf(stderr, "smm_pool_set_mthp: bad sizes\n");
		return SCRIPT_ERR_SETUP;
	}
	struct smm_mm_opts opts = { .scheme = scheme };
	struct smm_mms mms = { .n = 1 };
	struct smm_mm *mm = smm_mm_create(pool, &opts);
	mms.mm[0] = mm;
	if (!mm) {
		perror("smm_mm_create");
		return SCRIPT_ERR_SETUP;
	}
	struct smm_cpu *cpu = smm_cpu_attach(pool);
	if (!cpu) {
		perror("smm_cpu_attach");
		return SCRIPT_ERR_SETUP;
	}
	smm_cpu_switch_mm(cpu, mm);

	pinned.n = 0;
	bool uffd = script_uses_uffd(s);

	memset(suffds, 0, sizeof(suffds));
	slog.len = slog.n = slog.more = 0;
	if (uffd)
		alarm(60); /* a fault no handler resolves: die, not hang */
	for (size_t i = 0; i < s->n; i++) {
		size_t mark = out->len;

		run_softmm_op(&s->ops[i], pool, &mms, cpu, out, iobuf, vec,
			      &vmas, &nvmas);
		if (uffd)
			suffd_flush(out, mark);
	}
	unpin_all(false); /* pins left at the end */
	free(pinned.pages);
	pinned.pages = NULL;
	pinned.cap = 0;
	uint64_t acquired = 0, released = 0;
	for (size_t k = 0; k < mms.n; k++) {
		struct smm_mm_stats mst;

		smm_mm_stats(mms.mm[k], &mst);
		acquired += mst.pins_acquired;
		released += mst.pins_released;
	}
	if (acquired != released) {
		fprintf(stderr,
			"softmm: pins unbalanced: %llu acquired, %llu released\n",
			(unsigned long long)acquired,
			(unsigned long long)released);
		close_files();
		return SCRIPT_ERR_LEAK;
	}

	/* every address space goes, the children first */
	smm_cpu_switch_mm(cpu, NULL);
	for (size_t k = mms.n; k-- > 0;)
		smm_mm_destroy(mms.mm[k]);
	if (uffd)
		alarm(0);
	smm_cpu_detach(cpu);
	int ret = 0;
	int cr = close_files(); /* the last references: caches to the pool */
	if (cr) {
		fprintf(stderr, "softmm: smm_file_close: %s\n",
			script_errname(-cr));
		ret = SCRIPT_ERR_LEAK;
	}
	struct smm_pool_stats st;
	smm_pool_stats(pool, &st);
	if (st.frames != 1 + st.free || st.file_pages) {
		fprintf(stderr,
			"softmm: leak: pool frames %llu != 1 + free %llu "
			"(anon %llu, page tables %llu, page cache %llu)\n",
			(unsigned long long)st.frames,
			(unsigned long long)st.free,
			(unsigned long long)st.anon_pages,
			(unsigned long long)st.pt_pages,
			(unsigned long long)st.file_pages);
		ret = SCRIPT_ERR_LEAK;
	}
	int r = smm_pool_destroy(pool);
	if (r) {
		fprintf(stderr, "softmm: smm_pool_destroy: %s\n",
			script_errname(-r));
		ret = SCRIPT_ERR_LEAK;
	}
	free(iobuf);
	free(vec);
	free(vmas);
	return ret;
}

int script_run(const struct script *s, enum backend be, int scheme,
	       struct strbuf *out)
{
	if (be == BACKEND_KERNEL)
		return script_run_kernel(s, out);
	return script_run_softmm(s, scheme, out);
}

/*
 * collect_child - read everything child @pid writes to @fd into @out,
 * close @fd, reap the child. Returns its exit status, 128 + the signal
 * that killed it, or SCRIPT_ERR_SETUP.
 */
int collect_child(pid_t pid, int fd, struct strbuf *out)
{
	char buf[65536];
	int st;

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		sb_add(out, buf, (size_t)n);
	}
	close(fd);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return SCRIPT_ERR_SETUP;
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}
int script_run_forked(const struct script *s, enum backend be, int scheme,
		      struct strbuf *out)
{
	if (be == BACKEND_KERNEL)
		return script_run_kernel(s, out);
	int pfd[2];
	if (pipe(pfd))
		return SCRIPT_ERR_SETUP;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return SCRIPT_ERR_SETUP;
	if (!pid) {
		close(pfd[0]);
		struct strbuf o;
		sb_init(&o);
		int r = script_run_softmm(s, scheme, &o);
		size_t off = 0;
		while (off < o.len) {
			ssize_t w = write(pfd[1], o.buf + off, o.len - off);
			if (w <= 0)
				_exit(SCRIPT_ERR_SETUP);
			off += (size_t)w;
		}
		_exit(r);
	}
	close(pfd[1]);
	return collect_child(pid, pfd[0], out);
}

/* ------------------------------------------------------------------ */
/* `softmm script`                                                     */
/* ------------------------------------------------------------------ */

/*
 * read_all - all of @f, with a NUL after it, and its length in *@len (the
 * text may hold NUL bytes: the parser refuses them by line). NULL on a read
 * error, errno set (a directory: EISDIR).
 */
static char *read_all(FILE *f, size_t *len)
{
	struct strbuf sb;
	sb_init(&sb);
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sb_add(&sb, buf, n);
	if (ferror(f)) {
		int e = errno ? errno : EIO;
		sb_free(&sb);
		errno = e;
		return NULL;
	}
	if (!sb.buf)
		sb_add(&sb, "", 0);
	*len = sb.len;
	return sb.buf;
}

const char script_synopsis[] =
	"[--backend softmm|kernel (softmm)] [--scheme NAME (eager)]\n"
	"[--mthp SIZE,... (none)] FILE|-";
const char script_summary[] =
	"run a script (FILE, or - for stdin) on softmm or on the kernel";

static int script_usage(FILE *f)
{
	cli_usage(f, "script", script_synopsis, script_summary);
	fprintf(f,
		"  --backend softmm  through libsoftmm, in this process\n"
		"  --backend kernel  through real syscalls, in a child process\n"
		"  --scheme NAME     softmm only: " CLI_SCHEMES "\n"
		"  --mthp SIZES      multi-size THP: 16k, 32k, 64k (the "
		"kernel's\n"
		"                    sysfs knobs: root; restored at exit)\n");
	return f == stdout ? 0 : 2;
}

int cmd_script(int argc, char **argv)
{
	char q[CLI_QUOTE_SIZE];
	enum backend be = BACKEND_SOFTMM;
	const char *scheme_name = NULL; /* the library's default: eager */
	static const struct option lopts[] = {
		{ "backend", required_argument, NULL, 'b' },
		{ "scheme", required_argument, NULL, 's' },
		{ "mthp", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "b:s:M:h", lopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (!strcmp(optarg, "softmm"))
				be = BACKEND_SOFTMM;
			else if (!strcmp(optarg, "kernel"))
				be = BACKEND_KERNEL;
			else {
				fprintf(stderr,
					"softmm script: unknown backend '%s' "
					"(softmm, kernel)\n",
					cli_quote_str(optarg, q, sizeof(q)));
				return 2;
			}
			break;
		case 's':
			scheme_name = optarg;
			break;
		case 'M':
			if (script_set_mthp("script", optarg))
				return 2;
			break;
		case 'h':
			return script_usage(stdout);
		default:
			return script_usage(stderr);
		}
	}
	if (optind == argc) {
		fprintf(stderr, "softmm script: no FILE given\n");
		return script_usage(stderr);
	}
	if (cli_no_args("script", argc, argv, optind + 1))
		return 2;
	int scheme = SMM_SCHEME_EAGER;
	if (be == BACKEND_KERNEL && scheme_name) {
		fprintf(stderr, "softmm script: --scheme is for the softmm "
				"backend; the kernel backend has none\n");
		return 2;
	}
	if (scheme_name) {
		scheme = smm_scheme_from_name(scheme_name);
		if (scheme < 0) {
			char l[128];

			fprintf(stderr,
				"softmm script: unknown scheme '%s' (%s)\n",
				cli_quote_str(scheme_name, q, sizeof(q)),
				cli_scheme_list(l, sizeof(l)));
			return 2;
		}
	}
	if (script_mthp && be == BACKEND_KERNEL) {
		int err = script_kernel_mthp();

		if (err) {
			fprintf(stderr,
				"softmm script: --mthp: cannot set the "
				"kernel's THP sizes: %s\n",
				strerror(-err));
			return 2;
		}
	}
	const char *fname = argv[optind];
	FILE *f = strcmp(fname, "-") ? fopen(fname, "r") : stdin;
	if (!f) {
		fprintf(stderr, "softmm script: cannot open '%s': %s\n",
			cli_quote_str(fname, q, sizeof(q)), strerror(errno));
		return 2;
	}
	size_t len;
	char *text = read_all(f, &len);
	if (!text)
		fprintf(stderr, "softmm script: cannot read '%s': %s\n",
			cli_quote_str(fname, q, sizeof(q)), strerror(errno));
	if (f != stdin)
		fclose(f);
	if (!text)
		return 2;
	struct script s;
	script_init(&s);
	if (script_parse_buf(text, len, fname, &s, stderr)) {
		free(text);
		script_free(&s);
		return 2;
	}
	free(text);
	struct strbuf out;
	sb_init(&out);
	int r = script_run(&s, be, scheme, &out);
	fflush(stdout);
	size_t off = 0;
	while (off < out.len) {
		ssize_t w = write(1, out.buf + off, out.len - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	sb_free(&out);
	script_free(&s);
	if (r >= 128)
		fprintf(stderr, "softmm script: backend killed by signal %d\n",
			r - 128);
	return r;
}
