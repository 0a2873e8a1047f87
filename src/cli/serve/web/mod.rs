//! The web page of `cairn serve` (docs/api.md, "Web page"): `index.html`, `app.css` and `app.js`, compiled into the
//! binary, served without authentication at `/` and `/assets/{file}` with a Content-Security-Policy that allows
//! nothing but this server (`default-src 'self'`, so no inline script, no other host). The page asks for a token and
//! calls the API with it; the files themselves hold no data. [`index`] and [`asset`] are the handlers the route
//! table (`super::routes`) mounts at `/` and `/assets/{file}`.

use axum::extract::Path;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// One file of the page, as served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asset {
    /// The name under `/assets/` (`index.html` is served at `/`).
    pub name: &'static str,
    /// The `Content-Type` header.
    pub content_type: &'static str,
    /// The bytes.
    pub body: &'static [u8],
}

/// The page itself, served at `/`.
pub const INDEX: Asset =
    Asset { name: "index.html", content_type: "text/html; charset=utf-8", body: include_bytes!("index.html") };

/// The files under `/assets/`.
pub const ASSETS: &[Asset] = &[
    Asset { name: "app.css", content_type: "text/css; charset=utf-8", body: include_bytes!("app.css") },
    Asset { name: "app.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("app.js") },
];

/// The Content-Security-Policy of every page response: scripts, styles, images and requests only from this
/// server, no inline script, no plugins, no framing, no `<base>`, no form posted anywhere.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; form-action 'none'";

/// The headers of every page response besides `Content-Type`, lower case.
pub const HEADERS: &[(&str, &str)] = &[
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-cache"),
];

/// The file of [`ASSETS`] named `name` (the `{file}` of `/assets/{file}`); `None` for any other name.
pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// `GET /`: the page.
pub async fn index() -> Response {
    respond(&INDEX)
}

/// `GET /assets/{file}`: a file of the page; 404 (the API's JSON error) for any other name.
pub async fn asset(Path(file): Path<String>) -> Response {
    match find(&file) {
        Some(a) => respond(a),
        None => super::routes::ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no asset {file:?}"))
            .into_response(),
    }
}

fn respond(a: &'static Asset) -> Response {
    let mut r = a.body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    for (name, value) in HEADERS {
        h.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(a: &Asset) -> &'static str {
        std::str::from_utf8(a.body).expect("the page's files are UTF-8")
    }

    #[test]
    fn only_the_page_s_own_files_are_assets() {
        assert_eq!(find("app.js").map(|a| a.content_type), Some("text/javascript; charset=utf-8"));
        assert_eq!(find("app.css").map(|a| a.content_type), Some("text/css; charset=utf-8"));
        for bad in ["", "index.html", "../Cargo.toml", "app.js/", "./app.js", "APP.JS", "mod.rs"] {
            assert_eq!(find(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_policy_allows_only_this_server() {
        assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'self';"));
        for weak in ["unsafe-inline", "unsafe-eval", "http:", "https:", "data:", "*"] {
            assert!(!CONTENT_SECURITY_POLICY.contains(weak), "{weak}");
        }
        assert!(HEADERS.contains(&("content-security-policy", CONTENT_SECURITY_POLICY)));
    }

    /// The page loads nothing from another host and has no inline script or handler (the policy would block them:
    /// this keeps the page working under it).
    #[test]
    fn the_page_has_no_inline_script_and_no_outside_reference() {
        let html = text(&INDEX);
        for (i, part) in html.split("<script").enumerate().skip(1) {
            let tag_end = part.find('>').unwrap_or_else(|| panic!("script tag {i} not closed"));
            assert!(part[..tag_end].contains("src=\"/assets/"), "script tag {i} has no local src");
            assert!(part[tag_end + 1..].starts_with("</script>"), "script tag {i} has an inline body");
        }
        let lower = html.to_ascii_lowercase();
        for bad in ["http:", "https:", "//cdn", " onload=", " onclick=", " onerror=", " style=", "javascript:"] {
            assert!(!lower.contains(bad), "index.html contains {bad:?}");
        }
        for a in ASSETS {
            let t = text(a).to_ascii_lowercase();
            for bad in ["https:", "@import", "url(http", "//cdn"] {
                assert!(!t.contains(bad), "{} contains {bad:?}", a.name);
            }
        }
    }

    /// Data reaches the page as text only: no HTML-parsing sinks in the script.
    #[test]
    fn the_script_never_parses_data_as_html() {
        let js = text(ASSETS.iter().find(|a| a.name == "app.js").expect("app.js"));
        for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
            assert!(!js.contains(sink), "app.js uses {sink}");
        }
    }
}
