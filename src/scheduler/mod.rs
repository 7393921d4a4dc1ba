//! The periodic tasks, run inside the server by tokio-cron-scheduler (UTC): what Celery beat,
//! a Celery worker and RabbitMQ did for the DOT tutorial.
//!
//! The store holds the tasks (django-celery-beat's fields); the scheduler holds one job per
//! enabled task and is brought in line with the store after every change (`sync`), so an edit
//! in the admin applies at once, and every `scheduler.poll_seconds` (an edit made through
//! another instance applies within that). A task never overlaps its own previous run; a
//! failing task records its error and the scheduler goes on; at shutdown a running cleanup
//! stops at its next batch boundary.
//!
//! Several instances on one database run each task once: only the holder of the `scheduler`
//! lease (a row with an expiry, renewed every `scheduler.poll_seconds`) runs scheduled tasks;
//! when it dies, another takes the lease over once it expires (`scheduler.lease_seconds`). On
//! a redb file there is one process, and it holds the lease from the start. Each run of a task
//! also holds a lease of its own (`TaskLease`), so no two runs of one task overlap anywhere —
//! "Run now" on another instance, the CLI, or a paused leader's successor included.

mod lease;
mod tasks;

pub use lease::{TaskLease, lease_name};
pub use tasks::Tasks;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_cron_scheduler::{Job, JobScheduler};
use uuid::Uuid;

use crate::cleanup;
use crate::clock::Clock;
use crate::config::{OAuth2Provider, Settings};
use crate::store::{PeriodicTask, SharedStorage, StoreError, TaskOutcome, TaskSchedule, Timestamp};

const LEASE: &str = "scheduler";

/// The registered tasks a periodic task may run.
pub const TASKS: [&str; 3] = ["clear_tokens", "debug_task", "backup"];

/// Interval periods and their length in seconds.
const PERIODS: [(&str, u64); 4] = [
    ("seconds", 1),
    ("minutes", 60),
    ("hours", 3600),
    ("days", 86_400),
];

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("scheduler: {0}")]
    Jobs(String),
    #[error("{0}")]
    Invalid(String),
}

fn jobs_error(error: tokio_cron_scheduler::JobSchedulerError) -> SchedulerError {
    SchedulerError::Jobs(error.to_string())
}

fn interval(every: u64, period: &str) -> Option<Duration> {
    let unit = PERIODS.iter().find(|(name, _)| *name == period)?.1;
    every
        .checked_mul(unit)
        .filter(|seconds| *seconds > 0)
        .map(Duration::from_secs)
}

fn nothing(_: Uuid, _: JobScheduler) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async {})
}

/// Whether a schedule can run; the error is for the person who wrote it.
pub fn check_schedule(schedule: &TaskSchedule) -> Result<(), String> {
    match schedule {
        TaskSchedule::Interval { every, period } => {
            interval(*every, period).map(|_| ()).ok_or_else(|| {
                format!(
                    "every must be at least 1 and period one of seconds, minutes, hours, days \
                     (got every {every} {period:?})"
                )
            })
        }
        TaskSchedule::Crontab { expression } => Job::new_async(expression.as_str(), nothing)
            .map(|_| ())
            .map_err(|_| {
                format!(
                    "{expression:?} is not a crontab: six fields, second minute hour \
                     day-of-month month day-of-week (e.g. \"0 */5 * * * *\")"
                )
            }),
    }
}

/// A schedule in words, for pages.
pub fn describe(schedule: &TaskSchedule) -> String {
    match schedule {
        TaskSchedule::Interval { every, period } => format!("every {every} {period}"),
        TaskSchedule::Crontab { expression } => format!("crontab {expression} (UTC)"),
    }
}

/// Runs tasks: the overlap guard, the registry, and the record of each run.
struct Runner {
    store: SharedStorage,
    provider: OAuth2Provider,
    backup_directory: std::path::PathBuf,
    backup_keep: usize,
    clock: Clock,
    stop: AtomicBool,
    running: Mutex<HashSet<String>>,
    /// Asks for a `sync` (a one-off task disabled itself).
    resync: Notify,
    /// This instance's name in the lease table.
    holder: String,
    /// How long the lease lasts unrenewed: the longest a dead leader's tasks wait.
    lease_seconds: u64,
    /// How often the lease is renewed (or claimed) and the tasks read again.
    poll: Duration,
    /// Whether this instance holds the scheduler lease (runs scheduled tasks).
    leader: AtomicBool,
}

/// Takes a task's name out of the running set however its run ends.
struct RunningGuard<'a> {
    runner: &'a Runner,
    name: String,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.runner.running.lock() {
            running.remove(&self.name);
        }
    }
}

impl Runner {
    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(self.clock.now())
    }

    fn is_running(&self, name: &str) -> bool {
        self.running
            .lock()
            .map(|running| running.contains(name))
            .unwrap_or(false)
    }

    /// Claims or renews the scheduler lease; whether this instance holds it now.
    async fn claim_lease(&self) -> bool {
        let now = self.now();
        let until = now.plus_seconds(self.lease_seconds);
        let held = match self
            .store
            .claim_lease(LEASE, &self.holder, now, until)
            .await
        {
            Ok(held) => held,
            Err(error) => {
                // Without the database nobody can be sure to lead: stop until it answers.
                tracing::warn!("scheduler lease: {error}");
                false
            }
        };
        let was = self.leader.swap(held, Ordering::Relaxed);
        if held && !was {
            tracing::info!(holder = %self.holder, "this instance runs the periodic tasks");
        } else if was && !held {
            tracing::warn!(holder = %self.holder, "this instance no longer runs the periodic tasks");
        }
        held
    }

    /// A scheduled run: only the lease holder's, as the lease stands now (claimed afresh: an
    /// instance that was paused past its lease learns here that it no longer leads).
    async fn run_scheduled(&self, name: &str) {
        if self.claim_lease().await {
            self.run(name).await;
        } else {
            tracing::debug!(task = name, "another instance runs the periodic tasks");
        }
    }

    async fn run(&self, name: &str) {
        let guard = {
            let Ok(mut running) = self.running.lock() else {
                return;
            };
            if !running.insert(name.to_owned()) {
                tracing::info!(
                    task = name,
                    "still running from last time: this run is skipped"
                );
                return;
            }
            RunningGuard {
                runner: self,
                name: name.to_owned(),
            }
        };
        if let Err(error) = self.run_checked(name).await {
            tracing::error!(task = name, "could not run: {error}");
        }
        drop(guard);
    }

    async fn run_checked(&self, name: &str) -> Result<(), StoreError> {
        let Some(task) = self.store.periodic_task(name).await? else {
            return Ok(());
        };
        let now = self.now();
        if !task.enabled || task.start_time.is_some_and(|start| start > now) {
            return Ok(());
        }
        if task.expires.is_some_and(|expires| expires <= now) {
            self.store.disable_periodic_task(name).await?;
            self.resync.notify_one();
            return Ok(());
        }
        // Each task's runs under a name of their own: two tasks of one registered task (two
        // cleanups) exclude each other too.
        let holder = format!("{}/{name}", self.holder);
        let Some(lease) = TaskLease::claim(
            &*self.store,
            &self.clock,
            &holder,
            &task.task,
            self.lease_seconds,
            Some(&self.stop),
        )
        .await?
        else {
            tracing::info!(
                task = name,
                "a run of {:?} is under way elsewhere (another instance or the CLI): this run \
                 is skipped",
                task.task
            );
            return Ok(());
        };
        let started = Instant::now();
        let result = lease.hold(self.execute(&task, &lease)).await;
        lease.release().await;
        let outcome = TaskOutcome {
            ok: result.is_ok(),
            message: match result {
                Ok(message) => message,
                Err(error) => error,
            },
            started: now,
            duration_millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        if !outcome.ok {
            tracing::error!(task = name, "failed: {}", outcome.message);
        }
        crate::metrics::global().record_task(&task.task, outcome.ok);
        // Recorded on the task as stored now: it may have been edited while it ran.
        self.store.record_task_run(name, outcome).await?;
        if task.one_off {
            self.resync.notify_one();
        }
        Ok(())
    }

    /// The registry.
    async fn execute(&self, task: &PeriodicTask, lease: &TaskLease<'_>) -> Result<String, String> {
        match task.task.as_str() {
            "clear_tokens" => {
                cleanup::clear_expired(&*self.store, &self.provider, &self.clock, lease)
                    .await
                    .map(|report| report.lines().join("; "))
                    .map_err(|error| error.to_string())
            }
            // The tutorial's Celery `debug_task`: it shows the context it runs in.
            "debug_task" => {
                let message = format!(
                    "Request: task={:?} name={:?} run={} at={}",
                    task.task,
                    task.name,
                    task.total_run_count + 1,
                    self.now().to_rfc3339()
                );
                tracing::info!(target: "oxidot::tasks", "{message}");
                Ok(message)
            }
            "backup" => crate::backups::backup_and_prune(
                &*self.store,
                &self.backup_directory,
                self.backup_keep,
                self.now(),
            )
            .await
            .map_err(|error| error.to_string()),
            other => Err(format!("no task {other:?} is registered")),
        }
    }
}

pub struct Scheduler {
    jobs_scheduler: JobScheduler,
    /// The job of each scheduled task, with the schedule it was made from.
    jobs: tokio::sync::Mutex<HashMap<String, (Uuid, TaskSchedule)>>,
    runner: Arc<Runner>,
}

impl Scheduler {
    /// Writes the configured tasks to the store, then starts a job for every enabled task.
    pub async fn start(
        store: SharedStorage,
        settings: &Settings,
        clock: Clock,
    ) -> Result<Arc<Self>, SchedulerError> {
        write_configured_tasks(&store, settings, &clock).await?;
        let jobs_scheduler = JobScheduler::new().await.map_err(jobs_error)?;
        jobs_scheduler.start().await.map_err(jobs_error)?;
        let scheduler = Arc::new(Self {
            jobs_scheduler,
            jobs: tokio::sync::Mutex::new(HashMap::new()),
            runner: Arc::new(Runner {
                store,
                provider: settings.oauth2_provider.clone(),
                backup_directory: settings.backup_directory(),
                backup_keep: settings.backup.keep,
                clock,
                stop: AtomicBool::new(false),
                running: Mutex::new(HashSet::new()),
                resync: Notify::new(),
                holder: instance_name(),
                lease_seconds: settings.scheduler.lease_seconds,
                poll: Duration::from_secs(settings.scheduler.poll_seconds),
                leader: AtomicBool::new(false),
            }),
        });
        scheduler.runner.claim_lease().await;
        scheduler.sync().await?;
        // Renews the lease and reads the tasks again, so an instance that dies hands the
        // tasks over and an edit made through another instance applies here.
        let polling = Arc::downgrade(&scheduler);
        tokio::spawn(async move {
            loop {
                let Some(poll) = polling.upgrade().map(|scheduler| scheduler.runner.poll) else {
                    return;
                };
                tokio::time::sleep(poll).await;
                let Some(scheduler) = polling.upgrade() else {
                    return;
                };
                if !scheduler.is_alive() {
                    return;
                }
                scheduler.runner.claim_lease().await;
                if let Err(error) = scheduler.sync().await {
                    tracing::warn!("scheduler: {error}");
                }
            }
        });
        let weak = Arc::downgrade(&scheduler);
        let runner = scheduler.runner.clone();
        tokio::spawn(async move {
            loop {
                runner.resync.notified().await;
                let Some(scheduler) = weak.upgrade() else {
                    return;
                };
                if let Err(error) = scheduler.sync().await {
                    tracing::error!("scheduler: {error}");
                }
            }
        });
        Ok(scheduler)
    }

    /// Brings the jobs in line with the tasks in the store.
    pub async fn sync(&self) -> Result<(), SchedulerError> {
        let tasks = self.runner.store.periodic_tasks().await?;
        let mut jobs = self.jobs.lock().await;
        let wanted: HashMap<&str, &PeriodicTask> = tasks
            .iter()
            .filter(|task| task.enabled)
            .map(|task| (task.name.as_str(), task))
            .collect();
        let stale: Vec<String> = jobs
            .iter()
            .filter(|(name, (_, schedule))| {
                wanted
                    .get(name.as_str())
                    .is_none_or(|task| task.schedule != *schedule)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some((id, _)) = jobs.remove(&name) {
                self.jobs_scheduler.remove(&id).await.map_err(jobs_error)?;
            }
        }
        for (name, task) in wanted {
            if jobs.contains_key(name) {
                continue;
            }
            let job = self.job(task)?;
            let id = self.jobs_scheduler.add(job).await.map_err(jobs_error)?;
            jobs.insert(name.to_owned(), (id, task.schedule.clone()));
        }
        Ok(())
    }

    fn job(&self, task: &PeriodicTask) -> Result<Job, SchedulerError> {
        let runner = self.runner.clone();
        let name = task.name.clone();
        let run = move |_: Uuid, _: JobScheduler| {
            let runner = runner.clone();
            let name = name.clone();
            Box::pin(async move { runner.run_scheduled(&name).await })
                as std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
        };
        match &task.schedule {
            TaskSchedule::Interval { every, period } => {
                let every = interval(*every, period)
                    .ok_or_else(|| SchedulerError::Invalid("a bad interval".to_owned()))?;
                Job::new_repeated_async(every, run).map_err(jobs_error)
            }
            TaskSchedule::Crontab { expression } => {
                Job::new_async(expression.as_str(), run).map_err(jobs_error)
            }
        }
    }

    /// Runs a task once, now (the admin's "Run now"), unless it is running already.
    pub fn run_now(&self, name: &str) {
        let runner = self.runner.clone();
        let name = name.to_owned();
        tokio::spawn(async move { runner.run(&name).await });
    }

    /// Whether the scheduler still schedules (it has not been shut down).
    pub fn is_alive(&self) -> bool {
        !self.runner.stop.load(Ordering::Relaxed)
    }

    pub fn is_running(&self, name: &str) -> bool {
        self.runner.is_running(name)
    }

    /// When a task's job runs next, if it is scheduled.
    pub async fn next_run(&self, name: &str) -> Option<Timestamp> {
        let id = self.jobs.lock().await.get(name).map(|(id, _)| *id)?;
        let mut jobs_scheduler = self.jobs_scheduler.clone();
        let next = jobs_scheduler.next_tick_for_job(id).await.ok()??;
        Some(Timestamp(next.timestamp_micros()))
    }

    /// Whether this instance holds the scheduler lease (runs the scheduled tasks).
    pub fn is_leader(&self) -> bool {
        self.runner.leader.load(Ordering::Relaxed)
    }

    /// Stops scheduling; a running task stops at its next batch boundary and is waited for,
    /// then the lease is given up (another instance takes the tasks over at once).
    pub async fn shutdown(&self) {
        self.runner.stop.store(true, Ordering::Relaxed);
        let mut jobs_scheduler = self.jobs_scheduler.clone();
        if let Err(error) = jobs_scheduler.shutdown().await {
            tracing::warn!("scheduler shutdown: {error}");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline
            && self
                .runner
                .running
                .lock()
                .map(|running| !running.is_empty())
                .unwrap_or(false)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if self.runner.leader.swap(false, Ordering::Relaxed)
            && let Err(error) = self
                .runner
                .store
                .release_lease(LEASE, &self.runner.holder)
                .await
        {
            tracing::warn!("scheduler lease: {error}");
        }
    }
}

/// A name for this instance in the lease table: host and process, and a random part (a
/// restarted process may get the same pid).
pub(crate) fn instance_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_owned());
    let mut random = [0u8; 4];
    let _ = getrandom::fill(&mut random);
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        u32::from_le_bytes(random)
    )
}

/// The configuration's tasks replace their stored versions (run history kept); tasks that came
/// from the configuration and are no longer in it are removed.
async fn write_configured_tasks(
    store: &SharedStorage,
    settings: &Settings,
    clock: &Clock,
) -> Result<(), SchedulerError> {
    let now = Timestamp::from_datetime(clock.now());
    let mut declared = Vec::new();
    for (name, config) in &settings.tasks {
        let schedule = config
            .schedule()
            .map_err(|error| SchedulerError::Invalid(format!("tasks.{name}: {error}")))?;
        declared.push((name.clone(), config.clone(), schedule));
    }
    let declared = declared
        .into_iter()
        .map(|(name, config, schedule)| PeriodicTask {
            name,
            task: config.task.clone(),
            schedule,
            enabled: config.enabled,
            one_off: config.one_off,
            start_time: None,
            expires: None,
            description: config.description.clone(),
            last_run_at: None,
            total_run_count: 0,
            last_result: None,
            from_config: true,
            changed: now,
        })
        .collect();
    store.sync_configured_tasks(declared).await?;
    Ok(())
}
