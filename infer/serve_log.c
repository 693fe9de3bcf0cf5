/* serve_log.c — the server's log lines (serve.h serve_log): at most SERVE_LOG_BURST lines per second, the rest
 * counted and reported in one line when the next second allows it, and never a blocking write: a line is dropped
 * (and counted) when stderr is a pipe nobody empties. A flood of failing connections must neither fill a disk with
 * a million identical lines nor stall the server behind a full pipe. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "infer/serve.h"

#define SERVE_LOG_BURST 10

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = 2;
static time_t log_second;
static int log_count;
static long log_dropped;

void serve_log_set_fd(int fd) {
    pthread_mutex_lock(&log_lock);
    log_fd = fd;
    pthread_mutex_unlock(&log_lock);
}

long serve_log_dropped(void) {
    pthread_mutex_lock(&log_lock);
    long n = log_dropped;
    pthread_mutex_unlock(&log_lock);
    return n;
}

/* Writes a line of at most PIPE_BUF bytes if the descriptor can take it now: poll() reporting POLLOUT on a pipe
 * means a free page, so one write of <= PIPE_BUF bytes completes without blocking. Caller holds log_lock. */
static int write_now(const char *s, size_t n) {
    struct pollfd p = {.fd = log_fd, .events = POLLOUT};
    if (poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT)) return -1;
    ssize_t k;
    do k = write(log_fd, s, n);
    while (k < 0 && errno == EINTR);
    return k == (ssize_t)n ? 0 : -1;
}

void serve_logv(const char *fmt, va_list ap) {
    char line[512]; /* < PIPE_BUF (4096) */
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    if (n < 0) return;
    if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
    if (n == 0 || line[n - 1] != '\n') line[n++] = '\n', line[n] = 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&log_lock);
    if (now.tv_sec != log_second) {
        log_second = now.tv_sec, log_count = 0;
        if (log_dropped) {
            char note[96];
            int k = snprintf(note, sizeof note, "serve: %ld log line(s) dropped (rate limit or a full stderr)\n",
                             log_dropped);
            if (write_now(note, (size_t)k) == 0) log_dropped = 0, log_count++;
        }
    }
    if (log_count >= SERVE_LOG_BURST || write_now(line, (size_t)n) != 0) log_dropped++;
    else log_count++;
    pthread_mutex_unlock(&log_lock);
}

void serve_log(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    serve_logv(fmt, ap);
    va_end(ap);
}
