//! Backend options (`-o KEY=VALUE`, `CAIRN_OPTION_<KEY>`, an options file): the catalogue of
//! known keys, parsing, precedence and validation. It reads no environment itself (callers pass
//! it in) and never prints or formats a secret value.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// One known option key.
#[derive(Clone, Copy, Debug)]
pub struct OptionKey {
    /// The key, e.g. `s3.endpoint`.
    pub key: &'static str,
    /// URL schemes it applies to (empty: every remote scheme).
    pub schemes: &'static [&'static str],
    /// A secret: its value is never shown, logged or stored.
    pub secret: bool,
    /// One line of help.
    pub help: &'static str,
}

/// Every option cairn knows. An option of another scheme than the repository's is ignored, so
/// one options file can serve several repositories; an unknown key is always an error.
pub const KEYS: &[OptionKey] = &[
    OptionKey { key: "retries", schemes: &[], secret: false, help: "retries of a failed idempotent call (default 5)" },
    OptionKey { key: "timeout", schemes: &[], secret: false, help: "seconds per metadata call (default 60)" },
    OptionKey {
        key: "io_timeout",
        schemes: &[],
        secret: false,
        help: "seconds a read step, or an SFTP write, may take; over HTTP also how long sent bytes may stall (default 120)",
    },
    OptionKey {
        key: "upload_timeout",
        schemes: &[],
        secret: false,
        help: "seconds one HTTP request body may take in all while its bytes keep moving (default 1800)",
    },
    OptionKey { key: "connections", schemes: &[], secret: false, help: "concurrent requests at most (default 16)" },
    OptionKey { key: "uploads", schemes: &[], secret: false, help: "packs uploaded at once (default 4)" },
    OptionKey {
        key: "conditional_create",
        schemes: &[],
        secret: false,
        help: "false: do not trust the service's create-if-not-exists (for S3-compatible servers that ignore it)",
    },
    OptionKey {
        key: "ledger_retention",
        schemes: &[],
        secret: false,
        help: "MODE:PERIOD (governance or compliance, e.g. compliance:7y): write every ledger entry with S3 Object \
               Lock retention until its write time + PERIOD (s3:// only; format-spec §13.7)",
    },
    OptionKey {
        key: "chunk_size",
        schemes: &["s3", "gcs", "azblob"],
        secret: false,
        help: "MiB per multipart part; larger objects are uploaded in parts (default 64, 0 = one PUT)",
    },
    OptionKey {
        key: "s3.presigned_uploads",
        schemes: &["s3"],
        secret: false,
        help: "false: send each pack from memory in an ordinary signed PUT, not from its staging file in a \
               presigned one (for S3-compatible servers without presigned URLs)",
    },
    OptionKey { key: "s3.endpoint", schemes: &["s3"], secret: false, help: "S3 endpoint URL (default AWS)" },
    OptionKey { key: "s3.region", schemes: &["s3"], secret: false, help: "region (default AWS_REGION or us-east-1)" },
    OptionKey {
        key: "s3.path_style",
        schemes: &["s3"],
        secret: false,
        help: "path-style addressing (default true when s3.endpoint is set)",
    },
    OptionKey {
        key: "s3.access_key_id",
        schemes: &["s3"],
        secret: false,
        help: "access key id (default AWS_ACCESS_KEY_ID, then the AWS default chain)",
    },
    OptionKey {
        key: "s3.secret_access_key",
        schemes: &["s3"],
        secret: true,
        help: "secret key (default AWS_SECRET_ACCESS_KEY)",
    },
    OptionKey {
        key: "sftp.key",
        schemes: &["sftp"],
        secret: false,
        help: "private key file (default: ssh's own, ~/.ssh/config)",
    },
    OptionKey { key: "sftp.known_hosts", schemes: &["sftp"], secret: false, help: "strict (default) or accept-new" },
    OptionKey { key: "webdav.user", schemes: &["webdav", "webdavs"], secret: false, help: "user name" },
    OptionKey {
        key: "webdav.password",
        schemes: &["webdav", "webdavs"],
        secret: true,
        help: "password (or CAIRN_WEBDAV_PASSWORD)",
    },
    OptionKey {
        key: "gcs.credential_path",
        schemes: &["gcs"],
        secret: false,
        help: "service-account JSON file (default: GOOGLE_APPLICATION_CREDENTIALS)",
    },
    OptionKey { key: "gcs.endpoint", schemes: &["gcs"], secret: false, help: "endpoint URL (default Google)" },
    OptionKey {
        key: "gcs.token",
        schemes: &["gcs"],
        secret: true,
        help: "an OAuth2 access token to send instead of a service account's (a short-lived token, an emulator)",
    },
    OptionKey { key: "azblob.account_name", schemes: &["azblob"], secret: false, help: "storage account" },
    OptionKey {
        key: "azblob.account_key",
        schemes: &["azblob"],
        secret: true,
        help: "account key (or AZURE_STORAGE_ACCOUNT_KEY)",
    },
    OptionKey {
        key: "azblob.endpoint",
        schemes: &["azblob"],
        secret: false,
        help: "endpoint URL (default https://ACCOUNT.blob.core.windows.net)",
    },
];

/// The prefix of option environment variables: `CAIRN_OPTION_S3_ENDPOINT` is `s3.endpoint`.
pub const ENV_PREFIX: &str = "CAIRN_OPTION_";

/// Looks a key up in the catalogue.
pub fn lookup(key: &str) -> Option<&'static OptionKey> {
    KEYS.iter().find(|k| k.key == key)
}

/// Where an option's value came from (for messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `-o KEY=VALUE`.
    Flag,
    /// `CAIRN_OPTION_<KEY>`.
    Env(String),
    /// The options file.
    File(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag => write!(f, "-o"),
            Source::Env(v) => write!(f, "environment variable {v}"),
            Source::File(p) => write!(f, "options file {p}"),
        }
    }
}

/// Validated backend options. Precedence, highest first: `-o` flags, `CAIRN_OPTION_*` variables,
/// the options file. `Debug` never shows secret values.
#[derive(Clone, Default)]
pub struct Options {
    values: BTreeMap<String, (String, Source)>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (k, (v, _)) in &self.values {
            let secret = lookup(k).is_some_and(|o| o.secret);
            m.entry(k, &if secret { "<secret>" } else { v.as_str() });
        }
        m.finish()
    }
}

fn check_key(key: &str, source: &Source) -> Result<()> {
    if lookup(key).is_none() {
        let known: Vec<&str> = KEYS.iter().map(|k| k.key).collect();
        return Err(Error::Usage(format!(
            "unknown backend option {key:?} (from {source}); known options: {}",
            known.join(", ")
        )));
    }
    Ok(())
}

impl Options {
    /// Builds the options from their three sources. `flags` are `KEY=VALUE` strings; `env` is the
    /// process environment (only `CAIRN_OPTION_*` names are looked at); `file` is a TOML file of
    /// `key = "value"` lines (dotted keys or `[s3]` tables both work).
    pub fn from_sources(
        flags: &[String],
        env: impl IntoIterator<Item = (String, String)>,
        file: Option<&Path>,
    ) -> Result<Self> {
        let mut o = Options::default();
        if let Some(p) = file {
            o.merge_file(p)?;
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else { continue };
            let key = env_to_key(rest);
            o.set(&key, &value, Source::Env(name.clone()))?;
        }
        for (i, f) in flags.iter().enumerate() {
            // The text is not echoed: a mistyped flag may hold a secret.
            let (k, v) =
                f.split_once('=').ok_or_else(|| Error::Usage(format!("option number {} is not KEY=VALUE", i + 1)))?;
            o.set(k.trim(), v, Source::Flag)?;
        }
        Ok(o)
    }

    /// [`Options::from_sources`] for a command line: `flags` are the `-o` arguments, and a secret
    /// among them is refused (a usage error naming the option and where to put it instead), as a
    /// password in a URL is: a command line shows up in process lists and shell histories.
    pub fn from_command_line(
        flags: &[String],
        env: impl IntoIterator<Item = (String, String)>,
        file: Option<&Path>,
    ) -> Result<Self> {
        for f in flags {
            let key = f.split_once('=').map_or(f.as_str(), |(k, _)| k).trim();
            if lookup(key).is_some_and(|o| o.secret) {
                return Err(Error::Usage(format!(
                    "option {key} is a secret and is not accepted with -o (the command line shows up in process \
                     lists); set {ENV_PREFIX}{} or put it in the options file (--options-file)",
                    key.replace('.', "_").to_ascii_uppercase()
                )));
            }
        }
        Self::from_sources(flags, env, file)
    }

    /// Sets one option (later calls win), checking the key.
    pub fn set(&mut self, key: &str, value: &str, source: Source) -> Result<()> {
        check_key(key, &source)?;
        self.values.insert(key.to_string(), (value.to_string(), source));
        Ok(())
    }

    fn merge_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| Error::Usage(format!("options file {}: {}", path.display(), e.message())))?;
        let src = Source::File(path.display().to_string());
        let mut flat = Vec::new();
        flatten("", &table, &mut flat, &src)?;
        for (k, v) in flat {
            self.set(&k, &v, src.clone())?;
        }
        Ok(())
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        debug_assert!(lookup(key).is_some(), "option {key} is not in the catalogue");
        self.values.get(key).map(|(v, _)| v.as_str())
    }

    /// A boolean option (`true/false/yes/no/1/0/on/off`).
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>> {
        let Some((v, src)) = self.values.get(key) else { return Ok(None) };
        match v.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => Ok(Some(true)),
            "false" | "no" | "0" | "off" => Ok(Some(false)),
            _ => Err(Error::Usage(format!("option {key} (from {src}) must be true or false, not {v:?}"))),
        }
    }

    /// A non-negative integer option.
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>> {
        let Some((v, src)) = self.values.get(key) else { return Ok(None) };
        v.trim()
            .parse()
            .map(Some)
            .map_err(|_| Error::Usage(format!("option {key} (from {src}) must be a whole number, not {v:?}")))
    }

    /// Keys that are set.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(|k| k.as_str())
    }
}

/// `S3_ENDPOINT` → `s3.endpoint`, `IO_TIMEOUT` → `io_timeout`: the first `_` after a service
/// name becomes a dot.
fn env_to_key(rest: &str) -> String {
    let lower = rest.to_ascii_lowercase();
    for k in KEYS {
        if k.key.replace('.', "_") == lower {
            return k.key.to_string();
        }
    }
    lower
}

fn flatten(prefix: &str, t: &toml::Table, out: &mut Vec<(String, String)>, src: &Source) -> Result<()> {
    for (k, v) in t {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(sub) => flatten(&key, sub, out, src)?,
            toml::Value::String(s) => out.push((key, s.clone())),
            toml::Value::Integer(i) => out.push((key, i.to_string())),
            toml::Value::Boolean(b) => out.push((key, b.to_string())),
            _ => return Err(Error::Usage(format!("option {key} (from {src}): use a string, number or boolean"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_flag_over_env_over_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("o.toml");
        std::fs::write(&f, "retries = 1\ntimeout = 7\n[s3]\nregion = \"file\"\nendpoint = \"http://f\"\n").unwrap();
        let env = vec![
            ("CAIRN_OPTION_S3_REGION".to_string(), "env".to_string()),
            ("CAIRN_OPTION_RETRIES".to_string(), "2".to_string()),
            ("HOME".to_string(), "/x".to_string()),
        ];
        let o = Options::from_sources(&["retries=3".into()], env, Some(&f)).unwrap();
        assert_eq!(o.get("retries"), Some("3"));
        assert_eq!(o.get("s3.region"), Some("env"));
        assert_eq!(o.get("s3.endpoint"), Some("http://f"));
        assert_eq!(o.get_u64("timeout").unwrap(), Some(7));
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Options::from_sources(&["s3.endpiont=x".into()], vec![], None).unwrap_err().to_string();
        assert!(e.contains("\"s3.endpiont\""), "{e}");
        let e =
            Options::from_sources(&[], vec![("CAIRN_OPTION_BOGUS".into(), "1".into())], None).unwrap_err().to_string();
        assert!(e.contains("bogus") && e.contains("CAIRN_OPTION_BOGUS"), "{e}");
        assert!(Options::from_sources(&["novalue".into()], vec![], None).is_err());
    }

    #[test]
    fn secrets_are_refused_on_the_command_line() {
        for (flag, var) in [
            ("s3.secret_access_key=hunter2", "CAIRN_OPTION_S3_SECRET_ACCESS_KEY"),
            ("webdav.password=hunter2", "CAIRN_OPTION_WEBDAV_PASSWORD"),
            ("gcs.token=hunter2", "CAIRN_OPTION_GCS_TOKEN"),
            ("azblob.account_key=hunter2", "CAIRN_OPTION_AZBLOB_ACCOUNT_KEY"),
        ] {
            let e = Options::from_command_line(&[flag.into()], vec![], None).unwrap_err();
            let m = e.to_string();
            assert!(matches!(e, Error::Usage(_)) && m.contains(var) && m.contains("--options-file"), "{m}");
            assert!(!m.contains("hunter2"), "{m}");
            let o = Options::from_command_line(&[], vec![(var.to_string(), "hunter2".to_string())], None).unwrap();
            assert_eq!(o.get(flag.split_once('=').unwrap().0), Some("hunter2"));
        }
        assert!(Options::from_command_line(&["s3.access_key_id=a".into()], vec![], None).is_ok());
    }

    #[test]
    fn debug_hides_secrets() {
        let o =
            Options::from_sources(&["webdav.password=hunter2".into(), "webdav.user=u".into()], vec![], None).unwrap();
        let d = format!("{o:?}");
        assert!(!d.contains("hunter2") && d.contains("<secret>") && d.contains("\"u\""), "{d}");
    }

    #[test]
    fn typed_values() {
        let o = Options::from_sources(&["s3.path_style=no".into(), "retries=x".into()], vec![], None).unwrap();
        assert_eq!(o.get_bool("s3.path_style").unwrap(), Some(false));
        assert!(o.get_u64("retries").unwrap_err().to_string().contains("retries"));
    }
}
