//! Static files embedded in the binary.

use std::borrow::Cow;
use std::path::PathBuf;

use rocket::http::{ContentType, Header};
use rocket::{Responder, Route, get, routes};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "assets/static/"]
struct StaticFiles;

#[derive(Responder)]
struct Asset {
    body: (ContentType, Cow<'static, [u8]>),
    cache: Header<'static>,
}

#[get("/static/<path..>")]
fn static_file(path: PathBuf) -> Option<Asset> {
    let name = path.to_str()?;
    let file = StaticFiles::get(name)?;
    let content_type = path
        .extension()
        .and_then(|ext| ext.to_str())
        .and_then(ContentType::from_extension)
        .unwrap_or(ContentType::Binary);
    Some(Asset {
        body: (content_type, file.data),
        cache: Header::new("Cache-Control", "public, max-age=3600"),
    })
}

/// Browsers ask for `/favicon.ico` on pages without an icon link (error pages of other
/// tools, raw JSON): the same icon.
#[get("/favicon.ico")]
fn favicon() -> Option<Asset> {
    static_file(PathBuf::from("favicon.svg"))
}

pub fn routes() -> Vec<Route> {
    routes![static_file, favicon]
}
