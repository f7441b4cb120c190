//! Server-drawn SVG charts (no script, no library): bars per minute.

use gpujobs_queue::history::SeriesPoint;
use maud::{Markup, html};

const W: f64 = 720.0;
const H: f64 = 140.0;

/// Bars of `value(point)` per minute, with the peak and the time span labelled.
pub(crate) fn bars(
    title: &str,
    class: &str,
    points: &[SeriesPoint],
    value: impl Fn(&SeriesPoint) -> u64,
) -> Markup {
    let peak = points.iter().map(&value).max().unwrap_or(0).max(1);
    let total: u64 = points.iter().map(&value).sum();
    let n = points.len().max(1) as f64;
    let bw = W / n;
    let first = points
        .first()
        .map(|p| super::when(p.minute_ms))
        .unwrap_or_default();
    let last = points
        .last()
        .map(|p| super::when(p.minute_ms))
        .unwrap_or_default();
    html! {
        figure.chart {
            figcaption { (title) " — " (total) " in " (points.len()) " min, peak " (peak) "/min" }
            svg viewBox={ "0 0 " (W) " " (H + 18.0) } role="img" aria-label=(title) {
                line x1="0" y1=(H) x2=(W) y2=(H) class="axis" {}
                @for (i, p) in points.iter().enumerate() {
                    @let v = value(p);
                    @if v > 0 {
                        @let h = (v as f64 / peak as f64) * (H - 4.0);
                        rect class=(class) x=(format!("{:.2}", i as f64 * bw)) y=(format!("{:.2}", H - h))
                            width=(format!("{:.2}", (bw - 0.5).max(0.5))) height=(format!("{:.2}", h)) {
                            title { (super::when(p.minute_ms)) ": " (v) }
                        }
                    }
                }
                text x="0" y=(H + 14.0) class="label" { (first) }
                text x=(W) y=(H + 14.0) class="label end" { (last) " UTC" }
            }
        }
    }
}
