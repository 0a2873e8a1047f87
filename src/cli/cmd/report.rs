//! `cairn report`: the compliance report ([`cairn::report`]) as text, JSON or one HTML file, on
//! stdout or into `--output` (mode 0600, through a new temporary file renamed over the name, so a
//! planted symlink is replaced, never followed). Exit 5 when any section fails (docs/cli-contract.md).

use crate::cli::args_report::{ReportArgs, ReportFormat};
use crate::cli::output::Text;
use crate::cli::{open, CliError, Ctx, Outcome};
use anyhow::Context;
use cairn::report::{self, GatherOptions, Verdict};
use cairn::retention::PolicyFile;
use cairn::select::Listed;
use cairn::tree::Time;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The exit code of a report in which any section fails.
pub const SECTION_FAILED: i32 = cairn::error::exit::SECTION_FAILED;

pub fn run(ctx: &Ctx, a: ReportArgs) -> anyhow::Result<Outcome> {
    let now = a.until.unwrap_or_else(Time::now);
    let since = a.since.before(now);
    if since >= now {
        return Err(CliError::Usage(format!(
            "--since {} is not before the end of the period {}",
            since.to_rfc3339(),
            now.to_rfc3339()
        ))
        .into());
    }
    let format = a.format.unwrap_or(if ctx.out.json() { ReportFormat::Json } else { ReportFormat::Text });
    let tz = a.tz.clone().unwrap_or_else(jiff::tz::TimeZone::system);
    let mut opts = GatherOptions {
        now,
        since,
        policy: None,
        rpo_secs: a.rpo.map_or(24 * 3600, |d| d.secs),
        rto_ms: a.rto.map(|d| d.secs.max(0) as u64 * 1000),
        group_by: a.group_by,
        job: None,
        tz,
    };
    let filter = a.filter.filter();
    let input = match &a.job {
        Some(name) => {
            let (_, profile) = super::config::load(ctx)?;
            let job =
                profile.jobs.get(name).ok_or_else(|| CliError::Usage(format!("no job {name:?} in the profile")))?;
            opts.policy = super::config::retention(job)?;
            if a.rpo.is_none() {
                opts.rpo_secs = job.thresholds.rpo.map_or(opts.rpo_secs, |d| d.secs);
            }
            opts.job = Some(name.clone());
            let g = super::run::job_global(&ctx.g, &profile.repositories[&job.repository]);
            let repo = open::open_reader(&g, &ctx.out)?;
            let (host, paths) = job.group();
            let select = |l: &Listed| {
                filter.matches(&l.snapshot) && l.snapshot.host() == host && l.snapshot.paths() == paths.as_slice()
            };
            report::gather(&repo, opts, &select)?
        }
        None => {
            if let Some(f) = &a.policy {
                let text =
                    std::fs::read_to_string(f).with_context(|| format!("cannot read policy file {}", f.display()))?;
                let pf = PolicyFile::parse(&text)
                    .map_err(|e| CliError::Usage(format!("policy file {}: {e}", f.display())))?;
                opts.policy = Some(pf);
            }
            let repo = open::open_reader(&ctx.g, &ctx.out)?;
            let select = |l: &Listed| {
                filter.matches(&l.snapshot)
                    && (filter.matches_writer(&l.attribution)
                        || filter
                            .writer
                            .as_ref()
                            .is_some_and(|w| l.writer_group().starts_with(&w.to_ascii_lowercase())))
            };
            report::gather(&repo, opts, &select)?
        }
    };
    let r = report::build(&input);
    let doc = match format {
        ReportFormat::Text => report::render::text(&r),
        ReportFormat::Json => serde_json::to_string_pretty(&r)? + "\n",
        ReportFormat::Html => report::render::html(&r),
    };
    match &a.output {
        Some(path) => {
            write_private(path, doc.as_bytes())
                .with_context(|| format!("cannot write the report to {}", path.display()))?;
            ctx.out.note(format!("report written to {}: {}", path.display(), r.verdict.as_str()));
        }
        None if format == ReportFormat::Json && ctx.out.json() => ctx.out.result(&r, Text::Data, |_| Ok(()))?,
        None => ctx.out.bytes(doc.as_bytes())?,
    }
    if r.verdict == Verdict::Fail {
        ctx.out.error(format!("cairn: report: {} failed", r.failed().join(", ")));
        return Ok(Outcome::Status(SECTION_FAILED));
    }
    Ok(Outcome::Done)
}

/// Writes `data` to `path` mode 0600: into a new file beside it (`create_new`: never an existing
/// file, never through a symlink; another name if taken), synced, then renamed over `path`
/// (which replaces a symlink there instead of following it).
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().ok_or_else(|| std::io::Error::other("the path names no file"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut last = None;
    for n in 0..8u32 {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let tmp = dir.join(format!(".{}.{}.{nanos}.{n}.tmp", name.to_string_lossy(), std::process::id()));
        let mut f = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                last = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        let result = f.write_all(data).and_then(|_| f.sync_all()).and_then(|_| std::fs::rename(&tmp, path));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        return result;
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no temporary file name was free")))
}
