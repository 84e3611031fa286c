//! How a webhook URL is shown: without its secrets.
//!
//! Operators put credentials in endpoint URLs (`http://user:pass@host/`,
//! `?token=…`); those must never reach a log line, a verdict reason sent to a
//! broker, a metric label or an error message. Everything that shows an
//! endpoint shows [`shown`] of it; the URL exactly as configured stays the
//! endpoint's identity (registry, cache keys) and is what hookd calls.

use std::fmt;

/// A URL as it may be shown: userinfo replaced by `***` and the query by
/// `?***`; the scheme, host, port and path stay, so operators can still tell
/// endpoints apart.
pub fn shown(url: &str) -> String {
    Redacted(url).to_string()
}

/// Displays a URL redacted, without allocating until it is written.
#[derive(Debug, Clone, Copy)]
pub struct Redacted<'a>(pub &'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Split by hand rather than parse: an unparsable URL (shown in the
        // error that refuses it) must be redacted too.
        let (before_fragment, fragment) = match self.0.split_once('#') {
            Some((url, fragment)) => (url, Some(fragment)),
            None => (self.0, None),
        };
        let (before_query, has_query) = match before_fragment.split_once('?') {
            Some((url, _)) => (url, true),
            None => (before_fragment, false),
        };
        let (scheme, rest) = match before_query.split_once("://") {
            Some((scheme, rest)) => (Some(scheme), rest),
            None => (None, before_query),
        };
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        if let Some(scheme) = scheme {
            write!(f, "{scheme}://")?;
        }
        match authority.rsplit_once('@') {
            Some((_, host)) => write!(f, "***@{host}")?,
            None => f.write_str(authority)?,
        }
        f.write_str(path)?;
        if has_query {
            f.write_str("?***")?;
        }
        if fragment.is_some() {
            f.write_str("#***")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_queries_are_hidden_and_the_rest_kept() {
        let cases = [
            ("http://127.0.0.1:8080/auth", "http://127.0.0.1:8080/auth"),
            ("http://user:pass@hooks.local/auth", "http://***@hooks.local/auth"),
            ("http://user@hooks.local", "http://***@hooks.local"),
            (
                "http://hooks.local/auth?token=s3cret&x=1",
                "http://hooks.local/auth?***",
            ),
            ("http://u:p@h/a?token=t#frag", "http://***@h/a?***#***"),
            ("http://h/a@b", "http://h/a@b"),
            ("not a url user:pw@x?k=v", "***@x?***"),
        ];
        for (url, expected) in cases {
            assert_eq!(shown(url), expected, "{url}");
        }
    }
}
