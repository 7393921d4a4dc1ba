//! Sorting and paging of the admin's list pages (users, groups, applications), as Django's
//! change lists do: `?sort=name` or `?sort=-name` on a column header, `?page=N`, the list's
//! filters kept in every link.

use serde_json::{Value, json};

use crate::params::Params;
use crate::web::error::WebError;

/// Rows per page on the sorted lists.
pub const PAGE_ROWS: usize = 100;

/// A column the list may be sorted by: its `sort` name and its header.
pub struct Column {
    pub key: &'static str,
    pub label: &'static str,
}

/// What a row is sorted by in one column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SortValue {
    /// Compared without case.
    Text(String),
    Number(i64),
}

impl SortValue {
    pub fn text(text: &str) -> Self {
        Self::Text(text.to_lowercase())
    }
}

/// A list's sort order and page, read from its query string.
pub struct Listing {
    path: &'static str,
    columns: &'static [Column],
    /// The list's filters as given, kept in every sort and page link.
    filters: Vec<(String, String)>,
    sort: Option<(&'static str, bool)>,
    page: usize,
}

impl Listing {
    /// `filters` names the query parameters the list filters by.
    pub fn from_query(
        path: &'static str,
        params: &Params,
        columns: &'static [Column],
        filters: &[&str],
    ) -> Result<Self, WebError> {
        let mut kept = Vec::new();
        for name in filters {
            if let Some(value) = params.single(name)?
                && !value.is_empty()
            {
                kept.push(((*name).to_owned(), value.to_owned()));
            }
        }
        let sort = params.single("sort")?.and_then(|text| {
            let (descending, key) = match text.strip_prefix('-') {
                Some(key) => (true, key),
                None => (false, text),
            };
            columns
                .iter()
                .find(|column| column.key == key)
                .map(|column| (column.key, descending))
        });
        let page = params
            .single("page")?
            .and_then(|page| page.parse().ok())
            .unwrap_or(1usize)
            .max(1);
        Ok(Self {
            path,
            columns,
            filters: kept,
            sort,
            page,
        })
    }

    /// Sorts `rows` by the chosen column (the list's own order when none is chosen), keeping
    /// equal rows in their order.
    pub fn sort<T>(&self, rows: &mut [T], value: impl Fn(&T, &str) -> SortValue) {
        if let Some((key, descending)) = self.sort {
            rows.sort_by(|a, b| {
                let order = value(a, key).cmp(&value(b, key));
                if descending { order.reverse() } else { order }
            });
        }
    }

    /// The column chosen and whether descending, if one is.
    pub fn sorted_by(&self) -> Option<(&'static str, bool)> {
        self.sort
    }

    /// The page asked for (1-based; may be past the last).
    pub fn asked_page(&self) -> usize {
        self.page
    }

    /// The rows of the current page, and what the template needs to show the headers and
    /// the pager (`listing`).
    pub fn page<T>(&self, rows: Vec<T>) -> (Vec<T>, Value) {
        let total = rows.len();
        let page = self.page.min(total.div_ceil(PAGE_ROWS).max(1));
        let shown: Vec<T> = rows
            .into_iter()
            .skip((page - 1) * PAGE_ROWS)
            .take(PAGE_ROWS)
            .collect();
        (shown, self.pager(total, page))
    }

    /// What the template needs for a list of `total` rows paged elsewhere (by the store),
    /// showing `page`.
    pub fn pager(&self, total: usize, page: usize) -> Value {
        let pages = total.div_ceil(PAGE_ROWS).max(1);
        let sort_text = self
            .sort
            .map(|(key, descending)| format!("{}{key}", if descending { "-" } else { "" }));
        let headers: Vec<Value> = self
            .columns
            .iter()
            .map(|column| {
                let current = self
                    .sort
                    .filter(|(key, _)| *key == column.key)
                    .map(|(_, descending)| descending);
                // A click sorts ascending, a second click descending.
                let next = match current {
                    Some(false) => format!("-{}", column.key),
                    _ => column.key.to_owned(),
                };
                json!({
                    "key": column.key,
                    "label": column.label,
                    "href": self.href(Some(&next), None),
                    "sorted": current.map(|descending| match descending {
                        true => "descending",
                        false => "ascending",
                    }),
                })
            })
            .collect();
        let link = |target: usize| self.href(sort_text.as_deref(), Some(target));
        json!({
            "headers": headers,
            "page": page,
            "pages": pages,
            "total": total,
            "previous": (page > 1).then(|| link(page - 1)),
            "next": (page < pages).then(|| link(page + 1)),
        })
    }

    fn href(&self, sort: Option<&str>, page: Option<usize>) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.filters {
            query.append_pair(name, value);
        }
        if let Some(sort) = sort {
            query.append_pair("sort", sort);
        }
        if let Some(page) = page.filter(|page| *page > 1) {
            query.append_pair("page", &page.to_string());
        }
        let query = query.finish();
        if query.is_empty() {
            self.path.to_owned()
        } else {
            format!("{}?{query}", self.path)
        }
    }
}

/// Orders `Option`s with the missing ones first, as Django's lists do for nulls.
pub fn optional_number(value: Option<i64>) -> SortValue {
    SortValue::Number(value.unwrap_or(i64::MIN))
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: [Column; 2] = [
        Column {
            key: "name",
            label: "Name",
        },
        Column {
            key: "size",
            label: "Size",
        },
    ];

    fn listing(query: &str) -> Listing {
        let params = Params::parse(query).unwrap();
        Listing::from_query("/admin/things/", &params, &COLUMNS, &["q"]).unwrap()
    }

    #[test]
    fn sorts_pages_and_keeps_filters_in_links() {
        let rows: Vec<(String, i64)> = (0..250).map(|n| (format!("n{n:03}"), n % 7)).collect();
        let list = listing("q=x&sort=-name&page=2");
        let mut sorted = rows.clone();
        list.sort(&mut sorted, |row, key| match key {
            "name" => SortValue::text(&row.0),
            _ => SortValue::Number(row.1),
        });
        let (shown, meta) = list.page(sorted);
        assert_eq!(shown.len(), 100);
        assert_eq!(shown[0].0, "n149");
        assert_eq!(meta["pages"], 3);
        assert_eq!(meta["previous"], "/admin/things/?q=x&sort=-name");
        assert_eq!(meta["next"], "/admin/things/?q=x&sort=-name&page=3");
        assert_eq!(meta["headers"][0]["sorted"], "descending");
        assert_eq!(meta["headers"][0]["href"], "/admin/things/?q=x&sort=name");
        assert_eq!(meta["headers"][1]["href"], "/admin/things/?q=x&sort=size");
        // An unknown column or page is ignored, not an error.
        let (shown, meta) = listing("sort=password&page=99").page(rows);
        assert_eq!(shown[0].0, "n200");
        assert_eq!(meta["page"], 3);
    }
}
