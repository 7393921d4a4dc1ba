//! `/admin/periodic-tasks/`: django-celery-beat's page for staff. List with next run, last run
//! and result; add, edit, enable/disable, delete (confirmed), "Run now". Every change goes to
//! the store and the scheduler at once; every state change is a POST with CSRF.

use rocket::{Route, get, post, routes};
use serde_json::{Value, json};

use super::delete_selected::{Deletion, ticked};
use super::{Answer, see_other, when};
use crate::applications::{Refusal, as_sentence};
use crate::config::TaskConfig;
use crate::params::Params;
use crate::permissions::{Action, PERIODIC_TASK};
use crate::scheduler::{Scheduler, TASKS, describe};
use crate::store::{PeriodicTask, TaskSchedule, Timestamp};
use crate::web::AppState;
use crate::web::error::{Page, WebError};
use crate::web::form::CheckedForm;
use crate::web::screen::Screen;
use crate::web::session::{
    AddPeriodicTask, Allowed, ChangePeriodicTask, DeletePeriodicTask, ViewPeriodicTask,
};

const LIST: &str = "/admin/periodic-tasks/";
/// `/admin/periodic-tasks/delete/` is the bulk delete, so no task may have this name.
const RESERVED_NAME: &str = "delete";

/// The running scheduler; without one (a process that serves no schedules) changes are kept
/// in the store and apply when a scheduler starts.
fn scheduler(state: &AppState) -> Option<&Scheduler> {
    state.scheduler.as_deref()
}

/// Applies a change in the store to the running jobs.
async fn resync(state: &AppState) -> Result<(), WebError> {
    match scheduler(state) {
        Some(scheduler) => scheduler
            .sync()
            .await
            .map_err(|error| WebError::Internal(error.to_string())),
        None => Ok(()),
    }
}

async fn next_run(scheduler: Option<&Scheduler>, name: &str) -> String {
    match scheduler {
        Some(scheduler) => when(scheduler.next_run(name).await),
        None => "— (the scheduler is not running)".to_owned(),
    }
}

fn path_of(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A task as the form shows it.
fn form_of(task: &PeriodicTask) -> Value {
    let (every, period, crontab) = match &task.schedule {
        TaskSchedule::Interval { every, period } => {
            (every.to_string(), period.clone(), String::new())
        }
        TaskSchedule::Crontab { expression } => {
            (String::new(), "seconds".to_owned(), expression.clone())
        }
    };
    json!({
        "name": task.name, "task": task.task, "every": every, "period": period,
        "crontab": crontab, "enabled": task.enabled, "one_off": task.one_off,
        "description": task.description,
        "start_time": task.start_time.map(Timestamp::to_rfc3339).unwrap_or_default(),
        "expires": task.expires.map(Timestamp::to_rfc3339).unwrap_or_default(),
    })
}

/// An optional RFC 3339 time from the form.
fn optional_time(
    text: &str,
    field: &'static str,
    label: &str,
) -> Result<Option<Timestamp>, Refusal> {
    if text.is_empty() {
        return Ok(None);
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|at| Some(Timestamp::from_datetime(at)))
        .map_err(|_| {
            Refusal::of(
                field,
                format!("{label} must be a time like 2026-12-01T00:00:00Z."),
            )
        })
}

/// The task a submitted form describes; the error is shown on the form.
fn task_from(params: &Params, now: Timestamp) -> Result<PeriodicTask, Refusal> {
    let text = |name: &str| -> Result<String, Refusal> {
        Ok(params
            .single(name)
            .map_err(|error| Refusal::general(error.to_string()))?
            .unwrap_or_default()
            .trim()
            .to_owned())
    };
    let name = text("name")?;
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Refusal::of(
            "name",
            "A name of 1 to 200 characters is required.",
        ));
    }
    if name == RESERVED_NAME {
        return Err(Refusal::of(
            "name",
            format!("“{RESERVED_NAME}” is the list's delete action: choose another name."),
        ));
    }
    let every = text("every")?;
    let crontab = text("crontab")?;
    let config = TaskConfig {
        task: text("task")?,
        every: if every.is_empty() {
            None
        } else {
            Some(
                every
                    .parse()
                    .map_err(|_| Refusal::of("every", "“Every” must be a whole number."))?,
            )
        },
        period: (!every.is_empty()).then(|| text("period")).transpose()?,
        crontab: (!crontab.is_empty()).then_some(crontab),
        enabled: text("enabled")? == "on",
        one_off: text("one_off")? == "on",
        description: text("description")?,
    };
    let schedule = config.schedule().map_err(|message| {
        let field = if !TASKS.contains(&config.task.as_str()) {
            "task"
        } else if config.crontab.is_some() {
            "crontab"
        } else {
            "every"
        };
        Refusal::of(field, as_sentence(&message))
    })?;
    Ok(PeriodicTask {
        name,
        task: config.task,
        schedule,
        enabled: config.enabled,
        one_off: config.one_off,
        start_time: optional_time(&text("start_time")?, "start_time", "The start time")?,
        expires: optional_time(&text("expires")?, "expires", "The expiry")?,
        description: config.description,
        last_run_at: None,
        total_run_count: 0,
        last_result: None,
        from_config: false,
        changed: now,
    })
}

/// How much of a task's last result the list shows (the task's page shows all of it).
const RESULT_CHARS_IN_LIST: usize = 120;

/// A text cut to a length at a character boundary, with an ellipsis when it was cut.
struct Truncated {
    shown: String,
    truncated: bool,
}

impl Truncated {
    fn of(text: &str, chars: usize) -> Self {
        match text.char_indices().nth(chars) {
            Some((end, _)) => Self {
                shown: format!("{}…", text[..end].trim_end()),
                truncated: true,
            },
            None => Self {
                shown: text.to_owned(),
                truncated: false,
            },
        }
    }
}

async fn list_page(
    screen: &Screen<'_>,
    refusal: Option<&Refusal>,
    form: Value,
) -> Result<Page, WebError> {
    let scheduler = scheduler(screen.state);
    let tasks = screen.state.tasks.all().await?;
    let mut rows = Vec::new();
    for task in &tasks {
        let result = Truncated::of(
            task.last_result
                .as_ref()
                .map_or("", |result| result.message.as_str()),
            RESULT_CHARS_IN_LIST,
        );
        rows.push(json!({
            "name": task.name, "path": path_of(&task.name), "task": task.task,
            "schedule": describe(&task.schedule), "enabled": task.enabled,
            "next_run": next_run(scheduler, &task.name).await,
            "last_run": when(task.last_run_at), "runs": task.total_run_count,
            "result_ok": task.last_result.as_ref().map(|result| result.ok),
            "result": result.shown,
            "result_truncated": result.truncated,
            "from_config": task.from_config,
        }));
    }
    screen.render_refused(
        "admin_tasks.html.tera",
        json!({
            "tasks": rows, "form": form, "registered": TASKS, "section": "tasks",
            "may_delete": screen.granted.allows(Action::Delete, PERIODIC_TASK),
        }),
        refusal,
    )
}

fn empty_form() -> Value {
    json!({"name": "", "task": "clear_tokens", "every": "1", "period": "hours", "crontab": "",
           "enabled": true, "one_off": false, "description": "", "start_time": "", "expires": ""})
}

#[get("/admin/periodic-tasks")]
async fn list(screen: Allowed<'_, ViewPeriodicTask>) -> Result<Page, WebError> {
    list_page(&screen, None, empty_form()).await
}

#[post("/admin/periodic-tasks", data = "<form>")]
async fn add(
    screen: Allowed<'_, AddPeriodicTask>,
    form: Result<CheckedForm, WebError>,
) -> Result<Answer, WebError> {
    let state = screen.state;
    let params = form?.0;
    let now = Timestamp::from_datetime(state.clock.now());
    let task = match task_from(&params, now) {
        Ok(task) => task,
        Err(refused) => {
            return Ok(list_page(&screen, Some(&refused), form_echo(&params))
                .await?
                .into());
        }
    };
    let name = task.name.clone();
    let created = state.tasks.add(task).await?;
    if !created {
        let refused = Refusal::of(
            "name",
            format!("A periodic task named “{name}” exists already."),
        );
        return Ok(list_page(&screen, Some(&refused), form_echo(&params))
            .await?
            .into());
    }
    resync(state).await?;
    screen.audit("periodic task added", &name);
    screen.flash(format!(
        "The periodic task “{name}” was added successfully."
    ));
    Ok(see_other(LIST))
}

fn form_echo(params: &Params) -> Value {
    let get = |name: &str| {
        params
            .single(name)
            .ok()
            .flatten()
            .unwrap_or_default()
            .to_owned()
    };
    json!({
        "name": get("name"), "task": get("task"), "every": get("every"), "period": get("period"),
        "crontab": get("crontab"), "enabled": get("enabled") == "on", "one_off": get("one_off") == "on",
        "description": get("description"), "start_time": get("start_time"), "expires": get("expires"),
    })
}

async fn task_page(
    screen: &Screen<'_>,
    task: &PeriodicTask,
    refusal: Option<&Refusal>,
    form: Value,
) -> Result<Page, WebError> {
    let scheduler = scheduler(screen.state);
    screen.render_refused(
        "admin_task.html.tera",
        json!({
            "form": form, "path": path_of(&task.name), "registered": TASKS,
            "from_config": task.from_config, "section": "tasks",
            "next_run": next_run(scheduler, &task.name).await,
            "last_run": when(task.last_run_at), "runs": task.total_run_count,
            "running": scheduler.is_some_and(|scheduler| scheduler.is_running(&task.name)),
            "result_ok": task.last_result.as_ref().map(|result| result.ok),
            "result": task.last_result.as_ref().map(|result| result.message.as_str()),
        }),
        refusal,
    )
}

const NO_TASK: WebError = WebError::NotFound("There is no such periodic task.");

#[get("/admin/periodic-tasks/<name>")]
async fn show(name: &str, screen: Allowed<'_, ViewPeriodicTask>) -> Result<Page, WebError> {
    let state = screen.state;
    let task = state.tasks.get(name).await?.ok_or(NO_TASK)?;
    task_page(&screen, &task, None, form_of(&task)).await
}

#[post("/admin/periodic-tasks/<name>", data = "<form>")]
async fn change(
    name: &str,
    screen: Allowed<'_, ChangePeriodicTask>,
    form: Result<CheckedForm, WebError>,
) -> Result<Answer, WebError> {
    let state = screen.state;
    let params = form?.0;
    let current = state.tasks.get(name).await?.ok_or(NO_TASK)?;
    let action = params.single("action")?.unwrap_or_default().to_owned();
    let now = Timestamp::from_datetime(state.clock.now());
    let refuse = async |refused: Refusal, form: Value| -> Result<Answer, WebError> {
        Ok(task_page(&screen, &current, Some(&refused), form)
            .await?
            .into())
    };
    let updated = match action.as_str() {
        "run" => {
            let Some(scheduler) = scheduler(state) else {
                return refuse(
                    Refusal::general("The scheduler is not running in this process."),
                    form_of(&current),
                )
                .await;
            };
            scheduler.run_now(name);
            screen.audit("periodic task run by hand", name);
            screen.flash(format!("The periodic task “{name}” was started."));
            return Ok(see_other(LIST));
        }
        "enable" | "disable" => PeriodicTask {
            enabled: action == "enable",
            changed: now,
            ..current.clone()
        },
        "delete" => {
            screen.require(Action::Delete, PERIODIC_TASK)?;
            if params.single("confirm")? != Some("yes") {
                return refuse(
                    Refusal::general("Tick the box to confirm the deletion."),
                    form_of(&current),
                )
                .await;
            }
            state.tasks.delete(name).await?;
            resync(state).await?;
            screen.audit("periodic task deleted", name);
            screen.flash(format!(
                "The periodic task “{name}” was deleted successfully."
            ));
            return Ok(see_other(LIST));
        }
        "save" => match task_from(&params, now) {
            Ok(edited) if edited.name == current.name => PeriodicTask {
                task: edited.task,
                schedule: edited.schedule,
                enabled: edited.enabled,
                one_off: edited.one_off,
                description: edited.description,
                start_time: edited.start_time,
                expires: edited.expires,
                changed: now,
                ..current.clone()
            },
            Ok(_) => {
                return refuse(
                    Refusal::of("name", "The name of a task cannot change."),
                    form_echo(&params),
                )
                .await;
            }
            Err(refused) => return refuse(refused, form_echo(&params)).await,
        },
        other => {
            return refuse(
                Refusal::general(format!("Unknown action “{other}”.")),
                form_of(&current),
            )
            .await;
        }
    };
    state.tasks.save(updated).await?;
    resync(state).await?;
    screen.audit(&format!("periodic task {action}"), name);
    let done = match action.as_str() {
        "enable" => "enabled",
        "disable" => "disabled",
        _ => "changed",
    };
    screen.flash(format!(
        "The periodic task “{name}” was {done} successfully."
    ));
    Ok(see_other(LIST))
}

/// Django's "Delete selected periodic tasks". A task from the configuration comes back at the
/// next start (the page says so).
#[post("/admin/periodic-tasks/delete", data = "<form>")]
async fn delete_selected(
    screen: Allowed<'_, DeletePeriodicTask>,
    form: Result<CheckedForm, WebError>,
) -> Result<Answer, WebError> {
    let state = screen.state;
    let params = form?.0;
    let names = ticked(&params, "name");
    let mut found: Vec<(String, String)> = Vec::new();
    for name in &names {
        if let Some(task) = state.tasks.get(name).await? {
            found.push((task.name.clone(), task.name));
        }
    }
    let deletion = Deletion {
        list: LIST,
        section: "tasks",
        title: "Periodic tasks",
        consequence: "they stop running (a task from the configuration comes back at the next \
                      start).",
    };
    let confirmed = params.single("confirm")? == Some("yes");
    let answer = deletion
        .ask_or_delete(&screen, &params, "name", found, |name| async move {
            Ok(state.tasks.delete(&name).await?)
        })
        .await?;
    if confirmed {
        resync(state).await?;
    }
    Ok(answer)
}

pub fn routes() -> Vec<Route> {
    routes![list, add, show, change, delete_selected]
}

#[cfg(test)]
mod tests {
    use super::Truncated;

    #[test]
    fn long_results_are_cut_at_a_character_boundary() {
        let cut = Truncated::of("ééé long", 2);
        assert_eq!(cut.shown, "éé…");
        assert!(cut.truncated);
        let whole = Truncated::of("short", 5);
        assert_eq!(whole.shown, "short");
        assert!(!whole.truncated);
    }
}
