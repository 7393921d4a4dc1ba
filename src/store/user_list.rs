//! The admin's user list as the store answers it: one page of users matching a search, in a
//! chosen order, with the counts the page shows. The rules — what a search matches, what a
//! column sorts by, where ties go, which page a too-large number means — are written once here;
//! redb applies them to the users it reads, PostgreSQL to columns computed by these same
//! functions when a user is stored (so both agree on every character, not only on ASCII).

use super::User;

/// What the list may be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserOrder {
    /// The order users were created in (the list's own order).
    Id,
    Username,
    Email,
    /// First name, a space, last name.
    Name,
    Joined,
    /// Users who never signed in come first (Django lists nulls first).
    LastLogin,
}

/// The value a user sorts by in one order: text without case (compared byte by byte, as
/// Rust's `str` and PostgreSQL's `COLLATE "C"` do), or a number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum UserSortKey {
    Text(String),
    Number(i64),
}

impl UserOrder {
    pub fn key(self, user: &User) -> UserSortKey {
        match self {
            UserOrder::Id => UserSortKey::Number(user.id.try_into().unwrap_or(i64::MAX)),
            UserOrder::Username => UserSortKey::Text(username_key(user)),
            UserOrder::Email => UserSortKey::Text(email_key(user)),
            UserOrder::Name => UserSortKey::Text(full_name_key(user)),
            UserOrder::Joined => UserSortKey::Number(user.date_joined.0),
            UserOrder::LastLogin => UserSortKey::Number(last_login_key(user)),
        }
    }
}

/// The username a user is sorted by.
pub fn username_key(user: &User) -> String {
    user.username.to_lowercase()
}

/// The email a user is sorted by.
pub fn email_key(user: &User) -> String {
    user.email.to_lowercase()
}

/// The name a user is sorted by (`Name`).
pub fn full_name_key(user: &User) -> String {
    format!("{} {}", user.first_name, user.last_name).to_lowercase()
}

/// The last sign-in a user is sorted by: never sorts before any time.
pub fn last_login_key(user: &User) -> i64 {
    user.last_login.map_or(i64::MIN, |at| at.0)
}

/// What a search looks in: username, email, first and last name, lower-cased, one per line.
/// A search word holds no white space, so it never matches across two fields.
pub fn search_text(user: &User) -> String {
    [
        &user.username,
        &user.email,
        &user.first_name,
        &user.last_name,
    ]
    .iter()
    .map(|field| field.to_lowercase())
    .collect::<Vec<_>>()
    .join("\n")
}

/// One page of the user list, as asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQuery {
    /// The search's words, lower-cased; a user matches when every word is found in one of
    /// their fields (Django admin's `search_fields` rule). None: every user.
    pub words: Vec<String>,
    pub order: UserOrder,
    pub descending: bool,
    /// 1-based; past the last page means the last page.
    pub page: u64,
    pub per_page: u64,
}

impl UserQuery {
    /// The query for a search as typed.
    pub fn new(search: &str, order: UserOrder, descending: bool, page: u64, per_page: u64) -> Self {
        Self {
            words: search
                .split_whitespace()
                .map(|word| word.to_lowercase())
                .collect(),
            order,
            descending,
            page: page.max(1),
            per_page: per_page.max(1),
        }
    }

    pub fn matches(&self, user: &User) -> bool {
        if self.words.is_empty() {
            return true;
        }
        let text = search_text(user);
        self.words.iter().all(|word| text.contains(word.as_str()))
    }

    /// The page shown when `matching` users match: the one asked for, or the last one.
    pub fn shown_page(&self, matching: u64) -> u64 {
        self.page.min(matching.div_ceil(self.per_page).max(1))
    }

    /// How many matching users come before the shown page.
    pub fn offset(&self, matching: u64) -> u64 {
        (self.shown_page(matching) - 1).saturating_mul(self.per_page)
    }

    /// A ranking of users one at a time, for a backend that reads them all: it keeps each
    /// match's sort key and id, not the user.
    pub fn ranking(&self) -> Ranking<'_> {
        Ranking {
            query: self,
            total: 0,
            matching: Vec::new(),
        }
    }

    /// The answer from every user (the reference the backends are checked against).
    pub fn answer(&self, users: impl IntoIterator<Item = User>) -> UserPage {
        let mut ranking = self.ranking();
        let mut by_id = std::collections::HashMap::new();
        for user in users {
            ranking.add(&user);
            by_id.insert(user.id, user);
        }
        let ranked = ranking.finish();
        UserPage {
            users: ranked
                .ids
                .iter()
                .filter_map(|id| by_id.remove(id))
                .collect(),
            page: ranked.page,
            matching: ranked.matching,
            total: ranked.total,
        }
    }
}

/// Users ranked for one `UserQuery`, one at a time (`UserQuery::ranking`).
pub struct Ranking<'a> {
    query: &'a UserQuery,
    total: u64,
    /// Each matching user's key (computed once, not at every comparison) and id.
    matching: Vec<(UserSortKey, u64)>,
}

impl Ranking<'_> {
    pub fn add(&mut self, user: &User) {
        self.total += 1;
        if self.query.matches(user) {
            self.matching.push((self.query.order.key(user), user.id));
        }
    }

    /// The shown page's ids in order, and the counts.
    pub fn finish(mut self) -> Ranked {
        let query = self.query;
        self.matching.sort_by(|a, b| {
            let order = a.cmp(b);
            if query.descending {
                order.reverse()
            } else {
                order
            }
        });
        let matching = self.matching.len() as u64;
        let ids = self
            .matching
            .into_iter()
            .map(|(_, id)| id)
            .skip(usize::try_from(query.offset(matching)).unwrap_or(usize::MAX))
            .take(usize::try_from(query.per_page).unwrap_or(usize::MAX))
            .collect();
        Ranked {
            ids,
            page: query.shown_page(matching),
            matching,
            total: self.total,
        }
    }
}

/// What a `Ranking` found: the ids of the page's users, in order, and the counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked {
    pub ids: Vec<u64>,
    pub page: u64,
    pub matching: u64,
    pub total: u64,
}

/// One page of users and the counts shown with it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserPage {
    pub users: Vec<User>,
    /// The page shown (1-based).
    pub page: u64,
    /// How many users match the search.
    pub matching: u64,
    /// How many users there are.
    pub total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Timestamp;

    fn user(id: u64, username: &str, first: &str, last: &str, login: Option<i64>) -> User {
        User {
            id,
            username: username.to_owned(),
            password: String::new(),
            first_name: first.to_owned(),
            last_name: last.to_owned(),
            email: format!("{username}@Example.com"),
            is_active: true,
            is_staff: false,
            is_superuser: false,
            last_login: login.map(Timestamp),
            date_joined: Timestamp(1_000 - id as i64),
            groups: vec![],
            user_permissions: vec![],
        }
    }

    fn ids(page: &UserPage) -> Vec<u64> {
        page.users.iter().map(|user| user.id).collect()
    }

    #[test]
    fn every_word_must_be_found_in_some_field_without_case() {
        let users = vec![
            user(1, "mary", "Mary Ann", "Évans", None),
            user(2, "ann", "Ann", "Smith", None),
            user(3, "bob", "Bob", "Marley", None),
        ];
        let search = |text: &str| {
            ids(&UserQuery::new(text, UserOrder::Id, false, 1, 10).answer(users.clone()))
        };
        assert_eq!(search(""), vec![1, 2, 3]);
        assert_eq!(search("  ANN  "), vec![1, 2]);
        assert_eq!(search("ann smith"), vec![2]);
        assert_eq!(search("éVANS"), vec![1]);
        assert_eq!(search("EXAMPLE.COM mar"), vec![1, 3]);
        // A word never spans two fields ("ann" + last name "smith").
        assert_eq!(search("annsmith"), Vec::<u64>::new());
        assert_eq!(search("n\ns"), vec![1, 2]);
    }

    #[test]
    fn sorts_by_column_with_ties_by_id_in_the_same_direction() {
        let users = vec![
            user(1, "b", "Zed", "", Some(5)),
            user(2, "A", "zed", "", None),
            user(3, "c", "Amy", "", Some(5)),
            user(4, "Ä", "amy", "", None),
        ];
        let sorted = |order, descending| {
            ids(&UserQuery::new("", order, descending, 1, 10).answer(users.clone()))
        };
        assert_eq!(sorted(UserOrder::Username, false), vec![2, 1, 3, 4]);
        assert_eq!(sorted(UserOrder::Username, true), vec![4, 3, 1, 2]);
        assert_eq!(sorted(UserOrder::Name, false), vec![3, 4, 1, 2]);
        assert_eq!(sorted(UserOrder::Name, true), vec![2, 1, 4, 3]);
        assert_eq!(sorted(UserOrder::LastLogin, false), vec![2, 4, 1, 3]);
        assert_eq!(sorted(UserOrder::Joined, false), vec![4, 3, 2, 1]);
        assert_eq!(sorted(UserOrder::Id, true), vec![4, 3, 2, 1]);
    }

    #[test]
    fn pages_past_the_end_show_the_last_and_counts_are_kept() {
        let users: Vec<User> = (1..=25)
            .map(|id| user(id, &format!("u{id:02}"), "", "", None))
            .collect();
        let page = |n| UserQuery::new("u", UserOrder::Username, false, n, 10).answer(users.clone());
        assert_eq!(ids(&page(2)), (11..=20).collect::<Vec<_>>());
        let last = page(99);
        assert_eq!((last.page, last.matching, last.total), (3, 25, 25));
        assert_eq!(ids(&last), (21..=25).collect::<Vec<_>>());
        let none = UserQuery::new("zzz", UserOrder::Id, false, 4, 10).answer(users);
        assert_eq!(
            (none.page, none.matching, none.total, none.users.len()),
            (1, 0, 25, 0)
        );
        assert_eq!(UserQuery::new("", UserOrder::Id, false, 0, 0).page, 1);
    }
}
