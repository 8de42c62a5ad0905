//! The media store on disk, under `SWITCHBOARD_DATA_DIR`: `uploads/<id>` for members' uploads,
//! `inbound/<message id>` for media fetched from the Graph API, `tmp/` for files being written.
//! Every file is named by an id the server made: no name a client sends ever becomes a path.
//! A file is written to `tmp/` and renamed into place once complete, so a reader never sees a
//! partial file; one abandoned half-way is removed.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::Stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// Bytes read from disk at a time when a file is streamed out.
const READ_CHUNK: usize = 64 * 1024;

/// Where media files are kept.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(root: &Path) -> Store {
        Store { root: root.to_owned() }
    }

    /// Creates the store's folders (at start-up; writers create them again if they vanished).
    pub async fn ensure(&self) -> io::Result<()> {
        for dir in ["uploads", "inbound", "tmp"] {
            tokio::fs::create_dir_all(self.root.join(dir)).await?;
        }
        Ok(())
    }

    pub fn upload_path(&self, id: Uuid) -> PathBuf {
        self.root.join("uploads").join(id.simple().to_string())
    }

    pub fn inbound_path(&self, message_id: Uuid) -> PathBuf {
        self.root.join("inbound").join(message_id.simple().to_string())
    }

    /// Starts writing a new file in `tmp/`.
    pub async fn begin(&self) -> io::Result<Writing> {
        self.ensure().await?;
        let temp = self.root.join("tmp").join(Uuid::new_v4().simple().to_string());
        let file = tokio::fs::File::create(&temp).await?;
        Ok(Writing { file: Some(file), temp, written: 0 })
    }
}

/// A file being written. Dropped before [`Writing::finish`], it is removed.
pub struct Writing {
    file: Option<tokio::fs::File>,
    temp: PathBuf,
    written: u64,
}

impl Writing {
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        let file = self.file.as_mut().ok_or_else(|| io::Error::other("file already finished"))?;
        file.write_all(chunk).await?;
        self.written += chunk.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Makes the file durable and moves it to `to` (replacing what was there).
    pub async fn finish(mut self, to: &Path) -> io::Result<u64> {
        let mut file = self.file.take().ok_or_else(|| io::Error::other("file already finished"))?;
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        if let Some(dir) = to.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        tokio::fs::rename(&self.temp, to).await?;
        self.temp = PathBuf::new();
        Ok(self.written)
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Writes `bytes` as the file `to` (through `tmp/`, as every file).
pub async fn write_whole(store: &Store, to: &Path, bytes: &[u8]) -> io::Result<u64> {
    let mut w = store.begin().await?;
    w.write(bytes).await?;
    w.finish(to).await
}

/// Opens `path` to stream it out: its length and its bytes, a chunk at a time (never the whole
/// file in memory). `None` when there is no such file.
pub async fn open(path: &Path) -> io::Result<Option<(u64, impl Stream<Item = io::Result<Bytes>> + Send + 'static)>> {
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata().await?.len();
    let stream = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; READ_CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    Ok(Some((len, stream)))
}
