/*
 * report_html.h - the report's self-contained HTML page (module report,
 * prefix report_html_).
 *
 * One file, no network and no script: the tables as HTML tables, the figures
 * inlined as data: URIs (base64 PNG), the run's status, the job file. It
 * opens in any browser, from a laptop or a cluster's web server alike.
 */
#ifndef REPORT_HTML_H
#define REPORT_HTML_H

#include <stddef.h>
#include <stdint.h>

#include "report_data.h"
#include "report_figures.h"
#include "report_tables.h"

/*
 * Write the page to `path`: figures are read from fig_dir/<file>; status is
 * report_tables_status's paragraph (complete: 1 when the file is complete).
 * Returns 0, or SC_ERR_IO (logged with the path).
 */
int report_html_write(const char *path, const report_data_t *d, const report_tables_t *tables,
                      const report_figures_t *figs, const char *fig_dir, const char *status,
                      int complete);

/* Base64 (RFC 4648, with padding) of in[n] into out, which must hold
 * report_base64_size(n) bytes (the text and its terminating NUL). */
size_t report_base64_size(size_t n);
void report_base64(const uint8_t *in, size_t n, char *out);

#endif
