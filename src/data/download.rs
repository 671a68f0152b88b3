//! Downloading the official CIFAR archives: fetch, check the MD5 digest, unpack, and move
//! the data folder into place, leaving nothing partial behind on failure.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use flate2::read::GzDecoder;
use md5::{Digest, Md5};
use tracing::info;

use super::cifar::CifarKind;
use super::error::DataError;

/// Longest wait for the connection to the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for any single read of the response.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest download accepted; the official archives are about 170 MB.
const MAX_DOWNLOAD_BYTES: u64 = 1 << 30;
/// Progress is logged every this many bytes when the server does not announce a size.
const UNSIZED_REPORT_BYTES: u64 = 16 << 20;

/// Where a data set archive comes from and what it must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Address of the `.tar.gz` archive.
    pub url: String,
    /// Published MD5 digest of the archive, hex.
    pub md5: String,
    /// Name of the folder the archive unpacks to, which holds the data files.
    pub folder: String,
}

impl Source {
    /// The official archive of `kind` from the CIFAR home page.
    pub fn official(kind: CifarKind) -> Self {
        let (url, md5) = match kind {
            CifarKind::Cifar10 => (
                "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                "c32a1d4ab5d03f1284b67883e8d87530",
            ),
            CifarKind::Cifar100 => (
                "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
                "03b5dce01913d631647c71ecec9e9cb8",
            ),
        };
        Source {
            url: url.to_string(),
            md5: md5.to_string(),
            folder: kind.folder_name().into(),
        }
    }

    /// The archive's file name, taken from the end of the address.
    fn archive_name(&self) -> &str {
        let name = self.url.rsplit('/').next().unwrap_or_default();
        if name.is_empty() {
            "archive.tar.gz"
        } else {
            name
        }
    }
}

/// A temporary file or folder that is removed when dropped.
struct Temporary(PathBuf);

impl Temporary {
    /// Claims `path`, removing whatever an earlier, interrupted attempt left there.
    fn claim(path: PathBuf) -> Self {
        remove(&path);
        Temporary(path)
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        remove(&self.0);
    }
}

/// Removes a file or folder, if there is one.
fn remove(path: &Path) {
    let _ = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
}

/// Downloads and unpacks `source` into `dir`, returning the data folder
/// `dir/<source.folder>`.
///
/// If that folder already exists it is returned without downloading. Otherwise the
/// archive is fetched into a temporary file in `dir`, its MD5 digest checked, unpacked
/// into a temporary folder in `dir`, and the data folder moved into place; temporaries
/// are removed whether this succeeds or not, and the final folder never holds a partial
/// download.
pub fn download(source: &Source, dir: &Path) -> Result<PathBuf, DataError> {
    check_folder_name(source)?;
    let target = dir.join(&source.folder);
    if target.is_dir() {
        info!(folder = %target.display(), "data set already present");
        return Ok(target);
    }
    fs::create_dir_all(dir).map_err(|cause| DataError::io(dir, cause))?;

    let id = std::process::id();
    let archive = Temporary::claim(dir.join(format!(".{}.{id}.part", source.archive_name())));
    info!(url = %source.url, into = %dir.display(), "downloading data set");
    let actual = fetch(source, &archive.0)?;
    let expected = source.md5.to_ascii_lowercase();
    if actual != expected {
        return Err(DataError::Checksum {
            path: archive.0.clone(),
            url: source.url.clone(),
            expected,
            actual,
        });
    }
    info!(md5 = %actual, "checksum verified");

    let unpacked = Temporary::claim(dir.join(format!(".{}.{id}.unpack", source.folder)));
    unpack(&archive.0, &unpacked.0)?;
    let folder = unpacked.0.join(&source.folder);
    if !folder.is_dir() {
        return Err(DataError::Archive {
            path: archive.0.clone(),
            cause: format!("it does not hold the folder {}/", source.folder),
        });
    }

    if let Err(cause) = fs::rename(&folder, &target) {
        // Another process may have put the same folder there meanwhile.
        if !target.is_dir() {
            return Err(DataError::io(&target, cause));
        }
    }
    info!(folder = %target.display(), "data set ready");
    Ok(target)
}

/// The folder must be one plain name, so that it stays inside the download folder.
fn check_folder_name(source: &Source) -> Result<(), DataError> {
    let mut components = Path::new(&source.folder).components();
    let plain = matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(_)), None)
    );
    if plain {
        Ok(())
    } else {
        Err(DataError::Download {
            url: source.url.clone(),
            cause: format!(
                "folder `{}` is not a single plain folder name",
                source.folder
            ),
        })
    }
}

/// Fetches `source.url` into `path`, logging progress; returns the MD5 digest, lowercase
/// hex.
fn fetch(source: &Source, path: &Path) -> Result<String, DataError> {
    let url = &source.url;
    let failed = |cause: String| DataError::Download {
        url: url.clone(),
        cause,
    };

    let agent = ureq::AgentBuilder::new()
        .timeout_connect(CONNECT_TIMEOUT)
        .timeout_read(READ_TIMEOUT)
        .build();
    let response = agent.get(url).call().map_err(|err| match err {
        ureq::Error::Status(status, _) => DataError::HttpStatus {
            url: url.clone(),
            status,
        },
        ureq::Error::Transport(transport) => failed(transport.to_string()),
    })?;
    let total: Option<u64> = response
        .header("Content-Length")
        .and_then(|v| v.parse().ok());
    if total.is_some_and(|total| total > MAX_DOWNLOAD_BYTES) {
        return Err(failed(format!(
            "announced size {total:?} exceeds {MAX_DOWNLOAD_BYTES} bytes"
        )));
    }

    let mut reader = response.into_reader();
    let file = File::create(path).map_err(|cause| DataError::io(path, cause))?;
    let mut writer = BufWriter::new(file);
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut received = 0u64;
    let mut reported = 0u64;

    loop {
        let count = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => count,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(failed(format!("after {received} bytes: {err}"))),
        };
        hasher.update(&buffer[..count]);
        writer
            .write_all(&buffer[..count])
            .map_err(|cause| DataError::io(path, cause))?;
        received += count as u64;
        if received > MAX_DOWNLOAD_BYTES {
            return Err(failed(format!(
                "more than {MAX_DOWNLOAD_BYTES} bytes received"
            )));
        }

        // Progress: every tenth of the announced size, or every 16 MiB without one.
        let mark = match total {
            Some(total) if total > 0 => received * 10 / total,
            _ => received / UNSIZED_REPORT_BYTES,
        };
        if mark > reported {
            reported = mark;
            let percent = total.map(|total| received * 100 / total.max(1));
            info!(
                received,
                total,
                percent,
                "downloading {}",
                source.archive_name()
            );
        }
    }
    writer.flush().map_err(|cause| DataError::io(path, cause))?;

    if let Some(total) = total {
        if received != total {
            return Err(failed(format!("received {received} of {total} bytes")));
        }
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

/// Unpacks the `.tar.gz` file `archive` into the folder `into`.
fn unpack(archive: &Path, into: &Path) -> Result<(), DataError> {
    let bad = |cause: String| DataError::Archive {
        path: archive.to_path_buf(),
        cause,
    };
    let file = File::open(archive).map_err(|cause| DataError::io(archive, cause))?;
    let mut tar = tar::Archive::new(GzDecoder::new(BufReader::new(file)));
    tar.unpack(into).map_err(|err| bad(err.to_string()))?;

    // The tar reader stops at the end-of-archive blocks; reading on to the end of the
    // gzip stream makes the decoder check its length and CRC trailer.
    io::copy(&mut tar.into_inner(), &mut io::sink()).map_err(|err| bad(err.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::cifar::{load, write_cifar10, Split};
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::net::TcpListener;
    use std::thread::{self, JoinHandle};
    use std::time::Instant;

    /// A `.tar.gz` holding a tiny CIFAR-10 folder under `folder/`.
    fn archive(folder: &str) -> Vec<u8> {
        let scratch = tempfile::tempdir().unwrap();
        write_cifar10(scratch.path(), 10, 4, 1).unwrap();
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        builder.append_dir_all(folder, scratch.path()).unwrap();
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn md5_hex(bytes: &[u8]) -> String {
        Md5::digest(bytes)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// An HTTP response with the given status line and body, announcing `length` bytes.
    fn response(status: &str, body: &[u8], length: usize) -> Vec<u8> {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {length}\r\n\
             Content-Type: application/gzip\r\nConnection: close\r\n\r\n"
        );
        [head.as_bytes(), body].concat()
    }

    /// Serves `reply` to one connection on a local port; gives up after 20 seconds.
    fn serve_once(reply: Vec<u8>) -> (String, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let server = thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut stream = loop {
                match listener.accept() {
                    Ok((stream, _)) => break stream,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        if Instant::now() > deadline {
                            return;
                        }
                        thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => return,
                }
            };
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));

            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 1 << 16 {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(count) => request.extend_from_slice(&buffer[..count]),
                }
            }
            let _ = stream.write_all(&reply);
            let _ = stream.flush();
        });
        (format!("http://{address}"), server)
    }

    fn source(url: String, md5: String) -> Source {
        Source {
            url,
            md5,
            folder: "cifar-10-batches-bin".to_string(),
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn official_sources() {
        let source = Source::official(CifarKind::Cifar100);
        assert_eq!(
            source.url,
            "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"
        );
        assert_eq!(source.md5, "03b5dce01913d631647c71ecec9e9cb8");
        assert_eq!(source.folder, "cifar-100-binary");
        assert_eq!(source.archive_name(), "cifar-100-binary.tar.gz");
        assert_eq!(
            Source::official(CifarKind::Cifar10).folder,
            "cifar-10-batches-bin"
        );
    }

    #[test]
    fn right_checksum_unpacks_a_loadable_folder() {
        let body = archive("cifar-10-batches-bin");
        let (base, server) = serve_once(response("200 OK", &body, body.len()));
        let dir = tempfile::tempdir().unwrap();
        // An upper-case digest is accepted too.
        let source = source(
            format!("{base}/cifar-10-binary.tar.gz"),
            md5_hex(&body).to_uppercase(),
        );

        let folder = download(&source, dir.path()).unwrap();
        server.join().unwrap();
        assert_eq!(folder, dir.path().join("cifar-10-batches-bin"));
        assert_eq!(entries(dir.path()), ["cifar-10-batches-bin"]);
        let train = load(&folder, CifarKind::Cifar10, Split::Train).unwrap();
        assert_eq!(train.len(), 10);

        // Present now: returned without contacting the (closed) server.
        assert_eq!(download(&source, dir.path()).unwrap(), folder);
    }

    #[test]
    fn wrong_checksum_leaves_nothing() {
        let body = archive("cifar-10-batches-bin");
        let (base, server) = serve_once(response("200 OK", &body, body.len()));
        let dir = tempfile::tempdir().unwrap();
        let wrong = "0123456789abcdef0123456789abcdef".to_string();
        let err = download(&source(format!("{base}/c.tar.gz"), wrong), dir.path()).unwrap_err();
        server.join().unwrap();

        match &err {
            DataError::Checksum {
                expected, actual, ..
            } => {
                assert_eq!(expected, "0123456789abcdef0123456789abcdef");
                assert_eq!(actual, &md5_hex(&body));
            }
            other => panic!("expected a checksum error, got {other:?}"),
        }
        assert!(err.to_string().contains("c.tar.gz"), "{err}");
        assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
    }

    #[test]
    fn truncated_archive_is_an_archive_error() {
        let body = archive("cifar-10-batches-bin");
        let cut = &body[..body.len() * 2 / 3];
        let (base, server) = serve_once(response("200 OK", cut, cut.len()));
        let dir = tempfile::tempdir().unwrap();
        let err = download(
            &source(format!("{base}/c.tar.gz"), md5_hex(cut)),
            dir.path(),
        )
        .unwrap_err();
        server.join().unwrap();

        assert!(matches!(err, DataError::Archive { .. }), "{err:?}");
        assert!(err.to_string().contains("c.tar.gz"), "{err}");
        assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
    }

    #[test]
    fn short_body_is_a_download_error() {
        let body = archive("cifar-10-batches-bin");
        let (base, server) = serve_once(response("200 OK", &body[..1000], body.len()));
        let dir = tempfile::tempdir().unwrap();
        let url = format!("{base}/c.tar.gz");
        let err = download(&source(url.clone(), md5_hex(&body)), dir.path()).unwrap_err();
        server.join().unwrap();

        assert!(matches!(err, DataError::Download { .. }), "{err:?}");
        assert!(err.to_string().contains(&url), "{err}");
        assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
    }

    #[test]
    fn archive_without_the_folder_is_rejected() {
        let body = archive("some-other-folder");
        let (base, server) = serve_once(response("200 OK", &body, body.len()));
        let dir = tempfile::tempdir().unwrap();
        let err = download(
            &source(format!("{base}/c.tar.gz"), md5_hex(&body)),
            dir.path(),
        )
        .unwrap_err();
        server.join().unwrap();

        assert!(matches!(err, DataError::Archive { .. }), "{err:?}");
        assert!(err.to_string().contains("cifar-10-batches-bin/"), "{err}");
        assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
    }

    #[test]
    fn http_404_names_the_url() {
        let (base, server) = serve_once(response("404 Not Found", b"missing", 7));
        let dir = tempfile::tempdir().unwrap();
        let url = format!("{base}/nowhere.tar.gz");
        let err = download(&source(url.clone(), md5_hex(b"")), dir.path()).unwrap_err();
        server.join().unwrap();

        assert!(
            matches!(err, DataError::HttpStatus { status: 404, .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&url) && message.contains("404"),
            "{message}"
        );
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn folder_must_be_a_plain_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut bad = source("http://127.0.0.1:9/x.tar.gz".to_string(), String::new());
        bad.folder = "../escape".to_string();
        let err = download(&bad, dir.path()).unwrap_err();
        assert!(err.to_string().contains("../escape"), "{err}");
    }
}
