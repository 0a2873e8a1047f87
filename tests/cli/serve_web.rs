//! The web page of `cairn serve` in a real browser (docs/api.md, "Web page"): Debian's `chromium`, headless, driven
//! through `chromedriver` with WebDriver JSON over HTTP from this test (a small HTTP/1.1 client below; no Node). It
//! loads the page, is refused with a wrong token, signs in, sees both snapshots, clicks into directories, sees a file
//! named like an HTML tag shown as text, downloads a file and compares its bytes with the source, and writes a
//! screenshot to `$CAIRN_TEST_OUTPUT` (default: cargo's target tmp dir) as `serve-web-screenshot.png`.
//!
//! Without chromium or chromedriver the test prints why and skips, unless `CAIRN_TEST_SERVERS` is set (./test.sh, CI:
//! .ci/servers installs both), where that is a failure.

use crate::common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The WebDriver element key (W3C WebDriver, "Elements").
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// A file name that would become an element if the page ever parsed names as HTML.
const HOSTILE: &str = "<img src=x onerror=\"window.__pwned=1\">.txt";

// ---- a minimal HTTP/1.1 client (one request per connection) -----------------------------------------------------

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn http(method: &str, addr: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Response {
    let mut conn = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    conn.set_read_timeout(Some(Duration::from_secs(120))).expect("read timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or_default();
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes())
        .and_then(|()| conn.write_all(body))
        .unwrap_or_else(|e| panic!("send to {addr}: {e}"));
    // Read by the length the server gives: a server may keep the connection open after the answer.
    let mut r = BufReader::new(conn);
    let mut status_line = String::new();
    r.read_line(&mut status_line).unwrap_or_else(|e| panic!("read from {addr}{path}: {e}"));
    let status = status_line.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| {
        panic!("{method} {addr}{path}: bad status line {status_line:?}");
    });
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap_or_else(|e| panic!("read from {addr}{path}: {e}"));
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut resp = Response { status, headers, body: Vec::new() };
    let chunked = resp.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let length = resp.header("content-length").and_then(|v| v.parse::<usize>().ok());
    if chunked {
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap_or_else(|e| panic!("read from {addr}{path}: {e}"));
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16).expect("chunk size");
            let mut chunk = vec![0u8; size + 2];
            r.read_exact(&mut chunk).unwrap_or_else(|e| panic!("read from {addr}{path}: {e}"));
            if size == 0 {
                break;
            }
            resp.body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(n) = length {
        resp.body.resize(n, 0);
        r.read_exact(&mut resp.body).unwrap_or_else(|e| panic!("read from {addr}{path}: {e}"));
    } else {
        r.read_to_end(&mut resp.body).unwrap_or_else(|e| panic!("read from {addr}{path}: {e}"));
    }
    resp
}

// ---- WebDriver --------------------------------------------------------------------------------------------------

struct Driver {
    addr: String,
    process: Child,
}

impl Driver {
    fn start(dir: &Path) -> Driver {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("chromedriver.log")).expect("chromedriver log");
        let process = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start chromedriver: {e}"));
        let d = Driver { addr, process };
        wait_until(Duration::from_secs(30), "chromedriver ready", || {
            TcpStream::connect(&d.addr).is_ok()
                && serde_json::from_slice::<Value>(&http("GET", &d.addr, "/status", &[], None).body)
                    .is_ok_and(|v| v["value"]["ready"] == json!(true))
        });
        d
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let bytes = body.map(|b| serde_json::to_vec(&b).expect("json"));
        let r = http(method, &self.addr, path, &[], bytes.as_deref());
        let v: Value = serde_json::from_slice(&r.body).unwrap_or_else(|e| {
            panic!("WebDriver {method} {path}: not JSON ({e}): {}", String::from_utf8_lossy(&r.body))
        });
        assert_eq!(r.status, 200, "WebDriver {method} {path} failed: {v}");
        v["value"].clone()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl<'a> Session<'a> {
    fn new(driver: &'a Driver, profile: &Path, downloads: &Path) -> Session<'a> {
        let mut options = json!({
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,1600", format!("--user-data-dir={}", s(profile)),
            ],
            "prefs": {
                "download.default_directory": s(downloads),
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
                "safebrowsing.enabled": false,
            },
        });
        if Path::new("/usr/bin/chromium").exists() {
            options["binary"] = json!("/usr/bin/chromium");
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}});
        let v = driver.call("POST", "/session", Some(caps));
        let id = v["sessionId"].as_str().unwrap_or_else(|| panic!("no session id in {v}")).to_string();
        let session = Session { driver, id };
        // Headless Chromium saves downloads only where told to (the prefs above are the older way to say it).
        session.call(
            "POST",
            "goog/cdp/execute",
            json!({"cmd": "Browser.setDownloadBehavior", "params": {"behavior": "allow", "downloadPath": s(downloads)}}),
        );
        session
    }

    fn call(&self, method: &str, what: &str, body: Value) -> Value {
        let body = if method == "GET" { None } else { Some(body) };
        self.driver.call(method, &format!("/session/{}/{what}", self.id), body)
    }

    fn goto(&self, url: &str) {
        self.call("POST", "url", json!({ "url": url }));
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page and returns its value.
    fn js(&self, script: &str, args: Value) -> Value {
        self.call("POST", "execute/sync", json!({"script": script, "args": args}))
    }

    /// Waits until `script` returns true.
    fn wait_for(&self, what: &str, script: &str, args: Value) {
        wait_until(Duration::from_secs(30), what, || self.js(script, args.clone()) == json!(true));
    }

    /// The element `script` returns (it must return one).
    fn element(&self, what: &str, script: &str, args: Value) -> String {
        let v = self.js(script, args);
        v[ELEMENT].as_str().unwrap_or_else(|| panic!("{what}: no such element ({v})")).to_string()
    }

    fn css(&self, selector: &str) -> String {
        let v = self.call("POST", "element", json!({"using": "css selector", "value": selector}));
        v[ELEMENT].as_str().unwrap_or_else(|| panic!("{selector}: {v}")).to_string()
    }

    fn click(&self, element: &str) {
        self.call("POST", &format!("element/{element}/click"), json!({}));
    }

    fn type_text(&self, element: &str, text: &str) {
        self.call("POST", &format!("element/{element}/clear"), json!({}));
        self.call("POST", &format!("element/{element}/value"), json!({ "text": text }));
    }

    fn text(&self, element: &str) -> String {
        self.call("GET", &format!("element/{element}/text"), Value::Null).as_str().unwrap_or_default().to_string()
    }

    fn screenshot(&self) -> Vec<u8> {
        let b64 = self.call("GET", "screenshot", Value::Null);
        base64_decode(b64.as_str().expect("screenshot is base64 text"))
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = http("DELETE", &self.driver.addr, &format!("/session/{}", self.id), &[], None);
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, d)| n | (u32::from(*d) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

fn wait_until(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---- the server -------------------------------------------------------------------------------------------------

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cairn serve --listen 127.0.0.1:0 --token-file F` on `repo`, once it printed `listening on http://ADDR`.
fn serve(repo: &Repo, tokens: &Path) -> Server {
    let mut cmd = repo.command(&["serve", "--listen", "127.0.0.1:0", "--token-file", s(tokens)]);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run cairn serve: {e}"));
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    let addr = loop {
        let mut line = String::new();
        if err.read_line(&mut line).expect("read serve's stderr") == 0 {
            let status = child.wait().expect("wait");
            panic!("cairn serve exited ({status}) before listening:\n{seen}");
        }
        seen.push_str(&line);
        if let Some(url) = line.trim().strip_prefix("listening on http://") {
            break url.to_string();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    Server { child, addr }
}

/// Where the screenshot goes: `$CAIRN_TEST_OUTPUT`, else cargo's target tmp dir.
fn output_dir() -> PathBuf {
    let dir = std::env::var_os("CAIRN_TEST_OUTPUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {dir:?}: {e}"));
    dir
}

/// True when chromium and chromedriver are installed; false (after saying why) when the test may skip; a panic
/// when they are missing where the test must run.
fn browser_available() -> bool {
    let found = |name: &str| {
        Command::new(name)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let missing: Vec<&str> = ["chromium", "chromedriver"].into_iter().filter(|n| !found(n)).collect();
    if missing.is_empty() {
        return true;
    }
    let why =
        format!("{} not installed (apt-get install chromium chromium-driver; .ci/servers does)", missing.join(" and "));
    assert!(std::env::var_os("CAIRN_TEST_SERVERS").is_none(), "CAIRN_TEST_SERVERS is set but {why}");
    eprintln!("note: skipping the web page's browser test: {why}");
    false
}

// ---- the test ---------------------------------------------------------------------------------------------------

#[test]
fn the_web_page_lists_browses_and_downloads_in_headless_chromium() {
    if !browser_available() {
        return;
    }
    let repo = Repo::new();
    let src = repo.mkdir("src");
    let report = random_bytes(14, 300 * KIB + 17);
    write_file(&src.join("docs/report.bin"), b"first version");
    write_file(&src.join("docs/notes.txt"), b"notes\n");
    write_file(&src.join(HOSTILE), b"just a file\n");
    repo.backup(&[&src], &["--tag", "web"]);
    write_file(&src.join("docs/report.bin"), &report);
    repo.backup(&[&src], &[]);
    let snapshots = repo.snapshots();
    assert_eq!(snapshots.len(), 2);
    let newest = string(&snapshots[1], "id");

    let tokens = repo.path("tokens");
    let out = repo.ok(&["serve", "token", "new", "--role", "read", "--name", "web", "--token-file", s(&tokens)]);
    let token = out.trim().to_string();
    assert!(token.starts_with("cairn_"), "token new printed {out:?}");
    let server = serve(&repo, &tokens);
    let base = format!("http://{}", server.addr);

    // The page and its script are served without a token, under the policy that forbids inline script.
    let page = http("GET", &server.addr, "/", &[], None);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = page.header("content-security-policy").unwrap_or_else(|| panic!("no CSP on /: {:?}", page.headers));
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    let js = http("GET", &server.addr, "/assets/app.js", &[], None);
    assert_eq!((js.status, js.header("content-type")), (200, Some("text/javascript; charset=utf-8")));
    assert_eq!(http("GET", &server.addr, "/assets/nope.js", &[], None).status, 404);

    let profile = repo.mkdir("chromium-profile");
    let downloads = repo.mkdir("downloads");
    let driver = Driver::start(&repo.base);
    let web = Session::new(&driver, &profile, &downloads);
    web.goto(&format!("{base}/"));
    web.wait_for("the sign-in form", "return document.body.dataset.state === 'login'", json!([]));

    // A wrong token is refused and the form comes back with the reason.
    let input = web.css("#token-input");
    web.type_text(&input, "cairn_not-a-token");
    web.click(&web.css("#token-submit"));
    web.wait_for(
        "the refusal",
        "return document.body.dataset.state === 'login' && document.getElementById('login-error').textContent.includes('401')",
        json!([]),
    );
    assert_eq!(web.js("return sessionStorage.getItem('cairn.token')", json!([])), Value::Null);

    // The right one: the page loads, both snapshots are listed and on the timeline.
    web.type_text(&input, &token);
    web.click(&web.css("#token-submit"));
    web.wait_for("the loaded page", "return document.body.dataset.state === 'ready'", json!([]));
    let rows = web.js("return [...document.querySelectorAll('tr.snapshot')].map(r => r.dataset.id)", json!([]));
    let mut want: Vec<Value> = snapshots.iter().map(|s| s["id"].clone()).collect();
    want.reverse();
    assert_eq!(rows, Value::Array(want), "the snapshot table, newest first");
    let dots = web.js("return document.querySelectorAll('#timeline-svg circle.snap').length", json!([]));
    assert_eq!(dots, json!(2));
    let state = web.js("return document.querySelector('#status .status-group .badge').textContent", json!([]));
    assert_eq!(state, json!("OK"));
    assert_eq!(web.js("return sessionStorage.getItem('cairn.token')", json!([])), json!(token));

    // Browse the newest snapshot: click from / down to the source directory, one directory at a time.
    web.click(&web.css(&format!("tr.snapshot[data-id='{newest}'] button.browse")));
    let mut dir = String::new();
    for part in src.components().skip(1) {
        dir = format!("{dir}/{}", part.as_os_str().to_str().expect("UTF-8 temp path"));
        let listed = "const l = document.getElementById('listing'); return l.dataset.state === 'ready'";
        web.wait_for("a listing", listed, json!([]));
        let button = web.element(
            &dir,
            "return [...document.querySelectorAll('#listing button.open-dir')].find(b => b.dataset.path === arguments[0]) || null",
            json!([dir]),
        );
        web.click(&button);
        web.wait_for(
            &format!("the listing of {dir}"),
            "const l = document.getElementById('listing'); return l.dataset.path === arguments[0] && l.dataset.state === 'ready'",
            json!([dir]),
        );
    }
    // A name that looks like HTML is shown as that text: no element made of it, no handler run.
    let hostile_path = format!("{dir}/{HOSTILE}");
    let shown = web.js(
        "const r = [...document.querySelectorAll('#listing tr.entry')].find(r => r.dataset.path === arguments[0]);
         return r ? r.querySelector('.file-name').textContent : null",
        json!([hostile_path]),
    );
    assert_eq!(shown, json!(HOSTILE));
    assert_eq!(web.js("return document.querySelectorAll('#listing img, img').length", json!([])), json!(0));
    assert_eq!(web.js("return window.__pwned === undefined", json!([])), json!(true));

    // Into docs/, then download report.bin: the saved file has the source's bytes.
    let docs = format!("{dir}/docs");
    web.click(&web.element(
        "docs",
        "return [...document.querySelectorAll('#listing button.open-dir')].find(b => b.dataset.path === arguments[0]) || null",
        json!([docs]),
    ));
    web.wait_for(
        "the listing of docs",
        "const l = document.getElementById('listing'); return l.dataset.path === arguments[0] && l.dataset.state === 'ready'",
        json!([docs]),
    );
    let names = web
        .js("return [...document.querySelectorAll('#listing tr.entry .file-name')].map(e => e.textContent)", json!([]));
    assert_eq!(names, json!(["notes.txt", "report.bin"]));
    let file = format!("{docs}/report.bin");
    web.click(&web.element(
        "the download button",
        "return [...document.querySelectorAll('#listing button.download')].find(b => b.dataset.path === arguments[0]) || null",
        json!([file]),
    ));
    web.wait_for("the download", "return document.body.dataset.downloaded === arguments[0]", json!([file]));
    let saved = downloads.join("report.bin");
    wait_until(Duration::from_secs(30), "report.bin in the download directory", || {
        std::fs::metadata(&saved).is_ok_and(|m| m.len() == report.len() as u64)
            && !std::fs::read_dir(&downloads)
                .expect("downloads")
                .any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".crdownload")))
    });
    assert!(std::fs::read(&saved).expect("the downloaded file") == report, "downloaded bytes differ from the source");
    let message = web.text(&web.css("#message"));
    assert_eq!(message, format!("Downloaded {file} ({} bytes).", report.len()));

    web.js("window.scrollTo(0, 0)", json!([]));
    let png = web.screenshot();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot is not a PNG");
    let shot = output_dir().join("serve-web-screenshot.png");
    std::fs::write(&shot, &png).unwrap_or_else(|e| panic!("write {shot:?}: {e}"));
    eprintln!("screenshot: {}", shot.display());
}
