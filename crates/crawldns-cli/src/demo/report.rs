//! The side-by-side table, its ratios, and the notes under it.

use std::fmt::Write as _;
use std::time::Duration;

use super::crawl::CrawlReport;
use super::scenario::Scenario;
use crate::fetch_tally::FetchTally;
use crate::stats::{fmt_ms, fmt_opt_ms};

/// One column of the table.
pub(super) struct Column {
    pub(super) title: &'static str,
    /// The column's name in the ratio column against it (`vs system`).
    short: &'static str,
    pub(super) subtitle: String,
    pub(super) tally: FetchTally,
    report: CrawlReport,
}

impl Column {
    pub(super) fn new(
        title: &'static str,
        short: &'static str,
        subtitle: String,
        report: CrawlReport,
    ) -> Self {
        let mut tally = FetchTally::default();
        for timing in &report.timings {
            tally.add(timing);
        }
        Self {
            title,
            short,
            subtitle,
            tally,
            report,
        }
    }
}

/// `system / crawldns`, as `12.3x`.
fn ratio(system: Option<Duration>, crawldns: Option<Duration>) -> String {
    match (system, crawldns) {
        (Some(a), Some(b)) if !b.is_zero() => {
            let r = a.as_secs_f64() / b.as_secs_f64();
            if r >= 1000.0 {
                // A cache hit against a network round trip: the exact
                // factor says nothing more.
                ">1000x".to_owned()
            } else if r >= 100.0 {
                format!("{r:.0}x")
            } else {
                format!("{r:.1}x")
            }
        }
        _ => "-".to_owned(),
    }
}

/// The side-by-side table: the `baselines` (the system path, with and
/// without a cache), then the `crawls` of crawldns (the last one, with
/// pre-warm, is the reference), then one ratio column per baseline
/// (baseline ÷ reference).
pub(super) fn table(baselines: &[&Column], crawls: &[&Column]) -> String {
    let mut text = String::new();
    let mut columns: Vec<&Column> = baselines.to_vec();
    columns.extend(crawls);
    let Some(&crawldns) = crawls.last() else {
        return text;
    };
    let row = |text: &mut String, name: &str, cells: &[String], ratios: &[String]| {
        let _ = write!(text, "{name:<14}");
        for cell in cells {
            let _ = write!(text, " {cell:>18}");
        }
        for ratio in ratios {
            let _ = write!(text, " {ratio:>11}");
        }
        text.push('\n');
    };
    let cells = |f: &dyn Fn(&Column) -> String| columns.iter().map(|c| f(c)).collect::<Vec<_>>();
    let blank = vec![String::new(); baselines.len()];
    row(
        &mut text,
        "",
        &cells(&|c| c.title.to_owned()),
        &vec!["ratio".to_owned(); baselines.len()],
    );
    row(
        &mut text,
        "",
        &cells(&|c| c.subtitle.clone()),
        &baselines
            .iter()
            .map(|b| format!("vs {}", b.short))
            .collect::<Vec<_>>(),
    );
    type Metric = (&'static str, fn(&Column) -> Option<Duration>);
    let metrics: [Metric; 6] = [
        ("TTFB p50", |c| c.tally.ttfb.quantile(0.5)),
        ("TTFB p99", |c| c.tally.ttfb.quantile(0.99)),
        ("TTFB p99.9", |c| c.tally.ttfb.quantile(0.999)),
        ("DNS p50", |c| c.tally.dns.quantile(0.5)),
        ("DNS p99", |c| c.tally.dns.quantile(0.99)),
        ("wall time", |c| {
            Some(Duration::from_secs_f64(c.report.wall_ms.max(0.0) / 1e3))
        }),
    ];
    for (name, metric) in metrics {
        let ratios = baselines
            .iter()
            .map(|b| ratio(metric(b), metric(crawldns)))
            .collect::<Vec<_>>();
        row(&mut text, name, &cells(&|c| fmt_opt_ms(metric(c))), &ratios);
    }
    row(
        &mut text,
        "errors",
        &cells(&|c| c.tally.failed().to_string()),
        &blank,
    );
    row(
        &mut text,
        "ok",
        &cells(&|c| format!("{}/{}", c.tally.ok(), c.tally.urls)),
        &blank,
    );
    text
}

/// What the numbers mean, and anything odd about them.
pub(super) fn notes(s: &Scenario, baselines: &[&Column], crawls: &[&Column]) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "TTFB runs from the moment a request holds a connection slot (waiting for the limits is \
         not in it) to the first byte of the response: DNS, connect and the server's {} ms are.",
        s.http_delay_ms
    );
    let _ = writeln!(
        text,
        "DNS is the resolution time of new connections ({}).",
        baselines
            .iter()
            .chain(crawls)
            .map(|c| format!("{} for {} ({})", c.tally.dns.count(), c.title, c.subtitle))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let Some(&crawldns) = crawls.last() else {
        return text;
    };
    if crawls.len() > 1 {
        let _ = writeln!(
            text,
            "crawldns without pre-warm is its cache and single-flight alone: each host's first \
             connections wait for its one lookup.{}",
            if baselines.is_empty() {
                ""
            } else {
                " The ratios compare with crawldns as it runs by default, with pre-warm."
            }
        );
    }
    if baselines.len() > 1 {
        let _ = writeln!(
            text,
            "system + cache keeps each host's addresses {} s with no single-flight, as aiohttp \
             does by default: the first connections to a host all ask getaddrinfo at once. The \
             columns separate what caching buys from what crawldns's event-driven resolution, \
             single-flight and pre-warm buy.",
            s.system_dns_cache
        );
    }
    let _ =
        writeln!(
        text,
        "crawldns pre-warmed {} hosts in {} before its first request; that time is in its wall \
         time, not in its TTFB.",
        s.hosts,
        fmt_ms(Duration::from_secs_f64(crawldns.report.prewarm_ms.max(0.0) / 1e3)),
    );
    for column in baselines.iter().chain(crawls).copied() {
        if column.tally.failed() > 0 {
            let _ = writeln!(
                text,
                "errors ({}): {}",
                column.title,
                column.tally.errors_line()
            );
        }
    }
    text
}

/// Only for tests: a column from TTFB values.
#[cfg(test)]
fn column_for_test(title: &'static str, ttfb_ms: &[f64], wall_ms: f64) -> Column {
    use crate::fetch_tally::Timing;
    let timings = ttfb_ms
        .iter()
        .map(|&ms| Timing {
            class: None,
            error: None,
            ttfb_ms: Some(ms),
            dns_ms: Some(ms / 2.0),
            total_ms: ms,
        })
        .collect();
    Column::new(
        title,
        "test",
        "test".to_owned(),
        CrawlReport {
            wall_ms,
            prewarm_ms: 0.0,
            connections_opened: 0,
            connections_reused: 0,
            timings,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios() {
        let ms = Duration::from_millis;
        assert_eq!(ratio(Some(ms(400)), Some(ms(40))), "10.0x");
        assert_eq!(ratio(Some(ms(4000)), Some(ms(10))), "400x");
        assert_eq!(
            ratio(Some(ms(40)), Some(Duration::from_micros(1))),
            ">1000x"
        );
        assert_eq!(ratio(None, Some(ms(40))), "-");
        assert_eq!(ratio(Some(ms(40)), Some(Duration::ZERO)), "-");
    }

    #[test]
    fn the_table_has_every_column_and_a_ratio_per_baseline() {
        let system = column_for_test("system path", &[400.0; 10], 3_000.0);
        let crawldns = column_for_test("crawldns", &[40.0; 10], 1_000.0);
        let cached = column_for_test("system + cache", &[200.0; 10], 2_000.0);
        let cold = column_for_test("crawldns", &[80.0; 10], 900.0);
        let text = table(&[&system, &cached], &[&cold, &crawldns]);
        let lines: Vec<&str> = text.lines().collect();
        let cells = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert!(lines[0].contains("system path") && lines[0].contains("crawldns"));
        assert!(lines[0].contains("system + cache"), "{}", lines[0]);
        assert!(lines[1].ends_with("vs test     vs test"), "{}", lines[1]);
        let p50 = lines.iter().find(|l| l.starts_with("TTFB p50")).unwrap();
        // The ratios are against the last crawl (with pre-warm).
        assert_eq!(
            cells(p50)[2..],
            ["400.1", "ms", "200.1", "ms", "80.1", "ms", "40.0", "ms", "10.0x", "5.0x"],
            "{p50}"
        );
        assert!(lines.iter().any(|l| l.starts_with("TTFB p99.9")), "{text}");
        let wall = lines.iter().find(|l| l.starts_with("wall time")).unwrap();
        assert!(wall.ends_with("3.0x        2.0x"), "{wall}");
        let ok = lines.iter().find(|l| l.starts_with("ok")).unwrap();
        assert_eq!(cells(ok)[1..], ["10/10", "10/10", "10/10", "10/10"], "{ok}");

        let alone = table(&[], &[&crawldns]);
        assert!(
            !alone.contains("system path") && !alone.contains("ratio"),
            "{alone}"
        );
    }
}
