//! The gpujobs web dashboard (`gpujobs dashboard`): an overview of the lanes, the
//! workers, a job search, each job's record and graph, and the dead letters, served from
//! the binary (pages, script and styles are embedded: no build step, no CDN) over the
//! same Redis as the scheduler and workers.
//!
//! Safe by default: it binds loopback unless told otherwise and refuses a non-loopback
//! address without an access token; without a token it is read-only; actions need a
//! session (an HttpOnly, SameSite=Strict cookie) or the token as a bearer header, and
//! are refused from other sites (`Sec-Fetch-Site`, `Origin`); every response carries a
//! strict Content-Security-Policy; every value from a job is escaped by the templates.
//!
//! It also runs the history keeper ([`gpujobs_queue::history`]) that indexes ended jobs
//! for the search and the throughput charts, in Redis, so history survives a restart.

mod actions;
mod app;
mod assets;
mod error;
mod keeper;
mod outputs;
mod security;
mod sessions;
mod views;

pub use app::{Dashboard, DashboardConfig};
pub use error::DashboardError;
