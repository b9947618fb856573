/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The benchmark's ExApp: one epoll thread, keep-alive, reads whole requests (Content-Length
 * bodies), answers 200 with a small JSON body, or streams <size> bytes for /big?size=<size>.
 * usage: bench-backend PORT */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct client {
    int fd;
    char in[65536];
    size_t in_len;
    unsigned long long body_left; /* request body bytes still to skip */
    unsigned long long big_left;  /* /big bytes still to send */
    char out[512];
    size_t out_len, out_off;
    int close_after;
};

static char pattern[65536];
static const char ok_body[] = "{\"status\": \"ok\"}";

static void
drop(int ep, struct client *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* Writes what is pending; 0 when all is out, 1 when the socket is full, -1 on error. */
static int
flush(struct client *c)
{
    ssize_t n;

    while (c->out_off < c->out_len) {
        n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            return errno == EAGAIN ? 1 : -1;
        }
        c->out_off += (size_t)n;
    }
    while (c->big_left > 0) {
        size_t want = c->big_left < sizeof(pattern) ? (size_t)c->big_left : sizeof(pattern);

        n = write(c->fd, pattern, want);
        if (n < 0) {
            return errno == EAGAIN ? 1 : -1;
        }
        c->big_left -= (unsigned long long)n;
    }
    return 0;
}

/* Consumes whole requests from c->in; 0 to go on, -1 to close. */
static int
serve(struct client *c)
{
    char *end, *p;
    size_t head;
    unsigned long long cl, size;

    for (;;) {
        if (c->body_left > 0) {
            size_t n = c->in_len < c->body_left ? c->in_len : (size_t)c->body_left;

            memmove(c->in, c->in + n, c->in_len - n);
            c->in_len -= n;
            c->body_left -= n;
            if (c->body_left > 0) {
                return 0;
            }
        }
        if (c->out_off < c->out_len || c->big_left > 0) {
            return 0; /* one response at a time */
        }
        c->in[c->in_len < sizeof(c->in) ? c->in_len : sizeof(c->in) - 1] = '\0';
        end = strstr(c->in, "\r\n\r\n");
        if (end == NULL) {
            return c->in_len == sizeof(c->in) ? -1 : 0;
        }
        head = (size_t)(end - c->in) + 4;
        cl = 0;
        for (p = c->in; p < end; p = strstr(p, "\r\n") + 2) {
            if (strncasecmp(p, "content-length:", 15) == 0) {
                cl = strtoull(p + 15, NULL, 10);
            } else if (strncasecmp(p, "connection: close", 17) == 0) {
                c->close_after = 1;
            }
        }
        p = strstr(c->in, "/big?size=");
        size = p != NULL && p < strchr(c->in, '\r') ? strtoull(p + 10, NULL, 10) : 0;
        if (size > 0) {
            c->out_len =
                (size_t)snprintf(c->out, sizeof(c->out),
                                 "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream"
                                 "\r\nContent-Length: %llu\r\n\r\n",
                                 size);
            c->big_left = size;
        } else {
            c->out_len = (size_t)snprintf(c->out, sizeof(c->out),
                                          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                          "Content-Length: %zu\r\n\r\n%s",
                                          sizeof(ok_body) - 1, ok_body);
        }
        c->out_off = 0;
        memmove(c->in, c->in + head, c->in_len - head);
        c->in_len -= head;
        c->body_left = cl;
    }
}

int
main(int argc, char **argv)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct epoll_event ev, evs[256];
    int lfd, ep, n, i, one = 1, rc;

    if (argc != 2) {
        fprintf(stderr, "usage: bench-backend PORT\n");
        return 2;
    }
    memset(pattern, 'x', sizeof(pattern));
    signal(SIGPIPE, SIG_IGN);
    sa.sin_port = htons((unsigned short)atoi(argv[1]));
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0) {
        perror("bench-backend: listen");
        return 1;
    }
    ep = epoll_create1(0);
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    for (;;) {
        n = epoll_wait(ep, evs, 256, -1);
        for (i = 0; i < n; i++) {
            struct client *c = evs[i].data.ptr;

            if (c == NULL) {
                int fd;

                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    c = calloc(1, sizeof(*c));
                    c->fd = fd;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
                    ev.data.ptr = c;
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            if (evs[i].events & EPOLLIN) {
                for (;;) {
                    ssize_t r = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);

                    if (r == 0 || (r < 0 && errno != EAGAIN)) {
                        drop(ep, c);
                        c = NULL;
                        break;
                    }
                    if (r < 0) {
                        break;
                    }
                    c->in_len += (size_t)r;
                    if (serve(c) < 0) {
                        drop(ep, c);
                        c = NULL;
                        break;
                    }
                    if ((rc = flush(c)) < 0) {
                        drop(ep, c);
                        c = NULL;
                        break;
                    }
                }
                if (c == NULL) {
                    continue;
                }
            }
            rc = flush(c);
            while (rc == 0 && !(c->out_off < c->out_len || c->big_left > 0) && c->in_len > 0) {
                if (serve(c) < 0) {
                    rc = -1;
                    break;
                }
                if (!(c->out_off < c->out_len || c->big_left > 0)) {
                    break;
                }
                rc = flush(c);
            }
            if (rc < 0 ||
                (rc == 0 && c->close_after && c->big_left == 0 && c->out_off == c->out_len)) {
                drop(ep, c);
            }
        }
    }
}
