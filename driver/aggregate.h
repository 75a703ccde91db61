/*
 * aggregate.h - the root's summary of a finished results file: /summary
 * tables (means, medians, quartiles, 95% bootstrap CIs, pass/fail against the
 * randomization baseline) and the paper's tables printed as Markdown.
 */
#ifndef AGGREGATE_H
#define AGGREGATE_H

#include <stdio.h>

/* Open `path` serially (no other process may have it open), write /summary
 * (replacing an old one) and print the tables to out. Returns 0 or < 0. */
int aggregate_results(const char *path, FILE *out);

#endif
