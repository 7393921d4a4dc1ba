//! Foundation figures for BENCHMARKS.md: start-to-listening time of `oxidot demo` on an
//! existing database, idle RSS, binary size, and login throughput with argon2id.
//!
//! Run: `cargo bench --bench foundation` (builds the release binary; prints figures, asserts
//! nothing). Servers listen on 127.0.0.1 only and are stopped by PID.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(dir: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_oxidot"))
        .arg("demo")
        .current_dir(dir)
        .env("OXIDOT_PORT", port.to_string())
        .env("OXIDOT_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Polls the port with raw TCP + a minimal HTTP request, so the probe itself costs little.
fn wait_listening(port: u16, deadline: Duration) -> Option<Duration> {
    use std::io::{Read, Write};
    let started = Instant::now();
    while started.elapsed() < deadline {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ =
                stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut reply = String::new();
            let _ = stream.read_to_string(&mut reply);
            if reply.starts_with("HTTP/1.1 200") {
                return Some(started.elapsed());
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    None
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn csrf_field(html: &str) -> String {
    let marker = r#"name="csrfmiddlewaretoken" value=""#;
    let start = html.find(marker).unwrap() + marker.len();
    html[start..start + 43].to_owned()
}

fn warm_up(base: &str) {
    let client = reqwest::blocking::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client
        .get(format!("{base}/accounts/login/"))
        .send()
        .unwrap();
    let token = csrf_field(&page.text().unwrap());
    let response = client
        .post(format!("{base}/accounts/login/"))
        .form(&[
            ("csrfmiddlewaretoken", token.as_str()),
            ("username", "admin"),
            ("password", "admin123"),
        ])
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
}

fn main() {
    let binary = env!("CARGO_BIN_EXE_oxidot");
    let size = std::fs::metadata(binary).unwrap().len();
    println!("binary: {binary}");
    println!(
        "binary size: {:.1} MiB ({size} bytes)",
        size as f64 / 1048576.0
    );

    let dir = tempfile::tempdir().unwrap();
    // First start creates the database and loads the fixtures; not measured.
    let port = free_port();
    let child = start(dir.path(), port);
    wait_listening(port, Duration::from_secs(30)).expect("first start");
    stop(child);

    let mut starts = Vec::new();
    for _ in 0..15 {
        let port = free_port();
        let begun = Instant::now();
        let child = start(dir.path(), port);
        wait_listening(port, Duration::from_secs(30)).expect("restart");
        starts.push(begun.elapsed());
        stop(child);
    }
    starts.sort();
    println!(
        "start to listening (existing database, {} runs): median {:.1} ms, min {:.1} ms, max {:.1} ms",
        starts.len(),
        percentile(&starts, 0.5).as_secs_f64() * 1000.0,
        starts[0].as_secs_f64() * 1000.0,
        starts[starts.len() - 1].as_secs_f64() * 1000.0
    );

    let port = free_port();
    let child = start(dir.path(), port);
    wait_listening(port, Duration::from_secs(30)).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    println!(
        "idle RSS after start: {:.1} MiB",
        rss_kib(child.id()) as f64 / 1024.0
    );

    let base = format!("http://127.0.0.1:{port}");
    // The first login upgrades admin's pbkdf2 hash to argon2id; measure steady state after it.
    warm_up(&base);
    let concurrency = 16;
    let duration = Duration::from_secs(10);
    let stop_flag = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let base = base.clone();
            let stop_flag = stop_flag.clone();
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                while !stop_flag.load(Ordering::Relaxed) {
                    // A new browser each time: fetch the form (CSRF cookie), then post it.
                    let client = reqwest::blocking::Client::builder()
                        .cookie_store(true)
                        .redirect(reqwest::redirect::Policy::none())
                        .build()
                        .unwrap();
                    let begun = Instant::now();
                    let token = match client.get(format!("{base}/accounts/login/")).send() {
                        Ok(page) => csrf_field(&page.text().unwrap_or_default()),
                        Err(_) => {
                            errors += 1;
                            continue;
                        }
                    };
                    let response = client
                        .post(format!("{base}/accounts/login/"))
                        .form(&[
                            ("csrfmiddlewaretoken", token.as_str()),
                            ("username", "admin"),
                            ("password", "admin123"),
                        ])
                        .send();
                    match response {
                        Ok(response) if response.status().as_u16() == 303 => {
                            latencies.push(begun.elapsed())
                        }
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let begun = Instant::now();
    let mut peak_rss = 0;
    while begun.elapsed() < duration {
        std::thread::sleep(Duration::from_millis(200));
        peak_rss = peak_rss.max(rss_kib(child.id()));
    }
    stop_flag.store(true, Ordering::Relaxed);
    let elapsed = begun.elapsed();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (mut l, e) = worker.join().unwrap();
        latencies.append(&mut l);
        errors += e;
    }
    latencies.sort();
    println!(
        "login flow (GET form + POST; argon2id m=9216 KiB, t=4, p=1; session durable before the answer), \
         concurrency {concurrency}, {:.0} s: {} logins, {:.0} logins/s, p50 {:.1} ms, p99 {:.1} ms, {errors} errors, peak RSS {:.1} MiB",
        elapsed.as_secs_f64(),
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        peak_rss as f64 / 1024.0
    );
    stop(child);
}
