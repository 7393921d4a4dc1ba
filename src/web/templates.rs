//! Tera templates compiled once at start from the files embedded in the binary.

use rust_embed::RustEmbed;
use serde::Serialize;

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
    pub fn load() -> Result<Self, TemplateError> {
        let mut tera = tera::Tera::default();
        tera.autoescape_on(vec![".html.tera", ".html"]);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles_and_escapes_html() {
        let templates = Templates::load().unwrap();
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
