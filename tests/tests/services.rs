//! Services, adopted work and thread runners in real child processes: a service's end stops its
//! actor and the parent's nursery names it; blocking invocations stay within their slots, are
//! killed, removed or rerouted as documented, and leave async calls answered meanwhile.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use actor::{Portal, Value};
use actor_tests::process_alive;
use futures::StreamExt;

mod svc {
    use super::*;

    /// Wakes the services waiting for it (one permit, kept until taken).
    pub(crate) static TRIP: tokio::sync::Notify = tokio::sync::Notify::const_new();

    #[actor::remote(ns = "svc")]
    pub(crate) async fn trip() {
        TRIP.notify_one();
    }

    #[actor::remote(ns = "svc")]
    pub(crate) async fn add(a: i64, b: i64) -> i64 {
        a + b
    }

    #[actor::remote(ns = "svc")]
    pub(crate) async fn pid() -> u32 {
        std::process::id()
    }

    /// Writes "graceful" to `path` when this actor's teardown runs.
    #[actor::remote(ns = "svc")]
    pub(crate) async fn mark_teardown(path: String) {
        if let Some(me) = actor::Actor::current() {
            me.on_teardown(move || {
                let _ = std::fs::write(&path, "graceful");
            });
        }
    }

    #[actor::service(ns = "svc_panic")]
    async fn panicky() {
        TRIP.notified().await;
        panic!("the panicky service gave up");
    }

    #[actor::service(ns = "svc_return")]
    async fn quitter() {
        TRIP.notified().await;
    }

    #[actor::service(ns = "svc_error")]
    async fn failer() -> actor::Result<()> {
        TRIP.notified().await;
        Err(actor::Error::raise(
            "ValueError",
            "the failer service failed",
        ))
    }

    /// Ignores the stop (for a few seconds): abandoned at teardown.
    #[actor::service(ns = "svc_stubborn", blocking)]
    fn stubborn() {
        std::thread::sleep(Duration::from_secs(5));
    }

    /// A well-behaved async service: runs until its actor stops.
    #[actor::service(ns = "svc_quiet")]
    async fn ticker(svc: actor::Service) -> actor::Result<()> {
        svc.cancelled().await;
        Ok(())
    }

    /// A well-behaved blocking service: checks for the stop between steps.
    #[actor::service(ns = "svc_quiet", blocking)]
    fn poller(svc: actor::Service) {
        while !svc.is_cancelled() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// From a blocking thread, runs async work on the actor's runtime: a value and an error.
    #[actor::remote(ns = "svc", blocking)]
    pub(crate) fn execute_both() -> actor::Result<(i64, String)> {
        let me = actor::Actor::current().ok_or_else(|| actor::Error::Usage("no actor".into()))?;
        let value = me.execute(async { Ok(40 + 2) })?;
        let error = me
            .execute(async { Err::<i64, _>(actor::Error::raise("ValueError", "executed failure")) })
            .unwrap_err();
        Ok((value, error.to_string()))
    }

    /// Adopts work that fails: fatal for this actor.
    #[actor::remote(ns = "svc")]
    pub(crate) async fn adopt_failing() {
        if let Some(me) = actor::Actor::current() {
            me.adopt("doomed", |_svc| async {
                Err::<(), _>(actor::Error::raise("ValueError", "the adopted work failed"))
            })
            .expect("the actor serves");
        }
    }

    /// A blocking function that fails: its invocation's status is `failed`.
    #[actor::remote(ns = "svc", blocking)]
    pub(crate) fn refuse(text: String) -> Result<u64, std::num::ParseIntError> {
        text.parse()
    }

    /// From a blocking thread, adopts async work that fails: fatal for this actor.
    #[actor::remote(ns = "svc", blocking)]
    pub(crate) fn adopt_from_a_thread() -> actor::Result<()> {
        let me = actor::Actor::current().ok_or_else(|| actor::Error::Usage("no actor".into()))?;
        me.adopt("adopted-from-a-thread", |_svc| async {
            Err::<(), _>(actor::Error::raise("ValueError", "failed on the runtime"))
        })
    }

    static RUNNING: AtomicUsize = AtomicUsize::new(0);
    static MOST: AtomicUsize = AtomicUsize::new(0);

    /// Blocks its thread for `ms`; returns the most blocking invocations seen running at once.
    #[actor::remote(ns = "svc", blocking)]
    pub(crate) fn occupy(ms: u64) -> u64 {
        let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        MOST.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(ms));
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        MOST.load(Ordering::SeqCst) as u64
    }
}

use svc::*;

fn marker(test: &str) -> String {
    std::env::temp_dir()
        .join(format!(
            "actor-svc-{test}-{}-{}",
            std::process::id(),
            actor::Uid::new("m").uuid
        ))
        .to_string_lossy()
        .into_owned()
}

/// The child's thread runner status, through the introspection call.
async fn thread_runner(child: &Portal) -> Value {
    child
        .run_from_ns(actor::INTROSPECTION_NS, "thread_runner", Value::Map(vec![]))
        .await
        .unwrap()
}

fn field<'a>(map: &'a Value, key: &str) -> &'a Value {
    map.as_map()
        .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some(key)))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {key} in {map}"))
}

fn statuses(status: &Value) -> Vec<String> {
    field(status, "invocations")
        .as_array()
        .unwrap()
        .iter()
        .map(|i| field(i, "status").as_str().unwrap().to_owned())
        .collect()
}

/// Polls the child's thread runner (bounded) until `ready` holds.
async fn runner_until(child: &Portal, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let since = Instant::now();
    loop {
        let status = thread_runner(child).await;
        if ready(&status) {
            return status;
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "never {what}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn a_service_end_stops_its_actor(ns: &str, expected: &[&str]) {
    let nursery = actor::open_nursery().await.unwrap();
    let child = nursery
        .start_actor("serviced")
        .enable("svc")
        .enable(ns)
        .await
        .unwrap();
    let file = marker(ns);
    child
        .run(mark_teardown { path: file.clone() })
        .await
        .unwrap();
    let pid = child.run(pid {}).await.unwrap();
    // The service ends now; the call itself may or may not be answered first.
    let _ = child.run(trip {}).await;
    let err = tokio::time::timeout(Duration::from_secs(10), nursery.close())
        .await
        .expect("the nursery must see the child stop")
        .unwrap_err();
    let remote = err.as_remote().unwrap_or_else(|| panic!("{err:?}"));
    assert_eq!(remote.type_str, "ServiceFailed", "{err}");
    for part in expected {
        assert!(
            remote.tb_str.contains(part),
            "{part:?} not in {}",
            remote.tb_str
        );
    }
    assert_eq!(
        std::fs::read_to_string(&file).unwrap_or_default(),
        "graceful"
    );
    let _ = std::fs::remove_file(&file);
    // The nursery reaped it before `close` returned.
    assert!(
        !process_alive(pid),
        "the stopped child {pid} is still running"
    );
}

#[actor::test]
async fn a_service_that_panics_stops_its_actor_and_is_named() {
    a_service_end_stops_its_actor("svc_panic", &["service panicky failed", "gave up"]).await;
}

#[actor::test]
async fn a_service_that_returns_stops_its_actor_and_is_named() {
    a_service_end_stops_its_actor("svc_return", &["service quitter returned"]).await;
}

#[actor::test]
async fn a_service_that_fails_stops_its_actor_and_is_named() {
    a_service_end_stops_its_actor(
        "svc_error",
        &["service failer failed", "the failer service failed"],
    )
    .await;
}

#[actor::test]
async fn services_are_listed_and_stop_gracefully_with_their_actor() {
    let nursery = actor::open_nursery().await.unwrap();
    let child = nursery
        .start_actor("quiet")
        .enable("svc")
        .enable("svc_quiet")
        .await
        .unwrap();
    let listed = child
        .run_from_ns(actor::INTROSPECTION_NS, "services", Value::Map(vec![]))
        .await
        .unwrap();
    let mut services: Vec<(String, String, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let text = |k| field(s, k).as_str().unwrap().to_owned();
            (text("name"), text("flavour"), text("state"))
        })
        .collect();
    services.sort();
    assert_eq!(
        services,
        [
            (
                "poller".to_owned(),
                "blocking".to_owned(),
                "running".to_owned()
            ),
            (
                "ticker".to_owned(),
                "async".to_owned(),
                "running".to_owned()
            ),
        ]
    );
    // Stopped with the actor: no failure reported.
    nursery.close().await.unwrap();
}

#[actor::test]
async fn execute_returns_values_and_errors_and_adopted_work_that_fails_is_fatal() {
    let nursery = actor::open_nursery().await.unwrap();
    let child = nursery.start_actor("worker").enable("svc").await.unwrap();
    let (value, error) = child.run(execute_both {}).await.unwrap();
    assert_eq!(value, 42);
    assert!(error.contains("executed failure"), "{error}");
    let _ = child.run(adopt_failing {}).await;
    let err = tokio::time::timeout(Duration::from_secs(10), nursery.close())
        .await
        .expect("the nursery must see the child stop")
        .unwrap_err();
    let remote = err.as_remote().unwrap_or_else(|| panic!("{err:?}"));
    assert_eq!(remote.type_str, "ServiceFailed");
    assert!(
        remote.tb_str.contains("service doomed failed"),
        "{}",
        remote.tb_str
    );
    assert!(
        remote.tb_str.contains("the adopted work failed"),
        "{}",
        remote.tb_str
    );
}

#[actor::test]
async fn eight_blocking_invocations_keep_to_two_slots_beside_a_thousand_async_calls() {
    let nursery = actor::open_nursery().await.unwrap();
    let child = nursery
        .start_actor("blocky")
        .enable("svc")
        .thread_slots(2)
        .await
        .unwrap();
    let caller = child.clone();
    let blocking = tokio::spawn(async move {
        futures::future::join_all((0..8).map(|_| caller.run(occupy { ms: 250 }))).await
    });
    // The blocking ones have started (two of them) before the async calls go out.
    runner_until(&child, "two invocations running", |s| {
        field(s, "running").as_u64() == Some(2)
    })
    .await;
    let sums = futures::future::join_all((0..1000).map(|i| child.run(add { a: i, b: 1 }))).await;
    assert!(
        sums.iter()
            .enumerate()
            .all(|(i, s)| *s.as_ref().unwrap() == i as i64 + 1)
    );
    // Answered while the blocking ones were still busy (8 x 250 ms on 2 slots).
    let status = thread_runner(&child).await;
    let busy =
        field(&status, "running").as_u64().unwrap() + field(&status, "pending").as_u64().unwrap();
    assert!(
        busy > 0,
        "the async calls waited for the blocking ones: {status}"
    );
    let most: Vec<u64> = blocking
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(most.len(), 8);
    assert_eq!(
        most.iter().max(),
        Some(&2),
        "never more than two at once: {most:?}"
    );
    nursery.close().await.unwrap();
}

#[actor::test]
async fn invocation_statuses_follow_pending_running_killed_and_ended() {
    let nursery = actor::open_nursery().await.unwrap();
    let child = nursery
        .start_actor("one-slot")
        .enable("svc")
        .thread_slots(1)
        .await
        .unwrap();
    let first = child.call(occupy { ms: 300 }).await.unwrap();
    let second = child.call(occupy { ms: 300 }).await.unwrap();
    let third = child.call(occupy { ms: 300 }).await.unwrap();
    let status = runner_until(&child, "one running, two pending", |s| {
        field(s, "running").as_u64() == Some(1) && field(s, "pending").as_u64() == Some(2)
    })
    .await;
    assert_eq!(statuses(&status), ["running", "pending", "pending"]);
    assert_eq!(field(&status, "slots").as_u64(), Some(1));
    // A pending invocation cancelled is removed; a running one cancelled is killed.
    third.cancel().await.unwrap();
    first.cancel().await.unwrap();
    let status = runner_until(&child, "the killed one ended", |s| {
        statuses(s).contains(&"killed".to_owned())
    })
    .await;
    // The cancelled pending one is gone; the second still waits: the killed invocation's thread
    // holds the slot until it finishes.
    assert_eq!(statuses(&status), ["pending", "killed"], "{status}");
    assert_eq!(field(&status, "running").as_u64(), Some(1), "{status}");
    // The second takes the slot once the killed thread gives it back, and succeeds.
    assert_eq!(second.result().await.unwrap(), 1);
    let status = thread_runner(&child).await;
    let seen = statuses(&status);
    assert_eq!(
        seen.iter().filter(|s| *s == "killed").count(),
        1,
        "{seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|s| *s == "succeeded").count(),
        1,
        "{seen:?}"
    );
    assert_eq!(seen.len(), 2, "the cancelled pending one is gone: {seen:?}");
    nursery.close().await.unwrap();
}

#[actor::test]
async fn a_graceful_stop_reroutes_blocking_invocations_to_their_callers() {
    let nursery = actor::open_nursery().await.unwrap();
    let child = nursery
        .start_actor("stopping")
        .enable("svc")
        .thread_slots(2)
        .await
        .unwrap();
    let caller = child.clone();
    let calls = tokio::spawn(async move {
        futures::future::join_all((0..3).map(|_| caller.run(occupy { ms: 5_000 }))).await
    });
    runner_until(&child, "two running", |s| {
        field(s, "running").as_u64() == Some(2)
    })
    .await;
    assert!(child.cancel_actor().await.unwrap());
    let outcomes = tokio::time::timeout(Duration::from_secs(10), calls)
        .await
        .expect("rerouted at once, not after the 5 s")
        .unwrap();
    for outcome in outcomes {
        let err = outcome.unwrap_err();
        let remote = err.as_remote().unwrap_or_else(|| panic!("{err:?}"));
        assert_eq!(remote.type_str, "Rerouted", "{err}");
    }
    nursery.close().await.unwrap();
}

#[actor::test]
async fn a_team_reruns_rerouted_tasks_elsewhere_with_one_outcome_each() {
    let nursery = actor::open_nursery().await.unwrap();
    let team = nursery
        .team("blk")
        .enable("svc")
        .members(2)
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
        .recruit()
        .await
        .unwrap();
    let mut events = Box::pin(team.events());
    let mut outcomes = team.map((0..4).map(|_| occupy { ms: 400 }));
    assert!(futures::poll!(outcomes.next()).is_pending());
    // Once both members run a task, one of them is stopped gracefully from outside.
    let mut running = Vec::new();
    while running.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .unwrap()
            .unwrap();
        if let actor::team::TeamEvent::Task {
            state: actor::team::TaskState::Running { member, .. },
            ..
        } = event
        {
            running.push(member);
        }
    }
    let victim = actor::find_actor(&running[0])
        .await
        .unwrap()
        .expect("registered");
    assert!(victim.cancel_actor().await.unwrap());
    let mut seen = std::collections::HashSet::new();
    let mut rerouted = 0;
    while let Some(outcome) = tokio::time::timeout(Duration::from_secs(20), outcomes.next())
        .await
        .expect("every outcome")
    {
        assert!(seen.insert(outcome.task), "task {} twice", outcome.task);
        if outcome.attempts[0]
            .failure
            .as_deref()
            .is_some_and(|f| f.contains("Rerouted"))
        {
            rerouted += 1;
            assert!(outcome.attempts.len() >= 2);
        }
        assert!(outcome.result.is_ok(), "{:?}", outcome.attempts);
    }
    assert_eq!(seen.len(), 4);
    assert!(
        rerouted >= 1,
        "the stopped member's task was rerouted and rerun"
    );
    team.dismiss(Duration::from_secs(5)).await;
    nursery.close().await.unwrap();
}

/// A root whose adopted work fails: the root stops and its program fails with the error naming
/// the work (under `#[actor::main]`, the process prints it and exits with status 1).
#[actor::test]
#[should_panic(expected = "service root-doomed failed")]
async fn a_root_stops_when_its_adopted_work_fails() {
    let me = actor::Actor::current().expect("the root");
    me.adopt("root-doomed", |_svc| async {
        Err::<(), _>(actor::Error::raise("ValueError", "the root's work failed"))
    })
    .expect("the root serves");
    // The failure stops the program here; it never ends by itself.
    std::future::pending::<()>().await;
}

/// A blocking service that ignores the stop is abandoned after the grace, and reported so;
/// the actor's teardown still completes.
#[tokio::test]
async fn a_blocking_service_that_ignores_the_stop_is_abandoned() {
    let actor = actor::Actor::builder("stubborn")
        .listen(actor::Addr::tcp("127.0.0.1", 0))
        .enable("svc_stubborn")
        .start()
        .await
        .unwrap();
    let info = actor::Actor::current().expect("the actor started in this runtime");
    assert_eq!(info.uid(), actor.uid());
    actor.cancel();
    tokio::time::timeout(Duration::from_secs(10), actor.wait())
        .await
        .expect("teardown completes despite the stubborn thread");
    let services = info.services();
    assert_eq!(services.len(), 1, "{services:?}");
    assert_eq!(services[0].name, "stubborn");
    assert_eq!(services[0].state, actor::ServiceState::Abandoned);
}

#[actor::test]
async fn a_blocking_function_that_fails_is_failed_and_adopting_from_a_thread_works() {
    let nursery = actor::open_nursery().await.unwrap();
    let child = nursery.start_actor("threads").enable("svc").await.unwrap();
    let err = child.run(refuse { text: "x".into() }).await.unwrap_err();
    assert_eq!(err.as_remote().unwrap().type_str, "ParseIntError");
    let status = thread_runner(&child).await;
    assert_eq!(statuses(&status), ["failed"], "{status}");
    // Adopted from a blocking thread, the work runs on the actor's runtime; its failure is
    // fatal as any adopted work's.
    let _ = child.run(adopt_from_a_thread {}).await;
    let err = tokio::time::timeout(Duration::from_secs(10), nursery.close())
        .await
        .expect("the nursery must see the child stop")
        .unwrap_err();
    let remote = err.as_remote().unwrap_or_else(|| panic!("{err:?}"));
    assert!(
        remote
            .tb_str
            .contains("service adopted-from-a-thread failed"),
        "{}",
        remote.tb_str
    );
}
