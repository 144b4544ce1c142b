//! Layer progress: a bar per layer on a terminal, plain lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use berth::image::progress::{Progress, Silent};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Bars on a terminal, lines when stderr is not one, nothing with `-q`.
pub fn for_terminal(quiet: bool) -> Box<dyn Progress> {
    if quiet {
        Box::new(Silent)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bars {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        })
    } else {
        Box::new(Lines)
    }
}

fn short(layer: &str) -> &str {
    let hex = layer.strip_prefix("sha256:").unwrap_or(layer);
    &hex[..hex.len().min(12)]
}

struct Lines;

impl Progress for Lines {
    fn layer_started(&self, layer: &str, size: Option<u64>) {
        match size {
            Some(s) => eprintln!(
                "{}: fetching {}",
                short(layer),
                crate::commands::human_size(s)
            ),
            None => eprintln!("{}: fetching", short(layer)),
        }
    }
    fn layer_bytes(&self, _: &str, _: u64) {}
    fn layer_skipped(&self, layer: &str) {
        eprintln!("{}: already exists", short(layer));
    }
    fn layer_done(&self, layer: &str) {
        eprintln!("{}: done", short(layer));
    }
}

struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    fn with_bar(&self, layer: &str, f: impl FnOnce(&ProgressBar)) {
        if let Ok(bars) = self.bars.lock()
            && let Some(bar) = bars.get(layer)
        {
            f(bar);
        }
    }
}

impl Progress for Bars {
    fn layer_started(&self, layer: &str, size: Option<u64>) {
        let bar = self.multi.add(ProgressBar::new(size.unwrap_or(0)));
        let template = if size.is_some() {
            "{prefix}: {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec}"
        } else {
            "{prefix}: {bytes} {binary_bytes_per_sec}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_prefix(short(layer).to_string());
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(layer.to_string(), bar);
        }
    }
    fn layer_bytes(&self, layer: &str, bytes: u64) {
        self.with_bar(layer, |b| b.inc(bytes));
    }
    fn layer_skipped(&self, layer: &str) {
        let _ = self
            .multi
            .println(format!("{}: already exists", short(layer)));
    }
    fn layer_done(&self, layer: &str) {
        self.with_bar(layer, |b| b.finish_with_message("done"));
    }
}
