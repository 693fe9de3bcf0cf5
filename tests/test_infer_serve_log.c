/* test_infer_serve_log.c — the server's log (infer/serve_log.c) never blocks and never floods: into a pipe that
 * is full, 1000 lines return at once and are counted as dropped; into an empty one, a burst in one second writes
 * at most SERVE_LOG_BURST lines, and the next second starts with one line saying how many were dropped. Issue 14,
 * item 4: the server logged a million lines under a connection flood and hung on a stderr pipe nobody read. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "infer/serve.h"
#include "tests/check.h"

static void on_alarm(int sig) {
    (void)sig;
    static const char m[] = "test_infer_serve_log: serve_log blocked on a full pipe\n";
    if (write(2, m, sizeof m - 1)) {}
    _exit(1);
}

/* waits for the start of the next second of CLOCK_MONOTONIC, as serve_log counts */
static void next_second(void) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do {
        usleep(10000);
        clock_gettime(CLOCK_MONOTONIC, &b);
    } while (b.tv_sec == a.tv_sec);
}

static size_t drain(int fd, char *buf, size_t cap) {
    size_t n = 0;
    ssize_t k;
    while (n < cap - 1 && (k = read(fd, buf + n, cap - 1 - n)) > 0) n += (size_t)k;
    buf[n] = 0;
    return n;
}

static int count_lines(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p++) n++;
    return n;
}

int main(void) {
    int p[2];
    if (pipe(p)) return 1;
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    /* fill the pipe (non-blocking writes until EAGAIN), then make the write end blocking again, as stderr is */
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    char block[4096];
    memset(block, 'x', sizeof block);
    while (write(p[1], block, sizeof block) > 0) {}
    fcntl(p[1], F_SETFL, 0);
    serve_log_set_fd(p[1]);
    signal(SIGALRM, on_alarm);
    alarm(10);
    long before = serve_log_dropped();
    for (int i = 0; i < 1000; i++) serve_log("serve: line %d of a flood", i);
    alarm(0);
    CHECKF(serve_log_dropped() - before == 1000, "dropped %ld of 1000 lines into a full pipe", serve_log_dropped() - before);

    /* empty the pipe: a burst writes at most 10 lines */
    static char buf[1 << 20];
    drain(p[0], buf, sizeof buf);
    next_second();
    for (int i = 0; i < 200; i++) serve_log("serve: burst %d", i);
    drain(p[0], buf, sizeof buf);
    int burst = count_lines(buf, "serve: burst");
    CHECKF(burst >= 1 && burst <= 10, "%d of 200 lines in one second were written", burst);
    CHECK(count_lines(buf, "log line(s) dropped") == 1); /* the 1000 of the full pipe, said once */
    next_second();
    serve_log("serve: after the burst");
    drain(p[0], buf, sizeof buf);
    CHECKF(strstr(buf, "log line(s) dropped") && strstr(buf, "serve: after the burst\n"), "next second: '%s'", buf);
    CHECK(serve_log_dropped() == 0);
    serve_log_set_fd(2);
    return check_result("test_infer_serve_log");
}
