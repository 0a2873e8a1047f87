//! `cairn ledger log|head|verify` (format-spec §13): the audit ledger. `verify` exits 1 (as
//! `check` does) when it finds anything.

use crate::cli::args_ledger::LedgerCommand;
use crate::cli::output::Text;
use crate::cli::{open, Ctx, Outcome};
use anyhow::anyhow;
use cairn::ops::ledger;

pub fn run(ctx: &Ctx, c: LedgerCommand) -> anyhow::Result<Outcome> {
    let out = &ctx.out;
    match c {
        LedgerCommand::Log { since, kind } => {
            let repo = open::open(&ctx.g, out, false)?;
            let entries = ledger::log(&repo, since, kind)?;
            out.result(&entries, Text::Data, |w| {
                for e in &entries {
                    let who = match (&e.user, &e.host) {
                        (Some(u), Some(h)) => format!("{u}@{h}"),
                        _ => "-".into(),
                    };
                    let what = match &e.event {
                        Some(ev) => serde_json::to_string(ev)?,
                        None => "(body readable with a full key)".into(),
                    };
                    writeln!(
                        w,
                        "{}  {}  {:<10}  key {}  {}  {}",
                        e.id.short(),
                        e.time.to_rfc3339(),
                        e.kind.name(),
                        e.key_id.short(),
                        who,
                        what
                    )?;
                }
                Ok(())
            })?;
        }
        LedgerCommand::Head => {
            let repo = open::open(&ctx.g, out, false)?;
            let head = ledger::head(&repo)?;
            out.result(&head, Text::Data, |w| writeln!(w, "{}", head.line))?;
        }
        LedgerCommand::Verify { anchor, evidence: Some(file) } => {
            return super::drill::verify_evidence(ctx, anchor.as_deref(), &file);
        }
        LedgerCommand::Verify { anchor, evidence: None } => {
            let repo = open::open_reader(&ctx.g, out)?;
            let report = ledger::verify(&repo, anchor.as_deref())?;
            if !out.json() {
                for f in &report.findings {
                    out.error(format!("error {}: {}: {}", f.code, f.object, f.message));
                }
            }
            let n = report.findings.len();
            out.result(&report, Text::Normal, |w| {
                writeln!(
                    w,
                    "verified {} ledger entries ({} head(s)) against {} snapshots: {}",
                    report.entries,
                    report.heads.len(),
                    report.snapshots,
                    if n == 0 { "no findings".to_string() } else { format!("{n} finding(s)") }
                )
            })?;
            if n > 0 {
                return Err(anyhow!("ledger verify found {n} finding(s)"));
            }
        }
    }
    Ok(Outcome::Done)
}
