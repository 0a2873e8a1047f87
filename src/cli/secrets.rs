//! The password variables (`CAIRN_PASSWORD`, `CAIRN_FROM_PASSWORD`, `CAIRN_NEW_PASSWORD`): taken out
//! of the process environment when `cairn` starts, so that no command it runs (hooks, stream
//! commands, drill verify commands, a password command) inherits a password (README "Security
//! model"). It owns those values and nothing else; it never prints them.

use std::ffi::OsString;
use std::sync::OnceLock;
use zeroize::Zeroizing;

/// The variables taken out of the environment at start.
pub const VARS: [&str; 3] = ["CAIRN_PASSWORD", "CAIRN_FROM_PASSWORD", "CAIRN_NEW_PASSWORD"];

/// A password as read from the environment.
type Secret = Zeroizing<Vec<u8>>;

/// Their values, as found at start (`None`: unset).
static TAKEN: OnceLock<Vec<(&'static str, Option<Secret>)>> = OnceLock::new();

/// Reads each of [`VARS`] and removes it from the process environment.
///
/// # Safety
/// Must be called while the process has one thread: `main`'s first statements, before anything
/// that could start a thread or read the environment from another thread.
pub unsafe fn take_from_environment() {
    use std::os::unix::ffi::OsStringExt;
    let taken = VARS
        .iter()
        .map(|&name| {
            let value = std::env::var_os(name).map(|v: OsString| Zeroizing::new(v.into_vec()));
            std::env::remove_var(name);
            (name, value)
        })
        .collect();
    let _ = TAKEN.set(taken);
}

/// The value of password variable `name`: what [`take_from_environment`] took, or (when it was
/// not called, or for another variable, such as a profile's `password_env`) the environment's.
pub fn var(name: &str) -> Option<Zeroizing<Vec<u8>>> {
    use std::os::unix::ffi::OsStrExt;
    if let Some(taken) = TAKEN.get() {
        if let Some((_, v)) = taken.iter().find(|(n, _)| *n == name) {
            return v.clone();
        }
    }
    std::env::var_os(name).map(|v| Zeroizing::new(v.as_bytes().to_vec()))
}
