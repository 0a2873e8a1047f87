//! `[job.NAME.drill]` (docs/jobs.md): what `cairn run JOB --drill` and `cairn drill --job JOB`
//! do, as written ([`DrillToml`], closed: a misspelt key is an error with its line) and checked
//! ([`JobDrill`]). A drill has no schedule of its own: a timer runs `cairn run JOB --drill`.

use super::At;
use serde::Deserialize;
use std::path::PathBuf;
use toml::Spanned;

/// `[job.NAME.drill]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillToml {
    pub verify_command: Option<String>,
    pub rto: Option<Spanned<String>>,
    #[serde(default)]
    pub include: Vec<String>,
    pub stream: Option<Spanned<String>>,
    pub evidence_dir: Option<Spanned<String>>,
    pub target: Option<Spanned<String>>,
}

/// `[job.NAME.drill]`, checked (also as `config check --json` prints it).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobDrill {
    /// `verify_command`: the shell command that judges the restored data.
    pub verify_command: Option<String>,
    /// `rto` in milliseconds (a DURATION or `Nms`).
    pub rto_ms: Option<u64>,
    /// `include` globs.
    pub includes: Vec<String>,
    /// `stream`: the snapshot file to stream into the verify command.
    pub stream: Option<PathBuf>,
    /// `evidence_dir` (absolute).
    pub evidence_dir: Option<PathBuf>,
    /// `target` (absolute; default a temporary directory).
    pub target: Option<PathBuf>,
}

/// Checks `[job.NAME.drill]`: absolute directories, an RTO that parses, a stream only with a
/// verify command and without target or include.
pub(super) fn check(at: &At, name: &str, d: Spanned<DrillToml>) -> Result<JobDrill, super::ProfileError> {
    let span = d.span();
    let d = d.into_inner();
    let key = |k: &str| format!("job.{name}.drill.{k}");
    let rto_ms = match d.rto {
        Some(r) => match crate::cli::args_drill::rto_ms(r.get_ref()) {
            Ok(ms) => Some(ms),
            Err(e) => return at.err(r.span(), format!("{} = {:?}: {e}", key("rto"), r.get_ref())),
        },
        None => None,
    };
    if d.verify_command.as_deref().is_some_and(|c| c.trim().is_empty()) {
        return at.err(span, format!("{} is empty", key("verify_command")));
    }
    let stream = match d.stream {
        Some(s) if s.get_ref().trim().is_empty() => return at.err(s.span(), format!("{} is empty", key("stream"))),
        Some(s) if d.verify_command.is_none() => {
            return at.err(s.span(), format!("{}: streaming needs a verify_command to stream into", key("stream")))
        }
        Some(s) if d.target.is_some() || !d.include.is_empty() => {
            return at
                .err(s.span(), format!("{}: a streaming drill restores nothing: no target or include", key("stream")))
        }
        Some(s) => Some(PathBuf::from(s.into_inner())),
        None => None,
    };
    Ok(JobDrill {
        verify_command: d.verify_command,
        rto_ms,
        includes: d.include,
        stream,
        evidence_dir: d.evidence_dir.map(|p| at.abs(p, &key("evidence_dir"))).transpose()?,
        target: d.target.map(|p| at.abs(p, &key("target"))).transpose()?,
    })
}
