//! Every record of the file, page by page, and records stored under their own keys (a copy
//! from another store).

use std::ops::Bound;

use async_trait::async_trait;

use super::admin::{APPLICATION_ID_MARK, GROUP_ID_MARK, USER_ID_MARK};
use super::*;
use crate::store::{Cursor, Family, IdMarks, Record, Section, Transfer};

/// One page of a table after `after`, each row made a record by `make`.
macro_rules! page {
    ($tx:expr, $table:expr, $after:expr, $limit:expr, |$key:ident, $value:ident| $make:expr) => {
        page!($tx, $table, $after, $limit, |$key, $value| $make; _)
    };
    ($tx:expr, $table:expr, $after:expr, $limit:expr, |$key:ident, $value:ident| $make:expr; $kr:ty) => {{
        let table = $tx.txn.open_table($table)?;
        let rows = match $after {
            Some(after) => table.range::<$kr>((Bound::Excluded(after), Bound::Unbounded))?,
            None => table.iter()?,
        };
        let mut records = Vec::new();
        for row in rows.take($limit) {
            let (key, value) = row?;
            let $key = key.value();
            let $value = decode(value.value())?;
            records.push($make);
        }
        records
    }};
}

fn wrong_cursor(section: Section) -> StoreError {
    StoreError::Storage(format!(
        "a page of {} cannot follow that cursor",
        section.label()
    ))
}

fn id_after(section: Section, after: Option<Cursor>) -> Result<Option<u64>, StoreError> {
    match after {
        None => Ok(None),
        Some(Cursor::Id(id)) => Ok(Some(id)),
        Some(_) => Err(wrong_cursor(section)),
    }
}

fn key_after(section: Section, after: Option<Cursor>) -> Result<Option<[u8; 32]>, StoreError> {
    match after {
        None => Ok(None),
        Some(Cursor::Key(key)) => Ok(Some(key)),
        Some(_) => Err(wrong_cursor(section)),
    }
}

fn name_after(section: Section, after: Option<Cursor>) -> Result<Option<String>, StoreError> {
    match after {
        None => Ok(None),
        Some(Cursor::Name(name)) => Ok(Some(name)),
        Some(_) => Err(wrong_cursor(section)),
    }
}

impl ReadTx {
    fn export_page(
        &self,
        section: Section,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        Ok(match section {
            Section::ContentTypes => {
                page!(
                    self,
                    CONTENT_TYPES,
                    id_after(section, after)?,
                    limit,
                    |pk, record| { Record::ContentType(pk, record) }
                )
            }
            Section::Permissions => {
                page!(
                    self,
                    PERMISSIONS,
                    id_after(section, after)?,
                    limit,
                    |pk, record| { Record::Permission(pk, record) }
                )
            }
            Section::Groups => {
                page!(
                    self,
                    GROUPS,
                    id_after(section, after)?,
                    limit,
                    |_id, group| { Record::Group(group) }
                )
            }
            Section::Users => {
                page!(
                    self,
                    USERS,
                    id_after(section, after)?,
                    limit,
                    |_id, user| { Record::User(user) }
                )
            }
            Section::Applications => {
                page!(
                    self,
                    APPLICATIONS,
                    id_after(section, after)?,
                    limit,
                    |_id, application| { Record::Application(application) }
                )
            }
            Section::Sessions => {
                page!(
                    self,
                    SESSIONS,
                    key_after(section, after)?,
                    limit,
                    |key, session| { Record::Session(SecretKey(key), session) }
                )
            }
            Section::Families => {
                let after = match after {
                    None => None,
                    Some(Cursor::Family(family)) => Some(family),
                    Some(_) => return Err(wrong_cursor(section)),
                };
                page!(self, FAMILIES, after, limit, |family, record| {
                    let record: FamilyRecord = record;
                    Record::Family(
                        FamilyId(family),
                        Family {
                            application: record.application,
                            user: record.user,
                            session: record.session,
                        },
                    )
                })
            }
            Section::AccessTokens => {
                page!(
                    self,
                    ACCESS_TOKENS,
                    key_after(section, after)?,
                    limit,
                    |key, token| { Record::Access(SecretKey(key), token) }
                )
            }
            Section::RefreshTokens => {
                page!(
                    self,
                    REFRESH_TOKENS,
                    key_after(section, after)?,
                    limit,
                    |key, token| { Record::Refresh(SecretKey(key), token) }
                )
            }
            Section::IdTokens => {
                page!(
                    self,
                    ID_TOKENS,
                    key_after(section, after)?,
                    limit,
                    |key, token| { Record::Id(SecretKey(key), token) }
                )
            }
            Section::Grants => {
                page!(
                    self,
                    GRANTS,
                    key_after(section, after)?,
                    limit,
                    |key, grant| { Record::Grant(SecretKey(key), grant) }
                )
            }
            Section::Consents => {
                let after = match after {
                    None => None,
                    Some(Cursor::Pair(user, application)) => Some((user, application)),
                    Some(_) => return Err(wrong_cursor(section)),
                };
                page!(self, CONSENTS, after, limit, |pair, consent| {
                    Record::Consent {
                        user: pair.0,
                        application: pair.1,
                        consent,
                    }
                })
            }
            Section::DeviceGrants => {
                page!(
                    self,
                    DEVICE_GRANTS,
                    key_after(section, after)?,
                    limit,
                    |key, grant| { Record::Device(SecretKey(key), grant) }
                )
            }
            Section::PeriodicTasks => {
                let after = name_after(section, after)?;
                page!(self, PERIODIC_TASKS, after.as_deref(), limit, |_name, task| {
                    Record::Task(task)
                }; &str)
            }
            Section::SigningKeys => {
                let after = name_after(section, after)?;
                page!(self, SIGNING_KEYS, after.as_deref(), limit, |_kid, key| {
                    Record::Key(key)
                }; &str)
            }
        })
    }

    fn id_marks(&self) -> Result<IdMarks, StoreError> {
        let highest = |table: TableDefinition<u64, &'static [u8]>, mark: &str| {
            let last = self
                .txn
                .open_table(table)?
                .last()?
                .map_or(0, |(key, _)| key.value());
            Ok::<u64, StoreError>(last.max(self.meta_number(mark)?))
        };
        Ok(IdMarks {
            users: highest(USERS, USER_ID_MARK)?,
            groups: highest(GROUPS, GROUP_ID_MARK)?,
            applications: highest(APPLICATIONS, APPLICATION_ID_MARK)?,
        })
    }
}

impl WriteTx<'_> {
    pub(super) fn import(&mut self, record: &Record) -> Result<(), StoreError> {
        match record {
            Record::ContentType(pk, record) => self.put_content_type(*pk, record),
            Record::Permission(pk, record) => self.put_permission(*pk, record),
            Record::Group(group) => self.put_group(group),
            Record::User(user) => self.put_user(user),
            Record::Application(application) => self.put_application(application),
            Record::Session(key, session) => self.put_session(key, session),
            Record::Family(family, record) => {
                self.ensure_family(*family, record.user, record.application)?;
                match &record.session {
                    Some(session) => self.put_family_session(*family, session),
                    None => Ok(()),
                }
            }
            Record::Access(key, token) => self.put_access_token(key, token),
            Record::Refresh(key, token) => self.put_refresh_token(key, token),
            Record::Id(key, token) => self.put_id_token(key, token),
            Record::Grant(key, grant) => self.put_grant(key, grant),
            Record::Consent {
                user,
                application,
                consent,
            } => self.put_consent(*user, *application, consent),
            Record::Device(key, grant) => self.put_device_grant(key, grant),
            Record::Task(task) => self.put_periodic_task(task),
            Record::Key(key) => {
                self.put_signing_key(key)?;
                let version = self.id_mark(super::keys::KEY_RING_VERSION)?;
                self.raise_id_mark(super::keys::KEY_RING_VERSION, version + 1)
            }
        }
    }
}

#[async_trait]
impl Transfer for Store {
    async fn export_page(
        &self,
        section: Section,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        self.read(|tx| tx.export_page(section, after, limit))
    }

    async fn import(&self, records: Vec<Record>) -> Result<(), StoreError> {
        self.write(move |tx| {
            for record in &records {
                tx.import(record)?;
            }
            Ok(())
        })
        .await
    }

    async fn id_marks(&self) -> Result<IdMarks, StoreError> {
        self.read(|tx| tx.id_marks())
    }

    async fn raise_id_marks(&self, marks: IdMarks) -> Result<(), StoreError> {
        self.write(move |tx| {
            tx.raise_id_mark(USER_ID_MARK, marks.users)?;
            tx.raise_id_mark(GROUP_ID_MARK, marks.groups)?;
            tx.raise_id_mark(APPLICATION_ID_MARK, marks.applications)
        })
        .await
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        self.read(|tx| {
            Ok(tx.user_count()? == 0
                && tx.application_count()? == 0
                && tx.token_count(crate::store::TokenTable::AccessTokens)? == 0
                && tx.token_count(crate::store::TokenTable::RefreshTokens)? == 0)
        })
    }
}
