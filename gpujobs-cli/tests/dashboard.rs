//! `gpujobs dashboard` with the real binaries on a private Redis (3 partitions): every
//! page, the search against what was submitted (paging through every partition), a
//! restart keeping the history, the security rules (CSP, escaping, read-only without a
//! token, refused cross-site and unauthenticated actions, no unprotected public bind),
//! a retry from the dashboard, `.npy` downloads, and the banner while Redis is down.
//! The browser-driven check of the same pages is `scripts/check-dashboard.sh`.

#![allow(clippy::unwrap_used)]
// tests: a panic is the failure report
// The job that dead-letters and then succeeds on retry reads an input from a file://
// object that appears after it failed: the build CI tests (`GPUJOBS_FEATURES`) has it.
#![cfg(feature = "objects")]

mod common;

use common::{stderr, stdout};
use gpujobs_queue::testkit::RedisServer;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "test-token-0123456789abcdef";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gpujobs"));
    c.env("GPUJOBS_PARTITIONS", "3").env("RUST_LOG", "warn");
    c
}

fn run(url: &str, args: &[&str]) -> Output {
    let o = bin()
        .args(args)
        .env("GPUJOBS_REDIS_URL", url)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "gpujobs {args:?}: {}\n{}",
        stdout(&o),
        stderr(&o)
    );
    o
}

fn spawn(url: &str, args: &[&str], token: Option<&str>) -> common::Proc {
    let mut c = bin();
    c.args(args)
        .env("GPUJOBS_REDIS_URL", url)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(t) = token {
        c.env("GPUJOBS_DASHBOARD_TOKEN", t);
    }
    common::Proc(c.spawn().unwrap())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A response: status, head (lower-cased names), body.
struct Res {
    status: u16,
    head: String,
    body: String,
    raw: Vec<u8>,
}

impl Res {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_string())
        })
    }
}

/// One HTTP/1.1 request (Connection: close), `extra` header lines included as given.
fn http(port: u16, method: &str, path: &str, extra: &[String], body: &str) -> Res {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !extra
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("host:"))
    {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for h in extra {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body_raw = raw[split + 4..].to_vec();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    Res {
        status,
        head,
        body: String::from_utf8_lossy(&body_raw).into_owned(),
        raw: body_raw,
    }
}

fn get(port: u16, path: &str) -> Res {
    http(port, "GET", path, &[], "")
}

fn wait_up(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the dashboard did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every job id linked from a results table (`/jobs/<id>` links, decoded).
fn linked_ids(body: &str) -> Vec<String> {
    let table = body.split("id=\"results\"").nth(1).unwrap_or("");
    table
        .split("href=\"/jobs/")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(decode)
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Follows the "Next page" links from `first`, collecting every listed id.
fn all_pages(port: u16, first: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut path = first.to_string();
    for _ in 0..100 {
        let r = get(port, &path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        ids.extend(linked_ids(&r.body));
        match r
            .body
            .split("id=\"next\" href=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
        {
            Some(next) => path = next.replace("&amp;", "&"),
            None => return ids,
        }
    }
    panic!("more than 100 pages");
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn dashboard_pages_search_security_and_retry() {
    let mut server = RedisServer::start(false);
    let url = server.url();
    let _sched = spawn(&url, &["scheduler"], None);
    let dir = common::tmp();
    let objects = format!("file://{}/", dir.path().display());
    let _worker = spawn(&url, &["worker", "--objects-allow", &objects], None);
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut dash = spawn(&url, &["dashboard", "--addr", &addr], Some(TOKEN));
    wait_up(port);

    let ids = |o: &Output| -> Vec<String> { stdout(o).lines().map(str::to_string).collect() };
    let adds = ids(&run(
        &url,
        &["submit", "vector-add", "--len", "16", "--count", "37"],
    ));
    let muls = ids(&run(
        &url,
        &[
            "submit", "matmul", "--m", "8", "--n", "8", "--k", "8", "--count", "4",
        ],
    ));
    let mut waited = vec!["wait"];
    waited.extend(adds.iter().chain(&muls).map(String::as_str));
    run(&url, &waited);
    assert_eq!((adds.len(), muls.len()), (37, 4));
    // A job whose id is an XSS payload, and one that dead-letters: its input object
    // does not exist yet.
    let jobs = dir.path().join("jobs.jsonl");
    let xss = "<script>alert(1)</script>";
    std::fs::write(
        &jobs,
        format!(
            "{{\"id\":\"{xss}\",\"kind\":\"vector-add\",\"payload\":{{\"a\":{{\"shape\":[2],\"data\":[1,2]}},\"b\":{{\"shape\":[2],\"data\":[3,4]}}}}}}\n"
        ),
    )
    .unwrap();
    run(&url, &["submit", "--file", jobs.to_str().unwrap()]);
    run(&url, &["wait", xss]);
    let dead = "flaky-1".to_string();
    let later = dir.path().join("a.npy");
    std::fs::write(
        &jobs,
        format!(
            "{{\"id\":\"{dead}\",\"kind\":\"matmul\",\"max_attempts\":1,\"payload\":{{\"a\":{{\"shape\":[2,2],\"url\":\"{objects}a.npy\"}},\"b\":{{\"shape\":[2,2],\"data\":[1,0,0,1]}}}}}}\n"
        ),
    )
    .unwrap();
    run(&url, &["submit", "--file", jobs.to_str().unwrap()]);
    wait_for("the dead letter to be indexed", || {
        let ended =
            |s: &str| linked_ids(&get(port, &format!("/jobs?state={s}")).body).contains(&dead);
        ended("dead") || ended("failed")
    });
    wait_for("every success to be indexed", || {
        get(port, "/jobs?state=succeeded&limit=500")
            .body
            .matches("class=\"state succeeded\"")
            .count()
            == 42
    });

    // Overview: the counters Redis holds, and the security headers.
    let o = get(port, "/");
    assert_eq!(o.status, 200);
    let csp = o.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(
        o.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert!(
        o.body.contains("<b>43</b><span>submitted</span>"),
        "{}",
        o.body
    );
    assert!(
        o.body.contains("<b>42</b><span>succeeded</span>"),
        "{}",
        o.body
    );
    assert!(
        o.body.contains("<b>1</b><span>dead letters</span>"),
        "{}",
        o.body
    );
    assert!(!o.body.contains("test-token"), "the token leaked");
    // Another name pointed at 127.0.0.1 (DNS rebinding) is refused; localhost is not.
    assert_eq!(
        http(port, "GET", "/", &["Host: evil.example".into()], "").status,
        421
    );
    assert_eq!(
        http(port, "GET", "/", &[format!("Host: localhost:{port}")], "").status,
        200
    );

    // Search: each kind's ids exactly, paged 5 at a time over 3 partitions.
    let listed = all_pages(port, "/jobs?kind=vector-add&state=succeeded&limit=5");
    let mut want: BTreeSet<String> = adds.iter().cloned().collect();
    want.insert(xss.to_string());
    assert_eq!(
        listed.len(),
        want.len(),
        "a job listed twice or missing: {listed:?}"
    );
    assert_eq!(listed.iter().cloned().collect::<BTreeSet<_>>(), want);
    let listed = all_pages(port, "/jobs?kind=matmul&limit=3");
    let mut want: BTreeSet<String> = muls.iter().cloned().collect();
    want.insert(dead.clone());
    assert_eq!(listed.iter().cloned().collect::<BTreeSet<_>>(), want);
    let failed = get(port, &format!("/jobs/{dead}"));
    assert!(failed.body.contains("id=\"retry\""), "{}", failed.body);
    assert_eq!(
        linked_ids(&get(port, &format!("/jobs?id={}", adds[3])).body),
        vec![adds[3].clone()]
    );
    assert!(linked_ids(&get(port, "/jobs?kind=nothing-like-this").body).is_empty());
    assert_eq!(get(port, "/jobs?state=bogus").status, 400);
    assert_eq!(get(port, "/jobs?from=yesterday").status, 400);
    assert_eq!(get(port, "/jobs/never-submitted").status, 404);
    assert_eq!(get(port, "/no/such/page").status, 404);

    // The XSS id renders as text everywhere.
    let enc = "%3Cscript%3Ealert%281%29%3C%2Fscript%3E";
    let page = get(port, &format!("/jobs/{enc}"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script>alert"), "unescaped id");
    assert!(
        !get(port, "/jobs?state=succeeded&limit=500")
            .body
            .contains("<script>alert")
    );

    // A detail page: placement, timings, the output as .npy that parses.
    let d = get(port, &format!("/jobs/{}", muls[0]));
    assert!(
        d.body.contains("id=\"placement\"") && d.body.contains("id=\"waterfall\""),
        "{}",
        d.body
    );
    let npy = get(port, &format!("/jobs/{}/outputs/c.npy", muls[0]));
    assert_eq!(npy.status, 200);
    let arr =
        gpujobs_core::io::npy::parse(&npy.raw, "c.npy", &gpujobs_core::BufferPool::new(1 << 20))
            .unwrap();
    assert_eq!(arr.shape, vec![8, 8]);
    let xnpy = get(port, &format!("/jobs/{enc}/outputs/c.npy"));
    let x =
        gpujobs_core::io::npy::parse(&xnpy.raw, "c.npy", &gpujobs_core::BufferPool::new(1 << 20))
            .unwrap();
    assert_eq!(&x.data[..], &[4.0, 6.0]);

    // Actions: refused without a session, refused cross-site even with the token.
    let retry = format!("/jobs/{dead}/retry");
    assert_eq!(http(port, "POST", &retry, &[], "").status, 401);
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let forged = http(
        port,
        "POST",
        &retry,
        &[bearer.clone(), "Sec-Fetch-Site: cross-site".into()],
        "",
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    let forged = http(
        port,
        "POST",
        &retry,
        &[bearer.clone(), "Origin: http://evil.example".into()],
        "",
    );
    assert_eq!(forged.status, 403);
    let wrong = http(port, "POST", "/login", &[], "token=not-the-token");
    assert_eq!(wrong.status, 401);
    let login = http(
        port,
        "POST",
        "/login",
        &["Sec-Fetch-Site: same-origin".into()],
        &format!("token={TOKEN}"),
    );
    assert_eq!(login.status, 303);
    let cookie = login.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = format!("Cookie: {}", cookie.split(';').next().unwrap());
    // The missing input appears; the retry from the dashboard makes the job succeed.
    common::f32_npy(&later, &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let ok = http(
        port,
        "POST",
        &retry,
        &[session.clone(), "Sec-Fetch-Site: same-origin".into()],
        "",
    );
    assert_eq!(ok.status, 303, "{}", ok.body);
    run(&url, &["wait", &dead]);
    wait_for("the retried job to be indexed as succeeded", || {
        linked_ids(&get(port, "/jobs?state=succeeded&kind=matmul").body).contains(&dead)
    });
    for s in ["dead", "failed"] {
        assert!(!linked_ids(&get(port, &format!("/jobs?state={s}")).body).contains(&dead));
    }
    let c = get(port, &format!("/jobs/{dead}/outputs/c.npy"));
    let c = gpujobs_core::io::npy::parse(&c.raw, "c.npy", &gpujobs_core::BufferPool::new(1 << 20))
        .unwrap();
    assert_eq!(&c.data[..], &[1.0, 2.0, 3.0, 4.0]);

    // History survives a restart of the dashboard (it lives in Redis).
    drop(dash);
    dash = spawn(&url, &["dashboard", "--addr", &addr], None);
    wait_up(port);
    let again = all_pages(port, "/jobs?kind=matmul&state=succeeded&limit=2");
    let mut want: BTreeSet<String> = muls.iter().cloned().collect();
    want.insert(dead.clone());
    assert_eq!(again.iter().cloned().collect::<BTreeSet<_>>(), want);
    // Without a token: read-only, actions refused even same-site.
    let ro = http(
        port,
        "POST",
        &retry,
        &["Sec-Fetch-Site: same-origin".into()],
        "",
    );
    assert_eq!(ro.status, 403);
    assert!(ro.body.contains("read-only"), "{}", ro.body);

    // Redis down: a banner (503), not a crash; back when Redis is.
    server.kill();
    let down = get(port, "/");
    assert_eq!(down.status, 503);
    assert!(
        down.body.contains("class=\"banner\"") && down.body.contains("Redis cannot be read"),
        "{}",
        down.body
    );
    server.restart();
    wait_for("the dashboard to read Redis again", || {
        get(port, "/workers").status == 200
    });
    drop(dash);
}

#[test]
fn a_public_address_needs_a_token() {
    let server = RedisServer::start(false);
    let o = bin()
        .args(["dashboard", "--addr", "0.0.0.0:0"])
        .env("GPUJOBS_REDIS_URL", server.url())
        .env_remove("GPUJOBS_DASHBOARD_TOKEN")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("without an access token"),
        "{}",
        stderr(&o)
    );
    let o = bin()
        .args(["dashboard", "--addr", "127.0.0.1:0"])
        .env("GPUJOBS_REDIS_URL", server.url())
        .env("GPUJOBS_DASHBOARD_TOKEN", "short")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("too short"), "{}", stderr(&o));
}
