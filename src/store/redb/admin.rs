//! What the admin console and the self-service pages need from the store: bounded pages of the
//! token tables (fast at any table size), counts, and deleting an application with all it owns.

use redb::{ReadableMultimapTable, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::de::DeserializeOwned;

use super::USERS;
use super::{
    ACCESS_TOKENS, APPLICATIONS, CLIENT_IDS, CONSENTS, DEVICE_GRANTS, EXPIRY, ExpiringKind,
    FAMILY_ENTRY, GRANTS, ID_TOKENS, META, REFRESH_TOKENS, ReadTx, SecretKey, StoreError,
    Timestamp, WriteTx, decode, encode,
};
use crate::store::{AccessToken, Application, Consent, TokenTable, User};

/// Where each token table the admin lists lives in the file.
fn definition(table: TokenTable) -> TableDefinition<'static, [u8; 32], &'static [u8]> {
    match table {
        TokenTable::AccessTokens => ACCESS_TOKENS,
        TokenTable::RefreshTokens => REFRESH_TOKENS,
        TokenTable::Grants => GRANTS,
        TokenTable::IdTokens => ID_TOKENS,
        TokenTable::DeviceGrants => DEVICE_GRANTS,
    }
}

/// One page of a token table, newest first.
pub struct TokenPage<T> {
    pub rows: Vec<(SecretKey, T)>,
    /// Where the next page starts (exclusive), when rows may remain.
    pub next: Option<SecretKey>,
    /// Rows looked at, matching or not.
    pub scanned: usize,
}

/// The high-water mark of application ids, so a deleted application's id is never given to a
/// new one (leftover codes, ID tokens or device grants would otherwise attach to it).
pub(super) const APPLICATION_ID_MARK: &str = "application_id_mark";
/// The same for users and groups (their ids are kept in tokens, sessions and memberships).
pub(super) const USER_ID_MARK: &str = "user_id_mark";
pub(super) const GROUP_ID_MARK: &str = "group_id_mark";

impl ReadTx {
    /// Up to `limit` rows of `table` that `keep` accepts, walking back from `before`, looking at
    /// no more than `scan_limit` rows: a page costs the same whether a filter matches often or
    /// rarely, and a short page says where to go on. Our keys start with their issue time, so
    /// the walk is newest first.
    pub fn token_page<T: DeserializeOwned>(
        &self,
        table: TokenTable,
        before: Option<SecretKey>,
        limit: usize,
        scan_limit: usize,
        keep: impl Fn(&T) -> bool,
    ) -> Result<TokenPage<T>, StoreError> {
        let table = self.txn.open_table(definition(table))?;
        let range = match before {
            Some(key) => table.range(..key.0)?,
            None => table.range::<[u8; 32]>(..)?,
        };
        let mut page = TokenPage {
            rows: Vec::new(),
            next: None,
            scanned: 0,
        };
        for row in range.rev() {
            let (key, value) = row?;
            let key = SecretKey(key.value());
            page.scanned += 1;
            let record: T = decode(value.value())?;
            if keep(&record) {
                page.rows.push((key, record));
            }
            if page.rows.len() == limit || page.scanned == scan_limit {
                page.next = Some(key);
                break;
            }
        }
        Ok(page)
    }

    pub fn token_record<T: DeserializeOwned>(
        &self,
        table: TokenTable,
        key: &SecretKey,
    ) -> Result<Option<T>, StoreError> {
        let table = self.txn.open_table(definition(table))?;
        let value = table.get(key.0)?;
        value.map(|value| decode(value.value())).transpose()
    }

    /// How many records of `table` `keep` accepts, looking at no more than `cap` records (the
    /// dashboard counts used codes this way; codes live minutes, so the table is small).
    pub fn count_matching<T: DeserializeOwned>(
        &self,
        table: TokenTable,
        cap: u64,
        keep: impl Fn(&T) -> bool,
    ) -> Result<u64, StoreError> {
        let table = self.txn.open_table(definition(table))?;
        let mut count = 0;
        for row in table
            .iter()?
            .take(usize::try_from(cap).unwrap_or(usize::MAX))
        {
            let (_, value) = row?;
            if keep(&decode::<T>(value.value())?) {
                count += 1;
            }
        }
        Ok(count)
    }

    pub fn token_count(&self, table: TokenTable) -> Result<u64, StoreError> {
        Ok(self.txn.open_table(definition(table))?.len()?)
    }

    /// How many records of `kind` are filed in the expiry index before `now` (see
    /// `cleanup::due_before`), counting no further than `cap`.
    pub fn expired_count(
        &self,
        kind: ExpiringKind,
        now: Timestamp,
        cap: u64,
    ) -> Result<u64, StoreError> {
        let expiry = self.txn.open_table(EXPIRY)?;
        let kind = kind as u8;
        let mut count = 0;
        for row in expiry.range((kind, i64::MIN, [0u8; 32])..(kind, now.0, [0u8; 32]))? {
            row?;
            count += 1;
            if count == cap {
                break;
            }
        }
        Ok(count)
    }

    pub fn group(&self, id: u64) -> Result<Option<crate::store::Group>, StoreError> {
        self.record(super::GROUPS, id)
    }

    pub fn application_count(&self) -> Result<u64, StoreError> {
        Ok(self.txn.open_table(APPLICATIONS)?.len()?)
    }

    /// The consents `user` gave, by application id.
    pub fn consents_of(&self, user: u64) -> Result<Vec<(u64, Consent)>, StoreError> {
        let table = self.txn.open_table(CONSENTS)?;
        let mut consents = Vec::new();
        for row in table.range((user, 0)..=(user, u64::MAX))? {
            let (key, value) = row?;
            consents.push((key.value().1, decode(value.value())?));
        }
        Ok(consents)
    }
}

impl WriteTx<'_> {
    /// The highest id ever deleted of a kind (0 when none was).
    pub(super) fn id_mark(&self, name: &str) -> Result<u64, StoreError> {
        Ok(self
            .txn
            .open_table(META)?
            .get(name)?
            .map(|value| decode(value.value()))
            .transpose()?
            .unwrap_or(0))
    }

    pub(super) fn raise_id_mark(&mut self, name: &str, id: u64) -> Result<(), StoreError> {
        let mark = self.id_mark(name)?.max(id);
        self.txn
            .open_table(META)?
            .insert(name, encode(&mark)?.as_slice())?;
        Ok(())
    }

    /// Deletes user `id` as Django's cascade does: their sessions end, their tokens are
    /// revoked, their consents and the applications they own (with those applications'
    /// tokens) go, and the id is never given again. Whether the user existed.
    pub fn delete_user_with_all_theirs(
        &mut self,
        id: u64,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        if self.user(id)?.is_none() {
            return Ok(false);
        }
        self.end_sessions_of_user(id, None)?;
        self.revoke_tokens_of(id, None, now)?;
        let consented: Vec<u64> = {
            let table = self.txn.open_table(CONSENTS)?;
            let mut ids = Vec::new();
            for row in table.range((id, 0)..=(id, u64::MAX))? {
                ids.push(row?.0.value().1);
            }
            ids
        };
        for application in consented {
            self.delete_consent(id, application)?;
        }
        let owned: Vec<u64> = {
            let table = self.txn.open_table(APPLICATIONS)?;
            let mut ids = Vec::new();
            for row in table.iter()? {
                let (key, value) = row?;
                let application: Application = decode(value.value())?;
                if application.user == Some(id) {
                    ids.push(key.value());
                }
            }
            ids
        };
        for application in owned {
            self.delete_application(application)?;
        }
        self.delete_user(id)?;
        self.raise_id_mark(USER_ID_MARK, id)?;
        Ok(true)
    }

    /// Deletes group `id` and takes it out of every user's groups; its id is never given
    /// again. Whether the group existed.
    pub fn delete_group_everywhere(&mut self, id: u64) -> Result<bool, StoreError> {
        if self.group(id)?.is_none() {
            return Ok(false);
        }
        let members: Vec<User> = {
            let table = self.txn.open_table(USERS)?;
            let mut members = Vec::new();
            for row in table.iter()? {
                let user: User = decode(row?.1.value())?;
                if user.groups.contains(&id) {
                    members.push(user);
                }
            }
            members
        };
        for mut user in members {
            user.groups.retain(|group| *group != id);
            self.put_user(&user)?;
        }
        self.delete_group(id)?;
        self.raise_id_mark(GROUP_ID_MARK, id)?;
        Ok(true)
    }

    /// The id a new application gets: above every id ever used.
    pub fn fresh_application_id(&self) -> Result<u64, StoreError> {
        let last = self
            .txn
            .open_table(APPLICATIONS)?
            .last()?
            .map_or(0, |(key, _)| key.value());
        let mark: u64 = self
            .txn
            .open_table(META)?
            .get(APPLICATION_ID_MARK)?
            .map(|value| decode(value.value()))
            .transpose()?
            .unwrap_or(0);
        Ok(last.max(mark) + 1)
    }

    /// A real, tiny write (the readiness probe): fails when the file cannot take writes.
    pub fn record_probe(&mut self, at: Timestamp) -> Result<(), StoreError> {
        self.txn
            .open_table(META)?
            .insert("readiness_probe", encode(&at)?.as_slice())?;
        Ok(())
    }

    /// Revokes an access token: it is deleted, and its refresh token marked revoked.
    pub fn revoke_access_token(
        &mut self,
        key: &SecretKey,
        now: Timestamp,
    ) -> Result<Option<AccessToken>, StoreError> {
        let Some(access) = self.access_token(key)? else {
            return Ok(None);
        };
        self.delete_access_token(key)?;
        if let Some(paired) = access.refresh_token.map(SecretKey)
            && let Some(mut refresh) = self.refresh_token(&paired)?
            && refresh.revoked.is_none()
        {
            refresh.revoked = Some(now);
            refresh.access_token = None;
            self.put_refresh_token(&paired, &refresh)?;
        }
        Ok(Some(access))
    }

    pub fn delete_consent(&mut self, user: u64, application: u64) -> Result<bool, StoreError> {
        Ok(self
            .txn
            .open_table(CONSENTS)?
            .remove((user, application))?
            .is_some())
    }

    /// Deletes an application with its tokens and consents (DOT's cascade). Its codes, ID token
    /// records and device grants stay until they expire: none of them works without the
    /// client, and its id is never reused.
    pub fn delete_application(&mut self, id: u64) -> Result<bool, StoreError> {
        let Some(application) = self.application(id)? else {
            return Ok(false);
        };
        let rows: Vec<(u8, [u8; 32])> = {
            let index = self.tokens_by_client()?;
            let mut rows = Vec::new();
            for row in index.get(id)? {
                rows.push(row?.value());
            }
            rows
        };
        for (kind, raw) in rows {
            if kind == FAMILY_ENTRY {
                let mut family = [0u8; 16];
                family.copy_from_slice(&raw[..16]);
                let members: Vec<(u8, [u8; 32])> = {
                    let index = self.tokens_by_family()?;
                    let mut members = Vec::new();
                    for member in index.get(family)? {
                        members.push(member?.value());
                    }
                    members
                };
                for (kind, raw) in members {
                    self.delete_token_of_kind(kind, &SecretKey(raw))?;
                }
            } else {
                self.delete_token_of_kind(kind, &SecretKey(raw))?;
            }
        }
        let consents: Vec<(u64, u64)> = {
            let table = self.txn.open_table(CONSENTS)?;
            let mut keys = Vec::new();
            for row in table.iter()? {
                let key = row?.0.value();
                if key.1 == id {
                    keys.push(key);
                }
            }
            keys
        };
        for (user, application) in consents {
            self.delete_consent(user, application)?;
        }
        self.txn
            .open_table(CLIENT_IDS)?
            .remove(application.client_id.as_str())?;
        self.txn.open_table(APPLICATIONS)?.remove(id)?;
        let mark = self.fresh_application_id()?.max(id + 1) - 1;
        self.txn
            .open_table(META)?
            .insert(APPLICATION_ID_MARK, encode(&mark)?.as_slice())?;
        Ok(true)
    }

    fn delete_token_of_kind(&mut self, kind: u8, key: &SecretKey) -> Result<(), StoreError> {
        if kind == ExpiringKind::AccessToken as u8 {
            self.delete_access_token(key)?;
        } else if kind == ExpiringKind::RefreshToken as u8 {
            self.delete_refresh_token(key)?;
        }
        Ok(())
    }
}
