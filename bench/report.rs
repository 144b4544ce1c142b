//! The table on stdout and `bench/results/latest.json`.
//!
//! A section holds rows (one metric of one contender); every peer row is
//! followed by the ratio berth/peer of the medians, so below 1 means berth
//! is faster (or smaller). Targets are checked against those ratios.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::measure::Samples;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unit {
    Ms,
    Seconds,
    KiB,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Ms => "ms",
            Unit::Seconds => "s",
            Unit::KiB => "KiB",
        }
    }

    fn fmt(self, v: f64) -> String {
        if v.is_nan() {
            return "-".into();
        }
        match self {
            Unit::Ms if v < 10.0 => format!("{v:.2} ms"),
            Unit::Ms => format!("{v:.1} ms"),
            Unit::Seconds => format!("{v:.2} s"),
            Unit::KiB => format!("{v:.0} KiB"),
        }
    }
}

pub struct Row {
    pub metric: String,
    pub contender: String,
    pub unit: Unit,
    pub samples: Samples,
    /// Shown after the numbers, e.g. throughput.
    pub extra: String,
}

impl Row {
    pub fn median(&self) -> f64 {
        self.samples.median()
    }

    fn is_berth(&self) -> bool {
        self.contender.starts_with("berth")
    }
}

#[derive(Default)]
pub struct Section {
    pub key: &'static str,
    pub title: String,
    pub notes: Vec<String>,
    pub rows: Vec<Row>,
    pub targets: Vec<Target>,
}

impl Section {
    pub fn new(key: &'static str, title: impl Into<String>) -> Section {
        Section {
            key,
            title: title.into(),
            ..Section::default()
        }
    }

    pub fn note(&mut self, n: impl Into<String>) {
        self.notes.push(n.into());
    }

    pub fn row(&mut self, metric: &str, contender: &str, unit: Unit, samples: Samples) {
        self.rows.push(Row {
            metric: metric.into(),
            contender: contender.into(),
            unit,
            samples,
            extra: String::new(),
        });
    }

    pub fn row_extra(
        &mut self,
        metric: &str,
        contender: &str,
        unit: Unit,
        samples: Samples,
        extra: String,
    ) {
        self.row(metric, contender, unit, samples);
        if let Some(r) = self.rows.last_mut() {
            r.extra = extra;
        }
    }

    pub fn find(&self, metric: &str, contender: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.metric == metric && r.contender == contender)
    }

    /// The ratio of two rows' medians, if both exist.
    pub fn ratio(&self, a: (&str, &str), b: (&str, &str)) -> Option<f64> {
        let a = self.find(a.0, a.1)?.median();
        let b = self.find(b.0, b.1)?.median();
        (a.is_finite() && b.is_finite() && b > 0.0).then_some(a / b)
    }

    /// Adds a target on the ratio of two rows (or notes it could not be
    /// checked).
    pub fn target_ratio(
        &mut self,
        what: &str,
        a: (&str, &str),
        b: (&str, &str),
        cmp: Cmp,
        limit: f64,
    ) {
        let value = self.ratio(a, b);
        self.targets.push(Target::new(what, value, cmp, limit, "x"));
    }

    pub fn target_abs(&mut self, what: &str, row: (&str, &str), cmp: Cmp, limit: f64) {
        let value = self.find(row.0, row.1).map(Row::median);
        self.targets
            .push(Target::new(what, value, cmp, limit, "ms"));
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\n== {}", self.title);
        for n in &self.notes {
            let _ = writeln!(out, "   note: {n}");
        }
        let wm = self
            .rows
            .iter()
            .map(|r| r.metric.len())
            .max()
            .unwrap_or(0)
            .max(6);
        let wc = self
            .rows
            .iter()
            .map(|r| r.contender.len())
            .max()
            .unwrap_or(0)
            .max(4);
        // Rows grouped by metric, in the order metrics first appear.
        let mut metrics: Vec<&str> = Vec::new();
        for r in &self.rows {
            if !metrics.contains(&r.metric.as_str()) {
                metrics.push(&r.metric);
            }
        }
        let grouped = metrics
            .iter()
            .flat_map(|m| self.rows.iter().filter(move |r| r.metric == *m));
        let mut last_metric = "";
        for r in grouped {
            let metric = if r.metric == last_metric {
                ""
            } else {
                &r.metric
            };
            last_metric = &r.metric;
            let n = r.samples.0.len();
            let stats = if n >= 20 {
                format!(
                    "{:>10}  p95 {:>10}  n={n}",
                    r.unit.fmt(r.median()),
                    r.unit.fmt(r.samples.p95())
                )
            } else if n > 1 {
                format!(
                    "{:>10}  max {:>10}  n={n}",
                    r.unit.fmt(r.median()),
                    r.unit.fmt(r.samples.percentile(100.0))
                )
            } else {
                format!("{:>10}", r.unit.fmt(r.median()))
            };
            let mut ratios = Vec::new();
            if !r.is_berth() {
                for b in self
                    .rows
                    .iter()
                    .filter(|b| b.metric == r.metric && b.is_berth())
                {
                    let (x, y) = (b.median(), r.median());
                    if x.is_finite() && y.is_finite() && y > 0.0 {
                        ratios.push(format!("{}/{} {:.2}x", b.contender, r.contender, x / y));
                    }
                }
            }
            let _ = writeln!(
                out,
                "   {metric:<wm$}  {:<wc$}  {stats:<38} {}{}",
                r.contender,
                r.extra,
                if ratios.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", ratios.join(", "))
                }
            );
        }
        for t in &self.targets {
            let _ = writeln!(out, "   target: {}", t.render());
        }
        out
    }

    pub fn json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "metric": r.metric,
                    "contender": r.contender,
                    "unit": r.unit.name(),
                    "n": r.samples.0.len(),
                    "median": finite(r.median()),
                    "p95": finite(r.samples.p95()),
                    "min": finite(r.samples.percentile(0.0)),
                    "max": finite(r.samples.percentile(100.0)),
                    "extra": r.extra,
                    "samples": r.samples.0,
                })
            })
            .collect();
        let mut ratios = Vec::new();
        for r in self.rows.iter().filter(|r| !r.is_berth()) {
            for b in self
                .rows
                .iter()
                .filter(|b| b.metric == r.metric && b.is_berth())
            {
                let (x, y) = (b.median(), r.median());
                if x.is_finite() && y.is_finite() && y > 0.0 {
                    ratios.push(json!({
                        "metric": r.metric, "berth": b.contender, "peer": r.contender, "ratio": x / y,
                    }));
                }
            }
        }
        json!({
            "key": self.key,
            "title": self.title,
            "notes": self.notes,
            "rows": rows,
            "ratios": ratios,
            "targets": self.targets.iter().map(Target::json).collect::<Vec<_>>(),
        })
    }
}

fn finite(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

/// How a target compares (all targets so far are upper bounds on a ratio
/// or a time; a lower bound would be a second variant).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cmp {
    AtMost,
}

pub struct Target {
    pub what: String,
    pub value: Option<f64>,
    pub cmp: Cmp,
    pub limit: f64,
    pub unit: &'static str,
}

impl Target {
    fn new(what: &str, value: Option<f64>, cmp: Cmp, limit: f64, unit: &'static str) -> Target {
        Target {
            what: what.into(),
            value,
            cmp,
            limit,
            unit,
        }
    }

    pub fn met(&self) -> Option<bool> {
        let v = self.value?;
        Some(match self.cmp {
            Cmp::AtMost => v <= self.limit,
        })
    }

    pub fn render(&self) -> String {
        let op = match self.cmp {
            Cmp::AtMost => "<=",
        };
        let fmt = |v: f64| {
            if self.unit == "x" {
                format!("{v:.2}x")
            } else {
                format!("{v:.2} {}", self.unit)
            }
        };
        match (self.value, self.met()) {
            (Some(v), Some(true)) => {
                format!("{}: {} ({op} {}) met", self.what, fmt(v), fmt(self.limit))
            }
            (Some(v), _) => {
                // How far off, as a factor of the limit.
                let off = match self.cmp {
                    Cmp::AtMost => v / self.limit,
                };
                format!(
                    "{}: {} ({op} {}) MISSED, {off:.2}x off the limit",
                    self.what,
                    fmt(v),
                    fmt(self.limit),
                )
            }
            (None, _) => format!("{}: not measured ({op} {})", self.what, fmt(self.limit)),
        }
    }

    fn json(&self) -> Value {
        json!({
            "what": self.what,
            "value": self.value,
            "cmp": match self.cmp { Cmp::AtMost => "<=" },
            "limit": self.limit,
            "unit": self.unit,
            "met": self.met(),
        })
    }
}
