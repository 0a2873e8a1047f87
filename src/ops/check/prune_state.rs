//! What `check` can tell about prune's objects (format-spec §10.2, §10.4, §10.5): every prune
//! mark, wait and maintenance-lock link must carry a signature by the repository key. One that does
//! not (forged with a write-only key, damaged, or in the MAC framing of before signatures) is
//! ignored by prune and by writers, and reported here by path.

use super::{Finding, Walk};
use crate::codec::object;
use crate::error::Result;
use crate::layout::{Object, ObjectType};
use crate::repository::ReadRepository;

/// Reports `mark-invalid` for each prune mark or wait and `lock-invalid` for each lock link that
/// does not verify.
pub(super) fn prune_state(repo: &ReadRepository, findings: &mut Vec<Finding>) -> Result<()> {
    let keys = repo.keys();
    for o in repo.backend().list(ObjectType::Mark.dir())? {
        let (code, what) = match Object::parse(&o.path) {
            Some(Object::Mark(_)) => ("mark-invalid", "prune mark"),
            Some(Object::Wait(_)) => ("mark-invalid", "prune wait"),
            Some(Object::Lock(_)) => ("lock-invalid", "maintenance lock link"),
            _ => continue,
        };
        let bytes = match repo.backend().read(&o.path) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        let verdict = match Object::parse(&o.path) {
            Some(Object::Mark(_)) => object::decode_prune_mark(keys, &o.path, &bytes).map(|_| ()),
            Some(Object::Wait(_)) => object::decode_wait(keys, &o.path, &bytes).map(|_| ()),
            _ => object::decode_lock(keys, &o.path, &bytes).map(|_| ()),
        };
        if let Err(e) = verdict {
            findings.push(Walk::error(
                code,
                o.path.clone(),
                format!("{what}: {e}; prune and writers ignore it (only a full key can write one); delete it"),
            ));
        }
    }
    Ok(())
}
