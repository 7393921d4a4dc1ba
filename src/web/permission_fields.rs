//! The permissions part of the admin's user and group pages: Django's model permissions as
//! checkboxes (one row per model, add / change / delete / view), and any other permission a
//! DOT dump brought (another Django app's, or a pk no loaded `auth.permission` names) kept as
//! text. Only superusers change them, and only they change who is a superuser or who is in a
//! group: with `auth.change_user` alone, staff could otherwise grant themselves everything.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::params::Params;
use crate::permissions::{Action, MODELS, natural_key};
use crate::store::Permission;
use crate::web::AppState;
use crate::web::error::WebError;
use crate::web::screen::Screen;

/// Form fields only a superuser may send.
pub const GRANTING: [&str; 4] = ["is_superuser", "groups", "permissions", "other_permissions"];

/// Refuses (403) a form from a non-superuser that tries to grant anything.
pub fn refuse_granting(screen: &Screen<'_>, params: &Params) -> Result<(), WebError> {
    if !screen.granted.is_superuser() && GRANTING.iter().any(|field| params.has(field)) {
        return Err(WebError::Forbidden(
            "only superusers change superuser status, groups and permissions",
        ));
    }
    Ok(())
}

/// `app_label.codename` of each held permission the store can name, and the rest.
async fn split(
    state: &AppState,
    held: &[Permission],
) -> Result<(BTreeSet<String>, Vec<Permission>), WebError> {
    let catalogue: BTreeSet<String> = MODELS
        .iter()
        .flat_map(|model| Action::ALL.map(|action| model.permission(action)))
        .collect();
    let mut named = BTreeSet::new();
    let mut other = Vec::new();
    let loaded: std::collections::HashMap<u64, _> = if held
        .iter()
        .any(|permission| matches!(permission, Permission::Pk(_)))
    {
        state.accounts.permissions().await?.into_iter().collect()
    } else {
        Default::default()
    };
    let by_pk = |pk: u64| {
        loaded
            .get(&pk)
            .map(|record: &crate::store::PermissionRecord| {
                (
                    record.codename.clone(),
                    record.app_label.clone(),
                    record.model.clone(),
                )
            })
    };
    for permission in held {
        match natural_key(permission, &by_pk) {
            Some((codename, app_label, _))
                if catalogue.contains(&format!("{app_label}.{codename}")) =>
            {
                named.insert(format!("{app_label}.{codename}"));
            }
            _ => other.push(permission.clone()),
        }
    }
    Ok((named, other))
}

/// What the template shows: the checkboxes, ticked as held, and the other permissions.
pub async fn fields(state: &AppState, held: &[Permission]) -> Result<Value, WebError> {
    let (named, other) = split(state, held).await?;
    let models: Vec<Value> = MODELS
        .iter()
        .map(|model| {
            let choices: Vec<Value> = Action::ALL
                .iter()
                .map(|action| {
                    let value = model.permission(*action);
                    json!({
                        "value": value,
                        "action": action.as_str(),
                        "label": model.label(*action),
                        "checked": named.contains(&value),
                    })
                })
                .collect();
            json!({"app_label": model.app_label, "model": model.verbose, "choices": choices})
        })
        .collect();
    Ok(json!({
        "models": models,
        "held": named.into_iter().collect::<Vec<_>>(),
        "other": text(&other),
    }))
}

/// The permissions a superuser's form gives: the ticked boxes and the other lines.
pub fn from_form(params: &Params) -> Result<Result<Vec<Permission>, String>, WebError> {
    let mut permissions = Vec::new();
    for value in params.all("permissions") {
        let Some(natural) = MODELS.iter().find_map(|model| {
            Action::ALL
                .into_iter()
                .find(|action| model.permission(*action) == value)
                .map(|action| model.natural(action))
        }) else {
            return Ok(Err(format!("{value:?} is not a permission oxidot knows.")));
        };
        permissions.push(natural);
    }
    let other = params.single("other_permissions")?.unwrap_or_default();
    match parse(other) {
        Ok(more) => permissions.extend(more),
        Err(message) => return Ok(Err(message)),
    }
    Ok(Ok(permissions))
}

/// Permissions as text: one per line, a pk or `codename app_label model`.
fn text(permissions: &[Permission]) -> String {
    permissions
        .iter()
        .map(|permission| match permission {
            Permission::Pk(pk) => pk.to_string(),
            Permission::Natural(parts) => parts.join(" "),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse(text: &str) -> Result<Vec<Permission>, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| {
            if let Ok(pk) = line.parse() {
                return Ok(Permission::Pk(pk));
            }
            let parts: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
            if parts.len() == 3 {
                Ok(Permission::Natural(parts))
            } else {
                Err(format!(
                    "{line:?} is neither a permission pk nor \"codename app_label model\"."
                ))
            }
        })
        .collect()
}
