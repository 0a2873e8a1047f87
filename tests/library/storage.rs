//! The backend conformance suite: one set of checks of the `Backend` contract (format-spec §1, src/backend/mod.rs)
//! run against every backend — local disk, memory, OpenDAL's fs service, the real S3, SFTP and WebDAV servers and the
//! GCS and Azure emulators `./test.sh` starts (tests/support/servers.rs has the rule for a missing server). Each run
//! uses a fresh prefix.

use super::fixtures::bytes;
use super::servers::{self, Azure, Gcs, Sftp, Webdav, S3};
use cairn::backend::{self, local::LocalBackend, opendal::OpendalBackend, DynBackend, Options};
use std::sync::Arc;

fn open(url: &str, flags: Vec<String>) -> DynBackend {
    let o = Options::from_sources(&flags, vec![], None).unwrap_or_else(|e| panic!("{url}: {e}"));
    backend::open_url_with(url, &o).unwrap_or_else(|e| panic!("{url}: {e}"))
}

fn s3(what: &str) -> Option<DynBackend> {
    let s = S3::from_env()?;
    Some(open(&s.url(what), [s.options(), s.credentials(&s.secret_key)].concat()))
}

fn sftp(what: &str) -> Option<DynBackend> {
    let s = Sftp::from_env()?;
    Some(open(&s.url(what), s.options()))
}

fn webdav(what: &str) -> Option<DynBackend> {
    let w = Webdav::from_env()?;
    Some(open(&w.url(what), [w.options(), w.password(&w.pass)].concat()))
}

fn gcs(what: &str) -> Option<DynBackend> {
    let g = Gcs::from_env()?;
    Some(open(&g.url(what), g.options()))
}

fn azblob(what: &str) -> Option<DynBackend> {
    let a = Azure::from_env()?;
    Some(open(&a.url(what), [a.options(), a.key(&a.key)].concat()))
}

/// Every backend, each at a fresh empty location; the temp dirs live as long as the returned guard.
fn every_backend(what: &str) -> (Vec<(&'static str, DynBackend)>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("local");
    let fs = tmp.path().join("fs");
    std::fs::create_dir_all(&fs).unwrap();
    let mut v: Vec<(&'static str, DynBackend)> = vec![
        ("local", Arc::new(LocalBackend::new(&local).unwrap())),
        ("memory", backend::open_url(&format!("memory://{}", servers::unique(what))).unwrap()),
        ("opendal-fs", Arc::new(OpendalBackend::fs(&fs).unwrap())),
    ];
    if let Some(b) = s3(what) {
        v.push(("s3", b));
    }
    if let Some(b) = sftp(what) {
        v.push(("sftp", b));
    }
    if let Some(b) = webdav(what) {
        v.push(("webdav", b));
    }
    if let Some(b) = gcs(what) {
        v.push(("gcs", b));
    }
    if let Some(b) = azblob(what) {
        v.push(("azblob", b));
    }
    (v, tmp)
}

#[test]
fn write_read_stat_delete() {
    let (backends, _tmp) = every_backend("basic");
    for (name, b) in backends {
        let data = bytes(1, 3000);
        b.write_new("keys/one", &data).unwrap_or_else(|e| panic!("{name}: {e}"));
        b.write_new("data/ab/nested", b"x").unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(b.read("keys/one").unwrap(), data, "{name}");
        let st = b.stat("keys/one").unwrap().unwrap_or_else(|| panic!("{name}: stat found nothing"));
        assert_eq!((st.path.as_str(), st.size), ("keys/one", 3000), "{name}");
        // OpenDAL's memory service keeps no times; every real store does.
        assert!(st.modified.is_some() || name == "memory", "{name}: no modification time");
        assert!(b.stat("keys/missing").unwrap().is_none(), "{name}");
        let e = b.read("keys/missing").unwrap_err();
        assert!(e.is_not_found(), "{name}: reading a missing object: {e}");
        assert!(b.read_range("keys/missing", 0, 1).unwrap_err().is_not_found(), "{name}");
        b.delete("keys/one").unwrap();
        assert!(b.read("keys/one").unwrap_err().is_not_found(), "{name}: deleted object still readable");
        b.delete("keys/one").unwrap_or_else(|e| panic!("{name}: deleting a missing object: {e}"));
        assert!(b.write_new("../escape", b"x").is_err(), "{name}: a path escaping the root was accepted");
        b.sync().unwrap();
    }
}

#[test]
fn ranged_reads_and_short_reads() {
    let (backends, _tmp) = every_backend("range");
    for (name, b) in backends {
        let data = bytes(2, 10_000);
        b.write_new("data/00/p", &data).unwrap();
        assert_eq!(b.read_range("data/00/p", 0, 10).unwrap(), &data[..10], "{name}");
        assert_eq!(b.read_range("data/00/p", 9_990, 10).unwrap(), &data[9_990..], "{name}");
        assert_eq!(b.read_range("data/00/p", 1234, 5000).unwrap(), &data[1234..6234], "{name}");
        assert!(b.read_range("data/00/p", 9_995, 10).is_err(), "{name}: a read past the end must fail");
        assert!(b.read_range("data/00/p", 20_000, 10).is_err(), "{name}: a read beyond the object must fail");
        assert!(b.read_range("data/00/p", u64::MAX, 2).is_err(), "{name}: an overflowing range must fail");
        if name == "local" {
            // Read by cairn itself (no OpenDAL): a length far beyond the object is not allocated.
            assert!(b.read_range("data/00/p", 0, 1 << 50).is_err(), "{name}: a length beyond the object must fail");
        }
    }
}

#[test]
fn create_if_not_exists_never_overwrites() {
    let (mut backends, _tmp) = every_backend("cine");
    // Objects larger than `chunk_size` (default 64 MiB) go up in parts: with 5 MiB parts the large object below does.
    if let Some(s) = S3::from_env() {
        let o = [s.options(), s.credentials(&s.secret_key), vec!["chunk_size=5".into()]].concat();
        backends.push(("s3-in-parts", open(&s.url("cine-parts"), o)));
    }
    for (name, b) in backends {
        b.write_new("index/a", b"first").unwrap();
        let e = b.write_new("index/a", b"second").unwrap_err();
        assert!(e.is_exists(), "{name}: second create gave {e}");
        assert_eq!(b.read("index/a").unwrap(), b"first", "{name}: content changed");
        // A large object (in parts on `s3-in-parts`) is refused just the same.
        let big = bytes(3, 20 << 20);
        b.write_new("data/ff/big", &big).unwrap_or_else(|e| panic!("{name}: {e}"));
        let e = b.write_new("data/ff/big", &bytes(4, 20 << 20)).unwrap_err();
        assert!(e.is_exists(), "{name}: second create of a large object gave {e}");
        assert_eq!(b.stat("data/ff/big").unwrap().unwrap().size, big.len() as u64, "{name}");
        assert!(b.read("data/ff/big").unwrap() == big, "{name}: large object changed");
    }
}

/// What a retried conditional create looks like: the same name with the same bytes again. On remote services with
/// conditional create that is a completed create (`Ok`: the stored object is read back and compared); everywhere
/// else (including the GCS emulator, opened without conditional create) it is "exists". Different bytes are
/// "exists" everywhere (above).
#[test]
fn a_repeated_create_with_the_same_bytes() {
    let (backends, _tmp) = every_backend("same");
    for (name, b) in backends {
        let data = bytes(7, 5000);
        b.write_new("index/s", &data).unwrap();
        let again = b.write_new("index/s", &data);
        if matches!(name, "s3" | "sftp" | "azblob") {
            again.unwrap_or_else(|e| panic!("{name}: a create repeated with the same bytes: {e}"));
        } else {
            assert!(again.unwrap_err().is_exists(), "{name}");
        }
        assert_eq!(b.read("index/s").unwrap(), data, "{name}");
    }
}

#[test]
fn racing_creators_of_one_name_exactly_one_wins() {
    let (backends, _tmp) = every_backend("race");
    for (name, b) in backends {
        let wins: Vec<bool> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..6u64)
                .map(|i| {
                    let b = b.clone();
                    sc.spawn(move || match b.write_new("leases/x", &bytes(100 + i, 2000)) {
                        Ok(()) => true,
                        Err(e) if e.is_exists() => false,
                        Err(e) => panic!("{name}: {e}"),
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let stored = b.read("leases/x").unwrap();
        if name == "s3" {
            // s3s-fs (the test server) checks If-None-Match and then writes, without a lock: racing creates of
            // one name can all succeed there (AWS S3 decides atomically). The object is still one whole write.
            assert!(wins.iter().any(|w| *w), "{name}: {wins:?}");
            assert!((0..6).any(|i| stored == bytes(100 + i, 2000)), "{name}: a torn object");
            continue;
        }
        assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{name}: {wins:?}");
        let winner = wins.iter().position(|w| *w).unwrap() as u64;
        assert_eq!(stored, bytes(100 + winner, 2000), "{name}: the winner's bytes");
    }
}

#[test]
fn listing_pages_through_more_than_1000_objects() {
    let (backends, _tmp) = every_backend("list");
    const N: usize = 1100;
    for (name, b) in backends {
        std::thread::scope(|sc| {
            for t in 0..8 {
                let b = b.clone();
                sc.spawn(move || {
                    for i in (t..N).step_by(8) {
                        b.write_new(&format!("index/{i:064x}"), &[i as u8; 3])
                            .unwrap_or_else(|e| panic!("{name}: {e}"));
                    }
                });
            }
        });
        b.write_new("snapshots/other", b"s").unwrap();
        let l = b.list("index/").unwrap();
        assert_eq!(l.len(), N, "{name}: listing lost or invented objects");
        assert!(l.windows(2).all(|w| w[0].path < w[1].path), "{name}: listing not sorted");
        assert!(l.iter().all(|o| o.size == 3 && o.path.starts_with("index/")), "{name}");
        assert_eq!(b.list("index").unwrap().len(), N, "{name}: prefix without a slash");
        assert_eq!(b.list("snapshots/").unwrap().len(), 1, "{name}");
        assert!(b.list("prune/").unwrap().is_empty(), "{name}: a missing prefix lists as empty");
    }
}

#[test]
fn guarantees_are_reported() {
    let (backends, _tmp) = every_backend("guar");
    for (name, b) in backends {
        let g = b.guarantees();
        // The GCS emulator ignores `ifGenerationMatch`; it is opened with `conditional_create=false`, which cairn
        // reports (real GCS has it: remote.rs's service table).
        let expect_conditional = !matches!(name, "webdav" | "opendal-fs" | "gcs");
        assert_eq!(g.conditional_create, expect_conditional, "{name}: {g:?}");
        assert!(g.consistent_list, "{name}");
        assert_eq!(g.atomic_write, !matches!(name, "webdav" | "opendal-fs" | "sftp"), "{name}: {g:?}");
        let remote = matches!(name, "s3" | "sftp" | "webdav" | "gcs" | "azblob");
        assert_eq!(b.upload_concurrency(), if remote { 4 } else { 2 }, "{name}");
    }
}

/// Wrong credentials fail the first call with an error that names the operation, the service and the path, and
/// does not contain the secret.
#[test]
fn wrong_credentials_are_a_clear_error() {
    let mut cases: Vec<(&str, DynBackend, String)> = Vec::new();
    if let Some(s) = S3::from_env() {
        let secret = "not-the-secret-0123456789".to_string();
        cases.push(("s3", open(&s.url("cred"), [s.options(), s.credentials(&secret)].concat()), secret));
    }
    if let Some(s) = Sftp::from_env() {
        let key = s.wrong_key();
        cases.push(("sftp", open(&s.url("cred"), vec![format!("sftp.key={key}")]), "PRIVATE KEY".into()));
    }
    if let Some(w) = Webdav::from_env() {
        let pass = "wrong-password-42".to_string();
        cases.push(("webdav", open(&w.url("cred"), w.password(&pass)), pass));
    }
    // The GCS emulator checks no credentials; Azurite checks the account key's signature.
    if let Some(a) = Azure::from_env() {
        let key = "d3Jvbmcta2V5LXdyb25nLWtleQ==".to_string();
        cases.push(("azblob", open(&a.url("cred"), [a.options(), a.key(&key)].concat()), key));
    }
    for (name, b, secret) in cases {
        let e = b.list("config/").unwrap_err().to_string();
        assert!(e.contains("list") && e.contains(&format!("{name}://")), "{name}: unclear error: {e}");
        assert!(!e.contains(&secret), "{name}: the error shows the secret: {e}");
        let e = b.write_new("keys/k", b"x").unwrap_err().to_string();
        assert!(e.contains("keys/k"), "{name}: the error does not name the object: {e}");
    }
}

/// An unreachable server is an error after the retries, not a hang.
#[test]
fn unreachable_server_fails_in_bounded_time() {
    let b = open(
        "s3://b/p",
        vec![
            "s3.endpoint=http://127.0.0.1:9".into(),
            "s3.access_key_id=a".into(),
            "s3.secret_access_key=b".into(),
            "retries=3".into(),
        ],
    );
    let t = std::time::Instant::now();
    // A listing that keeps failing is an error, never an empty (or truncated) listing.
    let e = b.list("config/").expect_err("a listing of an unreachable server succeeded").to_string();
    assert!(e.contains("s3://b/p") && e.contains("list"), "{e}");
    let e = b.read("config/0000000001").unwrap_err().to_string();
    assert!(t.elapsed() < std::time::Duration::from_secs(30), "took {:?}", t.elapsed());
    assert!(e.contains("s3://b/p") && e.contains("config/0000000001"), "{e}");
}

/// HTTPS works: the ring TLS provider is installed before the first request (a missing provider would panic
/// inside reqwest instead of failing the call).
#[test]
fn https_client_starts_with_the_ring_provider() {
    let b = open("webdavs://127.0.0.1:9/x", vec!["retries=2".into(), "webdav.password=p".into()]);
    let e = b.list("config/").unwrap_err().to_string();
    assert!(e.contains("webdavs://127.0.0.1:9/x") && e.contains("list"), "{e}");
    assert!(!e.contains("webdav.password") && !e.contains("=p"), "{e}");
}

/// An S3 endpoint that answers every `HEAD` with a 100-byte object and every `GET` with a 1 GiB body, whatever range
/// was asked for
/// (what a hostile or broken server, or whoever sits between a plain-HTTP endpoint and cairn, can send). It counts
/// the body bytes it got out before the client hung up.
fn oversending_s3() -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::Ordering::SeqCst;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", l.local_addr().unwrap());
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { return };
            let sent = counter.clone();
            std::thread::spawn(move || {
                conn.set_write_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut w = conn;
                loop {
                    let mut first = String::new();
                    if r.read_line(&mut first).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut line = String::new();
                    while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                        line.clear();
                    }
                    if first.starts_with("HEAD") {
                        let head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nETag: \"e\"\r\n\
                                    Last-Modified: Mon, 07 Dec 2026 00:00:00 GMT\r\n\r\n";
                        if w.write_all(head.as_bytes()).is_err() {
                            return;
                        }
                        continue;
                    }
                    let head = "HTTP/1.1 206 Partial Content\r\nContent-Length: 1073741824\r\n\r\n";
                    if w.write_all(head.as_bytes()).is_err() {
                        return;
                    }
                    let piece = vec![b'x'; 64 << 10];
                    for _ in 0..(1 << 14) {
                        if w.write_all(&piece).is_err() {
                            return;
                        }
                        sent.fetch_add(piece.len() as u64, SeqCst);
                    }
                    return;
                }
            });
        }
    });
    (endpoint, sent)
}

/// A server that sends more than the range asked for (or more than an object of its type may have, whatever size it
/// gave) is cut off after the first piece too many: a ranged read is a storage error naming the object, a
/// whole-object read finds the object too big, and memory does not grow with what the server sends. Before, the
/// whole response was taken in before its length was checked.
#[test]
fn a_server_sending_more_than_asked_is_cut_off() {
    use std::sync::atomic::Ordering::SeqCst;
    let (endpoint, sent) = oversending_s3();
    let b = open(
        "s3://b/p",
        vec![
            format!("s3.endpoint={endpoint}"),
            "s3.access_key_id=a".into(),
            "s3.secret_access_key=b".into(),
            "retries=0".into(),
        ],
    );
    let pack = format!("data/ab/{}", "ab".repeat(32));
    let e = b.read_range(&pack, 0, 100).expect_err("an oversized range was read").to_string();
    assert!(e.contains(&pack) && e.contains("more than the 100 bytes asked for"), "{e}");
    // Whatever size it gave (100 bytes), the object is as oversized as the bytes that came: refused as too big.
    match b.read_at_most("keys/k", 1 << 20) {
        Ok(Err(n)) => assert!(n > 1 << 20, "{n}"),
        other => panic!("an oversized object was not refused: {:?}", other.map(|r| r.map(|v| v.len()))),
    }
    // An object that is simply too big is refused with its size, as before.
    let m = backend::open_url(&format!("memory://{}", servers::unique("oversized"))).unwrap();
    m.write_new("keys/big", &bytes(1, (1 << 20) + 5)).unwrap();
    assert_eq!(m.read_at_most("keys/big", 1 << 20).unwrap(), Err((1 << 20) + 5));
    assert_eq!(m.read_at_most("keys/big", 2 << 20).unwrap().map(|v| v.len()), Ok((1 << 20) + 5));
    // Give the server's threads a moment to see the hang-ups, then count: far less than the 1 GiB it would send.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let n = sent.load(SeqCst);
    assert!(n < 64 << 20, "the server got {n} bytes out before the client stopped reading");
}

/// The request line and headers of the next request on a fake server's connection, and its `Content-Length` (0
/// without one); `None` when the client has hung up.
fn request_head(r: &mut impl std::io::BufRead) -> Option<(String, usize)> {
    let (mut head, mut line, mut len) = (String::new(), String::new(), 0usize);
    if r.read_line(&mut head).unwrap_or(0) == 0 {
        return None;
    }
    while r.read_line(&mut line).is_ok_and(|n| n > 2) {
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        head.push_str(&line);
        line.clear();
    }
    Some((head, len))
}

/// An S3 endpoint whose PUTs read the request body at `pace` bytes every 100 ms (0: never read it, nor answer),
/// then answer 200; it counts the bodies it took in whole.
fn slow_s3(pace: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::io::{BufReader, Read, Write};
    use std::sync::atomic::Ordering::SeqCst;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", l.local_addr().unwrap());
    let stored = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = stored.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { return };
            let stored = counter.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut w = conn;
                loop {
                    let Some((_, len)) = request_head(&mut r) else { return };
                    if pace == 0 {
                        std::thread::sleep(std::time::Duration::from_secs(120));
                        return;
                    }
                    let mut buf = vec![0u8; pace];
                    let mut left = len;
                    while left > 0 {
                        let n = left.min(pace);
                        if r.read_exact(&mut buf[..n]).is_err() {
                            return;
                        }
                        left -= n;
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                    stored.fetch_add(1, SeqCst);
                    let ok = "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 0\r\n\r\n";
                    if w.write_all(ok.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (endpoint, stored)
}

fn s3_at(endpoint: &str, more: &[&str]) -> DynBackend {
    let mut flags =
        vec![format!("s3.endpoint={endpoint}"), "s3.access_key_id=a".into(), "s3.secret_access_key=b".into()];
    flags.extend(more.iter().map(|s| s.to_string()));
    open("s3://b/p", flags)
}

/// An upload over a slow link takes as long as its bytes keep moving: `io_timeout` bounds a stall, not the whole
/// request. Before, a pack that took longer than `io_timeout` (120 s: a 16 MiB pack on a link under about
/// 1.1 Mbit/s per upload) failed every time it was tried.
#[test]
fn an_upload_slower_than_io_timeout_completes_while_its_bytes_move() {
    use std::sync::atomic::Ordering::SeqCst;
    let (endpoint, stored) = slow_s3(256 << 10);
    // 3 MiB at 2.5 MiB/s: about 1.2 s of reading, so the PUT's answer comes after io_timeout (1 s).
    let b = s3_at(&endpoint, &["io_timeout=1", "retries=0"]);
    let pack = format!("data/ab/{}", "ab".repeat(32));
    let t = std::time::Instant::now();
    b.write_new(&pack, &bytes(7, 3 << 20)).unwrap_or_else(|e| panic!("a slow upload failed: {e}"));
    assert!(t.elapsed() > std::time::Duration::from_secs(1), "the upload did not outlast io_timeout");
    assert_eq!(stored.load(SeqCst), 1);
    // `upload_timeout` still bounds the whole request.
    let b = s3_at(&endpoint, &["io_timeout=1", "upload_timeout=1", "retries=0"]);
    let e = b.write_new(&pack, &bytes(7, 3 << 20)).expect_err("an upload outlasted upload_timeout").to_string();
    assert!(e.contains(&pack), "{e}");
    // The same for a pack streamed from its staging file.
    let (endpoint, stored) = slow_s3(256 << 10);
    let spill = tempfile::tempdir().unwrap();
    let b = s3_at(&endpoint, &["io_timeout=1", "retries=0"]);
    let staged = staged_file(&b, spill.path(), &bytes(7, 3 << 20));
    let t = std::time::Instant::now();
    b.write_staged(&pack, staged).unwrap_or_else(|e| panic!("a slow streamed upload failed: {e}"));
    assert!(t.elapsed() > std::time::Duration::from_secs(1), "the streamed upload did not outlast io_timeout");
    assert_eq!(stored.load(SeqCst), 1);
    let b = s3_at(&endpoint, &["io_timeout=1", "upload_timeout=1", "retries=0"]);
    let staged = staged_file(&b, spill.path(), &bytes(7, 3 << 20));
    let e = b.write_staged(&pack, staged).expect_err("a streamed upload outlasted upload_timeout").to_string();
    assert!(e.contains(&pack), "{e}");
}

/// A server that stops reading an upload (or a link that dies under it) ends the request after about `io_timeout`,
/// not after `upload_timeout`: the connection's unsent bytes make no progress and the kernel drops it.
#[test]
fn a_stalled_upload_fails_after_io_timeout() {
    let (endpoint, _) = slow_s3(0);
    // upload_timeout 60 s (not the default 30 minutes) only so that a build without the watch fails this test soon.
    let b = s3_at(&endpoint, &["io_timeout=1", "upload_timeout=60", "retries=0"]);
    let pack = format!("data/ab/{}", "ab".repeat(32));
    let t = std::time::Instant::now();
    // More than the socket buffers hold, so bytes are left unsent.
    let e = b.write_new(&pack, &bytes(7, 16 << 20)).expect_err("a stalled upload succeeded").to_string();
    assert!(t.elapsed() < std::time::Duration::from_secs(10), "took {:?}: {e}", t.elapsed());
    assert!(e.contains(&pack), "{e}");
    // A pack streamed from its staging file goes through the same client, with the same watch.
    let spill = tempfile::tempdir().unwrap();
    let staged = staged_file(&b, spill.path(), &bytes(7, 16 << 20));
    let t = std::time::Instant::now();
    let e = b.write_staged(&pack, staged).expect_err("a stalled streamed upload succeeded").to_string();
    assert!(t.elapsed() < std::time::Duration::from_secs(10), "streamed: took {:?}: {e}", t.elapsed());
    assert!(e.contains(&pack), "{e}");
}

/// What a scripted S3 endpoint does with one PUT.
#[derive(Clone, Copy, Debug)]
enum PutStep {
    /// Take the body whole, keep it, answer 200.
    Store,
    /// Take half the body, then drop the connection.
    CutOffHalfway,
    /// Take the body whole, answer 503.
    Refuse503,
    /// Take the body whole, answer 412 (the name is taken), keep nothing.
    Exists412,
    /// Take the body whole, answer 303 to `/landing`, a page that answers every GET with 200.
    Redirect303,
    /// Hang up before reading the body, answering nothing: what a client sees when a server answers 412 before it
    /// reads the body and resets the connection (s3s-fs does, when the body is large).
    HangUpUnread,
}

/// What a scripted S3 endpoint saw and keeps: each PUT's request line and headers, and the body last stored.
#[derive(Clone, Default)]
struct Scripted {
    puts: Arc<std::sync::Mutex<Vec<String>>>,
    stored: Arc<std::sync::Mutex<Option<Vec<u8>>>>,
}

/// An S3 endpoint that answers each PUT as `script` says, in turn (`Store` once it runs out), and every GET or HEAD
/// from the body last stored (404 before one is). It checks no signature.
fn scripted_s3(script: Vec<PutStep>, stored: Option<Vec<u8>>) -> (String, Scripted) {
    use std::io::{BufReader, Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", l.local_addr().unwrap());
    let seen = Scripted { stored: Arc::new(std::sync::Mutex::new(stored)), ..Default::default() };
    let script = Arc::new(std::sync::Mutex::new(std::collections::VecDeque::from(script)));
    let state = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { return };
            let (state, script) = (state.clone(), script.clone());
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut w = conn;
                loop {
                    let Some((head, len)) = request_head(&mut r) else { return };
                    let head_only = head.starts_with("HEAD");
                    let answer = |status: &str, body: &[u8]| {
                        let mut a = format!("HTTP/1.1 {status}\r\nETag: \"e\"\r\nContent-Length: {}\r\n", body.len());
                        a.push_str("Last-Modified: Mon, 07 Dec 2026 00:00:00 GMT\r\n\r\n");
                        let body = if head_only { &[][..] } else { body };
                        [a.into_bytes(), body.to_vec()].concat()
                    };
                    let reply = if head.starts_with("PUT") {
                        state.puts.lock().unwrap().push(head.clone());
                        let step = script.lock().unwrap().pop_front().unwrap_or(PutStep::Store);
                        let mut body = vec![0u8; len];
                        if let PutStep::HangUpUnread = step {
                            return;
                        }
                        let whole = match step {
                            PutStep::CutOffHalfway => len / 2,
                            _ => len,
                        };
                        if r.read_exact(&mut body[..whole]).is_err() {
                            return;
                        }
                        match step {
                            PutStep::CutOffHalfway => return,
                            PutStep::Refuse503 => {
                                answer("503 Service Unavailable", b"<Error><Code>SlowDown</Code></Error>")
                            }
                            PutStep::Exists412 => {
                                answer("412 Precondition Failed", b"<Error><Code>PreconditionFailed</Code></Error>")
                            }
                            PutStep::HangUpUnread => unreachable!(),
                            PutStep::Redirect303 => {
                                let to = "HTTP/1.1 303 See Other\r\nLocation: /landing\r\nContent-Length: 0\r\n\r\n";
                                to.as_bytes().to_vec()
                            }
                            PutStep::Store => {
                                *state.stored.lock().unwrap() = Some(body);
                                answer("200 OK", b"")
                            }
                        }
                    } else if head.starts_with("GET /landing") {
                        answer("200 OK", b"welcome")
                    } else {
                        let range = head.to_ascii_lowercase().lines().find_map(|l| {
                            let (a, b) = l.strip_prefix("range: bytes=")?.trim().split_once('-')?;
                            Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()))
                        });
                        match state.stored.lock().unwrap().clone() {
                            None => answer("404 Not Found", b"<Error><Code>NoSuchKey</Code></Error>"),
                            Some(b) => match range {
                                Some((from, to)) if from < b.len() => {
                                    let to = to.map_or(b.len(), |t| (t + 1).min(b.len()));
                                    answer("206 Partial Content", &b[from..to])
                                }
                                _ => answer("200 OK", &b),
                            },
                        }
                    };
                    if w.write_all(&reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (endpoint, seen)
}

/// `data` staged in a file under `spill`, as a writer stages a pack, in pieces.
fn staged_file(b: &DynBackend, spill: &std::path::Path, data: &[u8]) -> backend::Staged {
    let mut s = b.stage("data/", 0, backend::Spill::Dir(spill)).unwrap();
    for piece in data.chunks(100_000) {
        s.write(piece).unwrap();
    }
    assert!(matches!(s, backend::Staged::File(_)));
    s
}

/// A pack staged in a file goes up to S3 as a presigned PUT whose body is read from the file, and a retried upload
/// (after a connection cut off halfway and after a 503) sends the whole file again: what is stored is the file.
/// `s3.presigned_uploads=false` sends it as before, from memory under an ordinary signed PUT.
#[test]
fn a_streamed_pack_upload_cut_off_midway_is_sent_again_whole() {
    let want = bytes(9, (3 << 20) + 12_345);
    let spill = tempfile::tempdir().unwrap();
    let pack = format!("data/ab/{}", "ab".repeat(32));
    let (endpoint, seen) = scripted_s3(vec![PutStep::CutOffHalfway, PutStep::Refuse503], None);
    let b = s3_at(&endpoint, &["retries=3"]);
    b.write_staged(&pack, staged_file(&b, spill.path(), &want)).unwrap_or_else(|e| panic!("not stored: {e}"));
    assert!(seen.stored.lock().unwrap().as_deref() == Some(&want[..]), "the stored object is not the staged file");
    let puts = seen.puts.lock().unwrap().clone();
    assert_eq!(puts.len(), 3, "cut off, refused, stored: {puts:?}");
    for p in &puts {
        assert!(p.contains("X-Amz-Signature="), "not presigned: {p}");
        assert!(!p.to_ascii_lowercase().contains("\nauthorization:"), "signed in a header too: {p}");
        assert!(p.to_ascii_lowercase().contains("\nif-none-match: *"), "not create-if-not-exists: {p}");
    }
    assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0, "nothing is left where it was staged");

    // The option turns it off: one ordinary signed PUT, from memory.
    let (endpoint, seen) = scripted_s3(vec![], None);
    let b = s3_at(&endpoint, &["s3.presigned_uploads=false"]);
    b.write_staged(&pack, staged_file(&b, spill.path(), &want)).unwrap();
    assert!(seen.stored.lock().unwrap().as_deref() == Some(&want[..]));
    let puts = seen.puts.lock().unwrap().clone();
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert!(!puts[0].contains("X-Amz-Signature=") && puts[0].to_ascii_lowercase().contains("\nauthorization:"));
}

/// A streamed create refused because the name is taken (412) succeeds only when the stored object holds exactly the
/// staged file's bytes (a retried create whose first attempt landed, or the same pack), as the buffered create does
/// (format-spec §1.4); otherwise it is the "exists" error, and the stored object is left as it was.
#[test]
fn a_streamed_create_refused_as_existing_is_complete_only_over_the_same_bytes() {
    let want = bytes(10, 1 << 20);
    let spill = tempfile::tempdir().unwrap();
    let pack = format!("data/ab/{}", "ab".repeat(32));
    let (endpoint, seen) = scripted_s3(vec![PutStep::Exists412], Some(want.clone()));
    let b = s3_at(&endpoint, &["retries=0"]);
    b.write_staged(&pack, staged_file(&b, spill.path(), &want)).unwrap_or_else(|e| panic!("same bytes: {e}"));
    let other = bytes(11, 1 << 20);
    let (endpoint, seen2) = scripted_s3(vec![PutStep::Exists412], Some(other.clone()));
    let b = s3_at(&endpoint, &["retries=0"]);
    let e = b.write_staged(&pack, staged_file(&b, spill.path(), &want)).expect_err("other bytes were accepted");
    assert!(e.is_exists(), "{e}");
    assert!(seen2.stored.lock().unwrap().as_deref() == Some(&other[..]), "the stored object changed");
    assert_eq!((seen.puts.lock().unwrap().len(), seen2.puts.lock().unwrap().len()), (1, 1), "a 412 is not retried");

    // A create whose send fails (a server that answers 412 before it reads the body and resets the connection, as
    // s3s-fs does; or an earlier attempt that landed, its answer lost) finds the name taken and checks it the same
    // way, streamed or from memory, instead of failing or sending again.
    let big = bytes(13, 16 << 20);
    for (stored, ok) in [(big.clone(), true), (bytes(14, 16 << 20), false)] {
        let (endpoint, seen) = scripted_s3(vec![PutStep::HangUpUnread; 10], Some(stored.clone()));
        let b = s3_at(&endpoint, &["retries=1"]);
        let streamed = b.write_staged(&pack, staged_file(&b, spill.path(), &big));
        let buffered = b.write_new(&pack, &big);
        for (how, r) in [("streamed", streamed), ("from memory", buffered)] {
            match (r, ok) {
                (Ok(()), true) => {}
                (Err(e), false) if e.is_exists() => {}
                (r, _) => panic!("{how}, the same bytes stored: {ok}: {r:?}"),
            }
        }
        assert!(seen.stored.lock().unwrap().as_deref() == Some(&stored[..]), "the stored object changed");
    }
    // Where nothing is stored, the failure is the send's; its message never shows the presigned URL's signature (a
    // credential for this write).
    let (endpoint, _) = scripted_s3(vec![PutStep::HangUpUnread; 10], None);
    let b = s3_at(&endpoint, &["retries=1"]);
    let e = b.write_staged(&pack, staged_file(&b, spill.path(), &big)).expect_err("nothing was stored").to_string();
    assert!(e.contains(&pack) && !e.contains("X-Amz-Signature") && !e.contains("X-Amz-Credential"), "{e}");
}

/// An upload answered with a redirect is not stored, whatever the page it points to answers. An HTTP client follows a
/// 303 with a GET and no body, and OpenDAL took the 200 from there for the object stored; the client no longer
/// follows such redirects, and a streamed upload checks where its answer came from besides.
#[test]
fn a_streamed_upload_redirected_elsewhere_is_not_taken_for_stored() {
    let spill = tempfile::tempdir().unwrap();
    let pack = format!("data/ab/{}", "ab".repeat(32));
    let (endpoint, seen) = scripted_s3(vec![PutStep::Redirect303], None);
    let b = s3_at(&endpoint, &["retries=2"]);
    let e = b.write_staged(&pack, staged_file(&b, spill.path(), &bytes(12, 1 << 20))).expect_err("taken for stored");
    assert!(e.to_string().contains("redirected the upload") && !e.to_string().contains("X-Amz-Signature"), "{e}");
    assert!(seen.stored.lock().unwrap().is_none());
    assert_eq!(seen.puts.lock().unwrap().len(), 1, "a redirect is not retried");
    // From memory, through OpenDAL, too.
    let (endpoint, seen) = scripted_s3(vec![PutStep::Redirect303; 3], None);
    let b = s3_at(&endpoint, &["retries=2"]);
    let r = b.write_new(&pack, &bytes(12, 1 << 20));
    assert!(r.is_err() && seen.stored.lock().unwrap().is_none(), "from memory, taken for stored: {r:?}");
}

/// The VmHWM of this process, in KiB.
fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// What `a_staged_pack_goes_up_to_s3_from_its_file_not_from_memory` runs in its child: one 96 MiB pack, staged in a
/// file in 1 MiB pieces, stored on the S3 server, with the growth of the process's peak printed.
fn upload_in_a_child(mode: &str) {
    let s = S3::from_env().unwrap();
    let mut flags = [s.options(), s.credentials(&s.secret_key)].concat();
    if mode == "buffered" {
        flags.push("s3.presigned_uploads=false".into());
    }
    let b = open(&s.url("streamed-memory"), flags);
    let spill = tempfile::tempdir().unwrap();
    let mut staged = b.stage("data/", 0, backend::Spill::Dir(spill.path())).unwrap();
    for i in 0..96 {
        staged.write(&bytes(i, 1 << 20)).unwrap();
    }
    let pack = format!("data/cd/{}", "cd".repeat(32));
    let before = peak_kib();
    b.write_staged(&pack, staged).unwrap();
    println!("peak growth KiB: {}", peak_kib() - before);
    assert_eq!(b.stat(&pack).unwrap().unwrap().size, 96 << 20);
    for i in [0, 47, 95] {
        assert!(b.read_range(&pack, i << 20, 1 << 20).unwrap() == bytes(i, 1 << 20), "piece {i} differs");
    }
    // The same pack again (a retried create whose first attempt landed): refused as existing by the server, then
    // found to hold the same bytes, range by range, so the create is complete.
    let mut again = b.stage("data/", 0, backend::Spill::Dir(spill.path())).unwrap();
    for i in 0..96 {
        again.write(&bytes(i, 1 << 20)).unwrap();
    }
    b.write_staged(&pack, again).unwrap_or_else(|e| panic!("{mode}: the same bytes again: {e}"));
}

/// A pack staged in a file goes up to S3 from the file as the connection takes it: the upload adds a few pieces to
/// the process's peak, not the pack. Before, every pack was read back whole and sent from memory, so each upload in
/// flight held one (4 × 16 MiB by default); `s3.presigned_uploads=false` still does, and is measured beside it so
/// the test shows the difference it claims. Each upload runs in a child process of its own (this test binary,
/// running only this test), so no other test's memory counts.
#[test]
fn a_staged_pack_goes_up_to_s3_from_its_file_not_from_memory() {
    const CHILD: &str = "CAIRN_TEST_UPLOAD_CHILD";
    if let Ok(mode) = std::env::var(CHILD) {
        return upload_in_a_child(&mode);
    }
    if S3::from_env().is_none() {
        return;
    }
    let growth = |mode: &str| -> u64 {
        let name = "storage::a_staged_pack_goes_up_to_s3_from_its_file_not_from_memory";
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(CHILD, mode)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{mode}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("peak growth KiB: ").map(|(_, n)| n))
            .unwrap_or_else(|| panic!("{stdout}"));
        line.trim().parse().unwrap()
    };
    let (streamed, buffered) = (growth("streamed"), growth("buffered"));
    assert!(streamed < 16 << 10, "a streamed 96 MiB upload raised the peak by {streamed} KiB");
    assert!(
        buffered > 64 << 10,
        "the buffered upload raised the peak by only {buffered} KiB: the test measures nothing"
    );
}

/// A backend that makes every pack upload take a while and records how many run at once.
struct SlowPacks {
    inner: DynBackend,
    in_flight: std::sync::atomic::AtomicUsize,
    max: std::sync::atomic::AtomicUsize,
    wants: usize,
    /// Set once `wants` uploads were in flight together; until then each upload waits for the others.
    gate: (std::sync::Mutex<bool>, std::sync::Condvar),
}

impl cairn::backend::Backend for SlowPacks {
    fn location(&self) -> String {
        format!("slow({})", self.inner.location())
    }
    fn read(&self, path: &str) -> cairn::Result<Vec<u8>> {
        self.inner.read(path)
    }
    fn read_range(&self, path: &str, offset: u64, len: u64) -> cairn::Result<Vec<u8>> {
        self.inner.read_range(path, offset, len)
    }
    fn write_new(&self, path: &str, data: &[u8]) -> cairn::Result<()> {
        use std::sync::atomic::Ordering::SeqCst;
        if !path.starts_with("data/") {
            return self.inner.write_new(path, data);
        }
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.max.fetch_max(now, SeqCst);
        // Hold each upload until `wants` are in flight at once (then let everything through), so the count does not
        // depend on how fast packs are produced. A writer that keeps fewer in flight leaves them waiting until the
        // timeout, and the maximum stays below `wants`.
        let (lock, cv) = &self.gate;
        let mut open = lock.lock().unwrap();
        if now >= self.wants {
            *open = true;
            cv.notify_all();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !*open && std::time::Instant::now() < deadline {
            open = cv.wait_timeout(open, std::time::Duration::from_millis(100)).unwrap().0;
        }
        drop(open);
        let r = self.inner.write_new(path, data);
        self.in_flight.fetch_sub(1, SeqCst);
        r
    }
    fn stat(&self, path: &str) -> cairn::Result<Option<cairn::backend::ObjectInfo>> {
        self.inner.stat(path)
    }
    fn list(&self, prefix: &str) -> cairn::Result<Vec<cairn::backend::ObjectInfo>> {
        self.inner.list(prefix)
    }
    fn delete(&self, path: &str) -> cairn::Result<()> {
        self.inner.delete(path)
    }
    fn sync(&self) -> cairn::Result<()> {
        self.inner.sync()
    }
    fn upload_concurrency(&self) -> usize {
        self.wants
    }
}

/// The writer keeps as many pack uploads in flight as the backend asks for (remote backends ask for 4), and the
/// result is a healthy repository whose snapshot restores.
#[test]
fn pack_uploads_run_concurrently_as_the_backend_asks() {
    use cairn::backup::{backup, BackupOptions, BackupSource, NoProgress};
    use cairn::check::{check, CheckOptions, ReadData};
    use cairn::repository::{InitOptions, OpenOptions, Repository};
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..4 {
        std::fs::write(src.join(format!("f{i}")), bytes(50 + i, 2 << 20)).unwrap();
    }
    for wants in [2, 4] {
        let slow = Arc::new(SlowPacks {
            inner: Arc::new(LocalBackend::new(tmp.path().join(format!("repo{wants}"))).unwrap()),
            in_flight: Default::default(),
            max: Default::default(),
            wants,
            gate: Default::default(),
        });
        let init = InitOptions { pack_size: 1 << 20, ..InitOptions::default() };
        let oo = OpenOptions {
            cache_root: Some(tmp.path().join(format!("cache{wants}"))),
            no_cache: false,
            upgrade_config: false,
        };
        let repo = Repository::init(slow.clone(), b"pw", &init, &oo).and_then(|r| r.readable()).unwrap();
        let r = backup(&repo, vec![BackupSource::Paths(vec![src.clone()])], &BackupOptions::default(), &NoProgress)
            .unwrap();
        assert!(r.snapshot_id.is_some());
        let max = slow.max.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(max, wants, "uploads in flight at most: {max}, the backend asked for {wants}");
        let report = check(&repo, &CheckOptions { read_data: ReadData::All }).unwrap();
        assert_eq!(report.errors(), 0, "{:#?}", report.findings);
    }
}

/// Every backend stores a staged object (a pack written as its blobs are sealed) under the name it gets at the end,
/// with create-if-not-exists, and leaves nothing else behind. The local backend stages in a file beside its packs;
/// every other backend stages in an unnamed file in the directory the writer offers, or in memory when it offers none.
#[test]
fn staged_objects_are_stored_under_their_final_name_once() {
    use backend::{Spill, Staged};
    let (backends, tmp) = every_backend("staged");
    let spill = tmp.path().join("spill");
    std::fs::create_dir_all(&spill).unwrap();
    let entries = || std::fs::read_dir(&spill).unwrap().count();
    for (name, b) in backends {
        let mut s = b.stage("data/", 1 << 20, Spill::Dir(&spill)).unwrap_or_else(|e| panic!("{name}: {e}"));
        s.write(&bytes(2, 3000)).unwrap();
        s.write(&bytes(3, 1000)).unwrap();
        assert_eq!(s.len(), 4000, "{name}");
        assert!(matches!(s, Staged::File(_)), "{name}: staged in a file, not in memory");
        assert_eq!(entries(), 0, "{name}: the staging file has no name in the offered directory");
        let path = "data/ab/staged";
        b.write_staged(path, s).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(b.read(path).unwrap(), [bytes(2, 3000), bytes(3, 1000)].concat(), "{name}");
        let mut again = b.stage("data/", 0, Spill::Memory).unwrap();
        assert_eq!(matches!(again, Staged::File(_)), name == "local", "{name}: in memory when no directory is offered");
        again.write(b"other bytes").unwrap();
        let e = b.write_staged(path, again).unwrap_err();
        assert!(e.is_exists(), "{name}: {e}");
        assert_eq!(b.read(path).unwrap().len(), 4000, "{name}: never overwritten");
        // Staged in a file (streamed where the service takes it), other bytes under a taken name are refused too.
        let mut again = b.stage("data/", 0, Spill::Dir(&spill)).unwrap();
        again.write(&bytes(4, 5000)).unwrap();
        let e = b.write_staged(path, again).unwrap_err();
        assert!(e.is_exists(), "{name}: {e}");
        assert_eq!(b.read(path).unwrap(), [bytes(2, 3000), bytes(3, 1000)].concat(), "{name}: never overwritten");
        let dropped = b.stage("data/", 0, Spill::Dir(&spill)).unwrap();
        drop(dropped);
        let listed: Vec<String> = b.list("data/").unwrap().into_iter().map(|o| o.path).collect();
        assert_eq!(listed, vec![path.to_string()], "{name}");
        assert!(b.stage("keys/", 0, Spill::Memory).is_err() || name != "local", "{name}: only pack folders stage");
    }
    assert_eq!(temp_files(&tmp.path().join("local")), Vec::<String>::new(), "no temporary file is left");
    assert_eq!(entries(), 0, "nothing is left in the offered directory");
}

/// The `.tmp-` files under `dir`, recursively.
fn temp_files(dir: &std::path::Path) -> Vec<String> {
    files_under(dir).into_iter().filter(|p| p.rsplit('/').next().is_some_and(|n| n.starts_with(".tmp-"))).collect()
}

/// A local backend that records how packs reach it, and can fail the Nth staged write.
struct CountingPacks {
    inner: DynBackend,
    pack_writes: std::sync::atomic::AtomicUsize,
    staged_files: std::sync::atomic::AtomicUsize,
    fail_staged: Option<usize>,
}

impl cairn::backend::Backend for CountingPacks {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn read(&self, path: &str) -> cairn::Result<Vec<u8>> {
        self.inner.read(path)
    }
    fn read_range(&self, path: &str, offset: u64, len: u64) -> cairn::Result<Vec<u8>> {
        self.inner.read_range(path, offset, len)
    }
    fn write_new(&self, path: &str, data: &[u8]) -> cairn::Result<()> {
        if path.starts_with("data/") || path.starts_with("tree/") {
            self.pack_writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        self.inner.write_new(path, data)
    }
    fn stage(&self, kind_dir: &str, capacity: usize, spill: backend::Spill<'_>) -> cairn::Result<backend::Staged> {
        self.inner.stage(kind_dir, capacity, spill)
    }
    fn write_staged(&self, path: &str, staged: backend::Staged) -> cairn::Result<()> {
        let n = self
            .staged_files
            .fetch_add(matches!(staged, backend::Staged::File(_)) as usize, std::sync::atomic::Ordering::SeqCst);
        if self.fail_staged == Some(n) {
            return Err(cairn::Error::storage("write", path, "injected fault"));
        }
        self.inner.write_staged(path, staged)
    }
    fn stat(&self, path: &str) -> cairn::Result<Option<cairn::backend::ObjectInfo>> {
        self.inner.stat(path)
    }
    fn list(&self, prefix: &str) -> cairn::Result<Vec<cairn::backend::ObjectInfo>> {
        self.inner.list(prefix)
    }
    fn delete(&self, path: &str) -> cairn::Result<()> {
        self.inner.delete(path)
    }
    fn sync(&self) -> cairn::Result<()> {
        self.inner.sync()
    }
}

/// A backup writes each pack to a file as its blobs are sealed and stores it when full (never a whole open pack in
/// memory, benches/README.md "Stream backups and memory"): on local disk a temporary file beside the packs, named when
/// full; for a remote service an unnamed file in the cache directory, sent when full. The packs are the ones the index
/// describes (check reads every blob), and a backup that fails part way leaves no temporary file behind.
#[test]
fn a_backup_streams_its_packs_to_files_and_cleans_up_after_a_failure() {
    use cairn::backend::Backend;
    use cairn::backup::{backup, BackupOptions, BackupSource, NoProgress};
    use cairn::check::{check, CheckOptions, ReadData};
    use cairn::repository::{InitOptions, OpenOptions, Repository};
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..4 {
        std::fs::write(src.join(format!("f{i}")), bytes(70 + i, 2 << 20)).unwrap();
    }
    for remote in [false, true] {
        for fail_staged in [None, Some(1)] {
            let dir = tmp.path().join(format!("repo-{remote}-{fail_staged:?}"));
            let inner: DynBackend = if remote {
                // The remote services' code path (OpenDAL's memory service; tests/servers.rs runs the real ones).
                backend::open_url(&format!("memory://{}", servers::unique("stream-packs"))).unwrap()
            } else {
                Arc::new(LocalBackend::new(&dir).unwrap())
            };
            let b = Arc::new(CountingPacks {
                inner,
                pack_writes: Default::default(),
                staged_files: Default::default(),
                fail_staged,
            });
            let init = InitOptions { pack_size: 1 << 20, ..InitOptions::default() };
            let cache = dir.with_extension("cache");
            let oo = OpenOptions { cache_root: Some(cache.clone()), no_cache: false, upgrade_config: false };
            let repo = Repository::init(b.clone(), b"pw", &init, &oo).and_then(|r| r.readable()).unwrap();
            let before = files_under(&cache);
            let r = backup(&repo, vec![BackupSource::Paths(vec![src.clone()])], &BackupOptions::default(), &NoProgress);
            assert_eq!(b.pack_writes.load(std::sync::atomic::Ordering::SeqCst), 0, "no pack is written from a buffer");
            if fail_staged.is_some() {
                let Err(e) = r else { panic!("the failed pack fails the backup") };
                assert!(e.to_string().contains("injected fault"), "{e}");
            } else {
                let r = r.unwrap();
                assert!(r.snapshot_id.is_some());
                let packs = b.list("data/").unwrap().len() + b.list("tree/").unwrap().len();
                assert!(packs >= 4, "8 MiB of data in 1 MiB packs: {packs}");
                let staged = b.staged_files.load(std::sync::atomic::Ordering::SeqCst);
                assert_eq!(staged, packs, "remote {remote}: each pack staged in a file");
                let report = check(&repo, &CheckOptions { read_data: ReadData::All }).unwrap();
                assert_eq!(report.errors(), 0, "{:#?}", report.findings);
            }
            if !remote {
                assert_eq!(temp_files(&dir), Vec::<String>::new(), "no temporary file is left");
            }
            let new: Vec<_> =
                files_under(&cache).into_iter().filter(|f| !before.contains(f) && !f.contains("/db/")).collect();
            assert_eq!(new, Vec::<String>::new(), "remote {remote}: no staging file is left in the cache directory");
        }
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

/// A backend that logs every call as `op prefix/` (the object's folder), in order.
struct Logged {
    inner: DynBackend,
    log: std::sync::Mutex<Vec<String>>,
}

impl Logged {
    fn note(&self, op: &str, path: &str) {
        let dir = path.split('/').next().unwrap_or("");
        self.log.lock().unwrap().push(format!("{op} {dir}/"));
    }
    fn count(&self, what: &str) -> usize {
        self.log.lock().unwrap().iter().filter(|l| *l == what).count()
    }
}

impl cairn::backend::Backend for Logged {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn read(&self, path: &str) -> cairn::Result<Vec<u8>> {
        self.note("read", path);
        self.inner.read(path)
    }
    fn read_range(&self, path: &str, offset: u64, len: u64) -> cairn::Result<Vec<u8>> {
        self.note("read", path);
        self.inner.read_range(path, offset, len)
    }
    fn read_at_most(&self, path: &str, max: u64) -> cairn::Result<Result<Vec<u8>, u64>> {
        self.note("read", path);
        self.inner.read_at_most(path, max)
    }
    fn write_new(&self, path: &str, data: &[u8]) -> cairn::Result<()> {
        self.note("write", path);
        self.inner.write_new(path, data)
    }
    fn stat(&self, path: &str) -> cairn::Result<Option<cairn::backend::ObjectInfo>> {
        self.note("stat", path);
        self.inner.stat(path)
    }
    fn list(&self, prefix: &str) -> cairn::Result<Vec<cairn::backend::ObjectInfo>> {
        self.note("list", prefix);
        self.inner.list(prefix)
    }
    fn delete(&self, path: &str) -> cairn::Result<()> {
        self.note("delete", path);
        self.inner.delete(path)
    }
    fn sync(&self) -> cairn::Result<()> {
        self.inner.sync()
    }
}

/// What an unchanged backup asks of the storage, where each request is a round trip to a remote service: the key
/// files are listed once and the key file read once, the key's certificate read once (it is not read again when
/// the certificates are loaded), and nothing under `data/` or `tree/` is read.
#[test]
fn an_unchanged_backup_lists_and_reads_each_key_object_once() {
    use super::fixtures::{init_local, local, opts, snapshot_of, write};
    use cairn::repository::Repository;
    let tmp = tempfile::tempdir().unwrap();
    let (dir, cache, src) = (tmp.path().join("repo"), tmp.path().join("cache"), tmp.path().join("src"));
    write(&src.join("a"), &bytes(1, 5000));
    write(&src.join("d/b"), &bytes(2, 70_000));
    drop(init_local(&dir, b"pw", &cache));
    let repo = Repository::open(local(&dir), b"pw", &opts(&cache)).unwrap();
    snapshot_of(&repo, &src);
    drop(repo);
    let logged = Arc::new(Logged { inner: local(&dir), log: Default::default() });
    let repo = Repository::open(logged.clone(), b"pw", &opts(&cache)).unwrap();
    snapshot_of(&repo, &src);
    let log = logged.log.lock().unwrap().clone();
    assert_eq!(logged.count("list keys/"), 1, "{log:?}");
    assert_eq!(logged.count("read keys/"), 1, "{log:?}");
    assert_eq!(logged.count("read certs/"), 1, "{log:?}");
    assert_eq!(logged.count("read data/") + logged.count("read tree/"), 0, "{log:?}");
    assert_eq!(logged.count("write snapshots/"), 1, "{log:?}");
    assert!(log.len() <= 25, "{} requests: {log:?}", log.len());
}
