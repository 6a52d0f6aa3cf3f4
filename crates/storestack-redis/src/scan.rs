//! Scan positions and patterns.
//!
//! A standalone (or sentinel) scan is one `SCAN` cursor; its token is the
//! cursor in decimal. A cluster scan walks the primaries in a fixed order
//! (sorted by host, then port) and runs `SCAN` on each in turn; its token
//! is `cursor:port:host`. The node is named rather than numbered, so a
//! scan survives a change in the number of primaries: it resumes with the
//! first primary that sorts after the one it was on.

use std::cmp::Ordering;

use fred::types::config::Server;
use storestack::{Op, Result, ScanCursor, StoreError};

use crate::error::STORE_NAME;

/// Escapes the glob metacharacters of `SCAN MATCH` (`* ? [ ] \`), so that
/// `literal` matches only itself.
pub(crate) fn escape_glob(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len() + 4);
    for c in literal.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `MATCH` pattern for keys starting with `prefix`.
pub(crate) fn match_pattern(prefix: &str) -> String {
    let mut pattern = escape_glob(prefix);
    pattern.push('*');
    pattern
}

/// Where a scan stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    /// The node being scanned (cluster only).
    pub(crate) node: Option<(String, u16)>,
    /// The `SCAN` cursor on that node; 0 starts it.
    pub(crate) cursor: u64,
}

fn malformed() -> StoreError {
    StoreError::invalid_input(Op::Scan)
        .with_store(STORE_NAME)
        .with_message("malformed scan cursor")
}

impl Position {
    /// Decodes a cursor; `None` for the start of a scan.
    pub(crate) fn decode(cursor: &ScanCursor, clustered: bool) -> Result<Option<Position>> {
        let Some(token) = cursor.token() else {
            return Ok(None);
        };
        if !clustered {
            let cursor = token.parse().map_err(|_| malformed())?;
            return Ok(Some(Position { node: None, cursor }));
        }
        let mut parts = token.splitn(3, ':');
        let (Some(cursor), Some(port), Some(host)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        Ok(Some(Position {
            node: Some((host.to_owned(), port.parse().map_err(|_| malformed())?)),
            cursor: cursor.parse().map_err(|_| malformed())?,
        }))
    }

    /// Encodes the position as a cursor.
    pub(crate) fn encode(&self) -> ScanCursor {
        match &self.node {
            None => ScanCursor::from_token(self.cursor.to_string()),
            Some((host, port)) => ScanCursor::from_token(format!("{}:{port}:{host}", self.cursor)),
        }
    }
}

fn cmp_node(server: &Server, host: &str, port: u16) -> Ordering {
    (&*server.host, server.port).cmp(&(host, port))
}

/// Sorts primaries into scan order.
pub(crate) fn sort_nodes(nodes: &mut [Server]) {
    nodes.sort_by(|a, b| (&*a.host, a.port).cmp(&(&*b.host, b.port)));
}

/// The node to scan at `position` among the sorted `nodes`: the named
/// node if it is still a primary, else the first one after it.
pub(crate) fn node_at<'a>(
    nodes: &'a [Server],
    host: &str,
    port: u16,
) -> Option<(&'a Server, bool)> {
    nodes
        .iter()
        .find(|n| cmp_node(n, host, port) != Ordering::Less)
        .map(|n| (n, cmp_node(n, host, port) == Ordering::Equal))
}

/// The first node after `current` among the sorted `nodes`.
pub(crate) fn node_after<'a>(nodes: &'a [Server], current: &Server) -> Option<&'a Server> {
    nodes
        .iter()
        .find(|n| cmp_node(n, &current.host, current.port) == Ordering::Greater)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_metacharacters_are_escaped() {
        assert_eq!(match_pattern("app:"), "app:*");
        assert_eq!(match_pattern(r"a*b?c[d]e\f"), r"a\*b\?c\[d\]e\\f*");
        assert_eq!(match_pattern(""), "*");
    }

    #[test]
    fn positions_round_trip() {
        for (pos, clustered) in [
            (
                Position {
                    node: None,
                    cursor: 0,
                },
                false,
            ),
            (
                Position {
                    node: None,
                    cursor: u64::MAX,
                },
                false,
            ),
            (
                Position {
                    node: Some(("::1".into(), 7000)),
                    cursor: 17,
                },
                true,
            ),
        ] {
            let back = Position::decode(&pos.encode(), clustered).unwrap();
            assert_eq!(back, Some(pos));
        }
        assert_eq!(Position::decode(&ScanCursor::start(), true).unwrap(), None);
    }

    #[test]
    fn malformed_cursors_are_invalid_input() {
        for (token, clustered) in [
            ("x", false),
            ("1:2", true),
            ("a:1:h", true),
            ("1:p:h", true),
        ] {
            let err = Position::decode(&ScanCursor::from_token(token), clustered).unwrap_err();
            assert_eq!(err.kind(), storestack::ErrorKind::InvalidInput, "{token}");
        }
    }

    #[test]
    fn nodes_are_walked_in_order_and_survive_topology_changes() {
        let mut nodes = vec![
            Server::new("10.0.0.2", 7000),
            Server::new("10.0.0.1", 7001),
            Server::new("10.0.0.1", 7000),
        ];
        sort_nodes(&mut nodes);
        assert_eq!(nodes[0].port, 7000);
        assert_eq!(&*nodes[2].host, "10.0.0.2");
        assert_eq!(node_after(&nodes, &nodes[0]), Some(&nodes[1]));
        assert_eq!(node_after(&nodes, &nodes[2]), None);
        // The node we were on is still there.
        assert_eq!(node_at(&nodes, "10.0.0.1", 7001), Some((&nodes[1], true)));
        // It is gone: resume with the next one, from its start.
        assert_eq!(node_at(&nodes, "10.0.0.1", 7002), Some((&nodes[2], false)));
        assert_eq!(node_at(&nodes, "10.0.0.3", 1), None);
    }
}
