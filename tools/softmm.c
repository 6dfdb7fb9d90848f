/*
 * tools/softmm.c - main() of the `softmm` command-line tool: a table of
 * subcommands. To add one, write its cmd_NAME() in its own tools/ file,
 * declare it in tools/script.h (or a header of its own) and add one entry
 * to `commands` below.
 */
#include <stdio.h>
#include <string.h>

#include "script.h"

/* Commands defined in other tools/ files without a header of their own. */
int cmd_bench(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_torture(int argc, char **argv);

struct command {
	const char *name;
	int (*fn)(int argc, char **argv); /* argv[0] is the command name */
	const char *help;
};

static const struct command commands[] = {
	{ "script", cmd_script,
	  "[--backend softmm|kernel] [--scheme NAME] FILE|-   run a script" },
	{ "oracle", cmd_oracle,
	  "--sequences N --ops M --seed S [--scheme NAME] [--out FILE] "
	  "[--verbose] [--keep-going] [--avoid CLASSES] [--self-test] "
	  "[--dump]   compare random scripts against the kernel" },
	{ "bench", cmd_bench, "...   benchmarks, softmm vs the kernel" },
	{ "compare", cmd_compare, "...   the main comparison (SVG chart)" },
	{ "torture", cmd_torture,
	  "[--threads N] [--seconds S] [--seed N] [--scheme NAME] [--mms N] "
	  "[--no-vma-lock] [--race PERMILLE]   concurrent torture with invariant checks" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: softmm COMMAND [ARGS...]\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "softmm: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
