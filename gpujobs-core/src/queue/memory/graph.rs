//! The embedded queue's graph role: jobs that wait for their parents' outputs, the
//! release of children when a parent succeeds, failure that reaches every dependant,
//! and the inputs of jobs whose outputs are ephemeral.

use super::{Inner, MemoryQueue, refuse_results_to};
use crate::model::envelope::{JobEnvelope, now_ms};
use crate::model::error::{JobError, QueueError, ValidationError};
use crate::model::id::JobId;
use crate::model::state::{JobRecord, JobState};
use crate::queue::GraphQueue;
use crate::queue::types::DeadLetter;
use async_trait::async_trait;
use std::sync::Arc;

#[async_trait]
impl GraphQueue for MemoryQueue {
    async fn submit_graph(&self, jobs: Vec<JobEnvelope>) -> Result<Vec<JobId>, QueueError> {
        jobs.iter().try_for_each(refuse_results_to)?;
        let order = crate::model::graph::order(&jobs).map_err(ValidationError::from)?;
        let ids: Vec<JobId> = jobs.iter().map(|j| j.id.clone()).collect();
        let mut slots: Vec<Option<JobEnvelope>> = jobs.into_iter().map(Some).collect();
        {
            let mut inner = self.lock();
            let mut ended_parents = Vec::new();
            for i in order {
                let Some(mut job) = slots[i].take() else {
                    continue;
                };
                job.stamp_for_submit();
                let id = job.id.clone();
                if inner.records.contains_key(&id) {
                    continue;
                }
                let mut rec = JobRecord::submitted(&job);
                let mut waiting_on = 0;
                for parent in &rec.parents {
                    let state = inner.records.get(parent).map(|p| p.state);
                    match state {
                        Some(JobState::Succeeded) => {}
                        Some(s) if s.is_terminal() => ended_parents.push((parent.clone(), s)),
                        _ => {}
                    }
                    if state != Some(JobState::Succeeded) {
                        waiting_on += 1;
                        inner
                            .children
                            .entry(parent.clone())
                            .or_default()
                            .push(id.clone());
                    }
                }
                rec.waiting_on = waiting_on;
                rec.state = if waiting_on == 0 {
                    inner.submitted.push_back(id.clone());
                    JobState::Queued
                } else {
                    JobState::Waiting
                };
                inner.records.insert(id.clone(), rec);
                inner.jobs.insert(id, Arc::new(job));
            }
            // A resubmitted graph whose parent has already failed: its new children fail.
            for (parent, state) in ended_parents {
                self.fail_dependants(&mut inner, &parent, state);
            }
        }
        self.submit_ready.notify_waiters();
        self.changed.notify_waiters();
        Ok(ids)
    }

    async fn job_inputs(&self, id: &JobId) -> Result<Option<JobEnvelope>, QueueError> {
        Ok(self.lock().jobs.get(id).map(|e| (**e).clone()))
    }
}

impl MemoryQueue {
    /// A parent succeeded: each child that now has every input is queued.
    pub(super) fn release_children(&self, inner: &mut Inner, id: &JobId) {
        let Some(children) = inner.children.remove(id) else {
            return;
        };
        let mut released = false;
        for child in children {
            let Some(rec) = inner.records.get_mut(&child) else {
                continue;
            };
            if rec.state != JobState::Waiting {
                continue;
            }
            rec.waiting_on = rec.waiting_on.saturating_sub(1);
            if rec.waiting_on == 0 {
                rec.state = JobState::Queued;
                rec.updated_ms = now_ms();
                inner.submitted.push_back(child);
                released = true;
            }
        }
        if released {
            self.submit_ready.notify_waiters();
        }
    }

    /// Each succeeded parent of `id` and the worker that ran it.
    pub(super) fn holders(inner: &Inner, id: &JobId) -> Vec<(JobId, String)> {
        let Some(rec) = inner.records.get(id) else {
            return Vec::new();
        };
        rec.parents
            .iter()
            .filter_map(|p| {
                let parent = inner.records.get(p)?;
                let worker = parent.worker.clone()?;
                (parent.state == JobState::Succeeded).then(|| (p.clone(), worker))
            })
            .collect()
    }

    /// `id` is retried: the jobs that failed only because it did (directly or through
    /// others) wait for it again, unless another of their parents ended without a
    /// result.
    pub(super) fn revive_dependants(inner: &mut Inner, id: &JobId) {
        let mut stack = inner.children.get(id).cloned().unwrap_or_default();
        while let Some(child) = stack.pop() {
            if !inner.failed_by.contains_key(&child) {
                continue;
            }
            let Some(parents) = inner.records.get(&child).map(|r| r.parents.clone()) else {
                continue;
            };
            let states: Vec<Option<JobState>> = parents
                .iter()
                .map(|p| inner.records.get(p).map(|r| r.state))
                .collect();
            let broken = states.iter().any(|s| {
                matches!(
                    s,
                    None | Some(JobState::Failed | JobState::Dead | JobState::Cancelled)
                )
            });
            if broken {
                continue;
            }
            let waiting = states
                .iter()
                .filter(|s| **s != Some(JobState::Succeeded))
                .count() as u32;
            inner.failed_by.remove(&child);
            inner.dead.retain(|d| d.id != child.as_str());
            if let Some(rec) = inner.records.get_mut(&child) {
                rec.state = JobState::Waiting;
                rec.waiting_on = waiting;
                rec.error = None;
                rec.finished_ms = None;
                rec.updated_ms = now_ms();
            }
            stack.extend(inner.children.get(&child).cloned().unwrap_or_default());
        }
    }

    /// A parent ended without a result: every job waiting on it, directly or through
    /// other jobs, ends `failed` naming it (and is dead-lettered, as failed jobs are).
    pub(super) fn fail_dependants(&self, inner: &mut Inner, root: &JobId, state: JobState) {
        let mut stack: Vec<(JobId, JobId)> = inner
            .children
            .get(root)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c, root.clone()))
            .collect();
        let now = now_ms();
        while let Some((child, parent)) = stack.pop() {
            let Some(rec) = inner.records.get_mut(&child) else {
                continue;
            };
            if rec.state != JobState::Waiting {
                continue;
            }
            let reason = dependant_failure(&parent, root, state);
            rec.state = JobState::Failed;
            rec.error = Some(JobError::permanent(reason.clone()));
            rec.updated_ms = now;
            rec.finished_ms = Some(now);
            let kind = rec.kind.clone();
            self.dead_letter(
                inner,
                DeadLetter {
                    id: child.to_string(),
                    kind: Some(kind),
                    reason,
                    attempts: 0,
                    at_ms: now,
                    raw: None,
                },
            );
            inner.failed_by.insert(child.clone(), root.clone());
            for grandchild in inner.children.get(&child).cloned().unwrap_or_default() {
                stack.push((grandchild, child.clone()));
            }
        }
    }
}

/// Why a job of a graph failed without running: its parent `parent` cannot give it an
/// input because `root` ended in `state` (the same text as the Redis queue's).
fn dependant_failure(parent: &JobId, root: &JobId, state: JobState) -> String {
    if parent == root {
        format!("parent job {root} ended {state}")
    } else {
        format!("parent job {parent} cannot run: job {root} ended {state}")
    }
}
