//! A job validated once in the process that submits it.
//!
//! A job is validated once per process boundary: in the client process (here), in the
//! scheduler (an entry may come from another language), and in the worker (by the
//! executor, against the inputs it actually received). [`Validated`] is the proof of
//! the first: the [`Client`](super::client::Client) submits it without validating again,
//! and a front end that checks its input before starting anything (the CLI) keeps the
//! proof instead of validating twice.

use crate::exec::registry::Registry;
use crate::model::envelope::JobEnvelope;
use crate::model::error::ValidationError;
use crate::model::job::Job;
use crate::model::limits::Limits;

/// A job envelope whose kind, payload and blobs passed their kind's validation under
/// some [`Limits`] in this process.
#[derive(Debug, Clone)]
pub struct Validated(JobEnvelope);

impl Validated {
    /// Validates a typed job and wraps it in an envelope. Validating the typed job,
    /// before JSON, also catches values JSON cannot carry (a NaN sigma would arrive as
    /// `null`).
    pub fn job<J: Job>(job: J, limits: &Limits) -> Result<Self, ValidationError> {
        job.validate(limits)?;
        let env = JobEnvelope::new(job).map_err(|e| ValidationError::Payload {
            kind: J::KIND.into(),
            reason: e.to_string(),
        })?;
        Ok(Validated(env))
    }

    /// Validates an envelope against the kind `registry` knows by its name.
    pub fn envelope(
        env: JobEnvelope,
        registry: &Registry,
        limits: &Limits,
    ) -> Result<Self, ValidationError> {
        registry.inspect(&env.kind, &env.payload, &env.blobs, limits)?;
        Ok(Validated(env))
    }

    /// The envelope.
    pub fn get(&self) -> &JobEnvelope {
        &self.0
    }

    /// The envelope, for the queue.
    pub fn into_envelope(self) -> JobEnvelope {
        self.0
    }

    /// Changes options that do not change what the job computes (id, priority,
    /// device, attempts, timeout, `results_to`, ephemeral). Refused when `set` changed
    /// the kind, the payload or the blobs: validate such a job again.
    pub fn with_options(
        self,
        set: impl FnOnce(JobEnvelope) -> JobEnvelope,
    ) -> Result<Self, ValidationError> {
        let before = (self.0.kind.clone(), self.0.payload.clone());
        let blob_names: Vec<String> = self.0.blobs.keys().cloned().collect();
        let after = set(self.0);
        let same = before.0 == after.kind
            && before.1 == after.payload
            && after.blobs.keys().eq(blob_names.iter());
        if !same {
            return Err(ValidationError::InvalidParameter {
                name: "job".into(),
                reason:
                    "the kind, payload or blobs changed after validation: validate the job again"
                        .into(),
            });
        }
        Ok(Validated(after))
    }
}
