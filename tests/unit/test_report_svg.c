/*
 * test_report_svg.c - the SVG copy of the report's figures (driver/report_plot.c):
 * every drawing call appears as a vector element, text as real <text> (escaped),
 * images as embedded PNG, and the file is well-formed XML (Python's parser) that
 * declares the canvas size; a canvas set up by hand records nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_plot.c"
#include "sc.h"
#include "testhelp.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc((size_t)n + 1, 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    fclose(f);
    return s;
}

static void test_svg_copy(void)
{
    const uint8_t black[3] = {0, 0, 0}, red[3] = {255, 0, 0};
    report_canvas_t *c = report_canvas_create(200, 120);
    TH_CHECK(c != NULL, "canvas");
    if (!c)
        return;
    report_fill(c, 10, 10, 29, 19, red);
    report_line(c, 0, 50, 199, 50, black, 2);
    report_dashed(c, 0, 60, 199, 60, black, 1, 4, 3);
    report_rect(c, 5, 5, 100, 100, black, 2);
    report_text(c, 20, 30, "AUC <0.5> & more", black, 2, REPORT_LEFT);
    report_text_up(c, 4, 60, "deletion", black, 1);
    report_marker(c, 50, 80, 3, 4, red);
    uint8_t tile[4 * 4 * 3];
    memset(tile, 128, sizeof tile);
    report_blit(c, 150, 80, tile, 4, 4);
    char png[512], svg[512];
    snprintf(png, sizeof png, "%s/svg_copy.png", th_tmp_dir());
    snprintf(svg, sizeof svg, "%s/svg_copy.svg", th_tmp_dir());
    remove(svg);
    TH_EQ_INT(report_canvas_write(c, png), 0);
    char *s = slurp(svg);
    TH_CHECK(s != NULL, "the SVG copy %s is written beside the PNG", svg);
    if (s) {
        TH_CHECK(strstr(s, "width=\"200\" height=\"120\"") != NULL, "canvas size declared");
        TH_CHECK(strstr(s, ">AUC &lt;0.5&gt; &amp; more</text>") != NULL, "text is real, escaped text");
        TH_CHECK(strstr(s, "rotate(-90)") && strstr(s, ">deletion</text>"), "rotated text");
        TH_CHECK(strstr(s, "<rect x=\"10\" y=\"10\" width=\"20\" height=\"10\" fill=\"#ff0000\"/>") != NULL,
                 "filled rectangle");
        TH_CHECK(strstr(s, "stroke-dasharray=\"4 3\"") != NULL, "dashed line");
        TH_CHECK(strstr(s, "<polygon") != NULL, "diamond marker");
        TH_CHECK(strstr(s, "data:image/png;base64,iVBORw0KGgo") != NULL, "blitted image as PNG");
        /* glyph pixels are not recorded as rectangles: one <rect> per call above, plus the
         * background and the outline */
        int rects = 0;
        for (const char *p = s; (p = strstr(p, "<rect")); p++)
            rects++;
        TH_EQ_INT(rects, 3);
        free(s);
    }
    if (th_python_has("xml.dom.minidom")) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "%s -c 'import sys, xml.dom.minidom as m; "
                                  "d = m.parse(sys.argv[1]); assert d.documentElement.tagName == \"svg\"' %s",
                 th_python(), svg);
        TH_CHECK(system(cmd) == 0, "well-formed XML: %s", cmd);
    }
    report_canvas_destroy(c);
    /* a canvas set up by hand draws but records nothing */
    uint8_t rgb[8 * 8 * 3];
    report_canvas_t view = {.w = 8, .h = 8, .rgb = rgb};
    report_fill(&view, 0, 0, 7, 7, red);
    TH_CHECK(view.svg == NULL && rgb[0] == 255, "hand-made canvas draws, records nothing");
}

int main(void)
{
    sc_log_set_level(SC_LOG_ERROR);
    TH_RUN(test_svg_copy);
    return th_report();
}
