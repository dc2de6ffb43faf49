//! Markdown tables: a header with aligned columns, and rows.

use std::fmt::Write as _;

/// Columns whose cells are text, aligned left; the others hold numbers.
pub(super) const TEXT_COLUMNS: [&str; 7] = [
    "notes",
    "status",
    "measures",
    "verdict",
    "measured (crawldns)",
    "target",
    "workload",
];

pub(super) fn header(out: &mut String, columns: &[&str]) {
    let _ = writeln!(out, "| {} |", columns.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 || c.is_empty() || TEXT_COLUMNS.contains(c) {
                    " --- |"
                } else {
                    " ---: |"
                }
            })
            .collect::<String>()
    );
}

pub(super) fn row(out: &mut String, cells: &[String]) {
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}
