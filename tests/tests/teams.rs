//! Teams of worker actors in real processes: every task ends in exactly one outcome, whatever
//! dies; recoverable failures are retried on another member, others reported at once; dead and
//! hung members are replaced; dismissal and drop leave no process.

// Test code: a failed unwrap or panic is a failed test, with the reason printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use actor::{
    Error,
    team::{MemberState, TaskState, TeamEvent},
};
use actor_tests::process_alive;
use futures::StreamExt;

mod work {
    use std::time::Duration;

    /// `n * n`, and the pid of the member that computed it, after a short nap.
    #[actor::remote(ns = "team")]
    pub(crate) async fn square(n: u64) -> (u64, u32) {
        tokio::time::sleep(Duration::from_millis(1)).await;
        (n * n, std::process::id())
    }

    /// Fails recoverably the first time it runs for `marker` (a file it creates), then succeeds.
    #[actor::remote(ns = "team")]
    pub(crate) async fn flaky(marker: String) -> actor::Result<u32> {
        if std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
            .is_ok()
        {
            return Err(actor::Error::recoverable("first attempt fails"));
        }
        Ok(std::process::id())
    }

    /// Always fails recoverably.
    #[actor::remote(ns = "team")]
    pub(crate) async fn always_busy() -> actor::Result<()> {
        Err(actor::Error::recoverable("the upstream is busy"))
    }

    /// Fails with a type teams do not retry.
    #[actor::remote(ns = "team")]
    pub(crate) async fn wrong_input(text: String) -> actor::Result<u64> {
        text.parse::<u64>()
            .map_err(|e| actor::Error::raise("ValueError", format!("{text:?}: {e}")))
    }

    /// Hangs its member's only thread the first time it runs for `marker`; then returns.
    #[actor::remote(ns = "team")]
    pub(crate) async fn hang_once(marker: String) -> u32 {
        if std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
            .is_ok()
        {
            std::fs::write(format!("{marker}.pid"), std::process::id().to_string()).ok();
            std::thread::sleep(Duration::from_secs(60));
        }
        std::process::id()
    }

    /// Naps `ms` milliseconds, then returns `n`.
    #[actor::remote(ns = "team")]
    pub(crate) async fn nap(n: u64, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        n
    }

    /// Sleeps `ms`, then says how many `team` calls run in this member at that moment.
    #[actor::remote(ns = "team")]
    pub(crate) async fn overlap(ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        actor::Actor::current().map_or(0, |me| me.running_calls("team"))
    }

    /// Answers with this member's pid, then its actor stops on its own (the member resigns).
    #[actor::remote(ns = "team")]
    pub(crate) async fn resign() -> u32 {
        if let Some(me) = actor::Actor::current() {
            tokio::spawn(async move {
                // After the answer is on its way.
                tokio::task::yield_now().await;
                me.cancel();
            });
        }
        std::process::id()
    }

    /// This member's pid.
    #[actor::remote(ns = "team")]
    pub(crate) async fn pid() -> u32 {
        std::process::id()
    }
}

use work::*;

fn marker(test: &str) -> String {
    std::env::temp_dir()
        .join(format!(
            "actor-team-{test}-{}-{}",
            std::process::id(),
            actor::Uid::new("m").uuid
        ))
        .to_string_lossy()
        .into_owned()
}

/// Waits (bounded) until `n` attempts have started, as the team's events say.
/// The team's next event, within 10 s.
async fn next_event(
    events: &mut std::pin::Pin<Box<impl futures::Stream<Item = TeamEvent>>>,
) -> TeamEvent {
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("no team event within 10 s")
        .expect("the team's events ended")
}

async fn until_running(
    events: &mut std::pin::Pin<Box<impl futures::Stream<Item = TeamEvent>>>,
    n: usize,
) {
    let mut running = 0;
    while running < n {
        let event = next_event(events).await;
        if let TeamEvent::Task {
            state: TaskState::Running { .. },
            ..
        } = event
        {
            running += 1;
        }
    }
}

/// Waits (bounded) until every pid is gone from the process table.
async fn all_gone(pids: impl IntoIterator<Item = u32>) {
    let pids: Vec<u32> = pids.into_iter().collect();
    let since = Instant::now();
    while pids.iter().any(|pid| process_alive(*pid)) {
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "still running: {:?}",
            pids.iter()
                .filter(|p| process_alive(**p))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actor::test]
async fn a_thousand_tasks_survive_two_members_killed_midway_each_reported_once() {
    let nursery = actor::open_nursery().await.unwrap();
    let team = nursery
        .team("sq")
        .enable("team")
        .members(4)
        .max_attempts(5)
        .max_in_flight(32)
        .recruit()
        .await
        .unwrap();
    let mut outcomes = team.map((0..1000).map(|n| square { n }));
    let mut seen = HashSet::new();
    let mut pids = HashSet::new();
    let mut killed = Vec::new();
    let mut retried = 0;
    while let Some(outcome) = tokio::time::timeout(Duration::from_secs(30), outcomes.next())
        .await
        .expect("an outcome")
    {
        assert!(
            seen.insert(outcome.task),
            "task {} reported twice",
            outcome.task
        );
        retried += usize::from(outcome.was_retried());
        let (value, pid) = outcome
            .result
            .unwrap_or_else(|e| panic!("task failed: {e}"));
        pids.insert(pid);
        // Task ids are 1..=1000 for n = 0..1000, in submission order.
        assert_eq!(value, (outcome.task - 1) * (outcome.task - 1));
        if seen.len() == 200 && killed.is_empty() {
            // Two members from outside, mid-run.
            let victims: Vec<u32> = pids.iter().copied().take(2).collect();
            assert_eq!(victims.len(), 2, "at least two members answered by now");
            for pid in &victims {
                actor_tests::signal(*pid, "-KILL");
            }
            killed = victims;
        }
    }
    assert_eq!(seen.len(), 1000, "one outcome per task");
    assert_eq!(killed.len(), 2);
    let status = team.status().await;
    assert_eq!(status.succeeded, 1000);
    assert_eq!(status.failed, 0);
    assert!(status.replaced >= 2, "{status:?}");
    let replaced = status
        .members
        .iter()
        .filter(|(_, state)| matches!(state, MemberState::Replaced { .. }))
        .count();
    assert!(replaced >= 2, "{:?}", status.members);
    eprintln!(
        "1000 tasks, 2 members killed: {retried} retried, {} members replaced",
        status.replaced
    );
    all_gone(killed).await;
    let final_status = team.dismiss(Duration::from_secs(5)).await;
    assert!(final_status.tasks.is_empty());
    nursery.close().await.unwrap();
    all_gone(pids).await;
}

#[actor::test]
async fn a_recoverable_error_is_retried_on_another_member_then_succeeds() {
    let nursery = actor::open_nursery().await.unwrap();
    let team = nursery
        .team("flaky")
        .enable("team")
        .members(2)
        .backoff(Duration::from_millis(10), Duration::from_millis(100))
        .recruit()
        .await
        .unwrap();
    let file = marker("flaky");
    let outcome = team
        .run(
            actor::team::Task::call(&flaky {
                marker: file.clone(),
            })
            .unwrap(),
        )
        .await;
    let _ = std::fs::remove_file(&file);
    assert_eq!(outcome.attempts.len(), 2, "{:?}", outcome.attempts);
    assert!(
        outcome.attempts[0]
            .failure
            .as_deref()
            .unwrap()
            .contains("first attempt fails")
    );
    assert_eq!(outcome.attempts[1].failure, None);
    let members = outcome.members();
    assert_ne!(members[0], members[1], "retried on another member");
    let pid: u32 = outcome.result.unwrap().decode().unwrap();
    assert!(pid > 0);
    team.dismiss(Duration::from_secs(5)).await;
    nursery.close().await.unwrap();
}

#[actor::test]
async fn a_task_out_of_attempts_fails_listing_every_attempt() {
    let nursery = actor::open_nursery().await.unwrap();
    let team = nursery
        .team("busy")
        .enable("team")
        .members(2)
        .max_attempts(3)
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
        .recruit()
        .await
        .unwrap();
    let err = team.execute(always_busy {}).await.unwrap_err();
    let Error::TaskFailed {
        task,
        members,
        cause,
    } = &err
    else {
        panic!("not a task failure: {err:?}");
    };
    assert_eq!(*task, 1);
    assert_eq!(members.len(), 3, "{err}");
    assert_eq!(cause.as_remote().unwrap().type_str, "RecoverableError");
    assert!(
        err.to_string()
            .starts_with("task 1 failed after 3 attempt(s) (on busy-"),
        "{err}"
    );
    let status = team.status().await;
    assert_eq!((status.failed, status.retries), (1, 2));
    team.dismiss(Duration::from_secs(5)).await;
    nursery.close().await.unwrap();
}

#[actor::test]
async fn an_unrecoverable_error_is_reported_at_once_with_its_trace() {
    let nursery = actor::open_nursery().await.unwrap();
    let team = nursery
        .team("strict")
        .enable("team")
        .members(2)
        .recruit()
        .await
        .unwrap();
    let outcome = team
        .run(
            actor::team::Task::call(&wrong_input {
                text: "seven".into(),
            })
            .unwrap(),
        )
        .await;
    assert_eq!(outcome.attempts.len(), 1, "not retried");
    let err = outcome.result.unwrap_err();
    let remote = err.as_remote().unwrap();
    assert_eq!(remote.type_str, "ValueError");
    assert!(remote.tb_str.contains("seven"), "{}", remote.tb_str);
    assert_eq!(
        team.execute(wrong_input { text: "7".into() })
            .await
            .unwrap(),
        7
    );
    team.dismiss(Duration::from_secs(5)).await;
    nursery.close().await.unwrap();
}

#[actor::test]
async fn a_member_hung_past_the_deadline_is_killed_and_replaced() {
    let nursery = actor::open_nursery().await.unwrap();
    let team = nursery
        .team("hang")
        .enable("team")
        .members(2)
        .deadline(Duration::from_millis(500))
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
        .recruit()
        .await
        .unwrap();
    let mut events = Box::pin(team.events());
    let file = marker("hang");
    let started = Instant::now();
    let outcome = team
        .run(
            actor::team::Task::call(&hang_once {
                marker: file.clone(),
            })
            .unwrap(),
        )
        .await;
    let hung: u32 = std::fs::read_to_string(format!("{file}.pid"))
        .unwrap()
        .parse()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(format!("{file}.pid"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the deadline was not kept"
    );
    assert_eq!(outcome.attempts.len(), 2, "{:?}", outcome.attempts);
    assert!(
        outcome.attempts[0]
            .failure
            .as_deref()
            .unwrap()
            .contains("within 500ms"),
        "{:?}",
        outcome.attempts
    );
    let pid: u32 = outcome.result.unwrap().decode().unwrap();
    assert_ne!(pid, hung);
    all_gone([hung]).await;
    // The hung member was declared dead and replaced by a third one, which checked in.
    let mut dead = None;
    let mut replacement_ready = false;
    while !replacement_ready {
        let event = next_event(&mut events).await;
        match event {
            TeamEvent::Member {
                member,
                state: MemberState::Replaced { by },
            } => {
                dead = Some((member, by));
            }
            TeamEvent::Member {
                member,
                state: MemberState::Ready,
            } => {
                replacement_ready = dead.as_ref().is_some_and(|(_, by)| *by == member);
            }
            _ => {}
        }
    }
    assert_eq!(dead.unwrap().1, "hang-3");
    team.dismiss(Duration::from_secs(5)).await;
    nursery.close().await.unwrap();
}

#[actor::test]
async fn dismissal_finishes_what_it_can_cancels_the_rest_and_reaps_every_member() {
    let nursery = actor::open_nursery().await.unwrap();
    let team = nursery
        .team("nap")
        .enable("team")
        .members(2)
        .recruit()
        .await
        .unwrap();
    let pids: HashSet<u32> = futures::future::join_all((0..8).map(|_| team.execute(pid {})))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(pids.len(), 2);
    // Two run at once (one per member), 300 ms each: within 450 ms about two finish.
    let mut events = Box::pin(team.events());
    let outcomes = team.map((0..8).map(|n| nap { n, ms: 300 }));
    let collected = tokio::spawn(outcomes.collect::<Vec<_>>());
    until_running(&mut events, 2).await;
    let status = team.dismiss(Duration::from_millis(400)).await;
    let outcomes = tokio::time::timeout(Duration::from_secs(10), collected)
        .await
        .expect("every outcome")
        .unwrap();
    assert_eq!(outcomes.len(), 8, "one outcome per task");
    let done = outcomes.iter().filter(|o| o.result.is_ok()).count();
    let cancelled = outcomes
        .iter()
        .filter(|o| matches!(o.result, Err(Error::Cancelled)))
        .count();
    assert_eq!(done + cancelled, 8);
    assert!(
        done >= 2,
        "the tasks in flight finished within the grace: {done}"
    );
    assert!(
        cancelled >= 2,
        "tasks left after the grace are cancelled: {cancelled}"
    );
    assert_eq!(status.succeeded as usize, 8 + done);
    assert!(
        status
            .members
            .iter()
            .all(|(_, state)| *state == MemberState::Dismissed),
        "{:?}",
        status.members
    );
    all_gone(pids).await;
    nursery.close().await.unwrap();
}

#[actor::test]
async fn dropping_the_team_cancels_everything_and_kills_every_member() {
    let nursery = actor::open_nursery().await.unwrap();
    let team = nursery
        .team("drop")
        .enable("team")
        .members(2)
        .recruit()
        .await
        .unwrap();
    let pids: HashSet<u32> = futures::future::join_all((0..6).map(|_| team.execute(pid {})))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut events = Box::pin(team.events());
    let outcomes = team.map((0..4).map(|n| nap { n, ms: 60_000 }));
    let collected = tokio::spawn(outcomes.collect::<Vec<_>>());
    until_running(&mut events, 2).await;
    drop(team);
    let outcomes = tokio::time::timeout(Duration::from_secs(10), collected)
        .await
        .expect("every outcome")
        .unwrap();
    assert_eq!(outcomes.len(), 4);
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o.result, Err(Error::Cancelled)))
    );
    all_gone(pids).await;
    nursery.close().await.unwrap();
}

#[actor::test]
async fn events_and_status_follow_tasks_and_members() {
    let nursery = actor::open_nursery().await.unwrap();
    let team = nursery
        .team("ev")
        .enable("team")
        .members(2)
        .recruit()
        .await
        .unwrap();
    let mut events = Box::pin(team.events());
    let results: Vec<u64> = team
        .map((0..10).map(|n| square { n }))
        .map(|o| o.result.unwrap().0)
        .collect()
        .await;
    assert_eq!(results.len(), 10);
    let mut states: HashMap<u64, Vec<TaskState>> = HashMap::new();
    while states
        .values()
        .filter(|s| s.last() == Some(&TaskState::Succeeded))
        .count()
        < 10
    {
        let event = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("events")
            .unwrap();
        if let TeamEvent::Task { task, state } = event {
            states.entry(task).or_default().push(state);
        }
    }
    for (task, seen) in &states {
        assert_eq!(seen[0], TaskState::Pending, "task {task}: {seen:?}");
        assert!(
            matches!(seen[1], TaskState::Running { attempt: 1, .. }),
            "{seen:?}"
        );
        assert_eq!(seen[2], TaskState::Succeeded, "{seen:?}");
    }
    let status = team.status().await;
    assert_eq!(status.succeeded, 10);
    assert_eq!(status.members.len(), 2);
    team.dismiss(Duration::from_secs(5)).await;
    nursery.close().await.unwrap();
}

#[actor::test]
async fn closing_the_nursery_under_a_team_stops_its_members_without_replacing_them() {
    let nursery = actor::open_nursery().await.unwrap();
    let team = nursery
        .team("closed")
        .enable("team")
        .members(2)
        .recruit()
        .await
        .unwrap();
    let pids: HashSet<u32> = futures::future::join_all((0..6).map(|_| team.execute(pid {})))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    tokio::time::timeout(Duration::from_secs(10), nursery.close())
        .await
        .expect("close must not hang")
        .expect("members stopped by their nursery are no failure");
    all_gone(pids).await;
    let status = team.status().await;
    assert_eq!(status.replaced, 0, "{:?}", status.members);
    assert!(
        status
            .members
            .iter()
            .all(|(_, s)| *s == MemberState::Dismissed),
        "{:?}",
        status.members
    );
}

#[actor::test]
async fn a_member_runs_as_many_tasks_at_once_as_it_has_slots() {
    let nursery = actor::open_nursery().await.unwrap();
    let team = nursery
        .team("slots")
        .enable("team")
        .members(1)
        .slots(3)
        .recruit()
        .await
        .unwrap();
    let seen: Vec<u64> = team
        .map((0..9).map(|_| overlap { ms: 200 }))
        .map(|o| o.result.unwrap())
        .collect()
        .await;
    assert_eq!(seen.len(), 9);
    assert_eq!(
        seen.iter().max(),
        Some(&3),
        "three at once, never more: {seen:?}"
    );
    team.dismiss(Duration::from_secs(5)).await;
    nursery.close().await.unwrap();
}

#[actor::test]
async fn dropping_an_outcome_stream_cancels_its_tasks_and_frees_the_members() {
    let nursery = actor::open_nursery().await.unwrap();
    let team = nursery
        .team("dropped")
        .enable("team")
        .members(2)
        .recruit()
        .await
        .unwrap();
    let mut events = Box::pin(team.events());
    let mut outcomes = team.map((0..4).map(|n| nap { n, ms: 60_000 }));
    // Polled once, it submits its tasks; two start (one per member); then it is dropped.
    assert!(futures::poll!(outcomes.next()).is_pending());
    until_running(&mut events, 2).await;
    drop(outcomes);
    let mut cancelled = 0;
    while cancelled < 4 {
        let event = next_event(&mut events).await;
        if let TeamEvent::Task {
            state: TaskState::Cancelled,
            ..
        } = event
        {
            cancelled += 1;
        }
    }
    // Both members are free at once: their calls were cancelled, not left to run a minute.
    let both = futures::future::join(team.execute(pid {}), team.execute(pid {}));
    let (a, b) = tokio::time::timeout(Duration::from_secs(5), both)
        .await
        .expect("free members");
    assert!(a.is_ok() && b.is_ok());
    let status = team.status().await;
    assert_eq!((status.cancelled, status.succeeded), (4, 2));
    team.dismiss(Duration::from_secs(5)).await;
    nursery.close().await.unwrap();
}

#[actor::test]
async fn a_member_that_resigns_is_replaced() {
    let nursery = actor::open_nursery().await.unwrap();
    let team = nursery
        .team("quits")
        .enable("team")
        .members(1)
        .recruit()
        .await
        .unwrap();
    let mut events = Box::pin(team.events());
    let resigned = team.execute(resign {}).await.unwrap();
    all_gone([resigned]).await;
    let (mut gone, mut ready) = (false, false);
    while !(gone && ready) {
        let event = next_event(&mut events).await;
        match event {
            TeamEvent::Member {
                member,
                state: MemberState::Resigned,
            } => {
                assert_eq!(member, "quits-1");
                gone = true;
            }
            TeamEvent::Member {
                member,
                state: MemberState::Ready,
            } if member == "quits-2" => {
                ready = true;
            }
            _ => {}
        }
    }
    let replacement = team.execute(pid {}).await.unwrap();
    assert_ne!(replacement, resigned);
    let status = team.status().await;
    assert_eq!(status.replaced, 1);
    team.dismiss(Duration::from_secs(5)).await;
    nursery.close().await.unwrap();
}

#[actor::test]
async fn an_outcome_stream_outliving_its_team_ends_with_every_task_cancelled() {
    let nursery = actor::open_nursery().await.unwrap();
    let team = nursery
        .team("gone")
        .enable("team")
        .members(1)
        .max_in_flight(2)
        .recruit()
        .await
        .unwrap();
    let mut outcomes = team.map((0..5).map(|n| nap { n, ms: 60_000 }));
    // Two submitted, three not yet; then the team goes.
    assert!(futures::poll!(outcomes.next()).is_pending());
    drop(team);
    let ended: Vec<_> = tokio::time::timeout(Duration::from_secs(10), outcomes.collect::<Vec<_>>())
        .await
        .expect("the stream must end, not hang");
    assert!(!ended.is_empty() && ended.len() <= 5, "{}", ended.len());
    assert!(
        ended
            .iter()
            .all(|o| matches!(o.result, Err(Error::Cancelled)))
    );
    nursery.close().await.unwrap();
}

#[actor::test]
async fn tasks_fail_instead_of_waiting_forever_when_the_nursery_stops_every_member() {
    let nursery = actor::open_nursery().await.unwrap();
    let team = nursery
        .team("orphaned")
        .enable("team")
        .members(1)
        .recruit()
        .await
        .unwrap();
    let member = team.execute(pid {}).await.unwrap();
    nursery.cancel().await;
    all_gone([member]).await;
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        team.run(actor::team::Task::call(&pid {}).unwrap()),
    )
    .await
    .expect("a task must not wait forever for members that will never come");
    let err = outcome.result.unwrap_err();
    assert!(err.to_string().contains("no member left"), "{err}");
    // A grace too long to add to the clock is no deadline, not a panic.
    let status = team.dismiss(Duration::MAX).await;
    assert_eq!(status.members.len(), 1, "{:?}", status.members);
    nursery.close().await.unwrap();
}
