/*
 * A test fixture: a small C library built as Debian builds its own (-O2 -D_FORTIFY_SOURCE=2),
 * so that its calls go to the checking variants (__read_chk, __recv_chk, __poll_chk) rather
 * than the plain names. The monkey tests call it to show that C code cooperates too. Nothing
 * else uses it; the linker keeps it only in a binary that calls these functions.
 */
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The lengths come in as arguments, so that the compiler cannot prove them in bounds and
 * emits the checking variants. */
long gevent_monkey_probe_read(int fd, char *out, unsigned long n) {
  char buf[64];
  long r = read(fd, buf, n);
  if (r > 0) memcpy(out, buf, (size_t)r);
  return r;
}

long gevent_monkey_probe_recv(int fd, char *out, unsigned long n) {
  char buf[64];
  long r = recv(fd, buf, n, 0);
  if (r > 0) memcpy(out, buf, (size_t)r);
  return r;
}

int gevent_monkey_probe_poll(int fd, int timeout_ms, unsigned long nfds) {
  struct pollfd p[1] = {{fd, POLLIN, 0}};
  return poll(p, nfds, timeout_ms);
}

int gevent_monkey_probe_usleep(unsigned us) { return usleep(us); }
