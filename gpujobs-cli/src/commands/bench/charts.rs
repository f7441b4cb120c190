//! PNG charts with plotters: time against size per kind (log-log), and GPU speedups.

use super::Row;
use crate::error::CliError;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// The chart font, embedded so charts have text on any machine (DejaVu Sans, see
/// assets/DejaVuSans-LICENSE.txt).
static FONT: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            if plotters::style::register_font("sans-serif", style, FONT).is_err() {
                tracing::warn!("chart font could not be registered; charts will lack text");
            }
        }
    });
}

fn err<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> CliError + '_ {
    move |e| CliError::runtime(format!("drawing {what}: {e}"))
}

const SERIES: [(&str, RGBColor); 3] = [
    ("cpu", RGBColor(31, 119, 180)),
    ("gpu end to end", RGBColor(214, 39, 40)),
    ("gpu kernel", RGBColor(255, 127, 14)),
];

/// One panel per kind: median time against problem size, log-log, a line per device
/// (and the GPU's kernel time beside its end-to-end time).
pub fn time_vs_size(path: &Path, rows: &[Row], kinds: &[&str]) -> Result<(), CliError> {
    register_font();
    let cols = 3usize;
    let panels = kinds.len().max(1);
    let rows_n = panels.div_ceil(cols);
    let root =
        BitMapBackend::new(path, (420 * cols as u32, 340 * rows_n as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(err("background"))?;
    let areas = root.split_evenly((rows_n, cols));
    for (area, kind) in areas.iter().zip(kinds) {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.kind == *kind).collect();
        if mine.is_empty() {
            continue;
        }
        let xs = mine.iter().map(|r| r.x);
        let ys = mine
            .iter()
            .flat_map(|r| [r.e2e.median, r.kernel.median])
            .filter(|y| *y > 0.0);
        let (x0, x1) = xs.fold((f64::INFINITY, 0f64), |(a, b), x| (a.min(x), b.max(x)));
        let (y0, y1) = ys.fold((f64::INFINITY, 0f64), |(a, b), y| (a.min(y), b.max(y)));
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{kind}: median time"), ("sans-serif", 18))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(
                (x0 * 0.7..x1 * 1.4).log_scale(),
                (y0 * 0.5..y1 * 2.0).log_scale(),
            )
            .map_err(err("axes"))?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc("problem size")
            .y_desc("seconds")
            .x_label_formatter(&|v| format!("{v:.0e}"))
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(err("mesh"))?;
        let lines: [(&str, Vec<(f64, f64)>); 3] = [
            (
                "cpu",
                mine.iter()
                    .filter(|r| r.device == "cpu")
                    .map(|r| (r.x, r.e2e.median))
                    .collect(),
            ),
            (
                "gpu end to end",
                mine.iter()
                    .filter(|r| r.device == "gpu")
                    .map(|r| (r.x, r.e2e.median))
                    .collect(),
            ),
            (
                "gpu kernel",
                mine.iter()
                    .filter(|r| r.device == "gpu")
                    .map(|r| (r.x, r.kernel.median))
                    .collect(),
            ),
        ];
        for ((name, points), (_, color)) in lines.into_iter().zip(SERIES) {
            if points.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(err("line"))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, color.filled())),
                )
                .map_err(err("points"))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .draw()
            .map_err(err("legend"))?;
    }
    root.present().map_err(err("png"))
}

/// Bars of the GPU's speedup over the CPU per kind and size, end to end and
/// kernel-only, on a log axis with 1× marked. Says so when there was no GPU.
pub fn speedup(path: &Path, rows: &[Row]) -> Result<(), CliError> {
    register_font();
    let gpu: Vec<&Row> = rows.iter().filter(|r| r.device == "gpu").collect();
    let root = BitMapBackend::new(path, (1100, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err("background"))?;
    if gpu.is_empty() {
        root.draw(&Text::new(
            "No GPU on this machine: GPU speedups were not measured.",
            (40, 240),
            ("sans-serif", 24),
        ))
        .map_err(err("text"))?;
        return root.present().map_err(err("png"));
    }
    let labels: Vec<String> = gpu
        .iter()
        .map(|r| format!("{} {}", r.kind, r.rung))
        .collect();
    let values = gpu.iter().flat_map(|r| {
        [
            r.speedup_e2e.unwrap_or(1.0),
            r.speedup_kernel.unwrap_or(1.0),
        ]
    });
    let (lo, hi) = values.fold((1f64, 1f64), |(a, b), v| (a.min(v), b.max(v)));
    let n = gpu.len();
    let floor = lo * 0.5;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "GPU speedup over the CPU backend (log scale; 1× = same speed)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(130)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..n as f64, (floor..hi * 2.0).log_scale())
        .map_err(err("axes"))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .x_labels(0)
        .y_desc("speedup (×)")
        .y_label_formatter(&|v| format!("{v:.2}"))
        .draw()
        .map_err(err("mesh"))?;
    let bars = [
        ("end to end", SERIES[1].1, 0.1),
        ("kernel only", SERIES[2].1, 0.5),
    ];
    for (name, color, offset) in bars {
        chart
            .draw_series(gpu.iter().enumerate().map(|(i, r)| {
                let v = if offset < 0.3 {
                    r.speedup_e2e
                } else {
                    r.speedup_kernel
                }
                .unwrap_or(1.0);
                let x = i as f64 + offset;
                Rectangle::new([(x, floor), (x + 0.38, v)], color.filled())
            }))
            .map_err(err("bars"))?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .draw_series(LineSeries::new(
            vec![(0.0, 1.0), (n as f64, 1.0)],
            BLACK.stroke_width(1),
        ))
        .map_err(err("unity line"))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(err("legend"))?;
    // One label per pair of bars, written downwards under the axis.
    let style = ("sans-serif", 12)
        .into_font()
        .transform(FontTransform::Rotate90);
    for (i, label) in labels.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(i as f64 + 0.5, floor));
        root.draw(&Text::new(label.clone(), (px + 6, py + 6), style.clone()))
            .map_err(err("labels"))?;
    }
    root.present().map_err(err("png"))
}
