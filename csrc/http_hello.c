/*
 * The C floor every HTTP benchmark is measured against: a callback-only HTTP/1.1 keep-alive
 * server written directly on libev (the same vendored libev the Rust crates use), one thread,
 * non-blocking sockets, one io watcher per connection that is re-armed between READ and WRITE.
 *
 * It parses nothing but the end of each request head (`\r\n\r\n`; request bodies are not
 * expected) and answers every head, whatever its method and path, with the same response:
 * `200 OK` with `Server`, `Date`, `Content-Type: text/plain`, `Content-Length: 13` and
 * `Hello, World!`. The response is formatted at most once a second (when ev_now's second
 * changes, for the Date); the answers to all the heads one read brought in go out in one
 * write. Like nginx, a read that fills less than the free space is taken to have drained the
 * socket: the next read waits for the loop to report the descriptor readable again.
 *
 * Usage: http_hello HOST:PORT   (prints "listening on HOST:PORT" once it listens, runs until
 * killed).
 */
#define _GNU_SOURCE /* memmem, accept4 (in listen.h) */
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
#include <time.h>
#include <unistd.h>

#include "ev.h"
#include "listen.h"

#define READ_SIZE 16384  /* the longest request head accepted, and the read buffer */
#define WRITE_SIZE 65536 /* answers buffered before they are written */

struct conn {
  ev_io io;
  size_t rlen;       /* bytes in rbuf: the start of a head not complete yet */
  size_t scan;       /* where the search for its end resumes */
  size_t wlen, woff; /* answers still to write: wbuf[woff..wlen] */
  char rbuf[READ_SIZE];
  char wbuf[WRITE_SIZE];
};

static char response[512];
static size_t response_len;
static time_t response_second = (time_t)-1;

/* Format the response again if ev_now is in another second than the cached one. */
static void refresh_response(struct ev_loop *loop) {
  time_t now = (time_t)ev_now(loop);
  if (now == response_second) return;
  struct tm tm;
  char date[64];
  gmtime_r(&now, &tm);
  strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  int n = snprintf(response, sizeof response,
                   "HTTP/1.1 200 OK\r\n"
                   "Server: libev-c\r\n"
                   "Date: %s\r\n"
                   "Content-Type: text/plain\r\n"
                   "Content-Length: 13\r\n"
                   "\r\n"
                   "Hello, World!",
                   date);
  response_len = (size_t)n;
  response_second = now;
}

/* Answer every complete head in rbuf while wbuf has room, then move the rest of rbuf to its
 * start. Heads left over for lack of room are answered after the write. */
static void answer_heads(struct ev_loop *loop, struct conn *c) {
  size_t start = 0;
  refresh_response(loop);
  while (c->wlen + response_len <= WRITE_SIZE) {
    size_t from = c->scan > start ? c->scan : start;
    char *end = memmem(c->rbuf + from, c->rlen - from, "\r\n\r\n", 4);
    if (!end) break;
    memcpy(c->wbuf + c->wlen, response, response_len);
    c->wlen += response_len;
    start = (size_t)(end - c->rbuf) + 4;
  }
  if (start > 0) {
    memmove(c->rbuf, c->rbuf + start, c->rlen - start);
    c->rlen -= start;
    c->scan = 0;
  }
  /* The terminator may straddle the next read: resume three bytes before the end. */
  if (c->rlen > 3 && c->scan < c->rlen - 3) c->scan = c->rlen - 3;
}

static void conn_close(struct ev_loop *loop, struct conn *c) {
  ev_io_stop(loop, &c->io);
  close(c->io.fd);
  free(c);
}

static void set_events(struct ev_loop *loop, ev_io *w, int events) {
  if (w->events != events) {
    ev_io_stop(loop, w);
    ev_io_set(w, w->fd, events);
    ev_io_start(loop, w);
  }
}

static void conn_cb(struct ev_loop *loop, ev_io *w, int revents) {
  struct conn *c = (struct conn *)w;
  int drained = 0;
  (void)revents;
  for (;;) {
    if (c->woff < c->wlen) {
      ssize_t n = write(w->fd, c->wbuf + c->woff, c->wlen - c->woff);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          set_events(loop, w, EV_WRITE);
          return;
        }
        if (errno == EINTR) continue;
        conn_close(loop, c);
        return;
      }
      c->woff += (size_t)n;
      continue;
    }
    c->wlen = c->woff = 0;
    set_events(loop, w, EV_READ);
    answer_heads(loop, c);
    if (c->wlen > 0) continue;
    if (drained) return; /* the last read was short: wait for the next readiness */
    if (c->rlen == READ_SIZE) { /* a head longer than the buffer */
      conn_close(loop, c);
      return;
    }
    size_t room = READ_SIZE - c->rlen;
    ssize_t n = read(w->fd, c->rbuf + c->rlen, room);
    if (n > 0) {
      c->rlen += (size_t)n;
      drained = (size_t)n < room;
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
    c->rlen = c->scan = c->wlen = c->woff = 0;
    ev_io_init(&c->io, conn_cb, fd, EV_READ);
    ev_io_start(loop, &c->io);
  }
}

int main(int argc, char **argv) {
  int lfd = listen_on(argc > 1 ? argv[1] : "127.0.0.1:8080", argv[0]);

  struct ev_loop *loop = ev_default_loop(0);
  ev_io accept_w;
  ev_io_init(&accept_w, accept_cb, lfd, EV_READ);
  ev_io_start(loop, &accept_w);
  ev_run(loop, 0);
  return 0;
}
