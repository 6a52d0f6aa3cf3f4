//! [`FileCheckpoint`]: a checkpoint in a file, replaced atomically.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::checkpoint::{Checkpoint, CheckpointState};
use super::progress::Counts;
use crate::error::{ErrorKind, Op, Result, StoreError};
use crate::store::ScanCursor;

/// A checkpoint in a file, replaced atomically (write a temporary file
/// next to it, flush it to disk, rename it over the old one). On Unix the
/// file is readable by its owner only: a scan cursor may contain a key.
///
/// The format is a few lines of text, strings hex-encoded:
///
/// ```text
/// storestack-migration-checkpoint 1
/// label <hex>
/// done <0|1>
/// cursor <-|hex>
/// counts <scanned> <copied> <existing> <expired> <vanished> <raced> <failed>
/// ```
#[derive(Debug, Clone)]
pub struct FileCheckpoint {
    path: PathBuf,
}

const MAGIC: &str = "storestack-migration-checkpoint 1";

impl FileCheckpoint {
    /// A checkpoint kept at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileCheckpoint { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file (a fresh start); missing is fine.
    pub async fn remove(&self) -> Result<()> {
        let path = self.path.clone();
        blocking(Op::Delete, move || match std::fs::remove_file(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        })
        .await
    }
}

#[async_trait]
impl Checkpoint for FileCheckpoint {
    async fn load(&self) -> Result<Option<CheckpointState>> {
        let path = self.path.clone();
        let bytes = blocking(Op::Get, move || match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
        .await?;
        // Bytes that are not UTF-8 are damage (`Corrupt`, from `decode`),
        // not an unreadable file (`read_to_string`'s `InvalidData` would
        // have made it `Unavailable`, a transient error; found by the
        // migration_decode fuzz target).
        bytes
            .map(|b| decode(&String::from_utf8_lossy(&b)))
            .transpose()
    }

    async fn save(&self, state: &CheckpointState) -> Result<()> {
        let text = encode(state);
        let path = self.path.clone();
        blocking(Op::Set, move || write_atomically(&path, text.as_bytes())).await
    }
}

async fn blocking<T: Send + 'static>(
    op: Op,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    let io_error = |e: std::io::Error| {
        StoreError::new(ErrorKind::Unavailable, op)
            .with_store("checkpoint(file)")
            .with_message("checkpoint file could not be accessed")
            .with_source(e)
    };
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(io_error),
        Err(join) => Err(StoreError::internal(op)
            .with_store("checkpoint(file)")
            .with_source(join)),
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    // Make the rename itself durable (best effort: not every platform can
    // open a directory).
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

fn encode(s: &CheckpointState) -> String {
    let c = &s.counts;
    let mut out = String::new();
    let cursor = s.cursor.token().map_or_else(|| "-".to_owned(), hex::encode);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{MAGIC}\nlabel {}\ndone {}\ncursor {cursor}\ncounts {} {} {} {} {} {} {}\n",
        hex::encode(&s.label),
        u8::from(s.done),
        c.scanned,
        c.copied,
        c.skipped_existing,
        c.skipped_expired,
        c.vanished,
        c.raced,
        c.failed,
    );
    out
}

fn decode(text: &str) -> Result<CheckpointState> {
    let bad = || {
        StoreError::corrupt(Op::Get)
            .with_store("checkpoint(file)")
            .with_message("checkpoint file is malformed")
    };
    let unhex = |s: &str| {
        hex::decode(s)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(bad)
    };
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(bad());
    }
    let mut field = |name: &str| {
        lines
            .next()
            .and_then(|l| l.strip_prefix(name))
            .and_then(|l| l.strip_prefix(' '))
            .ok_or_else(bad)
    };
    let label = unhex(field("label")?)?;
    let done = match field("done")? {
        "0" => false,
        "1" => true,
        _ => return Err(bad()),
    };
    let cursor = match field("cursor")? {
        "-" => ScanCursor::start(),
        token => ScanCursor::from_token(unhex(token)?),
    };
    let n: Vec<u64> = field("counts")?
        .split(' ')
        .map(|v| v.parse().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let [scanned, copied, skipped_existing, skipped_expired, vanished, raced, failed] = n[..]
    else {
        return Err(bad());
    };
    let counts = Counts {
        scanned,
        copied,
        skipped_existing,
        skipped_expired,
        vanished,
        raced,
        failed,
    };
    Ok(CheckpointState {
        label,
        cursor,
        done,
        counts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CheckpointState {
        let mut s = CheckpointState::new("memory -> memory");
        s.cursor = ScanCursor::from_token("3:00ff>sess:ünï");
        s.counts.scanned = 10;
        s.counts.copied = 7;
        s.counts.failed = 1;
        s
    }

    #[test]
    fn text_round_trips_and_rejects_damage() {
        let s = sample();
        let text = encode(&s);
        assert!(!text.contains("sess:"), "cursor must not appear in clear");
        assert_eq!(decode(&text).unwrap(), s);
        for broken in [
            "",
            "garbage",
            &text.replace("done 0", "done 2"),
            &text.replace("counts 10", "counts x"),
            &text[..text.len() - 4],
        ] {
            let err = decode(broken).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Corrupt, "{broken:?}");
        }
    }

    #[tokio::test]
    async fn file_checkpoint_replaces_atomically() {
        let dir = std::env::temp_dir().join(format!(
            "storestack-ckpt-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ckpt = FileCheckpoint::new(dir.join("run.ckpt"));
        assert_eq!(ckpt.load().await.unwrap(), None);
        let mut s = sample();
        ckpt.save(&s).await.unwrap();
        s.done = true;
        s.cursor = ScanCursor::start();
        ckpt.save(&s).await.unwrap();
        assert_eq!(ckpt.load().await.unwrap(), Some(s));
        assert!(!dir.join("run.ckpt.tmp").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(ckpt.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "checkpoint readable by others: {mode:o}");
        }
        // Damage that is not even UTF-8 is `Corrupt` too, not an I/O
        // failure (found by the migration_decode fuzz target).
        std::fs::write(ckpt.path(), [0xF0, 0x3F]).unwrap();
        assert_eq!(ckpt.load().await.unwrap_err().kind(), ErrorKind::Corrupt);
        ckpt.remove().await.unwrap();
        ckpt.remove().await.unwrap();
        assert_eq!(ckpt.load().await.unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
