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
use storestack::store::prefix_successor;

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
    fn page_filter_shape() {
        let f = id_range("a:", Some("a:5"));
        assert_eq!(f, doc! { "$gte": "a:", "$lt": "a;", "$gt": "a:5" });
        assert_eq!(id_range("", None), doc! { "$gte": "" });
    }
}
