/*
 * tests/fuzz/fuzz_script.c - libFuzzer harness around the script language:
 * the parser (tools/script.c, script_parse_buf()), the printer, and the
 * softmm backend that runs a script through the library, in process.
 *
 * For each input:
 *  1. script_parse_buf() parses it whole, with its length, so NUL bytes,
 *     long lines and binary garbage reach the parser as a file would.
 *  2. If it parses: every operation, printed by script_format_op() and
 *     parsed again, must come back the same (the printer and the parser
 *     agree; the oracle writes its scripts with the printer).
 *  3. If it is within the bounds below: the script runs on the softmm
 *     backend (script_run_softmm(), no fork) under each page-table scheme,
 *     eager, none and pt-reclaim. Each run must end with every frame back
 *     in the pool (page caches too, once the files are closed) and pins
 *     balanced (else the backend returns SCRIPT_ERR_LEAK), and the five
 *     outputs must agree line by line, except the lines of `pt`: the
 *     schemes differ only in when they free page tables, which no other
 *     operation can see. The script's files (`file N SIZE`) are unnamed
 *     host files (script_host_file()): nothing is left behind.
 * Any disagreement aborts, with both sides on stderr; sanitizer reports
 * (ASan, UBSan, LeakSanitizer) and the library's own assertions (SMM_DEBUG)
 * are crashes too.
 *
 * Bounds, so that one input cannot take seconds or gigabytes (inputs out
 * of bounds are parsed and printed but not run):
 *  - at most FUZZ_MAX_OPS (128) operations;
 *  - the bytes that operations may access or fault in, summed over the
 *    script, at most FUZZ_MAX_BYTES (8 MiB): LEN of write, touch, read,
 *    peek, resident, pin, pread and pwrite, of mmap with populate or
 *    locked, of mlock (not onfault) and of madvise populate_read,
 *    populate_write and willneed (which reads a file in), NEWLEN of
 *    mremap (a locked mapping that grows is populated) (mprotect
 *    faults in a locked mapping it makes writable, but what is locked
 *    stays under SMM_MLOCK_LIMIT); a range that wraps around counts as
 *    all of memory (out of bounds), except for pin, which the library
 *    refuses before it looks at anything (-EOVERFLOW).
 *
 * `fork`, `mm N` and `mremap` run like the rest: their results (-ENOSYS
 * while the library stubs them) are printed and compared across schemes.
 *
 * The kernel backend never runs here: tools/kbackend.c is not linked, and
 * script_run_kernel() and script_kernel_mthp() below abort.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "script.h"
#include "softmm.h"

#define FUZZ_MAX_OPS   128
#define FUZZ_MAX_BYTES (8ULL << 20)

int script_run_kernel(const struct script *s, struct strbuf *out)
{
	(void)s;
	(void)out;
	fprintf(stderr, "fuzz_script: the kernel backend must not run\n");
	abort();
}

int script_kernel_mthp(void)
{
	fprintf(stderr, "fuzz_script: the kernel's THP is not touched\n");
	abort();
}

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	devnull = fopen("/dev/null", "w");
	if (!devnull)
		abort();
	return 0;
}

/* Bytes @op may access or fault in: its part of FUZZ_MAX_BYTES. */
static uint64_t op_bytes(const struct op *op)
{
	bool wraps = op->addr + op->len < op->addr;

	switch (op->kind) {
	case OP_PIN:
		return wraps ? 0 : op->len;
	case OP_MMAP:
		if (!(op->flags & (SMM_MAP_POPULATE | SMM_MAP_LOCKED)))
			return 0;
		break;
	case OP_MLOCK:
		if (op->arg) /* onfault: nothing faulted in */
			return 0;
		break;
	case OP_MADVISE:
		if (op->arg != SMM_MADV_POPULATE_READ &&
		    op->arg != SMM_MADV_POPULATE_WRITE &&
		    op->arg != SMM_MADV_WILLNEED)
			return 0;
		break;
	case OP_PREAD:
	case OP_PWRITE: /* at most SCRIPT_IO_MAX, never wraps */
		return op->len;
	case OP_MREMAP: /* growing a locked mapping populates the growth */
		return op->arg;
	case OP_WRITE:
	case OP_TOUCH:
	case OP_READ:
	case OP_PEEK:
	case OP_RESIDENT:
		break;
	default:
		return 0;
	}
	return wraps ? UINT64_MAX : op->len;
}

static bool in_bounds(const struct script *s)
{
	uint64_t total = 0;

	if (s->n > FUZZ_MAX_OPS)
		return false;
	for (size_t i = 0; i < s->n; i++) {
		uint64_t b = op_bytes(&s->ops[i]);

		if (b > FUZZ_MAX_BYTES - total)
			return false;
		total += b;
	}
	return true;
}

static bool same_op(const struct op *a, const struct op *b)
{
	return a->kind == b->kind && a->addr == b->addr && a->len == b->len &&
	       a->arg == b->arg && a->flags == b->flags && a->off == b->off &&
	       a->file == b->file;
}

/* Printing each operation and parsing it again gives it back. */
static void check_round_trip(const struct script *s)
{
	struct strbuf sb;
	struct script t;

	sb_init(&sb);
	for (size_t i = 0; i < s->n; i++) {
		sb_reset(&sb);
		script_format_op(&s->ops[i], &sb);
		script_init(&t);
		if (script_parse_buf(sb.buf, sb.len, "printed", &t, stderr) ||
		    t.n != 1 || !same_op(&s->ops[i], &t.ops[0])) {
			fprintf(stderr,
				"fuzz_script: operation %zu printed as '%.*s' "
				"does not parse back the same\n",
				i, (int)(sb.len ? sb.len - 1 : 0), sb.buf);
			abort();
		}
		script_free(&t);
	}
	sb_free(&sb);
}

/* Line @idx of @sb (without its '\n'), or NULL. */
static const char *line_at(const struct strbuf *sb, size_t idx, size_t *len)
{
	const char *p = sb->buf ? sb->buf : "", *end = p + sb->len;

	for (size_t i = 0; i < idx && p < end; i++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		p = nl ? nl + 1 : end;
	}
	if (p >= end)
		return NULL;
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	*len = nl ? (size_t)(nl - p) : (size_t)(end - p);
	return p;
}

static void dump(const struct script *s, const struct strbuf *a, const char *na,
		 const struct strbuf *b, const char *nb)
{
	struct strbuf sb;

	sb_init(&sb);
	fprintf(stderr, "  %-52s | %-20s | %s\n", "op", na, nb);
	for (size_t i = 0; i < s->n; i++) {
		size_t la = 0, lb = 0;
		const char *x = line_at(a, i, &la), *y = line_at(b, i, &lb);

		sb_reset(&sb);
		script_format_op(&s->ops[i], &sb);
		fprintf(stderr, "%c %-52.*s | %-20.*s | %.*s\n",
			(x && y && la == lb && !memcmp(x, y, la)) ? ' ' : '!',
			(int)sb.len - 1, sb.buf, x ? (int)la : 9,
			x ? x : "(missing)", y ? (int)lb : 9,
			y ? y : "(missing)");
	}
	sb_free(&sb);
}

/* The outputs of two schemes agree, but for the lines of `pt`. */
static void check_same(const struct script *s, const struct strbuf *a,
		       const char *na, const struct strbuf *b, const char *nb)
{
	for (size_t i = 0; i < s->n; i++) {
		size_t la = 0, lb = 0;
		const char *x = line_at(a, i, &la), *y = line_at(b, i, &lb);

		if (x && y &&
		    (s->ops[i].kind == OP_PT ||
		     (la == lb && !memcmp(x, y, la))))
			continue;
		fprintf(stderr,
			"fuzz_script: schemes %s and %s disagree at "
			"operation %zu:\n",
			na, nb, i + 1);
		dump(s, a, na, b, nb);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int schemes[] = { SMM_SCHEME_EAGER, SMM_SCHEME_NONE,
				       SMM_SCHEME_PT_RECLAIM,
				       SMM_SCHEME_REFCOUNT,
				       SMM_SCHEME_PMD_RWSEM };
	enum {
		N = sizeof(schemes) / sizeof(schemes[0])
	};
	struct strbuf out[N];
	struct script s;

	script_init(&s);
	if (script_parse_buf((const char *)data, size, "input", &s, devnull)) {
		script_free(&s);
		return 0;
	}
	check_round_trip(&s);
	if (!in_bounds(&s)) {
		script_free(&s);
		return 0;
	}
	for (int k = 0; k < N; k++) {
		int r;

		sb_init(&out[k]);
		r = script_run_softmm(&s, schemes[k], &out[k]);
		if (r) {
			fprintf(stderr,
				"fuzz_script: the softmm backend (scheme %s) "
				"returned %d%s\n",
				smm_scheme_name(schemes[k]), r,
				r == SCRIPT_ERR_LEAK ?
					" (frames or pins leaked)" :
					"");
			abort();
		}
	}
	for (int k = 1; k < N; k++)
		check_same(&s, &out[0], "eager", &out[k],
			   smm_scheme_name(schemes[k]));
	for (int k = 0; k < N; k++)
		sb_free(&out[k]);
	script_free(&s);
	return 0;
}
