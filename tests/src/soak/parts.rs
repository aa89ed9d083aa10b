//! The parts the soak kills, so it owns them: a PostgreSQL cluster of its own (`initdb` and
//! `pg_ctl` on a free port in a temporary directory), a Temporal dev server whose state is a file
//! in that directory (it survives a restart), and the worker and webhook binaries, restarted by a
//! watchdog whenever they are down. Everything is stopped when dropped, also when the run fails.

use anyhow::{bail, Context};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tracing::{info, warn};

/// `initdb` refuses to run as root; the cluster then belongs to the `postgres` account.
fn as_postgres_user(program: &Path) -> Command {
    let is_root = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false);
    if is_root {
        let mut command = Command::new("setpriv");
        command.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn postgres_bin(name: &str) -> anyhow::Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL server binaries are missing (/usr/lib/postgresql)")?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin").join(name)))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop().with_context(|| format!("no {name} under /usr/lib/postgresql/*/bin"))
}

/// A PostgreSQL cluster of the soak's own, trust auth, on `port`.
pub struct OwnPostgres {
    pub port: u16,
    data: PathBuf,
    pg_ctl: PathBuf,
    log: PathBuf,
}

impl OwnPostgres {
    pub fn init(dir: &Path, port: u16) -> anyhow::Result<Self> {
        let data = dir.join("pgdata");
        let log = dir.join("postgres.log");
        let owned = dir.join("pg");
        std::fs::create_dir_all(&owned)?;
        // The cluster's files belong to the account that runs it.
        let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir).status();
        if !status.is_ok_and(|s| s.success()) {
            warn!("cannot chown the soak directory to postgres (not root?); initdb runs as this user");
        }
        let out = as_postgres_user(&postgres_bin("initdb")?)
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .output()
            .context("cannot run initdb")?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let pg = Self { port, data, pg_ctl: postgres_bin("pg_ctl")?, log };
        Ok(pg)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn start(&self) -> anyhow::Result<()> {
        // fsync off: only an operating system crash needs it, and the soak's crashes are process
        // crashes (immediate shutdown), after which the kernel still holds every write.
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c max_connections=200 -c fsync=off -c full_page_writes=off",
            self.port,
            self.data.parent().unwrap().join("pg").display()
        );
        let out = as_postgres_user(&self.pg_ctl)
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(&self.data)
            .args(["-l"])
            .arg(&self.log)
            .args(["-o", &options])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .context("cannot run pg_ctl start")?;
        if !out.status.success() {
            bail!("pg_ctl start failed: {} (see {})", String::from_utf8_lossy(&out.stderr), self.log.display());
        }
        Ok(())
    }

    /// `immediate`: every backend killed at once, recovery at the next start (a crash);
    /// `fast` for the clean stop at the end.
    pub fn stop(&self, mode: &str) -> anyhow::Result<()> {
        let out = as_postgres_user(&self.pg_ctl)
            .args(["stop", "-w", "-t", "60", "-m", mode, "-D"])
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .context("cannot run pg_ctl stop")?;
        if !out.status.success() {
            bail!("pg_ctl stop failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.stop("immediate");
    }
}

/// A Temporal dev server of the soak's own, its state in a SQLite file so a restart keeps every
/// workflow and schedule.
pub struct OwnTemporal {
    pub port: u16,
    http_port: u16,
    metrics_port: u16,
    db_file: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl OwnTemporal {
    pub fn new(dir: &Path, port: u16, http_port: u16, metrics_port: u16) -> Self {
        Self { port, http_port, metrics_port, db_file: dir.join("temporal.db"), log: dir.join("temporal.log"), child: None }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub async fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let child = Command::new("temporal")
            .args(["server", "start-dev", "--headless", "--ip", "127.0.0.1"])
            .args(["--port", &self.port.to_string(), "--http-port", &self.http_port.to_string()])
            .args(["--metrics-port", &self.metrics_port.to_string()])
            .arg("--db-filename")
            .arg(&self.db_file)
            .args(["--log-level", "error", "--search-attribute", "ClientId=Keyword", "--search-attribute", "PaymentId=Keyword"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("the temporal CLI must be on PATH (make up installs it)")?;
        self.child = Some(child);
        self.wait_until_serving().await
    }

    /// Until the server answers for the namespace: its port opens well before it serves.
    async fn wait_until_serving(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let described = tokio::process::Command::new("temporal")
                .args(["operator", "namespace", "describe", "--namespace", "default", "--address", &self.address()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await
                .is_ok_and(|s| s.success());
            if described {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("the Temporal dev server exited ({status}); see {}", self.log.display());
            }
            if Instant::now() > deadline {
                bail!("the Temporal dev server did not serve within 120 s; see {}", self.log.display());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnTemporal {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A binary the soak SIGKILLs; a watchdog starts it again whenever it is not running (killed by
/// the soak, or exited on its own, e.g. when Temporal or Postgres was away at its start).
#[derive(Clone)]
pub struct Supervised {
    inner: Arc<Mutex<SupervisedState>>,
}

struct SupervisedState {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// Not restarted before this (a killed process stays down a moment, as after a real crash).
    down_until: Instant,
    stopped: bool,
    pub starts: u32,
    pub kills: u32,
    /// Exits the soak did not cause (a crash of its own, or giving up while a dependency was away).
    pub own_exits: u32,
}

impl Supervised {
    pub fn new(name: &str, program: PathBuf, args: &[&str], env: Vec<(String, String)>, dir: &Path) -> Self {
        Self {
            inner: Arc::new(Mutex::new(SupervisedState {
                name: name.to_owned(),
                program,
                args: args.iter().map(|a| a.to_string()).collect(),
                env,
                cwd: dir.to_owned(),
                log: dir.join(format!("{name}.log")),
                child: None,
                down_until: Instant::now(),
                stopped: false,
                starts: 0,
                kills: 0,
                own_exits: 0,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SupervisedState> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts the process if it is down and may come back; the watchdog calls this every tick.
    pub fn ensure_running(&self) -> anyhow::Result<()> {
        let mut s = self.lock();
        if let Some(child) = s.child.as_mut() {
            match child.try_wait()? {
                None => return Ok(()),
                Some(status) => {
                    warn!(part = %s.name, %status, "exited on its own; restarting");
                    s.own_exits += 1;
                    s.child = None;
                    s.down_until = Instant::now() + Duration::from_secs(1);
                }
            }
        }
        if s.stopped || Instant::now() < s.down_until {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&s.log)?;
        // The soak's directory as working directory: the binaries read `.env` from there
        // upwards, and the stack's `.env` (its ports, its database) must not apply.
        let child = Command::new(&s.program)
            .args(&s.args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(s.env.iter().cloned())
            .current_dir(&s.cwd)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", s.program.display()))?;
        s.starts += 1;
        info!(part = %s.name, pid = child.id(), "started");
        s.child = Some(child);
        Ok(())
    }

    /// SIGKILL; the watchdog starts it again after `down_for`. False when it was not running.
    pub fn kill(&self, down_for: Duration) -> bool {
        let mut s = self.lock();
        let Some(mut child) = s.child.take() else { return false };
        let _ = child.kill();
        let _ = child.wait();
        s.kills += 1;
        s.down_until = Instant::now() + down_for;
        info!(part = %s.name, "SIGKILLed");
        true
    }

    pub fn is_running(&self) -> bool {
        self.lock().child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    pub fn counts(&self) -> (u32, u32, u32) {
        let s = self.lock();
        (s.starts, s.kills, s.own_exits)
    }

    /// SIGTERM and a short wait, then SIGKILL; not restarted any more.
    pub fn stop(&self) {
        let mut s = self.lock();
        s.stopped = true;
        if let Some(mut child) = s.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            for _ in 0..50 {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SupervisedState {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
