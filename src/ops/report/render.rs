//! The report as people read it: plain text, and one self-contained HTML file (inline CSS, an SVG
//! timeline per group, no script and no network). `--json` is the report's serde form.

use super::{GroupTimeline, Report};
use crate::time::Time;
use crate::units::human_secs;
use std::fmt::Write;

fn rto_text(r: &Report) -> String {
    match r.rto_ms {
        Some(ms) => format!("RTO {}", human_secs((ms / 1000) as i64)),
        None => "RTO of each drill".into(),
    }
}

/// The text report: a heading, the overall verdict, then each section with its verdict, the
/// reasons it fails and its evidence.
pub fn text(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "cairn compliance report: repository {}", r.repository);
    let _ = writeln!(
        s,
        "period {} to {} (RPO {}, {})",
        r.since.to_rfc3339(),
        r.generated.to_rfc3339(),
        human_secs(r.rpo_secs),
        rto_text(r)
    );
    let _ = writeln!(s, "overall: {}", r.verdict.as_str());
    for sec in &r.sections {
        let _ = writeln!(s, "\n{} {}", sec.verdict.as_str(), sec.name);
        for why in &sec.reasons {
            let _ = writeln!(s, "  FAIL: {why}");
        }
        for line in &sec.evidence {
            let _ = writeln!(s, "  {line}");
        }
    }
    s
}

/// Escapes text for HTML content and attribute values.
pub fn escape(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}\
h1{font-size:1.4em}table{border-collapse:collapse}td,th{padding:.2em .8em;text-align:left}\
.verdict{font-weight:bold;padding:.1em .5em;border-radius:.3em;color:#fff}\
.PASS{background:#1a7f37}.FAIL{background:#cf222e}section{border:1px solid #ddd;border-radius:.4em;\
margin:1em 0;padding:.5em 1em}ul{margin:.3em 0}li.reason{color:#cf222e}pre{white-space:pre-wrap;margin:0}\
svg{background:#f6f8fa;border:1px solid #ddd}.legend span{margin-right:1.5em}";

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 84.0;

/// The x of `t` on a timeline from `from` to `to`.
fn x(t: Time, from: Time, to: Time) -> f64 {
    let span = (to.secs - from.secs).max(1) as f64;
    ((t.secs - from.secs) as f64 / span * WIDTH).clamp(0.0, WIDTH)
}

/// One group's timeline as SVG: snapshots (blue ticks), gaps past the RPO (red bands), drills
/// (triangles) and checks (squares), green when they passed and red when not.
fn svg(g: &GroupTimeline, from: Time, to: Time) -> String {
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"timeline of {}\">",
        escape(&g.name)
    );
    let _ = write!(s, "<line x1=\"0\" y1=\"35\" x2=\"{WIDTH}\" y2=\"35\" stroke=\"#999\"/>");
    let day = |t: Time| t.to_rfc3339().chars().take(10).collect::<String>();
    let _ = write!(
        s,
        "<text x=\"2\" y=\"80\" font-size=\"11\" fill=\"#555\">{}</text><text x=\"{}\" y=\"80\" font-size=\"11\" fill=\"#555\" text-anchor=\"end\">{}</text>",
        day(from),
        WIDTH - 2.0,
        day(to)
    );
    for gap in &g.gaps {
        let (a, b) = (x(gap.from, from, to), x(gap.to, from, to));
        let _ = write!(
            s,
            "<rect class=\"gap\" x=\"{a:.1}\" y=\"20\" width=\"{:.1}\" height=\"30\" fill=\"#cf222e\" opacity=\"0.3\"><title>gap {} to {}</title></rect>",
            (b - a).max(1.0),
            gap.from.to_rfc3339(),
            gap.to.to_rfc3339()
        );
    }
    for t in &g.snapshots {
        let _ = write!(
            s,
            "<line class=\"snapshot\" x1=\"{0:.1}\" y1=\"25\" x2=\"{0:.1}\" y2=\"45\" stroke=\"#0969da\" stroke-width=\"2\"><title>snapshot {1}</title></line>",
            x(*t, from, to),
            t.to_rfc3339()
        );
    }
    for d in &g.drills {
        let (cx, fill) = (x(d.time, from, to), if d.ok { "#1a7f37" } else { "#cf222e" });
        let _ = write!(
            s,
            "<polygon class=\"drill\" points=\"{:.1},4 {:.1},16 {:.1},16\" fill=\"{fill}\"><title>{} {}</title></polygon>",
            cx,
            cx - 6.0,
            cx + 6.0,
            d.time.to_rfc3339(),
            escape(&d.label)
        );
    }
    for c in &g.checks {
        let (cx, fill) = (x(c.time, from, to), if c.ok { "#1a7f37" } else { "#cf222e" });
        let _ = write!(
            s,
            "<rect class=\"check\" x=\"{:.1}\" y=\"52\" width=\"10\" height=\"10\" fill=\"{fill}\"><title>{} {}</title></rect>",
            cx - 5.0,
            c.time.to_rfc3339(),
            escape(&c.label)
        );
    }
    s.push_str("</svg>");
    s
}

/// The HTML report: one file, readable offline (no script, no external resource).
pub fn html(r: &Report) -> String {
    let mut s = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    let _ =
        write!(s, "<title>cairn compliance report {}</title><style>{CSS}</style></head><body>", escape(&r.repository));
    let _ = write!(
        s,
        "<h1>cairn compliance report</h1><p>repository <code>{}</code><br>period {} to {} (RPO {}, {})</p>",
        escape(&r.repository),
        r.since.to_rfc3339(),
        r.generated.to_rfc3339(),
        human_secs(r.rpo_secs),
        escape(&rto_text(r))
    );
    let v = r.verdict.as_str();
    let _ = write!(s, "<p id=\"overall\">overall: <span class=\"verdict {v}\">{v}</span></p><table>");
    for sec in &r.sections {
        let v = sec.verdict.as_str();
        let _ = write!(
            s,
            "<tr><th><a href=\"#{0}\">{0}</a></th><td><span class=\"verdict {v}\" id=\"verdict-{0}\">{v}</span></td></tr>",
            sec.name
        );
    }
    s.push_str("</table>");
    for sec in &r.sections {
        let v = sec.verdict.as_str();
        let _ = write!(s, "<section id=\"{0}\"><h2>{0} <span class=\"verdict {v}\">{v}</span></h2><ul>", sec.name);
        for why in &sec.reasons {
            let _ = write!(s, "<li class=\"reason\">FAIL: {}</li>", escape(why));
        }
        for line in &sec.evidence {
            let _ = write!(s, "<li><pre>{}</pre></li>", escape(line));
        }
        s.push_str("</ul></section>");
    }
    s.push_str(
        "<section id=\"timeline\"><h2>timeline</h2><p class=\"legend\"><span>| snapshot</span>\
<span>&#9650; drill</span><span>&#9632; check</span><span>red band: gap past the RPO</span>\
<span>green: passed, red: failed</span></p>",
    );
    if r.timeline.is_empty() {
        s.push_str("<p>no group</p>");
    }
    for g in &r.timeline {
        let _ = write!(s, "<h3>{}</h3>{}", escape(&g.name), svg(g, r.since, r.generated));
    }
    s.push_str("</section></body></html>\n");
    s
}
