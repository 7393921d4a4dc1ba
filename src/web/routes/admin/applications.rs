//! `/admin/applications/`: every application, filtered by client type, grant type and skip
//! authorization; create and edit every field; regenerate the secret (shown once); delete.

use rocket::{Route, get, post, routes};
use serde_json::{Value, json};

use super::delete_selected::{Deletion, id_of, ticked_ids};
use super::{Answer, see_other};
use crate::applications::{ApplicationForm, Refusal, Registrar};
use crate::params::Params;
use crate::permissions::{APPLICATION, Action};
use crate::store::{Application, ClientType, GrantType};
use crate::web::AppState;
use crate::web::application_editor::{Done, Pages, summary};
use crate::web::error::{Page, WebError};
use crate::web::form::{CheckedForm, Query};
use crate::web::listing::{Column, Listing, SortValue};
use crate::web::session::{
    AddApplication, Allowed, ChangeApplication, DeleteApplication, ViewApplication,
};

const LIST: &str = "/admin/applications/";
const NO_APPLICATION: WebError = WebError::NotFound("There is no such application.");

/// The list's filters, from the query string.
struct Filters {
    client_type: String,
    grant_type: String,
    skip_authorization: String,
    search: String,
}

impl Filters {
    fn from_query(params: &Params) -> Result<Self, WebError> {
        let text = |name: &str| -> Result<String, WebError> {
            Ok(params.single(name)?.unwrap_or_default().trim().to_owned())
        };
        Ok(Self {
            client_type: text("client_type")?,
            grant_type: text("grant_type")?,
            skip_authorization: text("skip_authorization")?,
            search: text("q")?,
        })
    }

    fn keeps(&self, application: &Application) -> bool {
        let client_type = match application.client_type {
            ClientType::Confidential => "confidential",
            ClientType::Public => "public",
        };
        (self.client_type.is_empty() || self.client_type == client_type)
            && (self.grant_type.is_empty()
                || GrantType::parse(&self.grant_type)
                    .is_some_and(|grant| application.grant_types.contains(&grant)))
            && match self.skip_authorization.as_str() {
                "yes" => application.skip_authorization,
                "no" => !application.skip_authorization,
                _ => true,
            }
            && (self.search.is_empty() || {
                let needle = self.search.to_lowercase();
                application.name.to_lowercase().contains(&needle)
                    || application.client_id.to_lowercase().contains(&needle)
            })
    }
}

const COLUMNS: [Column; 5] = [
    Column {
        key: "name",
        label: "Name",
    },
    Column {
        key: "client_id",
        label: "Client id",
    },
    Column {
        key: "type",
        label: "Type",
    },
    Column {
        key: "owner",
        label: "Owner",
    },
    Column {
        key: "created",
        label: "Created",
    },
];

#[get("/admin/applications")]
async fn list(screen: Allowed<'_, ViewApplication>, query: Query) -> Result<Page, WebError> {
    let state = screen.state;
    let query = &query.0;
    let filters = Filters::from_query(query)?;
    let listing = Listing::from_query(
        LIST,
        query,
        &COLUMNS,
        &["q", "client_type", "grant_type", "skip_authorization"],
    )?;
    let applications = state.applications.all().await?;
    // The owners' names only (not every user): the owner column shows and sorts by them.
    let mut owner_ids: Vec<u64> = applications.iter().filter_map(|app| app.user).collect();
    owner_ids.sort_unstable();
    owner_ids.dedup();
    let owners = state.accounts.usernames(&owner_ids).await?;
    let total = applications.len();
    let mut kept: Vec<&Application> = applications
        .iter()
        .filter(|application| filters.keeps(application))
        .collect();
    let owner_of = |application: &Application| {
        application
            .user
            .and_then(|id| owners.get(&id))
            .map_or("", String::as_str)
    };
    listing.sort(&mut kept, |application, column| match column {
        "name" => SortValue::text(crate::web::application_label(application)),
        "client_id" => SortValue::text(&application.client_id),
        "type" => SortValue::text(match application.client_type {
            ClientType::Confidential => "confidential",
            ClientType::Public => "public",
        }),
        "owner" => SortValue::text(owner_of(application)),
        _ => SortValue::Number(application.created.0),
    });
    let matching = kept.len();
    let (shown, pager) = listing.page(kept);
    let rows: Vec<Value> = shown
        .into_iter()
        .map(|application| {
            let mut row = summary(application);
            row["owner"] = json!(application.user.and_then(|id| owners.get(&id)));
            row
        })
        .collect();
    screen.render(
        "admin_applications.html.tera",
        json!({
            "section": "applications",
            "applications": rows,
            "matching": matching,
            "total": total,
            "listing": pager,
            "filters": {
                "client_type": filters.client_type, "grant_type": filters.grant_type,
                "skip_authorization": filters.skip_authorization, "q": filters.search,
            },
            "grant_types": GrantType::ALL
                .iter()
                .map(|grant| json!({"value": grant.as_str(), "label": grant.label()}))
                .collect::<Vec<_>>(),
            "may_delete": screen.granted.allows(Action::Delete, APPLICATION),
        }),
        None,
    )
}

/// Django's "Delete selected applications" action: asks first, then deletes each with its
/// tokens, codes and consents.
#[post("/admin/applications/delete", data = "<form>")]
async fn delete_selected(
    screen: Allowed<'_, DeleteApplication>,
    form: Result<CheckedForm, WebError>,
) -> Result<Answer, WebError> {
    let state = screen.state;
    let params = form?.0;
    let ids = ticked_ids(&params)?;
    let mut found: Vec<(String, String)> = Vec::new();
    for id in &ids {
        if let Some(application) = state.applications.get(*id).await? {
            found.push((
                application.id.to_string(),
                format!(
                    "{} ({})",
                    crate::web::application_label(&application),
                    application.client_id
                ),
            ));
        }
    }
    let deletion = Deletion {
        list: LIST,
        section: "applications",
        title: "Applications",
        consequence: "with their tokens, codes and consents; their clients stop working at once.",
    };
    deletion
        .ask_or_delete(&screen, &params, "id", found, |id| async move {
            Ok(state.applications.delete(id_of(&id)).await?)
        })
        .await
}

const PAGES: Pages = Pages {
    form_template: "admin_application.html.tera",
    secret_template: "admin_application_secret.html.tera",
    list: LIST,
    registrar: Registrar::Staff,
    section: Some("applications"),
};

/// The owner a form names, or the message refusing it.
async fn owner_of(
    state: &AppState,
    form: &ApplicationForm,
) -> Result<Result<Option<u64>, Refusal>, WebError> {
    if form.owner.is_empty() {
        return Ok(Ok(None));
    }
    Ok(match state.accounts.user_named(&form.owner).await? {
        Some(user) => Ok(Some(user.id)),
        None => Err(Refusal::of(
            "owner",
            format!("There is no user “{}”.", form.owner),
        )),
    })
}

#[get("/admin/applications/new")]
async fn new(screen: Allowed<'_, AddApplication>) -> Result<Page, WebError> {
    PAGES.form(&screen, &ApplicationForm::blank(), None, None)
}

#[post("/admin/applications", data = "<form>")]
async fn create(
    screen: Allowed<'_, AddApplication>,
    form: Result<CheckedForm, WebError>,
) -> Result<Answer, WebError> {
    let state = screen.state;
    let params = form?.0;
    let form = ApplicationForm::from_params(&params)?;
    let owner = match owner_of(state, &form).await? {
        Ok(owner) => owner,
        Err(refused) => return Ok(PAGES.form(&screen, &form, None, Some(&refused))?.into()),
    };
    match state
        .applications
        .register(&form, Registrar::Staff, owner)
        .await?
    {
        Ok(saved) => {
            screen.audit("application created", &saved.application.client_id);
            PAGES.saved(&screen, &saved, Done::Added)
        }
        Err(refused) => Ok(PAGES.form(&screen, &form, None, Some(&refused))?.into()),
    }
}

#[get("/admin/applications/<id>")]
async fn show(id: u64, screen: Allowed<'_, ViewApplication>) -> Result<Page, WebError> {
    let state = screen.state;
    let application = state.applications.get(id).await?.ok_or(NO_APPLICATION)?;
    let owner = match application.user {
        Some(owner) => state.accounts.user(owner).await?.map(|user| user.username),
        None => None,
    };
    let form = ApplicationForm::of(&application, owner.as_deref());
    PAGES.form(&screen, &form, Some(&application), None)
}

#[post("/admin/applications/<id>", data = "<form>")]
async fn change(
    id: u64,
    screen: Allowed<'_, ChangeApplication>,
    form: Result<CheckedForm, WebError>,
) -> Result<Answer, WebError> {
    let state = screen.state;
    let params = form?.0;
    let current = state.applications.get(id).await?.ok_or(NO_APPLICATION)?;
    match params.single("action")?.unwrap_or("save") {
        "regenerate" => {
            let saved = state.applications.regenerate_secret(id).await?;
            screen.audit("application secret regenerated", &current.client_id);
            PAGES.saved(&screen, &saved, Done::SecretRegenerated)
        }
        "delete" => {
            screen.require(Action::Delete, APPLICATION)?;
            if params.single("confirm")? != Some("yes") {
                let form = ApplicationForm::of(&current, None);
                let refused = Refusal::general("Tick the box to confirm the deletion.");
                return Ok(PAGES
                    .form(&screen, &form, Some(&current), Some(&refused))?
                    .into());
            }
            state.applications.delete(id).await?;
            screen.audit("application deleted", &current.client_id);
            screen.flash(format!(
                "The application “{}” was deleted successfully.",
                crate::web::application_label(&current)
            ));
            Ok(see_other(LIST))
        }
        "save" => {
            let form = ApplicationForm::from_params(&params)?;
            let owner = match owner_of(state, &form).await? {
                Ok(owner) => owner,
                Err(refused) => {
                    return Ok(PAGES
                        .form(&screen, &form, Some(&current), Some(&refused))?
                        .into());
                }
            };
            match state
                .applications
                .update(id, &form, Registrar::Staff, owner)
                .await?
            {
                Ok(saved) => {
                    screen.audit("application changed", &saved.application.client_id);
                    PAGES.saved(&screen, &saved, Done::Changed)
                }
                Err(refused) => Ok(PAGES
                    .form(&screen, &form, Some(&current), Some(&refused))?
                    .into()),
            }
        }
        other => Err(WebError::BadRequest(format!("Unknown action “{other}”."))),
    }
}

/// A new secret, shown once after the save that made it.
#[get("/admin/applications/<id>/secret")]
async fn secret(id: u64, screen: Allowed<'_, ChangeApplication>) -> Result<Page, WebError> {
    let application = screen
        .state
        .applications
        .get(id)
        .await?
        .ok_or(NO_APPLICATION)?;
    PAGES.secret(&screen, &application)
}

pub fn routes() -> Vec<Route> {
    routes![list, new, create, show, change, secret, delete_selected]
}
