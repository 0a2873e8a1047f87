//! Who and where this process runs: the host name, the user name, and the names of user and
//! group ids (for key files, leases, snapshots and tree nodes). Thin wrappers over the system
//! calls; no policy.

/// The host name of this machine.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for 256 bytes; gethostname NUL-terminates or truncates.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    if r != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The user name of this process.
pub fn username() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| user_name(unsafe { libc::geteuid() }).unwrap_or_default())
}

/// The first buffer size for `getpwuid_r`/`getgrgid_r`; it grows on `ERANGE`.
const NAME_BUF_START: usize = 4096;
/// The largest buffer a lookup tries (a group with thousands of members needs a large one).
const NAME_BUF_MAX: usize = 16 << 20;

/// Runs a `get*id_r` lookup with a buffer that starts at `start` bytes and doubles while the call
/// answers `ERANGE`. `call` returns the call's result code and, on success, the name.
fn lookup_name(start: usize, mut call: impl FnMut(&mut [u8]) -> (libc::c_int, Option<String>)) -> Option<String> {
    let mut size = start.max(1);
    loop {
        let mut buf = vec![0u8; size];
        match call(&mut buf) {
            (0, name) => return name,
            (libc::ERANGE, _) if size < NAME_BUF_MAX => size = size.saturating_mul(2).min(NAME_BUF_MAX),
            _ => return None,
        }
    }
}

fn user_name_from(uid: u32, start: usize) -> Option<String> {
    lookup_name(start, |buf| {
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the sizes given; getpwuid_r fills pw within buf.
        let r = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr() as *mut libc::c_char, buf.len(), &mut res) };
        if r != 0 || res.is_null() {
            return (r, None);
        }
        // SAFETY: on success pw_name points to a NUL-terminated string inside buf.
        let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) };
        (0, Some(name.to_string_lossy().into_owned()))
    })
}

fn group_name_from(gid: u32, start: usize) -> Option<String> {
    lookup_name(start, |buf| {
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::group = std::ptr::null_mut();
        // SAFETY: as for getpwuid_r.
        let r = unsafe { libc::getgrgid_r(gid, &mut gr, buf.as_mut_ptr() as *mut libc::c_char, buf.len(), &mut res) };
        if r != 0 || res.is_null() {
            return (r, None);
        }
        // SAFETY: on success gr_name points into buf.
        let name = unsafe { std::ffi::CStr::from_ptr(gr.gr_name) };
        (0, Some(name.to_string_lossy().into_owned()))
    })
}

/// The home directory of a user id in the user database (`None` when the id has no entry, or
/// its home is empty or not UTF-8).
pub fn home_dir(uid: u32) -> Option<String> {
    lookup_name(NAME_BUF_START, |buf| {
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: as in `user_name_from`.
        let r = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr() as *mut libc::c_char, buf.len(), &mut res) };
        if r != 0 || res.is_null() || pw.pw_dir.is_null() {
            return (r, None);
        }
        // SAFETY: on success pw_dir points to a NUL-terminated string inside buf.
        let dir = unsafe { std::ffi::CStr::from_ptr(pw.pw_dir) };
        (0, dir.to_str().ok().filter(|d| !d.is_empty()).map(str::to_owned))
    })
}

/// The name of a user id (`None` when the id has no entry).
pub fn user_name(uid: u32) -> Option<String> {
    user_name_from(uid, NAME_BUF_START)
}

/// The name of a group id (`None` when the id has no entry).
pub fn group_name(gid: u32) -> Option<String> {
    group_name_from(gid, NAME_BUF_START)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry larger than the first buffer (here: a 1-byte first buffer, where the default is 4 KiB) is found
    /// after the buffer grows, instead of coming back as no name.
    #[test]
    fn names_larger_than_the_first_buffer_are_found() {
        let user = user_name_from(0, NAME_BUF_START).expect("uid 0 has a name");
        assert_eq!(user_name_from(0, 1).as_deref(), Some(user.as_str()));
        let group = group_name_from(0, NAME_BUF_START).expect("gid 0 has a name");
        assert_eq!(group_name_from(0, 1).as_deref(), Some(group.as_str()));
    }

    #[test]
    fn the_buffer_doubles_on_erange_and_stops_at_the_limit() {
        let mut sizes = Vec::new();
        let name = lookup_name(1000, |buf| {
            sizes.push(buf.len());
            if buf.len() < 5000 {
                (libc::ERANGE, None)
            } else {
                (0, Some("long".into()))
            }
        });
        assert_eq!(name.as_deref(), Some("long"));
        assert_eq!(sizes, [1000, 2000, 4000, 8000]);
        let mut calls = 0;
        assert_eq!(
            lookup_name(NAME_BUF_MAX / 2, |_| {
                calls += 1;
                (libc::ERANGE, None)
            }),
            None
        );
        assert_eq!(calls, 2, "gives up at the limit");
        assert_eq!(lookup_name(64, |_| (libc::EIO, None)), None);
    }
}
