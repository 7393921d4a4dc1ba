//! Redirect URIs: matching a requested URI against the registered ones, and building the
//! redirect back to the client.

use url::Url;

/// Whether `requested` is one of `registered`: exact match of the whole URI, except that for a
/// registered loopback IP literal (`http://127.0.0.1`, `http://[::1]`) any port matches
/// (RFC 8252 §7.3). The scheme must be one of `allowed_schemes`.
pub fn is_registered(requested: &str, registered: &[String], allowed_schemes: &[String]) -> bool {
    let Ok(url) = Url::parse(requested) else {
        return false;
    };
    if url.fragment().is_some() || !allowed_schemes.iter().any(|s| s == url.scheme()) {
        return false;
    }
    registered
        .iter()
        .any(|candidate| candidate == requested || loopback_matches(candidate, &url))
}

fn is_loopback_literal(url: &Url) -> bool {
    url.scheme() == "http"
        && matches!(
            url.host(),
            Some(url::Host::Ipv4(ip)) if ip.is_loopback()
        )
        || url.scheme() == "http"
            && matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
}

fn loopback_matches(registered: &str, requested: &Url) -> bool {
    let Ok(registered) = Url::parse(registered) else {
        return false;
    };
    is_loopback_literal(&registered)
        && is_loopback_literal(requested)
        && registered.host() == requested.host()
        && registered.path() == requested.path()
        && registered.query() == requested.query()
        && registered.username() == requested.username()
        && registered.password() == requested.password()
}

/// `uri` with `params` appended to its query (existing parameters kept).
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> Option<String> {
    let mut url = Url::parse(uri).ok()?;
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
    }
    Some(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemes() -> Vec<String> {
        vec!["http".to_owned(), "https".to_owned()]
    }

    #[test]
    fn exact_match_only() {
        let registered = vec!["https://app.example/cb?x=1".to_owned()];
        assert!(is_registered(
            "https://app.example/cb?x=1",
            &registered,
            &schemes()
        ));
        for other in [
            "https://app.example/cb",
            "https://app.example/cb?x=1&y=2",
            "https://app.example/cb/?x=1",
            "https://app.example:444/cb?x=1",
            "http://app.example/cb?x=1",
            "https://evil.example/cb?x=1",
            "https://app.example/cb?x=1#frag",
        ] {
            assert!(!is_registered(other, &registered, &schemes()), "{other}");
        }
    }

    #[test]
    fn loopback_ports_are_free_but_nothing_else() {
        let registered = vec![
            "http://127.0.0.1/callback".to_owned(),
            "http://[::1]:8080/cb".to_owned(),
            "http://localhost:5432/oauth2client".to_owned(),
        ];
        assert!(is_registered(
            "http://127.0.0.1:51234/callback",
            &registered,
            &schemes()
        ));
        assert!(is_registered(
            "http://[::1]:9999/cb",
            &registered,
            &schemes()
        ));
        assert!(!is_registered(
            "http://127.0.0.1:51234/other",
            &registered,
            &schemes()
        ));
        assert!(!is_registered(
            "http://localhost:5433/oauth2client",
            &registered,
            &schemes()
        ));
        assert!(is_registered(
            "http://localhost:5432/oauth2client",
            &registered,
            &schemes()
        ));
    }

    #[test]
    fn private_schemes_need_allowing() {
        let registered = vec!["com.example.app:/cb".to_owned()];
        assert!(!is_registered(
            "com.example.app:/cb",
            &registered,
            &schemes()
        ));
        let mut allowed = schemes();
        allowed.push("com.example.app".to_owned());
        assert!(is_registered("com.example.app:/cb", &registered, &allowed));
    }

    #[test]
    fn query_parameters_are_appended() {
        assert_eq!(
            with_query(
                "https://app.example/cb?x=1",
                &[("code", "a b"), ("state", "s&t")]
            )
            .unwrap(),
            "https://app.example/cb?x=1&code=a+b&state=s%26t"
        );
    }
}
