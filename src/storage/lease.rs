//! One ingester per dataset across processes: a lease object beside the dataset's pointer
//! (`{id}/lease.json`), created only where none exists (`PutMode::Create`), renewed by its
//! holder while the ingest runs, and taken over once expired with a conditional update, so two
//! processes that find the same expired lease cannot both take it. An ingest checks it still
//! holds its lease before it publishes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::Storage;
use crate::error::{Error, Result};

pub const LEASE_FILE: &str = "lease.json";

/// What the lease object holds: who, until when, and the token that tells its holder from a
/// later holder on the same machine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Holder {
    host: String,
    pid: u32,
    /// What the process is doing (`qanat ingest`, `qanat serve`).
    what: String,
    token: String,
    /// Milliseconds since the Unix epoch.
    expires_ms: i64,
}

impl Holder {
    fn expired(&self, now_ms: i64) -> bool {
        self.expires_ms <= now_ms
    }

    /// A holder on this machine whose process is gone (killed before it could let go): its
    /// lease is stale before it expires. Where `/proc` does not exist, expiry alone tells.
    fn dead_here(&self) -> bool {
        self.host == host_name()
            && std::path::Path::new("/proc/self").exists()
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    fn describe(&self) -> String {
        let until = chrono::DateTime::from_timestamp_millis(self.expires_ms)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default();
        format!(
            "{} (process {} on {}; its lease runs until {until} unless renewed)",
            self.what, self.pid, self.host
        )
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A held lease: renewed in the background until released.
pub struct Lease {
    state: Arc<Renewal>,
    renewer: Option<tokio::task::JoinHandle<()>>,
    released: bool,
}

impl Storage {
    fn lease_path(&self, id: &str) -> Path {
        self.dataset_dir(id).clone().join(LEASE_FILE)
    }

    /// Takes the ingest lease of dataset (or feed) `id` for `ttl`, renewed every third of it
    /// until released. Held by another live process: [`Error::Busy`], naming it.
    pub async fn take_lease(&self, id: &str, ttl: Duration, what: &str) -> Result<Lease> {
        let path = self.lease_path(id);
        let token = format!(
            "{:016x}",
            xxhash_rust::xxh3::xxh3_64(
                format!(
                    "{}{:?}{}",
                    std::process::id(),
                    std::time::SystemTime::now(),
                    id
                )
                .as_bytes()
            )
        );
        let mut holder = Holder {
            host: host_name(),
            pid: std::process::id(),
            what: what.to_string(),
            token,
            expires_ms: 0,
        };
        // A few rounds: each lost race means another process moved first; look again.
        for _ in 0..4 {
            holder.expires_ms = now_ms() + ttl.as_millis() as i64;
            match self.put_lease(&path, &holder, PutMode::Create).await {
                Ok(seen) => return Ok(Lease::start(self, id, path, holder, ttl, seen)),
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            let (other, seen) = match self.store.get(&path).await {
                Ok(got) => {
                    let seen = UpdateVersion {
                        e_tag: got.meta.e_tag.clone(),
                        version: got.meta.version.clone(),
                    };
                    (
                        serde_json::from_slice::<Holder>(&got.bytes().await?).ok(),
                        seen,
                    )
                }
                // Released meanwhile: create it again.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            if let Some(other) = &other
                && !other.expired(now_ms())
                && !other.dead_here()
            {
                return Err(Error::Busy(format!(
                    "dataset `{id}` is being ingested by {}; it publishes when done, and this ingest is not needed (or try again once it has finished)",
                    other.describe()
                )));
            }
            // Expired, abandoned or unreadable: taken over, unless another process takes it
            // over first (then the update's precondition fails and the loop looks again).
            holder.expires_ms = now_ms() + ttl.as_millis() as i64;
            match self.put_lease(&path, &holder, PutMode::Update(seen)).await {
                Ok(seen) => return Ok(Lease::start(self, id, path, holder, ttl, seen)),
                Err(object_store::Error::Precondition { .. })
                | Err(object_store::Error::NotFound { .. }) => {}
                // A local filesystem has no conditional update: the stale lease is deleted
                // and created again, where only one creation can succeed.
                Err(object_store::Error::NotImplemented { .. }) => {
                    match self.store.delete(&path).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Busy(format!(
            "dataset `{id}`: other processes kept taking its ingest lease; try again"
        )))
    }

    async fn put_lease(
        &self,
        path: &Path,
        holder: &Holder,
        mode: PutMode,
    ) -> std::result::Result<UpdateVersion, object_store::Error> {
        let body = serde_json::to_vec_pretty(holder).expect("a lease serializes");
        let options = PutOptions {
            mode,
            ..Default::default()
        };
        let put = self
            .store
            .put_opts(path, PutPayload::from(Bytes::from(body)), options)
            .await?;
        Ok(UpdateVersion {
            e_tag: put.e_tag,
            version: put.version,
        })
    }
}

impl Lease {
    fn start(
        storage: &Storage,
        id: &str,
        path: Path,
        holder: Holder,
        ttl: Duration,
        seen: UpdateVersion,
    ) -> Lease {
        let state = Arc::new(Renewal {
            storage: storage.clone(),
            path,
            id: id.to_string(),
            holder,
            ttl,
            seen: Mutex::new(seen),
            lost: AtomicBool::new(false),
        });
        let renewing = Arc::clone(&state);
        let renewer = tokio::spawn(async move {
            loop {
                tokio::time::sleep(renewing.ttl / 3).await;
                if let Err(e) = renewing.renew().await {
                    tracing::warn!(dataset = %renewing.id, error = %e, "lease not renewed");
                }
                if renewing.lost() {
                    return;
                }
            }
        });
        Lease {
            state,
            renewer: Some(renewer),
            released: false,
        }
    }

    /// Before publishing: the lease is still this process's, renewed now for another `ttl`.
    /// Lost (taken over after this process stalled past its expiry): an error, and the caller
    /// publishes nothing.
    pub async fn confirm(&self) -> Result<()> {
        self.state.renew().await?;
        if self.state.lost() {
            return Err(Error::Busy(format!(
                "dataset `{}`: this ingest stalled past its lease and another process took the dataset over; nothing was published by this one",
                self.state.id
            )));
        }
        Ok(())
    }

    /// Lets go: the lease object is deleted if it is still this holder's.
    pub async fn release(mut self) {
        self.released = true;
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        if !self.state.lost() {
            self.state.release().await;
        }
    }
}

impl Drop for Lease {
    /// An ingest dropped on an error path or cancelled still lets go, in the background.
    fn drop(&mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        if !self.released
            && !self.state.lost()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let state = Arc::clone(&self.state);
            runtime.spawn(async move { state.release().await });
        }
    }
}

/// A lease's state, shared by its holder and the task that renews it.
struct Renewal {
    storage: Storage,
    path: Path,
    id: String,
    holder: Holder,
    ttl: Duration,
    /// The object's version as last written by this holder: a renewal is a conditional update
    /// against it, so a lease taken over meanwhile is never overwritten.
    seen: Mutex<UpdateVersion>,
    lost: AtomicBool,
}

impl Renewal {
    fn lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Deletes the lease object if it is still this holder's.
    async fn release(&self) {
        let ours = match self.storage.store.get(&self.path).await {
            Ok(got) => got
                .bytes()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<Holder>(&b).ok())
                .is_some_and(|h| h.token == self.holder.token),
            Err(_) => false,
        };
        if ours && let Err(e) = self.storage.store.delete(&self.path).await {
            tracing::warn!(lease = %self.path, error = %e, "lease not released; it expires on its own");
        }
    }

    /// Pushes the expiry one `ttl` ahead, if the lease is still this holder's.
    async fn renew(&self) -> Result<()> {
        if self.lost() {
            return Ok(());
        }
        let mut holder = self.holder.clone();
        holder.expires_ms = now_ms() + self.ttl.as_millis() as i64;
        let seen = self.seen.lock().clone();
        match self
            .storage
            .put_lease(&self.path, &holder, PutMode::Update(seen))
            .await
        {
            Ok(seen) => {
                *self.seen.lock() = seen;
                Ok(())
            }
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::NotFound { .. }) => {
                self.lost.store(true, Ordering::Relaxed);
                Ok(())
            }
            // No conditional update (a local filesystem): the holder is read back first.
            Err(object_store::Error::NotImplemented { .. }) => {
                self.renew_unconditionally(holder).await
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn renew_unconditionally(&self, holder: Holder) -> Result<()> {
        let current = match self.storage.store.get(&self.path).await {
            Ok(got) => serde_json::from_slice::<Holder>(&got.bytes().await?).ok(),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        if current.is_none_or(|c| c.token != self.holder.token) {
            self.lost.store(true, Ordering::Relaxed);
            return Ok(());
        }
        self.storage
            .put_lease(&self.path, &holder, PutMode::Overwrite)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(host: &str, pid: u32, token: &str, expires_ms: i64) -> Vec<u8> {
        serde_json::to_vec(&Holder {
            host: host.into(),
            pid,
            what: "qanat ingest".into(),
            token: token.into(),
            expires_ms,
        })
        .unwrap()
    }

    async fn put(storage: &Storage, body: Vec<u8>) {
        storage
            .store
            .put(&storage.lease_path("k"), body.into())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_lease_is_refused_while_held_and_lost_when_taken_over() {
        for spec in ["memory://", "local"] {
            let dir = tempfile::tempdir().unwrap();
            let local = dir.path().display().to_string();
            let storage = Storage::open(if spec == "local" { &local } else { spec }).unwrap();
            let ttl = Duration::from_secs(60);
            let lease = storage.take_lease("k", ttl, "qanat ingest").await.unwrap();
            // Held by a live process (this one): refused, naming it.
            let err = storage
                .take_lease("k", ttl, "qanat serve")
                .await
                .err()
                .unwrap();
            assert!(err.is_busy(), "{spec}");
            assert!(
                err.to_string()
                    .contains(&format!("qanat ingest (process {}", std::process::id())),
                "{err}"
            );
            lease.confirm().await.unwrap();
            // Another process took it over (after this one stalled past its expiry): the
            // holder finds out before it publishes, and leaves the other's lease alone.
            put(
                &storage,
                holder("elsewhere", 7, "theirs", now_ms() + 60_000),
            )
            .await;
            let err = lease.confirm().await.unwrap_err();
            assert!(
                err.is_busy() && err.to_string().contains("nothing was published"),
                "{err}"
            );
            lease.release().await;
            assert!(
                storage.store.head(&storage.lease_path("k")).await.is_ok(),
                "{spec}"
            );
            // Expired: taken over; released: gone.
            put(&storage, holder("elsewhere", 7, "theirs", now_ms() - 1)).await;
            let lease = storage.take_lease("k", ttl, "qanat ingest").await.unwrap();
            lease.release().await;
            assert!(matches!(
                storage.store.head(&storage.lease_path("k")).await,
                Err(object_store::Error::NotFound { .. })
            ));
        }
    }

    #[tokio::test]
    async fn a_dead_holder_on_this_machine_is_taken_over_before_expiry() {
        let storage = Storage::open("memory://").unwrap();
        // No process has pid 0 in /proc.
        put(
            &storage,
            holder(&host_name(), 0, "dead", now_ms() + 3_600_000),
        )
        .await;
        let lease = storage
            .take_lease("k", Duration::from_secs(60), "qanat ingest")
            .await
            .unwrap();
        lease.release().await;
        // The same holder on another machine is not known to be dead: refused.
        put(
            &storage,
            holder("other-host", 0, "dead", now_ms() + 3_600_000),
        )
        .await;
        assert!(
            storage
                .take_lease("k", Duration::from_secs(60), "qanat ingest")
                .await
                .err()
                .unwrap()
                .is_busy()
        );
    }
}
