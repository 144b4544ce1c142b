use anyhow::{Result, bail};

use super::Global;

#[derive(clap::Args)]
pub struct Args {
    /// Output format: table or json
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// Print only the ids
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

pub fn run(g: &Global, a: Args) -> Result<u8> {
    let list = g.runtime()?.list()?;
    if a.quiet {
        for c in &list {
            println!("{}", c.id);
        }
        return Ok(0);
    }
    match a.format.as_str() {
        "json" => println!("{}", serde_json::to_string(&list)?),
        "table" => {
            let rows: Vec<[String; 6]> = list
                .iter()
                .map(|c| {
                    [
                        c.id.clone(),
                        c.pid.to_string(),
                        c.status.to_string(),
                        c.bundle.display().to_string(),
                        c.created.clone(),
                        c.owner.clone(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"], &rows)
            );
        }
        other => bail!("unknown format {other:?}: use table or json"),
    }
    Ok(0)
}

/// runc's tabwriter layout: columns at least 12 wide, 3 spaces apart.
fn table(header: [&str; 6], rows: &[[String; 6]]) -> String {
    let mut widths = header.map(|h| h.len().max(12));
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let last = cells.len() - 1;
        for (i, c) in cells.iter().enumerate() {
            if i == last {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}", w = widths[i] + 3));
            }
        }
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}
