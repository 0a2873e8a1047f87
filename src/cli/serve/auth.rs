//! API tokens and who may do what (docs/api.md "Authentication"): the token file (`<role> <name>
//! <hash>` per line, hash = hex BLAKE3 `derive_key("cairn serve token v1", token)`), making a token,
//! the constant-time lookup of a presented token, and the per-address limit on failed attempts.

use super::super::args_serve::RoleArg;
use anyhow::{bail, Context};
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The BLAKE3 key-derivation context of token hashes.
const CONTEXT: &str = "cairn serve token v1";

/// What a token may do; roles nest (admin ⊃ operate ⊃ read).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// List and download.
    Read,
    /// Also start backups, checks and drills.
    Operate,
    /// Also forget, prune and list keys.
    Admin,
}

impl Role {
    /// Its name in the token file and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Operate => "operate",
            Role::Admin => "admin",
        }
    }
    fn parse(s: &str) -> Option<Role> {
        [Role::Read, Role::Operate, Role::Admin].into_iter().find(|r| r.as_str() == s)
    }
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Read => Role::Read,
            RoleArg::Operate => Role::Operate,
            RoleArg::Admin => Role::Admin,
        }
    }
}

/// The stored hash of `token`.
pub fn hash(token: &[u8]) -> [u8; 32] {
    blake3::derive_key(CONTEXT, token)
}

/// One line of a token file.
struct Entry {
    role: Role,
    name: String,
    hash: [u8; 32],
}

/// The tokens the server accepts.
#[derive(Default)]
pub struct Tokens {
    entries: Vec<Entry>,
}

impl Tokens {
    /// Reads every token file. A file readable by group or others is refused (the hashes would let
    /// anyone there test guesses offline), as is a line that does not parse (named by file and line).
    pub fn load(files: &[std::path::PathBuf]) -> anyhow::Result<Tokens> {
        let mut entries = Vec::new();
        for f in files {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(f)
                .with_context(|| format!("cannot read token file {}", f.display()))?;
            let mode = file.metadata()?.permissions().mode();
            if mode & 0o077 != 0 {
                bail!(crate::cli::CliError::Usage(format!(
                    "token file {} is open to group or others (mode {:04o}); make it private: chmod 600",
                    f.display(),
                    mode & 0o7777
                )));
            }
            let text =
                std::io::read_to_string(file).with_context(|| format!("cannot read token file {}", f.display()))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let bad = || {
                    crate::cli::CliError::Usage(format!(
                        "token file {} line {}: not `ROLE NAME HASH`",
                        f.display(),
                        n + 1
                    ))
                };
                let parts: Vec<&str> = line.split_whitespace().collect();
                let [role, name, h] = parts[..] else { bail!(bad()) };
                let role = Role::parse(role).ok_or_else(bad)?;
                let mut hash = [0u8; 32];
                hex::decode_to_slice(h, &mut hash).map_err(|_| bad())?;
                entries.push(Entry { role, name: name.to_string(), hash });
            }
        }
        Ok(Tokens { entries })
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The role and name of `token`, comparing its hash with every stored one in constant time
    /// (no early exit: the time does not tell which, or whether, one matched).
    pub fn lookup(&self, token: &[u8]) -> Option<(Role, &str)> {
        let h = hash(token);
        let mut found = None;
        for e in &self.entries {
            if bool::from(e.hash.ct_eq(&h)) && found.is_none() {
                found = Some((e.role, e.name.as_str()));
            }
        }
        found
    }
}

/// `cairn serve token new`: a new token (`cairn_` + 43 base64url characters of 32 random bytes),
/// its line appended to `file` (created 0600, never through a symlink). Returns the token.
pub fn new_token(file: &Path, role: Role, name: &str) -> anyhow::Result<String> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        bail!(crate::cli::CliError::Usage(format!(
            "token name {name:?}: use 1 to 64 letters, digits, `.`, `_` or `-`"
        )));
    }
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::getrandom(&mut bytes[..]).context("no random bytes for the token")?;
    let token = format!("cairn_{}", base64url(&bytes[..]));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(file)
        .with_context(|| format!("cannot open token file {}", file.display()))?;
    let mode = f.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        bail!(crate::cli::CliError::Usage(format!(
            "token file {} is open to group or others (mode {:04o}); make it private: chmod 600",
            file.display(),
            mode & 0o7777
        )));
    }
    writeln!(f, "{} {name} {}", role.as_str(), hex::encode(hash(token.as_bytes())))
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write token file {}", file.display()))?;
    Ok(token)
}

/// Unpadded base64url (RFC 4648 §5).
fn base64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..=c.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Failed token attempts per client address in the last minute.
pub struct Limiter {
    max: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl Limiter {
    /// At most `max` failures per address per minute.
    pub fn new(max: u32) -> Self {
        Limiter { max, window: Duration::from_secs(60), failures: Mutex::default() }
    }

    /// `Some(seconds to wait)` when `ip` used up its failures.
    pub fn blocked(&self, ip: IpAddr) -> Option<u64> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let q = map.get_mut(&ip)?;
        while q.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            q.pop_front();
        }
        if q.is_empty() {
            map.remove(&ip);
            return None;
        }
        (q.len() >= self.max as usize)
            .then(|| q.front().map_or(1, |t| (self.window - now.duration_since(*t)).as_secs() + 1))
    }

    /// Counts one failed attempt of `ip`. The map is swept of old entries when it grows, so many
    /// addresses cannot make it grow without bound.
    pub fn fail(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < self.window));
        }
        let q = map.entry(ip).or_default();
        q.push_back(now);
        while q.len() > self.max as usize {
            q.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_has_43_characters_for_32_bytes() {
        assert_eq!(base64url(&[0xff; 32]).len(), 43);
        assert_eq!(base64url(b"any carnal pleas"), "YW55IGNhcm5hbCBwbGVhcw");
    }

    #[test]
    fn the_limiter_blocks_after_max_failures() {
        let l = Limiter::new(2);
        let ip: IpAddr = [127, 0, 0, 1].into();
        assert!(l.blocked(ip).is_none());
        l.fail(ip);
        assert!(l.blocked(ip).is_none());
        l.fail(ip);
        assert!(l.blocked(ip).is_some_and(|s| (1..=60).contains(&s)));
    }
}
