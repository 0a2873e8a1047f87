//! `cairn restore`: a snapshot (or a subtree, or the snapshot `--as-of` a time) into a directory.

use crate::cli::args::RestoreArgs;
use crate::cli::output::{RestoreProgress, Text};
use crate::cli::{open, CliError, Ctx, Outcome};
use anyhow::anyhow;
use cairn::backup::PathMessage;
use cairn::filter::Patterns;
use cairn::id::SnapshotId;
use cairn::restore::{self, RestoreOptions};
use cairn::select::{self, SnapshotSpec};
use cairn::snapshot::Snapshot;
use cairn::units::human_bytes;
use cairn::Error;

/// A path and its error, as `{"path", "error"}`.
#[derive(serde::Serialize)]
struct PathError<'a> {
    path: &'a str,
    error: &'a str,
}

fn path_errors(v: &[PathMessage]) -> Vec<PathError<'_>> {
    v.iter().map(|e| PathError { path: &e.path, error: &e.message }).collect()
}

/// `restore --dry-run --json`.
#[derive(serde::Serialize)]
struct Plan<'a> {
    snapshot_id: SnapshotId,
    dry_run: bool,
    entries: usize,
    files: usize,
    packs: usize,
    bytes: u64,
    hole_bytes: u64,
    unrestorable: Vec<PathError<'a>>,
    /// With `--safety-snapshot`: the files a real run would back up first.
    #[serde(skip_serializing_if = "Option::is_none")]
    safety_files: Option<usize>,
}

/// `restore --json`.
#[derive(serde::Serialize)]
struct Restored<'a> {
    snapshot_id: SnapshotId,
    target: String,
    files: u64,
    dirs: u64,
    other: u64,
    special_skipped: u64,
    bytes: u64,
    verified: u64,
    errors: Vec<PathError<'a>>,
    /// With `--safety-snapshot`: the snapshot of the replaced files (null: nothing was in the way).
    #[serde(skip_serializing_if = "Option::is_none")]
    safety_snapshot: Option<Option<SnapshotId>>,
}

/// Whether snapshot `id` was not written by a full key (a write-only key's, an unattributed or a
/// forged snapshot, format-spec §4.3): such snapshots restore with setuid and setgid stripped
/// unless `--keep-setuid`.
fn not_by_full_key(repo: &cairn::repository::ReadRepository, id: &SnapshotId, snap: &Snapshot) -> anyhow::Result<bool> {
    Ok(!repo.attribute_snapshot(id, snap)?.0.is_full_key())
}

/// The snapshot to restore: the argument, or the one `--as-of` picks.
fn choose(repo: &cairn::repository::ReadRepository, a: &RestoreArgs) -> anyhow::Result<(SnapshotId, Snapshot)> {
    let filter = a.filter.filter();
    let Some(t) = a.as_of else {
        let spec =
            a.snapshot.as_ref().map(|s| &s.spec).ok_or_else(|| {
                CliError::Usage("give a SNAPSHOT (an id, a prefix or `latest`) or --as-of TIME".into())
            })?;
        return Ok(select::select(repo, spec, &filter)?);
    };
    let mut found = select::as_of(repo, t, &filter)?;
    match found.len() {
        0 => {
            Err(Error::NotFound(format!("snapshot taken at or before {} (matching the filters)", t.to_rfc3339()))
                .into())
        }
        1 => Ok(found.remove(0)),
        n => {
            let groups: Vec<String> =
                found.iter().map(|(_, s)| format!("{} {}", s.host(), s.display_paths().join(","))).collect();
            Err(CliError::Usage(format!(
                "--as-of matches {n} groups of snapshots ({}); choose one with --host/--path",
                groups.join("; ")
            ))
            .into())
        }
    }
}

pub fn run(ctx: &Ctx, a: RestoreArgs) -> anyhow::Result<Outcome> {
    let includes = Patterns::new(a.includes.iter().map(|p| (p.as_str(), false))).map_err(CliError::Usage)?;
    let excludes = Patterns::new(a.excludes.iter().map(|p| (p.as_str(), false))).map_err(CliError::Usage)?;
    if a.as_of.is_some() && a.snapshot.as_ref().is_some_and(|s| s.spec != SnapshotSpec::Latest) {
        return Err(CliError::Usage("--as-of picks the snapshot itself: give no SNAPSHOT or `latest`".into()).into());
    }
    let repo = open::open_reader(&ctx.g, &ctx.out)?;
    let (id, snap) = choose(&repo, &a)?;
    let sub = a.snapshot.as_ref().and_then(|s| s.path.clone());
    let opts = RestoreOptions {
        target: a.target.clone(),
        includes,
        excludes,
        overwrite: a.overwrite,
        verify: a.verify,
        threads: 0,
        cancel: Some(ctx.cancel.clone()),
        no_owner: a.no_owner,
        no_special_files: a.no_special_files,
        no_security_xattrs: a.no_security_xattrs,
        strip_setuid: !a.keep_setuid && not_by_full_key(&repo, &id, &snap)?,
        batch_budget: 0,
    };
    let limits = crate::cli::values::tree_limits(a.max_tree_memory);
    let note_stripped = |stripped: u64| {
        if stripped > 0 {
            ctx.out.note(format!(
                "warning: snapshot {} was not written by a full key: setuid/setgid bits {} from {stripped} \
                 entr{} (use --keep-setuid to keep them)",
                id.short(),
                if a.dry_run { "would be stripped" } else { "stripped" },
                if stripped == 1 { "y" } else { "ies" }
            ));
        }
    };
    // A walk that holds nothing per entry: the limits of format-spec §7.5 and, without
    // --overwrite, what is in the way are refused before anything is written.
    let checks = restore::SurveyChecks { refuse_in_the_way: !a.dry_run && !a.overwrite, safety: a.safety_snapshot };
    let needs_survey = !a.dry_run || a.safety_snapshot;
    let survey = if needs_survey {
        Some(restore::survey(&repo, &snap.root(), sub.as_deref(), &opts, &limits, checks)?)
    } else {
        None
    };
    let safety_paths = survey.as_ref().filter(|_| a.safety_snapshot).map(|s| s.in_the_way.clone());
    if a.dry_run {
        let plan = restore::plan_summary(&repo, &snap.root(), sub.as_deref(), &opts, &limits)?;
        note_stripped(if opts.strip_setuid { plan.setuid } else { 0 });
        let doc = Plan {
            snapshot_id: id,
            dry_run: true,
            entries: plan.entries as usize,
            files: plan.files as usize,
            packs: plan.packs as usize,
            bytes: plan.bytes,
            hole_bytes: plan.hole_bytes,
            unrestorable: path_errors(&plan.unrestorable),
            safety_files: safety_paths.as_ref().map(Vec::len),
        };
        ctx.out.result(&doc, Text::Normal, |w| {
            writeln!(
                w,
                "would restore snapshot {} into {}: {} entries ({} files, {}), reading {} packs",
                id.short(),
                a.target.display(),
                doc.entries,
                doc.files,
                human_bytes(doc.bytes),
                doc.packs
            )?;
            if let Some(n) = doc.safety_files {
                writeln!(w, "would first back up {n} file(s) in the way as a snapshot tagged safety")?;
            }
            for e in &plan.unrestorable {
                writeln!(w, "cannot restore {}: {}", e.path, e.message)?;
            }
            Ok(())
        })?;
        if !plan.unrestorable.is_empty() {
            return Err(anyhow!("{} path(s) cannot be restored (see above)", plan.unrestorable.len()));
        }
        return Ok(Outcome::Done);
    }
    let survey = survey.unwrap_or_default();
    note_stripped(if opts.strip_setuid { survey.setuid } else { 0 });
    // Before anything is replaced: the files in the way, as one snapshot. If that fails, the
    // restore stops here and has touched nothing.
    let safety = match safety_paths {
        Some(paths) if !paths.is_empty() => {
            let n = paths.len();
            let r = restore::safety::safety_snapshot(&repo, paths)
                .map_err(|e| anyhow!("the safety snapshot failed, nothing was restored: {e}"))?;
            let id = r.snapshot_id.ok_or_else(|| anyhow!("the safety snapshot was not committed"))?;
            ctx.out.note(format!("safety snapshot {id} holds the {n} file(s) this restore replaces"));
            Some(Some(id))
        }
        Some(_) => {
            ctx.out.note("safety snapshot: nothing in the way, none written");
            Some(None)
        }
        None => None,
    };
    let bar = ctx.out.byte_bar(Some(survey.bytes), false);
    let res =
        restore::restore_planned(&repo, &snap.root(), sub.as_deref(), &opts, &limits, &RestoreProgress(bar.clone()));
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let res = res?;
    let doc = Restored {
        snapshot_id: id,
        target: a.target.display().to_string(),
        files: res.files,
        dirs: res.dirs,
        other: res.other,
        special_skipped: res.special_skipped,
        bytes: res.bytes,
        verified: res.verified,
        errors: path_errors(&res.errors),
        safety_snapshot: safety,
    };
    ctx.out.result(&doc, Text::Chatty, |w| {
        writeln!(
            w,
            "restored snapshot {} into {}: {} files, {} dirs, {} other{}, {}{}",
            id.short(),
            a.target.display(),
            res.files,
            res.dirs,
            res.other,
            if res.special_skipped > 0 {
                format!(" ({} fifos and devices skipped)", res.special_skipped)
            } else {
                String::new()
            },
            human_bytes(res.bytes),
            if a.verify { format!("; {} files verified", res.verified) } else { String::new() }
        )
    })?;
    if !res.errors.is_empty() {
        for e in &res.errors {
            ctx.out.error(format!("cairn: error: {}: {}", e.path, e.message));
        }
        return Err(anyhow!("{} path(s) were not restored correctly (see above)", res.errors.len()));
    }
    Ok(Outcome::Done)
}
