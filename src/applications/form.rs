//! DOT's rules for registering and editing OAuth applications (`Application.clean`): the form
//! as submitted, its validation, and the record it makes.

use crate::config::OAuth2Provider;
use crate::params::{FormError, Params};
use crate::store::{Algorithm, Application, ClientType, GrantType, Timestamp};

/// DOT's generated client id length (`generate_client_id`).
pub const CLIENT_ID_LENGTH: usize = 40;
/// DOT's generated client secret length (`generate_client_secret`).
pub const CLIENT_SECRET_LENGTH: usize = 128;

/// Who registers or edits an application: its owner at `/o/applications/`, or staff in the
/// admin console. Only staff may set what makes a client trusted: skipping the consent page,
/// grants that hand out tokens without a user's consent each time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registrar {
    Owner,
    Staff,
}

/// The grants a self-registered client may use: each needs the signed-in user's consent.
/// `password` would let the client collect passwords, `client-credentials` hands out tokens
/// with no user (with any configured scope, `introspection` included), and the implicit and
/// hybrid grants put tokens in URLs.
pub const SELF_SERVICE_GRANTS: [GrantType; 2] =
    [GrantType::AuthorizationCode, GrantType::DeviceCode];

/// The fields a person edits, as submitted (so a refused form is shown again as typed).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ApplicationForm {
    pub name: String,
    pub client_id: String,
    pub client_type: String,
    pub grant_types: Vec<String>,
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub allowed_origins: String,
    pub algorithm: String,
    pub skip_authorization: bool,
    pub hash_client_secret: bool,
    /// The owner's username (admin only; empty for none).
    pub owner: String,
}

/// What a submitted form changes, once it passed every rule.
#[derive(Debug, Clone)]
pub struct ValidApplication {
    pub name: String,
    pub client_id: Option<String>,
    pub client_type: ClientType,
    pub grant_types: Vec<GrantType>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub algorithm: Algorithm,
    pub skip_authorization: bool,
    pub hash_client_secret: bool,
}

impl ApplicationForm {
    /// A blank registration: confidential, authorization code, hashed secret (DOT's defaults).
    pub fn blank() -> Self {
        Self {
            client_type: "confidential".to_owned(),
            grant_types: vec![GrantType::AuthorizationCode.as_str().to_owned()],
            hash_client_secret: true,
            ..Self::default()
        }
    }

    pub fn from_params(params: &Params) -> Result<Self, FormError> {
        let text = |name: &str| -> Result<String, FormError> {
            Ok(params.single(name)?.unwrap_or_default().trim().to_owned())
        };
        Ok(Self {
            name: text("name")?,
            client_id: text("client_id")?,
            client_type: text("client_type")?,
            grant_types: params
                .all("grant_types")
                .into_iter()
                .map(str::to_owned)
                .collect(),
            redirect_uris: text("redirect_uris")?,
            post_logout_redirect_uris: text("post_logout_redirect_uris")?,
            allowed_origins: text("allowed_origins")?,
            algorithm: text("algorithm")?,
            skip_authorization: text("skip_authorization")? == "on",
            hash_client_secret: text("hash_client_secret")? == "on",
            owner: text("owner")?,
        })
    }

    pub fn of(application: &Application, owner: Option<&str>) -> Self {
        Self {
            name: application.name.clone(),
            client_id: application.client_id.clone(),
            client_type: match application.client_type {
                ClientType::Confidential => "confidential",
                ClientType::Public => "public",
            }
            .to_owned(),
            grant_types: application
                .grant_types
                .iter()
                .map(|grant| grant.as_str().to_owned())
                .collect(),
            redirect_uris: application.redirect_uris.join("\n"),
            post_logout_redirect_uris: application.post_logout_redirect_uris.join("\n"),
            allowed_origins: application.allowed_origins.join("\n"),
            algorithm: application.algorithm.as_str().to_owned(),
            skip_authorization: application.skip_authorization,
            hash_client_secret: application.hash_client_secret,
            owner: owner.unwrap_or_default().to_owned(),
        }
    }

    /// Applies DOT's rules, and for an owner the limits of self-service (`current` is the
    /// application being edited: what staff set on it stays); the error is a sentence for the
    /// form.
    pub fn validate(
        &self,
        provider: &OAuth2Provider,
        registrar: Registrar,
        current: Option<&Application>,
    ) -> Result<ValidApplication, Refusal> {
        let mut valid = self.validate_fields(provider)?;
        if registrar == Registrar::Owner {
            limit_to_self_service(&mut valid, current)?;
        }
        Ok(valid)
    }

    fn validate_fields(&self, provider: &OAuth2Provider) -> Result<ValidApplication, Refusal> {
        if self.name.chars().count() > 255 || self.name.chars().any(char::is_control) {
            return Err(Refusal::of(
                "name",
                "The name must be at most 255 characters.",
            ));
        }
        let client_id = if self.client_id.is_empty() {
            None
        } else if self.client_id.len() > 100
            || !self.client_id.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(Refusal::of(
                "client_id",
                "The client id must be 1 to 100 printable characters without spaces.",
            ));
        } else {
            Some(self.client_id.clone())
        };
        let client_type = match self.client_type.as_str() {
            "confidential" => ClientType::Confidential,
            "public" => ClientType::Public,
            _ => {
                return Err(Refusal::of(
                    "client_type",
                    "The client type must be confidential or public.",
                ));
            }
        };
        let mut grant_types = Vec::new();
        for name in &self.grant_types {
            let grant = GrantType::parse(name).ok_or_else(|| {
                Refusal::of(
                    "grant_types",
                    format!("“{name}” is not a grant type oxidot knows."),
                )
            })?;
            if !grant_types.contains(&grant) {
                grant_types.push(grant);
            }
        }
        if grant_types.is_empty() {
            return Err(Refusal::of(
                "grant_types",
                "Choose at least one grant type.",
            ));
        }
        let schemes = &provider.allowed_redirect_uri_schemes;
        let redirect_uris = uri_list(&self.redirect_uris, schemes, "redirect URI", true)
            .map_err(|message| Refusal::of("redirect_uris", message))?;
        let redirecting = [
            GrantType::AuthorizationCode,
            GrantType::Implicit,
            GrantType::OpenidHybrid,
        ];
        if let Some(grant) = grant_types.iter().find(|grant| redirecting.contains(grant))
            && redirect_uris.is_empty()
        {
            return Err(Refusal::of(
                "redirect_uris",
                format!(
                    "Redirect URIs cannot be empty with the grant type {}.",
                    grant.label()
                ),
            ));
        }
        let post_logout_redirect_uris = uri_list(
            &self.post_logout_redirect_uris,
            schemes,
            "post-logout redirect URI",
            true,
        )
        .map_err(|message| Refusal::of("post_logout_redirect_uris", message))?;
        let allowed_origins = uri_list(
            &self.allowed_origins,
            &["http".to_owned(), "https".to_owned()],
            "allowed origin",
            false,
        )
        .map_err(|message| Refusal::of("allowed_origins", message))?;
        let algorithm = Algorithm::parse(&self.algorithm).ok_or_else(|| {
            Refusal::of(
                "algorithm",
                "The algorithm must be none, RS256, HS256, ES256 or EdDSA.",
            )
        })?;
        if algorithm == Algorithm::HS256 {
            let browser_grant = grant_types
                .iter()
                .any(|grant| matches!(grant, GrantType::Implicit | GrantType::OpenidHybrid));
            if client_type == ClientType::Public || browser_grant {
                return Err(Refusal::of(
                    "algorithm",
                    "HS256 cannot be used with public clients or browser grants.",
                ));
            }
            if self.hash_client_secret {
                return Err(Refusal::of(
                    "hash_client_secret",
                    "HS256 signs with the client secret, so the secret cannot be hashed: untick \
                     “Hash client secret” or choose another algorithm.",
                ));
            }
        }
        Ok(ValidApplication {
            name: self.name.clone(),
            client_id,
            client_type,
            grant_types,
            redirect_uris,
            post_logout_redirect_uris,
            allowed_origins,
            algorithm,
            skip_authorization: self.skip_authorization,
            hash_client_secret: self.hash_client_secret,
        })
    }
}

/// A form refused: the sentence to show, and the form field it is about (the input's
/// `name`), if it is about one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub field: Option<&'static str>,
    pub message: String,
}

impl Refusal {
    pub fn of(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field),
            message: message.into(),
        }
    }

    /// About the form as a whole.
    pub fn general(message: impl Into<String>) -> Self {
        Self {
            field: None,
            message: message.into(),
        }
    }
}

/// A lower-case phrase from a check ("a username is …") as a sentence for a form: capital
/// first, full stop last.
pub fn as_sentence(phrase: &str) -> String {
    let mut chars = phrase.chars();
    let first: String = chars
        .next()
        .map(char::to_uppercase)
        .into_iter()
        .flatten()
        .collect();
    let text = format!("{first}{}", chars.as_str());
    if text.ends_with('.') {
        text
    } else {
        format!("{text}.")
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.message)
    }
}

/// What an owner may not set: the trust flags keep what staff gave the application (nothing,
/// for a new one), and asking for more is refused rather than silently dropped.
fn limit_to_self_service(
    valid: &mut ValidApplication,
    current: Option<&Application>,
) -> Result<(), Refusal> {
    let staff_skip = current.is_some_and(|current| current.skip_authorization);
    if valid.skip_authorization && !staff_skip {
        return Err(Refusal::of(
            "skip_authorization",
            "Only staff can let an application skip the consent page: ask an administrator.",
        ));
    }
    valid.skip_authorization = staff_skip;
    let staff_grants: Vec<GrantType> = current
        .map(|current| current.grant_types.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|grant| !SELF_SERVICE_GRANTS.contains(grant))
        .collect();
    if let Some(grant) = valid
        .grant_types
        .iter()
        .find(|grant| !SELF_SERVICE_GRANTS.contains(grant) && !staff_grants.contains(grant))
    {
        return Err(Refusal::of(
            "grant_types",
            format!(
                "Only staff can allow the {} grant: ask an administrator.",
                grant.label()
            ),
        ));
    }
    valid
        .grant_types
        .retain(|grant| SELF_SERVICE_GRANTS.contains(grant));
    valid.grant_types.extend(staff_grants);
    valid.grant_types.sort();
    if valid.grant_types.is_empty() {
        return Err(Refusal::of(
            "grant_types",
            "Choose at least one grant type.",
        ));
    }
    Ok(())
}

/// Space-separated absolute URIs with an allowed scheme, a host and no fragment; origins are
/// bare (`scheme://host[:port]`).
fn uri_list(
    text: &str,
    schemes: &[String],
    what: &str,
    allow_path: bool,
) -> Result<Vec<String>, String> {
    let mut uris: Vec<String> = Vec::new();
    for piece in text.split_whitespace() {
        let refused = |why: &str| format!("“{piece}” is not a valid {what}: {why}.");
        let url = url::Url::parse(piece).map_err(|_| refused("not an absolute URI"))?;
        if !schemes.iter().any(|scheme| scheme == url.scheme()) {
            return Err(refused(&format!(
                "the scheme must be one of {}",
                schemes.join(", ")
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(refused("it has no host"));
        }
        if url.fragment().is_some() {
            return Err(refused("it must not have a fragment"));
        }
        if !allow_path && (url.path() != "/" || url.query().is_some() || piece.ends_with('/')) {
            return Err(refused("an origin has no path or query"));
        }
        if !allow_path && (!url.username().is_empty() || url.password().is_some()) {
            return Err(refused("an origin has no user name"));
        }
        if url.host_str().is_some_and(|host| host.contains('*')) {
            return Err(refused("wildcards are not supported: list each host"));
        }
        if !uris.iter().any(|known| known == piece) {
            uris.push(piece.to_owned());
        }
    }
    Ok(uris)
}

impl ValidApplication {
    /// The application these values describe. `existing` keeps its id, secret and history;
    /// without it, `id`, `client_id` (when none was given) and `created` are new.
    pub fn into_application(
        self,
        existing: Option<Application>,
        id: u64,
        generated_client_id: String,
        owner: Option<u64>,
        now: Timestamp,
    ) -> Application {
        let base = existing.unwrap_or_else(|| Application {
            id,
            client_id: String::new(),
            user: owner,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            client_type: self.client_type,
            grant_types: Vec::new(),
            client_secret: String::new(),
            hash_client_secret: self.hash_client_secret,
            name: String::new(),
            skip_authorization: false,
            created: now,
            updated: now,
            algorithm: Algorithm::None,
            allowed_origins: Vec::new(),
            registration_source: "manual".to_owned(),
            cimd_expires_at: None,
        });
        let client_id = self.client_id.unwrap_or_else(|| {
            if base.client_id.is_empty() {
                generated_client_id
            } else {
                base.client_id.clone()
            }
        });
        Application {
            client_id,
            user: owner,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            client_type: self.client_type,
            grant_types: self.grant_types,
            hash_client_secret: self.hash_client_secret,
            name: self.name,
            skip_authorization: self.skip_authorization,
            updated: now,
            algorithm: self.algorithm,
            allowed_origins: self.allowed_origins,
            ..base
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> ApplicationForm {
        ApplicationForm {
            name: "app".to_owned(),
            redirect_uris: "https://rp.example/cb http://127.0.0.1/cb".to_owned(),
            ..ApplicationForm::blank()
        }
    }

    #[test]
    fn dot_rules_refuse_what_dot_refuses() {
        let provider = OAuth2Provider::default();
        assert!(form().validate(&provider, Registrar::Staff, None).is_ok());
        type Change = fn(&mut ApplicationForm);
        let cases: [(&str, Change); 10] = [
            ("wildcard origin", |f| {
                f.allowed_origins = "https://*.example.com".to_owned();
            }),
            ("no redirect URI for the code grant", |f| {
                f.redirect_uris.clear()
            }),
            ("fragment", |f| {
                f.redirect_uris = "https://rp.example/cb#x".to_owned()
            }),
            ("scheme", |f| {
                f.redirect_uris = "ftp://rp.example/cb".to_owned()
            }),
            ("relative", |f| f.redirect_uris = "/cb".to_owned()),
            ("origin with a path", |f| {
                f.allowed_origins = "https://spa.example/app".to_owned();
            }),
            ("unknown grant", |f| {
                f.grant_types = vec!["magic".to_owned()]
            }),
            ("no grant", |f| f.grant_types.clear()),
            ("HS256 public", |f| {
                f.algorithm = "HS256".to_owned();
                f.client_type = "public".to_owned();
                f.hash_client_secret = false;
            }),
            ("HS256 hashed", |f| f.algorithm = "HS256".to_owned()),
        ];
        for (case, change) in cases {
            let mut bad = form();
            change(&mut bad);
            assert!(
                bad.validate(&provider, Registrar::Staff, None).is_err(),
                "{case}"
            );
        }
        let mut origins = form();
        origins.allowed_origins = "https://spa.example/path".to_owned();
        assert_eq!(
            origins
                .validate(&provider, Registrar::Staff, None)
                .unwrap_err()
                .field,
            Some("allowed_origins")
        );
        origins.allowed_origins = "https://spa.example http://localhost:3000".to_owned();
        assert_eq!(
            origins
                .validate(&provider, Registrar::Staff, None)
                .unwrap()
                .allowed_origins,
            ["https://spa.example", "http://localhost:3000"]
        );
    }
}

#[cfg(test)]
mod self_service_tests {
    use super::*;

    fn owner_form() -> ApplicationForm {
        ApplicationForm {
            name: "mine".to_owned(),
            redirect_uris: "https://rp.example/cb".to_owned(),
            ..ApplicationForm::blank()
        }
    }

    fn existing(grants: Vec<GrantType>, skip: bool) -> Application {
        let now = Timestamp(0);
        let mut application = owner_form()
            .validate(&OAuth2Provider::default(), Registrar::Staff, None)
            .unwrap()
            .into_application(None, 1, "id".to_owned(), Some(2), now);
        application.grant_types = grants;
        application.skip_authorization = skip;
        application
    }

    #[test]
    fn owners_cannot_set_trust_flags() {
        let provider = OAuth2Provider::default();
        let mut skip = owner_form();
        skip.skip_authorization = true;
        assert!(skip.validate(&provider, Registrar::Owner, None).is_err());
        assert!(skip.validate(&provider, Registrar::Staff, None).is_ok());
        for grant in [
            "password",
            "client-credentials",
            "implicit",
            "openid-hybrid",
        ] {
            let mut form = owner_form();
            form.grant_types.push(grant.to_owned());
            let refused = form
                .validate(&provider, Registrar::Owner, None)
                .unwrap_err();
            assert!(refused.message.contains("Only staff"), "{grant}: {refused}");
            assert_eq!(refused.field, Some("grant_types"));
        }
        let mut device = owner_form();
        device
            .grant_types
            .push(GrantType::DeviceCode.as_str().to_owned());
        assert!(device.validate(&provider, Registrar::Owner, None).is_ok());
    }

    #[test]
    fn what_staff_set_survives_an_owners_edit() {
        let provider = OAuth2Provider::default();
        let current = existing(
            vec![GrantType::AuthorizationCode, GrantType::ClientCredentials],
            true,
        );
        // The owner's form has neither field: both stay as staff set them.
        let valid = owner_form()
            .validate(&provider, Registrar::Owner, Some(&current))
            .unwrap();
        assert!(valid.skip_authorization);
        assert_eq!(
            valid.grant_types,
            [GrantType::AuthorizationCode, GrantType::ClientCredentials]
        );
        // A grant staff did not give is still refused.
        let mut more = owner_form();
        more.grant_types.push("password".to_owned());
        assert!(
            more.validate(&provider, Registrar::Owner, Some(&current))
                .is_err()
        );
    }
}
