/*
 * loadgen: a Modbus load generator for the trio_modbus benchmarks.
 *
 * One thread, epoll, non-blocking sockets: cheap enough that a pure-Python server on the
 * other core is the bottleneck (its own CPU time is reported, from getrusage).
 *
 * Modes (the first argument):
 *   tcp    N connections, D requests in flight on each, for --warmup + --duration seconds.
 *   idle   open N connections, get one answer on each, print a "ready" JSON line, hold them
 *          until standard input reaches EOF (or --hold seconds pass).
 *   burst  open N connections at once, one request on each; time until all are answered.
 *   rtu    one request at a time over a serial device (a pty), RTU framing with CRC.
 *
 * Every reply is validated against the request it must answer: the MBAP transaction id is
 * the one of the oldest outstanding request of that connection, protocol id 0, the length
 * field, the unit id, the function code and the whole rest of the PDU (byte count, register
 * values, echoed address and quantity) are what the datastore layout of bench/bench_common.py
 * gives. Anything else is counted as an error, by kind. Results are one JSON object on
 * standard output; "measure" and "end" lines on standard error mark the measured window.
 *
 * Build: gcc -O2 -o loadgen loadgen.c   (bench/run.py does it)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEPTH 64
#define IN_BUF 4096  /* >= 8 replies of the longest (259 bytes) */
#define OUT_BUF 2048 /* >= 8 requests of the longest (213 bytes) */
#define UNIT 1
#define HIST_FINE 100000 /* 1 us buckets below 100 ms */
#define HIST_COARSE 100000 /* then 1 ms buckets up to 100 s */
#define MAX_EVENTS 4096

/* The datastore layout, as bench/bench_common.py: register a holds value(a). */
static uint16_t value(int address) { return (uint16_t)((address * 31 + 7) & 0xFFFF); }

/* ---------------------------------------------------------------- time, errors, output */

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static long nofile_limit(void) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    return (long)rl.rlim_cur;
}

/* ---------------------------------------------------------------- latency histogram */

static uint32_t hist[HIST_FINE + HIST_COARSE];
static uint64_t hist_n;
static double hist_sum_us;
static double hist_max_us;

static void hist_add(int64_t ns) {
    int64_t us = ns / 1000;
    size_t i;
    if (us < 0) us = 0;
    if (us < HIST_FINE) {
        i = (size_t)us;
    } else {
        int64_t ms = (us - HIST_FINE) / 1000;
        i = HIST_FINE + (size_t)(ms < HIST_COARSE ? ms : HIST_COARSE - 1);
    }
    hist[i]++;
    hist_n++;
    hist_sum_us += ns / 1000.0;
    if (ns / 1000.0 > hist_max_us) hist_max_us = ns / 1000.0;
}

/* The value below which a fraction q of the samples lie (bucket middle, microseconds). */
static double hist_quantile(double q) {
    if (hist_n == 0) return 0.0;
    uint64_t rank = (uint64_t)ceil(q * (double)hist_n);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_FINE + HIST_COARSE; i++) {
        seen += hist[i];
        if (seen >= rank) {
            if (i < HIST_FINE) return (double)i + 0.5;
            return HIST_FINE + (double)(i - HIST_FINE) * 1000.0 + 500.0;
        }
    }
    return hist_max_us;
}

/* ---------------------------------------------------------------- requests and replies */

typedef struct {
    const char *name;
    uint8_t req[260]; /* MBAP request, transaction id bytes 0-1 patched per request */
    int req_len;
    uint8_t resp[260]; /* the exact reply expected, transaction id aside */
    int resp_len;
    uint8_t function;
} op_t;

static op_t op;

static int put16(uint8_t *p, int v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return 2;
}

static int put_values(uint8_t *p, int address, int count) {
    for (int i = 0; i < count; i++) put16(p + 2 * i, value(address + i));
    return 2 * count;
}

/* Wrap a PDU in an MBAP header (transaction id 0 for now). */
static int mbap(uint8_t *out, const uint8_t *pdu, int pdu_len) {
    put16(out, 0);
    put16(out + 2, 0);
    put16(out + 4, pdu_len + 1);
    out[6] = UNIT;
    memcpy(out + 7, pdu, (size_t)pdu_len);
    return 7 + pdu_len;
}

static void make_op(const char *name) {
    uint8_t q[256], r[256];
    int n = 0, m = 0;
    op.name = name;
    if (strcmp(name, "read10") == 0 || strcmp(name, "read125") == 0) {
        int count = strcmp(name, "read10") == 0 ? 10 : 125;
        q[n++] = 0x03;
        n += put16(q + n, 0);
        n += put16(q + n, count);
        r[m++] = 0x03;
        r[m++] = (uint8_t)(2 * count);
        m += put_values(r + m, 0, count);
    } else if (strcmp(name, "write100") == 0) {
        q[n++] = 0x10;
        n += put16(q + n, 1000);
        n += put16(q + n, 100);
        q[n++] = 200;
        n += put_values(q + n, 1000, 100); /* the values already there: reads stay valid */
        r[m++] = 0x10;
        m += put16(r + m, 1000);
        m += put16(r + m, 100);
    } else if (strcmp(name, "rw") == 0) {
        q[n++] = 0x17;
        n += put16(q + n, 0); /* read 10 at 0 */
        n += put16(q + n, 10);
        n += put16(q + n, 1200); /* write 10 at 1200 */
        n += put16(q + n, 10);
        q[n++] = 20;
        n += put_values(q + n, 1200, 10);
        r[m++] = 0x17;
        r[m++] = 20;
        m += put_values(r + m, 0, 10);
    } else {
        die("unknown --op %s (read10, read125, write100, rw)", name);
    }
    op.function = q[0];
    op.req_len = mbap(op.req, q, n);
    op.resp_len = mbap(op.resp, r, m);
}

/* ---------------------------------------------------------------- counters */

static struct {
    uint64_t ok, ok_window, bad_tid, bad_header, bad_function, bad_body, lost, timeouts,
        timeouts_window, disconnects, connect_failed;
} st;

static uint64_t errors_total(void) {
    return st.bad_tid + st.bad_header + st.bad_function + st.bad_body + st.lost +
           st.disconnects + st.connect_failed;
}

static void print_counters(FILE *f) {
    fprintf(f,
            "\"errors\": %llu, \"timeouts\": %llu, \"error_kinds\": {\"bad_tid\": %llu, "
            "\"bad_header\": %llu, \"bad_function\": %llu, \"bad_body\": %llu, \"lost\": %llu, "
            "\"disconnects\": %llu, \"connect_failed\": %llu}",
            (unsigned long long)errors_total(), (unsigned long long)st.timeouts,
            (unsigned long long)st.bad_tid, (unsigned long long)st.bad_header,
            (unsigned long long)st.bad_function, (unsigned long long)st.bad_body,
            (unsigned long long)st.lost, (unsigned long long)st.disconnects,
            (unsigned long long)st.connect_failed);
}

/* ---------------------------------------------------------------- connections */

enum { C_CONNECTING, C_OPEN, C_DEAD };

typedef struct {
    int fd;
    int state;
    int want_out; /* EPOLLOUT registered */
    uint16_t next_tid;
    int head, count; /* ring of outstanding requests */
    uint16_t q_tid[MAX_DEPTH];
    int64_t q_sent[MAX_DEPTH];
    int in_len, out_off, out_len;
    int answered;
    uint8_t in[IN_BUF];
    uint8_t out[OUT_BUF];
} conn_t;

static conn_t *conns;
static int n_conns;
static int depth = 1;
static int epfd;
static struct sockaddr_in server_addr;
static int in_window; /* replies now count towards rps and latency */
static int sending = 1; /* top connections up after each reply */

static void set_events(conn_t *c, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void close_conn(conn_t *c) {
    if (c->fd >= 0) {
        /* Reset instead of FIN: no TIME_WAIT, so tens of thousands of runs' worth of
           connections do not exhaust the ephemeral ports. */
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(c->fd);
        c->fd = -1;
    }
}

static void kill_conn(conn_t *c) {
    if (c->state == C_DEAD) return;
    st.disconnects++;
    st.lost += (uint64_t)c->count;
    c->count = 0;
    c->state = C_DEAD;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close_conn(c);
}

static void start_connect(conn_t *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket: %s (raise ulimit -n; limit %ld)", strerror(errno), nofile_limit());
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->state = C_CONNECTING;
    c->want_out = 1;
    int rc = connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr);
    if (rc < 0 && errno != EINPROGRESS) {
        st.connect_failed++;
        c->state = C_DEAD;
        close_conn(c);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Finish a non-blocking connect; 1 when the connection is open. */
static int finish_connect(conn_t *c) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
        st.connect_failed++;
        c->state = C_DEAD;
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close_conn(c);
        return 0;
    }
    c->state = C_OPEN;
    return 1;
}

static void flush_out(conn_t *c) {
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, (size_t)(c->out_len - c->out_off),
                         MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) break;
            kill_conn(c);
            return;
        }
        c->out_off += (int)n;
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        if (c->want_out) {
            c->want_out = 0;
            set_events(c, EPOLLIN);
        }
    } else if (!c->want_out) {
        c->want_out = 1;
        set_events(c, EPOLLIN | EPOLLOUT);
    }
}

/* Queue requests until `target` are outstanding, then send them in one write. */
static void top_up(conn_t *c, int target, int64_t now) {
    if (c->state != C_OPEN || c->count >= target) return;
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, (size_t)(c->out_len - c->out_off));
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    while (c->count < target && c->out_len + op.req_len <= OUT_BUF) {
        uint16_t tid = c->next_tid++;
        uint8_t *p = c->out + c->out_len;
        memcpy(p, op.req, (size_t)op.req_len);
        put16(p, tid);
        c->out_len += op.req_len;
        int slot = (c->head + c->count) % MAX_DEPTH;
        c->q_tid[slot] = tid;
        c->q_sent[slot] = now;
        c->count++;
    }
    flush_out(c);
}

/* Check one complete frame against the oldest outstanding request; 1 if it answers one. */
static int check_reply(conn_t *c, const uint8_t *f, int len, int64_t now) {
    uint16_t tid = (uint16_t)(f[0] << 8 | f[1]);
    if (c->count == 0) {
        st.bad_tid++; /* nothing outstanding: an answer to a timed-out request, or noise */
        return 0;
    }
    if (c->q_tid[c->head] != tid) {
        st.bad_tid++;
        /* Re-synchronise: a later request's answer means the earlier ones were dropped. */
        int k;
        for (k = 1; k < c->count; k++)
            if (c->q_tid[(c->head + k) % MAX_DEPTH] == tid) break;
        if (k == c->count) return 0;
        st.lost += (uint64_t)k;
        c->head = (c->head + k) % MAX_DEPTH;
        c->count -= k;
    }
    int64_t sent = c->q_sent[c->head];
    c->head = (c->head + 1) % MAX_DEPTH;
    c->count--;
    if (f[2] != 0 || f[3] != 0 || f[6] != UNIT) {
        st.bad_header++;
        return 1;
    }
    if (len < 8 || f[7] != op.function) {
        st.bad_function++; /* an exception response or another function */
        return 1;
    }
    if (len != op.resp_len || f[4] != op.resp[4] || f[5] != op.resp[5]) {
        st.bad_header++; /* length field */
        return 1;
    }
    if (memcmp(f + 8, op.resp + 8, (size_t)(len - 8)) != 0) {
        st.bad_body++; /* byte count, values, echoed address/quantity */
        return 1;
    }
    st.ok++;
    c->answered++;
    if (in_window) {
        st.ok_window++;
        hist_add(now - sent);
    }
    return 1;
}

/* Read what is there and check every complete frame; returns replies consumed. */
static int read_replies(conn_t *c, int64_t now) {
    ssize_t n = recv(c->fd, c->in + c->in_len, (size_t)(IN_BUF - c->in_len), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        kill_conn(c);
        return 0;
    }
    if (n < 0) return 0;
    c->in_len += (int)n;
    int pos = 0, replies = 0;
    while (c->in_len - pos >= 6) {
        int flen = c->in[pos + 4] << 8 | c->in[pos + 5];
        if (flen < 2 || flen > 254) { /* not MBAP any more: this stream is lost */
            st.bad_header++;
            kill_conn(c);
            return replies;
        }
        if (c->in_len - pos < 6 + flen) break;
        replies += check_reply(c, c->in + pos, 6 + flen, now);
        pos += 6 + flen;
    }
    if (pos > 0) {
        memmove(c->in, c->in + pos, (size_t)(c->in_len - pos));
        c->in_len -= pos;
    }
    return replies;
}

static void expire(int64_t now, int64_t timeout_ns) {
    for (int i = 0; i < n_conns; i++) {
        conn_t *c = &conns[i];
        if (c->state != C_OPEN) continue;
        int expired = 0;
        while (c->count > 0 && now - c->q_sent[c->head] > timeout_ns) {
            st.timeouts++;
            if (in_window) {
                st.timeouts_window++;
                hist_add(now - c->q_sent[c->head]); /* a lower bound of its latency */
            }
            c->head = (c->head + 1) % MAX_DEPTH;
            c->count--;
            expired = 1;
        }
        if (expired && sending) top_up(c, depth, now);
    }
}

static void open_all(int max_pending, double limit_s) {
    /* Open every connection, at most max_pending connects under way at once. */
    int next = 0, pending = 0, done = 0;
    struct epoll_event evs[MAX_EVENTS];
    int64_t deadline = now_ns() + (int64_t)(limit_s * 1e9);
    while (done < n_conns) {
        while (next < n_conns && pending < max_pending) {
            start_connect(&conns[next++]);
            if (conns[next - 1].state == C_DEAD)
                done++;
            else
                pending++;
        }
        int n = epoll_wait(epfd, evs, MAX_EVENTS, 100);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c->state != C_CONNECTING) continue;
            pending--;
            done++;
            if (finish_connect(c)) {
                c->want_out = 0;
                set_events(c, EPOLLIN);
            }
        }
        if (now_ns() > deadline) die("could not open %d connections in %.0f s", n_conns, limit_s);
    }
}

/* ---------------------------------------------------------------- modes */

typedef struct {
    const char *mode, *host, *op, *device;
    int port, conns, depth, baud, max_pending;
    double duration, warmup, timeout, hold;
} args_t;

static void tcp_setup(const args_t *a) {
    memset(&server_addr, 0, sizeof server_addr);
    server_addr.sin_family = AF_INET;
    server_addr.sin_port = htons((uint16_t)a->port);
    if (inet_pton(AF_INET, a->host, &server_addr.sin_addr) != 1) die("bad --host %s", a->host);
    if (a->port <= 0) die("--port is required");
    n_conns = a->conns;
    depth = a->depth;
    if (depth < 1 || depth > MAX_DEPTH) die("--depth must be 1..%d", MAX_DEPTH);
    if (n_conns + 16 > nofile_limit())
        die("%d connections need more file descriptors than ulimit -n (%ld)", n_conns,
            nofile_limit());
    conns = calloc((size_t)n_conns, sizeof *conns);
    if (!conns) die("out of memory");
    for (int i = 0; i < n_conns; i++) {
        conns[i].fd = -1;
        conns[i].next_tid = (uint16_t)(i * 7919); /* distinct ids across connections */
    }
    epfd = epoll_create1(0);
    make_op(a->op);
}

static int mode_tcp(const args_t *a) {
    tcp_setup(a);
    int64_t t_open = now_ns();
    open_all(a->max_pending, 60.0);
    double connect_s = (now_ns() - t_open) / 1e9;
    int64_t timeout_ns = (int64_t)(a->timeout * 1e9);
    struct epoll_event evs[MAX_EVENTS];
    int64_t start = now_ns();
    int64_t t_measure = start + (int64_t)(a->warmup * 1e9);
    int64_t t_end = t_measure + (int64_t)(a->duration * 1e9);
    int64_t last_expire = start;
    double cpu0 = 0, cpu1 = 0;
    int64_t w0 = 0, w1 = 0;
    for (int i = 0; i < n_conns; i++) top_up(&conns[i], depth, start);
    for (;;) {
        int n = epoll_wait(epfd, evs, MAX_EVENTS, 5);
        int64_t now = now_ns();
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c->state != C_OPEN) continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                if (read_replies(c, now) > 0) top_up(c, depth, now);
            }
            if (c->state == C_OPEN && (evs[i].events & EPOLLOUT)) flush_out(c);
        }
        if (!in_window && now >= t_measure && now < t_end) {
            in_window = 1;
            cpu0 = cpu_seconds();
            w0 = now;
            fprintf(stderr, "measure\n");
            fflush(stderr);
        }
        if (now >= t_end) {
            cpu1 = cpu_seconds();
            w1 = now;
            fprintf(stderr, "end\n");
            fflush(stderr);
            break;
        }
        if (now - last_expire > 10000000LL) {
            expire(now, timeout_ns);
            last_expire = now;
        }
    }
    double window = (w1 - w0) / 1e9;
    int open = 0;
    for (int i = 0; i < n_conns; i++) open += conns[i].state == C_OPEN;
    printf("{\"mode\": \"tcp\", \"op\": \"%s\", \"conns\": %d, \"open\": %d, \"depth\": %d, "
           "\"window_s\": %.4f, \"connect_s\": %.4f, \"requests\": %llu, \"ok_total\": %llu, "
           "\"rps\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"mean_us\": %.1f, "
           "\"max_us\": %.1f, \"timeouts_window\": %llu, \"cpu_s\": %.4f, "
           "\"cpu_frac\": %.4f, ",
           a->op, n_conns, open, depth, window, connect_s, (unsigned long long)st.ok_window,
           (unsigned long long)st.ok, window > 0 ? st.ok_window / window : 0.0,
           hist_quantile(0.50), hist_quantile(0.99), hist_n ? hist_sum_us / hist_n : 0.0,
           hist_max_us, (unsigned long long)st.timeouts_window, cpu1 - cpu0,
           window > 0 ? (cpu1 - cpu0) / window : 0.0);
    print_counters(stdout);
    printf("}\n");
    for (int i = 0; i < n_conns; i++) close_conn(&conns[i]);
    return 0;
}

/* Open connections and get one answer on each, max_pending at a time; burst: all at once. */
static int mode_answer_each(const args_t *a, int burst) {
    tcp_setup(a);
    struct epoll_event evs[MAX_EVENTS];
    int64_t t0 = now_ns();
    int64_t deadline = t0 + (int64_t)(a->timeout * 1e9);
    int max_pending = burst ? n_conns : a->max_pending;
    int next = 0, pending = 0, finished = 0, answered = 0;
    int64_t t_issued = 0;
    in_window = 1; /* for burst: the histogram holds each connection's time to its answer */
    while (finished < n_conns && now_ns() < deadline) {
        while (next < n_conns && pending < max_pending) {
            conn_t *c = &conns[next++];
            start_connect(c);
            if (c->state == C_DEAD)
                finished++;
            else
                pending++;
        }
        if (next == n_conns && t_issued == 0) t_issued = now_ns();
        int n = epoll_wait(epfd, evs, MAX_EVENTS, 50);
        int64_t now = now_ns();
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c->state == C_CONNECTING) {
                if (!finish_connect(c)) {
                    pending--;
                    finished++;
                    continue;
                }
                c->want_out = 0;
                set_events(c, EPOLLIN);
                top_up(c, 1, burst ? t0 : now); /* burst latency counts from the start */
                continue;
            }
            if (c->state != C_OPEN) continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                int before = c->answered;
                read_replies(c, now);
                if (before == 0 && (c->answered > 0 || c->state == C_DEAD)) {
                    pending--;
                    finished++;
                    answered += c->answered > 0;
                }
            }
            if (c->state == C_OPEN && (evs[i].events & EPOLLOUT)) flush_out(c);
        }
    }
    int64_t t_all = now_ns();
    /* Requests still unanswered at the deadline are timeouts. */
    for (int i = 0; i < n_conns; i++)
        if (conns[i].state == C_OPEN && conns[i].count > 0) st.timeouts += (uint64_t)conns[i].count;
    int open = 0;
    for (int i = 0; i < n_conns; i++) open += conns[i].state == C_OPEN;
    printf("{\"mode\": \"%s\", \"conns\": %d, \"answered\": %d, \"open\": %d, "
           "\"elapsed_ms\": %.3f, \"connects_issued_ms\": %.3f, \"p50_ms\": %.3f, "
           "\"p99_ms\": %.3f, \"max_ms\": %.3f, \"cpu_s\": %.4f, ",
           burst ? "burst" : "idle", n_conns, answered, open, (t_all - t0) / 1e6,
           t_issued ? (t_issued - t0) / 1e6 : 0.0, hist_quantile(0.5) / 1000.0,
           hist_quantile(0.99) / 1000.0, hist_max_us / 1000.0, cpu_seconds());
    print_counters(stdout);
    printf("}\n");
    fflush(stdout);
    if (!burst) {
        /* Hold the connections (the orchestrator reads the server's RSS now) until stdin
           closes or --hold passes. */
        struct pollfd p = {.fd = 0, .events = POLLIN};
        int64_t until = now_ns() + (int64_t)(a->hold * 1e9);
        char buf[256];
        while (now_ns() < until) {
            int r = poll(&p, 1, 100);
            if (r > 0 && read(0, buf, sizeof buf) <= 0) break;
        }
    }
    for (int i = 0; i < n_conns; i++) close_conn(&conns[i]);
    return 0;
}

/* ---------------------------------------------------------------- RTU over a serial line */

static uint16_t crc16(const uint8_t *p, int n) {
    uint16_t crc = 0xFFFF;
    for (int i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++) crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001) : crc >> 1;
    }
    return crc;
}

static speed_t baud_constant(int baud) {
    switch (baud) {
    case 9600: return B9600;
    case 19200: return B19200;
    case 38400: return B38400;
    case 57600: return B57600;
    case 115200: return B115200;
    case 230400: return B230400;
    default: die("unsupported --baud %d", baud);
    }
    return B0;
}

static int mode_rtu(const args_t *a) {
    if (!a->device) die("--device is required");
    int fd = open(a->device, O_RDWR | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) die("open %s: %s", a->device, strerror(errno));
    struct termios tio;
    if (tcgetattr(fd, &tio) == 0) {
        cfmakeraw(&tio);
        cfsetispeed(&tio, baud_constant(a->baud));
        cfsetospeed(&tio, baud_constant(a->baud));
        tio.c_cc[VMIN] = 0;
        tio.c_cc[VTIME] = 0;
        tcsetattr(fd, TCSANOW, &tio);
    }
    uint8_t req[8] = {UNIT, 0x03, 0, 0, 0, 10, 0, 0};
    uint16_t crc = crc16(req, 6);
    req[6] = (uint8_t)(crc & 0xFF);
    req[7] = (uint8_t)(crc >> 8);
    uint8_t expect[25] = {UNIT, 0x03, 20};
    put_values(expect + 3, 0, 10);
    crc = crc16(expect, 23);
    expect[23] = (uint8_t)(crc & 0xFF);
    expect[24] = (uint8_t)(crc >> 8);
    int64_t start = now_ns();
    int64_t t_measure = start + (int64_t)(a->warmup * 1e9);
    int64_t t_end = t_measure + (int64_t)(a->duration * 1e9);
    int64_t timeout_ns = (int64_t)(a->timeout * 1e9);
    double cpu0 = 0;
    int64_t w0 = 0, now = start;
    tcflush(fd, TCIOFLUSH);
    while ((now = now_ns()) < t_end) {
        if (!in_window && now >= t_measure) {
            in_window = 1;
            cpu0 = cpu_seconds();
            w0 = now;
            fprintf(stderr, "measure\n");
            fflush(stderr);
        }
        int64_t sent = now_ns();
        if (write(fd, req, sizeof req) != (ssize_t)sizeof req) die("write: %s", strerror(errno));
        uint8_t got[64];
        int have = 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        while (have < 25) {
            int64_t left = sent + timeout_ns - now_ns();
            if (left <= 0 || poll(&p, 1, (int)(left / 1000000 + 1)) <= 0) break;
            ssize_t n = read(fd, got + have, sizeof got - (size_t)have);
            if (n > 0) have += (int)n;
        }
        now = now_ns();
        if (have < 25) {
            st.timeouts++;
            if (in_window) st.timeouts_window++;
            tcflush(fd, TCIFLUSH);
            continue;
        }
        if (have > 25 || memcmp(got, expect, 25) != 0) {
            if (got[0] != UNIT || got[1] != 0x03)
                st.bad_function++;
            else
                st.bad_body++;
            continue;
        }
        st.ok++;
        if (in_window) {
            st.ok_window++;
            hist_add(now - sent);
        }
    }
    double cpu1 = cpu_seconds();
    fprintf(stderr, "end\n");
    fflush(stderr);
    double window = (now - w0) / 1e9;
    printf("{\"mode\": \"rtu\", \"op\": \"read10\", \"baud\": %d, \"window_s\": %.4f, "
           "\"requests\": %llu, \"ok_total\": %llu, \"rps\": %.1f, \"p50_us\": %.1f, "
           "\"p99_us\": %.1f, \"mean_us\": %.1f, \"max_us\": %.1f, \"timeouts_window\": %llu, "
           "\"cpu_s\": %.4f, \"cpu_frac\": %.4f, ",
           a->baud, window, (unsigned long long)st.ok_window, (unsigned long long)st.ok,
           window > 0 ? st.ok_window / window : 0.0, hist_quantile(0.5), hist_quantile(0.99),
           hist_n ? hist_sum_us / hist_n : 0.0, hist_max_us,
           (unsigned long long)st.timeouts_window, cpu1 - cpu0,
           window > 0 ? (cpu1 - cpu0) / window : 0.0);
    print_counters(stdout);
    printf("}\n");
    close(fd);
    return 0;
}

/* ---------------------------------------------------------------- main */

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen tcp|idle|burst|rtu [options]\n"
            "  --host A      server address (127.0.0.1)\n"
            "  --port P      server port\n"
            "  --conns N     connections (1)\n"
            "  --depth D     requests in flight per connection (1; tcp mode)\n"
            "  --op OP       read10 | read125 | write100 | rw (read10)\n"
            "  --duration S  measured seconds (3)\n"
            "  --warmup S    seconds before measuring (0.5)\n"
            "  --timeout S   seconds before a request counts as timed out (1; idle/burst: "
            "whole run)\n"
            "  --hold S      idle: longest time to hold the connections (600)\n"
            "  --pending N   connects under way at once when opening (256)\n"
            "  --device PATH rtu: the serial device\n"
            "  --baud B      rtu: line speed (115200)\n");
    exit(2);
}

int main(int argc, char **argv) {
    args_t a = {.host = "127.0.0.1", .op = "read10", .conns = 1, .depth = 1,
                .baud = 115200, .max_pending = 256, .duration = 3, .warmup = 0.5,
                .timeout = 1, .hold = 600};
    if (argc < 2) usage();
    a.mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i];
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(k, "--host")) a.host = v;
        else if (!strcmp(k, "--port")) a.port = atoi(v);
        else if (!strcmp(k, "--conns")) a.conns = atoi(v);
        else if (!strcmp(k, "--depth")) a.depth = atoi(v);
        else if (!strcmp(k, "--op")) a.op = v;
        else if (!strcmp(k, "--duration")) a.duration = atof(v);
        else if (!strcmp(k, "--warmup")) a.warmup = atof(v);
        else if (!strcmp(k, "--timeout")) a.timeout = atof(v);
        else if (!strcmp(k, "--hold")) a.hold = atof(v);
        else if (!strcmp(k, "--pending")) a.max_pending = atoi(v);
        else if (!strcmp(k, "--device")) a.device = v;
        else if (!strcmp(k, "--baud")) a.baud = atoi(v);
        else usage();
    }
    raise_nofile();
    if (!strcmp(a.mode, "tcp")) return mode_tcp(&a);
    if (!strcmp(a.mode, "idle")) return mode_answer_each(&a, 0);
    if (!strcmp(a.mode, "burst")) return mode_answer_each(&a, 1);
    if (!strcmp(a.mode, "rtu")) return mode_rtu(&a);
    usage();
    return 2;
}
