//! The one writer: a thread that commits the changes of many requests in one durable
//! transaction (group commit), so N concurrent writes cost about one fsync.
//!
//! A job that fails must not take its batch-mates down with it, and redb cannot roll back part
//! of a transaction once tables are open. So a batch whose job fails is aborted whole and its
//! jobs are run again, one transaction each; jobs are closures over their inputs and re-run
//! cleanly on a fresh transaction.

use std::sync::Arc;
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
    /// Whether the job's changes must be on disk before it is answered. A batch of jobs that
    /// need not be (cleanup deletions, which a crash would only cause to be redone) commits
    /// without an fsync; the next durable commit writes them too.
    fn durable(&self) -> bool;
    /// Reports the outcome once the transaction it ran in has committed or aborted.
    fn finish(self: Box<Self>, committed: Result<(), StoreError>);
}

pub(super) struct TypedJob<F, T> {
    work: F,
    outcome: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
    durable: bool,
}

impl<F, T> TypedJob<F, T>
where
    F: FnMut(&mut WriteTx<'_>) -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    pub(super) fn boxed(
        work: F,
        durable: bool,
    ) -> (Box<dyn Job>, oneshot::Receiver<Result<T, StoreError>>) {
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

impl<F, T> Job for TypedJob<F, T>
where
    F: FnMut(&mut WriteTx<'_>) -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
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

    fn finish(self: Box<Self>, committed: Result<(), StoreError>) {
        let result = match committed {
            Err(error) => Err(error),
            Ok(()) => self.outcome.unwrap_or(Err(StoreError::WriterGone)),
        };
        // The requester may have gone away (client disconnected); nothing to report then.
        let _ = self.reply.send(result);
    }
}

pub(super) struct Writer {
    sender: std::sync::Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    pub(super) fn start(db: Arc<Database>) -> Result<Self, StoreError> {
        let (sender, receiver) = mpsc::channel::<Box<dyn Job>>();
        let thread = std::thread::Builder::new()
            .name("oxidot-writer".to_owned())
            .spawn(move || write_loop(&db, &receiver))
            .map_err(|error| StoreError::Storage(format!("cannot start writer: {error}")))?;
        Ok(Self {
            sender: std::sync::Mutex::new(Some(sender)),
            thread: std::sync::Mutex::new(Some(thread)),
        })
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

fn write_loop(db: &Database, receiver: &mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(db, batch);
    }
}

fn commit_batch(db: &Database, mut batch: Vec<Box<dyn Job>>) {
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
    let all_ran = {
        let mut tx = WriteTx::new(&txn);
        batch.iter_mut().all(|job| job.run(&mut tx))
    };
    if all_ran {
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
    }
    let _ = txn.abort();
    // One job failed: give every job a transaction of its own, so only the failing one is lost.
    for job in batch {
        run_alone(db, job);
    }
}

fn run_alone(db: &Database, mut job: Box<dyn Job>) {
    match begin(db, job.durable()) {
        Err(error) => job.finish(Err(error)),
        Ok(txn) => {
            if job.run(&mut WriteTx::new(&txn)) {
                let committed = txn.commit().map_err(StoreError::from);
                job.finish(committed);
            } else {
                let _ = txn.abort();
                // The job's own error is what it reports.
                job.finish(Ok(()));
            }
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
