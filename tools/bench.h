/*
 * tools/bench.h - the benchmark commands of the softmm tool (bench.c).
 */
#ifndef SOFTMM_TOOLS_BENCH_H
#define SOFTMM_TOOLS_BENCH_H

int cmd_bench(int argc, char **argv);
int cmd_compare(int argc, char **argv);

#endif
