//! Repository URLs: parses the location a user names (a path, `file://`, `memory://`, `s3://`,
//! `sftp://`, `webdav(s)://`, `gcs://`, `azblob://`) into a [`RepoUrl`]. It only parses: it opens
//! nothing and reads no environment. A URL never carries a secret (a password in it is refused).

use crate::error::{Error, Result};
use std::path::PathBuf;

/// A parsed repository location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepoUrl {
    /// A local directory (a plain path or `file:///path`).
    Local(PathBuf),
    /// `memory://NAME`: an in-process store for tests.
    Memory(String),
    /// `s3://BUCKET/PREFIX`.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket (no leading or trailing `/`; may be empty).
        prefix: String,
    },
    /// `sftp://[USER@]HOST[:PORT]/PATH`.
    Sftp {
        /// Login name (default: ssh's).
        user: Option<String>,
        /// Host name or address.
        host: String,
        /// Port (default 22).
        port: Option<u16>,
        /// Directory on the server (absolute; `/~/x` is relative to the login directory).
        path: String,
    },
    /// `webdav://[USER@]HOST[:PORT]/PATH` (HTTP) or `webdavs://` (HTTPS).
    Webdav {
        /// HTTPS.
        tls: bool,
        /// Login name (can also be given as the `webdav.user` option).
        user: Option<String>,
        /// Host name or address.
        host: String,
        /// Port (default 80 / 443).
        port: Option<u16>,
        /// Collection path on the server.
        path: String,
    },
    /// `gcs://BUCKET/PREFIX`.
    Gcs {
        /// Bucket name.
        bucket: String,
        /// Object prefix (may be empty).
        prefix: String,
    },
    /// `azblob://CONTAINER/PREFIX`.
    Azblob {
        /// Container name.
        container: String,
        /// Blob prefix (may be empty).
        prefix: String,
    },
}

/// The URL schemes this build understands.
pub const SCHEMES: &str = "a path, file://, memory://, s3://, sftp://, webdav://, webdavs://, gcs://, azblob://";

fn invalid(url: &str, why: impl std::fmt::Display) -> Error {
    Error::Usage(format!("repository URL {}: {why}", redact(url)))
}

/// `url` with any `user:password@` password replaced by `***` (for messages only).
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (auth, tail) = split_authority(rest);
    match auth.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_string(),
    }
}

fn split_authority(rest: &str) -> (&str, &str) {
    match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    }
}

/// Bucket-style `NAME/PREFIX`: the prefix loses its surrounding slashes.
fn bucket_and_prefix(url: &str, rest: &str, what: &str) -> Result<(String, String)> {
    let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if name.is_empty() {
        return Err(invalid(url, format!("no {what} name")));
    }
    if name.contains(['@', ':', '?', '#']) {
        return Err(invalid(url, format!("{what} name {name:?} is not valid (credentials go in options)")));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|c| c == "." || c == "..") || prefix.contains("//") {
        return Err(invalid(url, "the prefix contains an empty, . or .. component"));
    }
    Ok((name.to_string(), prefix.to_string()))
}

/// `[USER@]HOST[:PORT]`, refusing a password.
fn host_part(url: &str, auth: &str) -> Result<(Option<String>, String, Option<u16>)> {
    let (user, hostport) = match auth.rsplit_once('@') {
        Some((u, h)) => {
            if u.contains(':') {
                return Err(invalid(
                    url,
                    "a password in the URL is not accepted (it would show up in process lists and logs); \
                     use an option or environment variable",
                ));
            }
            if u.is_empty() {
                return Err(invalid(url, "empty user name"));
            }
            (Some(u.to_string()), h)
        }
        None => (None, auth),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| invalid(url, "unclosed [ in the host"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(invalid(url, "junk after the host")),
        };
        (format!("[{h}]"), port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(invalid(url, "no host"));
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| invalid(url, format!("port {p:?} is not a number")))?),
        None => None,
    };
    Ok((user, host, port))
}

impl RepoUrl {
    /// Parses a repository URL.
    pub fn parse(url: &str) -> Result<Self> {
        if url.is_empty() {
            return Err(Error::Usage("no repository given".into()));
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Ok(RepoUrl::Local(PathBuf::from(url)));
        };
        if rest.contains(['?', '#']) {
            return Err(invalid(url, "query strings and fragments are not used; give settings as backend options"));
        }
        match scheme {
            "file" => {
                if !rest.starts_with('/') {
                    return Err(invalid(url, "file:// URLs need an absolute path (file:///path)"));
                }
                Ok(RepoUrl::Local(PathBuf::from(rest)))
            }
            "memory" => Ok(RepoUrl::Memory(rest.to_string())),
            "s3" => {
                let (bucket, prefix) = bucket_and_prefix(url, rest, "bucket")?;
                Ok(RepoUrl::S3 { bucket, prefix })
            }
            "gcs" | "gs" => {
                let (bucket, prefix) = bucket_and_prefix(url, rest, "bucket")?;
                Ok(RepoUrl::Gcs { bucket, prefix })
            }
            "azblob" => {
                let (container, prefix) = bucket_and_prefix(url, rest, "container")?;
                Ok(RepoUrl::Azblob { container, prefix })
            }
            "sftp" => {
                let (auth, path) = split_authority(rest);
                let (user, host, port) = host_part(url, auth)?;
                if path.is_empty() || path == "/" {
                    return Err(invalid(url, "name a directory on the server (sftp://host/path)"));
                }
                Ok(RepoUrl::Sftp { user, host, port, path: path.trim_end_matches('/').to_string() })
            }
            "webdav" | "webdavs" => {
                let (auth, path) = split_authority(rest);
                let (user, host, port) = host_part(url, auth)?;
                let path = path.trim_end_matches('/');
                Ok(RepoUrl::Webdav {
                    tls: scheme == "webdavs",
                    user,
                    host,
                    port,
                    path: if path.is_empty() { "/".into() } else { path.to_string() },
                })
            }
            other => Err(invalid(url, format!("scheme {other}:// is not supported (supported: {SCHEMES})"))),
        }
    }

    /// The scheme options are grouped by (`s3`, `sftp`, `webdav`, …; `file` for local paths).
    pub fn scheme(&self) -> &'static str {
        match self {
            RepoUrl::Local(_) => "file",
            RepoUrl::Memory(_) => "memory",
            RepoUrl::S3 { .. } => "s3",
            RepoUrl::Sftp { .. } => "sftp",
            RepoUrl::Webdav { tls: false, .. } => "webdav",
            RepoUrl::Webdav { tls: true, .. } => "webdavs",
            RepoUrl::Gcs { .. } => "gcs",
            RepoUrl::Azblob { .. } => "azblob",
        }
    }

    /// True for services reached over a network.
    pub fn is_remote(&self) -> bool {
        !matches!(self, RepoUrl::Local(_) | RepoUrl::Memory(_))
    }
}

impl std::fmt::Display for RepoUrl {
    /// The canonical form, for `location()`: never contains a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hp = |user: &Option<String>, host: &str, port: &Option<u16>| {
            let mut s = String::new();
            if let Some(u) = user {
                s.push_str(u);
                s.push('@');
            }
            s.push_str(host);
            if let Some(p) = port {
                s.push_str(&format!(":{p}"));
            }
            s
        };
        let slash = |p: &str| if p.is_empty() { String::new() } else { format!("/{p}") };
        match self {
            RepoUrl::Local(p) => write!(f, "{}", p.display()),
            RepoUrl::Memory(n) => write!(f, "memory://{n}"),
            RepoUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}{}", slash(prefix)),
            RepoUrl::Gcs { bucket, prefix } => write!(f, "gcs://{bucket}{}", slash(prefix)),
            RepoUrl::Azblob { container, prefix } => write!(f, "azblob://{container}{}", slash(prefix)),
            RepoUrl::Sftp { user, host, port, path } => write!(f, "sftp://{}{path}", hp(user, host, port)),
            RepoUrl::Webdav { tls, user, host, port, path } => {
                write!(f, "{}://{}{path}", if *tls { "webdavs" } else { "webdav" }, hp(user, host, port))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_simple_schemes() {
        assert_eq!(RepoUrl::parse("/srv/repo").unwrap(), RepoUrl::Local("/srv/repo".into()));
        assert_eq!(RepoUrl::parse("rel/repo").unwrap(), RepoUrl::Local("rel/repo".into()));
        assert_eq!(RepoUrl::parse("file:///srv/repo").unwrap(), RepoUrl::Local("/srv/repo".into()));
        assert!(RepoUrl::parse("file://srv/repo").is_err());
        assert_eq!(RepoUrl::parse("memory://t").unwrap(), RepoUrl::Memory("t".into()));
        assert!(RepoUrl::parse("").is_err());
        let e = RepoUrl::parse("ftp://x/y").unwrap_err().to_string();
        assert!(e.contains("ftp://") && e.contains("s3://"), "{e}");
    }

    #[test]
    fn buckets() {
        assert_eq!(
            RepoUrl::parse("s3://bkt/a/b/").unwrap(),
            RepoUrl::S3 { bucket: "bkt".into(), prefix: "a/b".into() }
        );
        assert_eq!(RepoUrl::parse("s3://bkt").unwrap(), RepoUrl::S3 { bucket: "bkt".into(), prefix: "".into() });
        assert_eq!(RepoUrl::parse("s3://bkt/a/b").unwrap().to_string(), "s3://bkt/a/b");
        assert!(RepoUrl::parse("s3:///x").is_err());
        assert!(RepoUrl::parse("s3://b/a/../c").is_err());
        assert!(RepoUrl::parse("s3://AK:SK@b/x").is_err());
        assert_eq!(RepoUrl::parse("gcs://g/p").unwrap(), RepoUrl::Gcs { bucket: "g".into(), prefix: "p".into() });
        assert_eq!(
            RepoUrl::parse("azblob://c/p/q").unwrap(),
            RepoUrl::Azblob { container: "c".into(), prefix: "p/q".into() }
        );
        assert!(RepoUrl::parse("s3://b/x?region=y").is_err());
    }

    #[test]
    fn hosts() {
        assert_eq!(
            RepoUrl::parse("sftp://me@h.example:2222/srv/r/").unwrap(),
            RepoUrl::Sftp {
                user: Some("me".into()),
                host: "h.example".into(),
                port: Some(2222),
                path: "/srv/r".into()
            }
        );
        assert_eq!(RepoUrl::parse("sftp://me@[::1]:22/r").unwrap().to_string(), "sftp://me@[::1]:22/r");
        assert!(RepoUrl::parse("sftp://h").is_err());
        assert!(RepoUrl::parse("sftp://h:x/r").is_err());
        let w = RepoUrl::parse("webdavs://u@dav.example/remote.php/x").unwrap();
        assert_eq!(
            w,
            RepoUrl::Webdav {
                tls: true,
                user: Some("u".into()),
                host: "dav.example".into(),
                port: None,
                path: "/remote.php/x".into()
            }
        );
        assert_eq!(w.scheme(), "webdavs");
        let e = RepoUrl::parse("webdav://u:hunter2@h/x").unwrap_err().to_string();
        assert!(!e.contains("hunter2") && e.contains("password"), "{e}");
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("webdav://u:pw@h/x"), "webdav://u:***@h/x");
        assert_eq!(redact("s3://b/x"), "s3://b/x");
    }
}
