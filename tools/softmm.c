/*
 * tools/softmm.c - main() of the `softmm` command-line tool: a table of
 * subcommands. To add one, write its cmd_NAME() in its own tools/ file,
 * declare it in tools/script.h (or a header of its own), define its
 * NAME_synopsis and NAME_summary (tools/cli.h) and add one entry to
 * `commands` below.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "script.h"
#include "torture.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv); /* argv[0] is the command name */
	const char *synopsis, *summary;
};

static const struct command commands[] = {
	{ "script", cmd_script, script_synopsis, script_summary },
	{ "oracle", cmd_oracle, oracle_synopsis, oracle_summary },
	{ "bench", cmd_bench, bench_synopsis, bench_summary },
	{ "compare", cmd_compare, compare_synopsis, compare_summary },
	{ "torture", cmd_torture, torture_synopsis, torture_summary },
};
#define NR_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: softmm COMMAND [ARGS...]\n"
		   "       softmm COMMAND --help   (or: softmm help COMMAND)\n"
		   "commands (optional arguments in [], defaults in ()):\n");
	for (size_t i = 0; i < NR_COMMANDS; i++) {
		fprintf(f, "  %-8s %s\n", commands[i].name,
			commands[i].summary);
		cli_print_indented(f, 11, commands[i].synopsis);
	}
}

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < NR_COMMANDS; i++)
		if (!strcmp(name, commands[i].name))
			return &commands[i];
	return NULL;
}

static int unknown(const char *name)
{
	char q[CLI_QUOTE_SIZE];

	fprintf(stderr, "softmm: unknown command '%s'\n",
		cli_quote_str(name, q, sizeof(q)));
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	const struct command *c;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "-h")) {
		if (argc == 2) {
			usage(stdout);
			return 0;
		}
		c = find(argv[2]);
		if (!c)
			return unknown(argv[2]);
		if (cli_no_args("help", argc, argv, 3))
			return 2;
		char *hargv[] = { (char *)c->name, "--help", NULL };
		return c->fn(2, hargv);
	}
	c = find(argv[1]);
	if (!c)
		return unknown(argv[1]);
	/* getopt_long() names argv[0] in its messages */
	char name[32];
	snprintf(name, sizeof(name), "softmm %s", c->name);
	argv[1] = name;
	return c->fn(argc - 1, argv + 1);
}
