//! The closed sets of values some flags take, as clap value parsers that list them in
//! `--help` and in their errors, and parse into the library's types.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use gpujobs_core::{DevicePref, Priority};

/// `--device`: auto (placement decides), cpu, gpu (alias cuda).
pub fn device() -> impl TypedValueParser<Value = DevicePref> {
    PossibleValuesParser::new(["auto", "cpu", "gpu", "cuda"]).try_map(|s| s.parse::<DevicePref>())
}

/// `--priority`: high, normal, low.
pub fn priority() -> impl TypedValueParser<Value = Priority> {
    PossibleValuesParser::new(["high", "normal", "low"]).try_map(|s| s.parse::<Priority>())
}
