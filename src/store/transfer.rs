//! Moving everything from one store to another (`oxidot copy-store`): a redb file onto
//! PostgreSQL, or back. Each backend lists its records section by section, in key order and
//! in pages (a store of millions of tokens never sits in memory whole), and takes them in
//! batches, each one transaction that stores records under their own keys and ids.

use async_trait::async_trait;

use super::{
    AccessToken, Application, Consent, ContentType, DeviceGrant, FamilyId, Grant, Group, IdToken,
    OidcSession, PeriodicTask, PermissionRecord, RefreshToken, SecretKey, Session, SigningKey,
    Storage, StoreError, User,
};

/// The kinds of record, in the order a copy writes them: what is referred to before what
/// refers to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    ContentTypes,
    Permissions,
    Groups,
    Users,
    Applications,
    Sessions,
    Families,
    AccessTokens,
    RefreshTokens,
    IdTokens,
    Grants,
    Consents,
    DeviceGrants,
    PeriodicTasks,
    SigningKeys,
}

pub const SECTIONS: [Section; 15] = [
    Section::ContentTypes,
    Section::Permissions,
    Section::Groups,
    Section::Users,
    Section::Applications,
    Section::Sessions,
    Section::Families,
    Section::AccessTokens,
    Section::RefreshTokens,
    Section::IdTokens,
    Section::Grants,
    Section::Consents,
    Section::DeviceGrants,
    Section::PeriodicTasks,
    Section::SigningKeys,
];

impl Section {
    pub fn label(self) -> &'static str {
        match self {
            Section::ContentTypes => "content types",
            Section::Permissions => "permissions",
            Section::Groups => "groups",
            Section::Users => "users",
            Section::Applications => "applications",
            Section::Sessions => "sessions",
            Section::Families => "token families",
            Section::AccessTokens => "access tokens",
            Section::RefreshTokens => "refresh tokens",
            Section::IdTokens => "ID tokens",
            Section::Grants => "authorization codes",
            Section::Consents => "consents",
            Section::DeviceGrants => "device grants",
            Section::PeriodicTasks => "periodic tasks",
            Section::SigningKeys => "signing keys",
        }
    }
}

/// Who a token family belongs to, and the OpenID authentication it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub application: u64,
    pub user: Option<u64>,
    pub session: Option<OidcSession>,
}

/// One record with the key it is stored under.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    ContentType(u64, ContentType),
    Permission(u64, PermissionRecord),
    Group(Group),
    User(User),
    Application(Application),
    Session(SecretKey, Session),
    Family(FamilyId, Family),
    Access(SecretKey, AccessToken),
    Refresh(SecretKey, RefreshToken),
    Id(SecretKey, IdToken),
    Grant(SecretKey, Grant),
    Consent {
        user: u64,
        application: u64,
        consent: Consent,
    },
    Device(SecretKey, DeviceGrant),
    Task(PeriodicTask),
    Key(SigningKey),
}

/// Where a page of a section ends: the next page starts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    Id(u64),
    Key([u8; 32]),
    Family([u8; 16]),
    Pair(u64, u64),
    Name(String),
}

impl Record {
    pub fn cursor(&self) -> Cursor {
        match self {
            Record::ContentType(pk, _) | Record::Permission(pk, _) => Cursor::Id(*pk),
            Record::Group(group) => Cursor::Id(group.id),
            Record::User(user) => Cursor::Id(user.id),
            Record::Application(application) => Cursor::Id(application.id),
            Record::Session(key, _)
            | Record::Access(key, _)
            | Record::Refresh(key, _)
            | Record::Id(key, _)
            | Record::Grant(key, _)
            | Record::Device(key, _) => Cursor::Key(key.0),
            Record::Family(family, _) => Cursor::Family(family.0),
            Record::Consent {
                user, application, ..
            } => Cursor::Pair(*user, *application),
            Record::Task(task) => Cursor::Name(task.name.clone()),
            Record::Key(key) => Cursor::Name(key.kid.clone()),
        }
    }
}

/// The highest id each kind of record ever had (deleted ones included): a copy keeps them,
/// so that no id a deleted record had is given again on the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdMarks {
    pub users: u64,
    pub groups: u64,
    pub applications: u64,
}

#[async_trait]
pub trait Transfer: Send + Sync {
    /// Up to `limit` records of `section` whose keys follow `after`, in key order.
    async fn export_page(
        &self,
        section: Section,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError>;

    /// Stores records under their own keys and ids (replacing what holds them), in one
    /// transaction, with every index a record has.
    async fn import(&self, records: Vec<Record>) -> Result<(), StoreError>;

    async fn id_marks(&self) -> Result<IdMarks, StoreError>;

    /// Raises the marks to at least these.
    async fn raise_id_marks(&self, marks: IdMarks) -> Result<(), StoreError>;

    /// Whether the store holds no users, applications or tokens (a copy goes only into one).
    async fn is_empty(&self) -> Result<bool, StoreError>;
}

/// Records per page and per import transaction.
pub const COPY_BATCH: usize = 1000;

/// What a copy moved, section by section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    pub copied: Vec<(Section, u64)>,
}

impl std::fmt::Display for CopyReport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .copied
            .iter()
            .map(|(section, count)| format!("{count} {}", section.label()))
            .collect();
        write!(formatter, "copied {}", parts.join(", "))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(
        "the destination already holds users, applications or tokens: a copy only fills an \
         empty database (it never merges two deployments)"
    )]
    NotEmpty,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Copies every record of `from` into `to`, which must be empty (a copy never merges two
/// deployments). Sessions, tokens and codes keep their keys, so every live token, cookie and
/// client still works on the other side.
pub async fn copy_store(from: &dyn Storage, to: &dyn Storage) -> Result<CopyReport, CopyError> {
    if !to.is_empty().await? {
        return Err(CopyError::NotEmpty);
    }
    let mut report = CopyReport::default();
    for section in SECTIONS {
        let mut after = None;
        let mut count = 0u64;
        loop {
            let page = from.export_page(section, after.clone(), COPY_BATCH).await?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.cursor());
            let full = page.len() == COPY_BATCH;
            count += page.len() as u64;
            to.import(page).await?;
            if !full {
                break;
            }
        }
        report.copied.push((section, count));
    }
    to.raise_id_marks(from.id_marks().await?).await?;
    Ok(report)
}
