/* See ev_shim.h: each function is exactly the libev macro it is named after. */
#include "ev_shim.h"

void evshim_init(ev_watcher *w, evshim_cb cb) { ev_init(w, cb); }
void evshim_io_set(ev_io *w, int fd, int events) { ev_io_set(w, fd, events); }
void evshim_io_modify(ev_io *w, int events) { ev_io_modify(w, events); }
void evshim_timer_set(ev_timer *w, ev_tstamp after, ev_tstamp repeat) { ev_timer_set(w, after, repeat); }
void evshim_periodic_set(ev_periodic *w, ev_tstamp offset, ev_tstamp interval) { ev_periodic_set(w, offset, interval, 0); }
void evshim_signal_set(ev_signal *w, int signum) { ev_signal_set(w, signum); }
void evshim_child_set(ev_child *w, int pid, int trace) { ev_child_set(w, pid, trace); }
int evshim_is_active(const ev_watcher *w) { return ev_is_active(w); }
int evshim_is_pending(const ev_watcher *w) { return ev_is_pending(w); }
int evshim_priority(const ev_watcher *w) { return ev_priority(w); }
void evshim_set_priority(ev_watcher *w, int priority) { ev_set_priority(w, priority); }
void evshim_set_cb(ev_watcher *w, evshim_cb cb) { ev_set_cb(w, cb); }
ev_tstamp evshim_periodic_at(const ev_periodic *w) { return ev_periodic_at(w); }
int evshim_async_pending(const ev_async *w) { return ev_async_pending(w); }
int evshim_is_default_loop(struct ev_loop *loop) { return ev_is_default_loop(loop); }
unsigned int evshim_version_major(void) { return EV_VERSION_MAJOR; }
unsigned int evshim_version_minor(void) { return EV_VERSION_MINOR; }
