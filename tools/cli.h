/*
 * tools/cli.h - the command-line conventions every subcommand of the
 * softmm tool keeps: number options checked whole (no sign, no junk, a
 * range), user text quoted when a message echoes it, no stray arguments,
 * --help on stdout with exit status 0, usage errors on stderr with 2.
 */
#ifndef SOFTMM_TOOLS_CLI_H
#define SOFTMM_TOOLS_CLI_H

#include <stddef.h>
#include <stdio.h>

/*
 * cli_ull - parse @arg, the value of option @opt of subcommand @cmd: an
 * unsigned number, decimal or 0x hex, with no sign, blank or trailing
 * character, in [@min, @max]. On error prints "softmm CMD: OPT must be
 * MIN..MAX (got 'ARG')" to stderr and returns -1; else stores it, 0.
 */
int cli_ull(const char *cmd, const char *opt, const char *arg,
	    unsigned long long min, unsigned long long max,
	    unsigned long long *out);
/* cli_int - the same for an int option; @min must be >= 0. */
int cli_int(const char *cmd, const char *opt, const char *arg, int min, int max,
	    int *out);

/* Input bytes cli_quote() shows before it cuts the text short with "...". */
#define CLI_QUOTE_MAX 48
/* A buffer that holds any cli_quote() result. */
#define CLI_QUOTE_SIZE (4 * CLI_QUOTE_MAX + 8)

/*
 * cli_quote - @n bytes at @s made safe to print in a message: printable
 * ASCII as is (a backslash doubled), any other byte as \xNN; at most
 * CLI_QUOTE_MAX bytes, then "...". Writes into @buf (@size bytes, at least
 * CLI_QUOTE_SIZE to show everything) and returns it.
 */
const char *cli_quote(const void *s, size_t n, char *buf, size_t size);
/* cli_quote() of the C string @s. */
const char *cli_quote_str(const char *s, char *buf, size_t size);

/*
 * cli_no_args - after getopt_long(): if arguments are left from @optind on,
 * prints "softmm CMD: unexpected argument 'X'" and returns -1.
 */
int cli_no_args(const char *cmd, int argc, char **argv, int optind);

/*
 * Each subcommand's synopsis (its options, optional ones in brackets with
 * their defaults in parentheses; lines joined by '\n') and one line saying
 * what it does: printed by its --help and by `softmm --help`.
 */
extern const char script_synopsis[], script_summary[];
extern const char oracle_synopsis[], oracle_summary[];
extern const char bench_synopsis[], bench_summary[];
extern const char compare_synopsis[], compare_summary[];
extern const char torture_synopsis[], torture_summary[];

/*
 * cli_usage - "usage: softmm CMD SYNOPSIS" (its further lines indented by
 * 8), then @summary, to @f.
 */
void cli_usage(FILE *f, const char *cmd, const char *synopsis,
	       const char *summary);

/*
 * The page-table schemes in the order the tools show them: Linux's two,
 * softmm's own, then the newer ones. A name the library does not know (an
 * older library) is skipped wherever the list is resolved.
 */
#define CLI_SCHEMES	"none, pt-reclaim, eager, refcount, pmd-rwsem"
#define CLI_MAX_SCHEMES 8
extern const char *const cli_scheme_order[];

/*
 * cli_known_schemes - the schemes of cli_scheme_order that
 * smm_scheme_from_name() knows, in that order, into @out (at most @max).
 * Returns how many.
 */
int cli_known_schemes(int *out, int max);

/* cli_scheme_list - the names of the known schemes, ", " between them,
 * into @buf; returns @buf. For messages about an unknown scheme. */
const char *cli_scheme_list(char *buf, size_t size);

/* cli_print_indented - print @text with @indent spaces before every line. */
void cli_print_indented(FILE *f, int indent, const char *text);

#endif
