/*
 * loopback_floor: what the kernel alone charges for the relay's writes.
 *
 * Opens N TCP connections over 127.0.0.1 to a child process that only reads, then writes the
 * same frame to every connection at a fixed rate, one write(2) per connection per frame --
 * exactly the syscalls a relay cannot avoid -- and reports the writer's CPU time per write.
 * On loopback the receiver's TCP processing runs in the writer's softirq context too, so this
 * is the floor for "server CPU per delivered frame" of any relay on this machine.
 *
 * usage: loopback_floor CONNECTIONS [RATE=50] [SECONDS=10] [FRAME_BYTES=115]
 * prints one JSON object. Bounded: at most 100000 connections and 600 s; 127.0.0.1 only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(int who) {
    struct rusage ru;
    getrusage(who, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what) {
    fprintf(stderr, "loopback_floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* The sink: accepts `n` connections and reads everything until they close. */
static void sink(int listener, int n) {
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    int open = 0, accepted = 0;
    static char buf[65536];
    struct epoll_event events[256];
    while (accepted < n || open > 0) {
        int k = epoll_wait(ep, events, 256, 30000);
        if (k <= 0) break; /* idle for 30 s: the writer is gone */
        for (int i = 0; i < k; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                int c;
                while ((c = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                    accepted++;
                    open++;
                }
                continue;
            }
            for (;;) {
                ssize_t r = read(fd, buf, sizeof buf);
                if (r > 0) continue;
                if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                    close(fd);
                    open--;
                }
                break;
            }
        }
    }
    exit(0);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: loopback_floor CONNECTIONS [RATE=50] [SECONDS=10] [FRAME_BYTES=115]\n");
        return 2;
    }
    int n = atoi(argv[1]);
    int rate = argc > 2 ? atoi(argv[2]) : 50;
    double seconds = argc > 3 ? atof(argv[3]) : 10;
    int frame_bytes = argc > 4 ? atoi(argv[4]) : 115;
    if (n < 1 || n > 100000 || rate < 1 || rate > 1000 || seconds <= 0 || seconds > 600 || frame_bytes < 1 || frame_bytes > 65536) {
        fprintf(stderr, "loopback_floor: CONNECTIONS 1..100000, RATE 1..1000, SECONDS (0, 600], FRAME_BYTES 1..65536\n");
        return 2;
    }
    struct rlimit lim = {.rlim_cur = n + 64, .rlim_max = n + 64};
    struct rlimit cur;
    getrlimit(RLIMIT_NOFILE, &cur);
    if (cur.rlim_cur < lim.rlim_cur && setrlimit(RLIMIT_NOFILE, &lim) != 0) die("raising the descriptor limit");

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 4096) != 0) die("listening");
    socklen_t len = sizeof addr;
    getsockname(listener, (struct sockaddr *)&addr, &len);
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) sink(listener, n);
    close(listener);

    int *fds = calloc(n, sizeof(int));
    int sndbuf = 64 * 1024, one = 1;
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&addr, sizeof addr) != 0) die("connecting");
        /* The relay's socket settings: a fixed 64 KiB send buffer, no Nagle delay. */
        setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    char *frame = malloc(frame_bytes);
    for (int i = 0; i < frame_bytes; i++) frame[i] = (char)(i * 31 + 7);

    long frames = (long)(rate * seconds), writes = 0, short_writes = 0;
    double interval = 1.0 / rate, start = now_s(), cpu0 = cpu_s(RUSAGE_SELF);
    for (long f = 0; f < frames; f++) {
        double due = start + f * interval, wait = due - now_s();
        if (wait > 0) {
            struct timespec ts = {.tv_sec = (time_t)wait, .tv_nsec = (long)((wait - (time_t)wait) * 1e9)};
            nanosleep(&ts, NULL);
        }
        for (int i = 0; i < n; i++) {
            ssize_t w = write(fds[i], frame, frame_bytes);
            if (w == frame_bytes) writes++;
            else short_writes++;
        }
    }
    double wall = now_s() - start, cpu = cpu_s(RUSAGE_SELF) - cpu0;
    for (int i = 0; i < n; i++) close(fds[i]);
    int status;
    waitpid(child, &status, 0);
    printf("{\"connections\": %d, \"rate\": %d, \"seconds\": %.2f, \"frame_bytes\": %d, \"writes\": %ld, \"short_writes\": %ld, "
           "\"writer_cpu_s\": %.3f, \"writer_cpu_per_s\": %.3f, \"us_per_write\": %.3f, \"sink_cpu_s\": %.3f}\n",
           n, rate, wall, frame_bytes, writes, short_writes, cpu, cpu / wall, writes ? cpu * 1e6 / writes : 0.0,
           cpu_s(RUSAGE_CHILDREN));
    return 0;
}
