//! The three-way merge of session data: what a request changed against the
//! snapshot it loaded, applied on top of what is stored now.

use crate::Data;

/// The result of [`three_way`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Merged {
    /// `theirs` with this request's changes applied.
    pub(crate) data: Data,
    /// Top-level keys that both changed to different values (this
    /// request's value was kept: it writes last).
    pub(crate) conflicts: usize,
}

/// Applies the changes from `base` to `mine` (keys added, changed or
/// removed) to `theirs`. Keys this request did not touch keep `theirs`'s
/// value; a key both changed keeps `mine`'s, and counts as a conflict
/// unless both changed it to the same value.
pub(crate) fn three_way(base: &Data, mine: &Data, theirs: &Data) -> Merged {
    let mut data = theirs.clone();
    let mut conflicts = 0;
    for (key, value) in mine {
        let before = base.get(key);
        if before == Some(value) {
            continue;
        }
        let now = theirs.get(key);
        if now != before && now != Some(value) {
            conflicts += 1;
        }
        data.insert(key.clone(), value.clone());
    }
    for (key, before) in base {
        if mine.contains_key(key) {
            continue;
        }
        if let Some(now) = data.remove(key) {
            if &now != before {
                conflicts += 1;
            }
        }
    }
    Merged { data, conflicts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(v: serde_json::Value) -> Data {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn distinct_keys_both_survive() {
        let base = data(json!({"user": "ada"}));
        let mine = data(json!({"user": "ada", "cart": [1]}));
        let theirs = data(json!({"user": "ada", "theme": "dark"}));
        let m = three_way(&base, &mine, &theirs);
        assert_eq!(
            m.data,
            data(json!({"user": "ada", "cart": [1], "theme": "dark"}))
        );
        assert_eq!(m.conflicts, 0);
    }

    #[test]
    fn a_key_changed_by_both_keeps_mine_and_counts() {
        let base = data(json!({"n": 1, "x": 0}));
        let mine = data(json!({"n": 2, "x": 0}));
        let theirs = data(json!({"n": 3, "x": 5}));
        let m = three_way(&base, &mine, &theirs);
        assert_eq!(m.data, data(json!({"n": 2, "x": 5})));
        assert_eq!(m.conflicts, 1);
        // The same change on both sides is no conflict.
        let same = three_way(&base, &mine, &data(json!({"n": 2, "x": 0})));
        assert_eq!(same.conflicts, 0);
    }

    #[test]
    fn removals_apply_and_theirs_removals_stay() {
        let base = data(json!({"a": 1, "b": 2, "c": 3}));
        let mine = data(json!({"b": 2, "c": 3}));
        let theirs = data(json!({"a": 1, "b": 2}));
        let m = three_way(&base, &mine, &theirs);
        assert_eq!(m.data, data(json!({"b": 2})));
        assert_eq!(m.conflicts, 0);
        // Removing a key they changed: mine (the last write) wins, counted.
        let changed = data(json!({"a": 9, "b": 2, "c": 3}));
        let m = three_way(&base, &mine, &changed);
        assert_eq!(m.data, data(json!({"b": 2, "c": 3})));
        assert_eq!(m.conflicts, 1);
    }

    #[test]
    fn nothing_changed_is_theirs() {
        let base = data(json!({"a": 1}));
        let theirs = data(json!({"a": 1, "z": true}));
        assert_eq!(three_way(&base, &base, &theirs).data, theirs);
    }
}
