//! `gpujobs status`, `gpujobs cancel` and `gpujobs dead-letter`.

use crate::cli::{CancelArgs, DeadLetterAction, DeadLetterArgs, StatusArgs};
use crate::connect;
use crate::error::CliError;
use crate::report;
use gpujobs_core::queue::CancelOutcome;
use gpujobs_core::queue::{AdminQueue, SubmitQueue};
use gpujobs_core::scheduler::placement::fmt_seconds;
use gpujobs_core::{JobId, Queue};

fn job_id(s: &str) -> Result<JobId, CliError> {
    JobId::parse(s).ok_or_else(|| CliError::input(format!("`{s}` is not a job id")))
}

/// `gpujobs status <id>`.
pub async fn status(args: StatusArgs) -> Result<(), CliError> {
    let id = job_id(&args.id)?;
    let q = connect::client(&args.redis).await?;
    let rec = q.status(&id).await?.ok_or_else(|| {
        CliError::runtime(format!(
            "no job {id} (never submitted, or its record expired)"
        ))
    })?;
    if args.json {
        println!("{}", report::job_json(&rec, "", None, Vec::new()));
        return Ok(());
    }
    print!("{}", report::job_text(&rec, "", None));
    println!(
        "  attempts {} of {}{}",
        rec.attempts,
        rec.max_attempts,
        rec.worker
            .as_ref()
            .map_or(String::new(), |w| format!(", last worker {w}"))
    );
    if let Some(p) = &rec.placement {
        let est: Vec<String> = p
            .estimates
            .iter()
            .map(|(c, s)| format!("{c} {}", fmt_seconds(*s)))
            .collect();
        println!("  estimates {} ({})", est.join(", "), p.model);
    }
    if rec.cancel_requested {
        println!("  cancellation requested");
    }
    if !rec.parents.is_empty() {
        print_graph(&q, &rec).await?;
    }
    Ok(())
}

/// The jobs a graph job reads from, and theirs, with their states: the graph's
/// progress as seen from this job.
async fn print_graph(q: &impl Queue, rec: &gpujobs_core::JobRecord) -> Result<(), CliError> {
    if rec.state == gpujobs_core::JobState::Waiting {
        println!(
            "  waiting on {} of {} parent jobs",
            rec.waiting_on,
            rec.parents.len()
        );
    }
    let mut rows = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut todo: std::collections::VecDeque<(JobId, usize)> =
        rec.parents.iter().map(|p| (p.clone(), 1)).collect();
    while let Some((id, depth)) = todo.pop_front() {
        if !seen.insert(id.clone()) || rows.len() >= 200 {
            continue;
        }
        let row = match q.status(&id).await? {
            Some(p) => {
                todo.extend(p.parents.iter().map(|g| (g.clone(), depth + 1)));
                vec![
                    format!("{}{id}", "  ".repeat(depth - 1)),
                    p.kind.clone(),
                    p.state.to_string(),
                    p.error.map(|e| e.message).unwrap_or_default(),
                ]
            }
            None => vec![id.to_string(), "-".into(), "expired".into(), String::new()],
        };
        rows.push(row);
    }
    println!("  reads from:");
    print!(
        "{}",
        report::table(&["job", "kind", "state", "error"], &rows)
    );
    Ok(())
}

/// `gpujobs cancel <id>`.
pub async fn cancel(args: CancelArgs) -> Result<(), CliError> {
    let id = job_id(&args.id)?;
    let q = connect::client(&args.redis).await?;
    let (outcome, state, text) = match q.cancel(&id).await? {
        CancelOutcome::Cancelled => ("cancelled", None, format!("{id}: cancelled before it ran")),
        CancelOutcome::Requested => (
            "requested",
            None,
            format!("{id}: running; its worker has been asked to stop it"),
        ),
        CancelOutcome::AlreadyFinished(s) => {
            ("already-finished", Some(s), format!("{id}: already {s}"))
        }
        CancelOutcome::NotFound => return Err(CliError::runtime(format!("no job {id}"))),
    };
    if args.json {
        let mut v = serde_json::json!({"id": id.as_str(), "outcome": outcome});
        if let Some(s) = state {
            v["state"] = serde_json::Value::String(s.to_string());
        }
        println!("{v}");
    } else {
        println!("{text}");
    }
    Ok(())
}

/// `gpujobs dead-letter list|retry`.
pub async fn dead_letter(args: DeadLetterArgs) -> Result<(), CliError> {
    let q = connect::client(&args.redis).await?;
    match args.action {
        DeadLetterAction::List { limit, json } => {
            let letters = q.dead_letters(limit).await?;
            if json {
                for d in &letters {
                    println!("{}", serde_json::to_string(d).unwrap_or_default());
                }
            } else if letters.is_empty() {
                println!("no dead letters");
            } else {
                let rows: Vec<Vec<String>> = letters
                    .iter()
                    .map(|d| {
                        vec![
                            d.id.clone(),
                            d.kind.clone().unwrap_or_else(|| "-".into()),
                            d.attempts.to_string(),
                            d.reason.clone(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    report::table(&["id", "kind", "attempts", "reason"], &rows)
                );
            }
        }
        DeadLetterAction::Retry { id, json } => {
            let id = job_id(&id)?;
            if q.retry_dead(&id).await? {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"id": id.as_str(), "retried": true})
                    );
                } else {
                    println!("{id}: re-submitted with fresh attempts");
                }
            } else {
                return Err(CliError::runtime(format!(
                    "{id} is not a dead-lettered job that can be retried"
                )));
            }
        }
    }
    Ok(())
}
