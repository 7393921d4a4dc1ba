//! Django fixtures (`model`, `pk`, `fields`), YAML or JSON: `loaddata` and `dumpdata` for
//! `auth.user`, `auth.group` and `oauth2_provider.application`, as a DOT deployment writes them.
//!
//! Loading is all or nothing: every record of every file is applied in one transaction, and a
//! bad record fails the whole command with a message naming its file and position. A record
//! whose pk exists is replaced, as Django's `loaddata` does.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::passwords;
use crate::store::{
    Algorithm, Application, ClientType, GrantType, Group, Permission, Store, StoreError, Timestamp,
    User, WriteTx,
};

#[derive(Debug, Clone, thiserror::Error)]
pub enum FixtureError {
    #[error("{file}: cannot parse as {format}: {message}")]
    Syntax {
        file: String,
        format: &'static str,
        message: String,
    },
    #[error("{at}: {message}")]
    Record { at: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Yaml,
    Json,
}

/// One fixture file's name and contents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FixtureFile {
    pub name: String,
    pub contents: String,
}

#[derive(Debug, Deserialize)]
struct RawRecord {
    model: String,
    #[serde(default)]
    pk: Option<Value>,
    #[serde(default)]
    fields: Map<String, Value>,
}

/// A reference to another record: by pk or by Django natural key.
#[derive(Debug, Clone)]
enum Reference {
    Pk(u64),
    Natural(String),
}

#[derive(Debug, Clone)]
enum Item {
    User {
        pk: Option<u64>,
        user: User,
        groups: Vec<Reference>,
    },
    Group {
        pk: Option<u64>,
        group: Group,
    },
    Application {
        pk: Option<u64>,
        application: Application,
        owner: Option<Reference>,
    },
}

/// Parsed and checked fixtures, ready to be applied in one transaction.
#[derive(Debug, Clone)]
pub struct Prepared {
    items: Vec<(String, Item)>,
    files: usize,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    pub objects: usize,
    pub files: usize,
    pub warnings: Vec<String>,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for warning in &self.warnings {
            writeln!(f, "warning: {warning}")?;
        }
        write!(
            f,
            "Installed {} object(s) from {} fixture(s)",
            self.objects, self.files
        )
    }
}

fn detect_format(name: &str, contents: &str) -> Format {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".json") {
        Format::Json
    } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        Format::Yaml
    } else if contents.trim_start().starts_with('[') {
        Format::Json
    } else {
        Format::Yaml
    }
}

fn parse_file(file: &FixtureFile) -> Result<Vec<RawRecord>, FixtureError> {
    let syntax = |format: &'static str, message: String| FixtureError::Syntax {
        file: file.name.clone(),
        format,
        message,
    };
    match detect_format(&file.name, &file.contents) {
        Format::Json => serde_json::from_str::<Vec<RawRecord>>(&file.contents)
            .map_err(|error| syntax("JSON", error.to_string())),
        Format::Yaml => {
            if file.contents.trim().is_empty() {
                return Ok(Vec::new());
            }
            yaml_serde::from_str::<Vec<RawRecord>>(&file.contents)
                .map_err(|error| syntax("YAML", error.to_string()))
        }
    }
}

/// Parses every file and converts every record; hashes plain client secrets that should be
/// hashed (argon2, so this is slow: run it off the async executor).
pub fn prepare(files: &[FixtureFile]) -> Result<Prepared, FixtureError> {
    let mut prepared = Prepared {
        items: Vec::new(),
        files: files.len(),
        warnings: Vec::new(),
    };
    let mut skipped: std::collections::BTreeMap<String, usize> = Default::default();
    for file in files {
        for (index, raw) in parse_file(file)?.into_iter().enumerate() {
            let pk_text = raw.pk.as_ref().map_or("none".to_owned(), Value::to_string);
            let at = format!(
                "{}: record {} ({} pk={})",
                file.name,
                index + 1,
                raw.model,
                pk_text
            );
            let mut reader = Fields::new(&at, raw.fields);
            let pk = match &raw.pk {
                None | Some(Value::Null) => None,
                Some(value) => Some(as_pk(value).ok_or_else(|| FixtureError::Record {
                    at: at.clone(),
                    message: "pk must be a positive integer".to_owned(),
                })?),
            };
            let item = match raw.model.to_ascii_lowercase().as_str() {
                "auth.user" => convert_user(pk, &mut reader)?,
                "auth.group" => convert_group(pk, &mut reader)?,
                "oauth2_provider.application" => convert_application(pk, &mut reader)?,
                model @ ("oauth2_provider.accesstoken"
                | "oauth2_provider.refreshtoken"
                | "oauth2_provider.grant"
                | "oauth2_provider.idtoken") => {
                    *skipped.entry(model.to_owned()).or_default() += 1;
                    continue;
                }
                other => {
                    return Err(FixtureError::Record {
                        at,
                        message: format!(
                            "unknown model {other:?}; oxidot loads auth.user, auth.group and \
                             oauth2_provider.application"
                        ),
                    });
                }
            };
            prepared.warnings.append(&mut reader.finish());
            prepared.items.push((at, item));
        }
    }
    for (model, count) in skipped {
        prepared.warnings.push(format!(
            "skipped {count} {model} record(s): oxidot does not import tokens yet; clients must \
             obtain new tokens"
        ));
    }
    Ok(prepared)
}

/// Applies prepared fixtures in one transaction.
pub async fn install(store: &Store, prepared: Prepared) -> Result<LoadReport, FixtureError> {
    let report = report_of(&prepared);
    store
        .write(move |tx| apply(tx, &prepared.items))
        .await
        .map_err(unwrap_record_error)?;
    Ok(report)
}

/// `install` for the CLI.
pub fn install_blocking(store: &Store, prepared: Prepared) -> Result<LoadReport, FixtureError> {
    let report = report_of(&prepared);
    store
        .write_blocking(move |tx| apply(tx, &prepared.items))
        .map_err(unwrap_record_error)?;
    Ok(report)
}

fn report_of(prepared: &Prepared) -> LoadReport {
    LoadReport {
        objects: prepared.items.len(),
        files: prepared.files,
        warnings: prepared.warnings.clone(),
    }
}

/// Record errors travel through the writer as `StoreError::Invalid("<at>\u{0}<message>")`.
fn record_error(at: &str, message: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("{at}\u{0}{message}"))
}

fn unwrap_record_error(error: StoreError) -> FixtureError {
    match &error {
        StoreError::Invalid(text) => match text.split_once('\u{0}') {
            Some((at, message)) => FixtureError::Record {
                at: at.to_owned(),
                message: message.to_owned(),
            },
            None => FixtureError::Store(error),
        },
        _ => FixtureError::Store(error),
    }
}

fn apply(tx: &mut WriteTx<'_>, items: &[(String, Item)]) -> Result<(), StoreError> {
    // Django checks foreign keys at the end of the load, so records may refer forward.
    let mut loaded_users = Vec::new();
    let mut loaded_apps = Vec::new();
    for (at, item) in items {
        let conflict = |error: StoreError| match error {
            StoreError::Conflict(message) => record_error(at, message),
            other => other,
        };
        match item {
            Item::Group { pk, group } => {
                let mut group = group.clone();
                group.id = match pk {
                    Some(pk) => *pk,
                    None => match tx.group_id_by_name(&group.name)? {
                        Some(id) => id,
                        None => tx.next_group_id()?,
                    },
                };
                tx.put_group(&group).map_err(conflict)?;
            }
            Item::User { pk, user, groups } => {
                let mut user = user.clone();
                user.id = match pk {
                    Some(pk) => *pk,
                    None => match tx.user_by_username(&user.username)? {
                        Some(existing) => existing.id,
                        None => tx.next_user_id()?,
                    },
                };
                tx.put_user(&user).map_err(conflict)?;
                loaded_users.push((at, user.id, groups));
            }
            Item::Application {
                pk,
                application,
                owner,
            } => {
                let mut application = application.clone();
                application.id = match pk {
                    Some(pk) => *pk,
                    None => tx.next_application_id()?,
                };
                tx.put_application(&application).map_err(conflict)?;
                loaded_apps.push((at, application.id, owner));
            }
        }
    }
    for (at, id, groups) in loaded_users {
        let mut ids = Vec::new();
        for reference in groups {
            let found = match reference {
                Reference::Pk(pk) => tx.group(*pk)?.map(|group| group.id),
                Reference::Natural(name) => tx.group_id_by_name(name)?,
            };
            ids.push(found.ok_or_else(|| {
                record_error(
                    at,
                    format!("refers to group {reference:?}, which does not exist"),
                )
            })?);
        }
        if let Some(mut user) = tx.user(id)? {
            user.groups = ids;
            tx.put_user(&user)?;
        }
    }
    for (at, id, owner) in loaded_apps {
        let Some(reference) = owner else { continue };
        let found = match reference {
            Reference::Pk(pk) => tx.user(*pk)?.map(|user| user.id),
            Reference::Natural(name) => tx.user_by_username(name)?.map(|user| user.id),
        };
        let owner_id = found.ok_or_else(|| {
            record_error(
                at,
                format!("refers to user {reference:?}, which does not exist"),
            )
        })?;
        if let Some(mut application) = tx.application(id)? {
            application.user = Some(owner_id);
            tx.put_application(&application)?;
        }
    }
    Ok(())
}

fn as_pk(value: &Value) -> Option<u64> {
    match value {
        Value::Number(number) => number.as_u64().filter(|pk| *pk > 0),
        Value::String(text) => text.parse().ok().filter(|pk| *pk > 0),
        _ => None,
    }
}

/// Reads typed fields out of a record, remembering which it used so the rest can be reported.
struct Fields<'a> {
    at: &'a str,
    fields: Map<String, Value>,
    warnings: Vec<String>,
}

impl<'a> Fields<'a> {
    fn new(at: &'a str, fields: Map<String, Value>) -> Self {
        Self {
            at,
            fields,
            warnings: Vec::new(),
        }
    }

    fn warn(&mut self, message: impl std::fmt::Display) {
        self.warnings.push(format!("{}: {message}", self.at));
    }

    fn error(&self, field: &str, message: impl std::fmt::Display) -> FixtureError {
        FixtureError::Record {
            at: self.at.to_owned(),
            message: format!("field {field:?}: {message}"),
        }
    }

    fn take(&mut self, field: &str) -> Option<Value> {
        self.fields.remove(field).filter(|value| !value.is_null())
    }

    fn string(&mut self, field: &str) -> Result<Option<String>, FixtureError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(self.error(field, format!("expected text, found {other}"))),
        }
    }

    fn required_string(&mut self, field: &str) -> Result<String, FixtureError> {
        self.string(field)?
            .ok_or_else(|| self.error(field, "is required"))
    }

    fn boolean(&mut self, field: &str, default: bool) -> Result<bool, FixtureError> {
        match self.take(field) {
            None => Ok(default),
            Some(Value::Bool(flag)) => Ok(flag),
            Some(other) => Err(self.error(field, format!("expected true or false, found {other}"))),
        }
    }

    fn timestamp(&mut self, field: &str) -> Result<Option<Timestamp>, FixtureError> {
        match self.string(field)? {
            None => Ok(None),
            Some(text) => parse_datetime(&text)
                .map(Some)
                .ok_or_else(|| self.error(field, format!("{text:?} is not a date and time"))),
        }
    }

    fn references(&mut self, field: &str) -> Result<Vec<Reference>, FixtureError> {
        let Some(value) = self.take(field) else {
            return Ok(Vec::new());
        };
        let Value::Array(items) = value else {
            return Err(self.error(field, "expected a list"));
        };
        items
            .iter()
            .map(|item| reference(item).ok_or_else(|| self.error(field, "bad reference")))
            .collect()
    }

    fn permissions(&mut self, field: &str) -> Result<Vec<Permission>, FixtureError> {
        let Some(value) = self.take(field) else {
            return Ok(Vec::new());
        };
        serde_json::from_value(value).map_err(|_| {
            self.error(
                field,
                "expected permission pks or [codename, app, model] keys",
            )
        })
    }

    /// DOT keeps URI lists in one text field, separated by whitespace (spaces or CRLF).
    fn uri_list(&mut self, field: &str) -> Result<Vec<String>, FixtureError> {
        Ok(self
            .string(field)?
            .map(|text| text.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default())
    }

    /// The warnings, and the fields nobody asked for as more warnings.
    fn finish(self) -> Vec<String> {
        let mut warnings = self.warnings;
        warnings.extend(
            self.fields
                .keys()
                .map(|field| format!("{}: unknown field {field:?} skipped", self.at)),
        );
        warnings
    }
}

fn reference(value: &Value) -> Option<Reference> {
    match value {
        Value::Array(parts) if parts.len() == 1 => parts[0]
            .as_str()
            .map(|name| Reference::Natural(name.to_owned())),
        Value::String(name) if name.parse::<u64>().is_err() => {
            Some(Reference::Natural(name.clone()))
        }
        other => as_pk(other).map(Reference::Pk),
    }
}

/// Django writes `2022-01-08 14:30:45.971629+00:00` in YAML and `2022-01-08T14:30:45.971Z` in
/// JSON; a naive value (USE_TZ = False) is taken as UTC.
pub fn parse_datetime(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    let mut normal = text.replacen(' ', "T", 1);
    let date_time_len = "2022-01-08T14:30:45".len();
    let has_offset = normal.ends_with('Z')
        || normal.ends_with('z')
        || normal
            .get(date_time_len..)
            .is_some_and(|rest| rest.contains('+') || rest.contains('-'));
    if !has_offset {
        normal.push('Z');
    }
    OffsetDateTime::parse(&normal, &Rfc3339)
        .ok()
        .map(Timestamp::from_datetime)
}

/// Formats as Django does for the given fixture format, keeping microseconds.
pub fn format_datetime(at: Timestamp, format: Format) -> String {
    let dt = at.to_datetime();
    let micros = dt.microsecond();
    let fraction = if micros == 0 {
        String::new()
    } else {
        format!(".{micros:06}")
    };
    let (separator, zone) = match format {
        Format::Yaml => (' ', "+00:00"),
        Format::Json => ('T', "Z"),
    };
    format!(
        "{:04}-{:02}-{:02}{separator}{:02}:{:02}:{:02}{fraction}{zone}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

fn convert_user(pk: Option<u64>, fields: &mut Fields<'_>) -> Result<Item, FixtureError> {
    let username = fields.required_string("username")?;
    if username.is_empty() || username.len() > 150 {
        return Err(fields.error("username", "must be 1 to 150 characters"));
    }
    let password = fields.string("password")?.unwrap_or_default();
    let password = if password.is_empty() {
        passwords::unusable()
    } else {
        password
    };
    if let Err(error) = passwords::check_format(&password) {
        fields.warn(format!(
            "{error}; user {username:?} cannot log in until `oxidot changepassword {username}`"
        ));
    }
    let now = Timestamp::from_datetime(OffsetDateTime::now_utc());
    let user = User {
        id: 0,
        password,
        last_login: fields.timestamp("last_login")?,
        is_superuser: fields.boolean("is_superuser", false)?,
        first_name: fields.string("first_name")?.unwrap_or_default(),
        last_name: fields.string("last_name")?.unwrap_or_default(),
        email: fields.string("email")?.unwrap_or_default(),
        is_staff: fields.boolean("is_staff", false)?,
        is_active: fields.boolean("is_active", true)?,
        date_joined: fields.timestamp("date_joined")?.unwrap_or(now),
        groups: Vec::new(),
        user_permissions: fields.permissions("user_permissions")?,
        username,
    };
    let groups = fields.references("groups")?;
    Ok(Item::User { pk, user, groups })
}

fn convert_group(pk: Option<u64>, fields: &mut Fields<'_>) -> Result<Item, FixtureError> {
    let name = fields.required_string("name")?;
    if name.is_empty() || name.len() > 150 {
        return Err(fields.error("name", "must be 1 to 150 characters"));
    }
    Ok(Item::Group {
        pk,
        group: Group {
            id: 0,
            name,
            permissions: fields.permissions("permissions")?,
        },
    })
}

fn convert_application(pk: Option<u64>, fields: &mut Fields<'_>) -> Result<Item, FixtureError> {
    let client_id = fields.required_string("client_id")?;
    if client_id.is_empty() || client_id.len() > 100 || client_id.chars().any(char::is_whitespace) {
        return Err(fields.error("client_id", "must be 1 to 100 characters without spaces"));
    }
    let client_type = match fields.required_string("client_type")?.as_str() {
        "confidential" => ClientType::Confidential,
        "public" => ClientType::Public,
        other => {
            return Err(fields.error(
                "client_type",
                format!("{other:?} is neither confidential nor public"),
            ));
        }
    };
    let mut grant_types = Vec::new();
    if let Some(single) = fields.string("authorization_grant_type")? {
        grant_types.push(
            GrantType::parse(&single)
                .ok_or_else(|| fields.error("authorization_grant_type", unknown_grant(&single)))?,
        );
    }
    if let Some(value) = fields.take("authorization_grant_types") {
        let names: Vec<String> = serde_json::from_value(value)
            .map_err(|_| fields.error("authorization_grant_types", "expected a list of names"))?;
        for name in names {
            let grant = GrantType::parse(&name)
                .ok_or_else(|| fields.error("authorization_grant_types", unknown_grant(&name)))?;
            if !grant_types.contains(&grant) {
                grant_types.push(grant);
            }
        }
    }
    if grant_types.is_empty() {
        return Err(fields.error("authorization_grant_type", "is required"));
    }
    let algorithm_text = fields.string("algorithm")?.unwrap_or_default();
    let algorithm = Algorithm::parse(&algorithm_text).ok_or_else(|| {
        fields.error(
            "algorithm",
            format!("{algorithm_text:?} is not one of \"\", RS256, HS256, ES256, EdDSA"),
        )
    })?;
    let hash_client_secret = fields.boolean("hash_client_secret", true)?;
    let mut client_secret = fields.string("client_secret")?.unwrap_or_default();
    // DOT hashes a plain secret when it is saved; a value that already is a hash stays.
    if hash_client_secret
        && !client_secret.is_empty()
        && passwords::check_format(&client_secret).is_err()
    {
        client_secret = passwords::hash(&client_secret)
            .map_err(|error| fields.error("client_secret", error))?;
    }
    let owner = match fields.take("user") {
        None => None,
        Some(value) => {
            Some(reference(&value).ok_or_else(|| fields.error("user", "bad reference"))?)
        }
    };
    let now = Timestamp::from_datetime(OffsetDateTime::now_utc());
    let created = fields.timestamp("created")?.unwrap_or(now);
    let application = Application {
        id: 0,
        user: None,
        redirect_uris: fields.uri_list("redirect_uris")?,
        post_logout_redirect_uris: fields.uri_list("post_logout_redirect_uris")?,
        client_type,
        grant_types,
        client_secret,
        hash_client_secret,
        name: fields.string("name")?.unwrap_or_default(),
        skip_authorization: fields.boolean("skip_authorization", false)?,
        created,
        updated: fields.timestamp("updated")?.unwrap_or(created),
        algorithm,
        allowed_origins: fields.uri_list("allowed_origins")?,
        registration_source: fields
            .string("registration_source")?
            .unwrap_or_else(|| "manual".to_owned()),
        cimd_expires_at: fields.timestamp("cimd_expires_at")?,
        client_id,
    };
    Ok(Item::Application {
        pk,
        application,
        owner,
    })
}

fn unknown_grant(name: &str) -> String {
    let known: Vec<&str> = GrantType::ALL.iter().map(|grant| grant.as_str()).collect();
    format!("{name:?} is not one of {}", known.join(", "))
}

// ----- dumpdata -----

#[derive(Serialize)]
struct DumpRecord<F> {
    model: &'static str,
    pk: u64,
    fields: F,
}

#[derive(Serialize)]
struct GroupFields<'a> {
    name: &'a str,
    permissions: &'a [Permission],
}

#[derive(Serialize)]
struct UserFields<'a> {
    password: &'a str,
    last_login: Option<String>,
    is_superuser: bool,
    username: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    email: &'a str,
    is_staff: bool,
    is_active: bool,
    date_joined: String,
    groups: &'a [u64],
    user_permissions: &'a [Permission],
}

#[derive(Serialize)]
struct ApplicationFields<'a> {
    client_id: &'a str,
    user: Option<u64>,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    client_type: ClientType,
    authorization_grant_type: &'static str,
    /// oxidot allows several grant types; written only when there is more than one.
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization_grant_types: Option<Vec<&'static str>>,
    client_secret: &'a str,
    hash_client_secret: bool,
    name: &'a str,
    skip_authorization: bool,
    created: String,
    updated: String,
    algorithm: &'static str,
    allowed_origins: String,
    registration_source: &'a str,
    cimd_expires_at: Option<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum AnyRecord<'a> {
    Group(DumpRecord<GroupFields<'a>>),
    User(DumpRecord<UserFields<'a>>),
    Application(DumpRecord<ApplicationFields<'a>>),
}

pub const MODELS: [&str; 3] = ["auth.group", "auth.user", "oauth2_provider.application"];

/// Which models `dumpdata` writes: all, or those named (`app` or `app.model`).
pub fn select_models(requested: &[String]) -> Result<Vec<&'static str>, String> {
    if requested.is_empty() {
        return Ok(MODELS.to_vec());
    }
    let mut selected = Vec::new();
    for name in requested {
        let name = name.to_ascii_lowercase();
        let matching: Vec<&'static str> = MODELS
            .iter()
            .copied()
            .filter(|model| *model == name || model.split('.').next() == Some(name.as_str()))
            .collect();
        if matching.is_empty() {
            return Err(format!(
                "unknown model {name:?}; choose from {}",
                MODELS.join(", ")
            ));
        }
        for model in matching {
            if !selected.contains(&model) {
                selected.push(model);
            }
        }
    }
    // Django's order: groups before the users that refer to them, users before applications.
    selected.sort_by_key(|model| MODELS.iter().position(|known| known == model));
    Ok(selected)
}

pub fn dump(store: &Store, models: &[&str], format: Format) -> Result<String, FixtureError> {
    let (groups, users, applications) =
        store.read(|tx| Ok((tx.groups()?, tx.users()?, tx.applications()?)))?;
    let when = |at: Timestamp| format_datetime(at, format);
    let mut records = Vec::new();
    for model in models {
        match *model {
            "auth.group" => records.extend(groups.iter().map(|group| {
                AnyRecord::Group(DumpRecord {
                    model: "auth.group",
                    pk: group.id,
                    fields: GroupFields {
                        name: &group.name,
                        permissions: &group.permissions,
                    },
                })
            })),
            "auth.user" => records.extend(users.iter().map(|user| {
                AnyRecord::User(DumpRecord {
                    model: "auth.user",
                    pk: user.id,
                    fields: UserFields {
                        password: &user.password,
                        last_login: user.last_login.map(when),
                        is_superuser: user.is_superuser,
                        username: &user.username,
                        first_name: &user.first_name,
                        last_name: &user.last_name,
                        email: &user.email,
                        is_staff: user.is_staff,
                        is_active: user.is_active,
                        date_joined: when(user.date_joined),
                        groups: &user.groups,
                        user_permissions: &user.user_permissions,
                    },
                })
            })),
            "oauth2_provider.application" => records.extend(applications.iter().map(|app| {
                let grants: Vec<&'static str> =
                    app.grant_types.iter().map(|grant| grant.as_str()).collect();
                AnyRecord::Application(DumpRecord {
                    model: "oauth2_provider.application",
                    pk: app.id,
                    fields: ApplicationFields {
                        client_id: &app.client_id,
                        user: app.user,
                        redirect_uris: app.redirect_uris.join(" "),
                        post_logout_redirect_uris: app.post_logout_redirect_uris.join(" "),
                        client_type: app.client_type,
                        authorization_grant_type: grants
                            .first()
                            .copied()
                            .unwrap_or(GrantType::AuthorizationCode.as_str()),
                        authorization_grant_types: (grants.len() > 1).then(|| grants.clone()),
                        client_secret: &app.client_secret,
                        hash_client_secret: app.hash_client_secret,
                        name: &app.name,
                        skip_authorization: app.skip_authorization,
                        created: when(app.created),
                        updated: when(app.updated),
                        algorithm: app.algorithm.as_str(),
                        allowed_origins: app.allowed_origins.join(" "),
                        registration_source: &app.registration_source,
                        cimd_expires_at: app.cimd_expires_at.map(when),
                    },
                })
            })),
            _ => {}
        }
    }
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&records)
            .map_err(|error| StoreError::Invalid(error.to_string()))?,
        Format::Yaml => yaml_serde::to_string(&records)
            .map_err(|error| StoreError::Invalid(error.to_string()))?,
    };
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_datetimes_parse_in_both_formats() {
        let yaml = parse_datetime("2022-01-08 14:30:45.971629+00:00").unwrap();
        let json = parse_datetime("2022-01-08T14:30:45.971629Z").unwrap();
        assert_eq!(yaml, json);
        assert_eq!(
            format_datetime(yaml, Format::Yaml),
            "2022-01-08 14:30:45.971629+00:00"
        );
        assert_eq!(
            format_datetime(yaml, Format::Json),
            "2022-01-08T14:30:45.971629Z"
        );
        assert_eq!(
            parse_datetime("2022-01-29 18:12:59"),
            parse_datetime("2022-01-29T18:12:59Z")
        );
        assert_eq!(
            parse_datetime("2022-01-29T20:12:59+02:00"),
            parse_datetime("2022-01-29T18:12:59Z")
        );
        assert!(parse_datetime("yesterday").is_none());
    }

    #[test]
    fn model_selection_accepts_apps_and_models() {
        assert_eq!(select_models(&[]).unwrap(), MODELS.to_vec());
        assert_eq!(
            select_models(&["oauth2_provider".to_owned(), "auth.user".to_owned()]).unwrap(),
            vec!["auth.user", "oauth2_provider.application"]
        );
        assert!(select_models(&["auth.permission".to_owned()]).is_err());
    }
}
