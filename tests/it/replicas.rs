//! Two read-only replicas over one S3 storage behind nginx (Debian's package, installed by
//! `.ci/run`): a version another process publishes is served by both within the watch interval,
//! cursors and pinned URLs begun on one replica continue on the other, and killing a replica
//! under load fails no client request.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::objects::{free_port, moto};
use crate::s3::{Site, get_json, rows, wait_for};
use crate::support::skipped;

fn nginx_program() -> Option<String> {
    if let Some(p) = std::env::var_os("QANAT_NGINX") {
        return Some(p.to_string_lossy().into_owned());
    }
    let found = Command::new("sh")
        .args(["-c", "command -v nginx || ls /usr/sbin/nginx"])
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&found.stdout)
        .lines()
        .next()?
        .trim()
        .to_string();
    (found.status.success() && !path.is_empty()).then_some(path)
}

/// nginx in the foreground, stopped (SIGTERM, so its workers go too) when dropped.
struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.0.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let _ = self.0.wait();
    }
}

/// A balancer over the replicas: passive health (a replica that fails once is left out for
/// 10 s) and idempotent requests retried on the next replica when one fails to answer.
fn nginx_conf(dir: &std::path::Path, listen: u16, replicas: &[u16]) -> String {
    let servers: String = replicas
        .iter()
        .map(|p| format!("    server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;\n"))
        .collect();
    let d = dir.display();
    format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 512; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           upstream qanat {{\n{servers}    keepalive 16;\n  }}\n\
           server {{\n    listen 127.0.0.1:{listen};\n    location / {{\n      proxy_pass http://qanat;\n\
               proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n\
               proxy_set_header Host $http_host;\n      proxy_connect_timeout 1s;\n\
               proxy_next_upstream error timeout http_502 http_503;\n      proxy_next_upstream_tries 3;\n\
               add_header X-Replica $upstream_addr always;\n    }}\n  }}\n}}\n"
    )
}

fn codes(page: &serde_json::Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_string())
        .collect()
}

/// The path and query of a `links.next` URL, to ask another server.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    rest[rest.find('/').unwrap()..].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_behind_nginx_serve_one_storage() {
    let Some(moto) = moto() else { return };
    let Some(nginx) = nginx_program() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "nginx is missing, and CI must run the replica test (.ci/run installs it)"
        );
        skipped("no nginx: the replica test did not run");
        return;
    };
    let site = Site::new(moto, "replicas").await;
    site.write("k", &rows(30));
    assert!(site.ingest("k", &[]).status.success());
    let (a, base_a) = site.serve(&["--read-only"]).await;
    let (_b, base_b) = site.serve(&["--read-only"]).await;
    let port_of = |base: &str| base.rsplit(':').next().unwrap().parse::<u16>().unwrap();

    let conf_dir = tempfile::tempdir().unwrap();
    let lb_port = free_port();
    let conf = conf_dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        nginx_conf(
            conf_dir.path(),
            lb_port,
            &[port_of(&base_a), port_of(&base_b)],
        ),
    )
    .unwrap();
    let _nginx = Nginx(
        Command::new(&nginx)
            .arg("-p")
            .arg(conf_dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(conf_dir.path().join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let lb = format!("http://127.0.0.1:{lb_port}");
    wait_for(&format!("{lb}/api/datasets/k/data"), |v| {
        v["meta"]["total"] == 30
    })
    .await;
    // Both replicas answer through the balancer.
    let mut seen = std::collections::BTreeSet::new();
    for n in 1..=8 {
        let r = reqwest::get(format!("{lb}/api/datasets/k/data?page_size={n}"))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        seen.insert(r.headers()["x-replica"].to_str().unwrap().to_string());
    }
    assert_eq!(seen.len(), 2, "{seen:?}");

    // A cursor begun on A continues on B, and back; a pinned URL reads alike on both.
    let (_, first) = get_json(&format!("{base_a}/api/datasets/k/data?page_size=4")).await;
    let v1 = first["meta"]["version"].as_str().unwrap().to_string();
    let next = path_of(first["links"]["next"].as_str().unwrap());
    let (status, second) = get_json(&format!("{base_b}{next}")).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(codes(&second), ["00004", "00005", "00006", "00007"]);
    let next = path_of(second["links"]["next"].as_str().unwrap());

    // Another process publishes; both replicas serve it within the watch interval (200 ms).
    site.write("k", &rows(50));
    assert!(site.ingest("k", &[]).status.success());
    let published = Instant::now();
    for base in [&base_a, &base_b] {
        wait_for(&format!("{base}/api/datasets/k/data"), |v| {
            v["meta"]["total"] == 50
        })
        .await;
    }
    assert!(
        published.elapsed() < Duration::from_secs(5),
        "served after {:?}",
        published.elapsed()
    );
    // The cursor begun before goes on reading its version, on A again.
    let (status, third) = get_json(&format!("{base_a}{next}")).await;
    assert_eq!(status, 200, "{third}");
    assert_eq!(codes(&third), ["00008", "00009", "00010", "00011"]);
    assert_eq!(third["meta"]["total"], 30);
    for base in [&base_a, &base_b] {
        let (status, pinned) = get_json(&format!("{base}/api/datasets/k@{v1}/data")).await;
        assert_eq!(
            (status, &pinned["meta"]["total"]),
            (200, &serde_json::json!(30))
        );
    }

    // A load loop through the balancer; replica A is killed in the middle of it.
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let loops: Vec<_> = (0..4)
        .map(|c| {
            let (stop, failed, answered, lb) =
                (stop.clone(), failed.clone(), answered.clone(), lb.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut n = c;
                while !stop.load(Ordering::Relaxed) {
                    n += 4;
                    // Each a different page: computed, not replayed.
                    let url = format!("{lb}/api/datasets/k/data?page_size={}", n % 50 + 1);
                    let ok = match client.get(&url).send().await {
                        Ok(r) if r.status() == 200 => r.text().await.is_ok_and(|t| {
                            serde_json::from_str::<serde_json::Value>(&t)
                                .is_ok_and(|v| v["meta"]["total"] == 50)
                        }),
                        _ => false,
                    };
                    let counter = if ok { &answered } else { &failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_kill = answered.load(Ordering::Relaxed);
    drop(a); // SIGKILL
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.await.unwrap();
    }
    let after_kill = answered.load(Ordering::Relaxed) - before_kill;
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no client request failed"
    );
    assert!(
        before_kill > 20 && after_kill > 20,
        "{before_kill} then {after_kill}"
    );
    let r = reqwest::get(format!("{lb}/api/datasets/k/data?page_size=3"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-replica"],
        &format!("127.0.0.1:{}", port_of(&base_b))
    );
}
