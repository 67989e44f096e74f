/*
 * The C baseline every echo benchmark is measured against: a callback-only echo server written
 * directly on libev (the same vendored libev the Rust crates use), one thread, non-blocking
 * sockets, one io watcher per connection that is re-armed between READ and WRITE.
 *
 * Usage: echo_server HOST:PORT   (prints "listening on HOST:PORT" once it listens, runs until
 * killed).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ev.h"
#include "listen.h"

#define BUF_SIZE 65536

struct conn {
  ev_io io;
  size_t len, off; /* pending bytes still to write: buf[off..len] */
  char buf[BUF_SIZE];
};

static void conn_close(struct ev_loop *loop, struct conn *c) {
  ev_io_stop(loop, &c->io);
  close(c->io.fd);
  free(c);
}

static void conn_cb(struct ev_loop *loop, ev_io *w, int revents) {
  struct conn *c = (struct conn *)w;
  (void)revents;
  for (;;) {
    if (c->off < c->len) {
      ssize_t n = write(w->fd, c->buf + c->off, c->len - c->off);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          if (!(w->events & EV_WRITE)) {
            ev_io_stop(loop, w);
            ev_io_set(w, w->fd, EV_WRITE);
            ev_io_start(loop, w);
          }
          return;
        }
        if (errno == EINTR) continue;
        conn_close(loop, c);
        return;
      }
      c->off += (size_t)n;
      continue;
    }
    if (w->events & EV_WRITE) {
      ev_io_stop(loop, w);
      ev_io_set(w, w->fd, EV_READ);
      ev_io_start(loop, w);
    }
    ssize_t n = read(w->fd, c->buf, BUF_SIZE);
    if (n > 0) {
      c->len = (size_t)n;
      c->off = 0;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0 && errno == EINTR) continue;
    conn_close(loop, c); /* EOF or error */
    return;
  }
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents) {
  (void)revents;
  for (int i = 0; i < 64; i++) {
    int fd = accept_nodelay(w->fd);
    if (fd < 0) return;
    struct conn *c = malloc(sizeof *c);
    if (!c) {
      close(fd);
      continue;
    }
    c->len = c->off = 0;
    ev_io_init(&c->io, conn_cb, fd, EV_READ);
    ev_io_start(loop, &c->io);
  }
}

int main(int argc, char **argv) {
  int lfd = listen_on(argc > 1 ? argv[1] : "127.0.0.1:9000", argv[0]);

  struct ev_loop *loop = ev_default_loop(0);
  ev_io accept_w;
  ev_io_init(&accept_w, accept_cb, lfd, EV_READ);
  ev_io_start(loop, &accept_w);
  ev_run(loop, 0);
  return 0;
}
