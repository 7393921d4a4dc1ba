//! Who is signed in: the session cookie resolved to a live session and an active user.

use rocket::http::{Cookie, CookieJar, SameSite, Status};
use rocket::request::{self, FromRequest, Request};
use serde::Serialize;

use std::marker::PhantomData;

use crate::permissions::{self, Action, Granted, Model};
use crate::store::{Session, User};
use crate::web::AppState;
use crate::web::error::WebError;
use crate::web::screen::Screen;

pub struct SignedIn {
    pub user: User,
    pub session: Session,
    pub cookie_value: String,
}

/// The signed-in user, if any.
pub struct CurrentUser(pub Option<SignedIn>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CurrentUser {
    type Error = WebError;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        let Some(state) = req.rocket().state::<AppState>() else {
            return request::Outcome::Error((
                Status::InternalServerError,
                WebError::Internal("no application state".to_owned()),
            ));
        };
        let cookie_name = &state.settings.sessions.cookie_name;
        let Some(value) = req.cookies().get(cookie_name).map(|c| c.value().to_owned()) else {
            return request::Outcome::Success(CurrentUser(None));
        };
        match state.accounts.session_user(&value) {
            Ok(found) => {
                request::Outcome::Success(CurrentUser(found.map(|(session, user)| SignedIn {
                    user,
                    session,
                    cookie_value: value,
                })))
            }
            Err(error) => request::Outcome::Error((Status::InternalServerError, error.into())),
        }
    }
}

/// What templates may know of the user.
#[derive(Serialize)]
pub struct UserView<'a> {
    pub username: &'a str,
    pub is_staff: bool,
    pub is_superuser: bool,
}

impl CurrentUser {
    pub fn view(&self) -> Option<UserView<'_>> {
        self.0.as_ref().map(SignedIn::view)
    }
}

impl SignedIn {
    pub fn view(&self) -> UserView<'_> {
        UserView {
            username: &self.user.username,
            is_staff: self.user.is_staff,
            is_superuser: self.user.is_superuser,
        }
    }
}

/// Who may use a page: anyone signed in, staff, or superusers. A request without a session
/// fails with 401 (the catcher sends pages to the login form and back); one whose user lacks
/// the rank fails with 403. Either way the handler never runs and its body is never read.
async fn signed_in_with<'r>(
    req: &'r Request<'_>,
    allowed: fn(&User) -> bool,
) -> request::Outcome<SignedIn, WebError> {
    match CurrentUser::from_request(req).await {
        request::Outcome::Success(CurrentUser(Some(signed_in))) => {
            if allowed(&signed_in.user) {
                request::Outcome::Success(signed_in)
            } else {
                request::Outcome::Error((
                    Status::Forbidden,
                    WebError::Forbidden("Your account may not use this page."),
                ))
            }
        }
        request::Outcome::Success(CurrentUser(None)) => request::Outcome::Error((
            Status::Unauthorized,
            WebError::Forbidden("Log in to use this page."),
        )),
        request::Outcome::Error(failure) => request::Outcome::Error(failure),
        request::Outcome::Forward(status) => request::Outcome::Forward(status),
    }
}

/// The page a handler renders for the user the guard let in, with what staff may do.
async fn screen_for<'r>(
    req: &'r Request<'_>,
    allowed: fn(&User) -> bool,
) -> request::Outcome<Screen<'r>, WebError> {
    let Some(state) = req.rocket().state::<AppState>() else {
        return request::Outcome::Error((
            Status::InternalServerError,
            WebError::Internal("no application state".to_owned()),
        ));
    };
    let who = match signed_in_with(req, allowed).await {
        request::Outcome::Success(who) => who,
        request::Outcome::Error(failure) => return request::Outcome::Error(failure),
        request::Outcome::Forward(status) => return request::Outcome::Forward(status),
    };
    let granted = if who.user.is_staff {
        match crate::accounts::granted(&state.store, &who.user) {
            Ok(granted) => granted,
            Err(error) => {
                return request::Outcome::Error((Status::InternalServerError, error.into()));
            }
        }
    } else {
        Granted::default()
    };
    request::Outcome::Success(Screen {
        state,
        who,
        granted,
        cookies: req.cookies(),
    })
}

/// What an admin page or action needs: one of Django's model permissions.
pub trait Needs: Send + Sync + 'static {
    const ACTION: Action;
    const MODEL: Model;
}

/// A staff user holding the permission `N` names (superusers hold them all). Without a
/// session the request is sent to the login page; without the permission it fails with 403
/// before the handler runs and before its body is read.
pub struct Allowed<'r, N: Needs>(pub Screen<'r>, PhantomData<fn() -> N>);

#[rocket::async_trait]
impl<'r, N: Needs> FromRequest<'r> for Allowed<'r, N> {
    type Error = WebError;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        let screen = match screen_for(req, |user| user.is_staff).await {
            request::Outcome::Success(screen) => screen,
            request::Outcome::Error(failure) => return request::Outcome::Error(failure),
            request::Outcome::Forward(status) => return request::Outcome::Forward(status),
        };
        if screen.granted.allows(N::ACTION, N::MODEL) {
            request::Outcome::Success(Allowed(screen, PhantomData))
        } else {
            request::Outcome::Error((
                Status::Forbidden,
                WebError::Forbidden("Your account lacks the permission this page needs."),
            ))
        }
    }
}

impl<'r, N: Needs> std::ops::Deref for Allowed<'r, N> {
    type Target = Screen<'r>;

    fn deref(&self) -> &Screen<'r> {
        &self.0
    }
}

/// Names a permission as a type, for `Allowed<'_, ChangeApplication>`.
macro_rules! needs {
    ($($name:ident = $action:ident $model:ident;)*) => {$(
        pub struct $name;
        impl Needs for $name {
            const ACTION: Action = Action::$action;
            const MODEL: Model = permissions::$model;
        }
    )*};
}

needs! {
    ViewUser = View USER;
    AddUser = Add USER;
    ChangeUser = Change USER;
    DeleteUser = Delete USER;
    ViewGroup = View GROUP;
    AddGroup = Add GROUP;
    ChangeGroup = Change GROUP;
    DeleteGroup = Delete GROUP;
    ViewApplication = View APPLICATION;
    AddApplication = Add APPLICATION;
    ChangeApplication = Change APPLICATION;
    DeleteApplication = Delete APPLICATION;
    ViewPeriodicTask = View PERIODIC_TASK;
    AddPeriodicTask = Add PERIODIC_TASK;
    ChangePeriodicTask = Change PERIODIC_TASK;
    DeletePeriodicTask = Delete PERIODIC_TASK;
    ViewSigningKey = View SIGNING_KEY;
    ChangeSigningKey = Change SIGNING_KEY;
}

macro_rules! rank_guard {
    ($(#[$doc:meta])* $name:ident, $allowed:expr) => {
        $(#[$doc])*
        pub struct $name<'r>(pub Screen<'r>);

        #[rocket::async_trait]
        impl<'r> FromRequest<'r> for $name<'r> {
            type Error = WebError;

            async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
                screen_for(req, $allowed).await.map($name)
            }
        }

        impl<'r> std::ops::Deref for $name<'r> {
            type Target = Screen<'r>;

            fn deref(&self) -> &Screen<'r> {
                &self.0
            }
        }
    };
}

rank_guard!(
    /// Any signed-in user (self-service pages).
    Member,
    |_| true
);
rank_guard!(
    /// An active staff user (the admin console).
    Staff,
    |user| user.is_staff
);

pub fn set_session_cookie(cookies: &CookieJar<'_>, state: &AppState, value: String) {
    let lifetime = i64::try_from(state.settings.sessions.expire_seconds).unwrap_or(i64::MAX);
    cookies.add(
        Cookie::build((state.settings.sessions.cookie_name.clone(), value))
            .path("/")
            .http_only(true)
            .secure(state.settings.public_https())
            .same_site(SameSite::Lax)
            .max_age(rocket::time::Duration::seconds(lifetime)),
    );
}

pub fn clear_session_cookie(cookies: &CookieJar<'_>, state: &AppState) {
    cookies.remove(Cookie::build(state.settings.sessions.cookie_name.clone()).path("/"));
}

/// The client's address as seen on the socket (proxies are not trusted until configured).
pub struct ClientIp(pub Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientIp {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        let ip = match req.rocket().state::<AppState>() {
            Some(state) => state.proxies.client_ip(req),
            None => req.remote().map(|addr| addr.ip()),
        };
        request::Outcome::Success(ClientIp(ip.map(|ip| ip.to_string())))
    }
}
