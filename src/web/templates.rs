//! Tera templates compiled once at start from the files embedded in the binary.

use rust_embed::RustEmbed;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::clock::Clock;

#[derive(RustEmbed)]
#[folder = "assets/templates/"]
struct TemplateFiles;

#[derive(Debug, thiserror::Error)]
#[error("template error: {0}")]
pub struct TemplateError(String);

pub struct Templates {
    tera: tera::Tera,
}

impl Templates {
    /// `clock` is what "3 h ago" counts from (the `time` filter).
    pub fn load(clock: Clock) -> Result<Self, TemplateError> {
        let mut tera = tera::Tera::default();
        tera.autoescape_on(vec![".html.tera", ".html"]);
        tera.register_filter(
            "time",
            move |value: &tera::Value, _: &std::collections::HashMap<String, tera::Value>| {
                Ok(tera::Value::String(match value.as_str() {
                    Some(text) => readable_time(text, clock.now()),
                    None => "—".to_owned(),
                }))
            },
        );
        let mut sources = Vec::new();
        for name in TemplateFiles::iter() {
            let file = TemplateFiles::get(&name)
                .ok_or_else(|| TemplateError(format!("{name} vanished")))?;
            let text = String::from_utf8(file.data.into_owned())
                .map_err(|_| TemplateError(format!("{name} is not UTF-8")))?;
            sources.push((name.into_owned(), text));
        }
        tera.add_raw_templates(sources)
            .map_err(|error| TemplateError(format!("{error:?}")))?;
        Ok(Self { tera })
    }

    pub fn render(&self, name: &str, context: &impl Serialize) -> Result<String, TemplateError> {
        let context = tera::Context::from_serialize(context)
            .map_err(|error| TemplateError(error.to_string()))?;
        self.tera
            .render(name, &context)
            .map_err(|error| TemplateError(format!("{name}: {error:?}")))
    }
}

/// An RFC 3339 time as HTML for people: "29 Nov 2026, 22:25 UTC", then how far from now
/// ("in 12 min", "3 h ago") when within a month, the exact time in `datetime` and `title`.
/// Anything else (a dash for "never") is shown as it is, escaped. Templates mark the result
/// `safe`: every piece of it is made here.
pub fn readable_time(text: &str, now: OffsetDateTime) -> String {
    let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) else {
        return tera::escape_html(text);
    };
    let at = at.to_offset(time::UtcOffset::UTC);
    let exact = tera::escape_html(text);
    let shown = format!(
        "{} {} {}, {:02}:{:02} UTC",
        at.day(),
        &MONTHS[usize::from(u8::from(at.month())) - 1],
        at.year(),
        at.hour(),
        at.minute()
    );
    let relative = relative(at - now)
        .map(|relative| format!(" <span class=\"muted\">({relative})</span>"))
        .unwrap_or_default();
    format!("<time datetime=\"{exact}\" title=\"{exact}\">{shown}</time>{relative}")
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// "in 12 min" / "3 h ago" / "just now"; nothing past a month (the date says it better).
fn relative(offset: time::Duration) -> Option<String> {
    let seconds = offset.whole_seconds();
    let magnitude = seconds.unsigned_abs();
    let amount = match magnitude {
        0..45 => return Some("just now".to_owned()),
        45..5_400 => format!("{} min", magnitude.div_ceil(60).max(1)),
        5_400..172_800 => format!("{} h", (magnitude + 1_800) / 3_600),
        172_800..2_678_400 => format!("{} days", (magnitude + 43_200) / 86_400),
        _ => return None,
    };
    Some(if seconds > 0 {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_dates_with_how_far_from_now() {
        let now = time::macros::datetime!(2026-11-29 22:25:10 UTC);
        let html = readable_time("2026-11-29T22:37:00Z", now);
        assert_eq!(
            html,
            "<time datetime=\"2026-11-29T22:37:00Z\" title=\"2026-11-29T22:37:00Z\">29 Nov 2026, \
             22:37 UTC</time> <span class=\"muted\">(in 12 min)</span>"
        );
        assert!(readable_time("2026-11-29T19:25:00Z", now).ends_with("(3 h ago)</span>"));
        assert!(readable_time("2026-11-29T22:25:00Z", now).ends_with("(just now)</span>"));
        assert!(readable_time("2026-11-25T22:25:00Z", now).ends_with("(4 days ago)</span>"));
        assert!(readable_time("2025-01-01T00:00:00Z", now).ends_with("</time>"));
        assert_eq!(readable_time("—", now), "—");
        assert_eq!(readable_time("<b>", now), "&lt;b&gt;");
    }

    #[test]
    fn every_template_compiles_and_escapes_html() {
        let templates = Templates::load(Clock::system()).unwrap();
        let page = templates
            .render(
                "error.html.tera",
                &serde_json::json!({
                    "status": 400, "reason": "Bad Request",
                    "message": "<script>alert(1)</script>", "user": null, "csrf_token": ""
                }),
            )
            .unwrap();
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<script>"));
    }
}
