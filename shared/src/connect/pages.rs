//! The HTML pages of the OAuth callback: plain, accessible documents (a language, a title, one
//! `h1` inside `main`) with no scripts and no external assets. Every text is escaped, and the
//! response forbids caching, because a callback URL carries a single-use code.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// A result page of the OAuth callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub status: StatusCode,
    /// The document title and the `h1`.
    pub heading: String,
    /// Paragraphs of plain text, escaped when rendered.
    pub paragraphs: Vec<String>,
    /// Seconds after which the browser may try again, sent as `Retry-After` with a 503.
    pub retry_after_secs: Option<u64>,
}

/// The `Content-Security-Policy` of every page: nothing may load or run, inline styles aside.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

impl Page {
    /// Creates a page with a status, a heading and paragraphs.
    pub fn new(status: StatusCode, heading: impl Into<String>, paragraphs: Vec<String>) -> Self {
        Page {
            status,
            heading: heading.into(),
            paragraphs,
            retry_after_secs: None,
        }
    }

    /// Renders the HTML document.
    pub fn html(&self) -> String {
        let heading = escape_html(&self.heading);
        let mut body = String::new();
        for paragraph in &self.paragraphs {
            body.push_str("    <p>");
            body.push_str(&escape_html(paragraph));
            body.push_str("</p>\n");
        }
        format!(
            r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="robots" content="noindex">
  <title>{heading}</title>
  <style>
    body {{ font-family: system-ui, sans-serif; line-height: 1.5; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; color: #1f2328; background: #ffffff; }}
    h1 {{ font-size: 1.6rem; }}
  </style>
</head>
<body>
  <main>
    <h1>{heading}</h1>
{body}  </main>
</body>
</html>
"#
        )
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut response = (self.status, Body::from(self.html())).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        if let Some(seconds) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(character),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_html_escapes_markup() {
        assert_eq!(
            escape_html(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn page_escapes_heading_and_paragraphs() {
        let page = Page::new(StatusCode::BAD_REQUEST, "<b>", vec!["<img src=x>".into()]);
        let html = page.html();
        assert!(html.contains("<title>&lt;b&gt;</title>"));
        assert!(html.contains("<h1>&lt;b&gt;</h1>"));
        assert!(html.contains("<p>&lt;img src=x&gt;</p>"));
        assert!(!html.contains("<img"));
    }

    #[test]
    fn page_is_plain_accessible_html() {
        let html = Page::new(StatusCode::OK, "Done", vec!["Text.".into()]).html();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains(r#"<html lang="en">"#));
        assert!(html.contains("<main>"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("http"));
    }

    #[test]
    fn response_headers_forbid_caching() {
        let response = Page::new(StatusCode::OK, "Done", Vec::new()).into_response();
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert!(headers.get(header::RETRY_AFTER).is_none());
    }
}
