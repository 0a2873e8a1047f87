//! Getting at a repository: the password sources in their documented order (file, command,
//! variable, prompt), the backend from the URL and options, the first look (exit 10 before any
//! password is asked for), and opening with the key kind the command needs.

use super::args::{FromRepoArgs, Global};
use super::output::Printer;
use super::CliError;
use anyhow::{bail, Context};
use cairn::backend::{self, DynBackend};
use cairn::repository::{OpenOptions, ReadRepository, Repository};
use cairn::Error;
use std::path::Path;
use zeroize::Zeroizing;

fn first_line(bytes: &[u8]) -> Zeroizing<Vec<u8>> {
    let end = bytes.iter().position(|&b| b == b'\n').unwrap_or(bytes.len());
    let mut line = &bytes[..end];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    Zeroizing::new(line.to_vec())
}

fn read_password_file(f: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let ctx = || format!("cannot read password file {}", f.display());
    let mut file = std::fs::File::open(f).with_context(ctx)?;
    let mode = file.metadata().with_context(ctx)?.permissions().mode();
    if mode & 0o044 != 0 {
        // Always shown (not a note --quiet silences): the password is exposed right now.
        eprintln!(
            "cairn: warning: password file {} is readable by {} (mode {:04o}); make it private: chmod 600",
            f.display(),
            if mode & 0o004 != 0 { "everyone" } else { "its group" },
            mode & 0o7777
        );
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.read_to_end(&mut bytes).with_context(ctx)?;
    Ok(first_line(&bytes))
}

fn run_password_command(cmd: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("password command `{cmd}` could not start"))?;
    let out_bytes = Zeroizing::new(out.stdout);
    if !out.status.success() {
        return Err(CliError::Key(format!("password command `{cmd}` failed: {}", out.status)).into());
    }
    Ok(first_line(&out_bytes))
}

/// Asks for a password on the terminal; without one, the error names the variable `env` and its
/// `_FILE` / `_COMMAND` forms and flags (`CAIRN_FROM_PASSWORD`: `--from-password-file`, ...).
fn prompt(label: &str, env: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    match rpassword::prompt_password(label) {
        Ok(p) => Ok(Zeroizing::new(p.into_bytes())),
        Err(_) => {
            let flag = env.strip_prefix("CAIRN_").unwrap_or(env).to_ascii_lowercase().replace('_', "-");
            let how = if env == "CAIRN_NEW_PASSWORD" {
                format!("set {env} (or --new-password-file)")
            } else {
                format!("set {env}, {env}_FILE or {env}_COMMAND (or --{flag}-file / --{flag}-command)")
            };
            Err(CliError::Key(format!("no password given and no terminal to ask on: {how}")).into())
        }
    }
}

/// The password sources in their documented order: `g`'s file, `g`'s command, the variable `env`,
/// then a prompt with `label` (asked twice when `confirm`).
pub fn password_from(g: &Global, env: &str, label: &str, confirm: bool) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    if let Some(f) = &g.password_file {
        return read_password_file(f);
    }
    if let Some(cmd) = &g.password_command {
        return run_password_command(cmd);
    }
    if let Some(var) = &g.password_env {
        // A job profile's `password_env` (docs/jobs.md): that variable or nothing.
        return match super::secrets::var(var) {
            Some(p) => Ok(p),
            None => Err(CliError::Key(format!("the variable {var} (the profile's password_env) is not set")).into()),
        };
    }
    if let Some(p) = super::secrets::var(env) {
        return Ok(p);
    }
    let p = prompt(label, env)?;
    if confirm {
        let again = prompt("Repeat the password: ", env)?;
        if *again != *p {
            bail!("the passwords do not match");
        }
    }
    Ok(p)
}

/// The repository password: --password-file, --password-command, CAIRN_PASSWORD, then a prompt.
pub fn password(g: &Global, confirm: bool) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    password_from(g, "CAIRN_PASSWORD", "Repository password: ", confirm)
}

/// A new password for `key add` / `key passwd`: the file, CAIRN_NEW_PASSWORD, or a prompt (twice).
pub fn new_password(file: Option<&Path>) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let p = if let Some(f) = file {
        read_password_file(f)?
    } else if let Some(p) = super::secrets::var("CAIRN_NEW_PASSWORD") {
        p
    } else {
        let p = prompt("New password: ", "CAIRN_NEW_PASSWORD")?;
        let again = prompt("Repeat the new password: ", "CAIRN_NEW_PASSWORD")?;
        if *again != *p {
            bail!("the passwords do not match");
        }
        p
    };
    if p.is_empty() {
        bail!("an empty password is not accepted");
    }
    Ok(p)
}

/// The backend of `g`'s URL with its options (`-o`, `CAIRN_OPTION_*`, the options file). A bad URL
/// or option is a usage error.
pub fn backend(g: &Global) -> anyhow::Result<DynBackend> {
    let url = g.repo.clone().unwrap_or_default();
    // Only CAIRN_OPTION_* variables are looked at; a non-UTF-8 one is an error, not skipped.
    let mut env = Vec::new();
    for (k, v) in std::env::vars_os() {
        let Some(k) = k.to_str().filter(|k| k.starts_with(backend::options::ENV_PREFIX)) else { continue };
        let v = v.into_string().map_err(|_| CliError::Usage(format!("{k} is not valid UTF-8")))?;
        env.push((k.to_string(), v));
    }
    if url.is_empty() {
        return Err(CliError::Usage("no repository given (use -r/--repo or CAIRN_REPOSITORY)".into()).into());
    }
    let options = backend::Options::from_command_line(&g.options, env, g.options_file.as_deref())?;
    Ok(backend::open_url_with(&url, &options)?)
}

/// True when a repository is at the backend's location. A storage failure here (an unreachable
/// server, refused credentials) means the repository cannot be reached.
pub fn has_repository(backend: &DynBackend) -> anyhow::Result<bool> {
    cairn::probe::has_repository(backend).map_err(|e| match e {
        e @ Error::Backend { .. } => CliError::Unreachable(format!("cannot access the repository: {e}")).into(),
        e => e.into(),
    })
}

/// The library's open options from `g`, for a command that writes to the repository (`writes`:
/// only such a command may append the signed config of a repository from before signed configs,
/// format-spec §9.2) or not.
pub fn open_options(g: &Global, writes: bool) -> OpenOptions {
    OpenOptions { cache_root: g.cache_dir.clone(), no_cache: g.no_cache, upgrade_config: writes }
}

/// Opens `g`'s repository with any key (the password from `env` or a prompt with `label` after
/// `g`'s password file and command), for a command that `writes` or not.
fn open_with(g: &Global, out: &Printer, env: &str, label: &str, writes: bool) -> anyhow::Result<Repository> {
    let backend = backend(g)?;
    // Look before asking for a password: a missing repository is exit 10, not a prompt.
    if !has_repository(&backend)? {
        return Err(Error::RepoNotFound(backend.location()).into());
    }
    let pw = password_from(g, env, label, false)?;
    let repo = Repository::open(backend, &pw, &open_options(g, writes))?;
    if let Some(note) = repo.cache().note() {
        out.note(format!("cairn: {note}"));
    }
    Ok(repo)
}

/// Opens the repository with any key, write-only ones included (`backup`, `key`, `cat config`),
/// for a command that `writes` or not.
pub fn open(g: &Global, out: &Printer, writes: bool) -> anyhow::Result<Repository> {
    open_with(g, out, "CAIRN_PASSWORD", "Repository password: ", writes)
}

/// Opens the repository for a command that reads snapshots, trees or data and writes nothing: a
/// write-only key is refused here with a clear message instead of failing later on a sealed object.
pub fn open_reader(g: &Global, out: &Printer) -> anyhow::Result<ReadRepository> {
    readable(open(g, out, false)?)
}

/// [`open_reader`] for a command that writes to the repository unless `writes` is false (a dry run).
pub fn open_reader_writing(g: &Global, out: &Printer, writes: bool) -> anyhow::Result<ReadRepository> {
    readable(open(g, out, writes)?)
}

fn readable(repo: Repository) -> anyhow::Result<ReadRepository> {
    repo.readable().map_err(|e| match e {
        e @ Error::WriteOnlyKey { .. } => CliError::Key(format!("{e}; use a full key")).into(),
        e => e.into(),
    })
}

/// Opens the source repository of `copy` / `init --copy-chunker-from` for reading.
pub fn open_source(g: &Global, out: &Printer, url: &str, from: &FromRepoArgs) -> anyhow::Result<ReadRepository> {
    let mut fg = g.clone();
    fg.repo = Some(url.to_string());
    fg.password_file = from.from_password_file.clone();
    fg.password_command = from.from_password_command.clone();
    fg.password_env = None;
    readable(open_with(&fg, out, "CAIRN_FROM_PASSWORD", "Password of the source repository: ", false)?)
}
