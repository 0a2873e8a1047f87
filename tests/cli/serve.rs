//! `cairn serve` (docs/api.md): the real binary on 127.0.0.1 port 0 (the port read from its `listening on` line),
//! driven over HTTP. The auth matrix is one table (no token, wrong token, each role on each route); downloads are
//! byte-identical to the source (raw, tar unpacked, zip); TLS with a self-signed certificate; plain HTTP refused on
//! a non-loopback address; failed tokens rate-limited (429); /metrics parses (and promtool accepts it when
//! installed); a backup job of the profile runs in the background and shows in the job list and the snapshots; the
//! password never appears in any response.

use crate::common::{s, write_file, Repo};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A running `cairn serve`, stopped (SIGTERM, then waited for) on drop.
struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT` or `https://...`.
    url: String,
}

impl Server {
    fn start(r: &Repo, args: &[&str]) -> Server {
        let mut a = vec!["serve", "--listen", "127.0.0.1:0"];
        a.extend_from_slice(args);
        let mut cmd = r.command(&a);
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start cairn serve");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let url = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("cairn serve stopped before listening: {seen:?}");
            };
            if let Some(u) = line.strip_prefix("listening on ") {
                break u.to_string();
            }
            seen.push(line);
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: kill on the pid of our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(ureq::config::Config::builder().http_status_as_error(false).build())
}

/// One response: status, headers as text, body.
struct Reply {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
    }
}

fn request(agent: &ureq::Agent, method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> Reply {
    let resp = match method {
        "GET" => {
            let mut q = agent.get(url);
            if let Some(t) = token {
                q = q.header("Authorization", format!("Bearer {t}"));
            }
            q.call()
        }
        _ => {
            let mut q = agent.post(url).header("Content-Type", "application/json");
            if let Some(t) = token {
                q = q.header("Authorization", format!("Bearer {t}"));
            }
            q.send(body.unwrap_or(""))
        }
    };
    let mut resp = resp.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| format!("{}: {}\n", k.as_str(), v.to_str().unwrap_or("?")))
        .collect::<String>();
    let status = resp.status().as_u16();
    let body = resp.body_mut().with_config().limit(1 << 30).read_to_vec().unwrap_or_else(|e| panic!("{url}: {e}"));
    Reply { status, headers, body }
}

fn get(server: &Server, path: &str, token: Option<&str>) -> Reply {
    request(&agent(), "GET", &format!("{}{path}", server.url), token, None)
}

/// A new token of `role` in `file`.
fn token(r: &Repo, file: &Path, role: &str) -> String {
    let out = r.ok(&["serve", "token", "new", "--role", role, "--name", &format!("t-{role}"), "--token-file", s(file)]);
    let t = out.trim().to_string();
    assert!(t.starts_with("cairn_") && t.len() == 49, "{t:?}");
    t
}

/// A fixture: a backed-up tree (a small file, a 3 MiB random file in a subdirectory, a symlink) and a token of
/// each role.
struct Fixture {
    r: Repo,
    src: PathBuf,
    tokens: PathBuf,
    read: String,
    operate: String,
    admin: String,
}

fn fixture() -> Fixture {
    let r = Repo::new();
    let src = r.mkdir("src");
    write_file(&src.join("hello.txt"), b"hello, world\n");
    let mut big = vec![0u8; 3 * 1024 * 1024 + 17];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for b in big.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    write_file(&src.join("sub/dir/big.bin"), &big);
    std::os::unix::fs::symlink("hello.txt", src.join("link")).unwrap();
    r.backup(&[&src], &[]);
    let tokens = r.path("tokens");
    let (read, operate, admin) =
        (token(&r, &tokens, "read"), token(&r, &tokens, "operate"), token(&r, &tokens, "admin"));
    Fixture { r, src, tokens, read, operate, admin }
}

/// One row of the auth matrix: method, route as in the table, the request, its body, the role it needs, the status
/// when allowed.
type Cell = (&'static str, &'static str, String, Option<&'static str>, Option<&'static str>, u16);

#[test]
fn auth_matrix_every_route_by_no_token_wrong_token_and_each_role() {
    let f = fixture();
    let server = Server::start(&f.r, &["--token-file", s(&f.tokens), "--max-auth-failures", "1000"]);
    let file = format!("{}/hello.txt", s(&f.src));
    let table: Vec<Cell> = vec![
        ("GET", "/health", "/health".into(), None, None, 200),
        ("GET", "/", "/".into(), None, None, 200),
        ("GET", "/assets/{file}", "/assets/nosuch-file.css".into(), None, None, 404),
        ("GET", "/api/v1/openapi.json", "/api/v1/openapi.json".into(), None, None, 200),
        ("GET", "/metrics", "/metrics".into(), None, Some("read"), 200),
        ("GET", "/api/v1/repository", "/api/v1/repository".into(), None, Some("read"), 200),
        ("GET", "/api/v1/snapshots", "/api/v1/snapshots".into(), None, Some("read"), 200),
        ("GET", "/api/v1/snapshots/{id}", "/api/v1/snapshots/latest".into(), None, Some("read"), 200),
        ("GET", "/api/v1/snapshots/{id}/ls", "/api/v1/snapshots/latest/ls".into(), None, Some("read"), 200),
        (
            "GET",
            "/api/v1/snapshots/{id}/download",
            format!("/api/v1/snapshots/latest/download?path={file}"),
            None,
            Some("read"),
            200,
        ),
        ("GET", "/api/v1/diff", "/api/v1/diff?from=latest&to=latest".into(), None, Some("read"), 200),
        ("GET", "/api/v1/find", "/api/v1/find?pattern=*.txt".into(), None, Some("read"), 200),
        ("GET", "/api/v1/stats", "/api/v1/stats".into(), None, Some("read"), 200),
        ("GET", "/api/v1/status", "/api/v1/status".into(), None, Some("read"), 200),
        ("GET", "/api/v1/ledger", "/api/v1/ledger".into(), None, Some("read"), 200),
        ("GET", "/api/v1/jobs", "/api/v1/jobs".into(), None, Some("read"), 200),
        ("GET", "/api/v1/jobs/{id}", "/api/v1/jobs/999".into(), None, Some("read"), 404),
        ("POST", "/api/v1/jobs", "/api/v1/jobs".into(), Some(r#"{"kind":"nosuch"}"#), Some("operate"), 400),
        ("POST", "/api/v1/forget", "/api/v1/forget".into(), Some("{}"), Some("admin"), 400),
        ("POST", "/api/v1/prune", "/api/v1/prune".into(), Some(r#"{"x":1}"#), Some("admin"), 400),
        ("GET", "/api/v1/keys", "/api/v1/keys".into(), None, Some("admin"), 200),
    ];
    // The table covers exactly the server's routes (`cairn serve routes` prints its one route table).
    let routes: Value = serde_json::from_str(&f.r.ok(&["serve", "routes"])).unwrap();
    let have: BTreeSet<(String, String, Option<String>)> = routes
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap().into(),
                r["path"].as_str().unwrap().into(),
                r["role"].as_str().map(String::from),
            )
        })
        .collect();
    let want: BTreeSet<(String, String, Option<String>)> =
        table.iter().map(|(m, p, _, _, role, _)| (m.to_string(), p.to_string(), role.map(String::from))).collect();
    assert_eq!(have, want, "the matrix and the route table differ");
    let rank = |r: &str| ["read", "operate", "admin"].iter().position(|x| *x == r).unwrap();
    let tokens = [("read", f.read.as_str()), ("operate", f.operate.as_str()), ("admin", f.admin.as_str())];
    let wrong = "cairn_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let agent = agent();
    let mut seen = Vec::new();
    for (method, route, url, body, need, ok) in &table {
        let url = format!("{}{url}", server.url);
        let mut cells: Vec<(String, Option<&str>, u16)> = vec![
            ("no token".into(), None, if need.is_some() { 401 } else { *ok }),
            ("wrong token".into(), Some(wrong), if need.is_some() { 401 } else { *ok }),
        ];
        for (role, t) in tokens {
            let allowed = need.is_none_or(|n| rank(role) >= rank(n));
            cells.push((format!("role {role}"), Some(t), if allowed { *ok } else { 403 }));
        }
        for (who, t, expect) in cells {
            let reply = request(&agent, method, &url, t, *body);
            assert_eq!(reply.status, expect, "{method} {route} with {who}: {}", String::from_utf8_lossy(&reply.body));
            if expect == 401 {
                assert_eq!(reply.header("www-authenticate").as_deref(), Some("Bearer realm=\"cairn\""));
            }
            if [400, 401, 403, 404].contains(&expect) && !route.starts_with("/assets") {
                let e = reply.json();
                assert!(e["error"]["code"].is_string() && e["error"]["message"].is_string(), "{e}");
            }
            seen.push(reply);
        }
    }
    for reply in &seen {
        let text = format!("{}{}", reply.headers, String::from_utf8_lossy(&reply.body));
        assert!(!text.contains(&f.r.password), "the password must never be in a response");
    }
    // The OpenAPI document served is docs/openapi.json, and it names every route of the table.
    let doc = get(&server, "/api/v1/openapi.json", None);
    let disk = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json")).unwrap();
    assert_eq!(doc.body, disk);
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.1.0");
    for (method, path, _) in &have {
        let op = &doc["paths"][path][method.to_ascii_lowercase()];
        assert!(op.is_object(), "docs/openapi.json lacks {method} {path}");
    }
}

#[test]
fn downloads_are_byte_identical_raw_tar_and_zip() {
    let f = fixture();
    let server = Server::start(&f.r, &["--token-file", s(&f.tokens)]);
    let t = Some(f.read.as_str());
    let big = f.src.join("sub/dir/big.bin");
    let raw = get(&server, &format!("/api/v1/snapshots/latest/download?path={}", s(&big)), t);
    assert_eq!(raw.status, 200);
    assert_eq!(raw.body, std::fs::read(&big).unwrap());
    assert_eq!(raw.header("content-length"), Some(raw.body.len().to_string()));
    assert_eq!(
        raw.header("content-disposition").as_deref(),
        Some("attachment; filename=\"big.bin\"; filename*=UTF-8''big.bin")
    );
    // A directory as tar (the default) and as zip: the same files, the same bytes, the symlink kept.
    let want = |rel: &str| std::fs::read(f.src.join(rel)).unwrap();
    let tar = get(&server, &format!("/api/v1/snapshots/latest/download?path={}", s(&f.src)), t);
    assert_eq!((tar.status, tar.header("content-type").as_deref()), (200, Some("application/x-tar")));
    let mut files = Vec::new();
    for e in tar::Archive::new(&tar.body[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        match e.header().entry_type() {
            tar::EntryType::Regular => {
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                let rel = path.strip_prefix("src/").unwrap();
                assert_eq!(data, want(rel), "{path}");
                files.push(path);
            }
            tar::EntryType::Symlink => {
                assert_eq!(e.link_name().unwrap().unwrap().to_str(), Some("hello.txt"));
                files.push(format!("{path} -> hello.txt"));
            }
            _ => files.push(format!("{path}/")),
        }
    }
    assert_eq!(
        files,
        ["src/", "src/hello.txt", "src/link -> hello.txt", "src/sub/", "src/sub/dir/", "src/sub/dir/big.bin"]
    );
    let zip = get(&server, &format!("/api/v1/snapshots/latest/download?path={}&format=zip", s(&f.src)), t);
    assert_eq!((zip.status, zip.header("content-type").as_deref()), (200, Some("application/zip")));
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&zip.body)).unwrap();
    let mut names = Vec::new();
    for i in 0..archive.len() {
        let mut e = archive.by_index(i).unwrap();
        let name = e.name().unwrap().to_string();
        if e.is_file() && !name.ends_with("link") {
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            assert_eq!(data, want(name.strip_prefix("src/").unwrap()), "{name}");
        }
        names.push(name);
    }
    assert_eq!(names, ["src/", "src/hello.txt", "src/link", "src/sub/", "src/sub/dir/", "src/sub/dir/big.bin"]);
    // A client that asks for a download and reads nothing holds up no one else.
    let mut stalled = std::net::TcpStream::connect(server.url.trim_start_matches("http://")).unwrap();
    let req = format!(
        "GET /api/v1/snapshots/latest/download?path={} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        s(&f.src),
        f.read
    );
    std::io::Write::write_all(&mut stalled, req.as_bytes()).unwrap();
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(get(&server, "/api/v1/snapshots", t).status, 200);
        assert_eq!(
            get(&server, &format!("/api/v1/snapshots/latest/download?path={}", s(&big)), t).body.len(),
            3 * 1024 * 1024 + 17
        );
    }
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    drop(stalled);
    // A directory cannot come raw; an unknown path is 404.
    let dir_raw = get(&server, &format!("/api/v1/snapshots/latest/download?path={}&format=raw", s(&f.src)), t);
    assert_eq!(dir_raw.status, 400);
    let missing = get(&server, "/api/v1/snapshots/latest/download?path=/no/such/file", t);
    assert_eq!((missing.status, missing.json()["error"]["code"].as_str()), (404, Some("not_found")));
    // ls lists one directory.
    let ls = get(&server, &format!("/api/v1/snapshots/latest/ls?path={}", s(&f.src)), t).json();
    let names: Vec<&str> = ls.as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    let p = |n: &str| format!("{}/{n}", s(&f.src));
    assert_eq!(names, [p("hello.txt"), p("link"), p("sub")]);
}

#[test]
fn failed_tokens_are_rate_limited_per_address() {
    let f = fixture();
    let server = Server::start(&f.r, &["--token-file", s(&f.tokens), "--max-auth-failures", "3"]);
    // No token is no attempt: it does not count.
    for _ in 0..5 {
        assert_eq!(get(&server, "/api/v1/snapshots", None).status, 401);
    }
    for _ in 0..3 {
        assert_eq!(get(&server, "/api/v1/snapshots", Some("cairn_wrong")).status, 401);
    }
    let r = get(&server, "/api/v1/snapshots", Some("cairn_wrong"));
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (429, Some("rate_limited")));
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // The address is blocked for a while, even with a good token; /health still answers.
    assert_eq!(get(&server, "/api/v1/snapshots", Some(&f.read)).status, 429);
    assert_eq!(get(&server, "/health", None).status, 200);
}

#[test]
fn tls_with_a_self_signed_certificate_and_plain_http_refused_off_loopback() {
    let f = fixture();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (f.r.path("cert.pem"), f.r.path("key.pem"));
    write_file(&cert, ck.cert.pem().as_bytes());
    write_file(&key, ck.signing_key.serialize_pem().as_bytes());
    let server = Server::start(&f.r, &["--token-file", s(&f.tokens), "--tls-cert", s(&cert), "--tls-key", s(&key)]);
    assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);
    let url = server.url.replace("127.0.0.1", "localhost");
    let root = ureq::tls::Certificate::from_der(ck.cert.der()).to_owned();
    let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::new_with_certs(&[root])).build();
    let agent = ureq::Agent::new_with_config(
        ureq::config::Config::builder().http_status_as_error(false).tls_config(tls).build(),
    );
    let r = request(&agent, "GET", &format!("{url}/api/v1/snapshots"), Some(&f.read), None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = url.replace("https://", "http://");
    assert!(agent.get(format!("{plain}/health")).call().is_err(), "plain HTTP must not be served on the TLS port");
    // Off loopback without TLS: a usage error before anything listens, naming the way out.
    let out = f.r.expect_code(&["serve", "--listen", "0.0.0.0:0", "--token-file", s(&f.tokens)], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--insecure-http") && err.contains("--tls-cert"), "{err}");
    // A token file others can read is refused.
    let open = f.r.path("open-tokens");
    std::fs::copy(&f.tokens, &open).unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = f.r.expect_code(&["serve", "--listen", "127.0.0.1:0", "--token-file", s(&open)], 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
}

#[test]
fn a_backup_job_runs_in_the_background_and_metrics_parse() {
    let f = fixture();
    let data = f.r.mkdir("jobdata");
    write_file(&data.join("note.txt"), b"from the job\n");
    let cfg = f.r.path("cairn.toml");
    let profile = format!(
        "[repository.main]\nurl = {:?}\n\n[job.web]\nrepository = \"main\"\npaths = [{:?}]\nhost = \"job-host\"\n\n\
         [job.web.drill]\nverify_command = 'grep -rq \"from the job\" \"$CAIRN_DRILL_TARGET\"'\n",
        s(&f.r.repo),
        s(&data)
    );
    write_file(&cfg, profile.as_bytes());
    let server = Server::start(&f.r, &["--token-file", s(&f.tokens), "--config", s(&cfg)]);
    let agent = agent();
    let post = |token: &str, body: &str| {
        request(&agent, "POST", &format!("{}/api/v1/jobs", server.url), Some(token), Some(body))
    };
    assert_eq!(post(&f.operate, r#"{"kind":"backup","job":"nosuch"}"#).status, 404);
    let r = post(&f.operate, r#"{"kind":"backup","job":"web"}"#);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let job = loop {
        let j = get(&server, &format!("/api/v1/jobs/{id}"), Some(&f.read)).json();
        if j["state"] == "done" || j["state"] == "failed" {
            break j;
        }
        assert!(Instant::now() < deadline, "the job did not finish: {j}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        (&job["state"], &job["kind"], &job["job"], &job["exit_code"]),
        (&"done".into(), &"backup".into(), &"web".into(), &0.into()),
        "{job}"
    );
    let snap_id = job["result"][0]["snapshot_id"].as_str().unwrap().to_string();
    let list = get(&server, "/api/v1/jobs", Some(&f.read)).json();
    assert_eq!(list[0]["id"], id);
    // The new snapshot is listed and readable through the server (its index was synced).
    let snaps = get(&server, "/api/v1/snapshots?host=job-host", Some(&f.read)).json();
    assert_eq!(
        snaps.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect::<Vec<_>>(),
        [snap_id.as_str()]
    );
    let note = get(&server, &format!("/api/v1/snapshots/{snap_id}/download?path={}/note.txt", s(&data)), Some(&f.read));
    assert_eq!(note.body, b"from the job\n");
    // A check job (operate) too; the result is `check --json`'s document.
    let r = post(&f.operate, r#"{"kind":"check"}"#);
    assert_eq!(r.status, 202);
    let cid = r.json()["id"].as_u64().unwrap();
    let check = loop {
        let j = get(&server, &format!("/api/v1/jobs/{cid}"), Some(&f.read)).json();
        if j["state"] == "done" || j["state"] == "failed" {
            break j;
        }
        assert!(Instant::now() < deadline, "the check did not finish: {j}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(check["state"], "done", "{check}");
    // A drill (operate) of the job's snapshot: restored into a scratch directory and compared, in the server.
    assert_eq!(post(&f.operate, r#"{"kind":"drill","verify_command":"true"}"#).status, 400, "no command via the API");
    let r = post(&f.operate, &format!(r#"{{"kind":"drill","snapshot":"{snap_id}"}}"#));
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let did = r.json()["id"].as_u64().unwrap();
    let drill = loop {
        let j = get(&server, &format!("/api/v1/jobs/{did}"), Some(&f.read)).json();
        if j["state"] == "done" || j["state"] == "failed" {
            break j;
        }
        assert!(Instant::now() < deadline, "the drill did not finish: {j}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!((&drill["state"], &drill["result"]["verdict"]), (&"done".into(), &"passed".into()), "{drill}");
    // Forget by policy fields and prune (admin): each runs as its command and ends done.
    let admin = |path: &str, body: &str| {
        let r = request(&agent, "POST", &format!("{}{path}", server.url), Some(&f.admin), Some(body));
        assert_eq!(r.status, 202, "{path}: {}", String::from_utf8_lossy(&r.body));
        let id = r.json()["id"].as_u64().unwrap();
        loop {
            let j = get(&server, &format!("/api/v1/jobs/{id}"), Some(&f.read)).json();
            if j["state"] == "done" || j["state"] == "failed" {
                break j;
            }
            assert!(Instant::now() < deadline, "{path} did not finish: {j}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let forget = admin("/api/v1/forget", r#"{"keep_last":1,"host":"job-host"}"#);
    assert_eq!((&forget["state"], &forget["kind"]), (&"done".into(), &"forget".into()), "{forget}");
    assert!(forget["result"].is_object(), "{forget}");
    let prune = admin("/api/v1/prune", "{}");
    assert_eq!((&prune["state"], &prune["kind"]), (&"done".into(), &"prune".into()), "{prune}");
    assert_eq!(get(&server, "/api/v1/snapshots", Some(&f.read)).json().as_array().unwrap().len(), 2);
    // A drill of the job: its newest snapshot, with the verify command of its `[job.web.drill]` (from the profile).
    let r = post(&f.operate, r#"{"kind":"drill","job":"web"}"#);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let jid = r.json()["id"].as_u64().unwrap();
    let job_drill = loop {
        let j = get(&server, &format!("/api/v1/jobs/{jid}"), Some(&f.read)).json();
        if j["state"] == "done" || j["state"] == "failed" {
            break j;
        }
        assert!(Instant::now() < deadline, "the drill did not finish: {j}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!((&job_drill["state"], &job_drill["job"]), (&"done".into(), &"web".into()), "{job_drill}");
    let text = job_drill["result"].to_string();
    assert!(text.contains(&snap_id) && text.contains("grep -rq"), "the job's snapshot and command: {text}");
    let ledger = get(&server, "/api/v1/ledger?kind=drill", Some(&f.read)).json();
    assert_eq!(ledger.as_array().map(Vec::len), Some(2), "{ledger}");
    // /metrics: Prometheus text with the job's series and the server's gauges.
    let m = get(&server, "/metrics", Some(&f.read));
    assert_eq!(m.status, 200);
    let text = String::from_utf8(m.body.clone()).unwrap();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(series.starts_with("cairn_"), "{line}");
        value.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
    }
    assert!(text.contains("cairn_snapshots{command=\"serve\""), "{text}");
    assert!(text.contains("command=\"check\""), "{text}");
    let file = f.r.path("served.prom");
    write_file(&file, text.as_bytes());
    if let Some(bin) = crate::servers::promtool() {
        let out = std::process::Command::new(bin)
            .args(["check", "metrics"])
            .stdin(std::fs::File::open(&file).unwrap())
            .output()
            .unwrap();
        assert!(out.status.success(), "promtool: {}", String::from_utf8_lossy(&out.stderr));
    }
    for body in [job.to_string(), check.to_string(), drill.to_string(), text] {
        assert!(!body.contains(&f.r.password), "the password must never be in a response");
    }
}

#[test]
fn a_symlink_planted_at_the_token_file_is_neither_written_through_nor_read() {
    // Another local user plants a link where the token file will be: `token new` must not append a
    // token line to the file it points at, and `serve` must not take its tokens from there.
    let r = Repo::new();
    let victim = r.path("victim");
    std::fs::write(&victim, b"untouched\n").unwrap();
    std::fs::set_permissions(&victim, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let link = r.path("tokens");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let out = r.expect_code(&["serve", "token", "new", "--role", "admin", "--name", "x", "--token-file", s(&link)], 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("token file"), "{out:?}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"untouched\n");
    // A real token file behind the link is still not read through it.
    std::fs::remove_file(&victim).unwrap();
    let real = r.path("real-tokens");
    token(&r, &real, "admin");
    std::fs::rename(&real, &victim).unwrap();
    let out = r.expect_code(&["serve", "--listen", "127.0.0.1:0", "--token-file", s(&link)], 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("token file"), "{out:?}");
}

/// `n` bytes that do not compress (xorshift from `seed`).
fn noise(n: usize, mut x: u64) -> Vec<u8> {
    let mut v = vec![0u8; n];
    for b in v.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    v
}

/// A connection that asks for `path` with `token` and then reads `read` bytes (0: nothing) and is kept open.
fn open_download(server: &Server, path: &Path, token: &str, read: usize) -> std::net::TcpStream {
    let mut c = std::net::TcpStream::connect(server.url.trim_start_matches("http://")).unwrap();
    let req = format!(
        "GET /api/v1/snapshots/latest/download?path={} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n",
        s(path)
    );
    std::io::Write::write_all(&mut c, req.as_bytes()).unwrap();
    if read > 0 {
        c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut b = vec![0u8; read];
        c.read_exact(&mut b).unwrap();
    }
    c
}

/// With one worker (`--workers 1`), clients that start a 24 MiB download and read nothing (their downloads stop on
/// a full socket) hold no worker: listings and whole downloads of others still complete. A download that kept its
/// worker permit while it waits for its client would stall every other request here.
#[test]
fn clients_that_stop_reading_hold_no_worker_and_others_complete() {
    let f = fixture();
    let large = f.src.join("large.bin");
    write_file(&large, &noise(24 << 20, 0x9e37_79b9_7f4a_7c15));
    f.r.backup(&[&f.src], &[]);
    let server = Server::start(&f.r, &["--token-file", s(&f.tokens), "--workers", "1"]);
    let stalled: Vec<_> = (0..3).map(|_| open_download(&server, &large, &f.read, 0)).collect();
    // Give them time to fill their socket buffers and block.
    std::thread::sleep(Duration::from_secs(3));
    let agent = ureq::Agent::new_with_config(
        ureq::config::Config::builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build(),
    );
    let t = Some(f.read.as_str());
    let big = f.src.join("sub/dir/big.bin");
    let url = |p: &str| format!("{}{p}", server.url);
    for _ in 0..3 {
        let ls = request(&agent, "GET", &url(&format!("/api/v1/snapshots/latest/ls?path={}", s(&f.src))), t, None);
        assert_eq!(ls.status, 200);
        let got = request(&agent, "GET", &url(&format!("/api/v1/snapshots/latest/download?path={}", s(&big))), t, None);
        assert_eq!((got.status, got.body == std::fs::read(&big).unwrap()), (200, true));
    }
    // And the large file itself comes whole to a client that reads it.
    let got = request(&agent, "GET", &url(&format!("/api/v1/snapshots/latest/download?path={}", s(&large))), t, None);
    assert_eq!((got.status, got.body.len(), got.body == std::fs::read(&large).unwrap()), (200, 24 << 20, true));
    drop(stalled);
}

/// With one worker, twenty clients that start a 24 MiB download, read 16 KiB (or nothing) and hang up leave the
/// worker free: a download afterwards comes whole. A hung-up download that never gave its permit back would leave
/// no worker, and this download would never come (the agent gives up after 120 s).
#[test]
fn downloads_whose_clients_hang_up_give_their_worker_back() {
    let f = fixture();
    let large = f.src.join("large.bin");
    write_file(&large, &noise(24 << 20, 0x2545_f491_4f6c_dd1d));
    f.r.backup(&[&f.src], &[]);
    let server = Server::start(&f.r, &["--token-file", s(&f.tokens), "--workers", "1"]);
    for i in 0..20 {
        drop(open_download(&server, &large, &f.read, if i % 2 == 0 { 16 * 1024 } else { 0 }));
    }
    let agent = ureq::Agent::new_with_config(
        ureq::config::Config::builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build(),
    );
    let url = format!("{}/api/v1/snapshots/latest/download?path={}", server.url, s(&large));
    let got = request(&agent, "GET", &url, Some(&f.read), None);
    assert_eq!((got.status, got.body.len(), got.body == std::fs::read(&large).unwrap()), (200, 24 << 20, true));
}

/// One response read off a kept-open connection: status line and headers (lower-cased names), and the body of its
/// `Content-Length`.
fn read_response(c: &mut std::net::TcpStream) -> (String, Vec<u8>) {
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(c.read(&mut byte).unwrap(), 1, "connection closed inside a response head: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    let len =
        head.lines().find_map(|l| l.strip_prefix("content-length: ")).map_or(0, |v| v.trim().parse::<usize>().unwrap());
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).unwrap();
    (head, body)
}

/// A request refused before its body was read is answered with `Connection: close` and the connection is closed:
/// the rest of that body must never be read as a next request, and a client that kept the connection for its next
/// request would find it gone (a POST, which no client retries). A request whose body was read, or one without a
/// body, keeps its connection for the next request.
#[test]
fn a_request_refused_before_its_body_was_read_closes_its_connection() {
    let f = fixture();
    let server = Server::start(&f.r, &["--token-file", s(&f.tokens)]);
    let addr = server.url.trim_start_matches("http://").to_string();
    let post = |token: Option<&str>, body: &str| {
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        format!(
            "POST /api/v1/forget HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{body}"
        )
    };
    // The head alone, the body not yet sent: 401, then closed. Also when the body comes in the same packet (the
    // server read it into its buffer, but nothing consumed it), and for a read token on an admin route (403).
    for (token, body, status) in [(None, "", "401"), (None, "{}", "401"), (Some(f.read.as_str()), "{}", "403")] {
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        std::io::Write::write_all(&mut c, post(token, body).as_bytes()).unwrap();
        let (head, _) = read_response(&mut c);
        assert!(head.starts_with(&format!("http/1.1 {status} ")), "{head}");
        assert!(head.contains("\r\nconnection: close\r\n"), "{token:?} {body:?}: {head}");
        let mut rest = Vec::new();
        assert_eq!(c.read_to_end(&mut rest).unwrap(), 0, "the server must close the connection");
    }
    // Read bodies and bodiless requests keep the connection: an admin's forget with a bad body (the body read,
    // then 400), then two GETs, all on one connection.
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(&mut c, post(Some(&f.admin), "{}").as_bytes()).unwrap();
    let (head, body) = read_response(&mut c);
    assert!(head.starts_with("http/1.1 400 "), "{head} {}", String::from_utf8_lossy(&body));
    assert!(!head.contains("connection: close"), "{head}");
    for _ in 0..2 {
        std::io::Write::write_all(&mut c, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let (head, body) = read_response(&mut c);
        assert!(head.starts_with("http/1.1 200 ") && !head.contains("connection: close"), "{head}");
        assert_eq!(body, br#"{"status":"ok"}"#);
    }
}
