/*
 * The load client of the echo benchmarks: one thread, epoll, CONNS connections, each with one
 * message of SIZE bytes in flight (send it, read its whole echo, send the next). Written in C
 * on plain epoll so that the client is never what limits a server it measures, and runs as a
 * process of its own (10,000 connections need 10,000 descriptors on each side).
 *
 * Usage: echo_client HOST:PORT CONNS SECONDS [SIZE]   (SIZE defaults to 64)
 *
 * It connects every connection, then makes one warm-up round (every connection's echo comes
 * back, so every connection has been accepted and served once), then starts the clock and
 * counts echoes for SECONDS. Prints one line: "messages N seconds S msgs_per_sec R".
 * With SECONDS 0 it stops after the warm-up instead, prints "idle CONNS", and keeps the
 * connections open and idle until its standard input is closed (to measure what an idle
 * connection costs the server). Exits 1 on any connection error.
 */
#include <arpa/inet.h>
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
#include <time.h>
#include <unistd.h>

struct conn {
  int fd;
  size_t got; /* bytes of the current echo read so far */
};

static size_t size = 64;
static char msg[65536];
static char back[65536];

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void send_msg(struct conn *c) {
  size_t off = 0;
  while (off < size) { /* a 64-byte write on a fresh socket buffer never blocks for long */
    ssize_t n = send(c->fd, msg + off, size - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      die("send");
    }
    off += (size_t)n;
  }
  c->got = 0;
}

/* Read what is there of the echo; returns 1 when the whole message has come back. */
static int read_echo(struct conn *c) {
  for (;;) {
    ssize_t n = recv(c->fd, back, size - c->got, MSG_DONTWAIT);
    if (n > 0) {
      c->got += (size_t)n;
      if (c->got == size) return 1;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return 0;
    if (n == 0) {
      fprintf(stderr, "echo_client: the server closed a connection\n");
      exit(1);
    }
    die("recv");
  }
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s HOST:PORT CONNS SECONDS [SIZE]\n", argv[0]);
    return 2;
  }
  const char *addr = argv[1];
  int conns = atoi(argv[2]);
  double secs = atof(argv[3]);
  if (argc > 4) size = (size_t)atoi(argv[4]);
  if (conns <= 0 || secs < 0 || size == 0 || size > sizeof msg) {
    fprintf(stderr, "echo_client: bad arguments\n");
    return 2;
  }
  memset(msg, 7, sizeof msg);
  char host[256];
  const char *colon = strrchr(addr, ':');
  if (!colon || (size_t)(colon - addr) >= sizeof host) {
    fprintf(stderr, "echo_client: bad address %s\n", addr);
    return 2;
  }
  memcpy(host, addr, (size_t)(colon - addr));
  host[colon - addr] = 0;
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons((unsigned short)atoi(colon + 1));
  if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
    fprintf(stderr, "echo_client: bad IPv4 address %s\n", host);
    return 2;
  }

  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  signal(SIGPIPE, SIG_IGN);

  struct conn *cs = calloc((size_t)conns, sizeof *cs);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (!cs || ep < 0) die("setup");
  for (int i = 0; i < conns; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    cs[i].fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
  }
  /* Sockets stay blocking for connect and send (both complete at once on loopback); reads
   * are non-blocking per call (MSG_DONTWAIT). */

  struct epoll_event evs[1024];
  /* Warm-up: one echo per connection. */
  for (int i = 0; i < conns; i++) send_msg(&cs[i]);
  int pending = conns;
  double warm_deadline = now() + 60;
  while (pending > 0) {
    int n = epoll_wait(ep, evs, 1024, 1000);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int k = 0; k < n; k++) {
      struct conn *c = evs[k].data.ptr;
      if (c->got < size && read_echo(c)) {
        c->got = size; /* done for the warm-up */
        pending--;
      }
    }
    if (now() > warm_deadline) {
      fprintf(stderr, "echo_client: %d connections got no echo within 60 s\n", pending);
      return 1;
    }
  }

  if (secs == 0) {
    printf("idle %d\n", conns);
    fflush(stdout);
    char b[256];
    while (read(0, b, sizeof b) > 0) {
    }
    return 0;
  }

  long long messages = 0;
  double start = now();
  double end = start + secs;
  for (int i = 0; i < conns; i++) send_msg(&cs[i]);
  for (;;) {
    double t = now();
    if (t >= end) break;
    int n = epoll_wait(ep, evs, 1024, (int)((end - t) * 1000) + 1);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int k = 0; k < n; k++) {
      struct conn *c = evs[k].data.ptr;
      if (read_echo(c)) {
        messages++;
        send_msg(c);
      }
    }
  }
  double elapsed = now() - start;
  printf("messages %lld seconds %.3f msgs_per_sec %.1f\n", messages, elapsed,
         (double)messages / elapsed);
  fflush(stdout);
  return 0;
}
