//! A local control socket beside the database file (`<database>.ctl`, mode 0600), so that
//! commands which must write while the server holds the file run inside the server.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::commands::{self, Command, CommandContext, CommandError};

/// Largest request accepted (fixture files travel inside it).
const MAX_REQUEST: u64 = 64 * 1024 * 1024;

#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    ok: bool,
    output: String,
}

pub fn socket_path(database: &Path) -> PathBuf {
    let mut path = database.as_os_str().to_owned();
    path.push(".ctl");
    PathBuf::from(path)
}

/// The listening socket; the file is removed when this is dropped.
pub struct ControlSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ControlSocket {
    /// Binds the socket. Only the process that holds the database lock calls this, so a file
    /// left at the path is from a process that died and is replaced.
    pub fn bind(database: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let path = socket_path(database);
        if path.exists() {
            std::fs::remove_file(&path)?;
        }
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        Ok(Self { path, listener })
    }

    pub async fn serve(self, context: CommandContext) {
        let context = std::sync::Arc::new(context);
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) if !self.same_user(&stream) => {
                    tracing::warn!("control socket: refused a connection from another user");
                }
                Ok((stream, _)) => {
                    let context = context.clone();
                    tokio::spawn(async move { answer(stream, &context).await });
                }
                Err(error) => {
                    tracing::warn!("control socket: {error}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }
}

impl ControlSocket {
    /// Whether the peer runs as the user who owns the socket (or as root). The socket's mode
    /// already keeps others out; this also closes the moment between bind and chmod.
    fn same_user(&self, stream: &UnixStream) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(peer) = stream.peer_cred() else {
            return false;
        };
        let owner = std::fs::metadata(&self.path).map(|meta| meta.uid());
        peer.uid() == 0 || owner.is_ok_and(|owner| owner == peer.uid())
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn answer(stream: UnixStream, context: &CommandContext) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_REQUEST));
    let reply = match reader.read_line(&mut line).await {
        Err(error) => Reply {
            ok: false,
            output: format!("cannot read the request: {error}"),
        },
        Ok(_) => match serde_json::from_str::<Command>(&line) {
            Err(error) => Reply {
                ok: false,
                output: format!("malformed request: {error}"),
            },
            Ok(command) => match commands::execute(context, command).await {
                Ok(output) => Reply { ok: true, output },
                Err(error) => Reply {
                    ok: false,
                    output: error.to_string(),
                },
            },
        },
    };
    let mut text = serde_json::to_string(&reply).unwrap_or_default();
    text.push('\n');
    let _ = write.write_all(text.as_bytes()).await;
}

/// Runs `command` inside the server that holds `database`.
pub async fn send(database: &Path, command: &Command) -> Result<String, CommandError> {
    let path = socket_path(database);
    let stream = UnixStream::connect(&path).await.map_err(|_| {
        CommandError::Other(format!(
            "the database {} is in use by another process, and no oxidot server answers on {}; \
             stop the other process (or wait for it to finish) and run the command again",
            database.display(),
            path.display()
        ))
    })?;
    let (read, mut write) = stream.into_split();
    let mut request =
        serde_json::to_string(command).map_err(|error| CommandError::Other(error.to_string()))?;
    request.push('\n');
    write
        .write_all(request.as_bytes())
        .await
        .map_err(|error| CommandError::Other(format!("control socket: {error}")))?;
    let mut line = String::new();
    BufReader::new(read)
        .read_line(&mut line)
        .await
        .map_err(|error| CommandError::Other(format!("control socket: {error}")))?;
    let reply: Reply = serde_json::from_str(&line).map_err(|_| {
        CommandError::Other("the server closed the control socket without answering".to_owned())
    })?;
    if reply.ok {
        Ok(reply.output)
    } else {
        Err(CommandError::Other(reply.output))
    }
}
