//! Django's "Delete selected …" action on the admin's lists: the rows ticked on a list are
//! posted to `<list>delete/`, a page names them and asks, and only a confirmed second post
//! deletes. Each list supplies how to find, name and delete its records.

use serde_json::json;

use super::{Answer, see_other};
use crate::params::Params;
use crate::web::error::WebError;
use crate::web::screen::Screen;

/// What one list deletes.
pub struct Deletion {
    /// The list page (`/admin/users/`), where the action is posted to `{list}delete/`.
    pub list: &'static str,
    /// The admin navigation entry to mark.
    pub section: &'static str,
    /// The list's title as a plural ("Users"), for the question and the message.
    pub title: &'static str,
    /// What else goes with each record, said on the confirmation page.
    pub consequence: &'static str,
}

/// The values ticked on a list (`name` fields), without repeats and in their order.
pub fn ticked<'p>(params: &'p Params, field: &str) -> Vec<&'p str> {
    let mut values: Vec<&str> = Vec::new();
    for value in params.all(field) {
        if !values.contains(&value) {
            values.push(value);
        }
    }
    values
}

/// Ids ticked on a list; anything else is a malformed request.
pub fn ticked_ids(params: &Params) -> Result<Vec<u64>, WebError> {
    ticked(params, "id")
        .into_iter()
        .map(|text| {
            text.parse().map_err(|_| {
                WebError::BadRequest("A selected row is not one of this list's.".to_owned())
            })
        })
        .collect()
}

impl Deletion {
    /// Without `confirm=yes`: the page asking about `found` (`(value posted, name shown)`
    /// pairs). With it: `delete_one` on each value (each record with what goes with it, in
    /// its own transaction), then back to the list with a message. Nothing that exists
    /// ticked: back to the list.
    pub async fn ask_or_delete<F, Deleting>(
        &self,
        screen: &Screen<'_>,
        params: &Params,
        field: &str,
        found: Vec<(String, String)>,
        delete_one: F,
    ) -> Result<Answer, WebError>
    where
        F: Fn(String) -> Deleting,
        Deleting: Future<Output = Result<bool, WebError>>,
    {
        if found.is_empty() {
            return Ok(see_other(self.list));
        }
        if params.single("confirm")? != Some("yes") {
            let names: Vec<&str> = found.iter().map(|(_, name)| name.as_str()).collect();
            let count = found.len();
            return Ok(screen
                .render(
                    "admin_confirm.html.tera",
                    json!({
                        "section": self.section,
                        "question": format!(
                            "Delete {count} selected {}?",
                            noun(self.title, count)
                        ),
                        "explanation": format!(
                            "{}: {} This cannot be undone.",
                            names.join(", "),
                            self.consequence
                        ),
                        "action_path": format!("{}delete/", self.list),
                        "action": "delete",
                        "button": "Delete",
                        "field": field,
                        "keys": found.iter().map(|(value, _)| value).collect::<Vec<_>>(),
                        "back": self.list,
                    }),
                    None,
                )?
                .into());
        }
        let mut deleted = 0;
        for (value, name) in found {
            if delete_one(value).await? {
                deleted += 1;
                screen.audit(&format!("{} deleted", noun(self.title, 1)), &name);
            }
        }
        screen.flash(super::tokens::counted(deleted, self.title, "deleted"));
        Ok(see_other(self.list))
    }
}

/// A posted id as a number (ids were checked by `ticked_ids` already).
pub fn id_of(value: &str) -> u64 {
    value.parse().unwrap_or(0)
}

/// "users" for many, "user" for one.
fn noun(title: &str, count: usize) -> String {
    let lower = title.to_lowercase();
    if count == 1 {
        lower.strip_suffix('s').unwrap_or(&lower).to_owned()
    } else {
        lower
    }
}
