//! Which part of the platform a request's `Host` header names.

/// Where a request goes, decided from its `Host` header alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostTarget {
    /// The platform domain itself (or `www.` in front of it): landing page and super-admin.
    Platform,
    /// `<slug>.<platform domain>`: a store by its slug (not yet known to exist).
    StoreSlug(String),
    /// Any other host: maybe a store's custom domain.
    CustomDomain(String),
    /// A header that is not a host name at all.
    Invalid,
}

/// Reads a `Host` header value (`name[:port]`) against the platform domain.
///
/// Host names are case-insensitive and may carry a trailing dot; both are normalised
/// so that `Demo.Localhost.:8080` and `demo.localhost` name the same store.
pub fn resolve_host(host_header: &str, platform_domain: &str) -> HostTarget {
    let Some(host) = normalise_host(host_header) else {
        return HostTarget::Invalid;
    };
    let platform = platform_domain.trim_end_matches('.').to_ascii_lowercase();
    if host == platform || host.strip_prefix("www.") == Some(platform.as_str()) {
        return HostTarget::Platform;
    }
    if let Some(label) = host.strip_suffix(platform.as_str()).and_then(|rest| rest.strip_suffix('.')) {
        // Only one label: `a.b.localhost` is not a store address.
        if !label.is_empty() && !label.contains('.') {
            return HostTarget::StoreSlug(label.to_owned());
        }
        return HostTarget::Invalid;
    }
    HostTarget::CustomDomain(host)
}

/// Lower-cases a host name and strips the port and a trailing dot; `None` when the value
/// cannot be a DNS name or an IP literal.
pub fn normalise_host(host_header: &str) -> Option<String> {
    let value = host_header.trim();
    let host = if let Some(rest) = value.strip_prefix('[') {
        // IPv6 literal: [::1]:8080
        let end = rest.find(']')?;
        return Some(format!("[{}]", rest[..end].to_ascii_lowercase()));
    } else {
        match value.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            Some(_) => return None,
            None => value,
        }
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty() && label.len() <= 63 && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    valid.then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_resolve_to_platform_store_or_custom_domain() {
        assert_eq!(resolve_host("localhost:8080", "localhost"), HostTarget::Platform);
        assert_eq!(resolve_host("www.example.com", "example.com"), HostTarget::Platform);
        assert_eq!(resolve_host("Demo.Localhost.:8080", "localhost"), HostTarget::StoreSlug("demo".into()));
        assert_eq!(resolve_host("shop.acme.com", "localhost"), HostTarget::CustomDomain("shop.acme.com".into()));
        assert_eq!(resolve_host("a.b.localhost", "localhost"), HostTarget::Invalid);
        assert_eq!(resolve_host("evil/..:80", "localhost"), HostTarget::Invalid);
        assert_eq!(resolve_host("demo.localhost:abc", "localhost"), HostTarget::Invalid);
        assert_eq!(resolve_host("", "localhost"), HostTarget::Invalid);
        assert_eq!(resolve_host("[::1]:8080", "localhost"), HostTarget::CustomDomain("[::1]".into()));
    }
}
