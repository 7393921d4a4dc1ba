//! `/admin/users/` and `/admin/groups/` (superusers only): search and page through users,
//! create them, edit names, email, rank and groups, set a password, deactivate; groups with
//! their permissions.

use rocket::{Route, get, post, routes};
use serde_json::{Value, json};

use super::delete_selected::{Deletion, id_of, ticked_ids};
use super::{Answer, see_other, when};
use crate::accounts::{AccountError, NewUser};
use crate::applications::{Refusal, as_sentence};
use crate::params::Params;
use crate::permissions::{self, Action};
use crate::store::{Group, Permission, SecretKey, StoreError, User, UserOrder, UserQuery};
use crate::web::error::{Page, WebError};
use crate::web::form::{CheckedForm, Query};
use crate::web::listing::{Column, Listing, PAGE_ROWS};
use crate::web::permission_fields;
use crate::web::screen::Screen;
use crate::web::session::{
    AddGroup, AddUser, Allowed, ChangeGroup, ChangeUser, DeleteGroup, DeleteUser, ViewGroup,
    ViewUser,
};

const USERS: &str = "/admin/users/";
const GROUPS: &str = "/admin/groups/";
const NO_USER: WebError = WebError::NotFound("There is no such user.");
const NO_GROUP: WebError = WebError::NotFound("There is no such group.");

fn text(params: &Params, name: &str) -> Result<String, WebError> {
    Ok(params.single(name)?.unwrap_or_default().trim().to_owned())
}

fn ticked(params: &Params, name: &str) -> Result<bool, WebError> {
    Ok(params.single(name)? == Some("on"))
}

/// A refusal for the form, or a failure.
/// A refusal to show on a user form, beside its field, or a failure.
fn refusal(error: AccountError) -> Result<Refusal, WebError> {
    match error {
        AccountError::Invalid { field, message } => Ok(Refusal::of(field, as_sentence(&message))),
        // The only unique field of a user is the username.
        AccountError::Store(StoreError::Duplicate { .. }) => Ok(Refusal::of(
            "username",
            "A user with that username already exists.",
        )),
        other => Err(other.into()),
    }
}

fn user_row(user: &User) -> Value {
    json!({
        "id": user.id, "username": user.username, "email": user.email,
        "first_name": user.first_name, "last_name": user.last_name,
        "is_active": user.is_active, "is_staff": user.is_staff, "is_superuser": user.is_superuser,
        "last_login": when(user.last_login), "date_joined": user.date_joined.to_rfc3339(),
    })
}

const USER_COLUMNS: [Column; 5] = [
    Column {
        key: "username",
        label: "Username",
    },
    Column {
        key: "email",
        label: "Email",
    },
    Column {
        key: "name",
        label: "Name",
    },
    Column {
        key: "joined",
        label: "Joined",
    },
    Column {
        key: "last_login",
        label: "Last login",
    },
];

#[get("/admin/users")]
async fn list(screen: Allowed<'_, ViewUser>, query: Query) -> Result<Page, WebError> {
    let state = screen.state;
    let search = text(&query.0, "q")?;
    let listing = Listing::from_query(USERS, &query.0, &USER_COLUMNS, &["q"])?;
    let order = match listing.sorted_by() {
        Some(("username", descending)) => (UserOrder::Username, descending),
        Some(("email", descending)) => (UserOrder::Email, descending),
        Some(("name", descending)) => (UserOrder::Name, descending),
        Some(("joined", descending)) => (UserOrder::Joined, descending),
        Some(("last_login", descending)) => (UserOrder::LastLogin, descending),
        _ => (UserOrder::Id, false),
    };
    let asked = UserQuery::new(
        &search,
        order.0,
        order.1,
        listing.asked_page() as u64,
        PAGE_ROWS as u64,
    );
    let found = state.accounts.user_page(&asked).await?;
    let rows: Vec<Value> = found.users.iter().map(user_row).collect();
    let pager = listing.pager(
        usize::try_from(found.matching).unwrap_or(usize::MAX),
        usize::try_from(found.page).unwrap_or(usize::MAX),
    );
    screen.render(
        "admin_users.html.tera",
        json!({
            "section": "users", "users": rows, "q": search,
            "matching": found.matching, "total": found.total, "listing": pager,
            "may_delete": screen.granted.allows(Action::Delete, permissions::USER),
        }),
        None,
    )
}

/// Django's "Delete selected users": each with their sessions, tokens, consents and the
/// applications they own. Never the user doing it, and a superuser only by a superuser.
#[post("/admin/users/delete", data = "<form>")]
async fn delete_users(
    screen: Allowed<'_, DeleteUser>,
    form: Result<CheckedForm, WebError>,
) -> Result<Answer, WebError> {
    let state = screen.state;
    let params = form?.0;
    let ids = ticked_ids(&params)?;
    let me = &screen.who.user;
    let mut chosen: Vec<User> = Vec::new();
    for id in &ids {
        chosen.extend(state.accounts.user(*id).await?);
    }
    if chosen.iter().any(|user| user.id == me.id) {
        return Err(WebError::BadRequest(
            "You cannot delete your own account here.".to_owned(),
        ));
    }
    if !me.is_superuser && chosen.iter().any(|user| user.is_superuser) {
        return Err(WebError::Forbidden(
            "Only a superuser can delete a superuser.",
        ));
    }
    let found: Vec<(String, String)> = chosen
        .iter()
        .map(|user| (user.id.to_string(), user.username.clone()))
        .collect();
    let deletion = Deletion {
        list: USERS,
        section: "users",
        title: "Users",
        consequence: "their sessions end, their tokens are revoked, and their consents and \
                      the applications they own are deleted.",
    };
    deletion
        .ask_or_delete(&screen, &params, "id", found, |id| async move {
            Ok(state.accounts.delete_user(id_of(&id)).await?)
        })
        .await
}

/// Django's "Delete selected groups": their members stay, without them.
#[post("/admin/groups/delete", data = "<form>")]
async fn delete_groups(
    screen: Allowed<'_, DeleteGroup>,
    form: Result<CheckedForm, WebError>,
) -> Result<Answer, WebError> {
    let state = screen.state;
    let params = form?.0;
    let ids = ticked_ids(&params)?;
    let mut found: Vec<(String, String)> = Vec::new();
    for id in &ids {
        if let Some(group) = state.accounts.group(*id).await? {
            found.push((group.id.to_string(), group.name));
        }
    }
    let deletion = Deletion {
        list: GROUPS,
        section: "groups",
        title: "Groups",
        consequence: "their members stay, without the permissions the groups gave.",
    };
    deletion
        .ask_or_delete(&screen, &params, "id", found, |id| async move {
            Ok(state.accounts.delete_group(id_of(&id)).await?)
        })
        .await
}

fn new_user_page(
    screen: &Screen<'_>,
    form: Value,
    refusal: Option<&Refusal>,
) -> Result<Page, WebError> {
    screen.render_refused(
        "admin_user_new.html.tera",
        json!({"section": "users", "form": form}),
        refusal,
    )
}

#[get("/admin/users/new")]
async fn new(screen: Allowed<'_, AddUser>) -> Result<Page, WebError> {
    new_user_page(&screen, json!({}), None)
}

#[post("/admin/users", data = "<form>")]
async fn create(
    screen: Allowed<'_, AddUser>,
    form: Result<CheckedForm, WebError>,
) -> Result<Answer, WebError> {
    let state = screen.state;
    let params = form?.0;
    let echo = json!({
        "username": text(&params, "username")?, "email": text(&params, "email")?,
        "is_staff": ticked(&params, "is_staff")?, "is_superuser": ticked(&params, "is_superuser")?,
    });
    let password = params.single("password")?.unwrap_or_default().to_owned();
    if params.single("password2")?.unwrap_or_default() != password {
        let refused = Refusal::of("password2", "The two passwords differ.");
        return Ok(new_user_page(&screen, echo, Some(&refused))?.into());
    }
    let new = NewUser {
        username: text(&params, "username")?,
        email: text(&params, "email")?,
        password,
        is_staff: ticked(&params, "is_staff")?,
        is_superuser: ticked(&params, "is_superuser")?,
    };
    match state.accounts.create_user(new).await {
        Ok(user) => {
            screen.audit("user created", &user.username);
            screen.flash(format!(
                "The user “{}” was added successfully.",
                user.username
            ));
            Ok(see_other(format!("{USERS}{}/", user.id)))
        }
        Err(error) => {
            let refused = refusal(error)?;
            Ok(new_user_page(&screen, echo, Some(&refused))?.into())
        }
    }
}

async fn user_page(
    screen: &Screen<'_>,
    user: &User,
    refusal: Option<&Refusal>,
) -> Result<Page, WebError> {
    let groups = screen.state.accounts.groups().await?;
    let groups: Vec<Value> = groups
        .iter()
        .map(|group| json!({"id": group.id, "name": group.name, "member": user.groups.contains(&group.id)}))
        .collect();
    screen.render_refused(
        "admin_user.html.tera",
        json!({
            "section": "users", "account": user_row(user), "groups": groups,
            "perms": permission_fields::fields(screen.state, &user.user_permissions).await?,
        }),
        refusal,
    )
}

#[get("/admin/users/<id>")]
async fn show(id: u64, screen: Allowed<'_, ViewUser>) -> Result<Page, WebError> {
    let state = screen.state;
    let user = state.accounts.user(id).await?.ok_or(NO_USER)?;
    user_page(&screen, &user, None).await
}

#[post("/admin/users/<id>", data = "<form>")]
async fn change(
    id: u64,
    screen: Allowed<'_, ChangeUser>,
    form: Result<CheckedForm, WebError>,
) -> Result<Answer, WebError> {
    let state = screen.state;
    let params = form?.0;
    let current = state.accounts.user(id).await?.ok_or(NO_USER)?;
    match params.single("action")?.unwrap_or("save") {
        "password" => {
            let password = params.single("password")?.unwrap_or_default().to_owned();
            if params.single("password2")?.unwrap_or_default() != password {
                let refused = Refusal::of("password2", "The two passwords differ.");
                return Ok(user_page(&screen, &current, Some(&refused)).await?.into());
            }
            // Every session of the user ends, but the admin's own when it is their account.
            let keep = (id == screen.who.user.id).then(|| SecretKey::of(&screen.who.cookie_value));
            if let Err(error) = state
                .accounts
                .change_password(current.username.clone(), password, keep)
                .await
            {
                let refused = refusal(error)?;
                return Ok(user_page(&screen, &current, Some(&refused)).await?.into());
            }
            screen.audit("password set", &current.username);
            screen.flash(format!(
                "The password of “{}” was changed successfully.",
                current.username
            ));
            Ok(see_other(format!("{USERS}{id}/")))
        }
        "save" => {
            permission_fields::refuse_granting(&screen, &params)?;
            let email = text(&params, "email")?;
            if !email.is_empty() && !email.contains('@') {
                return Ok(user_page(
                    &screen,
                    &current,
                    Some(&Refusal::of("email", "That is not an email address.")),
                )
                .await?
                .into());
            }
            // Only a superuser's form carries rank, groups and permissions (checked above);
            // anyone else's keeps them as they are.
            let granting = screen.granted.is_superuser();
            let mut groups = Vec::new();
            for value in params.all("groups") {
                let group: u64 = value
                    .parse()
                    .map_err(|_| WebError::BadRequest("Groups must be group ids.".to_owned()))?;
                groups.push(group);
            }
            let user_permissions = if granting {
                match permission_fields::from_form(&params)? {
                    Ok(permissions) => permissions,
                    Err(message) => {
                        let refused = Refusal::general(message);
                        return Ok(user_page(&screen, &current, Some(&refused)).await?.into());
                    }
                }
            } else {
                current.user_permissions.clone()
            };
            let updated = User {
                first_name: text(&params, "first_name")?,
                last_name: text(&params, "last_name")?,
                email,
                is_active: ticked(&params, "is_active")?,
                is_staff: ticked(&params, "is_staff")?,
                is_superuser: if granting {
                    ticked(&params, "is_superuser")?
                } else {
                    current.is_superuser
                },
                groups: if granting {
                    groups
                } else {
                    current.groups.clone()
                },
                user_permissions,
                ..current.clone()
            };
            let loses_own_access = !updated.is_active
                || !updated.is_staff
                || (current.is_superuser && !updated.is_superuser);
            if id == screen.who.user.id && loses_own_access {
                let refused = Refusal::general(
                    "You cannot take away your own access: ask another superuser.",
                );
                return Ok(user_page(&screen, &current, Some(&refused)).await?.into());
            }
            if let Err(error) = state.accounts.save_user(updated).await {
                let refused = refusal(error)?;
                return Ok(user_page(&screen, &current, Some(&refused)).await?.into());
            }
            screen.audit("user changed", &current.username);
            screen.flash(format!(
                "The user “{}” was changed successfully.",
                current.username
            ));
            Ok(see_other(format!("{USERS}{id}/")))
        }
        other => Err(WebError::BadRequest(format!("Unknown action “{other}”."))),
    }
}

/// The group a form describes; its permissions only from a superuser's form (`kept`
/// otherwise).
fn group_from(
    screen: &Screen<'_>,
    params: &Params,
    id: u64,
    kept: &[Permission],
) -> Result<Result<Group, String>, WebError> {
    permission_fields::refuse_granting(screen, params)?;
    let name = text(params, "name")?;
    if name.is_empty() || name.chars().count() > 150 {
        return Ok(Err("A group name is 1 to 150 characters.".to_owned()));
    }
    let permissions = if screen.granted.is_superuser() {
        match permission_fields::from_form(params)? {
            Ok(permissions) => permissions,
            Err(message) => return Ok(Err(message)),
        }
    } else {
        kept.to_vec()
    };
    Ok(Ok(Group {
        id,
        name,
        permissions,
    }))
}

async fn groups_page(
    screen: &Screen<'_>,
    form: Value,
    message: Option<&str>,
) -> Result<Page, WebError> {
    let groups = screen.state.accounts.groups().await?;
    let mut form = form;
    form["perms"] = permission_fields::fields(screen.state, &[]).await?;
    let rows: Vec<Value> = groups
        .iter()
        .map(|group| json!({"id": group.id, "name": group.name, "permissions": group.permissions.len()}))
        .collect();
    screen.render(
        "admin_groups.html.tera",
        json!({
            "section": "groups", "groups": rows, "form": form,
            "may_delete": screen.granted.allows(Action::Delete, permissions::GROUP),
        }),
        message,
    )
}

#[get("/admin/groups")]
async fn groups(screen: Allowed<'_, ViewGroup>) -> Result<Page, WebError> {
    groups_page(&screen, json!({}), None).await
}

/// The message for the form when a group name is refused, or a failure.
fn group_refusal(error: AccountError) -> Result<String, WebError> {
    match error {
        AccountError::Invalid { message, .. } => Ok(message),
        other => Err(other.into()),
    }
}

#[post("/admin/groups", data = "<form>")]
async fn add_group(
    screen: Allowed<'_, AddGroup>,
    form: Result<CheckedForm, WebError>,
) -> Result<Answer, WebError> {
    let state = screen.state;
    let params = form?.0;
    let echo = json!({"name": text(&params, "name")?});
    let group = match group_from(&screen, &params, 0, &[])? {
        Ok(group) => group,
        Err(message) => return Ok(groups_page(&screen, echo, Some(&message)).await?.into()),
    };
    let name = group.name.clone();
    if let Err(error) = state
        .accounts
        .create_group(group.name, group.permissions)
        .await
    {
        let message = group_refusal(error)?;
        return Ok(groups_page(&screen, echo, Some(&message)).await?.into());
    }
    screen.audit("group created", &name);
    screen.flash(format!("The group “{name}” was added successfully."));
    Ok(see_other(GROUPS))
}

async fn group_page(
    screen: &Screen<'_>,
    id: u64,
    mut form: Value,
    held: &[Permission],
    message: Option<&str>,
) -> Result<Page, WebError> {
    form["perms"] = permission_fields::fields(screen.state, held).await?;
    screen.render(
        "admin_group.html.tera",
        json!({"section": "groups", "id": id, "form": form}),
        message,
    )
}

#[get("/admin/groups/<id>")]
async fn show_group(id: u64, screen: Allowed<'_, ViewGroup>) -> Result<Page, WebError> {
    let state = screen.state;
    let group = state.accounts.group(id).await?.ok_or(NO_GROUP)?;
    group_page(
        &screen,
        id,
        json!({"name": group.name}),
        &group.permissions,
        None,
    )
    .await
}

#[post("/admin/groups/<id>", data = "<form>")]
async fn change_group(
    id: u64,
    screen: Allowed<'_, ChangeGroup>,
    form: Result<CheckedForm, WebError>,
) -> Result<Answer, WebError> {
    let state = screen.state;
    let params = form?.0;
    let current = state.accounts.group(id).await?.ok_or(NO_GROUP)?;
    let echo = json!({"name": text(&params, "name")?});
    let refusal = match group_from(&screen, &params, id, &current.permissions)? {
        Ok(group) => match state.accounts.save_group(group).await {
            Ok(true) => None,
            Ok(false) => return Err(NO_GROUP),
            Err(error) => Some(group_refusal(error)?),
        },
        Err(message) => Some(message),
    };
    if let Some(message) = refusal {
        let page = group_page(&screen, id, echo, &current.permissions, Some(&message));
        return Ok(page.await?.into());
    }
    let name = text(&params, "name")?;
    screen.audit("group changed", &name);
    screen.flash(format!("The group “{name}” was changed successfully."));
    Ok(see_other(GROUPS))
}

pub fn routes() -> Vec<Route> {
    routes![
        list,
        delete_users,
        delete_groups,
        new,
        create,
        show,
        change,
        groups,
        add_group,
        show_group,
        change_group
    ]
}
