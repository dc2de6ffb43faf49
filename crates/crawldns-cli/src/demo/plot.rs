//! The demo's plot: cumulative distributions of time to first byte, one
//! line per crawl, on a logarithmic time axis, as an SVG file.
//!
//! Drawn with plotters' SVG backend, which writes text as `<text>` elements:
//! no font files or system libraries are needed. The file is written whole
//! (to a temporary name, then renamed), never half.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;

use super::report::Column;
use super::scenario::Scenario;
use crate::stats::Latency;

/// Size of the image, in pixels.
const SIZE: (u32, u32) = (960, 600);
/// Points per CDF line.
const POINTS: usize = 400;

/// Writes the demo's plot to `path`: the TTFB CDF of each crawl that ran.
pub(super) fn write(
    path: &Path,
    s: &Scenario,
    baselines: &[&Column],
    crawls: &[&Column],
) -> Result<()> {
    let mut series = Vec::new();
    for (i, column) in baselines.iter().enumerate() {
        series.push(Series {
            label: format!("{} ({})", column.title, column.subtitle),
            latency: &column.tally.ttfb,
            color: BASELINE_COLORS[i % BASELINE_COLORS.len()],
        });
    }
    for (i, column) in crawls.iter().enumerate() {
        let last = i + 1 == crawls.len();
        series.push(Series {
            // The reference crawl is plain "crawldns".
            label: if last {
                "crawldns".to_owned()
            } else {
                format!("crawldns ({})", column.subtitle)
            },
            latency: &column.tally.ttfb,
            color: if last {
                CRAWLDNS_COLOR
            } else {
                NO_PREWARM_COLOR
            },
        });
    }
    let title = format!(
        "Time to first byte: {} URLs on {} hosts, DNS RTT {} ms",
        s.url_count(),
        s.hosts,
        s.dns_delay_ms
    );
    let svg = ttfb_cdf_svg(&title, &series)?;
    write_file(path, &svg)
}

/// One line of the plot.
struct Series<'a> {
    /// The legend entry.
    label: String,
    /// Its TTFB histogram.
    latency: &'a Latency,
    /// Its color.
    color: RGBColor,
}

/// Orange for the system path.
const SYSTEM_COLOR: RGBColor = RGBColor(230, 110, 20);
/// Green for the system path with a cache.
const CACHED_COLOR: RGBColor = RGBColor(40, 150, 60);
/// The baselines' colors, in order.
const BASELINE_COLORS: [RGBColor; 2] = [SYSTEM_COLOR, CACHED_COLOR];
/// Purple for crawldns without pre-warm.
const NO_PREWARM_COLOR: RGBColor = RGBColor(140, 60, 170);
/// Blue for crawldns.
const CRAWLDNS_COLOR: RGBColor = RGBColor(30, 90, 200);

/// Renders the CDFs of `series` as SVG text.
fn ttfb_cdf_svg(title: &str, series: &[Series<'_>]) -> Result<String> {
    let (lo_us, hi_us) = x_range(series);
    let points = log_points(lo_us, hi_us, POINTS);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let lo_ms = lo_us as f64 / 1e3;
        let hi_ms = hi_us as f64 / 1e3;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(70)
            .build_cartesian_2d(
                (lo_ms..hi_ms)
                    .log_scale()
                    .with_key_points(key_points(lo_ms, hi_ms)),
                0f64..1.0f64,
            )
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("time to first byte (ms, log scale)")
            .y_desc("fraction of requests")
            .x_label_formatter(&|v| format_ms_label(*v))
            .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
            .draw()
            .map_err(plot_error)?;
        for s in series {
            let cdf = s.latency.cdf(&points);
            let line: Vec<(f64, f64)> = points
                .iter()
                .zip(cdf)
                .map(|(&us, f)| (us as f64 / 1e3, f))
                .collect();
            let color = s.color;
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(3)))
                .map_err(plot_error)?
                .label(s.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            // Between two CDFs the middle of the plot is empty; a single
            // CDF leaves the lower right empty.
            .position(if series.len() > 1 {
                SeriesLabelPosition::MiddleMiddle
            } else {
                SeriesLabelPosition::LowerRight
            })
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 16))
            .draw()
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// Writes `svg` to `path` whole: a temporary file beside it, then a rename.
fn write_file(path: &Path, svg: &str) -> Result<()> {
    let stem = path
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plot".to_owned());
    // `*.svg.tmp` is in .gitignore.
    let tmp = path.with_file_name(format!(".{stem}-{}.svg.tmp", std::process::id()));
    std::fs::write(&tmp, svg).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}", path.display())
    })
}

fn plot_error<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("cannot draw the plot: {e}")
}

/// The time axis: a little below the fastest to a little above the slowest
/// value of all series, in µs, never empty.
fn x_range(series: &[Series<'_>]) -> (u64, u64) {
    let lo = series
        .iter()
        .filter(|s| s.latency.count() > 0)
        .map(|s| s.latency.histogram().min())
        .min()
        .unwrap_or(1_000);
    let hi = series
        .iter()
        .filter(|s| s.latency.count() > 0)
        .map(|s| s.latency.histogram().max())
        .max()
        .unwrap_or(1_000_000);
    let lo = (lo as f64 / 1.25).max(10.0) as u64;
    let hi = ((hi as f64 * 1.25) as u64).max(lo * 10);
    (lo, hi)
}

/// Axis labels at 1, 2, 5 times powers of ten between `lo` and `hi` (ms).
fn key_points(lo: f64, hi: f64) -> Vec<f64> {
    let mut points = Vec::new();
    let mut decade = 0.01;
    while decade <= hi {
        for step in [1.0, 2.0, 5.0] {
            let point = decade * step;
            if (lo..=hi).contains(&point) {
                points.push(point);
            }
        }
        decade *= 10.0;
    }
    points
}

/// `n` points spread evenly on a log scale from `lo` to `hi`.
fn log_points(lo: u64, hi: u64, n: usize) -> Vec<u64> {
    let (a, b) = ((lo.max(1) as f64).ln(), (hi.max(2) as f64).ln());
    let steps = n.max(2) - 1;
    (0..=steps)
        .map(|i| (a + (b - a) * i as f64 / steps as f64).exp().round() as u64)
        .collect()
}

/// Axis labels: `0.5`, `20`, `1500`.
fn format_ms_label(ms: f64) -> String {
    if ms < 1.0 {
        format!("{ms:.2}")
    } else if ms < 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn both_series_are_drawn_and_labelled() {
        let mut fast = Latency::new();
        let mut slow = Latency::new();
        for i in 0..100 {
            fast.record(Duration::from_micros(20_000 + i * 100));
            slow.record(Duration::from_micros(100_000 + i * 5_000));
        }
        let svg = ttfb_cdf_svg(
            "TTFB",
            &[
                Series {
                    label: "system path".into(),
                    latency: &slow,
                    color: SYSTEM_COLOR,
                },
                Series {
                    label: "crawldns".into(),
                    latency: &fast,
                    color: CRAWLDNS_COLOR,
                },
            ],
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        // plotters writes each text on a line of its own.
        assert!(svg.contains("\nsystem path\n</text>"), "legend entry");
        assert!(svg.contains("\ncrawldns\n</text>"), "legend entry");
        assert!(svg.contains("time to first byte"), "axis title");
        assert!(svg.matches("<polyline").count() >= 2, "two lines");
        assert!(
            svg.contains("stroke=\"#E66E14\""),
            "the system color is used"
        );
        assert!(
            svg.contains("stroke=\"#1E5AC8\""),
            "the crawldns color is used"
        );
    }

    #[test]
    fn axis_labels_go_one_two_five() {
        let points = key_points(15.0, 1_500.0);
        let rounded: Vec<u64> = points.iter().map(|p| p.round() as u64).collect();
        assert_eq!(rounded, vec![20, 50, 100, 200, 500, 1_000]);
    }

    #[test]
    fn points_are_log_spaced() {
        let points = log_points(10, 10_000, 4);
        assert_eq!(points, vec![10, 100, 1_000, 10_000]);
    }
}
