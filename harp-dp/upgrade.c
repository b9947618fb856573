/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Upgrading a data plane without a gap.
 *
 * Design notes:
 * 1. Every harp-dp listens on a handover socket, SOCK_SEQPACKET, mode 0600 (peers of another
 *    uid than ours or root refused): $RUNTIME_DIRECTORY/harp-dp-<id>.sock under systemd, else
 *    $HP_STATE_DIR/harp-dp-<id>.sock. Its file is made beside it and renamed into place, so a
 *    successor replaces its predecessor's at once.
 * 2. A new harp-dp started with --takeover PATH connects there and receives, in one message of
 *    at most HANDOVER_MAX bytes, the listening sockets themselves (SCM_RIGHTS) and a text saying
 *    which is which: "harp-dp-handover 1 <pid>\n", then "<role> <addr>\n" per descriptor in
 *    order. Each must be a listening TCP socket bound to the address the new process's own
 *    configuration names for that role. Being the same sockets, their accept queues are shared:
 *    nothing waiting in them is lost (closing a SO_REUSEPORT listener would reset what waits in
 *    its queue, and a new SO_REUSEPORT listener does not take over those connections).
 * 3. The new process adopts them paused, connects to harp-ctl, and once its first table is
 *    applied sends "drain", then accepts; connections arriving in between wait in the queue.
 *    Its own handover socket then replaces the old one's file.
 * 4. The old process, on "drain", closes its copies of the listeners (the sockets stay open in
 *    the new one). The requests in progress are answered with "Connection: close"; connections
 *    silent between requests for IDLE_US are closed (a client may be sending on one that was
 *    idle for less). WebSockets and FRP sessions stay until they close, or HP_DRAIN_TIMEOUT;
 *    then it exits 0. Until "drain" it serves as before: a new process that fails, goes away,
 *    or sends something else changes nothing.
 * 5. One handover at a time; every step has a deadline (IO_TIMEOUT_S, PEER_TIMEOUT_S,
 *    TAKE_TIMEOUT_S), every message a size limit.
 * 6. SIGUSR2: the process starts its own executable (the path resolved at start: the file now
 *    on disk, after a package upgrade) with its arguments and --takeover. Under systemd
 *    (Type=notify, NotifyAccess=all) the new process announces itself as the main process.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conn.h"
#include "dp.h"
#include "frp.h"
#include "listen.h"
#include "log.h"
#include "upgrade.h"
#include "xmalloc.h"

#define HANDOVER_MAX 1024 /* bytes of the handover message */
#define HANDOVER_MAGIC "harp-dp-handover 1 "
#define ORDER_MAX 64 /* bytes of a message from the new process */
#define ORDER_DRAIN "drain"
#define IO_TIMEOUT_S 5       /* each blocking send or receive on a handover connection */
#define PEER_TIMEOUT_S 120.0 /* the old process waits this long for "drain" */
#define TAKE_TIMEOUT_S 90.0  /* the new process waits this long for its first table */
#define DRAIN_TICK_S 0.25
#define IDLE_US (1 * LWS_US_PER_SEC)

static const char *const role_names[LISTEN_NROLES] = {"http", "https", "frp"};

static struct {
    struct ev_loop *loop;
    char *exe, **argv; /* for SIGUSR2: our executable and arguments without --takeover */
    pid_t child;       /* started by SIGUSR2, not reaped yet */
    /* the handover socket we listen on */
    char *path;
    dev_t dev;
    ino_t ino;
    int lfd;
    ev_io accept_w;
    /* the new process taking over from us */
    int peer;
    pid_t peer_pid;
    ev_io peer_w;
    ev_timer peer_timer;
    /* the old process we take over from */
    int old;
    pid_t old_pid;
    ev_timer take_timer;
    /* draining */
    ev_timer drain_timer;
    ev_tstamp drain_since;
} up = {.lfd = -1, .peer = -1, .old = -1};

static void
stop(int status)
{
    dp->exit_status = status;
    dp->stopping = true;
    lws_cancel_service(dp->ctx);
}

static void
io_timeouts(int fd)
{
    struct timeval tv = {IO_TIMEOUT_S, 0};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* <path> as a Unix socket address: -1 when too long. */
static int
unix_addr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path)) {
        return -1;
    }
    memcpy(sa->sun_path, path, strlen(path));
    return 0;
}

void
upgrade_init(struct ev_loop *loop, int argc, char **argv)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    int i, k = 0;

    up.loop = loop;
    if (n > 0) {
        buf[n] = '\0';
        up.exe = xstrdup(buf);
    } else {
        up.exe = xstrdup(argv[0]);
    }
    up.argv = xcalloc((size_t)argc + 3, sizeof(*up.argv));
    up.argv[k++] = up.exe;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--takeover") == 0 && i + 1 < argc) {
            i++;
        } else {
            up.argv[k++] = argv[i];
        }
    }
}

char *
upgrade_default_path(void)
{
    const char *rt = getenv("RUNTIME_DIRECTORY");
    char id[sizeof(dp->dp_id)], *p;
    size_t dirlen;

    /* systemd's RuntimeDirectory= (the first, if several) */
    if (rt != NULL && rt[0] == '/') {
        dirlen = strcspn(rt, ":");
    } else {
        rt = dp->cfg.state_dir;
        dirlen = strlen(rt);
    }
    snprintf(id, sizeof(id), "%s", dp->dp_id);
    for (p = id; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.')) {
            *p = '_';
        }
    }
    return xasprintf("%.*s/harp-dp-%s.sock", (int)dirlen, rt, id);
}

/* --- the running process's side ---------------------------------------------------------- */

static const char *
role_addr(int role)
{
    return role == LISTEN_HTTP    ? dp->cfg.exapps_address
           : role == LISTEN_HTTPS ? dp->cfg.exapps_https_address
                                  : dp->cfg.frp_address;
}

/* Sends the listening sockets and what they are (design note 2). */
static int
send_handover(int fd, struct hp_err *err)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * LISTEN_NROLES)];
        struct cmsghdr align;
    } cbuf;
    char text[HANDOVER_MAX];
    int fds[LISTEN_NROLES], give[LISTEN_NROLES], i, n = 0, len;
    struct iovec iov;
    struct msghdr mh;
    struct cmsghdr *cm;

    listen_fds(fds);
    len = snprintf(text, sizeof(text), HANDOVER_MAGIC "%d\n", (int)getpid());
    for (i = 0; i < LISTEN_NROLES; i++) {
        if (fds[i] != -1) {
            len += snprintf(text + len, sizeof(text) - (size_t)len, "%s %s\n", role_names[i],
                            role_addr(i));
            if (len >= (int)sizeof(text)) {
                err_set(err, "the listeners' addresses are too long for a handover message");
                return -1;
            }
            give[n++] = fds[i];
        }
    }
    if (n == 0) {
        err_set(err, "no listener to hand over");
        return -1;
    }
    memset(&mh, 0, sizeof(mh));
    memset(&cbuf, 0, sizeof(cbuf));
    iov.iov_base = text;
    iov.iov_len = (size_t)len;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf.buf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
    cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
    memcpy(CMSG_DATA(cm), give, sizeof(int) * (size_t)n);
    if (sendmsg(fd, &mh, MSG_NOSIGNAL) != len) {
        err_set(err, "cannot send the listening sockets: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void
peer_end(void)
{
    ev_io_stop(up.loop, &up.peer_w);
    ev_timer_stop(up.loop, &up.peer_timer);
    close(up.peer);
    up.peer = -1;
}

static void
on_drain_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    unsigned nc, ns;

    conn_close_idle(IDLE_US);
    nc = conn_count();
    ns = frp_session_count();
    if (nc == 0 && ns == 0) {
        log_info("upgrade: drained: no connection left; exiting");
        ev_timer_stop(loop, w);
        stop(0);
    } else if (ev_now(loop) - up.drain_since >= (double)dp->cfg.drain_timeout_ms / 1000) {
        log_info("upgrade: HP_DRAIN_TIMEOUT reached with %u connection(s) and %u FRP "
                 "session(s) open; exiting",
                 nc, ns);
        ev_timer_stop(loop, w);
        stop(0);
    }
}

/* Design note 4. */
static void
drain(void)
{
    unsigned closed;

    dp->draining = true;
    listen_stop();
    ev_io_stop(up.loop, &up.accept_w);
    close(up.lfd); /* its file is the new process's now */
    up.lfd = -1;
    closed = conn_close_idle(IDLE_US);
    log_info("upgrade: pid %d took over; draining: no longer accepting, %u idle connection(s) "
             "closed, %u connection(s) and %u FRP session(s) open, HP_DRAIN_TIMEOUT %llu s",
             (int)up.peer_pid, closed, conn_count(), frp_session_count(),
             (unsigned long long)(dp->cfg.drain_timeout_ms / 1000));
    up.drain_since = ev_now(up.loop);
    ev_timer_init(&up.drain_timer, on_drain_tick, 0, DRAIN_TICK_S);
    ev_timer_start(up.loop, &up.drain_timer);
}

static void
on_peer(struct ev_loop *loop, ev_io *w, int revents)
{
    char buf[ORDER_MAX];
    ssize_t n = recv(up.peer, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);

    if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        log_warnx("upgrade: pid %d went away before taking over (%s); serving on", (int)up.peer_pid,
                  n == 0 ? "closed" : strerror(errno));
    } else if ((size_t)n > sizeof(buf)) {
        log_warnx("upgrade: a message of %zd bytes from pid %d (at most %d): the takeover is "
                  "abandoned; serving on",
                  n, (int)up.peer_pid, ORDER_MAX);
    } else if ((size_t)n == strlen(ORDER_DRAIN) && memcmp(buf, ORDER_DRAIN, (size_t)n) == 0) {
        peer_end();
        drain();
        return;
    } else {
        log_warnx("upgrade: an unknown message of %zd bytes from pid %d: the takeover is "
                  "abandoned; serving on",
                  n, (int)up.peer_pid);
    }
    peer_end();
}

static void
on_peer_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    log_warnx("upgrade: pid %d did not take over within %.0f s; serving on", (int)up.peer_pid,
              PEER_TIMEOUT_S);
    peer_end();
}

static void
on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ucred cr;
    socklen_t sl = sizeof(cr);
    struct hp_err err;
    int fd = accept4(up.lfd, NULL, NULL, SOCK_CLOEXEC);

    if (fd == -1) {
        return;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &sl) == -1 ||
        (cr.uid != geteuid() && cr.uid != 0)) {
        log_warnx("upgrade: a takeover from uid %ld refused: not ours",
                  sl == sizeof(cr) ? (long)cr.uid : -1L);
        close(fd);
        return;
    }
    if (up.peer != -1 || dp->draining) {
        log_warnx("upgrade: a takeover from pid %d refused: %s", (int)cr.pid,
                  dp->draining ? "already handed over" : "another one is in progress");
        close(fd);
        return;
    }
    io_timeouts(fd);
    if (send_handover(fd, &err) == -1) {
        log_warnx("upgrade: takeover from pid %d: %s; serving on", (int)cr.pid, err.msg);
        close(fd);
        return;
    }
    log_info("upgrade: listening sockets handed to pid %d; serving until it says to drain",
             (int)cr.pid);
    up.peer = fd;
    up.peer_pid = cr.pid;
    ev_io_init(&up.peer_w, on_peer, fd, EV_READ);
    ev_io_start(loop, &up.peer_w);
    ev_timer_init(&up.peer_timer, on_peer_timeout, PEER_TIMEOUT_S, 0);
    ev_timer_start(loop, &up.peer_timer);
}

void
upgrade_serve(const char *path)
{
    struct sockaddr_un sa, tmp_sa;
    struct stat sb;
    char *tmp = xasprintf("%s.%d", path, (int)getpid());
    mode_t mask;
    int fd = -1;
    bool ok;

    free(up.path);
    up.path = xstrdup(path);
    if (unix_addr(path, &sa) == -1 || unix_addr(tmp, &tmp_sa) == -1) {
        errno = ENAMETOOLONG;
        ok = false;
    } else {
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        unlink(tmp);
        mask = umask(077);
        ok = fd != -1 && bind(fd, (struct sockaddr *)&tmp_sa, sizeof(tmp_sa)) == 0;
        umask(mask);
        ok = ok && chmod(tmp, 0600) == 0 && listen(fd, 4) == 0 && rename(tmp, path) == 0 &&
             stat(path, &sb) == 0;
    }
    if (!ok) {
        log_warnx("upgrade: cannot listen on %s: %s; this process cannot be taken over", path,
                  strerror(errno));
        if (fd != -1) {
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        return;
    }
    free(tmp);
    up.dev = sb.st_dev;
    up.ino = sb.st_ino;
    up.lfd = fd;
    ev_io_init(&up.accept_w, on_accept, fd, EV_READ);
    ev_io_start(up.loop, &up.accept_w);
    log_info("upgrade: handover socket %s (harp-dp --takeover %s)", path, path);
}

void
upgrade_spawn(void)
{
    const char *why = dp->draining    ? "already handed over"
                      : up.old != -1  ? "still taking over"
                      : up.peer != -1 ? "a takeover is in progress"
                      : up.child > 0  ? "the process started by the last SIGUSR2 still runs"
                      : up.lfd == -1  ? "no handover socket"
                                      : NULL;
    char **argv = up.argv;
    int k;
    pid_t pid;

    if (why != NULL) {
        log_warnx("upgrade: SIGUSR2 ignored: %s", why);
        return;
    }
    for (k = 0; argv[k] != NULL; k++) {
    }
    argv[k] = "--takeover";
    argv[k + 1] = up.path;
    pid = fork();
    if (pid == 0) {
        execv(up.exe, argv);
        _exit(127);
    }
    argv[k] = NULL;
    if (pid == -1) {
        log_warnx("upgrade: SIGUSR2: cannot start %s: %s", up.exe, strerror(errno));
        return;
    }
    up.child = pid;
    log_info("upgrade: SIGUSR2: started %s (pid %d) to take over", up.exe, (int)pid);
}

void
upgrade_reap(void)
{
    int st;

    if (up.child <= 0 || waitpid(up.child, &st, WNOHANG) != up.child) {
        return;
    }
    if (dp->draining) {
        log_info("upgrade: the new process (pid %d) exited", (int)up.child);
    } else if (WIFEXITED(st)) {
        log_warnx("upgrade: the new process (pid %d) exited with status %d%s; serving on",
                  (int)up.child, WEXITSTATUS(st),
                  WEXITSTATUS(st) == 127 ? " (it could not be executed)" : "");
    } else {
        log_warnx("upgrade: the new process (pid %d) was killed by signal %d; serving on",
                  (int)up.child, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    }
    up.child = 0;
}

void
upgrade_close(void)
{
    struct stat sb;

    if (up.lfd != -1) {
        ev_io_stop(up.loop, &up.accept_w);
        close(up.lfd);
        up.lfd = -1;
        if (stat(up.path, &sb) == 0 && sb.st_dev == up.dev && sb.st_ino == up.ino) {
            unlink(up.path);
        }
    }
    if (up.peer != -1) {
        peer_end();
    }
    if (up.old != -1) {
        close(up.old);
        up.old = -1;
    }
    free(up.path);
    free(up.exe);
    free(up.argv);
    up.path = up.exe = NULL;
    up.argv = NULL;
}

/* --- the new process's side -------------------------------------------------------------- */

/* Whether <fd> is a listening TCP socket bound to <addr>; else a reason in <err>. */
static bool
fd_is(int fd, const char *role, const char *addr, struct hp_err *err)
{
    struct sockaddr_storage want, got;
    socklen_t wl, gl = sizeof(got), il = sizeof(int);
    int type = 0, acc = 0;
    char why[160];

    if (listen_addr(addr, &want, &wl, err) == -1) {
        return false;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &il) == -1 || type != SOCK_STREAM ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &il) == -1 || acc != 1 ||
        getsockname(fd, (struct sockaddr *)&got, &gl) == -1) {
        err_set(err, "the %s descriptor is not a listening TCP socket", role);
        return false;
    }
    if (got.ss_family != want.ss_family || gl != wl || memcmp(&got, &want, wl) != 0) {
        char host[64] = "?";
        unsigned port = 0;

        if (got.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&got)->sin_addr, host, sizeof(host));
            port = ntohs(((struct sockaddr_in *)&got)->sin_port);
        } else if (got.ss_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&got)->sin6_addr, host, sizeof(host));
            port = ntohs(((struct sockaddr_in6 *)&got)->sin6_port);
        }
        snprintf(why, sizeof(why), "%s:%u", host, port);
        err_set(err, "the %s listener is bound to %s, not to %s as configured here", role, why,
                addr);
        return false;
    }
    return true;
}

/* Checks the text of a handover message (design note 2) against the <n> descriptors <got>:
 * fds[role] gets each. 0, or -1 with <err>. */
static int
parse_handover(char *text, const int *got, size_t n, const char *const want[LISTEN_NROLES],
               int fds[LISTEN_NROLES], pid_t *pid, struct hp_err *err)
{
    char *line, *end, *sp;
    size_t k = 0;
    long v;
    int r;

    if (strncmp(text, HANDOVER_MAGIC, strlen(HANDOVER_MAGIC)) != 0) {
        err_set(err, "not a harp-dp handover message");
        return -1;
    }
    line = text + strlen(HANDOVER_MAGIC);
    errno = 0;
    v = strtol(line, &end, 10);
    if (errno != 0 || end == line || *end != '\n' || v <= 0 || v > INT_MAX) {
        err_set(err, "a handover message without a process id");
        return -1;
    }
    *pid = (pid_t)v;
    for (line = end + 1; *line != '\0'; line = end + 1) {
        if ((end = strchr(line, '\n')) == NULL) {
            err_set(err, "a handover message with an unfinished line");
            return -1;
        }
        *end = '\0';
        if ((sp = strchr(line, ' ')) != NULL) {
            *sp = '\0';
        }
        for (r = 0; r < LISTEN_NROLES && strcmp(line, role_names[r]) != 0; r++) {
        }
        if (r == LISTEN_NROLES) {
            err_set(err, "a handover message names an unknown listener \"%.32s\"", line);
            return -1;
        }
        if (k >= n) {
            err_set(err, "a handover message names more listeners than it carries (%zu)", n);
            return -1;
        }
        if (fds[r] != -1) {
            err_set(err, "a handover message names the %s listener twice", role_names[r]);
            return -1;
        }
        fds[r] = got[k++];
    }
    if (k != n) {
        err_set(err, "a handover message carries %zu descriptors but names %zu", n, k);
        return -1;
    }
    if (fds[LISTEN_HTTP] == -1) {
        err_set(err, "no HTTP listener in the handover message");
        return -1;
    }
    if (fds[LISTEN_FRP] != -1 && want[LISTEN_FRP] == NULL) {
        err_set(err, "the running harp-dp serves the FRP frontend: start this one with --frp");
        return -1;
    }
    for (r = 0; r < LISTEN_NROLES; r++) {
        if (fds[r] != -1 && want[r] != NULL && !fd_is(fds[r], role_names[r], want[r], err)) {
            return -1;
        }
    }
    return 0;
}

static void
on_take_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    log_errorx("upgrade: no table from the control plane within %.0f s: the takeover is "
               "abandoned (pid %d serves on)",
               TAKE_TIMEOUT_S, (int)up.old_pid);
    close(up.old);
    up.old = -1;
    stop(1);
}

int
upgrade_take(const char *path, const char *const want[LISTEN_NROLES], int fds[LISTEN_NROLES],
             struct hp_err *err)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * LISTEN_NROLES)];
        struct cmsghdr align;
    } cbuf;
    char text[HANDOVER_MAX + 1];
    int got[LISTEN_NROLES], fd, i;
    size_t n = 0, k;
    struct sockaddr_un sa;
    struct cmsghdr *cm;
    struct msghdr mh;
    struct iovec iov;
    ssize_t len;

    for (i = 0; i < LISTEN_NROLES; i++) {
        fds[i] = -1;
    }
    if (unix_addr(path, &sa) == -1) {
        err_set(err, "%s: path too long for a Unix socket", path);
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd == -1 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
        err_set(err, "nothing to take over at %s: %s", path, strerror(errno));
        if (fd != -1) {
            close(fd);
        }
        return -1;
    }
    io_timeouts(fd);
    memset(&mh, 0, sizeof(mh));
    memset(&cbuf, 0, sizeof(cbuf));
    iov.iov_base = text;
    iov.iov_len = HANDOVER_MAX;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf.buf;
    mh.msg_controllen = sizeof(cbuf.buf);
    len = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    for (cm = len >= 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (i = 0; (size_t)i < k; i++) {
                int d;

                memcpy(&d, CMSG_DATA(cm) + sizeof(int) * (size_t)i, sizeof(int));
                if (n < LISTEN_NROLES) {
                    got[n++] = d;
                } else {
                    close(d);
                }
            }
        }
    }
    if (len == -1) {
        err_set(err, "no handover message from %s: %s", path,
                errno == EAGAIN ? "timed out" : strerror(errno));
    } else if (len == 0) {
        err_set(err, "%s closed without handing over (another takeover in progress?)", path);
    } else if (mh.msg_flags & MSG_TRUNC) {
        err_set(err, "the handover message from %s is too long (at most %d bytes)", path,
                HANDOVER_MAX);
    } else if (mh.msg_flags & MSG_CTRUNC) {
        err_set(err, "the handover message from %s carries too many descriptors (at most %d)", path,
                LISTEN_NROLES);
    } else if (memchr(text, '\0', (size_t)len) != NULL) {
        err_set(err, "the handover message from %s holds a NUL byte", path);
    } else {
        text[len] = '\0';
        if (parse_handover(text, got, n, want, fds, &up.old_pid, err) == 0) {
            for (i = 0; i < LISTEN_NROLES; i++) {
                if (fds[i] != -1 && want[i] == NULL) {
                    log_info("upgrade: the %s listener is not served here: closed", role_names[i]);
                    close(fds[i]);
                    fds[i] = -1;
                }
            }
            up.old = fd;
            log_info("upgrade: received the listening sockets of pid %d from %s", (int)up.old_pid,
                     path);
            ev_timer_init(&up.take_timer, on_take_timeout, TAKE_TIMEOUT_S, 0);
            ev_timer_start(up.loop, &up.take_timer);
            return 0;
        }
        {
            char why[sizeof(err->msg)];

            snprintf(why, sizeof(why), "%s", err->msg);
            err_set(err, "%s: %s", path, why);
        }
    }
    for (k = 0; k < n; k++) {
        close(got[k]);
    }
    for (i = 0; i < LISTEN_NROLES; i++) {
        fds[i] = -1;
    }
    close(fd);
    return -1;
}

bool
upgrade_taking(void)
{
    return up.old != -1;
}

void
upgrade_taken(void)
{
    char state[64];
    char *path;

    ev_timer_stop(up.loop, &up.take_timer);
    if (send(up.old, ORDER_DRAIN, strlen(ORDER_DRAIN), MSG_NOSIGNAL) !=
        (ssize_t)strlen(ORDER_DRAIN)) {
        log_errorx("upgrade: cannot tell pid %d to drain: %s; the takeover is abandoned",
                   (int)up.old_pid, strerror(errno));
        close(up.old);
        up.old = -1;
        stop(1);
        return;
    }
    close(up.old);
    up.old = -1;
    listen_resume();
    log_info("upgrade: took over from pid %d, which drains; accepting", (int)up.old_pid);
    path = upgrade_default_path();
    upgrade_serve(path);
    free(path);
    snprintf(state, sizeof(state), "MAINPID=%d\nREADY=1", (int)getpid());
    upgrade_notify(state);
}

/* --- systemd ----------------------------------------------------------------------------- */

/* sd_notify(3)'s protocol: one datagram to $NOTIFY_SOCKET (a path, or '@' for the abstract
 * namespace). */
void
upgrade_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    socklen_t sl;
    int fd;

    if (path == NULL || (path[0] != '/' && path[0] != '@') || unix_addr(path, &sa) == -1) {
        return;
    }
    if (path[0] == '@') {
        sa.sun_path[0] = '\0';
    }
    sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd == -1 ||
        sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, sl) == -1) {
        log_warnx("upgrade: cannot notify systemd at %s: %s", path, strerror(errno));
    }
    if (fd != -1) {
        close(fd);
    }
}
