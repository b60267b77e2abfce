//! Content negotiation for `/metrics`: which format, and whether to gzip.

use crate::metrics::Format;

/// Parses `a/b;q=0.5, c/d` into (media type, q) pairs.
fn weighted(header: &str) -> impl Iterator<Item = (&str, f64)> {
    header.split(',').filter_map(|part| {
        let mut fields = part.split(';');
        let media = fields.next()?.trim();
        if media.is_empty() {
            return None;
        }
        let q = fields
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f64>().ok())
            .unwrap_or(1.0);
        Some((media, q))
    })
}

/// OpenMetrics when the client prefers it over plain text (as Prometheus
/// does), text 0.0.4 otherwise, including for a missing header.
pub fn format(accept: &str) -> Format {
    let mut openmetrics = 0.0_f64;
    let mut text = 0.0_f64;
    for (media, q) in weighted(accept) {
        match media.to_ascii_lowercase().as_str() {
            "application/openmetrics-text" => openmetrics = openmetrics.max(q),
            "text/plain" | "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    if openmetrics > 0.0 && openmetrics >= text {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

/// True when `gzip` is acceptable (explicitly or by `*`) with q > 0.
pub fn accepts_gzip(accept_encoding: &str) -> bool {
    weighted(accept_encoding)
        .any(|(coding, q)| (coding.eq_ignore_ascii_case("gzip") || coding == "*") && q > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_default_accept_header_gets_openmetrics() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(format(prometheus), Format::OpenMetrics);
    }

    #[test]
    fn plain_or_missing_accept_gets_text() {
        assert_eq!(format(""), Format::Text);
        assert_eq!(format("text/plain;version=0.0.4"), Format::Text);
        assert_eq!(format("*/*"), Format::Text);
        assert_eq!(
            format("application/openmetrics-text;q=0.2,text/plain"),
            Format::Text
        );
        assert_eq!(format("application/openmetrics-text;q=0"), Format::Text);
    }

    #[test]
    fn gzip_only_when_acceptable() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, gzip;q=0.8"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip(""));
        assert!(!accepts_gzip("br, deflate"));
    }
}
