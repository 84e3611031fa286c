//! Which hosts a webhook registered at run time may point at: the SSRF guard
//! of `admin.allowed_webhook_hosts`.
//!
//! A registration made while hookd runs ([`crate::registry::Registry::register`],
//! the run-time registration path; hookd's Admin gRPC service has no
//! registration call yet, so this is where one will check) makes hookd send
//! requests wherever the URL says. Whoever can register must not be able to
//! aim hookd at the cloud metadata service (169.254.169.254 and friends,
//! which hand out credentials) or other link-local addresses, nor, when the
//! operator lists hosts, anywhere else. Webhooks in the configuration file
//! are the operator's own and are not checked.
//!
//! Entries are host names (matched exactly, case-insensitively), IP
//! addresses, or networks in CIDR form (`10.0.0.0/8`, `fd00::/8`). With no
//! entries every host is allowed except link-local and metadata addresses;
//! with entries only those are, and a listed link-local or metadata address
//! is allowed too. A host name is checked as written, not resolved: list
//! names whose DNS you control.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// The parsed `admin.allowed_webhook_hosts`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Name(String),
    Network(IpAddr, u8),
}

/// Why a run-time registration's URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The URL has no host.
    #[error("the URL has no host")]
    NoHost,
    /// A link-local or cloud metadata address, not listed.
    #[error(
        "{0} is a link-local or cloud metadata address; list it in admin.allowed_webhook_hosts to allow it"
    )]
    Metadata(String),
    /// A host the non-empty allow-list does not name.
    #[error("{0} is not in admin.allowed_webhook_hosts")]
    NotListed(String),
}

/// Host names of cloud metadata services, refused unless listed.
const METADATA_NAMES: [&str; 3] = ["metadata.google.internal", "metadata", "instance-data"];

impl AllowedHosts {
    /// Parses the entries; an entry that is neither a host name, an IP
    /// address nor a CIDR network is refused with what is wrong.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let entries = entries
            .iter()
            .map(|entry| parse_entry(entry.trim()))
            .collect::<Result<_, _>>()?;
        Ok(Self { entries })
    }

    /// Whether `url` may be registered at run time.
    pub fn check(&self, url: &Url) -> Result<(), Refused> {
        let host = url.host().ok_or(Refused::NoHost)?;
        let (listed, dangerous, shown) = match host {
            Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                let listed = self.entries.iter().any(|e| *e == Entry::Name(name.clone()));
                (listed, METADATA_NAMES.contains(&name.as_str()), name)
            }
            Host::Ipv4(ip) => self.address(IpAddr::V4(ip)),
            Host::Ipv6(ip) => self.address(IpAddr::V6(ip)),
        };
        match (listed, dangerous) {
            (true, _) => Ok(()),
            (false, true) => Err(Refused::Metadata(shown)),
            (false, false) if self.entries.is_empty() => Ok(()),
            (false, false) => Err(Refused::NotListed(shown)),
        }
    }

    fn address(&self, ip: IpAddr) -> (bool, bool, String) {
        let listed = self.entries.iter().any(|entry| match entry {
            Entry::Network(net, bits) => contains(*net, *bits, ip),
            Entry::Name(_) => false,
        });
        (listed, is_link_local_or_metadata(ip), ip.to_string())
    }
}

fn parse_entry(entry: &str) -> Result<Entry, String> {
    if let Some((net, bits)) = entry.split_once('/') {
        let net: IpAddr = net
            .parse()
            .map_err(|_| format!("{entry:?}: not a CIDR network (address/prefix length)"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits: u8 = bits
            .parse()
            .ok()
            .filter(|bits| *bits <= max)
            .ok_or_else(|| format!("{entry:?}: the prefix length must be 0 to {max}"))?;
        return Ok(Entry::Network(net, bits));
    }
    if let Ok(ip) = entry
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        let bits = if ip.is_ipv4() { 32 } else { 128 };
        return Ok(Entry::Network(ip, bits));
    }
    let valid = !entry.is_empty()
        && entry
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !valid {
        return Err(format!(
            "{entry:?}: expected a host name, an IP address or a CIDR network"
        ));
    }
    Ok(Entry::Name(entry.trim_end_matches('.').to_ascii_lowercase()))
}

fn contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

/// Link-local (169.254.0.0/16, fe80::/10, where AWS, GCP and Azure serve
/// their metadata at 169.254.169.254), AWS's IPv6 metadata address
/// fd00:ec2::254 and Alibaba's 100.100.100.200; IPv4-mapped IPv6 forms too.
fn is_link_local_or_metadata(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ip.is_link_local() || ip == Ipv4Addr::new(100, 100, 100, 200),
        IpAddr::V6(ip) => {
            if let Some(v4) = ip.to_ipv4_mapped() {
                return is_link_local_or_metadata(IpAddr::V4(v4));
            }
            (ip.segments()[0] & 0xffc0) == 0xfe80 || ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(allowed: &[&str], url: &str) -> Result<(), Refused> {
        let allowed: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        let url = Url::parse(url).expect("a URL");
        AllowedHosts::parse(&allowed).expect("valid entries").check(&url)
    }

    #[test]
    fn without_entries_everything_but_metadata_and_link_local_is_allowed() {
        assert_eq!(check(&[], "http://hooks.example/a"), Ok(()));
        assert_eq!(check(&[], "http://10.1.2.3/a"), Ok(()));
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://169.254.1.1/",
            "http://[fe80::1]/",
            "http://[fd00:ec2::254]/",
            "http://[::ffff:169.254.169.254]/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://100.100.100.200/",
        ] {
            assert!(matches!(check(&[], url), Err(Refused::Metadata(_))), "{url}");
        }
    }

    #[test]
    fn with_entries_only_listed_hosts_and_networks_are_allowed() {
        let allowed = ["hooks.example", "10.0.0.0/8", "fd00::/8", "169.254.169.254"];
        assert_eq!(check(&allowed, "https://HOOKS.example./a"), Ok(()));
        assert_eq!(check(&allowed, "http://10.200.0.1:8080/a"), Ok(()));
        assert_eq!(check(&allowed, "http://[fd12::1]/a"), Ok(()));
        assert_eq!(
            check(&allowed, "http://169.254.169.254/"),
            Ok(()),
            "listed explicitly"
        );
        assert!(matches!(
            check(&allowed, "http://11.0.0.1/"),
            Err(Refused::NotListed(_))
        ));
        assert!(matches!(
            check(&allowed, "http://evil.example/"),
            Err(Refused::NotListed(_))
        ));
        assert!(matches!(
            check(&allowed, "http://169.254.0.1/"),
            Err(Refused::Metadata(_))
        ));
    }

    #[test]
    fn a_bad_entry_is_refused_saying_what_is_expected() {
        for entry in ["10.0.0.0/33", "not a host", "1.2.3.4/x", ""] {
            let err = AllowedHosts::parse(&[entry.to_owned()]).expect_err("refused");
            assert!(
                err.contains("expected") || err.contains("prefix") || err.contains("CIDR"),
                "{err}"
            );
        }
    }
}
