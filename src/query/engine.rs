//! The query engine: one DataFusion session under a memory pool, executing on its own Tokio
//! runtime so that sockets and `/health` stay responsive while queries run, with a deadline on
//! every query.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::dataframe::DataFrame;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::metrics::MetricValue;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::config::Limits;
use crate::error::{Error, Result};
use crate::storage::Storage;

/// A runtime that is shut down without blocking when dropped (dropping a runtime inside another
/// runtime's task would otherwise panic).
struct OwnedRuntime {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl OwnedRuntime {
    fn new(runtime: tokio::runtime::Runtime) -> Self {
        let handle = runtime.handle().clone();
        OwnedRuntime {
            runtime: Some(runtime),
            handle,
        }
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

pub struct Engine {
    ctx: SessionContext,
    runtime: OwnedRuntime,
    /// Where ingests and refreshes run: threads of their own, at a lower scheduling priority,
    /// so that publishing a version takes the CPU queries leave rather than half of it.
    background: OwnedRuntime,
    deadline: Duration,
}

/// The `nice` of the background runtime's threads (0 is normal, 19 the lowest): when queries
/// and an ingest both want every core, the ingest gets about a tenth.
const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority; threads it starts inherit it. Where that is
/// not allowed the thread keeps its priority, which costs only the latency of queries.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), BACKGROUND_NICE)
    {
        tracing::debug!(error = %e, "background threads keep their priority");
    }
}

impl Engine {
    pub fn new(storage: &Storage, limits: &Limits) -> Result<Self> {
        let mut config = SessionConfig::new()
            .with_target_partitions(limits.query_threads)
            .with_batch_size(8192);
        let parquet = &mut config.options_mut().execution.parquet;
        // Late materialisation: filters are evaluated while decoding, so columns of rows that
        // do not match are never decoded.
        parquet.pushdown_filters = true;
        parquet.reorder_filters = true;
        let pool = TrackConsumersPool::new(
            FairSpillPool::new(limits.memory_bytes),
            NonZeroUsize::MIN.saturating_add(4),
        );
        // Versions are immutable, so a file's footer and page index, once read, stay true: they
        // are kept (64 MiB of them) instead of being read per request, as are the listings.
        let mut env = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(pool))
            .with_metadata_cache_limit(64 * 1024 * 1024);
        if !limits.spill_to_disk {
            env = env.with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            );
        }
        let env = env.build_arc()?;
        let ctx = SessionContext::new_with_config_rt(config, env);
        ctx.register_object_store(&storage.base_url, Arc::clone(&storage.store));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(limits.query_threads)
            .thread_name("qanat-query")
            .enable_all()
            .build()?;
        let background = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(limits.query_threads)
            .thread_name("qanat-ingest")
            .on_thread_start(lower_priority)
            .enable_all()
            .build()?;
        Ok(Engine {
            ctx,
            runtime: OwnedRuntime::new(runtime),
            background: OwnedRuntime::new(background),
            deadline: limits.query_timeout(),
        })
    }

    pub fn read(&self, table: Arc<dyn TableProvider>) -> Result<DataFrame> {
        Ok(self.ctx.read_table(table)?)
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        &self.runtime.handle
    }

    fn timed_out(&self) -> Error {
        Error::Overloaded(format!(
            "the query ran past its deadline of {} ms; add filters or ask for fewer rows",
            self.deadline.as_millis()
        ))
    }

    /// Waits for a spawned task within the deadline; past it the task is aborted.
    async fn within_deadline<T>(&self, task: AbortOnDrop<T>) -> Result<T> {
        match tokio::time::timeout(self.deadline, task.join()).await {
            Err(_) => Err(self.timed_out()),
            Ok(joined) => joined,
        }
    }

    /// Runs a bounded query (a page) to completion within the deadline. With
    /// `QANAT_LOG=qanat::plan=debug`, each plan is logged with its execution metrics (rows and
    /// time per operator, row groups and pages pruned), to see how a query shape runs.
    pub async fn collect(&self, df: DataFrame) -> Result<Vec<RecordBatch>> {
        if tracing::enabled!(target: "qanat::plan", tracing::Level::DEBUG) {
            let task_ctx = self.ctx.task_ctx();
            let run = async move {
                let plan = df.create_physical_plan().await?;
                let batches = datafusion::physical_plan::collect(Arc::clone(&plan), task_ctx).await;
                let shown =
                    datafusion::physical_plan::display::DisplayableExecutionPlan::with_metrics(
                        plan.as_ref(),
                    )
                    .indent(true);
                tracing::debug!(target: "qanat::plan", "\n{}", shown);
                batches
            };
            let task = AbortOnDrop(self.handle().spawn(run));
            return (self.within_deadline(task).await?).map_err(Error::from_engine);
        }
        let task = AbortOnDrop(self.handle().spawn(df.collect()));
        self.within_deadline(task)
            .await?
            .map_err(Error::from_engine)
    }

    /// Runs a query to completion with no deadline (loading a version into memory), on the
    /// background runtime: bulk work that queries come before.
    pub async fn collect_all(&self, df: DataFrame) -> Result<Vec<RecordBatch>> {
        let task = AbortOnDrop(self.background.handle.spawn(df.collect()));
        task.join().await?.map_err(Error::from_engine)
    }

    /// Runs work that must stay off the threads serving sockets and out of the way of queries
    /// (ingests, refreshes, harvests) on the background runtime, with no deadline; dropping the
    /// returned future cancels it.
    pub async fn background<F>(&self, work: F) -> Result<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        AbortOnDrop(self.background.handle.spawn(work)).join().await
    }

    /// Runs CPU-bound work on the query runtime, within the deadline.
    pub async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let task = AbortOnDrop(self.handle().spawn(async move { work() }));
        self.within_deadline(task).await?
    }

    /// Runs async work (a direct read of Parquet) on the query runtime, within the deadline.
    pub async fn run_async<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        let task = AbortOnDrop(self.handle().spawn(work));
        self.within_deadline(task).await?
    }

    /// Counts the rows of a query within the deadline.
    pub async fn count(&self, df: DataFrame) -> Result<u64> {
        let task = AbortOnDrop(self.handle().spawn(df.count()));
        let rows = self
            .within_deadline(task)
            .await?
            .map_err(Error::from_engine)?;
        Ok(rows as u64)
    }

    /// Parquet files whose footer and page index are held in memory.
    pub fn cached_footers(&self) -> usize {
        self.ctx
            .runtime_env()
            .cache_manager
            .get_file_metadata_cache()
            .len()
    }

    /// Runs a query and reports what its Parquet scans skipped, from DataFusion's execution
    /// metrics (used to check that the layout prunes).
    pub async fn scan_report(&self, df: DataFrame) -> Result<ScanReport> {
        let task_ctx = self.ctx.task_ctx();
        let run = async move {
            let plan = df.create_physical_plan().await?;
            let batches = datafusion::physical_plan::collect(Arc::clone(&plan), task_ctx).await?;
            let mut report = ScanReport {
                rows: batches.iter().map(RecordBatch::num_rows).sum(),
                ..ScanReport::default()
            };
            let mut stack = vec![plan];
            while let Some(node) = stack.pop() {
                for m in node
                    .metrics()
                    .iter()
                    .flat_map(|m| m.iter().cloned().collect::<Vec<_>>())
                {
                    if let MetricValue::PruningMetrics {
                        name,
                        pruning_metrics: p,
                    } = m.value()
                    {
                        match name.as_ref() {
                            "row_groups_pruned_statistics" => {
                                report.row_groups += p.pruned() + p.matched();
                                report.row_groups_pruned_by_statistics += p.pruned();
                            }
                            "row_groups_pruned_bloom_filter" => {
                                report.row_groups_pruned_by_bloom_filter += p.pruned()
                            }
                            "page_index_pages_pruned" => report.pages_pruned += p.pruned(),
                            _ => {}
                        }
                    }
                }
                stack.extend(node.children().into_iter().cloned());
            }
            Ok::<_, datafusion::error::DataFusionError>(report)
        };
        let task = AbortOnDrop(self.handle().spawn(run));
        task.join().await?.map_err(Error::from_engine)
    }

    /// A stream whose first batch has arrived within the deadline (or that is empty).
    async fn started(
        &self,
        schema: SchemaRef,
        mut rx: mpsc::Receiver<Result<Chunk>>,
        task: AbortOnDrop<()>,
    ) -> Result<BatchStream> {
        let first = match tokio::time::timeout(self.deadline, rx.recv()).await {
            Err(_) => return Err(self.timed_out()),
            Ok(None) => None,
            Ok(Some(item)) => Some(item?),
        };
        Ok(BatchStream {
            schema,
            first,
            rx,
            _task: task,
        })
    }

    /// Streams batches that `produce` sends from a blocking thread of the query runtime (a walk
    /// over resident rows); as with [`Self::stream`], the first is awaited within the deadline,
    /// and a closed connection makes the next send fail, which ends the walk.
    pub async fn stream_from<F>(&self, schema: SchemaRef, produce: F) -> Result<BatchStream>
    where
        F: FnOnce(&mpsc::Sender<Result<Chunk>>) + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(2);
        let task = AbortOnDrop(self.handle().spawn_blocking(move || produce(&tx)));
        self.started(schema, rx, task).await
    }

    /// Starts a query whose result is streamed. The first batch is awaited here, within the
    /// deadline, so that an early failure still gets a real status; the rest arrives through a
    /// small channel, so memory stays bounded and a closed connection cancels the query.
    pub async fn stream(&self, df: DataFrame) -> Result<BatchStream> {
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let (tx, rx) = mpsc::channel(2);
        let task = AbortOnDrop(self.handle().spawn(async move {
            let mut stream = match df.execute_stream().await {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(Error::from_engine(e))).await;
                    return;
                }
            };
            while let Some(item) = stream.next().await {
                let item = item.map(Chunk::Batch).map_err(Error::from_engine);
                if tx.send(item).await.is_err() {
                    break;
                }
            }
        }));
        self.started(schema, rx, task).await
    }
}

/// Row groups and pages a query's scans considered and skipped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanReport {
    /// Rows the query returned.
    pub rows: usize,
    /// Row groups whose statistics were checked against the filters.
    pub row_groups: usize,
    pub row_groups_pruned_by_statistics: usize,
    pub row_groups_pruned_by_bloom_filter: usize,
    /// Data pages skipped through the page index.
    pub pages_pruned: usize,
}

impl ScanReport {
    pub fn row_groups_read(&self) -> usize {
        self.row_groups
            - self.row_groups_pruned_by_statistics
            - self.row_groups_pruned_by_bloom_filter
    }
}

/// Aborts the spawned query when the waiting side goes away (deadline, closed connection).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn join(mut self) -> Result<T> {
        Ok((&mut self.0).await?)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Part of a streamed result: a batch, or rows of a table held in memory named by their
/// indexes, which the encoders write straight from the table instead of copying them out.
pub enum Chunk {
    Batch(RecordBatch),
    Rows {
        /// The whole table, with the result's columns.
        table: RecordBatch,
        rows: Vec<u32>,
    },
}

impl Chunk {
    /// The chunk as a batch of its own (the rows gathered from their table).
    pub fn into_batch(self) -> Result<RecordBatch> {
        match self {
            Chunk::Batch(b) => Ok(b),
            Chunk::Rows { table, rows } => {
                let indices = arrow::array::UInt32Array::from(rows);
                Ok(arrow::compute::take_record_batch(&table, &indices)?)
            }
        }
    }
}

/// The chunks of a running query, first one already computed.
pub struct BatchStream {
    pub schema: SchemaRef,
    first: Option<Chunk>,
    rx: mpsc::Receiver<Result<Chunk>>,
    _task: AbortOnDrop<()>,
}

impl BatchStream {
    /// The next part of the result, as a batch.
    pub async fn next(&mut self) -> Option<Result<RecordBatch>> {
        Some(self.next_chunk().await?.and_then(Chunk::into_batch))
    }

    /// The next part of the result, as it was produced.
    pub async fn next_chunk(&mut self) -> Option<Result<Chunk>> {
        if let Some(c) = self.first.take() {
            return Some(Ok(c));
        }
        self.rx.recv().await
    }
}
