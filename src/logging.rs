//! Log output for both binaries, through `tracing`.
//!
//! `berth-runtime --log FILE --log-format json` must write what runc writes,
//! one object per line with `level`, `msg` and `time`, because containerd and
//! podman read the last line of that file to show why a runtime call failed.
//! The text format is logrus's `time="…" level=… msg="…"`.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            other => Err(format!("unknown log format {other:?}: use text or json")),
        }
    }
}

enum Sink {
    Stderr,
    File(Mutex<File>),
}

struct LineLayer {
    sink: Sink,
    format: Format,
    max: Level,
}

#[derive(Default)]
struct Fields {
    msg: String,
    extra: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg.push_str(value);
        } else {
            self.extra
                .push((field.name().to_string(), value.to_string()));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.msg, "{value:?}");
        } else {
            self.extra
                .push((field.name().to_string(), format!("{value:?}")));
        }
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// One formatted log line, newline included.
pub fn format_line(
    format: Format,
    level: &str,
    msg: &str,
    extra: &[(String, String)],
    time: &str,
) -> String {
    match format {
        Format::Json => {
            let mut obj = serde_json::Map::new();
            for (k, v) in extra {
                obj.insert(k.clone(), serde_json::Value::String(v.clone()));
            }
            obj.insert("level".into(), level.into());
            obj.insert("msg".into(), msg.into());
            obj.insert("time".into(), time.into());
            let mut s = serde_json::Value::Object(obj).to_string();
            s.push('\n');
            s
        }
        Format::Text => {
            let mut s = format!("time={time:?} level={level} msg={msg:?}");
            for (k, v) in extra {
                let _ = write!(s, " {k}={v:?}");
            }
            s.push('\n');
            s
        }
    }
}

impl<S: Subscriber> Layer<S> for LineLayer {
    fn enabled(&self, meta: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        *meta.level() <= self.max
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = format_line(
            self.format,
            level_name(event.metadata().level()),
            &fields.msg,
            &fields.extra,
            &crate::runtime::state::now_rfc3339(),
        );
        match &self.sink {
            Sink::Stderr => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
            Sink::File(f) => {
                if let Ok(mut f) = f.lock() {
                    let _ = f.write_all(line.as_bytes());
                }
            }
        }
    }
}

/// Installs the global logger. `file` None means stderr. Debug output is on
/// with `debug` or `BERTH_LOG=debug`; otherwise warnings and errors only.
pub fn init(file: Option<&Path>, format: Format, debug: bool) -> std::io::Result<()> {
    let env_debug = std::env::var("BERTH_LOG")
        .map(|v| v == "debug" || v == "trace")
        .unwrap_or(false);
    let max = if debug || env_debug {
        Level::DEBUG
    } else {
        Level::WARN
    };
    let sink = match file {
        None => Sink::Stderr,
        Some(p) => Sink::File(Mutex::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .custom_flags(libc::O_CLOEXEC)
                .mode(0o600)
                .open(p)?,
        )),
    };
    let layer = LineLayer { sink, format, max };
    // A second init (tests call into the library repeatedly) keeps the first.
    let _ = tracing_subscriber::registry().with(layer).try_init();
    Ok(())
}

/// An error and its causes on one line. Our error types already quote
/// their cause in their message, so a cause is only added when the text so
/// far does not contain it.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !msg.contains(&s) {
            msg.push_str(": ");
            msg.push_str(&s);
        }
        cur = c.source();
    }
    msg
}

/// A usage error as the argument parser renders it (`error: …`, a blank
/// line, a tip, a pointer to --help) on one line, without the `error: `:
/// errors are one line, whoever made them.
pub fn usage_line(rendered: &str) -> String {
    let mut lines = rendered.lines().map(str::trim).filter(|l| {
        !l.is_empty() && !l.starts_with("For more information") && !l.starts_with("Usage:")
    });
    let first = lines.next().unwrap_or("invalid usage");
    let mut out = first.strip_prefix("error: ").unwrap_or(first).to_string();
    let listing = out.ends_with(':');
    for l in lines {
        if let Some(tip) = l.strip_prefix("tip: ") {
            out.push_str(&format!(" ({tip})"));
        } else if listing {
            // "the following required arguments were not provided:" and
            // the arguments, one per line.
            out.push(' ');
            out.push_str(l);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_lines() {
        assert_eq!(
            usage_line(
                "error: unexpected argument '-1' found\n\n  tip: to pass '-1' as a value, use '-- -1'\n\nUsage: berth run [OPTIONS]\n\nFor more information, try '--help'.\n"
            ),
            "unexpected argument '-1' found (to pass '-1' as a value, use '-- -1')"
        );
        assert_eq!(
            usage_line(
                "error: invalid value 'abc' for '--cpus <CPUS>': invalid float literal\n\nFor more information, try '--help'.\n"
            ),
            "invalid value 'abc' for '--cpus <CPUS>': invalid float literal"
        );
        assert_eq!(
            usage_line(
                "error: the following required arguments were not provided:\n  <ID>\n  <SIGNAL>\n\nUsage: x\n"
            ),
            "the following required arguments were not provided: <ID> <SIGNAL>"
        );
    }

    #[test]
    fn json_line_has_runc_fields() {
        let line = format_line(
            Format::Json,
            "error",
            "boom \"x\"",
            &[],
            "2024-01-01T00:00:00Z",
        );
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "boom \"x\"");
        assert_eq!(v["time"], "2024-01-01T00:00:00Z");
        assert!(line.ends_with('\n'));
    }

    #[test]
    fn text_line_is_logrus_shaped() {
        let line = format_line(
            Format::Text,
            "warning",
            "a b",
            &[("id".into(), "c1".into())],
            "T",
        );
        assert_eq!(line, "time=\"T\" level=warning msg=\"a b\" id=\"c1\"\n");
    }
}
