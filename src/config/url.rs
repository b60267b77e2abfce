//! Absolute `http://` and `https://` URLs parsed into where a request goes:
//! the probe's URL ([`super::ProbeTarget`]) and a remote-write receiver's.
//! Messages never repeat a URL's user, password or query.

use super::ProbeTarget;

/// `http` or `https`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// The URL as error messages may show it: without its query or fragment,
/// which can carry a key.
pub fn shown(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// Parses an absolute `http://` or `https://` URL. Refuses credentials in
/// the URL; messages start with `what` and never repeat a URL's user,
/// password or query.
pub fn parse_url(url: &str, what: &str) -> Result<(Scheme, ProbeTarget), String> {
    let scheme_end = url.find("://");
    let scheme = scheme_end.map(|i| url[..i].to_ascii_lowercase());
    let rest = scheme_end.map_or("", |i| &url[i + 3..]);
    let authority_text = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority_text.contains('@') {
        return Err(format!("{what} must not contain a user or password"));
    }
    let show = shown(url);
    let (scheme, default_port) = match scheme.as_deref() {
        Some("http") => (Scheme::Http, 80),
        Some("https") => (Scheme::Https, 443),
        _ => return Err(format!("{what} {show:?} must start with http://")),
    };
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("invalid {what} {show:?}: {e}"))?;
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{what} {show:?} has no host"))?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if host.is_empty() {
        return Err(format!("{what} {show:?} has no host"));
    }
    // `port_u16` is None for both "no port" and "port 99999": tell them apart.
    let port = match authority
        .as_str()
        .get(authority.host().len()..)
        .and_then(|rest| rest.strip_prefix(':'))
    {
        None | Some("") => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("invalid {what} {show:?}: bad port {p:?}"))?,
    };
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|p| !p.is_empty())
        .unwrap_or("/");
    Ok((
        scheme,
        ProbeTarget {
            host,
            port,
            path: if path.starts_with('/') {
                path.to_owned()
            } else {
                format!("/{path}")
            },
            host_header: authority.as_str().to_owned(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_urls_default_to_port_443_and_queries_are_not_echoed() {
        let (scheme, t) = parse_url("https://mimir.example/api/v1/push", "url").unwrap();
        assert_eq!(scheme, Scheme::Https);
        assert_eq!((t.host.as_str(), t.port), ("mimir.example", 443));
        assert_eq!(t.path, "/api/v1/push");
        let e = parse_url("https://h:99999/push?api_key=k3y", "url").unwrap_err();
        assert!(e.contains("bad port"), "{e}");
        assert!(!e.contains("k3y"), "{e}");
        let e = parse_url("https://u:pa55@h/push", "url").unwrap_err();
        assert!(!e.contains("pa55"), "{e}");
    }
}
