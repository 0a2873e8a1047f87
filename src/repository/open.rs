//! Creating and opening a repository: the key files tried with a password, the ruling config
//! chosen from the chain (format-spec §9.2), the cache opened and the client pin checked.

use super::Repository;
use crate::backend::capped::{read_capped, CappedBackend};
use crate::backend::{Backend, DynBackend, ObjectInfo};
use crate::cache::Cache;
use crate::chunker::{Chunker, ChunkerParams};
use crate::codec::object::{self, NewCredential};
use crate::config::{self, Config, ConfigV1, FORMAT_VERSION, FORMAT_VERSIONS, WRITER_VERSION};
use crate::crypto::{self, KdfParams, MasterKeys};
use crate::error::{Error, Result};
use crate::id::KeyId;
use crate::keyfile;
use crate::layout::{Object, ObjectType, StoredId};
use crate::repository::identity::{hostname, username};
use crate::time::Time;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// How to open a repository's local state.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Cache root; default [`crate::cache::default_root`].
    pub cache_root: Option<PathBuf>,
    /// Use a private temporary cache.
    pub no_cache: bool,
    /// Let a full key opening a repository from before signed configs append the signed copy
    /// of its ruling config (format-spec §9.2). Only an operation that writes to the repository
    /// anyway sets it; without it the open writes nothing and the MAC-framed config rules.
    pub upgrade_config: bool,
}

impl OpenOptions {
    /// The cache root to use: `cache_root`, else [`crate::cache::default_root`]; `None` with
    /// `no_cache` or when there is no root to use.
    fn root(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        self.cache_root.clone().or_else(crate::cache::default_root)
    }
}

/// Settings for a new repository.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// Key derivation parameters of the first key file.
    pub kdf: KdfParams,
    /// Chunker parameters.
    pub chunker: ChunkerParams,
    /// Target pack size.
    pub pack_size: u32,
    /// Default compression level (0 = off).
    pub compression_level: i32,
    /// Reuse another repository's `id_key` and `chunk_key` (so ids and cut points agree).
    pub chunker_keys_from: Option<MasterKeys>,
    /// The repository format version (format-spec §9.1): [`FORMAT_VERSION`] by default; 1 makes a
    /// repository that binaries from before version 2 read (its trees never hold inline content).
    pub format_version: u32,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            kdf: KdfParams::MINIMUM,
            chunker: ChunkerParams::default(),
            pack_size: config::DEFAULT_PACK_SIZE,
            compression_level: crate::compress::DEFAULT_LEVEL,
            chunker_keys_from: None,
            format_version: FORMAT_VERSION,
        }
    }
}

/// Where the client pin of the repository at `location` lives under the cache root.
fn pin_path(root: &std::path::Path, location: &str) -> PathBuf {
    let name = blake3::hash(location.as_bytes()).to_hex().to_string();
    root.join("pins").join(&name[..32])
}

/// The key file that opened the repository at `location` last time, from its client pin.
fn pinned_key(root: &std::path::Path, location: &str) -> Option<KeyId> {
    let s = std::fs::read_to_string(pin_path(root, location)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&s).ok()?;
    KeyId::from_hex(v["key_id"].as_str()?)
}

/// The order key files are tried in with a credential (format-spec §4.1): when it has the text form
/// of a generated secret (`secret`), the secret key files first (a BLAKE3 derivation each, so they
/// cost nothing), then the argon2id key files with the credential as a password; otherwise only
/// the argon2id key files (a password never opens a secret key file). Within each group the key
/// file that opened the repository last time (`pinned`) comes first, then the argon2id ones by
/// KDF cost (memory × passes) from the cheapest, so a planted key file of maximum cost delays an
/// open only when no other key matches.
pub(crate) fn key_try_order(
    mut keys: Vec<(KeyId, keyfile::KeyFile)>,
    pinned: Option<&KeyId>,
    secret: bool,
) -> Vec<(KeyId, keyfile::KeyFile)> {
    keys.retain(|(_, kf)| secret || kf.credential() == keyfile::Credential::Password);
    keys.sort_by_key(|(id, kf)| {
        let (group, cost, lanes) = match kf.kdf() {
            None => (0, 0, 0),
            Some(k) => (1, u64::from(k.m_kib) * u64::from(k.t), u64::from(k.p)),
        };
        (group, Some(id) != pinned, cost, lanes, *id.as_bytes())
    });
    keys
}

/// The key files of `listing` (of `keys/`) that decode, with their ids. One over the size limit
/// (format-spec §12.6) or that does not decode is skipped with a warning (§4.1 step 1).
fn key_candidates(backend: &dyn Backend, listing: Vec<ObjectInfo>) -> Result<Vec<(KeyId, keyfile::KeyFile)>> {
    let mut candidates = Vec::new();
    for o in listing {
        let Some(id) = KeyId::from_path(&o.path) else { continue };
        let max = ObjectType::Key.max_size().unwrap_or(u64::MAX);
        let bytes = match read_capped(backend, &o.path, max) {
            Ok(b) => b,
            Err(e @ Error::Corrupt { .. }) => {
                tracing::warn!("{e}; skipped");
                continue;
            }
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        match keyfile::decode(&bytes) {
            Ok(kf) => candidates.push((id, kf)),
            Err(e) => tracing::warn!("key {id}: {e}"),
        }
    }
    Ok(candidates)
}

/// The key file under `keys/` that `secret` opens, if any: what a caller that wrote a new secret
/// key file and then saw an error asks before it throws the secret away (one whose key file is in
/// the repository must be kept). Tries only secret key files, so it runs no argon2id.
pub fn find_secret_key(backend: &dyn Backend, secret: &crypto::KeySecret) -> Result<Option<KeyId>> {
    let text = secret.to_text();
    for (id, kf) in key_candidates(backend, backend.list(ObjectType::Key.dir())?)? {
        if kf.credential() != keyfile::Credential::Secret {
            continue;
        }
        match object::open_keyfile(&kf, &id, text.as_bytes()) {
            Ok(Some(_)) => return Ok(Some(id)),
            Ok(None) => {}
            Err(e) => tracing::warn!("key {id}: {e}; skipped"),
        }
    }
    Ok(None)
}

impl Repository {
    /// Creates a repository on an empty backend and opens it; its first key file is a full key
    /// for `password` (argon2id with `init.kdf`).
    pub fn init(backend: DynBackend, password: &[u8], init: &InitOptions, opts: &OpenOptions) -> Result<Repository> {
        Self::init_with(backend, NewCredential::Password { password, kdf: init.kdf }, init, opts)
    }

    /// [`Self::init`] with the first key file opened with the generated `secret` (format-spec
    /// §4.1, `KeyFile::SecretV1`) instead of a password.
    pub fn init_with_secret(
        backend: DynBackend,
        secret: &crypto::KeySecret,
        init: &InitOptions,
        opts: &OpenOptions,
    ) -> Result<Repository> {
        Self::init_with(backend, NewCredential::Secret(secret), init, opts)
    }

    /// [`Self::init`] with the first key file made for `credential`: a password or a generated
    /// secret (format-spec §4.1; `init.kdf` applies to a password only).
    pub fn init_with(
        backend: DynBackend,
        credential: NewCredential<'_>,
        init: &InitOptions,
        opts: &OpenOptions,
    ) -> Result<Repository> {
        let loc = backend.location();
        if !backend.list(ObjectType::Config.dir())?.is_empty() || !backend.list(ObjectType::Key.dir())?.is_empty() {
            return Err(Error::refused(format!("{loc}: a repository already exists here")));
        }
        init.chunker.validate().map_err(Error::Usage)?;
        if !FORMAT_VERSIONS.contains(&init.format_version) {
            return Err(Error::Usage(format!("format version {} is not one this cairn writes", init.format_version)));
        }
        // A cache directory that would be refused is refused before anything is written.
        if let Some(root) = opts.root() {
            crate::cache::private_dir(&root, true)?;
        }
        backend.create_root()?;
        let mut keys = MasterKeys::generate();
        if let Some(src) = &init.chunker_keys_from {
            keys.id_key = src.id_key.clone();
            keys.chunk_key = src.chunk_key.clone();
        }
        let cfg = Config::V1(ConfigV1 {
            format_version: init.format_version,
            min_writer_version: WRITER_VERSION,
            repo_id: keys.repo_id,
            chunker: init.chunker,
            pack_size: init.pack_size,
            compression_level: init.compression_level,
            repo_public: keys.repo_public,
            previous: None,
            created: Time::now(),
        });
        // Key file first, config last: a repository without a config is not one yet.
        let key_id = KeyId(crypto::random_32());
        let (kf, sign_secret) = object::create_keyfile_signing(&keys, &key_id, credential, &hostname(), &username())?;
        backend.write_new(&key_id.path(), &kf)?;
        super::keys::write_certificate(backend.as_ref(), &keys, &key_id, &sign_secret, keyfile::KeyKind::Full, &[])?;
        backend.write_new(&Object::Config(1).path(), &object::encode_config(&keys, 1, &cfg)?)?;
        // A new repository replaces whatever this client pinned at the location before (one that
        // was deleted on purpose): pin the new one instead of refusing it.
        if let Some(root) = opts.root() {
            let _ = std::fs::remove_file(pin_path(&root, &backend.location()));
        }
        let repo = Self::finish_open(backend, keys, key_id, Some(sign_secret), opts)?;
        // The ledger's first entry (format-spec §13.4).
        repo.ledger_record(crate::ledger::Event::Init { existing: Vec::new() })?;
        Ok(repo)
    }

    /// Opens a repository with a credential: a password, or the text form of a generated secret
    /// (format-spec §4.1; [`key_try_order`] says which key files it is tried against, in which
    /// order).
    pub fn open(backend: DynBackend, password: &[u8], opts: &OpenOptions) -> Result<Repository> {
        let loc = backend.location();
        let configs = backend.list(ObjectType::Config.dir())?;
        let key_objs = backend.list(ObjectType::Key.dir())?;
        if configs.is_empty() {
            if key_objs.is_empty() {
                return Err(Error::RepoNotFound(loc));
            }
            return Err(Error::RepoInvalid { location: loc, reason: "no config object".into() });
        }
        if key_objs.is_empty() {
            return Err(Error::RepoInvalid { location: loc, reason: "no key files".into() });
        }
        let candidates = key_candidates(backend.as_ref(), key_objs)?;
        let pinned = opts.root().and_then(|root| pinned_key(&root, &loc));
        let secret = crypto::KeySecret::parse(password).is_some();
        for (id, kf) in key_try_order(candidates, pinned.as_ref(), secret) {
            // A key file that cannot even be tried (hostile KDF parameters, bad material) must not
            // stop the others from opening: anyone who can write `keys/` could plant one.
            match object::open_keyfile_signing(&kf, &id, password) {
                Ok(Some((keys, sign))) => return Self::finish_open(backend, keys, id, Some(sign), opts),
                Ok(None) => {}
                Err(e) => tracing::warn!("key {id}: {e}; skipped"),
            }
        }
        Err(Error::WrongPassword)
    }

    /// Opens a repository with key material already at hand (tests; write-only keys).
    pub fn open_with_keys(
        backend: DynBackend,
        keys: MasterKeys,
        key_id: KeyId,
        opts: &OpenOptions,
    ) -> Result<Repository> {
        Self::finish_open(backend, keys, key_id, None, opts)
    }

    fn finish_open(
        backend: DynBackend,
        keys: MasterKeys,
        key_id: KeyId,
        sign_secret: Option<crypto::Secret>,
        opts: &OpenOptions,
    ) -> Result<Repository> {
        // Every whole-object read of the open repository keeps to the size limits.
        let backend: DynBackend = std::sync::Arc::new(CappedBackend::new(backend));
        let loc = backend.location();
        let (config_n, config) = ruling_config(backend.as_ref(), &keys, opts.upgrade_config)?;
        if !FORMAT_VERSIONS.contains(&config.format_version()) {
            return Err(Error::RepoInvalid {
                location: loc,
                reason: format!("format version {} is not supported by this cairn", config.format_version()),
            });
        }
        let chunker = Chunker::new(config.chunker(), &keys.chunk_key)
            .map_err(|e| Error::RepoInvalid { location: loc.clone(), reason: e })?;
        let root = opts.root();
        let cache = match (&root, opts.no_cache) {
            (_, true) => Cache::temporary(None)?,
            (Some(root), false) => Cache::open(root, &keys.repo_id)?,
            (None, false) => Cache::without_root()?,
        };
        let repo = Repository {
            shared: std::sync::Arc::new(super::Shared {
                backend,
                keys,
                key_id,
                sign_secret,
                config,
                config_n,
                cache: std::sync::Arc::new(cache),
                chunker,
                sessions: Mutex::new(HashMap::new()),
                bundles: Mutex::new(Default::default()),
                tree_windows: Mutex::new(Default::default()),
                certs: Mutex::new(None),
                index_synced: std::sync::atomic::AtomicBool::new(false),
                sync_lock: Mutex::new(()),
                ledger_clock: Mutex::new(None),
            }),
        };
        if let Some(root) = root {
            repo.check_pin(&root)?;
        }
        Ok(repo)
    }

    /// Client-side pinning: the repository at this location must keep its id and
    /// keys, and its config chain must not go backwards.
    fn check_pin(&self, root: &std::path::Path) -> Result<()> {
        let path = pin_path(root, &self.shared.backend.location());
        let dir = path.parent().map(|p| p.to_path_buf()).unwrap_or_else(|| root.join("pins"));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let fp = hex::encode(self.shared.keys.fingerprint());
        if let Ok(s) = std::fs::read_to_string(&path) {
            let v: serde_json::Value = serde_json::from_str(&s).unwrap_or_default();
            let pinned_id = v["repository_id"].as_str().unwrap_or_default();
            let pinned_fp = v["fingerprint"].as_str().unwrap_or_default();
            let pinned_n = v["config"].as_u64().unwrap_or(0);
            if !pinned_id.is_empty() && (pinned_id != self.shared.keys.repo_id.to_hex() || pinned_fp != fp) {
                return Err(Error::RepoInvalid {
                    location: self.shared.backend.location(),
                    reason: format!(
                        "this location held repository {pinned_id} before and now holds another ({}); if that is intended, remove {}",
                        self.shared.keys.repo_id,
                        path.display()
                    ),
                });
            }
            if self.shared.config_n < pinned_n {
                return Err(Error::RepoInvalid {
                    location: self.shared.backend.location(),
                    reason: format!(
                        "its config went back from number {pinned_n} to {} (rolled back?)",
                        self.shared.config_n
                    ),
                });
            }
        }
        crate::cache::private_dir(&dir, false)?;
        let v = serde_json::json!({
            "location": self.shared.backend.location(),
            "repository_id": self.shared.keys.repo_id.to_hex(),
            "fingerprint": fp,
            "config": self.shared.config_n,
            "key_id": self.shared.key_id.to_hex(),
        });
        let tmp = dir.join(format!("{name}.tmp{}", std::process::id()));
        if crate::cache::write_private(&tmp, v.to_string().as_bytes()).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
        Ok(())
    }
}

/// The highest config number a path can hold (10 decimal digits, format-spec §9).
const MAX_CONFIG_NUMBER: u64 = 9_999_999_999;

/// Chooses the ruling config (format-spec §9.2): the highest valid config that chains, where a
/// config in the MAC framing is valid only while no signed config verifies (a write-only key can
/// make MAC-framed configs, but not signed ones). A full key opening, with `upgrade`, a repository
/// whose configs are all MAC-framed appends a signed copy of the ruling config first
/// ([`sign_ruling_config`]).
fn ruling_config(backend: &dyn Backend, keys: &MasterKeys, upgrade: bool) -> Result<(u64, Config)> {
    let loc = backend.location();
    let numbered = config_objects(backend)?;
    let mut hashes: HashMap<u64, [u8; 32]> = HashMap::new();
    let mut decoded = Vec::new();
    // Why each config object was passed over, for the error when none rules.
    let mut problems: Vec<String> = Vec::new();
    for (n, p) in &numbered {
        let bytes = match backend.read(p) {
            Ok(b) => b,
            // Over the size limit (format-spec §12.6): passed over like any config that does not decode.
            Err(e @ Error::Corrupt { .. }) => {
                tracing::warn!("config {n}: {e}");
                problems.push(e.to_string());
                continue;
            }
            Err(e) => return Err(e),
        };
        hashes.insert(*n, *blake3::hash(&bytes).as_bytes());
        match object::decode_config(keys, *n, &bytes) {
            Ok(c) => decoded.push((*n, c, config::is_signed(&bytes))),
            Err(e) => {
                tracing::warn!("config {n}: {e}");
                problems.push(format!("{p}: {e}"));
            }
        }
    }
    let any_signed = decoded.iter().any(|(_, _, signed)| *signed);
    if any_signed {
        decoded.retain(|(n, _, signed)| {
            if !signed {
                tracing::warn!("config {n}: MAC-framed, but a signed config exists; ignored");
                problems.push(format!("{}: MAC-framed, but a signed config exists", Object::Config(*n)));
            }
            *signed
        });
    }
    let mut chosen = None;
    for (n, c, _) in decoded.into_iter().rev() {
        let chained = match c.previous() {
            None => n == 1,
            // `config/0000000000` has no predecessor: never chained (and no underflow).
            Some(h) => n.checked_sub(1).and_then(|p| hashes.get(&p)) == Some(&h),
        };
        if chained {
            chosen = Some((n, c));
            break;
        }
        tracing::warn!("config {n}: does not chain to config {}", n.saturating_sub(1));
        problems.push(format!("{}: does not chain to config {}", Object::Config(n), n.saturating_sub(1)));
    }
    let Some((n, c)) = chosen else {
        let why = if problems.is_empty() { String::new() } else { format!(" ({})", problems.join("; ")) };
        return Err(Error::RepoInvalid {
            location: loc,
            reason: format!("no config object verifies with this key{why}"),
        });
    };
    if upgrade && !any_signed && keys.can_read() && FORMAT_VERSIONS.contains(&c.format_version()) {
        if let Some(signed) = sign_ruling_config(backend, keys, &numbered, &hashes, n, &c) {
            return Ok(signed);
        }
    }
    Ok((n, c))
}

/// Appends a signed copy of the ruling MAC-framed config `n` (same parameters, chained), so that
/// MAC-framed configs stop being valid (format-spec §9.2). Numbered `n + 1`, or above every listed
/// config when `n + 1` is taken. Does nothing (with a warning) when the ruling config demands a
/// newer writer than this one, which this client must not confirm, or when the write fails (read-only
/// storage, another client upgrading at the same moment): the next full-key open tries again.
fn sign_ruling_config(
    backend: &dyn Backend,
    keys: &MasterKeys,
    numbered: &[(u64, String)],
    hashes: &HashMap<u64, [u8; 32]>,
    n: u64,
    ruling: &Config,
) -> Option<(u64, Config)> {
    if ruling.min_writer_version() > WRITER_VERSION {
        tracing::warn!(
            "config {n} demands writer version {}; not signing it (run check: it may have been appended by a write-only key)",
            ruling.min_writer_version()
        );
        return None;
    }
    let highest = numbered.last().map(|(m, _)| *m).unwrap_or(n).max(n);
    let next = if numbered.iter().any(|(m, _)| *m == n + 1) { highest + 1 } else { n + 1 };
    let previous = *hashes.get(&(next - 1))?;
    if next > MAX_CONFIG_NUMBER {
        tracing::warn!("no config number is free above config {highest}; the configs stay MAC-framed");
        return None;
    }
    let Config::V1(mut v1) = ruling.clone();
    v1.previous = Some(previous);
    v1.created = Time::now();
    let signed = Config::V1(v1);
    let bytes = object::encode_config(keys, next, &signed).ok()?;
    match backend.write_new(&Object::Config(next).path(), &bytes) {
        Ok(()) => Some((next, signed)),
        Err(e) => {
            tracing::warn!("could not append the signed config {next}: {e}");
            None
        }
    }
}

/// The config objects in storage, by number, lowest first (format-spec §9): every name under
/// `config/` that parses as one; other names are not config objects and are passed over.
pub fn config_objects(backend: &dyn Backend) -> Result<Vec<(u64, String)>> {
    let mut numbered: Vec<(u64, String)> = backend
        .list(ObjectType::Config.dir())?
        .into_iter()
        .filter_map(|o| match Object::parse(&o.path) {
            Some(Object::Config(n)) => Some((n, o.path)),
            _ => None,
        })
        .collect();
    numbered.sort();
    Ok(numbered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::RepoId;
    use crate::keyfile::{KeyFile, KeyFileSecretV1, KeyFileV1, KeyKind};

    fn kf(m_kib: u32, t: u32) -> KeyFile {
        KeyFile::V1(KeyFileV1 {
            kind: KeyKind::Full,
            repo_id: RepoId([0; 32]),
            created: Time { secs: 0, nanos: 0 },
            host: String::new(),
            user: String::new(),
            kdf: KdfParams { m_kib, t, p: 4 },
            salt: [0; 32],
            sealed: Vec::new(),
        })
    }

    fn secret_kf() -> KeyFile {
        KeyFile::SecretV1(KeyFileSecretV1 {
            kind: KeyKind::Full,
            repo_id: RepoId([0; 32]),
            created: Time { secs: 0, nanos: 0 },
            host: String::new(),
            user: String::new(),
            salt: [0; 32],
            sealed: Vec::new(),
        })
    }

    /// A planted key file of maximum KDF cost is tried last, and the key that opened the repository last time first.
    #[test]
    fn key_files_are_tried_pinned_first_then_cheapest_first() {
        let (planted, real, other) = (KeyId([1; 32]), KeyId([2; 32]), KeyId([3; 32]));
        let max = KdfParams::MAXIMUM;
        let keys = vec![(planted, kf(max.m_kib, max.t)), (other, kf(128 * 1024, 3)), (real, kf(64 * 1024, 3))];
        let order = |pinned: Option<&KeyId>| -> Vec<KeyId> {
            key_try_order(keys.clone(), pinned, false).into_iter().map(|(id, _)| id).collect()
        };
        assert_eq!(order(None), [real, other, planted]);
        assert_eq!(order(Some(&other)), [other, real, planted]);
        assert_eq!(order(Some(&KeyId([9; 32]))), [real, other, planted]);
    }

    /// A credential of the secret's form tries the secret key files first (pinned first among
    /// them), then the argon2id ones as before; any other credential never tries a secret key file.
    #[test]
    fn a_secret_tries_secret_key_files_first_and_a_password_never_does() {
        let (pw_a, pw_b, sec_a, sec_b) = (KeyId([1; 32]), KeyId([2; 32]), KeyId([3; 32]), KeyId([4; 32]));
        let keys =
            vec![(pw_b, kf(128 * 1024, 3)), (sec_b, secret_kf()), (pw_a, kf(64 * 1024, 3)), (sec_a, secret_kf())];
        let order = |pinned: Option<&KeyId>, secret: bool| -> Vec<KeyId> {
            key_try_order(keys.clone(), pinned, secret).into_iter().map(|(id, _)| id).collect()
        };
        assert_eq!(order(None, true), [sec_a, sec_b, pw_a, pw_b]);
        assert_eq!(order(Some(&sec_b), true), [sec_b, sec_a, pw_a, pw_b]);
        assert_eq!(order(Some(&pw_b), true), [sec_a, sec_b, pw_b, pw_a], "secret key files cost nothing: first");
        assert_eq!(order(None, false), [pw_a, pw_b]);
        assert_eq!(order(Some(&sec_a), false), [pw_a, pw_b], "a password never tries a secret key file");
    }
}
