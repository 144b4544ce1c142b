//! `berth images [--format table|json]`.

use anyhow::Result;

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `table` (default) or `json` (one object per line).
    #[arg(long, default_value = "table")]
    format: Format,
    /// Show full image IDs.
    #[arg(long)]
    no_trunc: bool,
    /// Print only image IDs.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::ValueEnum, Clone, Debug)]
enum Format {
    Table,
    Json,
}

pub fn run(cli: &Cli, args: &Args) -> Result<()> {
    let store = super::store(cli)?;
    let mut rows = store.list()?;
    rows.sort_by(|a, b| {
        b.created.cmp(&a.created).then_with(|| {
            a.name
                .as_ref()
                .map(|n| n.to_string())
                .cmp(&b.name.as_ref().map(|n| n.to_string()))
        })
    });
    let id_of = |id: &berth::image::digest::Digest| {
        if args.no_trunc {
            id.to_string()
        } else {
            id.short().to_string()
        }
    };
    if args.quiet {
        for r in rows {
            println!("{}", id_of(&r.id));
        }
        return Ok(());
    }
    match args.format {
        Format::Json => {
            for r in rows {
                let (repo, tag) = split_name(r.name.as_ref());
                let line = serde_json::json!({
                    "Repository": repo, "Tag": tag, "ID": r.id.to_string(), "CreatedAt": r.created,
                    "CreatedSince": super::human_age(r.created.as_deref()), "Size": r.size,
                });
                println!("{line}");
            }
        }
        Format::Table => {
            let table: Vec<[String; 5]> = rows
                .iter()
                .map(|r| {
                    let (repo, tag) = split_name(r.name.as_ref());
                    [
                        repo,
                        tag,
                        id_of(&r.id),
                        super::human_age(r.created.as_deref()),
                        super::human_size(r.size),
                    ]
                })
                .collect();
            let header = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"].map(String::from);
            let mut widths = header.clone().map(|h| h.len());
            for row in &table {
                for (w, c) in widths.iter_mut().zip(row) {
                    *w = (*w).max(c.len());
                }
            }
            for row in std::iter::once(&header).chain(&table) {
                let line: Vec<String> = row
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                println!("{}", line.join("   ").trim_end());
            }
        }
    }
    Ok(())
}

fn split_name(name: Option<&berth::image::reference::Reference>) -> (String, String) {
    match name {
        Some(n) => (
            n.familiar_name(),
            n.tag.clone().unwrap_or_else(|| "<none>".into()),
        ),
        None => ("<none>".into(), "<none>".into()),
    }
}
