//! `cairn tag` (format-spec §8.3) and `cairn mount` (issue 14): tag rewrites a manifest with `replaces`, needs a
//! full key (exit 12 for a write-only key), keeps the original writer for retention, and refuses flagged snapshots
//! unless --force (they stay flagged); mount shows the snapshots through FUSE where /dev/fuse allows it.

use crate::common::*;
use serde_json::{json, Value};

fn add_key(repo: &Repo, password: &str, extra: &[&str]) -> String {
    let mut args = vec!["key", "add", "--json"];
    args.extend(extra);
    let mut add = repo.command(&args);
    add.env("CAIRN_NEW_PASSWORD", password);
    string(&parse_json(&expect_success(&repo.command(&args), run_cmd(add))), "key_id")
}

/// The snapshot with id `id` in `snapshots --json`.
fn listed(repo: &Repo, id: &str) -> Value {
    repo.snapshots().into_iter().find(|s| s["id"] == id).unwrap_or_else(|| panic!("snapshot {id} not listed"))
}

/// `replaces` of the stored manifest `id` (version 3).
fn replaces(repo: &Repo, id: &str) -> Value {
    repo.json(&["cat", "snapshot", id])["snapshot"]["V3"]["replaces"].clone()
}

/// `origin` of the stored manifest `id` (version 3), as `cat snapshot --json` shows it.
fn origin(repo: &Repo, id: &str) -> Value {
    repo.json(&["cat", "snapshot", id])["snapshot"]["V3"]["origin"].clone()
}

/// The id of the one snapshot whose short id is `short`.
fn full_id(repo: &Repo, short: &str) -> String {
    let ids: Vec<String> = repo.snapshots().iter().map(|s| string(s, "id")).filter(|i| i.starts_with(short)).collect();
    assert_eq!(ids.len(), 1, "{short}: {ids:?}");
    ids[0].clone()
}

#[test]
fn tag_rewrites_the_manifest_keeps_the_writer_group_and_refuses_write_only_keys_and_flagged_snapshots() {
    let mut repo = Repo::new();
    let src = repo.mkdir("src");
    write_file(&src.join("f.txt"), b"x\n");
    let web1 = add_key(&repo, "web-1 key", &["--write-only", "--host", "web-1"]);
    repo.password = "web-1 key".into();
    let s1 =
        string(&repo.backup(&[&src], &["--host", "web-1", "--time", "2024-01-01", "--tag", "daily"]), "snapshot_id");
    // A write-only key may not tag (it would delete a manifest): exit 12, nothing changed.
    let out = repo.expect_code(&["tag", &s1[..8], "--add", "keep"], 12);
    assert!(stderr(&out).contains("write-only"), "{}", describe(&out));
    repo.password = PASSWORD.into();
    assert_eq!(listed(&repo, &s1)["tags"], json!(["daily"]));

    assert_eq!(origin(&repo, &s1), json!(null), "a backup names no origin");
    assert_eq!(listed(&repo, &s1)["origin"], json!(null));

    // The full key tags web-1's snapshot: a new manifest signed by the full key, naming the one it replaces and,
    // in its origin field, web-1 as the writer retention counts it under; the old manifest is gone. The tags are
    // exactly the user's.
    let out = repo.ok(&["tag", &s1[..8], "--add", "keep", "--add", "daily"]);
    let short2 = out.split_whitespace().nth(3).unwrap().to_string();
    let s2 = full_id(&repo, &short2);
    assert_eq!(out, format!("tagged     {} -> {short2}  tags daily,keep\n", &s1[..8]));
    let l = listed(&repo, &s2);
    assert_eq!(l["tags"], json!(["daily", "keep"]));
    assert_eq!((&l["writer"], &l["flags"], &l["origin"]), (&json!(repo.init_key_id()), &json!([]), &json!(web1)));
    assert_eq!(replaces(&repo, &s2), json!([s1]));
    assert_eq!(origin(&repo, &s2), json!(web1));
    assert!(!repo.snapshots().iter().any(|s| s["id"] == s1.as_str()), "the old manifest is deleted");
    let groups = repo.json(&["snapshots", "--group-by", "writer"]);
    assert_eq!(groups[0]["group"], json!({"writer": web1}), "{groups}");
    assert_eq!(groups[0]["snapshots"][0]["id"], json!(s2));
    assert_eq!(repo.snapshots_filtered(&["--writer", &web1[..8]]).len(), 1);

    // --remove, then --set: the history grows oldest first; the origin stays web-1; user tags are replaced.
    let out = repo.ok(&["tag", &s2[..8], "--remove", "daily"]);
    let s3 = full_id(&repo, out.split_whitespace().nth(3).unwrap());
    assert_eq!((&listed(&repo, &s3)["tags"], origin(&repo, &s3)), (&json!(["keep"]), json!(web1)));
    let out = repo.json(&["tag", &s3[..8], "--set", "a", "--set", "b"]);
    let s4 = string(&out["snapshots"][0], "new");
    assert_eq!(
        (&out["snapshots"][0]["after"], &out["snapshots"][0]["origin"]),
        (&json!(["a", "b"]), &json!(web1)),
        "{out}"
    );
    assert_eq!(replaces(&repo, &s4), json!([s1, s2, s3]));
    assert_eq!(origin(&repo, &s4), json!(web1));
    let groups = repo.json(&["snapshots", "--group-by", "writer"]);
    assert_eq!(groups[0]["group"], json!({"writer": web1}), "still web-1's after three rewrites: {groups}");
    // A dry run writes nothing.
    assert_eq!(
        repo.ok(&["tag", &s4[..8], "--add", "c", "--dry-run"]),
        format!("would tag  {}  tags a,b,c\n", &s4[..8])
    );
    assert_eq!(listed(&repo, &s4)["tags"], json!(["a", "b"]));
    // Nothing to change: nothing written.
    assert_eq!(repo.ok(&["tag", &s4[..8], "--add", "a"]), format!("unchanged  {}  tags a,b\n", &s4[..8]));
    assert_eq!(repo.snapshots().len(), 1);
    // Any tag is the user's again, `writer:` ones included: it is an ordinary string, and moves nothing.
    let mine = format!("writer:{}", repo.init_key_id());
    let out = repo.ok(&["tag", &s4[..8], "--add", &mine]);
    let s5 = full_id(&repo, out.split_whitespace().nth(3).unwrap());
    let l = listed(&repo, &s5);
    assert_eq!((&l["tags"], &l["origin"]), (&json!(["a", "b", mine]), &json!(web1)));
    let groups = repo.json(&["snapshots", "--group-by", "writer"]);
    assert_eq!(groups[0]["group"], json!({"writer": web1}), "{groups}");
    assert_eq!(repo.snapshots_filtered(&["--tag", &mine]).len(), 1);
    let out = repo.ok(&["tag", &s5[..8], "--remove", &mine]);
    let s6 = full_id(&repo, out.split_whitespace().nth(3).unwrap());
    assert_eq!((origin(&repo, &s6), replaces(&repo, &s6)), (json!(web1), json!([s1, s2, s3, s4, s5])));
    // Still refused: a comma or a newline.
    repo.expect_usage_error(&["tag", &s6[..8], "--add", "a,b"], &["comma"]);
    repo.expect_usage_error(&["tag", &s6[..8], "--add", "a\nb"], &["newline"]);
    repo.expect_usage_error(&["tag", &s6[..8]], &["--add"]);

    // web-1's write-only key tagging its own backup `writer:<full key>` claims nothing: no origin, its own group.
    repo.password = "web-1 key".into();
    let claim = format!("writer:{}", repo.init_key_id());
    let w = string(&repo.backup(&[&src], &["--host", "web-1", "--time", "2024-01-02", "--tag", &claim]), "snapshot_id");
    repo.password = PASSWORD.into();
    let l = listed(&repo, &w);
    assert_eq!((&l["writer"], &l["origin"], &l["tags"]), (&json!(web1), &json!(null), &json!([claim])));
    assert!(repo.snapshots_filtered(&["--writer", &repo.init_key_id()[..8]]).iter().all(|s| s["id"] != w.as_str()));
    let groups = repo.json(&["snapshots", "--group-by", "writer"]);
    assert_eq!(groups.as_array().unwrap().len(), 1, "{groups}");
    assert_eq!(groups[0]["group"], json!({"writer": web1}), "{groups}");
    repo.ok(&["forget", &w[..8]]);

    // A flagged snapshot (dated a century ahead: future) is refused without --force, and stays flagged with it:
    // its writer block is kept as it was and no longer verifies.
    let f = string(&repo.backup(&[&src], &["--time", "2124-01-01"]), "snapshot_id");
    assert_eq!(listed(&repo, &f)["flags"], json!(["future"]));
    let out = repo.expect_code(&["tag", &f[..8], "--add", "keep"], 1);
    assert!(stderr(&out).contains("flagged (future)") && stderr(&out).contains("--force"), "{}", describe(&out));
    assert_eq!(listed(&repo, &f)["tags"], json!([]));
    let out = repo.json(&["tag", &f[..8], "--add", "keep", "--force"]);
    let fnew = string(&out["snapshots"][0], "new");
    assert_eq!(out["snapshots"][0]["signed"], json!(false));
    let l = listed(&repo, &fnew);
    assert_eq!(
        (&l["tags"], &l["flags"], &l["attribution"]),
        (&json!(["keep"]), &json!(["forged", "future"]), &json!("forged"))
    );
    // Each rewrite is in the ledger (format-spec §13.3), so the replaced manifests are accounted for.
    let tags = repo.json(&["ledger", "log", "--kind", "tag"]);
    let pairs: Vec<(Value, Value)> = tags
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["event"]["tag"]["replaced"][0]["old"].clone(), e["event"]["tag"]["replaced"][0]["new"].clone()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            (json!(s1), json!(s2)),
            (json!(s2), json!(s3)),
            (json!(s3), json!(s4)),
            (json!(s4), json!(s5)),
            (json!(s5), json!(s6)),
            (json!(f), json!(fnew))
        ]
    );
    let verified = repo.json(&["ledger", "verify"]);
    assert_eq!(verified["findings"], json!([]), "{verified}");
}

/// A `cairn mount` child, unmounted (SIGINT, then a lazy unmount as a last resort) when dropped.
struct Mounted {
    child: Option<std::process::Child>,
    mnt: std::path::PathBuf,
}

impl Mounted {
    /// Sends `signal` (SIGINT as Ctrl-C does, or SIGTERM); the child must unmount and exit 0.
    fn signal(mut self, signal: i32) -> std::process::Output {
        let child = self.child.take().unwrap();
        // SAFETY: kill with a pid of our own child.
        unsafe { libc::kill(child.id() as i32, signal) };
        child.wait_with_output().unwrap()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill with a pid of our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
            let _ = c.wait();
        }
        if is_mounted(&self.mnt) {
            let p = cstring(&self.mnt);
            // SAFETY: a valid C string.
            unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

fn is_mounted(mnt: &std::path::Path) -> bool {
    let want = format!(" {} ", mnt.display());
    std::fs::read_to_string("/proc/self/mounts").unwrap_or_default().lines().any(|l| l.contains(&want))
}

/// Mounts the repository on `mnt`; `None` (with a SKIPPED line saying why) where FUSE mounts are not allowed here,
/// which fails the test under CAIRN_TEST_SERVERS=required (CI can mount).
fn mount(repo: &Repo, mnt: &std::path::Path, extra: &[&str]) -> Option<Mounted> {
    let skip = |why: String| {
        assert!(!crate::servers::required(), "CAIRN_TEST_SERVERS=required but FUSE cannot mount here: {why}");
        eprintln!("SKIPPED: cairn mount test: {why}");
        None
    };
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        return skip(format!("/dev/fuse cannot be opened ({e})"));
    }
    let mut args = vec!["mount", s(mnt)];
    args.extend(extra);
    let mut cmd = repo.command(&args);
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut m = Mounted { child: Some(cmd.spawn().unwrap()), mnt: mnt.to_path_buf() };
    let start = std::time::Instant::now();
    // Poll for the mount (no fixed sleep): it appears in the mount table, or the child exits saying why not.
    while !is_mounted(mnt) {
        if let Some(status) = m.child.as_mut().unwrap().try_wait().unwrap() {
            let out = m.child.take().unwrap().wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr).to_string();
            if err.contains("Operation not permitted") || err.contains("Permission denied") {
                return skip(format!("the kernel refused the mount ({status}): {err}"));
            }
            panic!("cairn mount exited ({status}) without mounting: {err}");
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "no mount after 60 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Some(m)
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn mount_shows_snapshots_by_time_host_tag_and_id_and_reads_files_byte_for_byte() {
    use std::os::unix::fs::MetadataExt;
    let repo = Repo::new();
    let src = repo.mkdir("src");
    // Several chunks, a file of one chunk, a hardlink pair, a symlink, an xattr, a sparse file.
    write_file(&src.join("big.bin"), &random_bytes(7, 5 << 20));
    write_file(&src.join("d/a.txt"), b"alpha\n");
    std::fs::hard_link(src.join("d/a.txt"), src.join("d/b.txt")).unwrap();
    std::os::unix::fs::symlink("d/a.txt", src.join("link")).unwrap();
    let xattrs = xattr::set(src.join("d/a.txt"), "user.cairn", b"value").is_ok();
    let sparse = std::fs::File::create(src.join("sparse")).unwrap();
    sparse.set_len(3 << 20).unwrap();
    drop(sparse);
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(src.join("sparse")).unwrap();
        f.seek(SeekFrom::Start(2 << 20)).unwrap();
        f.write_all(b"middle").unwrap();
    }
    let id1 = string(&repo.backup(&[&src], &["--time", "2024-01-01", "--host", "h1", "--tag", "t1"]), "snapshot_id");
    write_file(&src.join("new.txt"), b"later\n");
    let id2 = string(&repo.backup(&[&src], &["--time", "2024-02-01T10:00:00Z", "--host", "h2"]), "snapshot_id");

    let mnt = repo.mkdir("mnt");
    let Some(m) = mount(&repo, &mnt, &[]) else { return };
    assert_eq!(names(&mnt), ["hosts", "ids", "latest", "snapshots", "tags"]);
    let (t1, t2) = ("2024-01-01T00:00:00Z", "2024-02-01T10:00:00Z");
    assert_eq!(names(&mnt.join("snapshots")), [t1, t2]);
    assert_eq!(names(&mnt.join("hosts")), ["h1", "h2"]);
    assert_eq!(names(&mnt.join("hosts/h1")), [t1]);
    assert_eq!(names(&mnt.join("tags")), ["t1"]);
    assert_eq!(names(&mnt.join("tags/t1")), [t1]);
    let mut ids = vec![id1[..8].to_string(), id2[..8].to_string()];
    ids.sort();
    assert_eq!(names(&mnt.join("ids")), ids);
    assert_eq!(std::fs::read_link(mnt.join("latest")).unwrap(), std::path::Path::new("snapshots").join(t2));

    // The first snapshot, byte for byte, through every way to it.
    for dir in [mnt.join("snapshots").join(t1), mnt.join("hosts/h1").join(t1), mnt.join("ids").join(&id1[..8])] {
        let at = dir.join(src.strip_prefix("/").unwrap());
        assert_eq!(names(&at), ["big.bin", "d", "link", "sparse"]);
        for f in ["big.bin", "d/a.txt", "d/b.txt", "sparse"] {
            assert_eq!(std::fs::read(at.join(f)).unwrap(), std::fs::read(src.join(f)).unwrap(), "{f}");
        }
        let (a, b) = (std::fs::metadata(at.join("d/a.txt")).unwrap(), std::fs::metadata(at.join("d/b.txt")).unwrap());
        assert_eq!(a.ino(), b.ino(), "a hardlink pair is one inode");
        let orig = std::fs::metadata(src.join("d/a.txt")).unwrap();
        assert_eq!(
            (a.mode() & 0o7777, a.uid(), a.gid(), a.mtime(), a.size()),
            (orig.mode() & 0o7777, orig.uid(), orig.gid(), orig.mtime(), 6)
        );
        assert_eq!(std::fs::read_link(at.join("link")).unwrap(), std::path::Path::new("d/a.txt"));
        assert_eq!(std::fs::metadata(at.join("sparse")).unwrap().len(), 3 << 20);
        if xattrs {
            assert_eq!(xattr::get(at.join("d/a.txt"), "user.cairn").unwrap(), Some(b"value".to_vec()));
            let listed: Vec<_> = xattr::list(at.join("d/a.txt")).unwrap().collect();
            assert_eq!(listed, vec![std::ffi::OsString::from("user.cairn")]);
            assert_eq!(xattr::get(at.join("d/b.txt"), "user.none").unwrap(), None);
        }
    }
    // Reads at offsets across chunk boundaries.
    {
        use std::io::{Read, Seek, SeekFrom};
        let want = std::fs::read(src.join("big.bin")).unwrap();
        let mut f =
            std::fs::File::open(mnt.join("latest").join(src.strip_prefix("/").unwrap()).join("big.bin")).unwrap();
        for off in [0usize, 1, 1_000_003, 2 << 20, (5 << 20) - 10] {
            let mut buf = vec![0; 300_000];
            f.seek(SeekFrom::Start(off as u64)).unwrap();
            let n = f.read(&mut buf).unwrap();
            assert!(n > 0);
            assert_eq!(&buf[..n], &want[off..off + n], "at {off}");
        }
    }
    // Read-only.
    assert!(std::fs::write(mnt.join("latest").join(src.strip_prefix("/").unwrap()).join("d/a.txt"), b"x").is_err());
    let out = m.signal(libc::SIGINT);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(!is_mounted(&mnt), "unmounted after SIGINT");
    assert_eq!(names(&mnt), Vec::<String>::new());

    // The filter chooses the snapshots; SIGTERM unmounts too.
    let m = mount(&repo, &mnt, &["--host", "h2"]).expect("mounted a moment ago");
    assert_eq!(names(&mnt.join("snapshots")), [t2]);
    assert_eq!(names(&mnt.join("hosts")), ["h2"]);
    assert_eq!(names(&mnt.join("tags")), Vec::<String>::new());
    let at = mnt.join("snapshots").join(t2).join(src.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(at.join("new.txt")).unwrap(), b"later\n");
    let out = m.signal(libc::SIGTERM);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(!is_mounted(&mnt), "unmounted after SIGTERM");
}
