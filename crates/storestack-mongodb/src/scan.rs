//! The `_id` range of a prefix scan.
//!
//! MongoDB compares strings (under the default, simple collation) by their
//! UTF-8 bytes, which orders them as their code points. The keys starting
//! with `prefix` are therefore exactly those in `[prefix, successor)`, where
//! the successor is `prefix` with its last character replaced by the next
//! code point (dropping trailing `U+10FFFF`s first). A range on `_id` is
//! served by the `_id` index; an anchored regex would need escaping and is
//! only index-friendly for some patterns.

use mongodb::bson::{doc, Document};

/// The smallest string greater than every string that starts with
/// `prefix`, or `None` if there is none (empty prefix, or a prefix of only
/// `U+10FFFF`s).
pub(crate) fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = next_char(last) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn next_char(c: char) -> Option<char> {
    match c {
        '\u{D7FF}' => Some('\u{E000}'),
        char::MAX => None,
        c => char::from_u32(c as u32 + 1),
    }
}

/// The `_id` condition of one scan page: keys with `prefix`, after `after`
/// (the last key of the previous page). `$gte: ""` also keeps any
/// non-string `_id` (not written by this store) out of the scan.
pub(crate) fn id_range(prefix: &str, after: Option<&str>) -> Document {
    let mut range = doc! { "$gte": prefix };
    if let Some(end) = prefix_successor(prefix) {
        range.insert("$lt", end);
    }
    if let Some(after) = after {
        range.insert("$gt", after);
    }
    range
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_bounds_the_prefix() {
        assert_eq!(prefix_successor(""), None);
        assert_eq!(prefix_successor("a:").as_deref(), Some("a;"));
        assert_eq!(prefix_successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_successor("ab\u{10FFFF}").as_deref(), Some("ac"));
        assert_eq!(prefix_successor("\u{10FFFF}\u{10FFFF}"), None);
    }

    #[test]
    fn range_holds_exactly_the_prefixed_keys() {
        let keys = [
            "",
            "a",
            "a:",
            "a:0",
            "a:\u{10FFFF}",
            "a;",
            "a9",
            "ключ",
            "ключи",
            "ключ\u{10FFFF}x",
            "клюя",
            "🔑",
            "🔑:1",
            "\u{10FFFF}",
        ];
        for prefix in keys {
            let end = prefix_successor(prefix);
            for key in keys {
                // Byte order of UTF-8 is what the server compares.
                let in_range = key.as_bytes() >= prefix.as_bytes()
                    && end.as_ref().is_none_or(|e| key.as_bytes() < e.as_bytes());
                assert_eq!(in_range, key.starts_with(prefix), "{prefix:?} {key:?}");
            }
        }
    }

    #[test]
    fn page_filter_shape() {
        let f = id_range("a:", Some("a:5"));
        assert_eq!(f, doc! { "$gte": "a:", "$lt": "a;", "$gt": "a:5" });
        assert_eq!(id_range("", None), doc! { "$gte": "" });
    }
}
