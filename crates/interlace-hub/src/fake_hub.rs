//! An in-process Hub lookalike on 127.0.0.1 for tests (feature `fake-hub`): the model- and
//! dataset-info APIs and the resolve endpoints as `hf-hub` and `huggingface_hub` use them, with range requests,
//! gated repositories, and faults on demand (a connection cut mid-file, a corrupted file).
//!
//! Files named `*.safetensors` or `*.parquet` are served as LFS files (`X-Linked-Etag` = SHA-256, `lfs` in
//! the file list), the others as git files (`ETag` = git blob id). Every request is logged.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use sha1::Digest as _;

use crate::verify::{git_blob_header, hex};

/// One request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

#[derive(Default)]
struct FakeRepo {
    /// Branch or tag name to commit.
    refs: BTreeMap<String, String>,
    /// Commit to files.
    commits: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// The token a gated repository requires.
    token: Option<String>,
}

#[derive(Default)]
struct State {
    repos: BTreeMap<String, FakeRepo>,
    log: Vec<Request>,
    /// File name to the number of body bytes sent before the next download of it is cut.
    cut: BTreeMap<String, usize>,
    /// Files served with one byte changed (the file list keeps the true hashes).
    corrupt: BTreeSet<String>,
}

/// The server; it stops when dropped.
pub struct FakeHub {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHub {
    /// Starts a server on a free port of 127.0.0.1.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_state, thread_stop) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if thread_stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let state = thread_state.clone();
                    std::thread::spawn(move || serve(stream, &state));
                }
            }
        });
        Self { addr, state, stop, thread: Some(thread) }
    }

    /// The base URL to use as `HF_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds commit `commit` of `repo` holding `files`, and points `revision` at it.
    pub fn add_commit(&self, repo: &str, revision: &str, commit: &str, files: BTreeMap<String, Vec<u8>>) {
        let mut state = self.state();
        let entry = state.repos.entry(repo.into()).or_default();
        entry.commits.insert(commit.into(), files);
        entry.refs.insert(revision.into(), commit.into());
    }

    /// Adds commit `commit` of dataset repository `repo` holding `files`, and points `revision`
    /// at it (served under `/api/datasets/` and `/datasets/`).
    pub fn add_dataset_commit(&self, repo: &str, revision: &str, commit: &str, files: BTreeMap<String, Vec<u8>>) {
        self.add_commit(&format!("datasets/{repo}"), revision, commit, files);
    }

    /// Makes `repo` answer 401 unless the request carries `Authorization: Bearer {token}`.
    pub fn gate(&self, repo: &str, token: &str) {
        self.state().repos.entry(repo.into()).or_default().token = Some(token.into());
    }

    /// Cuts the connection of the next download of `file` after `bytes` body bytes (the
    /// headers announce the whole length, as when a transfer is killed).
    pub fn cut_next_download(&self, file: &str, bytes: usize) {
        self.state().cut.insert(file.into(), bytes);
    }

    /// Serves `file` with one byte changed, or (`false`) correctly again.
    pub fn corrupt(&self, file: &str, corrupt: bool) {
        let mut state = self.state();
        if corrupt {
            state.corrupt.insert(file.into());
        } else {
            state.corrupt.remove(file);
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state().log.clone()
    }

    /// Forgets the requests so far.
    pub fn clear_requests(&self) {
        self.state().log.clear();
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send only this many body bytes, then close.
    cut_after: Option<usize>,
}

impl Response {
    fn error(status: u16, code: &str) -> Self {
        Self { status, headers: vec![("X-Error-Code".into(), code.into())], body: code.as_bytes().to_vec(), cut_after: None }
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let Some(request) = read_request(&stream) else { return };
    let response = {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        state.log.push(request.clone());
        respond(&mut state, &request)
    };
    let _ = write_response(stream, response);
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let (mut range, mut authorization) = (None, None);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "range" => range = Some(value.trim().to_string()),
                "authorization" => authorization = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    Some(Request { method, target, range, authorization })
}

fn write_response(mut stream: TcpStream, response: Response) -> std::io::Result<()> {
    let reason = match response.status {
        200 => "OK",
        206 => "Partial Content",
        401 => "Unauthorized",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        _ => "Error",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n", response.status, response.body.len());
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let body = &response.body[..response.cut_after.unwrap_or(usize::MAX).min(response.body.len())];
    stream.write_all(body)?;
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

fn respond(state: &mut State, request: &Request) -> Response {
    let path = request.target.split('?').next().unwrap_or_default().replace("%2F", "/");
    // Datasets live in the same table under `datasets/{owner}/{name}`.
    for (api, kind) in [("/api/models/", ""), ("/api/datasets/", "datasets/")] {
        if let Some(rest) = path.strip_prefix(api) {
            let Some((repo, revision)) = rest.split_once("/revision/") else { return Response::error(404, "EntryNotFound") };
            return model_info(state, request, &format!("{kind}{repo}"), revision);
        }
    }
    // `/[datasets/]{owner}/{name}/resolve/{revision}/{file}`; revisions here have no `/`.
    let (kind, rest) = match path.strip_prefix("/datasets/") {
        Some(rest) => ("datasets/", rest),
        None => ("", path.trim_start_matches('/')),
    };
    let parts: Vec<&str> = rest.splitn(5, '/').collect();
    let [owner, name, "resolve", revision, file] = parts.as_slice() else { return Response::error(404, "EntryNotFound") };
    let repo = format!("{kind}{owner}/{name}");
    resolve(state, request, &repo, revision, file)
}

/// The commit and files `repo` has at `revision`, or the error response.
fn lookup<'a>(state: &'a State, request: &Request, repo: &str, revision: &str) -> Result<(String, &'a BTreeMap<String, Vec<u8>>), Response> {
    let entry = state.repos.get(repo).ok_or_else(|| Response::error(404, "RepoNotFound"))?;
    if let Some(token) = &entry.token {
        if request.authorization.as_deref() != Some(format!("Bearer {token}").as_str()) {
            return Err(Response::error(401, "GatedRepo"));
        }
    }
    let commit = entry.refs.get(revision).cloned().unwrap_or_else(|| revision.to_string());
    let files = entry.commits.get(&commit).ok_or_else(|| Response::error(404, "RevisionNotFound"))?;
    Ok((commit, files))
}

fn model_info(state: &State, request: &Request, repo: &str, revision: &str) -> Response {
    let (commit, files) = match lookup(state, request, repo, revision) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let siblings: Vec<serde_json::Value> = files
        .iter()
        .map(|(name, bytes)| {
            let mut entry = serde_json::json!({"rfilename": name, "size": bytes.len(), "blobId": git_blob_id(bytes)});
            if is_lfs(name) {
                entry["lfs"] = serde_json::json!({"sha256": sha256(bytes), "size": bytes.len(), "pointerSize": 134});
            }
            entry
        })
        .collect();
    let body = serde_json::json!({"id": repo, "modelId": repo, "sha": commit, "private": false, "siblings": siblings});
    Response { status: 200, headers: vec![("Content-Type".into(), "application/json".into())], body: body.to_string().into_bytes(), cut_after: None }
}

fn resolve(state: &mut State, request: &Request, repo: &str, revision: &str, file: &str) -> Response {
    let (commit, bytes) = match lookup(state, request, repo, revision) {
        Ok((commit, files)) => match files.get(file) {
            Some(bytes) => (commit, bytes.clone()),
            None => return Response::error(404, "EntryNotFound"),
        },
        Err(response) => return response,
    };
    let total = bytes.len();
    let mut served = bytes.clone();
    if state.corrupt.contains(file) && !served.is_empty() {
        let middle = served.len() / 2;
        served[middle] ^= 0xff;
    }
    let mut headers = vec![("X-Repo-Commit".to_string(), commit), ("Accept-Ranges".to_string(), "bytes".to_string())];
    if is_lfs(file) {
        headers.push(("X-Linked-Etag".into(), format!("\"{}\"", sha256(&bytes))));
        headers.push(("X-Linked-Size".into(), total.to_string()));
        headers.push(("ETag".into(), format!("\"{}\"", git_blob_id(b"lfs pointer"))));
    } else {
        headers.push(("ETag".into(), format!("\"{}\"", git_blob_id(&bytes))));
    }
    let Some(range) = request.range.as_deref().and_then(|r| r.strip_prefix("bytes=")) else {
        return Response { status: 200, headers, body: served, cut_after: None };
    };
    let (start, end) = range.split_once('-').unwrap_or((range, ""));
    let start: usize = start.parse().unwrap_or(0);
    let end: usize = end.parse().map(|e: usize| e.min(total.saturating_sub(1))).unwrap_or(total.saturating_sub(1));
    if start >= total || end < start {
        headers.push(("Content-Range".into(), format!("bytes */{total}")));
        return Response { status: 416, headers, body: Vec::new(), cut_after: None };
    }
    headers.push(("Content-Range".into(), format!("bytes {start}-{end}/{total}")));
    let body = served[start..=end].to_vec();
    // Probes (`bytes=0-0`) are never cut; body downloads are, once, when asked.
    let cut_after = if end > start { state.cut.remove(file).filter(|&n| n < body.len()) } else { None };
    Response { status: 206, headers, body, cut_after }
}

fn is_lfs(name: &str) -> bool {
    name.ends_with(".safetensors") || name.ends_with(".parquet")
}

fn sha256(bytes: &[u8]) -> String {
    hex(&sha2::Sha256::digest(bytes))
}

fn git_blob_id(bytes: &[u8]) -> String {
    let mut hasher = sha1::Sha1::new();
    hasher.update(git_blob_header(bytes.len() as u64).as_bytes());
    hasher.update(bytes);
    hex(&hasher.finalize())
}
