//! Real remote-write receivers for the tests, on loopback ports in temp
//! dirs: VictoriaMetrics (Debian `victoria-metrics`) and Prometheus with its
//! remote-write receiver (Debian `prometheus`). Stopped on drop.
#![allow(dead_code)]

use crate::common::{request, HttpResponse};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral loopback port")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    VictoriaMetrics,
    Prometheus,
}

/// One receiver process; `stop` and `start` keep its port and data.
pub struct Receiver {
    pub kind: Kind,
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Prometheus' `--web.config.file` (TLS): readiness is then only the
    /// port accepting connections.
    web_config: Option<PathBuf>,
    /// Prometheus' own configuration file (scrape jobs); none by default.
    prometheus_config: String,
}

impl Receiver {
    pub fn start(kind: Kind) -> Receiver {
        Self::start_with(kind, None)
    }

    /// Prometheus serving HTTPS with this exporter-toolkit web config.
    pub fn start_with(kind: Kind, web_config: Option<PathBuf>) -> Receiver {
        Self::start_full(kind, web_config, "scrape_configs: []\n")
    }

    /// Prometheus with this configuration file (say, scrape jobs of its
    /// own), its remote-write receiver on too.
    pub fn start_prometheus(config: &str) -> Receiver {
        Self::start_full(Kind::Prometheus, None, config)
    }

    fn start_full(kind: Kind, web_config: Option<PathBuf>, prometheus_config: &str) -> Receiver {
        let mut r = Receiver {
            kind,
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
            web_config,
            prometheus_config: prometheus_config.to_owned(),
        };
        r.restart();
        r
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The remote-write URL (the same path on both).
    pub fn write_url(&self) -> String {
        let scheme = if self.web_config.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}/api/v1/write", self.addr())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the process (again) on the same port and data.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "receiver already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("receiver.log"))
            .unwrap();
        let mut cmd = match self.kind {
            Kind::VictoriaMetrics => {
                let mut c = Command::new("victoria-metrics");
                c.arg(format!("-storageDataPath={}", self.data_dir().display()))
                    .arg(format!("-httpListenAddr={}", self.addr()))
                    .arg("-loggerLevel=WARN")
                    // Keep every raw sample: the tests count them.
                    .arg("-dedup.minScrapeInterval=0s")
                    // Queries see what was just written, at the time asked.
                    .arg("-search.latencyOffset=0s")
                    .arg("-search.disableCache");
                c
            }
            Kind::Prometheus => {
                let config = self.dir.path().join("prometheus.yml");
                std::fs::write(&config, &self.prometheus_config).unwrap();
                let mut c = Command::new("prometheus");
                c.arg(format!("--config.file={}", config.display()))
                    .arg(format!("--storage.tsdb.path={}", self.data_dir().display()))
                    .arg(format!("--web.listen-address={}", self.addr()))
                    .arg("--web.enable-remote-write-receiver")
                    .arg("--log.level=warn");
                if let Some(web) = &self.web_config {
                    c.arg(format!("--web.config.file={}", web.display()));
                }
                c
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let what = match self.kind {
            Kind::VictoriaMetrics => {
                "victoria-metrics: install the Debian package victoria-metrics"
            }
            Kind::Prometheus => "prometheus: install the Debian package prometheus",
        };
        self.child = Some(cmd.spawn().expect(what));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = match self.kind {
                Kind::VictoriaMetrics => "/health",
                Kind::Prometheus => "/-/ready",
            };
            let up = TcpStream::connect(self.addr()).is_ok();
            if up && (self.web_config.is_some() || self.get(ready).status == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{:?} not ready within 60 s; log:\n{}",
                self.kind,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the process (SIGTERM, then waits); data stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("receiver.log")).unwrap_or_default()
    }

    /// A GET, its body de-chunked (VictoriaMetrics streams exports).
    pub fn get(&self, path: &str) -> HttpResponse {
        let mut resp = request(&self.addr(), "GET", path, &[]);
        if resp
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            resp.body = dechunk(&resp.body);
        }
        resp
    }

    /// A query at `time` (Unix seconds) through the Prometheus HTTP API
    /// (both kinds answer it): each series' labels and its samples as
    /// (timestamp ms, value), one for an instant vector, the raw samples of
    /// the window for a range selector such as `x[1m]`.
    pub fn query(&self, expr: &str, time: f64) -> Vec<(serde_json::Value, Vec<(i64, f64)>)> {
        if self.kind == Kind::VictoriaMetrics {
            self.get("/internal/force_flush");
        }
        let resp = self.get(&format!(
            "/api/v1/query?query={}&time={time:.3}",
            crate::common::percent_encode(expr)
        ));
        assert_eq!(resp.status, 200, "{expr}: {}", resp.text());
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        let point = |p: &serde_json::Value| {
            let ts = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
            (ts, p[1].as_str().unwrap().parse::<f64>().unwrap())
        };
        v["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|series| {
                let samples = match series["values"].as_array() {
                    Some(values) => values.iter().map(point).collect(),
                    None => vec![point(&series["value"])],
                };
                (series["metric"].clone(), samples)
            })
            .collect()
    }

    /// The series `expr` selects at `time`, each as its labels without the
    /// ones a scraper adds (`job`, `instance`, and vitals' `app`), with its
    /// value: what two TSDBs fed from one application must agree on.
    pub fn series_at(&self, expr: &str, time: f64) -> std::collections::BTreeMap<String, f64> {
        self.query(expr, time)
            .into_iter()
            .map(|(metric, samples)| {
                let labels: std::collections::BTreeMap<&str, &str> = metric
                    .as_object()
                    .unwrap()
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "job" | "instance" | "app"))
                    .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
                    .collect();
                (format!("{labels:?}"), samples[0].1)
            })
            .collect()
    }

    /// Every raw sample of the series `selector` selects, as
    /// (labels, [(timestamp ms, value)]) sorted by time.
    pub fn raw_samples(&self, selector: &str) -> Vec<(serde_json::Value, Vec<(i64, f64)>)> {
        match self.kind {
            Kind::VictoriaMetrics => {
                // Make what was just written searchable.
                self.get("/internal/force_flush");
                let resp = self.get(&format!(
                    "/api/v1/export?match[]={}",
                    crate::common::percent_encode(selector)
                ));
                assert_eq!(resp.status, 200, "{}", resp.text());
                resp.text()
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|line| {
                        let v: serde_json::Value = serde_json::from_str(line).unwrap();
                        let ts = v["timestamps"].as_array().unwrap();
                        let vals = v["values"].as_array().unwrap();
                        let mut pairs: Vec<(i64, f64)> = ts
                            .iter()
                            .zip(vals)
                            .map(|(t, x)| (t.as_i64().unwrap(), x.as_f64().unwrap()))
                            .collect();
                        pairs.sort_by_key(|p| p.0);
                        (v["metric"].clone(), pairs)
                    })
                    .collect()
            }
            Kind::Prometheus => {
                let query = format!("{selector}[1h]");
                let resp = self.get(&format!(
                    "/api/v1/query?query={}",
                    crate::common::percent_encode(&query)
                ));
                assert_eq!(resp.status, 200, "{}", resp.text());
                let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
                v["data"]["result"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|series| {
                        let pairs = series["values"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|p| {
                                let ts = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                                (ts, p[1].as_str().unwrap().parse::<f64>().unwrap())
                            })
                            .collect();
                        (series["metric"].clone(), pairs)
                    })
                    .collect()
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .expect("chunk size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 2 + size + 2..];
    }
}
