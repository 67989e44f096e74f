// The one place where libev's compile-time configuration is written down.
//
// `build.rs` passes every define below to the C compiler when it builds `ev.c` and the shim, and
// the bindings (committed in `src/bindings.rs`, or regenerated with the `bindgen` feature) are
// produced from `wrapper.h` with exactly the same defines, so the Rust view of every struct
// matches what the C code was compiled with.
//
// This file is included by `build.rs` and by the bindings test with `#[path]`; it has no
// dependencies of its own.

/// `(name, value)` pairs handed to the C compiler as `-Dname=value`.
pub(crate) const DEFINES: &[(&str, &str)] = &[
    // No autoconf `config.h`: everything libev would have probed for is decided right here.
    ("EV_STANDALONE", "1"),
    // One library, many loops: every function takes the loop as its first argument.
    ("EV_MULTIPLICITY", "1"),
    // The full feature set (all watcher types, 4-heap timers, priorities -2..=2).
    ("EV_FEATURES", "0x7f"),
    ("EV_MINPRI", "-2"),
    ("EV_MAXPRI", "2"),
    // Backends. epoll is the default on Linux; poll and select are the fallbacks; linuxaio and
    // io_uring are built and can be asked for explicitly (libev never picks them on its own).
    ("EV_USE_EPOLL", "1"),
    ("EV_USE_POLL", "1"),
    ("EV_USE_SELECT", "1"),
    ("EV_USE_LINUXAIO", "1"),
    ("EV_USE_IOURING", "1"),
    ("EV_USE_KQUEUE", "0"),
    ("EV_USE_PORT", "0"),
    // Kernel helpers: eventfd for ev_async wake-ups, signalfd for signals, timerfd to notice
    // wall-clock jumps, inotify for ev_stat.
    ("EV_USE_EVENTFD", "1"),
    ("EV_USE_SIGNALFD", "1"),
    ("EV_USE_TIMERFD", "1"),
    ("EV_USE_INOTIFY", "1"),
    // Clocks and sleeping.
    ("EV_USE_MONOTONIC", "1"),
    ("EV_USE_REALTIME", "0"),
    ("EV_USE_CLOCK_SYSCALL", "0"),
    ("EV_USE_NANOSLEEP", "1"),
    ("EV_USE_FLOOR", "1"),
    // Every watcher keeps libev's `void *data` member (EV_COMMON is left at its default); the
    // safe layer stores its back-pointer there.
    ("EV_COMMON", "void *data;"),
    // libev's `assert`s guard against programmer errors that the safe layer rules out before
    // calling in (bad signal numbers, a signal on two loops, negative fds). With NDEBUG, the one
    // that can still be reached at run time -- an fd closed behind an active io watcher -- takes
    // libev's graceful path instead of aborting: the watcher is stopped and called with
    // EV_ERROR.
    ("NDEBUG", "1"),
    // libev's internal consistency checks are asserts too, so they are compiled out.
    ("EV_VERIFY", "0"),
];

/// The vendored libev files that are compiled (the rest are documentation).
pub(crate) const C_SOURCES: &[&str] = &["ev.c"];
