//! The job profile as written (docs/jobs.md): serde types that mirror the TOML tables one to one,
//! every table closed (`deny_unknown_fields`, so a misspelt key is an error with its line), and the
//! values whose checks need a line kept [`Spanned`]. [`super::parse`] turns them into the typed
//! profile.

use cairn::retention::PolicyToml;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileToml {
    #[serde(default)]
    pub repository: BTreeMap<String, Spanned<RepositoryToml>>,
    #[serde(default)]
    pub job: BTreeMap<String, Spanned<JobToml>>,
}

/// `[repository.NAME]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryToml {
    pub url: Spanned<String>,
    pub password_file: Option<Spanned<String>>,
    pub password_command: Option<String>,
    pub password_env: Option<Spanned<String>>,
    pub cache_dir: Option<Spanned<String>>,
    #[serde(default)]
    pub no_cache: bool,
    pub compression: Option<Spanned<String>>,
    pub verify: Option<Spanned<String>>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub options_file: Option<Spanned<String>>,
}

/// `{ path = "redis/dump.rdb", command = "redis-cli --rdb -" }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandToml {
    pub path: Spanned<String>,
    pub command: String,
}

/// A hook: one shell command or a list run in order.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum HookToml {
    One(String),
    Many(Vec<String>),
}

impl HookToml {
    /// The commands, in order.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            HookToml::One(c) => vec![c],
            HookToml::Many(v) => v,
        }
    }
}

/// `[job.NAME]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobToml {
    pub repository: Spanned<String>,
    #[serde(default)]
    pub paths: Vec<Spanned<String>>,
    #[serde(default)]
    pub commands: Vec<Spanned<CommandToml>>,
    #[serde(default)]
    pub excludes: Vec<String>,
    #[serde(default)]
    pub iexcludes: Vec<String>,
    #[serde(default)]
    pub exclude_files: Vec<Spanned<String>>,
    #[serde(default)]
    pub iexclude_files: Vec<Spanned<String>>,
    #[serde(default)]
    pub exclude_caches: bool,
    #[serde(default)]
    pub exclude_if_present: Vec<String>,
    pub exclude_larger_than: Option<Spanned<String>>,
    #[serde(default)]
    pub one_file_system: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    pub host: Option<String>,
    pub retention: Option<Spanned<PolicyToml>>,
    pub retention_file: Option<Spanned<String>>,
    pub prune_every: Option<Spanned<String>>,
    pub before: Option<HookToml>,
    pub after: Option<HookToml>,
    pub on_failure: Option<HookToml>,
    pub rpo: Option<Spanned<String>>,
    pub warn: Option<Spanned<String>>,
    pub size_change: Option<Spanned<String>>,
    pub metrics_file: Option<Spanned<String>>,
    pub drill: Option<Spanned<super::drill::DrillToml>>,
}
