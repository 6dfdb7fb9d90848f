/*
 * tools/torture.h - the torture command of the softmm tool (torture.c).
 */
#ifndef SOFTMM_TOOLS_TORTURE_H
#define SOFTMM_TOOLS_TORTURE_H

int cmd_torture(int argc, char **argv);

#endif
