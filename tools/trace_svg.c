/*
 * trace_svg.c — the heap over time, pauses beneath, as a hand-written SVG.
 *
 *   title, one line of key numbers, legend
 *   ┌ heap panel: goal (dashed), H0 before, H1 after mark, H2 live (bold),
 *   │             the live heap's least-squares trend (thin dashed)
 *   └ pause panel: one bar per cycle, forced cycles in their own colour
 *     shared time axis, seconds since program start
 *
 * SVG is plain text and every browser draws it, so no library is needed:
 * the file is built from fixed markup, numbers printed in the "C" locale,
 * and the title, which is the only outside text, reduced to escaped
 * printable ASCII so the file is well-formed XML whatever the input was.
 */
#include <math.h>
#include <stdlib.h>

#include "trace.h"

enum {
    W = 1000, H = 700,
    X0 = 80, X1 = 960,          /* plot area, both panels */
    HEAP_Y0 = 100, HEAP_Y1 = 440,
    PAUSE_Y0 = 490, PAUSE_Y1 = 620,
};

#define C_GOAL "#7f7f7f"
#define C_H0 "#ff7f0e"
#define C_H1 "#d62728"
#define C_LIVE "#1f77b4"
#define C_PAUSE "#2ca02c"
#define C_FORCED "#9467bd"
#define C_GRID "#e5e5e5"
#define C_AXIS "#333333"

typedef struct axis {
    double lo, hi, step; /* data range drawn and tick spacing */
    int decimals;        /* of tick labels                    */
} axis;

/* 1, 2 or 5 times a power of ten, at least `raw`. */
static double nice_step(double raw)
{
    if (!(raw > 0) || !isfinite(raw))
        return 1;
    double p = pow(10, floor(log10(raw)));
    double m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

static axis make_axis(double lo, double hi, int ticks, bool from_zero)
{
    axis a;
    if (from_zero)
        lo = 0;
    if (!(hi > lo)) {
        hi = lo + (from_zero ? 1 : 0.5);
        lo = from_zero ? lo : lo - 0.5;
    }
    a.step = nice_step((hi - lo) / ticks);
    a.lo = floor(lo / a.step) * a.step;
    a.hi = ceil(hi / a.step) * a.step;
    if (!(a.hi > a.lo))
        a.hi = a.lo + a.step;
    double d = -floor(log10(a.step));
    a.decimals = d > 0 ? (d > 6 ? 6 : (int)d) : 0;
    return a;
}

/* Data to pixels.  Absurd inputs (times near 1e15 s differing by a
 * millisecond) can leave no representable room between lo and hi; such a
 * chart is flat, never NaN. */
static double map(const axis *a, double v, double p0, double p1)
{
    double r = p0 + (v - a->lo) / (a->hi - a->lo) * (p1 - p0);
    return isfinite(r) ? r : p0;
}

/* The ticks: k·step from lo, counted with an integer so that a step too
 * small to change lo cannot loop forever. */
static int tick_count(const axis *a)
{
    double k = floor((a->hi - a->lo) / a->step + 0.5);
    return k >= 0 && k <= 50 ? (int)k : 0;
}

/* Escaped, printable-ASCII text. */
static void put_text(FILE *out, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        default: fputc(*p >= 0x20 && *p < 0x7f ? *p : '?', out);
        }
    }
}

static void text(FILE *out, double x, double y, const char *anchor, int size,
                 const char *extra, const char *s)
{
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%d\"%s>",
            x, y, anchor, size, extra);
    put_text(out, s);
    fputs("</text>\n", out);
}

static void x_grid(FILE *out, const axis *ax, double y0, double y1, bool labels)
{
    for (int k = 0, nk = tick_count(ax); k <= nk; k++) {
        double v = ax->lo + k * ax->step;
        double x = map(ax, v, X0, X1);
        fprintf(out, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"" C_GRID "\"/>\n",
                x, (int)y0, x, (int)y1);
        if (labels) {
            char buf[64];
            snprintf(buf, sizeof buf, "%.*f", ax->decimals, v);
            text(out, x, y1 + 16, "middle", 11, "", buf);
        }
    }
}

static void y_grid(FILE *out, const axis *ay, double y0, double y1)
{
    for (int k = 0, nk = tick_count(ay); k <= nk; k++) {
        double v = ay->lo + k * ay->step;
        double y = map(ay, v, y1, y0);
        fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"" C_GRID "\"/>\n",
                X0, y, X1, y);
        char buf[64];
        snprintf(buf, sizeof buf, "%.*f", ay->decimals, v);
        text(out, X0 - 6, y + 4, "end", 11, "", buf);
    }
}

static void frame(FILE *out, double y0, double y1)
{
    fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
                 "stroke=\"" C_AXIS "\"/>\n", X0, (int)y0, X1 - X0, (int)(y1 - y0));
}

static void y_label(FILE *out, double y0, double y1, const char *s)
{
    double yc = (y0 + y1) / 2;
    fprintf(out, "<text x=\"22\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\" "
                 "transform=\"rotate(-90 22 %.1f)\">%s</text>\n", yc, yc, s);
}

typedef uint64_t (*field_fn)(const gct_cycle *);
static uint64_t f_goal(const gct_cycle *c) { return c->goal_mb; }
static uint64_t f_h0(const gct_cycle *c) { return c->heap0_mb; }
static uint64_t f_h1(const gct_cycle *c) { return c->heap1_mb; }
static uint64_t f_h2(const gct_cycle *c) { return c->heap2_mb; }

static void series(FILE *out, const gct_cycle *c, size_t n, const axis *ax,
                   const axis *ay, field_fn f, const char *colour, double width,
                   const char *dash)
{
    fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\"%s%s%s "
                 "stroke-linejoin=\"round\" points=\"", colour, width,
            dash ? " stroke-dasharray=\"" : "", dash ? dash : "", dash ? "\"" : "");
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%.1f,%.1f", i ? " " : "", map(ax, c[i].t_s, X0, X1),
                map(ay, (double)f(&c[i]), HEAP_Y1, HEAP_Y0));
    fputs("\"/>\n", out);
}

static void legend_item(FILE *out, double *x, const char *colour, const char *dash,
                        double width, bool bar, const char *label)
{
    if (bar)
        fprintf(out, "<rect x=\"%.1f\" y=\"72\" width=\"14\" height=\"10\" fill=\"%s\"/>\n",
                *x, colour);
    else
        fprintf(out, "<line x1=\"%.1f\" y1=\"77\" x2=\"%.1f\" y2=\"77\" stroke=\"%s\" "
                     "stroke-width=\"%.1f\"%s%s%s/>\n", *x, *x + 24, colour, width,
                dash ? " stroke-dasharray=\"" : "", dash ? dash : "", dash ? "\"" : "");
    text(out, *x + (bar ? 19 : 29), 81, "start", 12, "", label);
    /* Labels are short ASCII: about 6.5 px per character at 12 px. */
    size_t len = 0;
    while (label[len])
        len++;
    *x += (bar ? 19 : 29) + 6.5 * (double)len + 18;
}

int gct_write_svg(FILE *out, const gct_cycle *c, size_t n, const gct_summary *s,
                  const char *title)
{
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                 "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" fill=\"" C_AXIS "\">\n"
                 "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            W, H, W, H);
    text(out, W / 2.0, 30, "middle", 18, " font-weight=\"bold\"", title);
    char buf[256];
    if (n == 0) {
        text(out, W / 2.0, H / 2.0, "middle", 16, "", "no gctrace cycles in the input");
        fputs("</svg>\n", out);
        return ferror(out) ? -1 : 0;
    }
    snprintf(buf, sizeof buf,
             "%zu cycles over %.3f s, GC CPU %llu%%, pause p50 %.3g ms, max %.3g ms "
             "(rule %s), forced %zu",
             n, s->span_s, (unsigned long long)s->cpu_pct, s->pause.p50, s->pause.max,
             gct_stw_name(s->rule), s->forced);
    text(out, W / 2.0, 52, "middle", 13, "", buf);

    double x = X0;
    legend_item(out, &x, C_GOAL, "6,4", 1.5, false, "goal");
    legend_item(out, &x, C_H0, NULL, 1.5, false, "heap at start (H0)");
    legend_item(out, &x, C_H1, "2,3", 1.5, false, "at mark end (H1)");
    legend_item(out, &x, C_LIVE, NULL, 2.5, false, "live (H2)");
    /* A trend through a handful of cycles would only mislead: it is drawn
     * when the verdict could judge one. */
    bool trend = s->verdict != GCT_VERDICT_TOO_FEW;
    snprintf(buf, sizeof buf, "live trend %+.1f MiB/min", s->trend.slope);
    if (trend)
        legend_item(out, &x, C_LIVE, "3,3", 1, false, buf);
    legend_item(out, &x, C_PAUSE, NULL, 0, true, "pause");
    legend_item(out, &x, C_FORCED, NULL, 0, true, "forced");

    double hmax = 0;
    for (size_t i = 0; i < n; i++) {
        double v[] = {(double)c[i].goal_mb, (double)c[i].heap0_mb,
                      (double)c[i].heap1_mb, (double)c[i].heap2_mb};
        for (size_t k = 0; k < 4; k++)
            hmax = v[k] > hmax ? v[k] : hmax;
    }
    axis ax = make_axis(c[0].t_s, c[n - 1].t_s, 10, false);
    axis ay = make_axis(0, hmax * 1.05, 6, true);

    /* Heap panel. */
    x_grid(out, &ax, HEAP_Y0, HEAP_Y1, false);
    y_grid(out, &ay, HEAP_Y0, HEAP_Y1);
    series(out, c, n, &ax, &ay, f_goal, C_GOAL, 1.5, "6,4");
    series(out, c, n, &ax, &ay, f_h0, C_H0, 1.5, NULL);
    series(out, c, n, &ax, &ay, f_h1, C_H1, 1.5, "2,3");
    series(out, c, n, &ax, &ay, f_h2, C_LIVE, 2.5, NULL);
    if (n <= 200)
        for (size_t i = 0; i < n; i++)
            fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"" C_LIVE "\"/>\n",
                    map(&ax, c[i].t_s, X0, X1),
                    map(&ay, (double)c[i].heap2_mb, HEAP_Y1, HEAP_Y0));
    /* The trend line, over the cycles' time range, ends kept inside the
     * panel. */
    if (trend) {
        double m0 = s->trend.intercept;
        double m1 = s->trend.intercept + s->trend.slope * s->span_s / 60.0;
        double y0 = fmax(HEAP_Y0, fmin(HEAP_Y1, map(&ay, m0, HEAP_Y1, HEAP_Y0)));
        double y1 = fmax(HEAP_Y0, fmin(HEAP_Y1, map(&ay, m1, HEAP_Y1, HEAP_Y0)));
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                     "stroke=\"" C_LIVE "\" stroke-width=\"1\" stroke-dasharray=\"3,3\"/>\n",
                map(&ax, c[0].t_s, X0, X1), y0, map(&ax, c[n - 1].t_s, X0, X1), y1);
    }
    frame(out, HEAP_Y0, HEAP_Y1);
    y_label(out, HEAP_Y0, HEAP_Y1, "heap (MiB)");
    snprintf(buf, sizeof buf, "verdict: %s", gct_verdict_text(s->verdict));
    text(out, X0 + 8, HEAP_Y0 + 18, "start", 13, " font-style=\"italic\"", buf);

    /* Pause panel: bars up from the baseline, at least 1 px wide, forced
     * cycles drawn last so a neighbour never hides them.  One long pause
     * would flatten every other bar, so when the longest is over five
     * times the p90 the scale stops near three times the p90: taller bars
     * are clipped, marked with a triangle, and the clipping is stated. */
    double top = s->pause.max;
    bool clip = s->pause.p90 > 0 && s->pause.max > 5 * s->pause.p90;
    if (clip)
        top = 3 * s->pause.p90;
    axis ap = make_axis(0, top * 1.1, 3, true);
    x_grid(out, &ax, PAUSE_Y0, PAUSE_Y1, true);
    y_grid(out, &ap, PAUSE_Y0, PAUSE_Y1);
    double bw = (X1 - X0) / (double)n * 0.7;
    bw = bw < 1 ? 1 : bw > 10 ? 10 : bw;
    size_t clipped = 0;
    for (int forced = 0; forced <= 1; forced++) {
        for (size_t i = 0; i < n; i++) {
            if (c[i].forced != (forced == 1))
                continue;
            double p = gct_pause_ms(&c[i], s->rule);
            double bx = map(&ax, c[i].t_s, X0, X1);
            double y = map(&ap, p, PAUSE_Y1, PAUSE_Y0);
            if (y < PAUSE_Y0) {
                y = PAUSE_Y0;
                clipped++;
                fprintf(out, "<polygon points=\"%.1f,%d %.1f,%d %.1f,%d\" fill=\"" C_AXIS "\"/>\n",
                        bx - 4, PAUSE_Y0 - 2, bx + 4, PAUSE_Y0 - 2, bx, PAUSE_Y0 - 9);
            }
            double h = PAUSE_Y1 - y;
            fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                         "fill=\"%s\"><title>gc %llu: %.3g ms</title></rect>\n",
                    bx - bw / 2, y, bw, h < 0.5 ? 0.5 : h, forced ? C_FORCED : C_PAUSE,
                    (unsigned long long)c[i].n, p);
        }
    }
    if (clipped > 0) {
        snprintf(buf, sizeof buf, "%zu pause%s above %.3g ms clipped (longest %.3g ms, gc %llu)",
                 clipped, clipped == 1 ? "" : "s", ap.hi, s->pause.max,
                 (unsigned long long)s->pause_max_n);
        text(out, X1, PAUSE_Y0 - 12, "end", 12, "", buf);
    }
    frame(out, PAUSE_Y0, PAUSE_Y1);
    y_label(out, PAUSE_Y0, PAUSE_Y1, "pause (ms)");
    text(out, (X0 + X1) / 2.0, PAUSE_Y1 + 40, "middle", 13, "",
         "time since program start (s)");
    fputs("</svg>\n", out);
    return ferror(out) ? -1 : 0;
}
