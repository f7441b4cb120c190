//! `gpujobs submit`.

use crate::cli::SubmitArgs;
use crate::connect;
use crate::error::CliError;
use crate::graph_file;
use crate::inputs;
use crate::report;
use gpujobs_core::queue::SubmitQueue;
use gpujobs_core::{Client, JobEnvelope, JobId, JobState, Limits, Queue, Registry, Validated};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Submits in flight at once (the queue writes those that arrive together in one
/// script call).
const IN_FLIGHT: usize = 256;

fn read_file(path: &Path, registry: &Registry) -> Result<Vec<Validated>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    let limits = Limits::detect();
    let mut envs = Vec::new();
    let mut errors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match serde_json::from_str::<JobEnvelope>(line) {
            Err(e) => errors.push(format!("line {}: not a job envelope: {e}", n + 1)),
            Ok(env) => match Validated::envelope(env, registry, &limits) {
                Err(e) => errors.push(format!("line {}: {e}", n + 1)),
                Ok(job) => envs.push(job),
            },
        }
    }
    if !errors.is_empty() {
        return Err(CliError::input(format!(
            "{}: nothing submitted; {}",
            path.display(),
            errors.join("; ")
        )));
    }
    Ok(envs)
}

/// Submits jobs validated in this process through the library's [`Client`], many at
/// once. At the first refusal no more are sent; those in flight finish, and the error
/// lists the ids already accepted (printed on standard output first, one per line, as a
/// successful submit prints them), so none runs under an id the user never saw.
async fn submit_all(
    client: &Arc<Client>,
    envs: Vec<Validated>,
    json: bool,
) -> Result<Vec<JobId>, CliError> {
    let total = envs.len();
    let (accepted, first_error) = client.submit_many(envs, IN_FLIGHT).await;
    let Some((_, error)) = first_error.map(|(i, e)| (i, CliError::from(e))) else {
        return Ok(accepted);
    };
    if total == 1 {
        return Err(error);
    }
    print_ids(&accepted, json);
    Err(CliError::runtime(format!(
        "{} of {total} jobs submitted (their ids are printed above); {} not: {error}",
        accepted.len(),
        total - accepted.len()
    )))
}

/// Submitted ids on stdout: one per line, or with `--json` one object `{"ids": [..]}`.
fn print_ids(ids: &[JobId], json: bool) {
    if json {
        let ids: Vec<&str> = ids.iter().map(JobId::as_str).collect();
        println!("{}", serde_json::json!({ "ids": ids }));
    } else {
        for id in ids {
            println!("{id}");
        }
    }
}

/// `gpujobs submit --graph graph.json`: the whole graph at once, then (with --wait)
/// a tally of all its jobs.
async fn submit_graph(args: &SubmitArgs, path: &Path, registry: Registry) -> Result<(), CliError> {
    if args.job.is_some() || args.count > 1 {
        return Err(CliError::input(
            "--graph submits the jobs of its file: give no job kind and no --count",
        ));
    }
    let limit = connect::config(&args.redis).max_blob_bytes;
    let graph = graph_file::load(path, limit)?;
    let names: Vec<String> = graph
        .jobs()
        .iter()
        .map(|j| graph_file::name_of(j.id.as_str()).to_string())
        .collect();
    let sinks = graph_file::sinks(&graph);
    let q = Arc::new(connect::client(&args.redis).await?);
    let queue: Arc<dyn Queue> = q.clone();
    let client = Client::new(queue, Arc::new(registry));
    let started = Instant::now();
    let ids = client
        .submit_graph(graph)
        .await
        .map_err(|e| CliError::input(format!("{}: nothing submitted: {e}", path.display())))?;
    // With --json, stdout is one JSON object: the ids go into it.
    let jobs: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .zip(&ids)
        .map(|(n, id)| (n.clone(), serde_json::Value::String(id.to_string())))
        .collect();
    if args.json {
        if !args.wait {
            println!("{}", serde_json::json!({ "jobs": jobs }));
            return Ok(());
        }
    } else {
        for (name, id) in names.iter().zip(&ids) {
            println!("{name} {id}");
        }
    }
    if !args.wait {
        return Ok(());
    }
    let deadline = Duration::from_secs_f64(args.timeout);
    let tally = crate::tally::until_done(&q, &ids, started, deadline, !args.json).await?;
    let wall = started.elapsed().as_secs_f64();
    if let Some(dir) = &args.out_dir {
        for &i in &sinks {
            if let Some(rec) = q.status(&ids[i]).await? {
                for path in graph_file::save_outputs(dir, &rec)? {
                    eprintln!("wrote {}", path.display());
                }
            }
        }
    }
    let extra = serde_json::Map::from_iter([("jobs".to_string(), serde_json::Value::Object(jobs))]);
    crate::tally::report_with(ids.len(), &tally, Some(wall), args.json, extra)
}

/// Runs the command.
pub async fn run(args: SubmitArgs) -> Result<(), CliError> {
    let (priority, device) = (args.priority, args.device);
    let positive = |x: f64| x.is_finite() && x > 0.0;
    if !positive(args.job_timeout) || !positive(args.timeout) {
        return Err(CliError::input(
            "--job-timeout and --timeout must be positive numbers of seconds",
        ));
    }
    let registry = Registry::with_builtin_kinds();
    if let Some(path) = &args.graph {
        return submit_graph(&args, path, registry).await;
    }
    let mut sink_spec = None;
    let (template, label) = match (&args.job, &args.file) {
        (Some(kind), None) => {
            // An input file over the queue's blob limit is refused from its header,
            // before it is read.
            let limit = connect::config(&args.redis).max_blob_bytes;
            let spec = inputs::build(kind, limit)?;
            if !matches!(spec.sink, inputs::Sink::None) {
                if !args.wait || args.count > 1 {
                    return Err(CliError::input(
                        "--out (or --labels-out, --save-model) saves the output of one job: use it with --wait and without --count",
                    ));
                }
                sink_spec = Some(spec.clone());
            }
            let env = spec.job.with_options(|env| {
                env.with_priority(priority)
                    .with_device(device)
                    .with_max_attempts(args.max_attempts)
                    .with_timeout(Duration::from_secs_f64(args.job_timeout))
            })?;
            (vec![env], spec.label)
        }
        (None, Some(path)) => (read_file(path, &registry)?, String::new()),
        _ => {
            return Err(CliError::input(
                "give a job kind (gpujobs submit matmul --m 512 ...), --file jobs.jsonl or --graph graph.json",
            ));
        }
    };
    // The first copy keeps its id (given in the file, or generated): submitting a file
    // again runs each of its jobs once. Further copies (--count) get fresh ids.
    let mut envs = Vec::with_capacity(template.len() * args.count.max(1));
    for env in &template {
        for k in 0..args.count.max(1) {
            let copy = env.clone().with_options(|mut copy| {
                if k > 0 {
                    copy.id = JobId::new();
                }
                if let Some(url) = &args.results_to {
                    let url = url.trim_end_matches('/');
                    copy.results_to = Some(if args.count > 1 || template.len() > 1 {
                        format!("{url}/{}", copy.id)
                    } else {
                        url.to_string()
                    });
                }
                copy
            })?;
            envs.push(copy);
        }
    }
    let q = Arc::new(connect::client(&args.redis).await?);
    let queue: Arc<dyn Queue> = q.clone();
    let client = Arc::new(Client::new(queue, Arc::new(registry)));
    let started = Instant::now();
    let ids = submit_all(&client, envs, args.json).await?;
    if !args.wait {
        print_ids(&ids, args.json);
        return Ok(());
    }
    let deadline = Duration::from_secs_f64(args.timeout);
    if ids.len() == 1 {
        let rec = q
            .wait(&ids[0], deadline)
            .await?
            .ok_or_else(|| CliError::runtime(format!("job {} vanished", ids[0])))?;
        let mut saved = Vec::new();
        if let (Some(spec), Some(result)) = (&sink_spec, &rec.result) {
            saved = inputs::save(spec, result)?;
            for path in &saved {
                eprintln!("wrote {}", path.display());
            }
        }
        if args.json {
            let extra = report::saved_files(&saved).into_iter().collect();
            println!("{}", report::job_json(&rec, &label, None, extra));
        } else {
            print!("{}", report::job_text(&rec, &label, None));
        }
        return match rec.state {
            JobState::Succeeded => Ok(()),
            s if s.is_terminal() => Err(CliError::runtime(format!("job {} ended {s}", rec.id))),
            s => Err(CliError::runtime(format!(
                "job {} still {s} after {:.0} s",
                rec.id, args.timeout
            ))),
        };
    }
    let tally = crate::tally::until_done(&q, &ids, started, deadline, !args.json).await?;
    let wall = started.elapsed().as_secs_f64();
    crate::tally::report(ids.len(), &tally, Some(wall), args.json)
}
