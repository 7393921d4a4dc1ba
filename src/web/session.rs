//! Who is signed in: the session cookie resolved to a live session and an active user.

use rocket::Data;
use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{Cookie, CookieJar, SameSite, Status};
use rocket::request::{self, FromRequest, Request};
use serde::Serialize;

use std::marker::PhantomData;

use crate::permissions::{self, Action, Granted, Model};
use crate::store::{Session, StoreError, User};
use crate::web::AppState;
use crate::web::error::{WebError, is_api_path};
use crate::web::screen::Screen;

#[derive(Clone)]
pub struct SignedIn {
    pub user: User,
    pub session: Session,
    pub cookie_value: String,
}

/// The signed-in user, if any.
pub struct CurrentUser(pub Option<SignedIn>);

/// The request's session lookup, kept on the request so that it runs once however many
/// guards (and the error page) ask. `None` until looked up.
#[derive(Clone)]
struct LookedUp(Option<Result<Option<SignedIn>, StoreError>>);

/// The session behind the request's cookie, looked up on first use.
pub async fn look_up(req: &Request<'_>) -> Result<Option<SignedIn>, StoreError> {
    let cached = req
        .local_cache_async(async { LookedUp(Some(resolve(req).await)) })
        .await;
    cached.0.clone().unwrap_or(Ok(None))
}

/// The signed-in user when this request's session was already looked up (by a guard, or by
/// `LookUpSession` for pages); code that cannot wait (a responder) reads it here.
pub fn looked_up<'a>(req: &'a Request<'_>) -> Option<&'a SignedIn> {
    match &req.local_cache(|| LookedUp(None)).0 {
        Some(Ok(found)) => found.as_ref(),
        _ => None,
    }
}

async fn resolve(req: &Request<'_>) -> Result<Option<SignedIn>, StoreError> {
    let Some(state) = req.rocket().state::<AppState>() else {
        return Ok(None);
    };
    let cookie_name = &state.settings.sessions.cookie_name;
    let Some(value) = req.cookies().get(cookie_name).map(|c| c.value().to_owned()) else {
        return Ok(None);
    };
    let found = state.accounts.session_user(&value).await?;
    Ok(found.map(|(session, user)| SignedIn {
        user,
        session,
        cookie_value: value,
    }))
}

/// Looks the session up for every page request that carries a session cookie, before its
/// handler runs, so that the error page (rendered by a responder, which cannot wait for the
/// store) still shows who is signed in. API paths, which never show it, are left alone.
pub struct LookUpSession;

#[rocket::async_trait]
impl Fairing for LookUpSession {
    fn info(&self) -> Info {
        Info {
            name: "session lookup for pages",
            kind: Kind::Request,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        let path = req.uri().path();
        if is_api_path(path.as_str()) || path.starts_with("/static/") {
            return;
        }
        let Some(state) = req.rocket().state::<AppState>() else {
            return;
        };
        if req
            .cookies()
            .get(&state.settings.sessions.cookie_name)
            .is_some()
        {
            // A failure is kept too: the guard that needs the session reports it.
            let _ = look_up(req).await;
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CurrentUser {
    type Error = WebError;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        match look_up(req).await {
            Ok(found) => request::Outcome::Success(CurrentUser(found)),
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
        match state.accounts.granted(&who.user).await {
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
