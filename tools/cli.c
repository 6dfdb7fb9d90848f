/*
 * tools/cli.c - helpers for the command-line conventions of the softmm
 * tool (tools/cli.h).
 */
#include "cli.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include "softmm.h"

static int digit(char c, int base)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (base == 16 && c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (base == 16 && c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Digits only (after an optional 0x), no overflow: no sign, blank or junk. */
static bool parse_ull(const char *p, unsigned long long *out)
{
	unsigned long long v = 0;
	int base = 10, d;

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	if (!*p)
		return false;
	for (; *p; p++) {
		d = digit(*p, base);
		if (d < 0)
			return false;
		if (v > (ULLONG_MAX - (unsigned)d) / (unsigned)base)
			return false;
		v = v * (unsigned)base + (unsigned)d;
	}
	*out = v;
	return true;
}

int cli_ull(const char *cmd, const char *opt, const char *arg,
	    unsigned long long min, unsigned long long max,
	    unsigned long long *out)
{
	char q[CLI_QUOTE_SIZE];
	unsigned long long v;

	if (parse_ull(arg, &v) && v >= min && v <= max) {
		*out = v;
		return 0;
	}
	fprintf(stderr, "softmm %s: %s must be %llu..%llu (got '%s')\n", cmd,
		opt, min, max, cli_quote_str(arg, q, sizeof(q)));
	return -1;
}

int cli_int(const char *cmd, const char *opt, const char *arg, int min, int max,
	    int *out)
{
	unsigned long long v;

	if (cli_ull(cmd, opt, arg, (unsigned long long)min,
		    (unsigned long long)max, &v))
		return -1;
	*out = (int)v;
	return 0;
}

const char *cli_quote(const void *s, size_t n, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = s;
	size_t o = 0;

	if (!size)
		return buf;
	for (size_t i = 0; i < n; i++) {
		char e[5];
		size_t l;

		if (i == CLI_QUOTE_MAX) {
			if (o + 4 <= size) {
				memcpy(buf + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (p[i] == '\\') {
			memcpy(e, "\\\\", 2);
			l = 2;
		} else if (p[i] >= 0x20 && p[i] < 0x7f) {
			e[0] = (char)p[i];
			l = 1;
		} else {
			e[0] = '\\';
			e[1] = 'x';
			e[2] = hex[p[i] >> 4];
			e[3] = hex[p[i] & 15];
			l = 4;
		}
		if (o + l + 1 > size)
			break;
		memcpy(buf + o, e, l);
		o += l;
	}
	buf[o] = 0;
	return buf;
}

const char *cli_quote_str(const char *s, char *buf, size_t size)
{
	return cli_quote(s, strlen(s), buf, size);
}

int cli_no_args(const char *cmd, int argc, char **argv, int optind)
{
	char q[CLI_QUOTE_SIZE];

	if (optind >= argc)
		return 0;
	fprintf(stderr, "softmm %s: unexpected argument '%s'\n", cmd,
		cli_quote_str(argv[optind], q, sizeof(q)));
	return -1;
}

void cli_print_indented(FILE *f, int indent, const char *text)
{
	while (*text) {
		const char *nl = strchr(text, '\n');
		int n = nl ? (int)(nl - text) : (int)strlen(text);

		fprintf(f, "%*s%.*s\n", indent, "", n, text);
		text += n + (nl ? 1 : 0);
	}
}

void cli_usage(FILE *f, const char *cmd, const char *synopsis,
	       const char *summary)
{
	const char *nl = strchr(synopsis, '\n');
	int n = nl ? (int)(nl - synopsis) : (int)strlen(synopsis);

	fprintf(f, "usage: softmm %s %.*s\n", cmd, n, synopsis);
	if (nl)
		cli_print_indented(f, 8, nl + 1);
	fprintf(f, "%s\n", summary);
}

const char *const cli_scheme_order[] = {
	"none", "pt-reclaim", "eager", "refcount", "pmd-rwsem", NULL,
};

int cli_known_schemes(int *out, int max)
{
	int n = 0;

	for (int i = 0; cli_scheme_order[i] && n < max; i++) {
		int s = smm_scheme_from_name(cli_scheme_order[i]);

		if (s >= 0)
			out[n++] = s;
	}
	return n;
}

const char *cli_scheme_list(char *buf, size_t size)
{
	int s[CLI_MAX_SCHEMES], n = cli_known_schemes(s, CLI_MAX_SCHEMES);
	size_t o = 0;

	if (size)
		buf[0] = 0;
	for (int i = 0; i < n && o < size; i++)
		o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? ", " : "",
				      smm_scheme_name(s[i]));
	return buf;
}
