/*
 * libev's function-like macros as real functions, so that they can be called from Rust and
 * serve as the reference the Rust equivalents in `src/macros.rs` are tested against.
 * Each function is the macro of the same name without the `evshim_` prefix.
 */
#ifndef EV_SHIM_H
#define EV_SHIM_H

#include "ev.h"

typedef void (*evshim_cb)(struct ev_loop *loop, ev_watcher *w, int revents);

void evshim_init(ev_watcher *w, evshim_cb cb);
void evshim_io_set(ev_io *w, int fd, int events);
void evshim_io_modify(ev_io *w, int events);
void evshim_timer_set(ev_timer *w, ev_tstamp after, ev_tstamp repeat);
void evshim_periodic_set(ev_periodic *w, ev_tstamp offset, ev_tstamp interval);
void evshim_signal_set(ev_signal *w, int signum);
void evshim_child_set(ev_child *w, int pid, int trace);
int evshim_is_active(const ev_watcher *w);
int evshim_is_pending(const ev_watcher *w);
int evshim_priority(const ev_watcher *w);
void evshim_set_priority(ev_watcher *w, int priority);
void evshim_set_cb(ev_watcher *w, evshim_cb cb);
ev_tstamp evshim_periodic_at(const ev_periodic *w);
int evshim_async_pending(const ev_async *w);
int evshim_is_default_loop(struct ev_loop *loop);
unsigned int evshim_version_major(void);
unsigned int evshim_version_minor(void);

#endif
