/*
 * request.c — the server's work for one request: receive the bytes, parse
 * the request line, query and headers, look the session up, build a JSON
 * response, send it.  Written once; every allocation goes through mem.h,
 * so each build runs this same code on its own strategy (sim.h).
 *
 * The request texts come from templates generated at start-up with plain
 * malloc (the "network" is not part of any strategy): 1,024 per worker,
 * GET and POST, 5-14 headers, 0-6 query parameters, bodies up to 1.5 KB,
 * into which each request patches its session cookie.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "mem.h"

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

size_t demo_fmt_u64(char *dst, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        dst[i] = tmp[n - 1 - i];
    return n;
}

/* --- the network: request texts ------------------------------------------------ */

static const char *const paths[] = {
    "/api/v1/items/%u", "/api/v1/users/%u/orders", "/static/img/%u.png", "/search",
    "/api/v1/cart",     "/api/v1/items/%u/reviews", "/account/settings",  "/healthz",
};
static const char *const header_names[] = {
    "Accept-Language", "Accept-Encoding", "Cache-Control",  "X-Forwarded-For",
    "Referer",         "X-Trace-Id",      "If-None-Match",  "Connection",
    "Pragma",          "DNT",             "X-Client-Version", "Sec-Fetch-Mode",
};
static const char *const param_names[] = {
    "q", "page", "sort", "lang", "limit", "filter", "ref", "color",
};
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static size_t random_text(char *dst, uint64_t *s, size_t n, int url)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rnd(s);
        if (url && r % 11 == 0) {
            memcpy(dst + k, "%20", 3); /* an encoded space, decoded by the parser */
            k += 3;
        } else if (url && r % 13 == 0) {
            dst[k++] = '+';
        } else {
            dst[k++] = alnum[(r >> 8) % (sizeof alnum - 1)];
        }
    }
    return k;
}

int demo_make_templates(struct worker *w)
{
    uint64_t s = 0x9e3779b97f4a7c15ull * (uint64_t)(w->id + 1);
    char t[8192];
    for (int k = 0; k < DEMO_TEMPLATES; k++) {
        size_t n = 0;
        int post = rnd(&s) % 4 == 0;
        char path[64];
        snprintf(path, sizeof path, paths[rnd(&s) % LEN(paths)], (unsigned)(rnd(&s) % 100000));
        n += (size_t)snprintf(t + n, sizeof t - n, "%s %s", post ? "POST" : "GET", path);
        int nparams = (int)(rnd(&s) % 7);
        for (int i = 0; i < nparams; i++) {
            n += (size_t)snprintf(t + n, sizeof t - n, "%c%s=", i == 0 ? '?' : '&',
                                  param_names[rnd(&s) % LEN(param_names)]);
            n += random_text(t + n, &s, 2 + rnd(&s) % 14, 1);
        }
        n += (size_t)snprintf(t + n, sizeof t - n,
                              " HTTP/1.1\r\nHost: shop.example.com\r\n"
                              "User-Agent: Mozilla/5.0 (X11; Linux x86_64) demo/1.0\r\n"
                              "Accept: application/json\r\nCookie: theme=dark; session=");
        w->sid_offset[k] = n;
        n += (size_t)snprintf(t + n, sizeof t - n, "0000000000000000\r\nX-Request-Id: ");
        n += random_text(t + n, &s, 16, 0);
        n += (size_t)snprintf(t + n, sizeof t - n, "\r\n");
        int extra = 1 + (int)(rnd(&s) % 10);
        for (int i = 0; i < extra; i++) {
            n += (size_t)snprintf(t + n, sizeof t - n, "%s:  ",
                                  header_names[rnd(&s) % LEN(header_names)]);
            n += random_text(t + n, &s, 8 + rnd(&s) % 90, 0);
            n += (size_t)snprintf(t + n, sizeof t - n, " \r\n");
        }
        size_t body = post ? 100 + rnd(&s) % 1400 : 0;
        if (post)
            n += (size_t)snprintf(t + n, sizeof t - n, "Content-Length: %zu\r\n", body);
        n += (size_t)snprintf(t + n, sizeof t - n, "\r\n");
        n += random_text(t + n, &s, body, 0);
        w->templates[k] = malloc(n + 1);
        if (w->templates[k] == NULL)
            return -1;
        memcpy(w->templates[k], t, n);
        w->templates[k][n] = '\0';
        w->template_len[k] = n;
    }
    return 0;
}

void demo_free_templates(struct worker *w)
{
    for (int k = 0; k < DEMO_TEMPLATES; k++) {
        free(w->templates[k]);
        w->templates[k] = NULL;
    }
}

const char *demo_next_request(struct worker *w, size_t *len)
{
    uint64_t r = rnd(&w->rng);
    int k = (int)(r % DEMO_TEMPLATES);
    /* 90% of requests come from a hot set of sessions, the rest from a
     * long tail that keeps the cache evicting. */
    r = rnd(&w->rng);
    uint64_t sid = r % 10 != 0 ? 1 + (r >> 8) % DEMO_HOT_SESSIONS
                               : 1000000 + (r >> 8) % 1000000000;
    char *p = w->templates[k] + w->sid_offset[k];
    for (int i = 15; i >= 0; i--, sid >>= 4)
        p[i] = "0123456789abcdef"[sid & 15];
    *len = w->template_len[k];
    return w->templates[k];
}

/* --- parsing -------------------------------------------------------------------- */

/* dst = a copy of s[0..n) for the request, NUL-terminated.  A macro, so
 * that the allocation is the parsing function's own (sim.h). */
#define REQ_COPY(w, dst, s, n)                                                  \
    do {                                                                        \
        size_t n_ = (n);                                                        \
        (dst) = MEM_REQ_BYTES(w, n_ + 1);                                       \
        if ((dst) != NULL) {                                                    \
            memcpy((dst), (s), n_);                                             \
            (dst)[n_] = '\0';                                                   \
        }                                                                       \
    } while (0)

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent- and plus-decodes s[0..n) into dst (room for n + 1). */
static void url_decode(char *dst, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            dst[k++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            dst[k++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    dst[k] = '\0';
}

static int parse_query(struct worker *w, struct request *r, const char *q, size_t n)
{
    struct field **tail = &r->params;
    size_t i = 0;
    while (i < n) {
        size_t end = i;
        while (end < n && q[end] != '&')
            end++;
        size_t eq = i;
        while (eq < end && q[eq] != '=')
            eq++;
        struct field *f = MEM_REQ_NEW(w, field);
        if (f == NULL)
            return -1;
        *tail = f;
        tail = &f->next;
        f->name = MEM_REQ_BYTES(w, eq - i + 1);
        size_t vlen = eq < end ? end - eq - 1 : 0;
        f->value = MEM_REQ_BYTES(w, vlen + 1);
        if (f->name == NULL || f->value == NULL)
            return -1;
        url_decode(f->name, q + i, eq - i);
        url_decode(f->value, q + eq + (eq < end), vlen);
        r->nparams++;
        i = end + 1;
    }
    return 0;
}

/* "METHOD target HTTP/1.1\r\n"; returns the offset after it, or 0. */
static size_t parse_request_line(struct worker *w, struct request *r)
{
    const char *b = r->buf;
    const char *sp1 = memchr(b, ' ', r->len);
    if (sp1 == NULL)
        return 0;
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', r->len - (size_t)(target - b));
    const char *eol = strstr(target, "\r\n");
    if (sp2 == NULL || eol == NULL || sp2 > eol)
        return 0;
    REQ_COPY(w, r->method, b, (size_t)(sp1 - b));
    const char *q = memchr(target, '?', (size_t)(sp2 - target));
    const char *path_end = q != NULL ? q : sp2;
    REQ_COPY(w, r->path, target, (size_t)(path_end - target));
    if (r->method == NULL || r->path == NULL)
        return 0;
    if (q != NULL && parse_query(w, r, q + 1, (size_t)(sp2 - q - 1)) != 0)
        return 0;
    return (size_t)(eol + 2 - b);
}

static uint64_t parse_session_cookie(const char *v)
{
    const char *p = strstr(v, "session=");
    uint64_t id = 0;
    if (p == NULL)
        return 0;
    for (p += 8; hexval(*p) >= 0; p++)
        id = id * 16 + (uint64_t)hexval(*p);
    return id;
}

/* Header lines up to the blank line; returns the offset of the body, or 0. */
static size_t parse_headers(struct worker *w, struct request *r, size_t at)
{
    struct field **tail = &r->headers;
    size_t content_length = 0;
    for (;;) {
        const char *line = r->buf + at;
        const char *eol = strstr(line, "\r\n");
        if (eol == NULL)
            return 0;
        if (eol == line)
            break; /* the blank line */
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon == NULL)
            return 0;
        const char *v = colon + 1, *vend = eol;
        while (v < vend && (*v == ' ' || *v == '\t'))
            v++;
        while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;
        struct field *f = MEM_REQ_NEW(w, field);
        if (f == NULL)
            return 0;
        *tail = f;
        tail = &f->next;
        REQ_COPY(w, f->name, line, (size_t)(colon - line));
        REQ_COPY(w, f->value, v, (size_t)(vend - v));
        if (f->name == NULL || f->value == NULL)
            return 0;
        for (char *c = f->name; *c != '\0'; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        if (strcmp(f->name, "cookie") == 0)
            r->session_id = parse_session_cookie(f->value);
        else if (strcmp(f->name, "content-length") == 0)
            content_length = (size_t)strtoull(f->value, NULL, 10);
        else if (strcmp(f->name, "x-request-id") == 0)
            r->request_id = f->value;
        r->nheaders++;
        at = (size_t)(eol + 2 - r->buf);
    }
    at += 2;
    r->body = r->buf + at;
    r->body_len = content_length < r->len - at ? content_length : r->len - at;
    return at;
}

/* --- the response ------------------------------------------------------------------ */

static int resp_reserve(struct worker *w, struct request *r, size_t more)
{
    size_t need = r->response_len + more;
    if (need <= r->response_cap)
        return 0;
    size_t cap = r->response_cap * 2;
    if (cap < need)
        cap = need;
    char *p = r->response == NULL ? MEM_REQ_BYTES(w, cap)
                                  : MEM_REQ_GROW(w, r->response, r->response_len, cap);
    if (p == NULL)
        return -1;
    r->response = p;
    r->response_cap = cap;
    return 0;
}

static int resp_put(struct worker *w, struct request *r, const char *s, size_t n)
{
    if (resp_reserve(w, r, n) != 0)
        return -1;
    memcpy(r->response + r->response_len, s, n);
    r->response_len += n;
    return 0;
}

static int resp_str(struct worker *w, struct request *r, const char *s)
{
    return resp_put(w, r, s, strlen(s));
}

static int resp_u64(struct worker *w, struct request *r, uint64_t v)
{
    char d[20];
    return resp_put(w, r, d, demo_fmt_u64(d, v));
}

/* s as a JSON string, quoted and escaped. */
static int resp_json(struct worker *w, struct request *r, const char *s)
{
    if (resp_reserve(w, r, 2 * strlen(s) + 2) != 0)
        return -1;
    char *o = r->response + r->response_len;
    *o++ = '"';
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            *o++ = '\\';
        *o++ = (unsigned char)*s < 0x20 ? ' ' : *s;
    }
    *o++ = '"';
    r->response_len = (size_t)(o - r->response);
    return 0;
}

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    return h;
}

static int build_response(struct worker *w, struct request *r, struct session *s, int is_new)
{
    int e = 0;
    r->response_cap = 0;
    e |= resp_reserve(w, r, 256);
    e |= resp_str(w, r, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n");
    if (r->request_id != NULL) {
        e |= resp_str(w, r, "X-Request-Id: ");
        e |= resp_str(w, r, r->request_id);
        e |= resp_str(w, r, "\r\n");
    }
    if (is_new)
        e |= resp_str(w, r, "Set-Cookie: session=renewed; HttpOnly\r\n");
    e |= resp_str(w, r, "\r\n{\"user\":");
    e |= resp_json(w, r, s->user);
    e |= resp_str(w, r, ",\"visits\":");
    e |= resp_u64(w, r, s->visits + 1);
    e |= resp_str(w, r, ",\"previous\":");
    e |= resp_json(w, r, s->last_path != NULL ? s->last_path : "");
    e |= resp_str(w, r, ",\"path\":");
    e |= resp_json(w, r, r->path);
    e |= resp_str(w, r, ",\"params\":{");
    for (const struct field *f = r->params; f != NULL && e == 0; f = f->next) {
        e |= resp_json(w, r, f->name);
        e |= resp_str(w, r, ":");
        e |= resp_json(w, r, f->value);
        if (f->next != NULL)
            e |= resp_str(w, r, ",");
    }
    e |= resp_str(w, r, "},\"headers\":");
    e |= resp_u64(w, r, (uint64_t)r->nheaders);
    e |= resp_str(w, r, ",\"body_bytes\":");
    e |= resp_u64(w, r, r->body_len);
    e |= resp_str(w, r, ",\"items\":[");
    uint64_t h = fnv1a(r->path, strlen(r->path));
    int items = 5 + (int)(h % 40);
    for (int i = 0; i < items && e == 0; i++) {
        uint64_t id = (h >> 8) % 100000 + (uint64_t)i;
        e |= resp_str(w, r, i == 0 ? "{\"id\":" : ",{\"id\":");
        e |= resp_u64(w, r, id);
        e |= resp_str(w, r, ",\"name\":\"item-");
        e |= resp_u64(w, r, id);
        e |= resp_str(w, r, "\",\"price\":");
        e |= resp_u64(w, r, id % 1000);
        e |= resp_str(w, r, ".");
        e |= resp_u64(w, r, 10 + id % 90);
        e |= resp_str(w, r, "}");
    }
    e |= resp_str(w, r, "]}\n");
    return e != 0 ? -1 : 0;
}

/* --- one request ------------------------------------------------------------------ */

static struct request *receive(struct worker *w, const char *text, size_t len)
{
    struct request *r = MEM_REQ_NEW(w, request);
    if (r == NULL)
        return NULL;
    r->buf = MEM_REQ_BYTES(w, len + 1);
    if (r->buf == NULL)
        return r;
    memcpy(r->buf, text, len); /* what read(2) would do */
    r->buf[len] = '\0';
    r->len = len;
    return r;
}

int demo_handle_request(struct worker *w, uint64_t n, const char *text, size_t len)
{
    struct request *r = receive(w, text, len);
    if (r == NULL)
        return -1;
    int rc = -1;
    size_t at;
    if (r->buf != NULL && (at = parse_request_line(w, r)) != 0 && parse_headers(w, r, at) != 0) {
        int is_new = 0;
        struct session *s = demo_session_get(w, r->session_id, &is_new);
        if (s != NULL && build_response(w, r, s, is_new) == 0 &&
            demo_session_touch(w, s, n, r->path) == 0) {
            /* "send": the response's hash stands for the bytes on the wire */
            w->checksum += fnv1a(r->response, r->response_len);
            rc = 0;
        }
    }
    demo_strategy_end_request(w, r);
    w->requests++;
    return rc;
}

/* --- releasing, for the strategies that give memory back object by object ----------- */

#if MEM_REQ_FREE_EACH
static void free_fields(struct worker *w, struct field *f)
{
    while (f != NULL) {
        struct field *next = f->next;
        MEM_REQ_FREE_BYTES(w, f->name);
        MEM_REQ_FREE_BYTES(w, f->value);
        MEM_REQ_FREE(w, field, f);
        f = next;
    }
}

void demo_request_free(struct worker *w, struct request *r)
{
    if (r == NULL)
        return;
    free_fields(w, r->params);
    free_fields(w, r->headers);
    MEM_REQ_FREE_BYTES(w, r->buf);
    MEM_REQ_FREE_BYTES(w, r->method);
    MEM_REQ_FREE_BYTES(w, r->path);
    MEM_REQ_FREE_BYTES(w, r->response);
    MEM_REQ_FREE(w, request, r);
}
#else
/* Nothing to walk: the collector or the arena's reset takes it all. */
void demo_request_free(struct worker *w, struct request *r)
{
    (void)w;
    (void)r;
}
#endif
