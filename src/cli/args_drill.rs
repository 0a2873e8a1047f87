//! The arguments of `cairn drill` (kept apart from [`super::args`], which registers [`DrillArgs`]
//! as a [`super::args::Command`] variant), and the RTO grammar it shares with `[job.NAME.drill]`.

use super::filter_args::SnapshotFilter;
use super::values::FixedDuration;
use cairn::select::SnapshotSpec;
use clap::Args;
use std::path::PathBuf;

/// A recovery-time objective in milliseconds: a DURATION (`30s`, `90min`, `4h`) or whole
/// milliseconds (`1500ms`); above zero.
pub fn rto_ms(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let ms = match t.strip_suffix("ms").filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
        Some(n) => n.parse::<u64>().map_err(|_| format!("{t:?}: too many milliseconds"))?,
        None => {
            let d: FixedDuration = t.parse()?;
            u64::try_from(d.secs).unwrap_or(0).saturating_mul(1000)
        }
    };
    if ms == 0 {
        return Err(format!("{t:?}: the RTO must be above zero"));
    }
    Ok(ms)
}

/// `cairn drill`.
#[derive(Args, Clone)]
#[command(after_help = "Restores the snapshot into --target (default: a fresh private directory under the \
temporary directory, removed afterwards), re-reads every restored file and compares it with the snapshot's content \
ids, then runs --verify-command with CAIRN_DRILL_TARGET and CAIRN_DRILL_SNAPSHOT set. With --stream NAME nothing is \
restored to disk: that file of the snapshot is streamed into the command's standard input. The evidence report \
(JSON and text) goes to --evidence-dir and its BLAKE3 into a drill entry of the ledger (`cairn ledger verify \
--evidence FILE` checks a report). Exit: 0 passed within the RTO, 1 a check failed, 4 passed but over the RTO.")]
pub struct DrillArgs {
    /// Snapshot id, prefix or `latest` [default: latest, after the filters]
    pub snapshot: Option<SnapshotSpec>,
    /// Which snapshots `latest` chooses from.
    #[command(flatten)]
    pub filter: SnapshotFilter,
    /// Drill this job of the job profile: its repository, the newest snapshot of its group, its
    /// [job.NAME.drill] settings (flags given here take their place)
    #[arg(long, value_name = "JOB")]
    pub job: Option<String>,
    /// Restore into this directory (created if missing, kept afterwards)
    #[arg(long, value_name = "DIR", conflicts_with = "stream")]
    pub target: Option<PathBuf>,
    /// Restore only paths matching GLOB (and what lies below them)
    #[arg(long = "include", value_name = "GLOB", conflicts_with = "stream")]
    pub includes: Vec<String>,
    /// Shell command that checks the restored data (exit 0: passed)
    #[arg(long, value_name = "CMD")]
    pub verify_command: Option<String>,
    /// Stream this file of the snapshot into the verify command's standard input instead of restoring to disk
    #[arg(long, value_name = "NAME")]
    pub stream: Option<PathBuf>,
    /// Recovery-time objective: a drill that passes but takes longer exits 4 (DURATION, or milliseconds: 1500ms)
    #[arg(long, value_name = "DURATION", value_parser = rto_ms)]
    pub rto: Option<u64>,
    /// Write the evidence report (drill-TIME-ID.json and .txt, mode 0600) into this directory
    #[arg(long, value_name = "DIR")]
    pub evidence_dir: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::rto_ms;

    #[test]
    fn rto_takes_durations_and_milliseconds() {
        assert_eq!(rto_ms("1ms"), Ok(1));
        assert_eq!(rto_ms("1500ms"), Ok(1500));
        assert_eq!(rto_ms("90min"), Ok(5_400_000));
        assert_eq!(rto_ms("4h"), Ok(14_400_000));
        assert!(rto_ms("0ms").is_err());
        assert!(rto_ms("0").is_err());
        assert!(rto_ms("ms").is_err());
        assert!(rto_ms("6m").is_err());
    }
}
