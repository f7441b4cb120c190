//! The registry: job kinds a process understands and executors it can run.
//!
//! The scheduler needs to know kinds (to validate and cost jobs); a worker needs
//! executors for its device class. Both use the same registry type, so a library user
//! who adds a kind registers it once (see `examples/custom_job.rs`).

use crate::exec::executor::{DynExecutor, Executor, Typed, decode_job};
use crate::kinds::{ImageFilter, Matmul, MlpPredict, MlpTrain, VectorAdd};
use crate::model::cost::Cost;
use crate::model::device::{DeviceClass, DeviceInfo};
use crate::model::error::ValidationError;
use crate::model::job::{Check, Job};
use crate::model::limits::Limits;
use crate::model::state::JobResult;
use crate::model::tensor::Blobs;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

/// What the registry learned about a job without running it.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// Its cost, for placement.
    pub cost: Cost,
    /// A short size description.
    pub size_label: String,
}

/// Type-erased operations on a job kind.
trait KindOps: Send + Sync {
    fn calibration_samples(&self, quick: bool) -> Vec<(crate::model::envelope::JobEnvelope, Cost)>;
    fn inspect(
        &self,
        payload: &serde_json::Value,
        blobs: &Blobs,
        limits: &Limits,
    ) -> Result<Inspection, ValidationError>;
    fn check(
        &self,
        payload: &serde_json::Value,
        blobs: &Blobs,
        result: &JobResult,
    ) -> Result<Option<Check>, ValidationError>;
}

struct KindOf<J>(PhantomData<fn() -> J>);

impl<J: Job> KindOps for KindOf<J> {
    fn calibration_samples(&self, quick: bool) -> Vec<(crate::model::envelope::JobEnvelope, Cost)> {
        J::calibration_samples(quick)
            .into_iter()
            .filter_map(|j| {
                let cost = j.cost();
                crate::model::envelope::JobEnvelope::new(j)
                    .ok()
                    .map(|e| (e, cost))
            })
            .collect()
    }

    fn inspect(
        &self,
        payload: &serde_json::Value,
        blobs: &Blobs,
        limits: &Limits,
    ) -> Result<Inspection, ValidationError> {
        let job: J = decode_job(payload, blobs, false)?;
        job.validate(limits)?;
        Ok(Inspection {
            cost: job.cost(),
            size_label: job.size_label(),
        })
    }

    fn check(
        &self,
        payload: &serde_json::Value,
        blobs: &Blobs,
        result: &JobResult,
    ) -> Result<Option<Check>, ValidationError> {
        let job: J = decode_job(payload, blobs, true)?;
        let output: J::Output = result.decode()?;
        Ok(job.check(&output))
    }
}

/// Job kinds and executors known to this process.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<String, Arc<dyn KindOps>>,
    executors: BTreeMap<(String, DeviceClass), Arc<dyn DynExecutor>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("kinds", &self.kinds.keys().collect::<Vec<_>>())
            .field("executors", &self.executors.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry that knows the built-in kinds (no executors).
    pub fn with_builtin_kinds() -> Self {
        let mut r = Self::new();
        r.register_kind::<VectorAdd>();
        r.register_kind::<Matmul>();
        r.register_kind::<ImageFilter>();
        r.register_kind::<MlpTrain>();
        r.register_kind::<MlpPredict>();
        r
    }

    /// Makes the kind `J` known (for validation and cost).
    pub fn register_kind<J: Job>(&mut self) -> &mut Self {
        self.kinds
            .insert(J::KIND.to_string(), Arc::new(KindOf::<J>(PhantomData)));
        self
    }

    /// Makes every kind known to `other` known here too.
    pub fn absorb_kinds(&mut self, other: &Registry) -> &mut Self {
        for (name, ops) in &other.kinds {
            self.kinds.insert(name.clone(), ops.clone());
        }
        self
    }

    /// Adds an executor for the kind `J` that runs on `device` (and makes `J` known).
    /// A second executor for the same kind and device class replaces the first.
    pub fn register<J: Job, E: Executor<J>>(
        &mut self,
        device: &DeviceInfo,
        executor: E,
    ) -> &mut Self {
        self.register_kind::<J>();
        self.executors.insert(
            (J::KIND.to_string(), device.class),
            Arc::new(Typed::<J, E>::new(device.clone(), executor)),
        );
        self
    }

    /// A registry with the built-in kinds and every executor of `backend`.
    pub fn for_backend(backend: &dyn crate::Backend) -> Self {
        let mut r = Self::with_builtin_kinds();
        backend.register(&mut r);
        r
    }

    /// Validates a job and estimates its cost without running it.
    pub fn inspect(
        &self,
        kind: &str,
        payload: &serde_json::Value,
        blobs: &Blobs,
        limits: &Limits,
    ) -> Result<Inspection, ValidationError> {
        self.kind(kind)?.inspect(payload, blobs, limits)
    }

    /// Checks a job's result against the kind's reference implementation, if it has one.
    pub fn check(
        &self,
        kind: &str,
        payload: &serde_json::Value,
        blobs: &Blobs,
        result: &JobResult,
    ) -> Result<Option<Check>, ValidationError> {
        self.kind(kind)?.check(payload, blobs, result)
    }

    fn kind(&self, kind: &str) -> Result<&Arc<dyn KindOps>, ValidationError> {
        self.kinds
            .get(kind)
            .ok_or_else(|| ValidationError::UnknownKind(kind.to_string()))
    }

    /// The calibration ladder of `kind` (see [`Job::calibration_samples`]).
    pub fn calibration_samples(
        &self,
        kind: &str,
        quick: bool,
    ) -> Result<Vec<(crate::model::envelope::JobEnvelope, Cost)>, ValidationError> {
        Ok(self.kind(kind)?.calibration_samples(quick))
    }

    /// The executor for `kind` on `class`, if registered.
    pub fn executor(&self, kind: &str, class: DeviceClass) -> Option<Arc<dyn DynExecutor>> {
        self.executors.get(&(kind.to_string(), class)).cloned()
    }

    /// Names of known kinds.
    pub fn kinds(&self) -> Vec<String> {
        self.kinds.keys().cloned().collect()
    }

    /// Kinds with an executor on `class`.
    pub fn executable_kinds(&self, class: DeviceClass) -> Vec<String> {
        self.executors
            .keys()
            .filter(|(_, c)| *c == class)
            .map(|(k, _)| k.clone())
            .collect()
    }
}
