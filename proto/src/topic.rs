//! MQTT topic filters: checking a filter and matching topic names (and, for
//! subscription rules, other filters) against it, as MQTT 3.1.1 §4.7 and
//! MQTT 5 §4.7 define it.
//!
//! A webhook's `topics` rules are [`TopicFilter`]s. Matching works level by
//! level on the `/`-separated text: `+` matches exactly one level, `#` the
//! parent level and any number of levels below it, and neither matches a
//! first level that starts with `$` (§4.7.2), so `#` never sees `$SYS/…`.
//! A filter is checked once, when it is made, so matching cannot fail.

use std::fmt;

/// A checked MQTT topic filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicFilter(String);

/// Why a text is not a valid topic filter (MQTT §4.7.1, §4.7.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidFilter {
    /// The filter is empty.
    #[error("a topic filter must not be empty")]
    Empty,
    /// It contains U+0000.
    #[error("a topic filter must not contain NUL")]
    Nul,
    /// `#` is not alone in the last level.
    #[error("`#` must be the whole last level of a topic filter (e.g. `a/#`), in `{0}`")]
    MultiLevel(String),
    /// `+` is not alone in its level.
    #[error("`+` must be a whole level of a topic filter (e.g. `a/+/c`), in `{0}`")]
    SingleLevel(String),
}

impl TopicFilter {
    /// Checks `filter` against MQTT's rules for topic filters.
    pub fn new(filter: &str) -> Result<Self, InvalidFilter> {
        if filter.is_empty() {
            return Err(InvalidFilter::Empty);
        }
        if filter.contains('\0') {
            return Err(InvalidFilter::Nul);
        }
        let levels: Vec<&str> = filter.split('/').collect();
        for (i, level) in levels.iter().enumerate() {
            if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
                return Err(InvalidFilter::MultiLevel(filter.to_owned()));
            }
            if level.contains('+') && *level != "+" {
                return Err(InvalidFilter::SingleLevel(filter.to_owned()));
            }
        }
        Ok(Self(filter.to_owned()))
    }

    /// The filter as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the topic `name` (or, for subscription rules, a subscription's
    /// filter taken as text, as RMQTT does) matches this filter.
    pub fn matches(&self, name: &str) -> bool {
        // §4.7.2: wildcards at the first level never match a `$` topic.
        if name.starts_with('$') && (self.0.starts_with('+') || self.0.starts_with('#')) {
            return false;
        }
        let mut filter = self.0.split('/');
        let mut topic = name.split('/');
        loop {
            match (filter.next(), topic.next()) {
                // `#` also matches the parent level: `a/#` matches `a`.
                (Some("#"), _) => return true,
                (Some("+"), Some(_)) => {}
                (Some(f), Some(t)) if f == t => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(text: &str) -> TopicFilter {
        TopicFilter::new(text).expect("a valid filter")
    }

    /// The non-normative examples of MQTT 3.1.1 §4.7.1.2, §4.7.1.3 and
    /// §4.7.2 (repeated in MQTT 5 §4.7), one assertion each.
    #[test]
    fn the_mqtt_specifications_examples_hold() {
        // §4.7.1.2 multi-level wildcard.
        let sport = filter("sport/tennis/player1/#");
        assert!(sport.matches("sport/tennis/player1"));
        assert!(sport.matches("sport/tennis/player1/ranking"));
        assert!(sport.matches("sport/tennis/player1/score/wimbledon"));
        assert!(filter("sport/#").matches("sport"));
        assert!(filter("#").matches("sport/tennis"));
        assert!(TopicFilter::new("sport/tennis#").is_err());
        assert!(TopicFilter::new("sport/tennis/#/ranking").is_err());
        // §4.7.1.3 single-level wildcard.
        let plus = filter("sport/tennis/+");
        assert!(plus.matches("sport/tennis/player1"));
        assert!(plus.matches("sport/tennis/player2"));
        assert!(!plus.matches("sport/tennis/player1/ranking"));
        assert!(!filter("sport/+").matches("sport"));
        assert!(filter("sport/+").matches("sport/"));
        assert!(filter("+").matches("sport") && !filter("+").matches("sport/"));
        assert!(filter("+/+").matches("/finance"));
        assert!(filter("/+").matches("/finance"));
        assert!(!filter("+").matches("/finance"));
        assert!(filter("+/tennis/#").matches("sport/tennis/x"));
        assert!(TopicFilter::new("sport+").is_err());
        // §4.7.2 topics beginning with `$`.
        assert!(!filter("#").matches("$SYS/broker/uptime"));
        assert!(!filter("+/monitor/Clients").matches("$SYS/monitor/Clients"));
        assert!(filter("$SYS/#").matches("$SYS/monitor/Clients"));
        assert!(filter("$SYS/monitor/+").matches("$SYS/monitor/Clients"));
        // A `$` below the first level is an ordinary character.
        assert!(filter("a/#").matches("a/$b"));
        assert!(filter("a/+").matches("a/$b"));
    }

    #[test]
    fn levels_are_compared_exactly() {
        assert!(filter("a/b/c").matches("a/b/c"));
        assert!(!filter("a/b/c").matches("a/b/c/d"));
        assert!(!filter("a/b/c").matches("a/b"));
        assert!(!filter("a/b/c").matches("A/b/c"));
        assert!(filter("foo/#").matches("foo/bar"));
        assert!(!filter("foo/#").matches("fo/bar"));
        assert!(!filter("a/b/c").matches("a/b/d"));
        // A subscription's filter matched as text, as RMQTT does.
        assert!(filter("foo/#").matches("foo/+"));
        assert!(filter("a/+/c").matches("a/+/c"));
    }

    #[test]
    fn invalid_filters_are_refused_with_the_rule() {
        assert_eq!(TopicFilter::new(""), Err(InvalidFilter::Empty));
        assert_eq!(TopicFilter::new("a\0b"), Err(InvalidFilter::Nul));
        assert!(matches!(
            TopicFilter::new("#/a"),
            Err(InvalidFilter::MultiLevel(_))
        ));
        assert!(matches!(
            TopicFilter::new("a/b+"),
            Err(InvalidFilter::SingleLevel(_))
        ));
        assert_eq!(filter("a/+/#").to_string(), "a/+/#");
    }
}
