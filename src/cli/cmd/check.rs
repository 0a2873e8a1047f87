//! `cairn check`: structure always, data packs with `--read-data*`; exit 1 when anything is wrong.

use crate::cli::args::CheckArgs;
use crate::cli::output::Text;
use crate::cli::{open, Ctx, Outcome};
use anyhow::anyhow;
use cairn::check::{CheckOptions, ReadData, Severity};
use cairn::tree::Time;
use cairn::units::human_bytes;

pub fn run(ctx: &Ctx, a: CheckArgs) -> anyhow::Result<Outcome> {
    let read_data = if a.read_data {
        ReadData::All
    } else if let Some(share) = a.read_data_subset {
        share
    } else if let Some(days) = a.read_data_rotation {
        ReadData::Rotation { days, day: (Time::now().secs.max(0) as u64) / 86_400 }
    } else {
        ReadData::None
    };
    let out = &ctx.out;
    let repo = open::open_reader(&ctx.g, out)?;
    let report = cairn::check::check(&repo, &CheckOptions { read_data })?;
    let errors = report.errors();
    let warnings = report.findings.iter().filter(|f| f.severity == Severity::Warning).count();
    ctx.metrics.check(&repo, errors, warnings);
    if !out.json() {
        // Findings: errors on stderr always, notes on stdout unless -q.
        for f in &report.findings {
            let mut line = format!(
                "{} {}: {}: {}",
                match f.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                    Severity::Info => "note",
                },
                f.code,
                f.object,
                f.message
            );
            if !f.snapshots.is_empty() {
                let short: Vec<&str> = f.snapshots.iter().map(|s| &s[..8.min(s.len())]).collect();
                line.push_str(&format!(" [snapshots {}]", short.join(" ")));
            }
            if !f.paths.is_empty() {
                line.push_str(&format!(" [paths {}]", f.paths.join(" ")));
            }
            if f.severity == Severity::Error {
                out.error(line);
            } else if f.severity == Severity::Warning {
                out.note(line);
            } else {
                out.result(&(), Text::Normal, |w| writeln!(w, "{line}"))?;
            }
        }
    }
    out.result(&report, Text::Normal, |w| {
        writeln!(
            w,
            "checked {} snapshots, {} index files, {} tree packs and {} data packs ({} read, {} blobs verified, {}): {}",
            report.snapshots,
            report.index_files,
            report.tree_packs,
            report.data_packs,
            report.data_packs_read,
            report.blobs_verified,
            human_bytes(report.bytes_read),
            if errors == 0 { "no errors".to_string() } else { format!("{errors} error(s)") }
        )
    })?;
    if errors > 0 {
        return Err(anyhow!("check found {errors} error(s)"));
    }
    Ok(Outcome::Done)
}
