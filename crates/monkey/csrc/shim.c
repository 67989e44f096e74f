/*
 * The variadic libc functions the monkey crate interposes, which stable Rust cannot define:
 * each reads its one optional argument (an int, or a pointer for the F_*LK and ioctl
 * requests that take one; passed on as a word either way, as glibc does) and calls the Rust
 * hook, which records what the user asked for and forwards to the kernel.
 *
 * gevent_monkey_shim_anchor is referenced by the Rust crate so that the linker always keeps
 * this object (and with it these definitions) whenever the hooks are linked at all.
 */
#include <stdarg.h>

extern int gevent_monkey_fcntl(int fd, int cmd, unsigned long arg);
extern int gevent_monkey_ioctl(int fd, unsigned long request, unsigned long arg);

int gevent_monkey_shim_anchor(void) { return 1; }

int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  unsigned long arg = va_arg(ap, unsigned long);
  va_end(ap);
  return gevent_monkey_fcntl(fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  unsigned long arg = va_arg(ap, unsigned long);
  va_end(ap);
  return gevent_monkey_fcntl(fd, cmd, arg);
}

int ioctl(int fd, unsigned long request, ...) {
  va_list ap;
  va_start(ap, request);
  unsigned long arg = va_arg(ap, unsigned long);
  va_end(ap);
  return gevent_monkey_ioctl(fd, request, arg);
}
