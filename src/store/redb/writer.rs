//! The one writer: a thread that commits the changes of many requests in one durable
//! transaction (group commit), so N concurrent writes cost about one fsync.
//!
//! A job that fails must not take its batch-mates down with it, and redb cannot roll back part
//! of a transaction once tables are open (savepoints need a clean transaction). So a batch
//! whose job fails is aborted, the failing job answered with its own error, and the others
//! run again together in a new transaction; jobs are closures over their inputs and re-run
//! cleanly. One refused form in a busy batch costs one more commit, not one per batch-mate.
//! A job that panics is such a failure too (answered with an error): it never takes the
//! writer thread, and with it every later write, down.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use redb::{Database, Durability};
use tokio::sync::oneshot;

use super::{StoreError, WriteTx};

/// Most jobs committed in one transaction; bounds the latency of the last job in a batch.
const MAX_BATCH: usize = 512;

pub(super) trait Job: Send {
    /// Runs the job; false when it failed (its error is kept for `finish`).
    fn run(&mut self, tx: &mut WriteTx<'_>) -> bool;
    /// Records a failure that happened outside the job's own code (it panicked).
    fn fail(&mut self, error: StoreError);
    /// Whether the job's changes must be on disk before it is answered. A batch of jobs that
    /// need not be (cleanup deletions, which a crash would only cause to be redone) commits
    /// without an fsync; the next durable commit writes them too.
    fn durable(&self) -> bool;
    /// Reports the outcome once the transaction it ran in has committed or aborted.
    fn finish(self: Box<Self>, committed: Result<(), StoreError>);
}

/// A job whose work answers `T` or an error `E`: a store failure, or a refusal of the caller's
/// own type (a record a load cannot take, a user deleted meanwhile). Either way nothing the
/// job wrote is committed.
pub(super) struct TypedJob<F, T, E> {
    work: F,
    outcome: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
    durable: bool,
}

impl<F, T, E> TypedJob<F, T, E>
where
    F: FnMut(&mut WriteTx<'_>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    pub(super) fn boxed(work: F, durable: bool) -> (Box<dyn Job>, oneshot::Receiver<Result<T, E>>) {
        let (reply, receiver) = oneshot::channel();
        let job = Box::new(Self {
            work,
            outcome: None,
            reply,
            durable,
        });
        (job, receiver)
    }
}

impl<F, T, E> Job for TypedJob<F, T, E>
where
    F: FnMut(&mut WriteTx<'_>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    fn durable(&self) -> bool {
        self.durable
    }

    fn run(&mut self, tx: &mut WriteTx<'_>) -> bool {
        let outcome = (self.work)(tx);
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn fail(&mut self, error: StoreError) {
        self.outcome = Some(Err(error.into()));
    }

    fn finish(self: Box<Self>, committed: Result<(), StoreError>) {
        let result = match committed {
            Err(error) => Err(error.into()),
            Ok(()) => self
                .outcome
                .unwrap_or_else(|| Err(StoreError::WriterGone.into())),
        };
        // The requester may have gone away (client disconnected); nothing to report then.
        let _ = self.reply.send(result);
    }
}

pub(super) struct Writer {
    sender: std::sync::Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// Write transactions begun by the writer thread (committed or aborted).
    transactions: Arc<AtomicU64>,
}

impl Writer {
    pub(super) fn start(db: Arc<Database>) -> Result<Self, StoreError> {
        let (sender, receiver) = mpsc::channel::<Box<dyn Job>>();
        let transactions = Arc::new(AtomicU64::new(0));
        let counted = transactions.clone();
        let thread = std::thread::Builder::new()
            .name("oxidot-writer".to_owned())
            .spawn(move || write_loop(&db, &receiver, &counted))
            .map_err(|error| StoreError::Storage(format!("cannot start writer: {error}")))?;
        Ok(Self {
            sender: std::sync::Mutex::new(Some(sender)),
            thread: std::sync::Mutex::new(Some(thread)),
            transactions,
        })
    }

    pub(super) fn transactions(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed)
    }

    pub(super) fn submit(&self, job: Box<dyn Job>) -> Result<(), StoreError> {
        let guard = self.sender.lock().map_err(|_| StoreError::WriterGone)?;
        match guard.as_ref() {
            Some(sender) => sender.send(job).map_err(|_| StoreError::WriterGone),
            None => Err(StoreError::WriterGone),
        }
    }

    /// Lets queued jobs finish, then stops the thread.
    pub(super) fn stop(&self) {
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        let thread = self.thread.lock().ok().and_then(|mut thread| thread.take());
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("the database writer thread panicked");
        }
    }
}

fn write_loop(db: &Database, receiver: &mpsc::Receiver<Box<dyn Job>>, transactions: &AtomicU64) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(db, batch, transactions);
    }
}

fn commit_batch(db: &Database, mut batch: Vec<Box<dyn Job>>, transactions: &AtomicU64) {
    while !batch.is_empty() {
        transactions.fetch_add(1, Ordering::Relaxed);
        let durable = batch.iter().any(|job| job.durable());
        let txn = match begin(db, durable) {
            Ok(txn) => txn,
            Err(error) => {
                for job in batch {
                    job.finish(Err(error.clone()));
                }
                return;
            }
        };
        let started = std::time::Instant::now();
        let failed = {
            let mut tx = WriteTx::new(&txn);
            batch
                .iter_mut()
                .position(|job| !run_guarded(job.as_mut(), &mut tx))
        };
        let Some(failed) = failed else {
            let ran = started.elapsed();
            let committed = txn.commit().map_err(StoreError::from);
            tracing::trace!(
                jobs = batch.len(),
                run_micros = ran.as_micros() as u64,
                commit_micros = (started.elapsed() - ran).as_micros() as u64,
                "group commit"
            );
            for job in batch {
                job.finish(committed.clone());
            }
            return;
        };
        let _ = txn.abort();
        // The failing job reports its own error; the others run again without it (those
        // after it have not run yet, those before it run again from a clean state).
        batch.remove(failed).finish(Ok(()));
    }
}

/// Runs `job`, turning a panic into the job's failure.
fn run_guarded(job: &mut dyn Job, tx: &mut WriteTx<'_>) -> bool {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(tx))) {
        Ok(ran) => ran,
        Err(_) => {
            tracing::error!("a database write panicked; it is refused and the writer goes on");
            job.fail(StoreError::Storage(
                "the write failed unexpectedly".to_owned(),
            ));
            false
        }
    }
}

pub(super) fn begin(db: &Database, durable: bool) -> Result<redb::WriteTransaction, StoreError> {
    let mut txn = db.begin_write().map_err(StoreError::from)?;
    txn.set_durability(if durable {
        Durability::Immediate
    } else {
        Durability::None
    })
    .map_err(|error| StoreError::Storage(error.to_string()))?;
    Ok(txn)
}
