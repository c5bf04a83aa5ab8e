/* A tiny single-threaded epoll HTTP/1.1 server for the load-client benchmark: keep-alive, one
 * fixed JSON answer per request, optional stop-the-world stalls (every PERIOD ms the loop
 * sleeps STALL ms) to show coordinated omission. Not part of proctor.
 * usage: epoll_server PORT [PERIOD_MS STALL_MS] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char RESP[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                           "Content-Length: 11\r\n\r\n{\"ok\":true}";

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [PERIOD_MS STALL_MS]\n", argv[0]);
        return 2;
    }
    int port = (int)strtol(argv[1], NULL, 10);
    double period = argc > 3 ? strtod(argv[2], NULL) : 0,
           stall = argc > 3 ? strtod(argv[3], NULL) : 0;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 1024) != 0) {
        perror("bind/listen");
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event evs[256];
    static char buf[65536];
    static char out[1 << 20];
    double next_stall = now_ms() + period;
    for (;;) {
        int n = epoll_wait(ep, evs, 256, 100);
        if (period > 0 && now_ms() >= next_stall) {
            usleep((useconds_t)(stall * 1000));
            next_stall = now_ms() + period;
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    struct epoll_event ce = { .events = EPOLLIN, .data.fd = c };
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            ssize_t r = read(fd, buf, sizeof(buf));
            if (r <= 0) {
                close(fd);
                continue;
            }
            /* Count complete requests (GETs without bodies) and answer each. */
            size_t reqs = 0, len = 0;
            for (ssize_t k = 3; k < r; k++) {
                if (buf[k] == '\n' && buf[k - 1] == '\r' && buf[k - 2] == '\n' &&
                    buf[k - 3] == '\r')
                    reqs++;
            }
            for (size_t k = 0; k < reqs && len + sizeof(RESP) < sizeof(out); k++) {
                memcpy(out + len, RESP, sizeof(RESP) - 1);
                len += sizeof(RESP) - 1;
            }
            if (len && write(fd, out, len) < 0)
                close(fd);
        }
    }
}
