//! Just enough of the Redis and MongoDB protocols to ask "are you there?",
//! plus finding binaries and free ports.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends a RESP `PING` to `addr` and waits for `+PONG`, within `deadline`.
///
/// A paused server accepts the connection (the kernel does) but never
/// answers: this times out (`io::ErrorKind::TimedOut`). A killed one
/// refuses the connection (`ConnectionRefused`).
pub async fn redis_ping(addr: SocketAddr, deadline: Duration) -> io::Result<()> {
    within(deadline, async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"*1\r\n$4\r\nPING\r\n").await?;
        let mut reply = [0u8; 7];
        s.read_exact(&mut reply).await?;
        if &reply == b"+PONG\r\n" {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "unexpected reply to ping: {:?}",
                    String::from_utf8_lossy(&reply)
                ),
            ))
        }
    })
    .await
}

/// Sends a MongoDB `ping` command (an `OP_MSG` on the `admin` database)
/// and waits for a reply with `ok: 1`, within `deadline`.
pub async fn mongo_ping(addr: SocketAddr, deadline: Duration) -> io::Result<()> {
    within(deadline, async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(&op_msg_ping(1)).await?;
        let mut header = [0u8; 16];
        s.read_exact(&mut header).await?;
        let len = i32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let op_code = i32::from_le_bytes([header[12], header[13], header[14], header[15]]);
        if op_code != OP_MSG || !(21..=48_000_000).contains(&len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected reply header (op code {op_code}, length {len})"),
            ));
        }
        let mut body = vec![0u8; len as usize - 16];
        s.read_exact(&mut body).await?;
        // flagBits (4), section kind 0 (1), then the reply document: look
        // for the element `ok` as a double 1.0 or an int32 1.
        let doc = &body[5..];
        let ok_double = [&[0x01u8][..], b"ok\0", &1.0f64.to_le_bytes()].concat();
        let ok_int = [&[0x10u8][..], b"ok\0", &1i32.to_le_bytes()].concat();
        let has = |needle: &[u8]| doc.windows(needle.len()).any(|w| w == needle);
        if has(&ok_double) || has(&ok_int) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "ping reply is not ok: 1",
            ))
        }
    })
    .await
}

const OP_MSG: i32 = 2013;

/// `{ping: 1, $db: "admin"}` as an OP_MSG.
fn op_msg_ping(request_id: i32) -> Vec<u8> {
    let mut doc = Vec::new();
    doc.extend_from_slice(&[0; 4]); // length, patched below
    doc.push(0x10); // int32
    doc.extend_from_slice(b"ping\0");
    doc.extend_from_slice(&1i32.to_le_bytes());
    doc.push(0x02); // string
    doc.extend_from_slice(b"$db\0");
    doc.extend_from_slice(&6i32.to_le_bytes());
    doc.extend_from_slice(b"admin\0");
    doc.push(0x00);
    let doc_len = doc.len() as i32;
    doc[..4].copy_from_slice(&doc_len.to_le_bytes());

    let mut msg = Vec::new();
    let total = 16 + 4 + 1 + doc.len();
    msg.extend_from_slice(&(total as i32).to_le_bytes());
    msg.extend_from_slice(&request_id.to_le_bytes());
    msg.extend_from_slice(&0i32.to_le_bytes()); // responseTo
    msg.extend_from_slice(&OP_MSG.to_le_bytes());
    msg.extend_from_slice(&0u32.to_le_bytes()); // flagBits
    msg.push(0); // section kind 0: body
    msg.extend_from_slice(&doc);
    msg
}

async fn within<T>(
    deadline: Duration,
    fut: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::time::timeout(deadline, fut)
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "no answer in time")))
}

/// Finds `program` on `PATH`, then in `~/.cargo/bin`.
pub fn find_binary(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|c| c.join("bin"));
    std::env::split_paths(&path)
        .chain(cargo_bin)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_message_is_well_formed() {
        let msg = op_msg_ping(7);
        let len = i32::from_le_bytes(msg[..4].try_into().unwrap()) as usize;
        assert_eq!(len, msg.len());
        let doc = &msg[21..];
        let doc_len = i32::from_le_bytes(doc[..4].try_into().unwrap()) as usize;
        assert_eq!(doc_len, doc.len());
        assert_eq!(*doc.last().unwrap(), 0);
    }

    #[test]
    fn binaries_are_found_on_path_only_if_present() {
        assert!(find_binary("sh").is_some());
        assert!(find_binary("no-such-binary-storestack").is_none());
    }
}
