//! Introspection (`run_info`) and the blocking monitor.

use greenlet::monitor::{GreenletKind, GreenletState, start_monitor, start_monitor_with};
use greenlet::park::switch_to;
use greenlet::{Builder, Event, format_run_info, run_info, sleep, spawn, yield_now};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod support;
use support::{generous, ms, spin_until};

/// How long a greenlet that keeps the hub from running spins at most while it waits for the
/// monitor's report: a report needs the monitor thread to be scheduled, which on a loaded
/// machine or under valgrind can take far longer than the threshold.
const REPORT_LIMIT: Duration = Duration::from_secs(30);

/// A monitor with threshold `limit`, and a flag its callback sets when it reports the greenlet
/// named `name` (any greenlet with `None`). Spins poll the flag rather than a list behind a
/// lock: under valgrind, which runs one thread at a time, a lock the spinning thread keeps
/// taking holds up the monitor's report (for up to a minute and more).
fn monitor_flagging(
    limit: Duration,
    name: Option<&'static str>,
) -> (greenlet::monitor::MonitorHandle, Arc<AtomicBool>) {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let monitor = start_monitor_with(limit, move |r| {
        if name.is_none_or(|n| r.greenlet_name == n) {
            f.store(true, Ordering::Release);
        }
    });
    (monitor, flag)
}

#[test]
fn run_info_lists_every_greenlet_with_its_state_and_spawn_location() {
    let b = Builder::new().name("sleeper");
    let sleeper_line = line!() + 1; // the line of the spawn call below
    let sleeper = b.spawn(|| sleep(ms(5_000))).unwrap();
    let ev = Event::new();
    let e = ev.clone();
    let waiter = Builder::new()
        .name("waiter")
        .spawn(move || e.wait())
        .unwrap();
    yield_now().unwrap(); // both start and block
    let fresh_line = line!() + 1;
    let fresh = Builder::new().name("fresh").spawn(|| ()).unwrap();

    let info = run_info();
    let ids: Vec<u64> = info.iter().map(|i| i.id).collect();
    assert_eq!(
        ids,
        [0, 1, sleeper.id(), waiter.id(), fresh.id()],
        "{info:#?}"
    );
    let by_name = |n: &str| info.iter().find(|i| i.name == n).unwrap().clone();

    let s = by_name("sleeper");
    assert_eq!(s.state, GreenletState::Blocked { on: "sleep" });
    assert_eq!(s.kind, GreenletKind::Spawned);
    let at = s.spawned_at.unwrap();
    assert_eq!((at.file(), at.line()), (file!(), sleeper_line));

    let w = by_name("waiter");
    assert_eq!(w.state, GreenletState::Blocked { on: "Event" });

    let f = by_name("fresh");
    assert_eq!(f.state, GreenletState::NotStarted);
    assert_eq!(f.spawned_at.unwrap().line(), fresh_line);

    let me = info.iter().find(|i| i.id == 1).unwrap();
    assert_eq!(me.state, GreenletState::Running);
    assert_eq!(me.kind, GreenletKind::Root);
    assert_eq!(me.name, greenlet::getcurrent_name());
    let hub = info.iter().find(|i| i.id == 0).unwrap();
    assert_eq!(
        (hub.kind, hub.state),
        (GreenletKind::Hub, GreenletState::Ready)
    );

    // The text form: one line per greenlet, with `file:line`.
    let text = format_run_info();
    assert_eq!(text.lines().count(), 5, "{text}");
    let line = text.lines().find(|l| l.contains("\"sleeper\"")).unwrap();
    assert!(line.contains("blocked on sleep"), "{line}");
    assert!(
        line.contains(&format!("{}:{}:", file!(), sleeper_line)),
        "{line}"
    );

    // Finished greenlets are no longer listed.
    ev.set();
    waiter.join().unwrap().unwrap();
    fresh.join().unwrap();
    sleeper.kill();
    let ids: Vec<u64> = run_info().iter().map(|i| i.id).collect();
    assert_eq!(ids, [0, 1]);
}

#[test]
fn run_info_from_a_greenlet_shows_it_running_and_the_root_blocked_on_join() {
    let g = Builder::new()
        .name("inner")
        .spawn(|| {
            let info = run_info();
            let me = info.iter().find(|i| i.name == "inner").unwrap();
            let root = info.iter().find(|i| i.id == 1).unwrap();
            (me.state, root.state)
        })
        .unwrap();
    let (me, root) = g.join().unwrap();
    assert_eq!(me, GreenletState::Running);
    assert_eq!(root, GreenletState::Blocked { on: "join" });
}

#[test]
fn a_greenlet_that_does_not_yield_is_reported_by_name() {
    // Scaled: the polite greenlet must not be caught running by a descheduled thread.
    let limit = generous(ms(100));
    let (monitor, busy_named) = monitor_flagging(limit, Some("busy"));
    let s = busy_named.clone();
    let busy = Builder::new()
        .name("busy")
        .spawn(move || spin_until(REPORT_LIMIT, || s.load(Ordering::Acquire)))
        .unwrap();
    // An innocent greenlet that keeps yielding before and after.
    let polite = spawn(|| {
        for _ in 0..3 {
            sleep(ms(10)).unwrap();
        }
    });
    let polite_id = polite.id();
    assert!(busy.join().unwrap(), "no report while the greenlet spun");
    polite.join().unwrap();
    let reports = monitor.stop();
    assert!(
        reports.iter().any(|r| r.greenlet_name == "busy"),
        "{reports:#?}"
    );
    let r = reports.iter().find(|r| r.greenlet_name == "busy").unwrap();
    assert!(r.blocked_for >= limit, "{r:?}");
    assert_eq!(r.max_blocking_time, limit);
    assert!(
        busy_named.load(Ordering::Acquire),
        "the callback saw the report"
    );
    // The polite greenlet never blocked anyone.
    assert!(reports.iter().all(|r| r.greenlet_id != polite_id));
}

#[test]
fn after_a_reported_block_the_hub_dumps_every_greenlet_with_what_it_waits_on() {
    let (monitor, reported) = monitor_flagging(generous(ms(50)), None);
    let event = Event::new();
    let e = event.clone();
    let waiter = Builder::new()
        .name("waiter")
        .spawn(move || e.wait())
        .unwrap();
    yield_now().unwrap();
    assert_eq!(monitor.last_dump(), None, "no block yet");
    // The root greenlet keeps the hub from running until the monitor reports it; the hub runs
    // again in the sleep.
    assert!(spin_until(REPORT_LIMIT, || reported.load(Ordering::Acquire)));
    sleep(ms(1)).unwrap();
    let dump = monitor.last_dump().expect("a dump after the block");
    let line = dump
        .lines()
        .find(|l| l.starts_with(&format!("{} \"waiter\"", waiter.id())))
        .unwrap_or_else(|| panic!("no line for the waiter in {dump}"));
    assert!(line.contains("blocked on Event"), "{line}");
    assert!(
        line.contains("tests/monitor.rs"),
        "where it was spawned: {line}"
    );
    assert!(dump.lines().any(|l| l.contains("(hub)")), "{dump}");
    event.set();
    waiter.join().unwrap().unwrap();
    monitor.stop();
}

#[test]
fn sleeping_in_the_hub_poll_is_not_reported() {
    let threshold = generous(ms(100));
    let monitor = start_monitor(threshold);
    sleep(threshold * 3).unwrap();
    // Also while a greenlet sleeps and the root waits for it.
    let g = spawn(move || sleep(threshold * 3));
    g.join().unwrap().unwrap();
    let reports = monitor.stop();
    assert!(reports.is_empty(), "{reports:#?}");
}

#[test]
fn monitors_can_be_stacked_and_stopped() {
    let a = start_monitor(ms(100));
    let (b, reported) = monitor_flagging(ms(100), None);
    drop(a);
    // `b` still sees the hub: a busy root is reported.
    assert!(spin_until(REPORT_LIMIT, || reported.load(Ordering::Acquire)));
    yield_now().unwrap();
    let reports = b.stop();
    assert_eq!(reports.len(), 1, "{reports:#?}");
    assert_eq!(reports[0].greenlet_name, greenlet::getcurrent_name());
    // Without monitors, spawning and switching still work.
    let g = spawn(|| 3);
    assert_eq!(g.join().unwrap(), 3);
}

#[test]
fn a_monitor_started_inside_a_greenlet_sees_the_very_next_poll() {
    // Started while the hub runs its prepare watchers: the first poll must count as idle too.
    let g = spawn(|| {
        let threshold = generous(ms(100));
        let monitor = start_monitor(threshold);
        sleep(threshold * 3).unwrap();
        monitor.stop()
    });
    let reports = g.join().unwrap();
    assert!(reports.is_empty(), "{reports:#?}");
}

#[test]
fn a_greenlet_reached_by_a_direct_switch_is_the_one_reported() {
    use greenlet::park::current;
    let (monitor, partner_named) = monitor_flagging(ms(100), Some("partner"));
    let main = current();
    let partner = Builder::new()
        .name("partner")
        .spawn(move || {
            for _ in 0..100 {
                switch_to(&main).unwrap();
            }
            // Switched to directly by the root (no trip through the hub): this greenlet, not
            // the root, keeps the hub from running now, and must be the one named. (A loaded
            // machine may cause an earlier report while the two still switch.)
            let named = spin_until(REPORT_LIMIT, || partner_named.load(Ordering::Acquire));
            main.unpark();
            named
        })
        .unwrap();
    let p = partner.handle();
    for _ in 0..101 {
        switch_to(&p).unwrap();
    }
    let named = partner.join().unwrap();
    let reports = monitor.stop();
    assert!(
        named,
        "the spin was not reported as the partner's: {reports:#?}"
    );
    assert_eq!(
        reports.last().unwrap().greenlet_name,
        "partner",
        "{reports:#?}"
    );
}

/// With a blocking monitor running (no budget slices), direct switches still end for the hub
/// and every one of them counts as progress (no report while they run).
#[test]
fn direct_switching_under_a_monitor_neither_starves_the_hub_nor_is_reported() {
    let threshold = generous(ms(500));
    let monitor = start_monitor(threshold);
    let rounds = support::switch_pair_for(threshold * 3);
    assert!(rounds > 100, "they did switch: {rounds}");
    let reports = monitor.stop();
    assert!(reports.is_empty(), "{reports:#?}");
}

/// The depth of the greenlet named `name` in the spawn tree, and its parent's id.
fn tree_place(name: &str) -> Option<(usize, Option<u64>)> {
    greenlet::monitor::run_info_tree()
        .into_iter()
        .find(|e| e.info.name == name)
        .map(|e| (e.depth, e.info.parent))
}

#[test]
fn spawn_tree_follows_who_spawned_whom_and_orphans_hang_under_the_root() {
    let release = Event::new();
    let spawned = Event::new();
    let (r, s) = (release.clone(), spawned.clone());
    let a = Builder::new()
        .name("a")
        .spawn(move || {
            let r2 = r.clone();
            let b = Builder::new()
                .name("b")
                .spawn(move || {
                    let c = Builder::new().name("c").spawn(move || r2.wait()).unwrap();
                    c.join().unwrap()
                })
                .unwrap();
            s.set();
            r.wait().unwrap();
            b.join().unwrap()
        })
        .unwrap();
    spawned.wait().unwrap();
    yield_now().unwrap(); // b starts and spawns c
    let a_id = a.id();
    assert_eq!(tree_place("a"), Some((1, Some(1))));
    let (b_depth, b_parent) = tree_place("b").unwrap();
    assert_eq!((b_depth, b_parent), (2, Some(a_id)));
    assert_eq!(tree_place("c").unwrap().0, 3);
    // The hub sits under the root, and a greenlet spawned from a hub callback under the hub.
    let from_hub = Arc::new(Mutex::new(None));
    let f = from_hub.clone();
    let r = release.clone();
    greenlet::run_callback(move || {
        let g = Builder::new()
            .name("from-hub")
            .spawn(move || r.wait())
            .unwrap();
        *f.lock().unwrap() = Some(g.id());
        drop(g); // it runs on, unjoined
    });
    yield_now().unwrap();
    assert!(from_hub.lock().unwrap().is_some());
    assert_eq!(tree_place("hub"), Some((1, None)));
    assert_eq!(tree_place("from-hub"), Some((2, Some(0))));
    let text = greenlet::monitor::format_run_info_tree();
    let line = |name: &str| {
        text.lines()
            .find(|l| l.contains(&format!("{name:?}")))
            .unwrap_or_else(|| panic!("{name} not in\n{text}"))
            .to_owned()
    };
    assert!(
        line("c").starts_with("      ") && !line("c").starts_with("       "),
        "{text}"
    );
    assert!(
        line("a").starts_with("  ") && !line("a").starts_with("   "),
        "{text}"
    );
    assert!(!text.starts_with(' '), "{text}");
    assert_eq!(text.lines().count(), run_info().len());

    // Orphans: kill a (b and c live on); b then hangs under the root, c under b.
    a.kill();
    assert_eq!(tree_place("b").unwrap().0, 1);
    assert_eq!(tree_place("c").unwrap().0, 2);
    release.set();
    yield_now().unwrap();
}

#[test]
fn count_switches_and_the_switch_assertions() {
    use greenlet::monitor::{assert_no_switch, assert_switches, count_switches};
    let (v, n) = count_switches(|| 5);
    assert_eq!((v, n), (5, 0));
    let g = spawn(|| ());
    let ((), n) = count_switches(|| g.join().unwrap());
    assert!(n >= 1, "{n}");
    assert_eq!(assert_switches(|| sleep(ms(1)).map(|()| 3)).unwrap(), 3);
    assert_eq!(assert_no_switch(|| 4), 4);
    let no_switch = std::panic::catch_unwind(|| assert_switches(|| ()));
    assert!(no_switch.is_err());
    let switched = std::panic::catch_unwind(|| assert_no_switch(|| yield_now().unwrap()));
    assert!(switched.is_err());
}

#[test]
fn all_hubs_run_info_answers_for_idle_hubs_reports_busy_ones_and_forgets_finished_threads() {
    use greenlet::monitor::all_hubs_run_info;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    let release = Arc::new(AtomicBool::new(false));
    let (started_tx, started_rx) = mpsc::channel();
    let r = release.clone();
    let busy = std::thread::Builder::new()
        .name("busy-hub".into())
        .spawn(move || {
            let g = Builder::new()
                .name("spinner")
                .spawn(move || {
                    started_tx.send(std::thread::current().id()).unwrap();
                    while !r.load(Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                })
                .unwrap();
            g.join().unwrap();
            // Now idle: blocked in the hub until told to finish.
            sleep(ms(1)).unwrap();
        })
        .unwrap();
    let busy_id = started_rx.recv().unwrap();
    // The spinner keeps its hub from answering, whatever the timeout.
    let all = all_hubs_run_info(ms(50));
    let entry = all.iter().find(|h| h.thread == busy_id).unwrap();
    assert_eq!(entry.thread_name, "busy-hub");
    assert_eq!(entry.run_info, None);
    assert!(entry.to_string().contains("did not answer"), "{entry}");
    // This thread's own hub is described directly (no waiting needed; other tests' hubs may
    // be blocked outside their loop, so this asks without waiting for them).
    yield_now().unwrap();
    let all = all_hubs_run_info(Duration::ZERO);
    let me = all
        .iter()
        .find(|h| h.thread == std::thread::current().id())
        .unwrap();
    assert!(me.run_info.as_ref().unwrap().contains("\"hub\""));
    release.store(true, Ordering::Release);
    busy.join().unwrap();
    // The finished thread's hub has left the registry.
    let all = all_hubs_run_info(Duration::ZERO);
    assert!(all.iter().all(|h| h.thread != busy_id));
}

#[test]
fn all_hubs_run_info_lists_the_greenlets_of_another_idle_hub() {
    use std::sync::mpsc;
    let (ready_tx, ready_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let other = std::thread::spawn(move || {
        let go = Event::new();
        let g = go.clone();
        let waiter = Builder::new()
            .name("far-waiter")
            .spawn(move || g.wait())
            .unwrap();
        yield_now().unwrap();
        ready_tx.send(std::thread::current().id()).unwrap();
        // Idle in the hub (polling) until the test is done with it.
        while done_rx.try_recv().is_err() {
            sleep(ms(1)).unwrap();
        }
        go.set();
        waiter.join().unwrap().unwrap();
    });
    let id = ready_rx.recv().unwrap();
    let text = answer_of(id);
    assert!(text.contains("\"far-waiter\" blocked on Event"), "{text}");
    done_tx.send(()).unwrap();
    other.join().unwrap();
}

/// The run info of the hub of thread `id`, asked again until it answers (the hubs of other
/// tests, blocked outside their loop, make each round last its whole timeout).
fn answer_of(id: std::thread::ThreadId) -> String {
    let start = std::time::Instant::now();
    loop {
        let all = greenlet::monitor::all_hubs_run_info(ms(100));
        let entry = all
            .iter()
            .find(|h| h.thread == id)
            .expect("the hub is registered");
        if let Some(text) = &entry.run_info {
            return text.clone();
        }
        assert!(
            start.elapsed() < generous(ms(30_000)),
            "the hub never answered"
        );
    }
}
