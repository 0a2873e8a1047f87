//! Reads a report's input from a repository: the snapshot manifests, the ledger and its
//! verification, the key files' public parts and the listing of `data/` (nothing under `data/`
//! or `tree/` is read). Writes nothing to the repository; `ledger verify` remembers the heads it
//! saw in the local cache, as it always does (format-spec §13.6).

use super::{KeyFacts, ReportInput};
use crate::error::Result;
use crate::forget::GroupBy;
use crate::id::{BlobKind, KeyId};
use crate::keyfile;
use crate::layout::{ObjectType, StoredId};
use crate::ops::ledger;
use crate::repository::ReadRepository;
use crate::retention::PolicyFile;
use crate::select::Listed;
use crate::time::Time;
use jiff::tz::TimeZone;

/// What the caller decides about a report: the period, the objectives and the policy.
#[derive(Clone, Debug)]
pub struct GatherOptions {
    /// The end of the period (normally now).
    pub now: Time,
    /// The start of the period.
    pub since: Time,
    /// The retention policy; `None`: none given.
    pub policy: Option<PolicyFile>,
    /// The RPO, seconds.
    pub rpo_secs: i64,
    /// The RTO, milliseconds; `None`: each drill's own.
    pub rto_ms: Option<u64>,
    /// How snapshots are grouped (ignored for a job).
    pub group_by: GroupBy,
    /// A job: every snapshot `select` keeps is its one group.
    pub job: Option<String>,
    /// The time zone of calendar days.
    pub tz: TimeZone,
}

/// Reads the input of a report on `repo`. `select` chooses the snapshots to judge (all, a
/// filter, or a job's); every key file is read for the encryption section.
pub fn gather(repo: &ReadRepository, opts: GatherOptions, select: &dyn Fn(&Listed) -> bool) -> Result<ReportInput> {
    let snapshots: Vec<Listed> = crate::select::list_all(repo)?.into_iter().filter(|l| select(l)).collect();
    let entries = ledger::log(repo, None, None)?;
    let verify = ledger::verify(repo, None).map_err(|e| e.to_string());
    let mut keys = Vec::new();
    for o in repo.backend().list(ObjectType::Key.dir())? {
        let Some(id) = KeyId::from_path(&o.path) else { continue };
        let bytes = match repo.backend().read(&o.path) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        keys.push(match keyfile::decode(&bytes) {
            Ok(kf) => KeyFacts {
                id,
                kind: kf.kind(),
                created: kf.created(),
                host: kf.host().to_string(),
                user: kf.user().to_string(),
                credential: Some(kf.credential()),
                kdf: kf.kdf(),
            },
            Err(_) => KeyFacts {
                id,
                kind: keyfile::KeyKind::Full,
                created: Time::default(),
                host: String::new(),
                user: String::new(),
                credential: None,
                kdf: None,
            },
        });
    }
    let certs = repo.certificates()?;
    let full_keys = certs
        .certs
        .iter()
        .filter(|(_, c)| c.as_ref().is_ok_and(|c| c.kind() == keyfile::KeyKind::Full))
        .map(|(id, _)| *id)
        .collect();
    let mut data_packs: Vec<_> = crate::check::listing(repo, BlobKind::Data)?.into_keys().collect();
    data_packs.sort();
    Ok(ReportInput {
        now: opts.now,
        since: opts.since,
        repository: repo.keys().repo_id.to_hex(),
        snapshots,
        ledger: entries,
        verify,
        keys,
        full_keys,
        policy: opts.policy,
        rpo_secs: opts.rpo_secs,
        rto_ms: opts.rto_ms,
        data_packs,
        group_by: opts.group_by,
        job: opts.job,
        tz: opts.tz,
    })
}
