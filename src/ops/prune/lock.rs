//! The maintenance lock (format-spec §10.4): a chain of links signed by the repository key, one
//! holder at a time, taken and released by backend time; and the backend's clock. A link that does
//! not verify (forged by a write-only key, or in the MAC framing of before signatures) is not held
//! by anyone but occupies its number.

use crate::codec::object;
use crate::error::{Error, Result};
use crate::layout::{Object, ObjectType};
use crate::lease::MaintenanceLock;
use crate::repository::{hostname, Repository};
use crate::time::Time;

/// The backend's current time: the stamp of a fresh probe object (format-spec §10.6).
pub fn backend_now(repo: &Repository) -> Result<Time> {
    let path = Object::Clock(crate::crypto::random_32()).path();
    let b = repo.backend();
    b.write_new(&path, b"t")?;
    let info = b.stat(&path);
    let _ = b.delete(&path);
    match info?.and_then(|i| i.modified) {
        Some(t) => Ok(t),
        None => Err(Error::refused(format!(
            "{}: the storage reports no modification times; prune needs them to measure the grace period",
            b.location()
        ))),
    }
}

pub(super) fn pid_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks whether the process exists.
    let r = unsafe { libc::kill(pid as i32, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The maintenance lock held by this run (format-spec §10.4).
pub struct PruneLock<'r> {
    repo: &'r Repository,
    n: u64,
    holder: [u8; 32],
    stamped: Time,
    duration: u64,
    released: bool,
}

impl<'r> PruneLock<'r> {
    /// Takes the lock, or fails with [`Error::Locked`] naming who holds it.
    pub fn acquire(repo: &'r Repository, duration: u64, break_lock: bool) -> Result<Self> {
        let b = repo.backend();
        let now = backend_now(repo)?;
        let links = Self::links(repo)?;
        // Every listed name is taken, verified or not: the next link goes above all of them.
        let next = match links.last() {
            None => 0,
            Some((n, _)) => n.checked_add(1).ok_or_else(|| Self::exhausted(*n))?,
        };
        if let Some((n, info, link)) = Self::ruling(repo, &links)? {
            let path = Object::Lock(n).path();
            let MaintenanceLock::V1 { released, host, pid, duration_secs, client_time, .. } = link;
            let stamped = info.unwrap_or(client_time);
            let expired = stamped.secs.saturating_add(duration_secs as i64) <= now.secs;
            let dead = host == hostname() && !pid_alive(pid);
            if !released && !expired && !dead && !break_lock {
                return Err(Error::Locked(format!(
                    "another prune holds the repository (host {host}, pid {pid}, since {}, lock {path})",
                    stamped.to_rfc3339()
                )));
            }
        }
        let holder = crate::crypto::random_32();
        let path = Object::Lock(next).path();
        let link = MaintenanceLock::V1 {
            holder,
            host: hostname(),
            pid: std::process::id(),
            duration_secs: duration,
            released: false,
            client_time: Time::now(),
        };
        b.write_new(&path, &object::encode_lock(repo.keys(), &path, &link)?).map_err(|e| {
            if e.is_exists() {
                Error::Locked(format!("another prune took the maintenance lock ({path}) at the same moment"))
            } else {
                e
            }
        })?;
        if Self::verified_above(repo, next)? {
            return Err(Error::Locked("another prune took the maintenance lock at the same moment".into()));
        }
        let stamped = b.stat(&path)?.and_then(|i| i.modified).unwrap_or(now);
        Ok(PruneLock { repo, n: next, holder, stamped, duration, released: false })
    }

    /// No number is left above link `n` (only a forged link can sit at the last one).
    fn exhausted(n: u64) -> Error {
        Error::Locked(format!(
            "no maintenance lock number is left above {}; run check (lock-invalid) and delete the links it names",
            Object::Lock(n).path()
        ))
    }

    /// The ruling link: the verified link with the highest number (format-spec §10.4). Links above
    /// it that do not verify are passed over with a warning: only a full key can sign a link.
    fn ruling(
        repo: &Repository,
        links: &[(u64, Option<Time>)],
    ) -> Result<Option<(u64, Option<Time>, MaintenanceLock)>> {
        for (n, info) in links.iter().rev() {
            if let Some(link) = Self::verified(repo, *n)? {
                return Ok(Some((*n, *info, link)));
            }
        }
        Ok(None)
    }

    /// The link numbered `n` if it is still there and verifies.
    fn verified(repo: &Repository, n: u64) -> Result<Option<MaintenanceLock>> {
        let path = Object::Lock(n).path();
        let bytes = match repo.backend().read(&path) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        match object::decode_lock(repo.keys(), &path, &bytes) {
            Ok(l) => Ok(Some(l)),
            Err(e) => {
                tracing::warn!("{path}: {e}; it does not count as held (run check)");
                Ok(None)
            }
        }
    }

    /// True when a verified link numbered above `n` exists: another prune took the lock.
    fn verified_above(repo: &Repository, n: u64) -> Result<bool> {
        for (m, _) in Self::links(repo)? {
            if m > n && Self::verified(repo, m)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn links(repo: &Repository) -> Result<Vec<(u64, Option<Time>)>> {
        let mut v: Vec<(u64, Option<Time>)> = repo
            .backend()
            .list(ObjectType::Lock.dir())?
            .into_iter()
            .filter_map(|o| match Object::parse(&o.path) {
                Some(Object::Lock(n)) => Some((n, o.modified)),
                _ => None,
            })
            .collect();
        v.sort_by_key(|(n, _)| *n);
        Ok(v)
    }

    /// Fails unless the lock is still ours and valid by the backend's time; called before every
    /// destructive step.
    pub fn ensure(&self) -> Result<Time> {
        let now = backend_now(self.repo)?;
        // Leave a margin for the step about to run.
        if now.secs.saturating_add(60) >= self.stamped.secs.saturating_add(self.duration as i64) {
            return Err(Error::Locked(format!(
                "the maintenance lock expired (taken {}); stopped before deleting more",
                self.stamped.to_rfc3339()
            )));
        }
        if Self::verified_above(self.repo, self.n)? {
            return Err(Error::Locked("the maintenance lock was taken over; stopped".into()));
        }
        Ok(now)
    }

    /// The backend time the lock was taken at.
    pub fn taken_at(&self) -> Time {
        self.stamped
    }

    /// Releases the lock: a released link above ours, then the older links go.
    pub fn release(mut self) -> Result<()> {
        self.released = true;
        self.write_release()
    }

    fn write_release(&self) -> Result<()> {
        let b = self.repo.backend();
        // The released link goes above ours and above any link that does not verify (forged ones
        // occupy their numbers); if a verified link is above ours, another prune holds the lock
        // and it is not ours to release.
        let mut above = self.n.checked_add(1).ok_or_else(|| Self::exhausted(self.n))?;
        for (m, _) in Self::links(self.repo)? {
            if m > self.n {
                if Self::verified(self.repo, m)?.is_some() {
                    return Ok(());
                }
                above = m.checked_add(1).ok_or_else(|| Self::exhausted(m))?;
            }
        }
        let path = Object::Lock(above).path();
        let link = MaintenanceLock::V1 {
            holder: self.holder,
            host: hostname(),
            pid: std::process::id(),
            duration_secs: 0,
            released: true,
            client_time: Time::now(),
        };
        b.write_new(&path, &object::encode_lock(self.repo.keys(), &path, &link)?)?;
        for (n, _) in Self::links(self.repo)? {
            if n < above {
                b.delete(&Object::Lock(n).path())?;
            }
        }
        Ok(())
    }
}

impl Drop for PruneLock<'_> {
    fn drop(&mut self) {
        if !self.released {
            // An error path: release the lock if storage still answers; otherwise it expires
            // (or is stale at once on this host, once this process has exited).
            let _ = self.write_release();
        }
    }
}
