//! The history a dashboard reads (`gpujobs_queue::history`): ended jobs indexed by the
//! keeper and found again by every filter, page after page, on one Redis with one and
//! three partitions and on a Redis Cluster with three; the per-minute series and the
//! overview agree with what ran; a second keeper waits for the first one's lease.

use super::*;
use gpujobs_queue::history::{HistorySettings, JobFilter, StateFilter};
use std::collections::BTreeSet;

/// Pages through `filter` (`limit` rows a page), collecting the ids.
async fn all_ids(q: &RedisQueue, mut filter: JobFilter) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..1000 {
        let page = q.search_jobs(&filter).await.unwrap();
        ids.extend(page.rows.iter().map(|r| r.id.clone()));
        match page.next {
            Some(next) if page.rows.len() == filter.limit || page.note.is_some() => {
                filter.after = Some(next)
            }
            _ => return ids,
        }
    }
    panic!("too many pages");
}

async fn history_round(q: Arc<RedisQueue>) {
    let stop = start_cluster(q.clone());
    let mut adds = BTreeSet::new();
    for i in 0..45 {
        let env = JobEnvelope::new(VectorAdd {
            a: Tensor::from_values(vec![2], vec![i as f32, 1.0]).unwrap(),
            b: Tensor::from_values(vec![2], vec![1.0, 1.0]).unwrap(),
        })
        .unwrap();
        adds.insert(q.submit(env).await.unwrap().to_string());
    }
    // Shapes that do not match: refused for good, a dead letter.
    let bad = q
        .submit(
            JobEnvelope::new(VectorAdd {
                a: Tensor::from_values(vec![2], vec![1.0, 2.0]).unwrap(),
                b: Tensor::from_values(vec![3], vec![1.0, 2.0, 3.0]).unwrap(),
            })
            .unwrap(),
        )
        .await;
    let bad = match bad {
        Ok(id) => Some(id.to_string()),
        Err(_) => None, // a client that validates refuses it before Redis
    };
    for id in &adds {
        let id = gpujobs_core::JobId::parse(id).unwrap();
        let rec = q.wait(&id, Duration::from_secs(30)).await.unwrap().unwrap();
        assert_eq!(rec.state, JobState::Succeeded);
    }
    if let Some(b) = &bad {
        let rec = q
            .wait(
                &gpujobs_core::JobId::parse(b).unwrap(),
                Duration::from_secs(30),
            )
            .await
            .unwrap()
            .unwrap();
        assert!(rec.state.is_terminal());
    }
    let settings = HistorySettings {
        batch: 7,
        ..HistorySettings::default()
    };
    // Small batches: the keeper needs several passes and says it is behind meanwhile.
    let mut indexed = 0;
    for _ in 0..100 {
        let pass = q.keep_history(&settings, "keeper-a", true).await.unwrap();
        indexed += pass.indexed;
        if !pass.behind && pass.indexed == 0 {
            break;
        }
    }
    assert_eq!(indexed as usize, adds.len() + usize::from(bad.is_some()));
    // Another keeper waits for the lease.
    let other = q.keep_history(&settings, "keeper-b", false).await.unwrap();
    assert_eq!(other.skipped as usize, q.partitions().len());

    let filter = |state: StateFilter, limit: usize| JobFilter {
        state,
        limit,
        ..JobFilter::default()
    };
    let listed = all_ids(
        &q,
        JobFilter {
            kind: Some("vector-add".into()),
            ..filter(StateFilter::Only(JobState::Succeeded), 4)
        },
    )
    .await;
    assert_eq!(listed.len(), adds.len(), "listed twice or missing");
    assert_eq!(listed.iter().cloned().collect::<BTreeSet<_>>(), adds);
    let all = all_ids(&q, filter(StateFilter::Ended, 10)).await;
    assert_eq!(all.len(), adds.len() + usize::from(bad.is_some()));
    let by_lane = all_ids(
        &q,
        JobFilter {
            lane: Some(DeviceClass::Cpu),
            ..filter(StateFilter::Only(JobState::Succeeded), 50)
        },
    )
    .await;
    assert_eq!(by_lane.len(), adds.len());
    let none = all_ids(
        &q,
        JobFilter {
            lane: Some(DeviceClass::Gpu),
            ..filter(StateFilter::Ended, 50)
        },
    )
    .await;
    assert!(none.is_empty());
    let one = adds.iter().nth(5).unwrap();
    let found = q
        .search_jobs(&JobFilter {
            id: Some(one.clone()),
            ..filter(StateFilter::Ended, 10)
        })
        .await
        .unwrap();
    assert_eq!(found.rows.len(), 1);
    assert_eq!(found.rows[0].id, *one);
    // A time range that ends before anything ran finds nothing.
    let early = all_ids(
        &q,
        JobFilter {
            to_ms: Some(1_000),
            ..filter(StateFilter::Ended, 10)
        },
    )
    .await;
    assert!(early.is_empty());
    if let Some(b) = &bad {
        let dead = all_ids(&q, filter(StateFilter::Only(JobState::Dead), 10)).await;
        let failed = all_ids(&q, filter(StateFilter::Only(JobState::Failed), 10)).await;
        assert!(
            dead.contains(b) || failed.contains(b),
            "{dead:?} {failed:?}"
        );
    }
    // The series and the overview agree with what ran.
    let series = q.series(10).await.unwrap();
    assert_eq!(
        series.iter().map(|p| p.succeeded).sum::<u64>() as usize,
        adds.len()
    );
    let o = q.overview().await.unwrap();
    assert_eq!(o.succeeded as usize, adds.len());
    assert!(o.memory.used > 0 && o.memory.peak >= o.memory.used);
    stop.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_indexes_and_search_on_redis() {
    let server = RedisServer::start(false);
    for (ns, parts) in [("hist1", 1), ("hist3", 3)] {
        let q = RedisQueue::connect(config_at(server.url(), ns, Some(parts)))
            .await
            .unwrap();
        history_round(Arc::new(q)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_indexes_and_search_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    let q = RedisQueue::connect(config_at(cluster.url(), "hist", Some(3)))
        .await
        .unwrap();
    history_round(Arc::new(q)).await;
}
