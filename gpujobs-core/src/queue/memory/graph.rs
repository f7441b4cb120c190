//! The embedded queue's graph role: jobs that wait for their parents' outputs, the
//! release of children when a parent succeeds, failure that reaches every dependant,
//! and the inputs of jobs whose outputs are ephemeral.

use super::table::{Job, Table, lock};
use super::{MemoryQueue, refuse_results_to};
use crate::model::envelope::{JobEnvelope, now_ms};
use crate::model::error::{JobError, QueueError, ValidationError};
use crate::model::id::JobId;
use crate::model::state::{JobRecord, JobState};
use crate::queue::GraphQueue;
use crate::queue::types::DeadLetter;
use async_trait::async_trait;

#[async_trait]
impl GraphQueue for MemoryQueue {
    async fn submit_graph(&self, jobs: Vec<JobEnvelope>) -> Result<Vec<JobId>, QueueError> {
        jobs.iter().try_for_each(refuse_results_to)?;
        let order = crate::model::graph::order(&jobs).map_err(ValidationError::from)?;
        let ids: Vec<JobId> = jobs.iter().map(|j| j.id.clone()).collect();
        let mut slots: Vec<Option<JobEnvelope>> = jobs.into_iter().map(Some).collect();
        {
            // Every shard: a parent's state and its children list change together.
            let mut all = self.jobs.all();
            let mut ended_parents = Vec::new();
            for i in order {
                let Some(mut job) = slots[i].take() else {
                    continue;
                };
                job.stamp_for_submit();
                let id = job.id.clone();
                if all.contains(&id) {
                    continue;
                }
                let mut rec = JobRecord::submitted(&job);
                let mut waiting_on = 0;
                for parent in &rec.parents {
                    let state = all.get(parent).map(|p| p.record.state);
                    match state {
                        Some(JobState::Succeeded) => {}
                        Some(s) if s.is_terminal() => ended_parents.push((parent.clone(), s)),
                        _ => {}
                    }
                    if state != Some(JobState::Succeeded) {
                        waiting_on += 1;
                        // Every parent is in the graph (`order` checked it) and
                        // recorded before its children, so it is in the table.
                        if let Some(p) = all.get_mut(parent) {
                            p.children.push(id.clone());
                        }
                    }
                }
                rec.waiting_on = waiting_on;
                rec.state = if waiting_on == 0 {
                    lock(&self.submitted).push_back(id.clone());
                    JobState::Queued
                } else {
                    JobState::Waiting
                };
                all.insert(id, Job::new(rec, job));
            }
            // A resubmitted graph whose parent has already failed: its new children fail.
            for (parent, state) in ended_parents {
                self.fail_dependants(&mut all, &parent, state);
            }
        }
        self.submit_ready.notify_waiters();
        self.changed.notify_waiters();
        Ok(ids)
    }

    async fn job_inputs(&self, id: &JobId) -> Result<Option<JobEnvelope>, QueueError> {
        Ok(self
            .jobs
            .of(id)
            .jobs
            .get(id)
            .and_then(|j| j.env.as_deref().cloned()))
    }
}

impl MemoryQueue {
    /// A parent succeeded: each child that now has every input is queued.
    pub(super) fn release_children(&self, t: &mut dyn Table, id: &JobId) {
        let Some(children) = t.get_mut(id).map(|j| std::mem::take(&mut j.children)) else {
            return;
        };
        let mut released = false;
        for child in children {
            let Some(rec) = t.get_mut(&child).map(|j| &mut j.record) else {
                continue;
            };
            if rec.state != JobState::Waiting {
                continue;
            }
            rec.waiting_on = rec.waiting_on.saturating_sub(1);
            if rec.waiting_on == 0 {
                rec.state = JobState::Queued;
                rec.updated_ms = now_ms();
                lock(&self.submitted).push_back(child);
                released = true;
            }
        }
        if released {
            self.submit_ready.notify_waiters();
        }
    }

    /// Each succeeded parent among `parents` and the worker that ran it (a hint for
    /// placement by locality: each parent is read under its own shard's lock).
    pub(super) fn holders(&self, parents: &[JobId]) -> Vec<(JobId, String)> {
        parents
            .iter()
            .filter_map(|p| {
                let shard = self.jobs.of(p);
                let parent = &shard.jobs.get(p)?.record;
                let worker = parent.worker.clone()?;
                (parent.state == JobState::Succeeded).then(|| (p.clone(), worker))
            })
            .collect()
    }

    /// `id` is retried: the jobs that failed only because it did (directly or through
    /// others) wait for it again, unless another of their parents ended without a
    /// result.
    pub(super) fn revive_dependants(&self, t: &mut dyn Table, id: &JobId) {
        let mut stack = t.get(id).map(|j| j.children.clone()).unwrap_or_default();
        while let Some(child) = stack.pop() {
            let Some(job) = t.get(&child) else {
                continue;
            };
            if job.failed_by.is_none() {
                continue;
            }
            let parents = job.record.parents.clone();
            let states: Vec<Option<JobState>> = parents
                .iter()
                .map(|p| t.get(p).map(|j| j.record.state))
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
            lock(&self.dead).retain(|d| d.id != child.as_str());
            if let Some(job) = t.get_mut(&child) {
                job.failed_by = None;
                let rec = &mut job.record;
                rec.state = JobState::Waiting;
                rec.waiting_on = waiting;
                rec.error = None;
                rec.finished_ms = None;
                rec.updated_ms = now_ms();
                stack.extend(job.children.iter().cloned());
            }
        }
    }

    /// A parent ended without a result: every job waiting on it, directly or through
    /// other jobs, ends `failed` naming it (and is dead-lettered, as failed jobs are).
    pub(super) fn fail_dependants(&self, t: &mut dyn Table, root: &JobId, state: JobState) {
        let mut stack: Vec<(JobId, JobId)> = t
            .get(root)
            .map(|j| j.children.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c, root.clone()))
            .collect();
        let now = now_ms();
        while let Some((child, parent)) = stack.pop() {
            let Some(job) = t.get_mut(&child) else {
                continue;
            };
            if job.record.state != JobState::Waiting {
                continue;
            }
            let reason = dependant_failure(&parent, root, state);
            let rec = &mut job.record;
            rec.state = JobState::Failed;
            rec.error = Some(JobError::permanent(reason.clone()));
            rec.updated_ms = now;
            rec.finished_ms = Some(now);
            let kind = rec.kind.clone();
            job.failed_by = Some(root.clone());
            for grandchild in &job.children {
                stack.push((grandchild.clone(), child.clone()));
            }
            self.dead_letter(DeadLetter {
                id: child.to_string(),
                kind: Some(kind),
                reason,
                attempts: 0,
                at_ms: now,
                raw: None,
            });
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
