//! The stored form of a record, and the filters on it.

use std::time::SystemTime;

use bytes::Bytes;
use mongodb::bson::raw::{RawBinaryRef, RawBsonRef};
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, DateTime, Document, RawDocument, RawDocumentBuf};
use storestack::{Op, Record, Result};

use crate::error::corrupt;

/// The field holding the value (BSON binary, generic subtype).
pub const VALUE_FIELD: &str = "value";
/// The field holding the expiry (BSON date, or null for never).
pub const EXPIRES_FIELD: &str = "expires_at";

/// The filter of documents live at `now`: no expiry, or one after `now`.
pub(crate) fn live_at(now: SystemTime) -> Document {
    let now = DateTime::from_system_time(now);
    doc! { "$or": [ { EXPIRES_FIELD: null }, { EXPIRES_FIELD: { "$gt": now } } ] }
}

/// `{ _id: key }` and the documents live at `now`.
pub(crate) fn live_key(key: &str, now: SystemTime) -> Document {
    let mut filter = live_at(now);
    filter.insert("_id", key);
    filter
}

/// The stored form of a record, with `_id` when given (inserts) and
/// without (replacements, which take it from the filter).
pub(crate) fn encode(key: Option<&str>, record: &Record) -> RawDocumentBuf {
    let mut doc = RawDocumentBuf::new();
    if let Some(key) = key {
        doc.append("_id", key);
    }
    let value = RawBinaryRef {
        subtype: BinarySubtype::Generic,
        bytes: &record.value,
    };
    doc.append_ref(VALUE_FIELD, value);
    match record.expires_at {
        Some(at) => doc.append(EXPIRES_FIELD, DateTime::from_system_time(at)),
        None => doc.append_ref(EXPIRES_FIELD, RawBsonRef::Null),
    }
    doc
}

pub(crate) fn decode_expiry(op: Op, doc: &RawDocument) -> Result<Option<SystemTime>> {
    match doc.get(EXPIRES_FIELD) {
        Ok(field) => expiry_of(op, field),
        Err(_) => Err(not_an_expiry(op)),
    }
}

/// The expiry an expiry field (absent: none) stands for.
fn expiry_of(op: Op, field: Option<RawBsonRef<'_>>) -> Result<Option<SystemTime>> {
    match field {
        Some(RawBsonRef::DateTime(at)) => Ok(Some(at.to_system_time())),
        Some(RawBsonRef::Null) | None => Ok(None),
        Some(_) => Err(not_an_expiry(op)),
    }
}

fn not_an_expiry(op: Op) -> storestack::StoreError {
    corrupt(op, "stored expiry is not a date or null")
}

/// The record of a document: its value, sharing the document's buffer
/// (no copy), and its expiry, found in one pass over the fields (each
/// `RawDocument::get` walks the document from the start: callgrind counted
/// ~1 100 instructions per lookup past a 2 KiB value).
pub(crate) fn decode_record(op: Op, doc: RawDocumentBuf) -> Result<Record> {
    let all = Bytes::from(doc.into_bytes());
    let raw = RawDocument::from_bytes(&all).map_err(|_| corrupt(op, "malformed document"))?;
    let (mut value, mut expiry) = (None, None);
    for field in raw {
        let (name, field) = field.map_err(|_| corrupt(op, "malformed document"))?;
        match name {
            VALUE_FIELD => value = Some(field),
            EXPIRES_FIELD => expiry = Some(field),
            _ => continue,
        }
        if value.is_some() && expiry.is_some() {
            break;
        }
    }
    let expires_at = expiry_of(op, expiry)?;
    match value {
        Some(RawBsonRef::Binary(b)) => Ok(Record {
            value: all.slice_ref(b.bytes),
            expires_at,
        }),
        _ => Err(corrupt(op, "stored value is not binary")),
    }
}
