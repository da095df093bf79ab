//! A static file server on loopback for the update tests: plain HTTP/1.1,
//! GET with `Range: bytes=N-`, a request log, and one fault: cut a file's
//! body after some bytes (the connection closes mid-download).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Shared {
    /// "GET /path [range]" per request.
    log: Vec<String>,
    /// Path suffix → bytes to send before closing.
    cut: HashMap<String, usize>,
}

pub struct StaticServer {
    pub port: u16,
    shared: Arc<Mutex<Shared>>,
}

impl StaticServer {
    /// Serves the files under `root` until the process ends.
    pub fn start(root: &Path) -> StaticServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (root, s) = (root.to_path_buf(), shared.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (root, s) = (root.clone(), s.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &root, &s);
                });
            }
        });
        StaticServer { port, shared }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests so far.
    pub fn log(&self) -> Vec<String> {
        self.shared.lock().unwrap().log.clone()
    }

    /// From now on, bodies of paths ending in `suffix` stop after `bytes`.
    pub fn cut(&self, suffix: &str, bytes: usize) {
        self.shared.lock().unwrap().cut.insert(suffix.to_string(), bytes);
    }

    pub fn uncut(&self) {
        self.shared.lock().unwrap().cut.clear();
    }
}

fn serve(stream: TcpStream, root: &Path, shared: &Mutex<Shared>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = v.trim().strip_prefix("bytes=").and_then(|r| r.strip_suffix('-')).and_then(|n| n.parse::<usize>().ok());
            }
        }
    }
    let cut = {
        let mut s = shared.lock().unwrap();
        s.log.push(format!("GET {path}{}", range.map(|r| format!(" range={r}-")).unwrap_or_default()));
        s.cut.iter().find(|(k, _)| path.ends_with(k.as_str())).map(|(_, v)| *v)
    };
    let mut out = stream;
    let file: PathBuf = root.join(path.trim_start_matches('/'));
    let body = match (path.contains(".."), std::fs::read(&file)) {
        (false, Ok(b)) => b,
        _ => return out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    };
    let (status, start) = match range {
        Some(r) if r < body.len() => ("206 Partial Content", r),
        Some(_) => return out.write_all(b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        None => ("200 OK", 0),
    };
    let part = &body[start..];
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", part.len());
    if range.is_some() {
        head.push_str(&format!("Content-Range: bytes {start}-{}/{}\r\n", body.len() - 1, body.len()));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    let send = cut.map_or(part.len(), |c| c.min(part.len()));
    out.write_all(&part[..send])?;
    out.flush()?;
    let _ = out.shutdown(std::net::Shutdown::Both);
    // Drain anything left so the peer sees a clean close.
    let _ = reader.read(&mut [0u8; 1]);
    Ok(())
}
