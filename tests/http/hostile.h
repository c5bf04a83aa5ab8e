/* Small blocking HTTP servers for the http kind's tests: well-behaved, hostile and stalling.
 * Each runs in its own threads on 127.0.0.1 with an ephemeral port. */
#ifndef PROCTOR_TESTS_HTTP_HOSTILE_H
#define PROCTOR_TESTS_HTTP_HOSTILE_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef enum hs_mode {
    HS_OK,        /* answers every request; /chunked answers chunked; keep-alive */
    HS_SILENT,    /* reads the request, never answers */
    HS_GARBAGE,   /* answers bytes that are not HTTP */
    HS_ENDLESS,   /* a chunked body that never ends */
    HS_MIDCLOSE,  /* promises 100 bytes, sends 3, closes */
    HS_BIGHEADER, /* a 1 MB header */
    HS_STALL,     /* like HS_OK, but every 1000 ms the server stops for 200 ms */
    HS_JSON       /* answers a fixed JSON document with a Location header */
} hs_mode;

typedef struct hs_server {
    int lfd;
    int port;
    hs_mode mode;
    struct timespec t0;
} hs_server;

typedef struct hs_conn {
    hs_server *s;
    int fd;
} hs_conn;

static double hs_elapsed_ms(const hs_server *s)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - s->t0.tv_sec) * 1e3 + (double)(now.tv_nsec - s->t0.tv_nsec) / 1e6;
}

static void hs_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void *hs_conn_main(void *arg)
{
    hs_conn *c = arg;
    hs_server *s = c->s;
    char buf[65536];
    size_t have = 0;
    for (;;) {
        ssize_t r = recv(c->fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = '\0';
        char *end;
        while ((end = strstr(buf, "\r\n\r\n")) != NULL) {
            size_t used = (size_t)(end + 4 - buf);
            const char *cl = strcasestr(buf, "Content-Length:");
            size_t body = (cl && cl < end) ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
            if (have < used + body)
                break;
            bool chunked = strncmp(buf, "GET /chunked", 12) == 0;
            memmove(buf, buf + used + body, have - used - body);
            have -= used + body;
            buf[have] = '\0';
            switch (s->mode) {
            case HS_SILENT:
                sleep(60);
                goto out;
            case HS_GARBAGE:
                hs_write_all(c->fd, "\x01\x02 this is not http\r\n\r\n", 23);
                goto out;
            case HS_ENDLESS: {
                static const char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
                hs_write_all(c->fd, head, sizeof(head) - 1);
                char chunk[4096 + 16];
                int n = snprintf(chunk, sizeof(chunk), "1000\r\n");
                memset(chunk + n, 'x', 4096);
                memcpy(chunk + n + 4096, "\r\n", 2);
                for (int i = 0; i < 100000; i++) {
                    if (send(c->fd, chunk, (size_t)n + 4098, MSG_NOSIGNAL) <= 0)
                        break;
                }
                goto out;
            }
            case HS_MIDCLOSE:
                hs_write_all(c->fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", 43);
                goto out;
            case HS_BIGHEADER: {
                static const char head[] = "HTTP/1.1 200 OK\r\nX-Big: ";
                hs_write_all(c->fd, head, sizeof(head) - 1);
                char *big = malloc(1 << 20);
                memset(big, 'a', 1 << 20);
                hs_write_all(c->fd, big, 1 << 20);
                free(big);
                hs_write_all(c->fd, "\r\nContent-Length: 0\r\n\r\n", 23);
                goto out;
            }
            case HS_JSON: {
                static const char doc[] =
                    "{\"items\":[{\"id\":\"a\",\"n\":1},{\"id\":\"b\",\"n\":2},"
                    "{\"id\":\"c\",\"n\":3}],\"next\":null,\"name\":\"Widget 7\","
                    "\"price\":12.5}";
                char rsp[512];
                int n = snprintf(rsp, sizeof(rsp),
                                 "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                                 "Location: /things/a\r\nContent-Length: %zu\r\n\r\n%s",
                                 sizeof(doc) - 1, doc);
                hs_write_all(c->fd, rsp, (size_t)n);
                break;
            }
            case HS_STALL: {
                double ms = hs_elapsed_ms(s);
                double phase = ms - 1000.0 * (double)(long)(ms / 1000.0);
                if (phase < 200.0)
                    usleep((useconds_t)((200.0 - phase) * 1000.0));
            }
                __attribute__((fallthrough));
            case HS_OK:
                if (chunked) {
                    static const char rsp[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                              "Content-Type: text/plain\r\n\r\n"
                                              "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
                    hs_write_all(c->fd, rsp, sizeof(rsp) - 1);
                } else {
                    static const char rsp[] =
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        "Content-Length: 11\r\n\r\n{\"ok\":true}";
                    hs_write_all(c->fd, rsp, sizeof(rsp) - 1);
                }
                break;
            }
        }
    }
out:
    close(c->fd);
    free(c);
    return NULL;
}

static void *hs_accept_main(void *arg)
{
    hs_server *s = arg;
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        hs_conn *c = malloc(sizeof(*c));
        c->s = s;
        c->fd = fd;
        pthread_t t;
        pthread_create(&t, NULL, hs_conn_main, c);
        pthread_detach(t);
    }
}

/* Starts a server in mode; returns its port. The server lives until the process exits. */
static int hs_start(hs_mode mode)
{
    hs_server *s = calloc(1, sizeof(*s));
    s->mode = mode;
    clock_gettime(CLOCK_MONOTONIC, &s->t0);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    (void)setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->lfd, 128) != 0)
        abort();
    socklen_t len = sizeof(a);
    getsockname(s->lfd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    pthread_t t;
    pthread_create(&t, NULL, hs_accept_main, s);
    pthread_detach(t);
    return s->port;
}

#endif
