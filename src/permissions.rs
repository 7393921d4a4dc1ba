//! Django's permission model for staff: per-model `add`, `change`, `delete` and `view`
//! permissions (`oauth2_provider.change_application`, `django_celery_beat.add_periodictask`,
//! ...), held by a user directly or through their groups; superusers hold them all, inactive
//! users none. The admin console checks one before every page and action.
//!
//! Permissions come from DOT dumps as natural keys (`[codename, app_label, model]`, what
//! `dumpdata --natural-foreign` writes) or as primary keys of Django's `auth_permission` table,
//! which resolve through the `auth.permission` records loaded with them.

use std::collections::BTreeSet;

use crate::store::{Group, Permission, User};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    View,
    Add,
    Change,
    Delete,
}

impl Action {
    pub const ALL: [Action; 4] = [Action::Add, Action::Change, Action::Delete, Action::View];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::View => "view",
            Action::Add => "add",
            Action::Change => "change",
            Action::Delete => "delete",
        }
    }
}

/// A model the admin manages, as Django names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    pub app_label: &'static str,
    pub model: &'static str,
    /// Django's `verbose_name`, for "Can change application".
    pub verbose: &'static str,
}

macro_rules! models {
    ($($name:ident = $app:literal, $model:literal, $verbose:literal;)*) => {
        $(pub const $name: Model = Model { app_label: $app, model: $model, verbose: $verbose };)*
        /// Every model whose permissions the admin checks, in the admin's order.
        pub const MODELS: &[Model] = &[$($name),*];
    };
}

models! {
    USER = "auth", "user", "user";
    GROUP = "auth", "group", "group";
    APPLICATION = "oauth2_provider", "application", "application";
    ACCESS_TOKEN = "oauth2_provider", "accesstoken", "access token";
    REFRESH_TOKEN = "oauth2_provider", "refreshtoken", "refresh token";
    GRANT = "oauth2_provider", "grant", "grant";
    ID_TOKEN = "oauth2_provider", "idtoken", "id token";
    DEVICE_GRANT = "oauth2_provider", "devicegrant", "device grant";
    PERIODIC_TASK = "django_celery_beat", "periodictask", "periodic task";
    SIGNING_KEY = "oxidot", "signingkey", "signing key";
}

impl Model {
    pub fn codename(self, action: Action) -> String {
        format!("{}_{}", action.as_str(), self.model)
    }

    /// `app_label.codename`, as `user.has_perm` takes it.
    pub fn permission(self, action: Action) -> String {
        format!("{}.{}", self.app_label, self.codename(action))
    }

    /// Django's default permission name: "Can change application".
    pub fn label(self, action: Action) -> String {
        format!("Can {} {}", action.as_str(), self.verbose)
    }

    /// The natural key a user or group stores for it.
    pub fn natural(self, action: Action) -> Permission {
        Permission::Natural(vec![
            self.codename(action),
            self.app_label.to_owned(),
            self.model.to_owned(),
        ])
    }
}

/// A permission's natural key: `[codename, app_label, model]`.
pub type NaturalKey = (String, String, String);

/// The natural key of a stored permission, resolving a primary key with `by_pk`.
pub fn natural_key(
    permission: &Permission,
    by_pk: &impl Fn(u64) -> Option<NaturalKey>,
) -> Option<NaturalKey> {
    match permission {
        Permission::Natural(parts) => match parts.as_slice() {
            [codename, app_label, model] => {
                Some((codename.clone(), app_label.clone(), model.clone()))
            }
            // `[codename, app_label]` alone is enough to name it.
            [codename, app_label] => Some((codename.clone(), app_label.clone(), String::new())),
            _ => None,
        },
        Permission::Pk(pk) => by_pk(*pk),
    }
}

/// What a user may do: Django's `get_all_permissions()` with `is_superuser` and `is_active`.
#[derive(Debug, Clone, Default)]
pub struct Granted {
    everything: bool,
    /// `app_label.codename`.
    names: BTreeSet<String>,
}

impl Granted {
    /// The user's own and their groups' permissions (`groups` may hold others: only the
    /// user's count).
    pub fn of(user: &User, groups: &[Group], by_pk: &impl Fn(u64) -> Option<NaturalKey>) -> Self {
        if !user.is_active {
            return Self::default();
        }
        let names = user
            .user_permissions
            .iter()
            .chain(
                groups
                    .iter()
                    .filter(|group| user.groups.contains(&group.id))
                    .flat_map(|group| group.permissions.iter()),
            )
            .filter_map(|permission| natural_key(permission, by_pk))
            .map(|(codename, app_label, _)| format!("{app_label}.{codename}"))
            .collect();
        Self {
            everything: user.is_superuser,
            names,
        }
    }

    pub fn is_superuser(&self) -> bool {
        self.everything
    }

    /// Django's `has_perm`; viewing is also allowed by the change permission (the admin's
    /// `has_view_permission`).
    pub fn allows(&self, action: Action, model: Model) -> bool {
        self.everything
            || self.names.contains(&model.permission(action))
            || (action == Action::View && self.names.contains(&model.permission(Action::Change)))
    }

    /// Every permission by name, sorted (the OIDC `permissions` claim).
    pub fn names(&self) -> Vec<String> {
        self.names.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(superuser: bool, active: bool, permissions: Vec<Permission>) -> User {
        User {
            is_active: active,
            is_staff: true,
            is_superuser: superuser,
            groups: vec![7],
            user_permissions: permissions,
            ..User::sample(1, "u")
        }
    }

    fn none(_: u64) -> Option<NaturalKey> {
        None
    }

    #[test]
    fn permissions_come_from_the_user_their_groups_and_resolved_pks() {
        let group = Group {
            id: 7,
            name: "ops".to_owned(),
            permissions: vec![Permission::Pk(42)],
        };
        let other = Group {
            id: 8,
            name: "not a member".to_owned(),
            permissions: vec![PERIODIC_TASK.natural(Action::Add)],
        };
        let by_pk = |pk: u64| {
            (pk == 42).then(|| {
                (
                    "delete_accesstoken".to_owned(),
                    "oauth2_provider".to_owned(),
                    "accesstoken".to_owned(),
                )
            })
        };
        let granted = Granted::of(
            &user(false, true, vec![APPLICATION.natural(Action::Change)]),
            &[group, other],
            &by_pk,
        );
        assert!(granted.allows(Action::Change, APPLICATION));
        assert!(
            granted.allows(Action::View, APPLICATION),
            "change implies view"
        );
        assert!(!granted.allows(Action::Delete, APPLICATION));
        assert!(
            granted.allows(Action::Delete, ACCESS_TOKEN),
            "through the group's pk"
        );
        assert!(
            !granted.allows(Action::Add, PERIODIC_TASK),
            "not their group"
        );
        assert_eq!(
            granted.names(),
            [
                "oauth2_provider.change_application",
                "oauth2_provider.delete_accesstoken"
            ]
        );
    }

    #[test]
    fn superusers_may_do_everything_and_inactive_users_nothing() {
        let superuser = Granted::of(&user(true, true, Vec::new()), &[], &none);
        assert!(
            MODELS
                .iter()
                .all(|model| Action::ALL.iter().all(|a| superuser.allows(*a, *model)))
        );
        let inactive = Granted::of(
            &user(true, false, vec![APPLICATION.natural(Action::View)]),
            &[],
            &none,
        );
        assert!(!inactive.allows(Action::View, APPLICATION));
    }
}
