/*
 * What the C reference servers share: the listening socket for a HOST:PORT argument (IPv4,
 * non-blocking, SO_REUSEADDR, backlog 1024; port 0 picks a free one), and the
 * "listening on HOST:PORT" line the tests and the bench program wait for; accepting.
 */
#ifndef GEVENT_CSRC_LISTEN_H
#define GEVENT_CSRC_LISTEN_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

/* Listen on `addr` and print where; SIGPIPE is ignored too. Returns the descriptor, or exits
 * with a message (2 for a bad argument, 1 when binding fails). */
static int listen_on(const char *addr, const char *prog) {
  char host[256];
  const char *colon = strrchr(addr, ':');
  if (!colon || (size_t)(colon - addr) >= sizeof host) {
    fprintf(stderr, "usage: %s HOST:PORT\n", prog);
    exit(2);
  }
  memcpy(host, addr, (size_t)(colon - addr));
  host[colon - addr] = 0;
  int port = atoi(colon + 1);

  signal(SIGPIPE, SIG_IGN);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons((unsigned short)port);
  if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
    fprintf(stderr, "bad IPv4 address: %s\n", host);
    exit(2);
  }
  if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(lfd, 1024) < 0) {
    perror("bind/listen");
    exit(1);
  }
  socklen_t sl = sizeof sin;
  getsockname(lfd, (struct sockaddr *)&sin, &sl);
  printf("listening on %s:%d\n", host, ntohs(sin.sin_port));
  fflush(stdout);
  return lfd;
}

/* The next pending connection on `lfd`, non-blocking with TCP_NODELAY; -1 when none is left
 * (an unexpected accept error is printed, and ends this round too). */
static int accept_nodelay(int lfd) {
  int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
      perror("accept");
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

#endif
