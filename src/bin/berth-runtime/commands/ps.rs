use anyhow::{Result, bail};

use super::Global;

#[derive(clap::Args)]
pub struct Args {
    /// Output format: table or json (a JSON array of host pids)
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// The container id
    pub id: String,
    /// Options for ps(1) in table format
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run(g: &Global, a: Args) -> Result<u8> {
    let pids = g.runtime()?.pids(&a.id)?;
    match a.format.as_str() {
        "json" => println!("{}", serde_json::to_string(&pids)?),
        "table" => {
            // As runc: run ps(1) and keep the header and our processes.
            let args = if a.ps_args.is_empty() {
                vec!["-ef".to_string()]
            } else {
                a.ps_args.clone()
            };
            let out = std::process::Command::new("ps").args(&args).output()?;
            if !out.status.success() {
                bail!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let Some(header) = lines.next() else {
                return Ok(0);
            };
            let Some(pid_col) = header.split_whitespace().position(|h| h == "PID") else {
                bail!("ps {}: output has no PID column", args.join(" "));
            };
            println!("{header}");
            for l in lines {
                let pid = l
                    .split_whitespace()
                    .nth(pid_col)
                    .and_then(|p| p.parse::<i32>().ok());
                if pid.is_some_and(|p| pids.contains(&p)) {
                    println!("{l}");
                }
            }
        }
        other => bail!("unknown format {other:?}: use table or json"),
    }
    Ok(0)
}
