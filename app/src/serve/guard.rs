//! What a browser page from another origin can make a server on the user's machine do: nothing.
//! Every request must name this server in `Host` (a remote site that re-points its own name to
//! 127.0.0.1, DNS rebinding, names itself), and a state-changing request (POST) must be JSON
//! from the page's own origin: a cross-site "simple" request (a form, `text/plain`) is refused
//! before it reaches a handler. Clients that are not browsers send no `Origin` and are held by
//! the token off loopback, as before.

use axum::http::{HeaderMap, Method, header};

/// The names (no port) `Host` may carry.
#[derive(Debug, Clone)]
pub struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    /// localhost, 127.0.0.1, [::1], the bound address (unless unspecified) and `extra`.
    pub fn new(bound: std::net::SocketAddr, extra: &[String]) -> Self {
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "[::1]"].map(String::from).to_vec();
        if !bound.ip().is_unspecified() {
            names.push(match bound.ip() {
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            });
        }
        names.extend(extra.iter().map(|n| n.to_ascii_lowercase()));
        Self(names)
    }

    fn allows(&self, name: &str) -> bool {
        self.0.iter().any(|n| n == name)
    }
}

/// The host name of a `Host` value (`name`, `name:port`, `[v6]:port`), lower-cased.
fn host_name(value: &str) -> String {
    let v = value.trim().to_ascii_lowercase();
    if v.starts_with('[') {
        return v.split_inclusive(']').next().unwrap_or_default().to_string();
    }
    match v.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name.to_string(),
        _ => v,
    }
}

/// Why a request is refused, or `None` to serve it. Whatever the answer, the request went no
/// further than its headers.
pub fn refusal(method: &Method, headers: &HeaderMap, allowed: &AllowedHosts) -> Option<String> {
    let text = |name: header::HeaderName| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}").to_string());
    let host = text(header::HOST);
    if let Some(h) = &host
        && !allowed.allows(&host_name(h))
    {
        return Some(format!(
            "Host `{h}` is not a name of this server (DNS rebinding is refused); start it with `--allow-host {}` to serve that name",
            host_name(h)
        ));
    }
    if method == Method::GET || method == Method::HEAD {
        return None;
    }
    // A browser sends Origin with every POST; Sec-Fetch-Site where Origin is stripped.
    match (text(header::ORIGIN), text(header::HeaderName::from_static("sec-fetch-site"))) {
        (Some(origin), _) => {
            let same = host.as_deref().is_some_and(|h| {
                let o = origin.to_ascii_lowercase();
                let h = h.trim().to_ascii_lowercase();
                o == format!("http://{h}") || o == format!("https://{h}")
            });
            if !same {
                return Some(format!("a {method} from origin `{origin}`: commands are taken only from this server's own page"));
            }
        }
        (None, Some(site)) if site != "same-origin" && site != "none" => {
            return Some(format!("a {method} from a {site} page: commands are taken only from this server's own page"));
        }
        _ => {}
    }
    let json = text(header::CONTENT_TYPE).is_some_and(|c| c.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
    if !json {
        return Some(format!("a {method} must carry `Content-Type: application/json` (a form or text/plain body, which any page can send, is refused)"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn host_names_and_origins() {
        assert_eq!(host_name("LocalHost:8095"), "localhost");
        assert_eq!(host_name("[::1]:80"), "[::1]");
        assert_eq!(host_name("example.org"), "example.org");
        let allowed = AllowedHosts::new("127.0.0.1:8095".parse().unwrap(), &["gpu-box".into()]);
        let json = ("content-type", "application/json");
        let get = |h: &[(&'static str, &str)]| refusal(&Method::GET, &headers(h), &allowed);
        let post = |h: &[(&'static str, &str)]| refusal(&Method::POST, &headers(h), &allowed);
        assert_eq!(get(&[("host", "127.0.0.1:8095")]), None);
        assert_eq!(get(&[("host", "localhost:9000")]), None, "an SSH tunnel's local port");
        assert_eq!(get(&[("host", "gpu-box:8095")]), None, "--allow-host");
        assert!(get(&[("host", "evil.example:8095")]).unwrap().contains("--allow-host evil.example"));
        assert_eq!(post(&[("host", "127.0.0.1:8095"), ("origin", "http://127.0.0.1:8095"), json]), None);
        assert_eq!(post(&[("host", "127.0.0.1:8095"), json]), None, "no Origin: not a browser");
        assert!(post(&[("host", "127.0.0.1:8095"), ("origin", "http://evil.example"), json]).unwrap().contains("origin"));
        assert!(post(&[("host", "127.0.0.1:8095"), ("origin", "null"), json]).is_some());
        assert!(post(&[("host", "127.0.0.1:8095"), ("origin", "http://127.0.0.1:8095"), ("content-type", "text/plain")]).unwrap().contains("application/json"));
        assert!(post(&[("host", "127.0.0.1:8095"), ("sec-fetch-site", "cross-site"), json]).unwrap().contains("cross-site"));
        assert_eq!(post(&[("host", "127.0.0.1:8095"), ("sec-fetch-site", "same-origin"), json]), None);
        // The bound address of a server on another interface, and IPv6.
        let lan = AllowedHosts::new("10.0.0.5:80".parse().unwrap(), &[]);
        assert_eq!(refusal(&Method::GET, &headers(&[("host", "10.0.0.5")]), &lan), None);
        assert!(AllowedHosts::new("0.0.0.0:80".parse().unwrap(), &[]).0.len() == 3, "an unspecified address names nothing");
    }
}
