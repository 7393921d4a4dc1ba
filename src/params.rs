//! Strict parsing of `application/x-www-form-urlencoded` data (bodies and query strings).
//!
//! OAuth wants a repeated parameter refused (RFC 6749 §3.1) and invalid UTF-8 answered with a
//! clear 400, where lenient parsers pick one value or replace bad bytes; every form and query
//! goes through this one parser. It knows nothing of HTTP frameworks.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("expected a body of type application/x-www-form-urlencoded")]
    WrongContentType,
    #[error("the request body is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the request is not valid percent-encoded UTF-8")]
    BadEncoding,
    #[error("the parameter {0:?} was given more than once")]
    Repeated(String),
    #[error("the request body could not be read")]
    Unreadable,
}

/// One form-encoded name or value, decoded. A NUL is refused with the bad encodings: no
/// parameter means one, and a database may not store it (PostgreSQL's text cannot).
pub fn decode(text: &str) -> Result<String, FormError> {
    let spaced = text.replace('+', " ");
    let decoded = percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map_err(|_| FormError::BadEncoding)?;
    if decoded.contains('\0') {
        return Err(FormError::BadEncoding);
    }
    Ok(decoded.into_owned())
}

/// Decoded name/value pairs, in order, repeats kept so they can be refused.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn parse(raw: &str) -> Result<Self, FormError> {
        let mut pairs = Vec::new();
        for piece in raw.split('&').filter(|piece| !piece.is_empty()) {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            pairs.push((decode(name)?, decode(value)?));
        }
        Ok(Self { pairs })
    }

    /// The one value of `name`; a repeated parameter is an error.
    pub fn single(&self, name: &str) -> Result<Option<&str>, FormError> {
        let mut found = self.pairs.iter().filter(|(key, _)| key == name);
        let first = found.next().map(|(_, value)| value.as_str());
        if found.next().is_some() {
            return Err(FormError::Repeated(name.to_owned()));
        }
        Ok(first)
    }

    /// Every value of `name`, in order: a group of checkboxes sends one name many times.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// Whether `name` was sent at all.
    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(key, _)| key == name)
    }

    /// Like `single`, with an empty value treated as absent.
    pub fn non_empty(&self, name: &str) -> Result<Option<&str>, FormError> {
        Ok(self.single(name)?.filter(|value| !value.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent_and_keeps_order() {
        let params = Params::parse("a=1+2&b=%C3%A9&c=&d").unwrap();
        assert_eq!(params.single("a").unwrap(), Some("1 2"));
        assert_eq!(params.single("b").unwrap(), Some("é"));
        assert_eq!(params.single("c").unwrap(), Some(""));
        assert_eq!(params.non_empty("c").unwrap(), None);
        assert_eq!(params.single("d").unwrap(), Some(""));
        assert_eq!(params.single("missing").unwrap(), None);
    }

    #[test]
    fn refuses_repeats_invalid_utf8_and_nul() {
        let params = Params::parse("a=1&a=2").unwrap();
        assert_eq!(params.single("a"), Err(FormError::Repeated("a".to_owned())));
        assert_eq!(Params::parse("a=%FF").unwrap_err(), FormError::BadEncoding);
        assert_eq!(Params::parse("a=%00").unwrap_err(), FormError::BadEncoding);
    }
}
